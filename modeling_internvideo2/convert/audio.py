"""
Strict conversion of official BEATs checkpoints (the InternVideo2-6B audio encoder) to [`InternVideo2AudioModel`].

Accepted inputs:
* a BEATs checkpoint `{"cfg": dict, "model": state_dict}` such as InternVideo2's `beats.pth`;
* the `audio_encoder.*` part of an InternVideo2-6B Stage-2 state dict (use `prefix="audio_encoder."` together with
  `InternVideo2AudioConfig()`, whose defaults are the released configuration).

The positional convolution may be stored weight-normed (`pos_conv.0.weight_g` / `weight_v`, or the newer
`pos_conv.0.parametrizations.weight.original0` / `original1`) or as a plain `pos_conv.0.weight` (checkpoints saved
with weight norm removed); the plain weight is factorised into magnitude and direction so the converted model keeps
the weight-norm parametrization. BEATs stores its single relative position table under every layer's key; the copies
must be identical and become the encoder's one `relative_position_bias` table.
"""

import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from ..configuration_audio import InternVideo2AudioConfig
from ..modeling_audio import InternVideo2AudioModel
from .checkpoint_io import CheckpointConversionError, load_checkpoint


OFFICIAL_AUDIO_PREFIX = "audio_encoder."


# Defaults of the official `BEATsConfig`; a key missing from a checkpoint's cfg takes these values there.
_BEATS_CFG_DEFAULTS = {
    "input_patch_size": -1,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 1.0,
    "layer_norm_first": False,
    "deep_norm": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "finetuned_model": False,
    "predictor_dropout": 0.1,
    "predictor_class": 527,
}

_BEATS_CFG_TO_CONFIG = {
    "input_patch_size": "patch_size",
    "embed_dim": "patch_embedding_dim",
    "conv_bias": "patch_embedding_bias",
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
    "activation_fn": "hidden_act",
    "layer_wise_gradient_decay_ratio": "layer_wise_gradient_decay_ratio",
    "layer_norm_first": "layer_norm_first",
    "deep_norm": "deep_norm",
    "dropout": "hidden_dropout",
    "attention_dropout": "attention_dropout",
    "activation_dropout": "activation_dropout",
    "encoder_layerdrop": "layerdrop",
    "dropout_input": "input_dropout",
    "conv_pos": "num_conv_pos_embeddings",
    "conv_pos_groups": "num_conv_pos_embedding_groups",
    "relative_position_embedding": "use_relative_position_bias",
    "num_buckets": "num_buckets",
    "max_distance": "max_bucket_distance",
    "gru_rel_pos": "use_gated_relative_position_bias",
}

# the classifier head of fine-tuned BEATs; InternVideo2 uses pre-trained (`finetuned_model=False`) checkpoints only
_BEATS_CLASSIFIER_CFG_KEYS = {"finetuned_model", "predictor_dropout", "predictor_class"}

# BEATs activation names -> transformers ACT2FN keys ("gelu_accurate"/"gelu_fast" are the tanh approximation)
_BEATS_ACTIVATIONS = {
    "gelu": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
    "gelu_accurate": "gelu_new",
    "gelu_fast": "gelu_new",
}

_POS_CONV_MAGNITUDE = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
_POS_CONV_DIRECTION = "encoder.pos_conv_embed.conv.parametrizations.weight.original1"
_RELATIVE_BIAS_TABLE = "encoder.relative_position_bias.embedding.weight"
_OFFICIAL_RELATIVE_BIAS = re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight$")
_OFFICIAL_PLAIN_POS_CONV = "encoder.pos_conv.0.weight"

# official name pattern -> InternVideo2 name template
_KEY_RENAMES = [
    (re.compile(r"^patch_embedding\.(weight|bias)$"), r"embeddings.patch_embedding.\1"),
    (re.compile(r"^layer_norm\.(weight|bias)$"), r"embeddings.layer_norm.\1"),
    (re.compile(r"^post_extract_proj\.(weight|bias)$"), r"embeddings.projection.\1"),
    (re.compile(r"^encoder\.pos_conv\.0\.(?:weight_g|parametrizations\.weight\.original0)$"), _POS_CONV_MAGNITUDE),
    (re.compile(r"^encoder\.pos_conv\.0\.(?:weight_v|parametrizations\.weight\.original1)$"), _POS_CONV_DIRECTION),
    (re.compile(r"^encoder\.pos_conv\.0\.bias$"), "encoder.pos_conv_embed.conv.bias"),
    (re.compile(r"^encoder\.layer_norm\.(weight|bias)$"), r"encoder.layer_norm.\1"),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)$"),
        r"encoder.layers.\1.self_attn.\2.\3",
    ),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)$"),
        r"encoder.layers.\1.self_attn.relative_position_gate.proj.\2",
    ),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.grep_a$"),
        r"encoder.layers.\1.self_attn.relative_position_gate.scale",
    ),
    (
        re.compile(r"^encoder\.layers\.(\d+)\.(self_attn_layer_norm|final_layer_norm)\.(weight|bias)$"),
        r"encoder.layers.\1.\2.\3",
    ),
    (re.compile(r"^encoder\.layers\.(\d+)\.(fc1|fc2)\.(weight|bias)$"), r"encoder.layers.\1.mlp.\2.\3"),
]


