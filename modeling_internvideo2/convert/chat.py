"""Strict conversion of the released InternVideo2-Chat checkpoints (InternVideo2-Chat-8B, -HD; spec §7.2) to
`InternVideo2ChatForConditionalGeneration`.

Released layout: `vision_encoder.*` (bare `ls1`/`ls2`) + `vision_layernorm.*`, `query_tokens` + `extra_query_tokens`,
`qformer.bert.*` (BLIP-2 naming), `project_up.*` (→ `language_projection`), `project_down.*` (only used by the
disabled vision-regression loss: dropped), and the LLM either plain (`lm.*`) or with unmerged peft-0.5 LoRA
(`lm.base_model.model.*` with `.lora_A.default.weight` / `.lora_B.default.weight` beside each base weight).
"""

import re

import torch

from ..configuration_chat import InternVideo2ChatConfig
from ..modeling_chat import InternVideo2ChatForConditionalGeneration, official_lora_config
from .checkpoint_io import (
    CheckpointConversionError,
    ConversionReport,
    RenameRule,
    check_against_model,
    load_converted_model,
    rename_strict,
    unwrap_state_dict,
)
from .vision import split_fused_qkv, vision_rename_rules

UNUSED_HEAD = "project_down: only used by the disabled vision-regression loss"
BUFFER = "position_ids buffer (rebuilt by the model)"
LORA_MODES = ("merge", "adapter")


def qformer_rename_rules(prefix: str = "qformer.bert.", target_prefix: str = "qformer.") -> list[RenameRule]:
    """VideoChat2 / BLIP-2 Q-Former names → `InternVideo2QFormerModel` (InstructBLIP) names."""
    p, t = re.escape(prefix), target_prefix
    layer = rf"{p}encoder\.layer\.(\d+)\."
    return [
        RenameRule(rf"{p}embeddings\.(word_embeddings|position_embeddings)\.weight", rf"{t}embeddings.\1.weight"),
        RenameRule(rf"{p}embeddings\.LayerNorm\.(weight|bias)", rf"{t}embeddings.layernorm.\1"),
        RenameRule(rf"{p}embeddings\.position_ids", None, BUFFER),
        RenameRule(
            rf"{layer}(attention|crossattention)\.self\.(query|key|value)\.(weight|bias)",
            rf"{t}encoder.layer.\1.\2.attention.\3.\4",
        ),
        RenameRule(
            rf"{layer}(attention|crossattention)\.output\.(dense|LayerNorm)\.(weight|bias)",
            rf"{t}encoder.layer.\1.\2.output.\3.\4",
        ),
        RenameRule(
            rf"{layer}(intermediate|intermediate_query|output|output_query)\.(dense|LayerNorm)\.(weight|bias)",
            rf"{t}encoder.layer.\1.\2.\3.\4",
        ),
    ]


def _split_lora(llm: dict[str, torch.Tensor], source: str):
    """`{base key: weight}` and `{base key: (A, B)}` from LLM keys with the `lm.`/`lm.base_model.model.` prefix cut."""
    base, pairs = {}, {}
    for key, tensor in llm.items():
        match = re.fullmatch(r"(.*)\.lora_([AB])\.default\.weight", key)
        if match:
            pairs.setdefault(match.group(1) + ".weight", {})[match.group(2)] = tensor
        else:
            base[key] = tensor
    for key, pair in pairs.items():
        if key not in base or set(pair) != {"A", "B"}:
            raise CheckpointConversionError(f"{source}: LoRA pair of {key} is incomplete (needs base, lora_A, lora_B)")
    return base, {k: (v["A"], v["B"]) for k, v in pairs.items()}


