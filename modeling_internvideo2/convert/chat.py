"""Strict conversion of the released InternVideo2-Chat checkpoints (InternVideo2-Chat-8B, -HD; spec §7.2) to
`InternVideo2ChatForConditionalGeneration`.

Released layout: `vision_encoder.*` (bare `ls1`/`ls2`) + `vision_layernorm.*`, `query_tokens` + `extra_query_tokens`,
`qformer.bert.*` (BLIP-2 naming), `project_up.*` (→ `language_projection`), `project_down.*` (only used by the
disabled vision-regression loss: dropped), and the LLM either plain (`lm.*`) or with unmerged peft-0.5 LoRA
(`lm.base_model.model.*` with `.lora_A.default.weight` / `.lora_B.default.weight` beside each base weight).

The released files do not say how they were built, so `infer_chat_config` reads the geometry from tensor shapes; the
LLM's own config (e.g. Mistral-7B-Instruct-v0.3's `config.json`) must be given and is checked against the weights.
"""

import copy
import os
import re

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, PreTrainedConfig

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
from .vision import infer_vision_config, split_fused_qkv, vision_rename_rules

UNUSED_HEAD = "project_down: only used by the disabled vision-regression loss"
BUFFER = "position_ids buffer (rebuilt by the model)"
LORA_MODES = ("merge", "adapter")
# Head count of each released Q-Former width (bert-base-uncased); shapes cannot tell it.
QFORMER_HEADS_BY_WIDTH = {768: 12}
_QFORMER = "qformer.bert."


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


def _llm_prefix(official: dict) -> str:
    return "lm.base_model.model." if any(k.startswith("lm.base_model.model.") for k in official) else "lm."


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
    llm_prefix = _llm_prefix(official)
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
                # in float32, rounded once to the weight's dtype (the release stores bf16 weights, float32 LoRA)
                delta = lora_b.to(torch.float32) @ lora_a.to(torch.float32)
                weight = (weight.to(torch.float32) + scaling * delta).to(weight.dtype)
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


def load_llm_config(path: str | os.PathLike) -> PreTrainedConfig:
    """The causal LM's transformers config from a folder holding `config.json`, or from a `config.json` path."""
    path = os.fspath(path)
    file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"llm_config {path} is neither a config.json file nor a folder holding one")
    try:
        return AutoConfig.from_pretrained(file)
    except (ValueError, KeyError, OSError) as error:
        reason = " ".join(str(error).split()).split(". ")[0]
        raise ValueError(
            f"llm_config {file} is not a transformers model config ({reason}): pass the causal LM's own config.json, "
            "e.g. Mistral-7B-Instruct-v0.3's"
        ) from error


