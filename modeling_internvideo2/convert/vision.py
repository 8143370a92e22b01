"""Strict conversion of released InternVideo2 vision checkpoints to `InternVideo2VisionModel` /
`InternVideo2ForVideoClassification`.

Families handled (spec §7): Stage-1 pretrain (decoders dropped), fine-tuned classifiers (`model`/`module` nesting,
`backbone.`/`encoder.` prefixes, 8 or 16 frames), distilled S/B/L, the vision tower of Stage-2 checkpoints
(`vision_encoder.` prefix, other towers dropped), the chat vision tower (bare `ls1`/`ls2`, `vision_layernorm`).
"""

import copy
import re

import torch

from ..configuration_vision import VISION_PRESETS, InternVideo2VisionConfig
from ..modeling_vision import InternVideo2ForVideoClassification, InternVideo2VisionModel
from ..position_embeddings import interpolate_position_embeddings
from .checkpoint_io import ConversionReport, RenameRule, load_converted_model, rename_strict, unwrap_state_dict

TRAINING_ONLY = "training-only distillation head (decoders and their position tables)"
OTHER_TOWER = "not part of the vision tower (convert the full model with the stage2/chat converters)"
_OTHER_TOWER_PATTERN = (
    r"(text_encoder|vision_proj|text_proj|itm_head|audio_encoder|audio_proj|av_concat_audio_proj|"
    r"av_concat_vision_proj|av_fusion|avtm_head|qformer|project_up|project_down|lm)\..*|temp|query_tokens|"
    r"extra_query_tokens"
)
_HEADS_BY_WIDTH = {preset["hidden_size"]: preset["num_attention_heads"] for preset in VISION_PRESETS.values()}


def vision_rename_rules(prefix: str = "", target_prefix: str = "") -> list[RenameRule]:
    """Official vision key → our key, for keys under `prefix` (e.g. "vision_encoder."), written under `target_prefix`.

    Expects the fused `attn.qkv.weight` already split into `attn.{q,k,v}_proj.weight` (see `split_fused_qkv`)."""
    p, t = re.escape(prefix), target_prefix
    layer = rf"{p}blocks\.(\d+)\."
    return [
        RenameRule(rf"{p}patch_embed\.proj\.(weight|bias)", rf"{t}embeddings.patch_embedding.\1"),
        RenameRule(rf"{p}cls_token", rf"{t}embeddings.cls_token"),
        RenameRule(rf"{p}pos_embed", rf"{t}embeddings.position_embeddings"),
        RenameRule(rf"{p}img_pos_embed", rf"{t}embeddings.image_position_embeddings"),
        RenameRule(rf"{layer}norm1\.weight", rf"{t}encoder.layers.\1.layernorm_before.weight"),
        RenameRule(rf"{layer}norm2\.weight", rf"{t}encoder.layers.\1.layernorm_after.weight"),
        RenameRule(rf"{layer}attn\.([qkv])_proj\.weight", rf"{t}encoder.layers.\1.attention.\2_proj.weight"),
        RenameRule(rf"{layer}attn\.([qk])_norm\.weight", rf"{t}encoder.layers.\1.attention.\2_norm.weight"),
        RenameRule(rf"{layer}attn\.proj\.(weight|bias)", rf"{t}encoder.layers.\1.attention.o_proj.\2"),
        RenameRule(rf"{layer}ls([12])(?:\.gamma)?", rf"{t}encoder.layers.\1.lambda_\2"),
        RenameRule(rf"{layer}mlp\.(fc[12])\.(weight|bias)", rf"{t}encoder.layers.\1.mlp.\2.\3"),
        RenameRule(rf"{p}clip_projector\.norm1_([qkv])\.(weight|bias)", rf"{t}pooler.norm_\1.\2"),
        RenameRule(rf"{p}clip_projector\.cross_attn\.([qkv])\.weight", rf"{t}pooler.\1_proj.weight"),
        RenameRule(rf"{p}clip_projector\.cross_attn\.([qkv])_bias", rf"{t}pooler.\1_proj.bias"),
        RenameRule(rf"{p}clip_projector\.cross_attn\.proj\.(weight|bias)", rf"{t}pooler.o_proj.\1"),
        RenameRule(r"vision_layernorm\.(weight|bias)", rf"{t}post_layernorm.\1"),
        RenameRule(rf"{p}(clip_decoder|final_clip_decoder|mae_decoder)\..*", None, TRAINING_ONLY),
        RenameRule(rf"{p}(clip_pos_embed|clip_img_pos_embed|mae_pos_embed)", None, TRAINING_ONLY),
    ]


