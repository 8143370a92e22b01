"""Tokenizer of the InternVideo2 Stage-2 text encoder: BERT WordPiece with the official caption conventions."""

from collections.abc import Sequence

from tokenizers import Regex, normalizers, processors
from transformers import BatchEncoding, BertTokenizer


def caption_cleaner() -> normalizers.Normalizer:
    """
    The official caption cleaning (`dataset/utils.py::pre_text`) as a `tokenizers` normalizer: lowercase; delete
    `, . ' ! ? " ( ) * # : ; ~`; `-` and `/` become spaces; `<person>` becomes `person`; runs of two or more
    whitespace characters become one space; a trailing newline and surrounding spaces are stripped.
    """
    return normalizers.Sequence(
        [
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"""[,.'!?"()*#:;~]"""), ""),
            normalizers.Replace("-", " "),
            normalizers.Replace("/", " "),
            normalizers.Replace("<person>", "person"),
            normalizers.Replace(Regex(r"\s{2,}"), " "),
            normalizers.Replace(Regex(r"\n+\z"), ""),
            normalizers.Replace(Regex(r"\A +| +\z"), ""),
        ]
    )


class InternVideo2Tokenizer(BertTokenizer):
    r"""
    BERT (uncased WordPiece) tokenizer with the conventions of the official InternVideo2 Stage-2 code:

    - a single caption is encoded as `[CLS] tokens` with **no trailing `[SEP]`** (pairs stay `[CLS] A [SEP] B [SEP]`);
    - captions are cleaned like the official `pre_text` first (see [`caption_cleaner`]; `clean_captions=False`
      turns it off);
    - calls pad to `max_length` and truncate by default, like the official evaluation; `max_length` defaults to
      `model_max_length` (32, the MSR-VTT / Stage-2-1B length; the 6B model trained with 40);
    - returns `input_ids` and `attention_mask` only (the model always uses token type 0).

    Args:
        vocab (`str` or `dict[str, int]`):
            Path of a `vocab.txt` or the vocabulary itself (`bert-large-uncased`'s 30,522 entries for the released
            models).
        vocab_file (`str`, *optional*):
            Same as a path given as `vocab`.
        clean_captions (`bool`, *optional*, defaults to `True`):
            Apply the official caption cleaning before WordPiece.
        model_max_length (`int`, *optional*, defaults to 32):
            Default `max_length` of a call.
        kwargs:
            Other [`BertTokenizer`] arguments (`do_lower_case`, special tokens, ...).
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab: str | dict[str, int] | None = None,
        vocab_file: str | None = None,
        clean_captions: bool = True,
        model_max_length: int = 32,
        **kwargs,
    ):
        vocab = vocab if vocab is not None else vocab_file
        if vocab is None:
            raise ValueError("InternVideo2Tokenizer needs a vocabulary: pass vocab= (a vocab.txt path or a dict).")
        super().__init__(
            vocab=vocab, clean_captions=clean_captions, model_max_length=model_max_length, **kwargs
        )
        self.clean_captions = clean_captions
        if clean_captions:
            self._tokenizer.normalizer = normalizers.Sequence([caption_cleaner(), self._tokenizer.normalizer])
        cls_token, sep_token = str(self.cls_token), str(self.sep_token)
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls_token}:0 $A:0",
            pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
            special_tokens=[(cls_token, self.cls_token_id), (sep_token, self.sep_token_id)],
        )

    def clean_caption(self, text: str) -> str:
        """The caption as the official `pre_text` cleans it (the text WordPiece sees when `clean_captions=True`)."""
        return caption_cleaner().normalize_str(text)

    def _check_captions(self, text: str | Sequence[str]) -> None:
        captions = [text] if isinstance(text, str) else text
        if not isinstance(captions, Sequence) or not all(isinstance(caption, str) for caption in captions):
            raise TypeError(f"text must be a caption (str) or a list of captions, got {type(text).__name__}.")
        if len(captions) == 0:
            raise ValueError("text is an empty list; pass at least one caption.")
        # An unknown word is still a word: only the other special tokens count as empty.
        special_ids = set(self.all_special_ids) - {self.unk_token_id}
        for index, encoding in enumerate(self._tokenizer.encode_batch(list(captions), add_special_tokens=False)):
            if all(token_id in special_ids for token_id in encoding.ids):
                raise ValueError(
                    f"text[{index}] ({captions[index]!r}) has no word left after caption cleaning "
                    "(empty, punctuation or special tokens only)."
                )

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        *args,
        padding: bool | str = "max_length",
        truncation: bool | str = True,
        max_length: int | None = None,
        **kwargs,
    ) -> BatchEncoding:
        """Tokenize captions; by default padded to and truncated at `max_length` (`model_max_length` if `None`)."""
        if text is not None:
            self._check_captions(text)
        return super().__call__(text, *args, padding=padding, truncation=truncation, max_length=max_length, **kwargs)


__all__ = ["InternVideo2Tokenizer", "caption_cleaner"]
