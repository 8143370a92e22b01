"""Collators turning rows of `InternVideo2MediaTransform` into model batches, one per training stage.

- `InternVideo2VideoTextCollator` (Stage 2, CLIP, retrieval evaluation): media tensors + tokenized captions.
- `InternVideo2VideoCollator` (Stage 1, fine-tuning): media tensors + labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _stack(rows: Sequence[dict], key: str) -> torch.Tensor:
    values = [row[key] for row in rows]
    shapes = {tuple(value.shape) for value in values}
    if len(shapes) != 1:
        raise ValueError(f"cannot batch {key!r} of different shapes {sorted(shapes)}; use a fixed size and frame count")
    return torch.stack(values)


def _check_rows(rows) -> None:
    if not isinstance(rows, Sequence) or not rows:
        raise ValueError("the collator got an empty batch (every sample of it was unreadable, or the batch size is 0)")
    missing = [index for index, row in enumerate(rows) if row.get("pixel_values_videos") is None]
    if missing:
        raise ValueError(f"rows {missing} have no 'pixel_values_videos'; set InternVideo2MediaTransform on the dataset")


def _media_type(rows: Sequence[dict]) -> str:
    media_types = sorted({row.get("media_type") or "video" for row in rows})
    if len(media_types) != 1:
        raise ValueError(
            f"a batch mixes media types {media_types}; batch each media type separately "
            "(InternVideo2ModalityBatchSampler)"
        )
    return media_types[0]


class InternVideo2VideoTextCollator:
    """Batches video-text rows (Stage 2, CLIP, retrieval evaluation). Every batch holds one media type.

    Output keys: `pixel_values_videos` `(B, T, 3, H, W)` for videos and audio-videos, or `pixel_values`
    `(B, 3, H, W)` for images; `input_ids` / `attention_mask` of the chosen captions; for audio-videos
    `input_features` / `audio_attention_mask` and `audio_visual_input_ids` / `audio_visual_attention_mask` (the
    audio-visual captions, or the captions when a row has none); `sample_ids` `(B,)`; `media_type` (a string);
    `captions` (every caption of every row, what retrieval evaluation queries with) unless `return_captions=False`.

    Args:
        tokenizer: an `InternVideo2Tokenizer` (Stage 2) or any Hugging Face tokenizer (CLIP text towers).
        max_length: captions are padded and truncated to this many tokens (official: 32 for 1B, 40 for 6B).
        return_captions: return the raw `captions` lists.
    """

    def __init__(self, tokenizer, max_length: int = 32, return_captions: bool = True):
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.return_captions = return_captions

    def _tokenize(self, texts: list[str], prefix: str) -> dict[str, torch.Tensor]:
        encoding = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {f"{prefix}input_ids": encoding["input_ids"], f"{prefix}attention_mask": encoding["attention_mask"]}

    def __call__(self, rows: Sequence[dict]) -> dict:
        _check_rows(rows)
        media_type = _media_type(rows)
        missing = [row["sample_id"] for row in rows if not row.get("caption")]
        if missing:
            raise ValueError(f"samples {missing} have no caption")
        batch = {}
        if media_type == "image":
            batch["pixel_values"] = _stack(rows, "pixel_values_videos")[:, 0]
        else:
            batch["pixel_values_videos"] = _stack(rows, "pixel_values_videos")
        batch.update(self._tokenize([row["caption"] for row in rows], ""))
        if media_type == "audio_video":
            batch["input_features"] = _stack(rows, "input_features")
            batch["audio_attention_mask"] = _stack(rows, "audio_attention_mask")
            texts = [row.get("audio_visual_caption") or row["caption"] for row in rows]
            batch.update(self._tokenize(texts, "audio_visual_"))
        batch["sample_ids"] = torch.tensor([int(row["sample_id"]) for row in rows], dtype=torch.long)
        batch["media_type"] = media_type
        if self.return_captions:
            batch["captions"] = [list(row.get("captions") or [row["caption"]]) for row in rows]
        return batch


class InternVideo2VideoCollator:
    """Batches video rows for Stage 1 (masked distillation) and fine-tuning (classification).

    Output keys: `pixel_values_videos` (`(B, T, 3, H, W)`, or `(B, views, T, 3, H, W)` for multi-view test
    processors), `labels` `(B,)` when every row has a label, `sample_ids` `(B,)`.
    """

    def __call__(self, rows: Sequence[dict]) -> dict:
        _check_rows(rows)
        batch = {"pixel_values_videos": _stack(rows, "pixel_values_videos")}
        labels = [row.get("label") for row in rows]
        if all(label is not None for label in labels):
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
        elif any(label is not None for label in labels):
            raise ValueError("some rows of the batch have a label and others do not")
        batch["sample_ids"] = torch.tensor([int(row["sample_id"]) for row in rows], dtype=torch.long)
        return batch


__all__ = ["InternVideo2VideoCollator", "InternVideo2VideoTextCollator"]