def split_fused_qkv(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`attn.qkv.weight` rows are [q; k; v]: split them into three (D, D) matrices."""
    out = {}
    for key, tensor in state_dict.items():
        if key.endswith("attn.qkv.weight"):
            base = key[: -len("qkv.weight")]
            for name, part in zip("qkv", tensor.chunk(3, dim=0)):
                out[f"{base}{name}_proj.weight"] = part
        else:
            out[key] = tensor
    return out


def vision_prefix(keys) -> str:
    """The prefix under which a checkpoint stores its vision tower."""
    keys = list(keys)
    if any(k.startswith("vision_encoder.") for k in keys):
        return "vision_encoder."
    for prefix in ("backbone.", "encoder."):
        if all(k.startswith(prefix) for k in keys):
            return prefix
    return ""


def _strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def infer_vision_config(
    official: dict[str, torch.Tensor], prefix: str = "", image_size: int | None = None, **overrides
) -> InternVideo2VisionConfig:
    """Read the checkpoint's geometry from tensor shapes. `image_size` says how to read a position table when the
    checkpoint has no image table (default 224); `overrides` set what shapes cannot tell (head counts of
    non-released sizes, `hidden_act`, ...)."""

    def get(name):
        return official.get(prefix + name)

    patch = get("patch_embed.proj.weight")
    if patch is None:
        raise ValueError(f"checkpoint has no {prefix}patch_embed.proj.weight: not an InternVideo2 vision checkpoint")
    hidden_size, num_channels, tubelet_size, patch_size = patch.shape[:4]
    block_ids = {int(m.group(1)) for k in official if (m := re.match(rf"{re.escape(prefix)}blocks\.(\d+)\.", k))}
    image_table = get("img_pos_embed")
    if image_size is None:
        grid = int(round((image_table.shape[1] - 1) ** 0.5)) if image_table is not None else 224 // patch_size
        image_size = grid * patch_size
    patches_per_frame = (image_size // patch_size) ** 2
    table_rows = get("pos_embed").shape[1] - 1
    if table_rows % patches_per_frame:
        raise ValueError(
            f"pos_embed has {table_rows} patch rows, not a whole number of {image_size}px frames; pass image_size"
        )
    heads = overrides.pop("num_attention_heads", _HEADS_BY_WIDTH.get(hidden_size))
    if heads is None:
        raise ValueError(f"hidden size {hidden_size} is not a released size: pass num_attention_heads")
    pool = get("clip_projector.cross_attn.proj.weight")
    fields = dict(
        hidden_size=hidden_size,
        num_hidden_layers=max(block_ids) + 1,
        num_attention_heads=heads,
        intermediate_size=get("blocks.0.mlp.fc1.weight").shape[0],
        num_channels=num_channels,
        image_size=image_size,
        patch_size=patch_size,
        tubelet_size=tubelet_size,
        num_frames=table_rows // patches_per_frame * tubelet_size,
        use_qk_norm=get("blocks.0.attn.q_norm.weight") is not None,
        use_attention_pool=pool is not None,
        attention_pool_output_size=pool.shape[0] if pool is not None else 768,
        use_separate_image_position_embeddings=image_table is not None,
        use_post_layernorm="vision_layernorm.weight" in official,
        # The chat tower (bare `ls1`) ran LayerScale without the fp32 cast (`layerscale_no_force_fp32=True`).
        layer_scale_force_fp32=get("blocks.0.ls1") is None,
    )
    if get("head.weight") is not None:
        fields["num_labels"] = get("head.weight").shape[0]
    return InternVideo2VisionConfig(**{**fields, **overrides})


def convert_vision_state_dict(
    checkpoint: dict,
    config: InternVideo2VisionConfig | None = None,
    source: str = "checkpoint",
    source_image_size: int | None = None,
    **overrides,
) -> tuple[dict[str, torch.Tensor], InternVideo2VisionConfig, ConversionReport]:
    """Official checkpoint dict → (our state dict, config, report). Works on meta tensors.

    Without `config`, the config is read from the checkpoint (see `infer_vision_config`; `source_image_size` is its
    `image_size`) and `overrides` are applied on top. Position tables are interpolated with the official rule when the
    target `num_frames` / `image_size` differ from the checkpoint's. Unknown keys raise `CheckpointConversionError`."""
    official = _strip_module_prefix(unwrap_state_dict(checkpoint, source))
    prefix = vision_prefix(official)
    targets = {k: overrides.pop(k) for k in ("num_frames", "image_size") if k in overrides}
    source_config = infer_vision_config(official, prefix, source_image_size, **overrides)
    if config is None:
        config = copy.deepcopy(source_config)
        for name, value in targets.items():
            setattr(config, name, value)
    has_head = prefix + "head.weight" in official
    rules = vision_rename_rules(prefix, "internvideo2." if has_head else "")
    if has_head:
        p = re.escape(prefix)
        rules += [
            RenameRule(rf"{p}fc_norm\.(weight|bias)", r"fc_norm.\1"),
            RenameRule(rf"{p}head\.(weight|bias)", r"classifier.\1"),
        ]
    rules.append(RenameRule(_OTHER_TOWER_PATTERN, None, OTHER_TOWER))
    converted, report = rename_strict(split_fused_qkv(official), rules, source)

    base = "internvideo2." if has_head else ""
    video_key, image_key = f"{base}embeddings.position_embeddings", f"{base}embeddings.image_position_embeddings"
    source_frames = source_config.num_frames // source_config.tubelet_size
    target_frames = config.num_frames // config.tubelet_size
    converted[video_key] = interpolate_position_embeddings(
        converted[video_key], source_frames, target_frames, config.grid_size
    )
    if image_key in converted:
        converted[image_key] = interpolate_position_embeddings(converted[image_key], 1, 1, config.grid_size)
    return converted, config, report


def convert_vision_checkpoint(
    checkpoint: dict, config: InternVideo2VisionConfig | None = None, source: str = "checkpoint", **overrides
) -> tuple[InternVideo2VisionModel | InternVideo2ForVideoClassification, ConversionReport]:
    """Build the matching model (classifier when the checkpoint has a head) and load the converted weights strictly."""
    converted, config, report = convert_vision_state_dict(checkpoint, config, source, **overrides)
    model_class = (
        InternVideo2ForVideoClassification
        if any(k.startswith("classifier.") for k in converted)
        else InternVideo2VisionModel
    )
    return load_converted_model(model_class, config, converted, source), report
