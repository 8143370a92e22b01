"""Strict conversion of the official Stage-2 text encoder keys (`text_encoder.bert.*`, `text_encoder.cls.*`).

The official `xbert.BertForMaskedLM` already uses Hugging Face BERT parameter names, so the conversion is a prefix
change plus bookkeeping: the `position_ids` buffer is dropped (it is rebuilt by the model), the MLM head is dropped
when converting for the bare encoder, the tied decoder tensors are checked against the tensors they are tied to, and
every key and shape is compared with the target model so that nothing is silently skipped.
"""

import re
from collections.abc import Mapping

import torch

from ..configuration_text import InternVideo2TextConfig
from ..modeling_text import InternVideo2TextForMaskedLM, InternVideo2TextModel


OFFICIAL_TEXT_PREFIX = "text_encoder."

# `bert.` is present in pretraining checkpoints (`BertForMaskedLM`); eval-time `BertModel` exports omit it.
_ENCODER_KEY = re.compile(r"^(?:bert\.)?((?:embeddings|encoder)\..+)$")
_MLM_HEAD_KEY = re.compile(r"^cls\.predictions\..+$")
_DROPPED_BUFFERS = {"embeddings.position_ids"}
# Tied tensors of the MLM head: our key -> key of the tensor it is tied to.
_TIED_KEYS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


def _expected_shapes(config: InternVideo2TextConfig, with_mlm_head: bool) -> dict[str, torch.Size]:
    model_class = InternVideo2TextForMaskedLM if with_mlm_head else InternVideo2TextModel
    with torch.device("meta"):
        model = model_class(config)
    return {key: tensor.shape for key, tensor in model.state_dict().items()}


def convert_text_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    config: InternVideo2TextConfig,
    *,
    with_mlm_head: bool = True,
    prefix: str = OFFICIAL_TEXT_PREFIX,
) -> dict[str, torch.Tensor]:
    """
    Convert the text part of an official Stage-2 state dict.

    Args:
        state_dict: official state dict; only keys starting with `prefix` are read, so the whole Stage-2 checkpoint
            can be passed.
        config: configuration of the target model (sizes, `fusion_layer`, `encoder_width`).
        with_mlm_head: `True` -> keys of [`InternVideo2TextForMaskedLM`] (`bert.*`, `cls.*`); `False` -> keys of
            [`InternVideo2TextModel`] (the training-only MLM head is dropped).
        prefix: prefix of the text encoder in `state_dict`.

    Returns:
        A state dict that loads with `load_state_dict(..., strict=True)` into the target model.

    Raises:
        ValueError: listing the unknown keys, missing keys, shape mismatches, or tied tensors that differ.
    """
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for official_key, tensor in state_dict.items():
        if not official_key.startswith(prefix):
            continue
        key = official_key[len(prefix) :]
        if encoder_match := _ENCODER_KEY.match(key):
            body = encoder_match.group(1)
            if body not in _DROPPED_BUFFERS:
                converted[f"bert.{body}" if with_mlm_head else body] = tensor
        elif _MLM_HEAD_KEY.match(key):
            if with_mlm_head:
                converted[key] = tensor
        else:
            unknown.append(official_key)
    if not converted and not unknown:
        raise ValueError(f"state_dict has no text encoder keys (none starts with {prefix!r}).")

    if with_mlm_head:
        for tied_key, source_key in _TIED_KEYS.items():
            if source_key not in converted:
                continue
            if tied_key not in converted:
                converted[tied_key] = converted[source_key]
            elif (
                converted[tied_key] is not converted[source_key]
                and not converted[tied_key].is_meta  # shapes-only conversion: values cannot be compared
                and not torch.equal(converted[tied_key], converted[source_key])
            ):
                raise ValueError(f"{prefix}{tied_key} differs from the tensor it is tied to, {prefix}{source_key}.")

    expected = _expected_shapes(config, with_mlm_head)
    unknown += [f"{prefix}{key}" for key in converted if key not in expected]
    missing = [key for key in expected if key not in converted]
    mismatched = [
        f"{key}: {tuple(converted[key].shape)} != {tuple(shape)}"
        for key, shape in expected.items()
        if key in converted and converted[key].shape != shape
    ]
    if unknown or missing or mismatched:
        raise ValueError(
            f"Official text encoder state dict does not match the config: unknown keys {unknown}, "
            f"missing keys {missing}, shape mismatches {mismatched}."
        )
    return {key: converted[key] for key in expected}


__all__ = ["OFFICIAL_TEXT_PREFIX", "convert_text_state_dict"]
