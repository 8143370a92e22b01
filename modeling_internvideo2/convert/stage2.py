"""Strict conversion of the released Stage-2 checkpoints (`InternVideo2-stage2_1b-224p-f4.pt`, bf16 plain dict;
`internvideo2-s2_6b-224p-f4_with_audio_encoder.pt`, fp32 with an EasyDict config) to `InternVideo2Model`.

Each tower goes through its own strict converter; the heads are renamed here. Training-only tensors of the vision
tower (distillation decoders) are dropped and listed; the MLM head is kept (Stage-2 training needs it).
"""

import copy
import re

import torch

from ..configuration_audio import InternVideo2AudioConfig
from ..configuration_internvideo2 import InternVideo2Config
from ..configuration_text import InternVideo2TextConfig
from ..modeling_internvideo2 import InternVideo2Model
from .audio import convert_beats_state_dict
from .checkpoint_io import ConversionReport, RenameRule, load_converted_model, rename_strict, unwrap_state_dict
from .text import convert_text_state_dict
from .vision import _strip_module_prefix, convert_vision_state_dict

_TOWERS = ("vision_encoder.", "text_encoder.", "audio_encoder.")
_HEAD_RULES = [
    RenameRule(r"vision_proj\.(weight|bias)", r"vision_projection.\1"),
    RenameRule(r"text_proj\.(weight|bias)", r"text_projection.\1"),
    RenameRule(r"audio_proj\.(weight|bias)", r"audio_projection.\1"),
    RenameRule(r"itm_head\.(weight|bias)", r"itm_head.\1"),
    RenameRule(r"avtm_head\.(weight|bias)", r"audio_visual_itm_head.\1"),
    RenameRule(r"av_fusion\.(weight|bias)", r"audio_visual_fusion.\1"),
    RenameRule(r"av_concat_(vision|audio)_proj\.0\.(weight|bias)", r"\1_memory_projection.dense.\2"),
    RenameRule(r"av_concat_(vision|audio)_proj\.1\.(weight|bias)", r"\1_memory_projection.layer_norm.\2"),
    RenameRule(r"temp", "temperature"),
]


def infer_text_config(official: dict[str, torch.Tensor], num_attention_heads: int | None = None) -> InternVideo2TextConfig:
    """Read the BERT geometry from shapes; heads default to hidden/64 (BERT convention: 16 for BERT-large)."""
    p = "text_encoder.bert." if "text_encoder.bert.embeddings.word_embeddings.weight" in official else "text_encoder."
    vocab_size, hidden_size = official[p + "embeddings.word_embeddings.weight"].shape
    layers = {int(m.group(1)) for k in official if (m := re.match(rf"{re.escape(p)}encoder\.layer\.(\d+)\.", k))}
    fusion = [i for i in layers if p + f"encoder.layer.{i}.crossattention.self.key.weight" in official]
    if not fusion:
        raise ValueError("text encoder has no cross-attention layers: not an InternVideo2 Stage-2 checkpoint")
    if num_attention_heads is None and hidden_size % 64:
        raise ValueError(f"text hidden size {hidden_size} is not a BERT size: pass text_num_attention_heads")
    return InternVideo2TextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=max(layers) + 1,
        num_attention_heads=num_attention_heads or hidden_size // 64,
        intermediate_size=official[p + "encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=official[p + "embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=official[p + "embeddings.token_type_embeddings.weight"].shape[0],
        fusion_layer=min(fusion),
        encoder_width=official[p + f"encoder.layer.{min(fusion)}.crossattention.self.key.weight"].shape[1],
    )


def infer_stage2_config(
    official: dict[str, torch.Tensor],
    text_config: InternVideo2TextConfig | None = None,
    audio_config: InternVideo2AudioConfig | None = None,
    text_num_attention_heads: int | None = None,
    **vision_overrides,
) -> InternVideo2Config:
    """Config of an official Stage-2 state dict. Audio towers default to the released BEATs_iter3 geometry."""
    vision_keys = {k: v for k, v in official.items() if k.startswith("vision_encoder.")}
    _, vision_config, _ = convert_vision_state_dict(
        {k: torch.empty(v.shape, device="meta") for k, v in vision_keys.items()}, **vision_overrides
    )
    has_audio = any(k.startswith("audio_encoder.") for k in official)
    memory = official.get("av_concat_vision_proj.0.weight")
    return InternVideo2Config(
        vision_config=vision_config,
        text_config=text_config or infer_text_config(official, text_num_attention_heads),
        audio_config=(audio_config or InternVideo2AudioConfig()) if has_audio else None,
        projection_dim=official["vision_proj.weight"].shape[0],
        memory_projection_dim=memory.shape[0] if memory is not None else None,
        temperature=float(official["temp"]) if "temp" in official and official["temp"].device.type != "meta" else 0.07,
    )


def convert_stage2_state_dict(
    checkpoint: dict, config: InternVideo2Config | None = None, source: str = "checkpoint", **overrides
) -> tuple[dict[str, torch.Tensor], InternVideo2Config, ConversionReport]:
    """Official Stage-2 dict → (our state dict, config, report). Works on meta tensors.

    `overrides`: `text_config`, `audio_config`, `text_num_attention_heads`, and vision options of `convert_vision_state_dict` (`num_frames` to
    interpolate the position table, `num_attention_heads` for non-released widths, ...)."""
    official = _strip_module_prefix(unwrap_state_dict(checkpoint, source))
    if config is None:
        config = infer_stage2_config(official, **overrides)
    vision_overrides = {
        k: v for k, v in overrides.items() if k not in ("text_config", "audio_config", "text_num_attention_heads")
    }

    vision_keys = {k: v for k, v in official.items() if k.startswith("vision_encoder.")}
    vision, _, report = convert_vision_state_dict(
        vision_keys, copy.deepcopy(config.vision_config), source, **vision_overrides
    )
    converted = {f"vision_model.{k}": v for k, v in vision.items()}
    text = convert_text_state_dict(official, config.text_config, with_mlm_head=True)
    converted.update({f"text_model.{k}": v for k, v in text.items()})
    report.dropped.setdefault("rebuilt by the model (BERT position_ids buffer)", []).extend(
        k for k in official if k.endswith("embeddings.position_ids")
    )
    if config.audio_config is not None:
        audio = convert_beats_state_dict(official, config.audio_config, prefix="audio_encoder.")
        converted.update({f"audio_model.{k}": v for k, v in audio.items()})

    heads = {k: v for k, v in official.items() if not k.startswith(_TOWERS)}
    renamed, head_report = rename_strict(heads, _HEAD_RULES, source)
    converted.update(renamed)
    report.mapped.update(head_report.mapped)
    return converted, config, report


def convert_stage2_checkpoint(
    checkpoint: dict, config: InternVideo2Config | None = None, source: str = "checkpoint", **overrides
) -> tuple[InternVideo2Model, ConversionReport]:
    """Build `InternVideo2Model` and load the converted weights strictly (every key mapped, nothing missing)."""
    converted, config, report = convert_stage2_state_dict(checkpoint, config, source, **overrides)
    return load_converted_model(InternVideo2Model, config, converted, source), report
