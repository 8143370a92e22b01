"""Multiple-choice accuracy from per-option scores (MSR-VTT-MC / SSv2-MC style)."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Multiple-choice accuracy when a model scores every answer option (e.g. video-caption similarity in MSR-VTT-MC): a
question is answered correctly when its answer option gets the best score. Questions may have different numbers of
options. The value is a fraction in [0, 1].

Ties: `tie_break` decides what happens when another option has exactly the answer's score:
  * "pessimistic" (default): the question counts as wrong;
  * "optimistic": it counts as right;
  * "reverse_index": the tied option with the higher index wins, the order of
    `np.argsort(scores, kind="stable")[::-1]`.
`np.argmax` instead picks the lowest index; with tie-free scores all conventions agree with it.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): the scores of the options of every question.
    references (`list` of `int`): the index of the correct option of every question.
    tie_break (`str`, defaults to `"pessimistic"`): "pessimistic", "optimistic" or "reverse_index".
Returns:
    `accuracy`.
Examples:
    >>> metric = load_metric("multiple_choice_accuracy")
    >>> metric.compute(predictions=[[0.1, 0.9, 0.3], [0.2, 0.8]], references=[1, 0])
    {'accuracy': 0.5}
"""

_CITATION = """
@article{wang2024internvideo2,
  title={InternVideo2: Scaling Foundation Models for Multimodal Video Understanding},
  author={Wang, Yi and Li, Kunchang and Li, Xinhao and Yu, Jiashuo and He, Yinan and others},
  journal={arXiv preprint arXiv:2403.15377},
  year={2024}
}
"""

_TIE_BREAKS = ("pessimistic", "optimistic", "reverse_index")


def _best_target_rank(scores, is_target, tie_break):
    """0-based rank of the best-placed target in every row of `scores` (N, C); `is_target` has a True per row."""
    best = np.where(is_target, scores, -np.inf).max(axis=1, keepdims=True)
    others = ~is_target
    ahead = (others & (scores > best)).sum(axis=1)
    if tie_break == "optimistic":
        return ahead
    tied = others & (scores == best)
    if tie_break == "pessimistic":
        return ahead + tied.sum(axis=1)
    # reverse_index: the best-scored target with the highest index leads its tie group.
    num_candidates = scores.shape[1]
    lead_target = num_candidates - 1 - np.argmax((is_target & (scores == best))[:, ::-1], axis=1)
    return ahead + (tied & (np.arange(num_candidates) > lead_target[:, None])).sum(axis=1)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultipleChoiceAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, tie_break="pessimistic"):
        if tie_break not in _TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {_TIE_BREAKS}, got {tie_break!r}")
        if len(predictions) == 0:
            raise ValueError("predictions is empty: pass the option scores of at least one question")
        correct = []
        for question, (option_scores, answer) in enumerate(zip(predictions, references)):
            scores = np.asarray(option_scores, dtype=np.float64)[None, :]
            if scores.shape[1] == 0:
                raise ValueError(f"predictions[{question}] has no option scores")
            if np.isnan(scores).any():
                raise ValueError(f"predictions[{question}] contains NaN scores, which cannot be ranked")
            if not 0 <= answer < scores.shape[1]:
                raise ValueError(
                    f"references[{question}] = {answer} is outside the {scores.shape[1]} option scores of its question"
                )
            is_answer = np.arange(scores.shape[1])[None, :] == answer
            correct.append(_best_target_rank(scores, is_answer, tie_break)[0] == 0)
        return {"accuracy": float(np.mean(correct))}