def infer_chat_config(
    checkpoint: dict,
    llm_config: PreTrainedConfig,
    source: str = "checkpoint",
    vision_num_attention_heads: int | None = None,
    qformer_num_attention_heads: int | None = None,
    media_token_id: int | None = None,
) -> InternVideo2ChatConfig:
    """The `InternVideo2ChatConfig` of a released chat checkpoint, read from tensor shapes (works on meta tensors).

    Vision tower: width, depth, MLP size, patch and tubelet size, image size and frames from the position tables,
    heads from the released preset of that width (`infer_vision_config`). Q-Former: width, depth, MLP size,
    vocabulary (with `[DEC]`), position table, cross-attention frequency (which layers hold `crossattention`), query
    and extra query counts. LLM: `llm_config` (shapes cannot tell heads, RoPE, norms); its `vocab_size`,
    `hidden_size` and `num_hidden_layers` must agree with the weights, and `project_up` must map the Q-Former width
    to it. Head counts of non-released widths must be passed. `media_token_id` defaults to one past the LLM
    vocabulary (the id `<VID_PLH>` gets when added to a tokenizer of that size)."""
    official = unwrap_state_dict(checkpoint, source)
    llm_prefix = _llm_prefix(official)
    embed_key = next(
        (k for k in official if k.startswith(llm_prefix) and k.endswith("embed_tokens.weight") and ".lora_" not in k),
        f"{llm_prefix}model.embed_tokens.weight",
    )
    required = [
        "vision_encoder.patch_embed.proj.weight",
        "vision_layernorm.weight",
        "query_tokens",
        f"{_QFORMER}embeddings.word_embeddings.weight",
        f"{_QFORMER}embeddings.position_embeddings.weight",
        "project_up.weight",
        embed_key,
    ]
    missing = [k for k in required if k not in official]
    if missing:
        raise CheckpointConversionError(
            f"{source} is not an InternVideo2-Chat checkpoint: no {', '.join(missing)}"
        )

    vision_heads = {"num_attention_heads": vision_num_attention_heads} if vision_num_attention_heads else {}
    vision_config = infer_vision_config(official, "vision_encoder.", **vision_heads)

    words = official[f"{_QFORMER}embeddings.word_embeddings.weight"]
    qformer_vocab, qformer_width = words.shape
    layers = _indices(official, rf"{re.escape(_QFORMER)}encoder\.layer\.(\d+)\.")
    cross = _indices(official, rf"{re.escape(_QFORMER)}encoder\.layer\.(\d+)\.crossattention\.")
    if not layers:
        raise CheckpointConversionError(f"{source}: no {_QFORMER}encoder.layer.* keys (Q-Former layers)")
    num_layers = max(layers) + 1
    frequency = cross[1] - cross[0] if len(cross) > 1 else num_layers
    if not cross or cross != list(range(0, num_layers, frequency)):
        raise CheckpointConversionError(
            f"{source}: Q-Former cross-attention in layers {cross} of {num_layers}, not every n-th layer from layer 0"
        )
    qformer_heads = qformer_num_attention_heads or QFORMER_HEADS_BY_WIDTH.get(qformer_width)
    if qformer_heads is None:
        raise ValueError(
            f"Q-Former width {qformer_width} is not a released width ({sorted(QFORMER_HEADS_BY_WIDTH)}): "
            "pass qformer_num_attention_heads"
        )
    intermediate_key = f"{_QFORMER}encoder.layer.0.intermediate_query.dense.weight"
    if intermediate_key not in official:
        raise CheckpointConversionError(f"{source}: no {intermediate_key} (the Q-Former's query feed-forward)")

    llm_vocab, llm_width = official[embed_key].shape
    llm_layers = _indices({k: v for k, v in official.items() if k.startswith(llm_prefix)}, r".*?\blayers\.(\d+)\.")
    found = {"vocab_size": llm_vocab, "hidden_size": llm_width, "num_hidden_layers": max(llm_layers, default=-1) + 1}
    disagreements = [
        f"{name} {getattr(llm_config, name, None)} != {value}"
        for name, value in found.items()
        if getattr(llm_config, name, None) != value
    ]
    if disagreements:
        raise ValueError(
            f"llm_config disagrees with the checkpoint's LLM weights ({embed_key} {tuple(official[embed_key].shape)},"
            f" {found['num_hidden_layers']} layers): {'; '.join(disagreements)}"
        )
    projection = tuple(official["project_up.weight"].shape)
    if projection != (llm_width, qformer_width):
        raise CheckpointConversionError(
            f"{source}: project_up.weight is {projection}, expected (LLM width {llm_width}, Q-Former width "
            f"{qformer_width})"
        )

    text_config = copy.deepcopy(llm_config)
    text_config.name_or_path = ""  # the local file it was read from says nothing about the converted model
    extra = official.get("extra_query_tokens")
    try:
        return InternVideo2ChatConfig(
            vision_config=vision_config,
            qformer_config=dict(
                vocab_size=qformer_vocab,
                hidden_size=qformer_width,
                num_hidden_layers=num_layers,
                num_attention_heads=qformer_heads,
                intermediate_size=official[intermediate_key].shape[0],
                max_position_embeddings=official[f"{_QFORMER}embeddings.position_embeddings.weight"].shape[0],
                cross_attention_frequency=frequency,
            ),
            text_config=text_config,
            num_query_tokens=official["query_tokens"].shape[1],
            num_extra_query_tokens=extra.shape[1] if extra is not None else 0,
            media_token_id=llm_vocab if media_token_id is None else media_token_id,
        )
    except (StrictDataclassError, ValueError) as error:  # the config's own validation, as one line
        raise ValueError(f"{source}: inferred chat config is invalid: {' '.join(str(error).split())}") from error


def _indices(state_dict: dict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by `pattern` at the start of the keys."""
    regex = re.compile(pattern)
    return sorted({int(match.group(1)) for key in state_dict if (match := regex.match(key))})


__all__ = [
    "infer_chat_config",
    "load_llm_config",
    "convert_chat_state_dict",
    "convert_chat_checkpoint",
    "check_chat_keys_on_meta",
    "qformer_rename_rules",
    "LORA_MODES",
    "QFORMER_HEADS_BY_WIDTH",
]
