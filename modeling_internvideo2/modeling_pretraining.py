"""Stage-1 / distillation student: the InternVideo2 video encoder plus the training-only projection decoders that align
its features with frozen teachers (spec §1.3–1.5, §2).

`InternVideo2ForPreTraining` returns, for the visible tokens of a (masked) video:
- `clip_hidden_states`: the student's last `clip_num_return_layers` blocks (ascending), plus their own position table,
  through one decoder each, aligned with the multimodal teacher's layers (official `x_clip_align`);
- `clip_embeds`: the attention-pool output through the final decoder, aligned with the teacher's final embedding
  (`x_align`);
- `mae_hidden_states`: the last `mae_num_return_layers` blocks without the cls token, aligned with the motion teacher
  (`x_mae_align`, Stage 1 only).

Every decoder ends with an L2 normalisation, so the targets are compared with `2 − 2·cos`
(`internvideo2.losses.InternVideo2DistillationLoss`).

`convert_pretraining_checkpoint` turns released Stage-1, distilled S/B/L and Stage-2 vision checkpoints into this class
with their decoders (the plain vision converter drops them as training-only).
"""

import copy
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs

from .configuration_vision import VISION_PRESETS, InternVideo2VisionConfig
from .convert.checkpoint_io import (
    CheckpointConversionError,
    ConversionReport,
    RenameRule,
    load_converted_model,
    rename_strict,
    unwrap_state_dict,
)
from .convert.vision import convert_vision_state_dict, infer_vision_config, vision_prefix
from .masking import prepend_cls_to_mask, select_visible_tokens
from .modeling_vision import InternVideo2VisionModel
from .position_embeddings import interpolate_position_embeddings, position_table_for, sincos_3d

DECODER_TYPES = ("linear", "mlp")

# Released recipes (spec §2.4, §2.5): Stage-1 1B/6B (InternViT-6B + VideoMAEv2-g teachers, linear clip decoders)
# and the S/B/L students distilled from the Stage-2 1B vision encoder (MLP decoders, no motion teacher).
# drop_path_rate is the training value of each recipe.
_STAGE1_DECODERS = dict(
    clip_teacher_hidden_size=3200, clip_decoder_type="linear", mae_teacher_hidden_size=1408, mae_num_return_layers=4
)
PRETRAINING_PRESETS: dict[str, dict] = {
    "1B": dict(vision=dict(VISION_PRESETS["1B"], drop_path_rate=0.25), **_STAGE1_DECODERS),
    "6B": dict(vision=dict(VISION_PRESETS["6B"], drop_path_rate=0.3), **_STAGE1_DECODERS),
    **{
        size: dict(
            vision=dict(VISION_PRESETS[size], drop_path_rate=0.05),
            clip_teacher_hidden_size=1408, clip_decoder_type="mlp", mae_num_return_layers=0,
        )
        for size in ("S/14", "B/14", "L/14")
    },
}


def student_return_layers(depth: int, num_layers: int, interval: float) -> tuple[int, ...]:
    """The official `return_index` `[depth − 1 − int(i·interval)]` for i < num_layers, in ascending order (the
    order the hidden states are collected and matched with decoders 0, 1, ...)."""
    return tuple(sorted(depth - 1 - int(i * interval) for i in range(num_layers)))