def convert_chat_state_dict(
    checkpoint: dict,
    config: InternVideo2ChatConfig,
    lora: str = "merge",
    lora_alpha: float = 32.0,
    source: str = "checkpoint",
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], ConversionReport]:
    """Released chat state dict → (our state dict, peft adapter state dict, report). Works on meta tensors.

    `lora="merge"` folds LoRA into the base weights (`W + lora_alpha / r · B·A`) and returns an empty adapter;
    `lora="adapter"` keeps the base weights and returns the LoRA factors named for
    `peft.set_peft_model_state_dict` on a model wrapped with `official_lora_config()`. Any unknown key, incomplete
    LoRA pair or (against the model) missing / mis-shaped key raises `CheckpointConversionError`."""
    if lora not in LORA_MODES:
        raise ValueError(f"lora must be one of {LORA_MODES}, got {lora!r}")
    official = unwrap_state_dict(checkpoint, source)
    llm_prefix = "lm.base_model.model." if any(k.startswith("lm.base_model.model.") for k in official) else "lm."
    llm = {k[len(llm_prefix):]: v for k, v in official.items() if k.startswith(llm_prefix)}
    rest = {k: v for k, v in official.items() if not k.startswith("lm.")}
    if len(llm) + len(rest) != len(official):
        stray = sorted(k for k in official if k.startswith("lm.") and not k.startswith(llm_prefix))
        raise CheckpointConversionError(f"{source}: LLM keys outside {llm_prefix!r}: {stray[:5]}")

    if "query_tokens" not in rest:
        raise CheckpointConversionError(f"{source}: no query_tokens: not an InternVideo2-Chat checkpoint")
    queries = [rest.pop("query_tokens")] + ([rest.pop("extra_query_tokens")] if "extra_query_tokens" in rest else [])
    rules = vision_rename_rules("vision_encoder.", "vision_model.") + qformer_rename_rules() + [
        RenameRule(r"project_up\.(weight|bias)", r"language_projection.\1"),
        RenameRule(r"project_down\.(weight|bias)", None, UNUSED_HEAD),
    ]
    converted, report = rename_strict(split_fused_qkv(rest), rules, source)
    converted["query_tokens"] = torch.cat(queries, dim=1)
    report.mapped["query_tokens"] = report.mapped["extra_query_tokens"] = "query_tokens"

    base, pairs = _split_lora(llm, source)
    adapter = {}
    for key, weight in base.items():
        new_key = f"language_model.{key}"
        report.mapped[llm_prefix + key] = new_key
        if key in pairs:
            lora_a, lora_b = pairs[key]
            stem = key[: -len(".weight")]
            report.mapped[f"{llm_prefix}{stem}.lora_A.default.weight"] = new_key
            report.mapped[f"{llm_prefix}{stem}.lora_B.default.weight"] = new_key
            if lora == "merge":
                scaling = lora_alpha / lora_a.shape[0]
                weight = weight + scaling * (lora_b.to(torch.float32) @ lora_a.to(torch.float32)).to(weight.dtype)
            else:
                adapter[f"base_model.model.language_model.{stem}.lora_A.weight"] = lora_a
                adapter[f"base_model.model.language_model.{stem}.lora_B.weight"] = lora_b
        converted[new_key] = weight
    return converted, adapter, report


def convert_chat_checkpoint(
    checkpoint: dict,
    config: InternVideo2ChatConfig,
    lora: str = "merge",
    lora_alpha: float = 32.0,
    source: str = "checkpoint",
):
    """Build the model and load the converted weights strictly. With `lora="adapter"` the model comes back wrapped
    as a peft `PeftModel` (official LoRA settings, adapter loaded, not merged); otherwise the plain merged model."""
    converted, adapter, report = convert_chat_state_dict(checkpoint, config, lora, lora_alpha, source)
    model = load_converted_model(InternVideo2ChatForConditionalGeneration, config, converted, source)
    if lora == "adapter" and adapter:
        from peft import get_peft_model, set_peft_model_state_dict

        rank = next(t for k, t in adapter.items() if k.endswith("lora_A.weight")).shape[0]
        model = get_peft_model(model, official_lora_config(r=rank, lora_alpha=lora_alpha))
        result = set_peft_model_state_dict(model, adapter)
        if result.unexpected_keys:
            raise CheckpointConversionError(f"{source}: adapter keys the LoRA model lacks: {result.unexpected_keys[:5]}")
        model.eval()
    return model, report


def check_chat_keys_on_meta(converted: dict[str, torch.Tensor], config: InternVideo2ChatConfig, source: str = "checkpoint"):
    """Strict key and shape check of a converted state dict against a meta-device model (no memory is allocated)."""
    with torch.device("meta"):
        model = InternVideo2ChatForConditionalGeneration(config)
    check_against_model(converted, model, source)


__all__ = [
    "convert_chat_state_dict",
    "convert_chat_checkpoint",
    "check_chat_keys_on_meta",
    "qformer_rename_rules",
    "LORA_MODES",
]