def audio_config_from_beats_cfg(beats_cfg: Mapping[str, Any], **overrides) -> InternVideo2AudioConfig:
    """
    Build an [`InternVideo2AudioConfig`] from an official BEATs `cfg` dict (missing keys take the official
    `BEATsConfig` defaults). `overrides` are passed to the config as is (e.g. `num_mel_bins`, which BEATs does not
    store; InternVideo2 uses 64).
    """
    if not isinstance(beats_cfg, Mapping):
        raise TypeError(f"beats_cfg must be a mapping of BEATs config values, got {type(beats_cfg).__name__}")
    unknown = sorted(set(beats_cfg) - set(_BEATS_CFG_DEFAULTS))
    if unknown:
        raise ValueError(f"beats_cfg has keys that BEATs does not define: {unknown}")
    cfg = {**_BEATS_CFG_DEFAULTS, **beats_cfg}
    if cfg["finetuned_model"]:
        raise ValueError(
            "beats_cfg describes a fine-tuned BEATs classifier (finetuned_model=True), which is not supported"
        )
    if cfg["input_patch_size"] <= 0:
        raise ValueError(f"beats_cfg['input_patch_size'] must be a positive patch size, got {cfg['input_patch_size']}")
    if cfg["activation_fn"] not in _BEATS_ACTIVATIONS:
        raise ValueError(
            f"beats_cfg['activation_fn']={cfg['activation_fn']!r} is not supported; "
            f"use one of {sorted(_BEATS_ACTIVATIONS)}"
        )
    values = {ours: cfg[theirs] for theirs, ours in _BEATS_CFG_TO_CONFIG.items()}
    values["hidden_act"] = _BEATS_ACTIVATIONS[cfg["activation_fn"]]
    return InternVideo2AudioConfig(**{**values, **overrides})


def _expected_shapes(config: InternVideo2AudioConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = InternVideo2AudioModel(config)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def convert_beats_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: InternVideo2AudioConfig, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """
    Rename an official BEATs state dict to [`InternVideo2AudioModel`] names, strictly.

    Only keys starting with `prefix` are read (`OFFICIAL_AUDIO_PREFIX` for an InternVideo2-6B Stage-2 state dict).
    Raises `CheckpointConversionError` (a `ValueError`) listing every unknown key, missing key and shape mismatch.
    Tensors keep their dtype.
    """
    expected = _expected_shapes(config)
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    shared_table_copies: dict[int, torch.Tensor] = {}
    plain_pos_conv_weight = None

    for key, tensor in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        relative_bias = _OFFICIAL_RELATIVE_BIAS.match(name)
        if relative_bias is not None:
            shared_table_copies[int(relative_bias.group(1))] = tensor
            continue
        if name == _OFFICIAL_PLAIN_POS_CONV:
            plain_pos_conv_weight = tensor
            continue
        for pattern, template in _KEY_RENAMES:
            if pattern.match(name):
                converted[pattern.sub(template, name)] = tensor
                break
        else:
            unknown.append(key)

    if plain_pos_conv_weight is not None:
        if _POS_CONV_MAGNITUDE in converted or _POS_CONV_DIRECTION in converted:
            raise CheckpointConversionError(
                f"state_dict has both {prefix}{_OFFICIAL_PLAIN_POS_CONV} and its weight-norm factors; "
                "keep only one form"
            )
        # w = g * v / ||v|| with v = w and g = ||w|| (norm over all dims but the kernel axis) reproduces w exactly
        converted[_POS_CONV_DIRECTION] = plain_pos_conv_weight
        converted[_POS_CONV_MAGNITUDE] = torch.norm_except_dim(plain_pos_conv_weight, 2, 2)

    if shared_table_copies:
        if 0 not in shared_table_copies:
            raise CheckpointConversionError(
                f"state_dict has relative_attention_bias copies for layers {sorted(shared_table_copies)} but not the "
                f"owning layer 0 ({prefix}encoder.layers.0.self_attn.relative_attention_bias.weight)"
            )
        table = shared_table_copies[0]
        # meta tensors (shape-only dry runs) carry no values to compare
        not_shared = [
            i
            for i, copy in shared_table_copies.items()
            if not (copy.is_meta or table.is_meta) and not torch.equal(copy, table)
        ]
        if not_shared:
            raise CheckpointConversionError(
                f"relative_attention_bias of layers {sorted(not_shared)} differs from layer 0; BEATs shares one table"
            )
        converted[_RELATIVE_BIAS_TABLE] = table

    unknown += sorted(prefix + name for name in set(converted) - set(expected))
    missing = sorted(set(expected) - set(converted))
    mismatched = [
        f"{name}: {tuple(converted[name].shape)} vs expected {tuple(shape)}"
        for name, shape in expected.items()
        if name in converted and converted[name].shape != shape
    ]
    if unknown or missing or mismatched:
        raise CheckpointConversionError(
            "BEATs state dict does not match the InternVideo2 audio config: "
            f"unknown keys {unknown}; missing keys {missing}; shape mismatches {mismatched}"
        )
    return {name: converted[name] for name in expected}


def convert_beats_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, Any], **config_overrides
) -> InternVideo2AudioModel:
    """
    Load an official BEATs checkpoint (`{"cfg": ..., "model": ...}`, e.g. InternVideo2's `beats.pth`; a path or the
    loaded dict) into an [`InternVideo2AudioModel`] in eval mode. Files are read without executing pickled code
    (`checkpoint_io.load_checkpoint`). `config_overrides` go to [`audio_config_from_beats_cfg`].
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = load_checkpoint(checkpoint)
    if not isinstance(checkpoint, Mapping) or not {"cfg", "model"} <= set(checkpoint):
        raise CheckpointConversionError("not a BEATs checkpoint: expected a dict with 'cfg' and 'model' entries")
    config = audio_config_from_beats_cfg(checkpoint["cfg"], **config_overrides)
    model = InternVideo2AudioModel(config)
    model.load_state_dict(convert_beats_state_dict(checkpoint["model"], config), strict=True)
    return model.eval()


__all__ = [
    "OFFICIAL_AUDIO_PREFIX",
    "audio_config_from_beats_cfg",
    "convert_beats_checkpoint",
    "convert_beats_state_dict",
]