@strict
class InternVideo2PreTrainingConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2ForPreTraining`]: a video encoder (`vision_config`) and the decoders that project
    its features onto the teachers'. Use [`InternVideo2PreTrainingConfig.from_preset`] for the released recipes:
    "1B", "6B" (Stage 1) and "S/14", "B/14", "L/14" (distilled from the Stage-2 1B encoder).

    vision_config: the student encoder ([`InternVideo2VisionConfig`]); it must have the attention pool.
    clip_teacher_hidden_size (`int`): width of the multimodal teacher's token features (InternViT-6B: 3200; the
        Stage-2 1B encoder used as a distillation teacher: 1408).
    clip_teacher_final_size (`int`): width of the teacher's final embedding (768 for both).
    clip_num_return_layers (`int`): student blocks aligned with teacher layers (6).
    clip_return_interval (`float`): spacing of those blocks from the last one (official `clip_student_return_interval`).
    clip_decoder_type (`str`): "linear" (Linear → LayerNorm → L2, Stage 1/2) or "mlp" (Linear → GELU → Linear
        → LayerNorm → L2, distilled S/B/L); used for the clip decoders and the final decoder.
    mae_teacher_hidden_size (`int`): width of the motion teacher's token features (VideoMAEv2-g: 1408).
    mae_num_return_layers (`int`): student blocks aligned with the motion teacher (4); 0 builds no motion decoders.
    mae_return_interval (`float`): spacing of those blocks (official `mae_student_return_interval`).
    decoder_layer_norm_eps (`float`): eps of the decoders' LayerNorms.
    """

    model_type = "internvideo2_pretraining"
    sub_configs_defaults = {"vision_config": InternVideo2VisionConfig}

    vision_config: dict | PreTrainedConfig | None = None
    clip_teacher_hidden_size: int = 3200
    clip_teacher_final_size: int = 768
    clip_num_return_layers: int = 6
    clip_return_interval: float = 1.0
    clip_decoder_type: str = "linear"
    mae_teacher_hidden_size: int = 1408
    mae_num_return_layers: int = 4
    mae_return_interval: float = 1.0
    decoder_layer_norm_eps: float = 1e-5

    @classmethod
    def from_preset(cls, name: str, num_frames: int = 8, **kwargs) -> "InternVideo2PreTrainingConfig":
        """Config of a released recipe ("1B", "6B", "S/14", "B/14", "L/14") at `num_frames`; `kwargs` override
        top-level fields."""
        if name not in PRETRAINING_PRESETS:
            raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(PRETRAINING_PRESETS)}")
        preset = dict(PRETRAINING_PRESETS[name])
        vision = InternVideo2VisionConfig(**preset.pop("vision"), num_frames=num_frames)
        return cls(**{"vision_config": vision, **preset, **kwargs})

    @property
    def hidden_size(self) -> int:
        """The encoder width (what DeepSpeed reads to size its buckets)."""
        return self.vision_config.hidden_size

    @property
    def clip_return_layers(self) -> tuple[int, ...]:
        """Student blocks feeding `clip_decoders[0], [1], ...` (ascending)."""
        return student_return_layers(
            self.vision_config.num_hidden_layers, self.clip_num_return_layers, self.clip_return_interval
        )

    @property
    def mae_return_layers(self) -> tuple[int, ...]:
        """Student blocks feeding `mae_decoders[0], [1], ...` (ascending); empty without a motion teacher."""
        return student_return_layers(
            self.vision_config.num_hidden_layers, self.mae_num_return_layers, self.mae_return_interval
        )

    def validate_architecture(self):
        """Part of `@strict` validation."""
        if self.clip_decoder_type not in DECODER_TYPES:
            raise ValueError(f"clip_decoder_type must be one of {DECODER_TYPES}, got {self.clip_decoder_type!r}")
        if not self.vision_config.use_attention_pool:
            raise ValueError("vision_config.use_attention_pool must be True: the final decoder reads the pool output")
        if self.clip_num_return_layers < 1:
            raise ValueError(f"clip_num_return_layers must be >= 1, got {self.clip_num_return_layers}")
        if self.mae_num_return_layers < 0:
            raise ValueError(f"mae_num_return_layers must be >= 0, got {self.mae_num_return_layers}")
        depth = self.vision_config.num_hidden_layers
        for name, layers in (("clip", self.clip_return_layers), ("mae", self.mae_return_layers)):
            if layers and (layers[0] < 0 or len(set(layers)) != len(layers)):
                interval = getattr(self, f"{name}_return_interval")
                raise ValueError(
                    f"{name}_num_return_layers={len(layers)} with {name}_return_interval={interval} selects student "
                    f"layers {list(layers)}, but the encoder has layers 0..{depth - 1} and each may be used once"
                )


@dataclass
class InternVideo2ForPreTrainingOutput(ModelOutput):
    r"""
    clip_hidden_states (`torch.FloatTensor` of shape `(clip_num_return_layers, batch, 1 + visible_patches,
        clip_teacher_hidden_size)`): unit-norm projections of the return layers (ascending), cls first (`x_clip_align`).
    clip_embeds (`torch.FloatTensor` of shape `(batch, clip_teacher_final_size)`): unit-norm projection of the
        attention-pool output (`x_align`).
    mae_hidden_states (`torch.FloatTensor` of shape `(mae_num_return_layers, batch, visible_patches,
        mae_teacher_hidden_size)`, *optional*): unit-norm projections for the motion teacher, no cls (`x_mae_align`).
    last_hidden_state (`torch.FloatTensor` of shape `(batch, 1 + visible_patches, hidden_size)`): encoder output.
    pooler_output (`torch.FloatTensor` of shape `(batch, attention_pool_output_size)`): attention-pool output.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): embeddings and every block's output, when
        `output_hidden_states=True`.
    attentions (`tuple(torch.FloatTensor)`, *optional*): per-block attention maps, when `output_attentions=True`.
    """

    clip_hidden_states: torch.FloatTensor | None = None
    clip_embeds: torch.FloatTensor | None = None
    mae_hidden_states: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class InternVideo2LinearDecoder(nn.Module):
    """Linear → LayerNorm → L2 normalisation (official `Linear_Decoder` with `clip_norm_type='l2'`)."""

    def __init__(self, in_features: int, out_features: int, eps: float = 1e-5):
        super().__init__()
        self.projection = nn.Linear(in_features, out_features)
        self.layernorm = nn.LayerNorm(out_features, eps=eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.layernorm(self.projection(hidden_states)), dim=-1)


class InternVideo2MLPDecoder(nn.Module):
    """Linear(in, in) → GELU → Linear(in, out) → LayerNorm → L2 normalisation (official `MLP_Decoder`)."""

    def __init__(self, in_features: int, out_features: int, eps: float = 1e-5):
        super().__init__()
        self.fc1 = nn.Linear(in_features, in_features)
        self.activation = nn.GELU()
        self.fc2 = nn.Linear(in_features, out_features)
        self.layernorm = nn.LayerNorm(out_features, eps=eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.fc2(self.activation(self.fc1(hidden_states)))
        return F.normalize(self.layernorm(hidden_states), dim=-1)


_DECODER_CLASSES = {"linear": InternVideo2LinearDecoder, "mlp": InternVideo2MLPDecoder}


class InternVideo2ForPreTraining(PreTrainedModel):
    """Student of Stage-1 distillation (and of the S/B/L distillation): encoder + alignment decoders.

    The teachers are not part of this model (see `internvideo2.teachers` and `internvideo2.trainers.stage1`), so
    optimizers and ZeRO only see the student. `InternVideo2VisionModel.from_pretrained` and
    `InternVideo2ForVideoClassification.from_pretrained` load the encoder of a saved pre-training checkpoint and ignore
    the decoders.
    """

    config: InternVideo2PreTrainingConfig
    config_class = InternVideo2PreTrainingConfig
    base_model_prefix = "internvideo2"
    main_input_name = "pixel_values_videos"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2VisionEmbeddings", "InternVideo2AttentionPool"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: InternVideo2PreTrainingConfig):
        super().__init__(config)
        vision = config.vision_config
        dim, frames, grid = vision.hidden_size, vision.num_frames // vision.tubelet_size, vision.grid_size
        num_patches = frames * grid * grid
        self.internvideo2 = InternVideo2VisionModel(vision)
        self.clip_position_embeddings = nn.Parameter(torch.zeros(1, 1 + num_patches, dim))
        self.clip_image_position_embeddings = None
        if vision.use_separate_image_position_embeddings:
            self.clip_image_position_embeddings = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        decoder = _DECODER_CLASSES[config.clip_decoder_type]
        eps = config.decoder_layer_norm_eps
        self.clip_decoders = nn.ModuleList(
            [decoder(dim, config.clip_teacher_hidden_size, eps) for _ in range(config.clip_num_return_layers)]
        )
        self.final_clip_decoder = decoder(vision.attention_pool_output_size, config.clip_teacher_final_size, eps)
        if config.mae_num_return_layers:
            self.mae_position_embeddings = nn.Parameter(torch.zeros(1, num_patches, dim))
            self.mae_decoders = nn.ModuleList(
                [
                    InternVideo2MLPDecoder(dim, config.mae_teacher_hidden_size, eps)
                    for _ in range(config.mae_num_return_layers)
                ]
            )
        else:
            self.mae_position_embeddings, self.mae_decoders = None, None
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        """Decoders (every Linear / LayerNorm outside the encoder, which initialises itself as a sub-model):
        xavier-uniform weights and zero biases, the official decoder init. Decoder position tables: the encoder's
        sin-cos tables."""
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif module is self:
            vision = self.config.vision_config
            frames, grid, dim = vision.num_frames // vision.tubelet_size, vision.grid_size, vision.hidden_size
            init.copy_(self.clip_position_embeddings, sincos_3d(dim, grid, frames)[None].float())
            if self.clip_image_position_embeddings is not None:
                init.copy_(self.clip_image_position_embeddings, sincos_3d(dim, grid, 1)[None].float())
            if self.mae_position_embeddings is not None:
                init.copy_(self.mae_position_embeddings, sincos_3d(dim, grid, frames, cls_token=False)[None].float())

    def get_input_embeddings(self) -> nn.Module:
        return self.internvideo2.get_input_embeddings()

    def _decoder_position_table(
        self, table: torch.Tensor, image_table: torch.Tensor | None, num_frames: int, grid_size: int
    ) -> torch.Tensor:
        """A decoder position table for `num_frames` temporal tokens on a `grid_size`² grid, by the encoder's rules
        (image table or time-mean for one frame, official interpolation otherwise)."""
        vision = self.config.vision_config
        return position_table_for(table, image_table, vision.num_frames // vision.tubelet_size, num_frames, grid_size)

    def forward(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> InternVideo2ForPreTrainingOutput:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch, frames, channels, height, width)`):
            Normalised video frames (or `pixel_values` for images).
        bool_masked_pos (`torch.BoolTensor` of shape `(batch, num_patches)` or `(batch, 1 + num_patches)`, *optional*):
            True marks patch tokens the student does not see (the cls token is always seen); every row masks the same
            number of tokens. The decoder outputs cover the visible tokens, in their original order.
        """
        outputs = self.internvideo2(
            pixel_values_videos=pixel_values_videos,
            pixel_values=pixel_values,
            bool_masked_pos=bool_masked_pos,
            interpolate_pos_encoding=interpolate_pos_encoding,
            output_hidden_states=True,
            **kwargs,
        )
        pixels = pixel_values_videos if pixel_values_videos is not None else pixel_values
        vision = self.config.vision_config
        num_frames = (pixels.shape[1] if pixels.ndim == 5 else 1) // vision.tubelet_size
        grid_size = pixels.shape[-1] // vision.patch_size
        batch_size, num_patches = pixels.shape[0], num_frames * grid_size * grid_size

        if bool_masked_pos is None:
            patch_mask = torch.zeros(batch_size, num_patches, dtype=torch.bool, device=pixels.device)
        else:
            patch_mask = bool_masked_pos[:, 1:] if bool_masked_pos.shape[1] == num_patches + 1 else bool_masked_pos
            patch_mask = patch_mask.to(pixels.device)
        token_mask = prepend_cls_to_mask(patch_mask)

        # hidden_states[0] is the embedding output, hidden_states[i + 1] the output of block i.
        layer_outputs = outputs.hidden_states
        clip_table = self._decoder_position_table(
            self.clip_position_embeddings, self.clip_image_position_embeddings, num_frames, grid_size
        )
        clip_table = select_visible_tokens(clip_table.expand(batch_size, -1, -1), token_mask)
        clip_hidden_states = torch.stack(
            [
                decoder(layer_outputs[layer + 1] + clip_table.to(layer_outputs[layer + 1].dtype))
                for decoder, layer in zip(self.clip_decoders, self.config.clip_return_layers)
            ]
        )
        clip_embeds = self.final_clip_decoder(outputs.pooler_output)

        mae_hidden_states = None
        if self.mae_decoders is not None:
            padded = F.pad(self.mae_position_embeddings, (0, 0, 1, 0))  # a cls row lets the shared rules apply
            mae_table = self._decoder_position_table(padded, None, num_frames, grid_size)[:, 1:]
            mae_table = select_visible_tokens(mae_table.expand(batch_size, -1, -1), patch_mask)
            mae_hidden_states = torch.stack(
                [
                    decoder(layer_outputs[layer + 1][:, 1:] + mae_table.to(layer_outputs[layer + 1].dtype))
                    for decoder, layer in zip(self.mae_decoders, self.config.mae_return_layers)
                ]
            )

        return InternVideo2ForPreTrainingOutput(
            clip_hidden_states=clip_hidden_states,
            clip_embeds=clip_embeds,
            mae_hidden_states=mae_hidden_states,
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=outputs.pooler_output,
            hidden_states=layer_outputs if output_hidden_states else None,
            attentions=outputs.attentions,
        )


# ------------------------------------------------------------------------------------------------------ conversion

_DECODER_KEY = r"(clip_decoder|final_clip_decoder|mae_decoder|clip_pos_embed|clip_img_pos_embed|mae_pos_embed)\b"


def _decoder_rename_rules(prefix: str) -> list[RenameRule]:
    """Official decoder keys (under `prefix`) → `InternVideo2ForPreTraining` keys."""
    p = re.escape(prefix)
    return [
        RenameRule(rf"{p}clip_pos_embed", "clip_position_embeddings"),
        RenameRule(rf"{p}clip_img_pos_embed", "clip_image_position_embeddings"),
        RenameRule(rf"{p}mae_pos_embed", "mae_position_embeddings"),
        RenameRule(rf"{p}(clip|mae)_decoder\.(\d+)\.head\.(weight|bias)", r"\1_decoders.\2.projection.\3"),
        RenameRule(rf"{p}(clip|mae)_decoder\.(\d+)\.head\.0\.(weight|bias)", r"\1_decoders.\2.fc1.\3"),
        RenameRule(rf"{p}(clip|mae)_decoder\.(\d+)\.head\.2\.(weight|bias)", r"\1_decoders.\2.fc2.\3"),
        RenameRule(rf"{p}(clip|mae)_decoder\.(\d+)\.norm\.(weight|bias)", r"\1_decoders.\2.layernorm.\3"),
        RenameRule(rf"{p}final_clip_decoder\.head\.(weight|bias)", r"final_clip_decoder.projection.\1"),
        RenameRule(rf"{p}final_clip_decoder\.head\.0\.(weight|bias)", r"final_clip_decoder.fc1.\1"),
        RenameRule(rf"{p}final_clip_decoder\.head\.2\.(weight|bias)", r"final_clip_decoder.fc2.\1"),
        RenameRule(rf"{p}final_clip_decoder\.norm\.(weight|bias)", r"final_clip_decoder.layernorm.\1"),
    ]


def _infer_decoder_fields(decoders: dict[str, torch.Tensor], prefix: str, source: str) -> dict:
    """Decoder geometry from tensor shapes: counts, output widths and decoder type."""

    def count(name: str) -> int:
        ids = {int(m.group(1)) for k in decoders if (m := re.match(rf"{re.escape(prefix)}{name}\.(\d+)\.", k))}
        return max(ids) + 1 if ids else 0

    def output_width(name: str) -> int:
        return decoders[f"{prefix}{name}.norm.weight"].shape[0]

    num_clip = count("clip_decoder")
    if not num_clip or f"{prefix}final_clip_decoder.norm.weight" not in decoders:
        raise CheckpointConversionError(
            f"{source} has no clip_decoder.* / final_clip_decoder.*: not a Stage-1, Stage-2 or distillation checkpoint "
            "(convert it with internvideo2.convert.vision.convert_vision_checkpoint)"
        )
    num_mae = count("mae_decoder")
    fields = dict(
        clip_num_return_layers=num_clip,
        clip_teacher_hidden_size=output_width("clip_decoder.0"),
        clip_teacher_final_size=output_width("final_clip_decoder"),
        clip_decoder_type="mlp" if f"{prefix}clip_decoder.0.head.0.weight" in decoders else "linear",
        mae_num_return_layers=num_mae,
    )
    if num_mae:
        fields["mae_teacher_hidden_size"] = output_width("mae_decoder.0")
    return fields


def convert_pretraining_state_dict(
    checkpoint: dict,
    config: InternVideo2PreTrainingConfig | None = None,
    source: str = "checkpoint",
    source_image_size: int | None = None,
    **overrides,
) -> tuple[dict[str, torch.Tensor], InternVideo2PreTrainingConfig, ConversionReport]:
    """Official Stage-1 / distillation / Stage-2 checkpoint → (`InternVideo2ForPreTraining` state dict, config,
    report). Works on meta tensors.

    The encoder goes through `internvideo2.convert.vision.convert_vision_state_dict` (same `source_image_size` and
    `overrides`, e.g. `num_frames` to interpolate every position table, `num_attention_heads` for non-released widths);
    decoders and their position tables are renamed, and the decoder geometry is read from tensor shapes. Pre-training
    fields that shapes cannot tell (`clip_return_interval`, `mae_return_interval`: 1 in every released recipe) can be
    given in `overrides`. Unknown keys raise `CheckpointConversionError`."""
    official = unwrap_state_dict(checkpoint, source)
    if official and all(k.startswith("module.") for k in official):
        official = {k[len("module."):]: v for k, v in official.items()}
    prefix = vision_prefix(official)
    decoder_pattern = re.compile(re.escape(prefix) + _DECODER_KEY)
    decoders = {k: v for k, v in official.items() if decoder_pattern.match(k)}
    encoder = {k: v for k, v in official.items() if k not in decoders}
    pretraining_fields = {
        name: overrides.pop(name) for name in ("clip_return_interval", "mae_return_interval") if name in overrides
    }
    if f"{prefix}head.weight" in official:
        raise CheckpointConversionError(f"{source} is a fine-tuned classifier, not a pre-training checkpoint")

    targets = {k: overrides.pop(k) for k in ("num_frames", "image_size") if k in overrides}
    source_vision = infer_vision_config(encoder, prefix, source_image_size, **overrides)
    converted, vision_config, report = convert_vision_state_dict(
        encoder, None, source, source_image_size, **overrides, **targets
    )
    converted = {f"internvideo2.{k}": v for k, v in converted.items()}
    fields = {**_infer_decoder_fields(decoders, prefix, source), **pretraining_fields}
    if config is None:
        config = InternVideo2PreTrainingConfig(vision_config=vision_config, **fields)

    renamed, decoder_report = rename_strict(decoders, _decoder_rename_rules(prefix), source)
    report.mapped.update(decoder_report.mapped)
    source_frames = source_vision.num_frames // source_vision.tubelet_size
    target = config.vision_config
    target_frames, grid = target.num_frames // target.tubelet_size, target.grid_size
    for key, table in renamed.items():
        if key == "clip_position_embeddings":
            table = interpolate_position_embeddings(table, source_frames, target_frames, grid)
        elif key == "clip_image_position_embeddings":
            table = interpolate_position_embeddings(table, 1, 1, grid)
        elif key == "mae_position_embeddings":  # no cls row: borrow one for the shared interpolation rule
            padded = F.pad(table, (0, 0, 1, 0))
            table = interpolate_position_embeddings(padded, source_frames, target_frames, grid)[:, 1:]
        converted[key] = table
    return converted, config, report


def convert_pretraining_checkpoint(
    checkpoint: dict,
    config: InternVideo2PreTrainingConfig | None = None,
    source: str = "checkpoint",
    source_image_size: int | None = None,
    **overrides,
) -> tuple[InternVideo2ForPreTraining, ConversionReport]:
    """Build an `InternVideo2ForPreTraining` from an official checkpoint with its decoders, loading strictly (see
    `convert_pretraining_state_dict`)."""
    converted, config, report = convert_pretraining_state_dict(
        checkpoint, copy.deepcopy(config), source, source_image_size, **overrides
    )
    return load_converted_model(InternVideo2ForPreTraining, config, converted, source), report


__all__ = [
    "PRETRAINING_PRESETS",
    "InternVideo2ForPreTraining",
    "InternVideo2ForPreTrainingOutput",
    "InternVideo2LinearDecoder",
    "InternVideo2MLPDecoder",
    "InternVideo2PreTrainingConfig",
    "convert_pretraining_checkpoint",
    "convert_pretraining_state_dict",
    "student_return_layers",
]
