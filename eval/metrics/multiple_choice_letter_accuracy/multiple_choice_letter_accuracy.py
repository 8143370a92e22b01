"""Multiple-choice accuracy of free-text chat answers against gold option letters (MVBench style)."""

import re
import string

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Multiple-choice accuracy of a chat model's free-text answers ("(B) a dog", "Answer: b", "B.", "The answer is C")
against gold option letters. The option letter of a text is found by the first rule that applies:
  1. a leading label: the text starts with a letter, optionally after "(" or "[", that is followed by ")", "]", ".",
     ":", ",", a line break or the end of the text ("(B) a dog", "b)", "B.", "C");
  2. an answer cue: the words "answer", "option" or "choice", optionally "is" and ":", then a one-letter word; the
     letter counts when it is upper case, in brackets, or followed by one of the delimiters of rule 1 or the end ("The
     answer is C", "Answer: b", "Best option:(A)") - so "the answer is a dog" gives no letter;
  3. the first letter in brackets anywhere ("I would pick (c) because ...").
Only the first `num_options` letters (all of A-Z when it is None) are option letters; other letters are skipped. Free
text with no option letter counts as wrong and is reported in `unparsed`. Unlike lmms-eval's `mcq_acc`, a lone
capital letter inside a sentence ("A dog runs") is not read as an answer. Gold references go through the same rules
and must yield a letter. Values are fractions in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the model's answers.
    references (`list` of `str`): the gold option letters ("B", "b", "(B)" or "(B) a dog").
    num_options (`int`, optional): the number of options, to restrict letters to A, B, ... (at most 26).
Returns:
    `accuracy`, and `unparsed` (the fraction of answers with no option letter).
Examples:
    >>> metric = load_metric("multiple_choice_letter_accuracy")
    >>> metric.compute(predictions=["(B) a dog", "The answer is C", "a cat"], references=["B", "A", "C"])
    {'accuracy': 0.3333333333333333, 'unparsed': 0.3333333333333333}
"""

_CITATION = """
@inproceedings{li2024mvbench,
  title={MVBench: A Comprehensive Multi-modal Video Understanding Benchmark},
  author={Li, Kunchang and Wang, Yali and He, Yinan and Li, Yizhuo and Wang, Yi and Liu, Yi and Wang, Zun and Xu, Jilan
    and Chen, Guo and Luo, Ping and Wang, Limin and Qiao, Yu},
  booktitle={CVPR},
  year={2024}
}
"""

_LEADING_LABEL = re.compile(r"^\s*[(\[]?\s*([A-Za-z])(?=\s*$|\s*[)\].:,\n])")
_ANSWER_CUE = re.compile(
    r"\b(?:answer|option|choice)\b\s*(?:is\b)?\s*[:：]?\s*([(\[])?\s*([A-Za-z])(?![A-Za-z])", re.IGNORECASE
)
_DELIMITED = re.compile(r"\s*(?:$|[)\].:,\n])")
_BRACKETED = re.compile(r"[(\[]\s*([A-Za-z])\s*[)\]]")


def extract_option_letter(text, num_options=None):
    """The upper-case option letter that `text` answers with, or None (rules in the module description)."""
    letters = string.ascii_uppercase[:num_options]
    leading = _LEADING_LABEL.match(text)
    if leading and leading.group(1).upper() in letters:
        return leading.group(1).upper()
    for cue in _ANSWER_CUE.finditer(text):
        bracket, letter = cue.groups()
        trusted = letter.isupper() or bracket is not None or _DELIMITED.match(text, cue.end())
        if trusted and letter.upper() in letters:
            return letter.upper()
    for bracketed in _BRACKETED.finditer(text):
        if bracketed.group(1).upper() in letters:
            return bracketed.group(1).upper()
    return None


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultipleChoiceLetterAccuracy(evaluate.Metric):
    extract_letter = staticmethod(extract_option_letter)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=[
                "https://github.com/EvolvingLMMs-Lab/lmms-eval/blob/main/lmms_eval/tasks/mvbench/utils.py"
            ],
        )

    def _compute(self, predictions, references, num_options=None):
        if num_options is not None and (
            isinstance(num_options, bool) or not isinstance(num_options, int) or not 1 <= num_options <= 26
        ):
            raise ValueError(f"num_options must be an integer in [1, 26], got {num_options!r}")
        if len(predictions) == 0:
            raise ValueError("predictions is empty: pass at least one answer")
        gold = []
        for index, reference in enumerate(references):
            letter = extract_option_letter(reference, num_options)
            if letter is None:
                valid = string.ascii_uppercase[:num_options]
                raise ValueError(
                    f"references[{index}] = {reference!r} is not an option letter in {valid[0]}-{valid[-1]}"
                )
            gold.append(letter)
        answered = [extract_option_letter(prediction, num_options) for prediction in predictions]
        return {
            "accuracy": float(np.mean([letter == truth for letter, truth in zip(answered, gold)])),
            "unparsed": float(np.mean([letter is None for letter in answered])),
        }
