"""Frozen teachers for Stage-1 distillation, as small adapters around Hugging Face vision models.

An adapter turns a teacher's outputs into the targets `InternVideo2ForPreTraining` is aligned with
(`InternVideo2TeacherOutput`): unit-norm token features of chosen layers in the student's token layout (cls first,
then patches frame-major, row, column), an optional unit-norm final embedding, and an optional attention map for
attention-guided masking. Adapters are `nn.Module`s that hold the teacher frozen (no gradients, always in eval mode);
the Stage-1 trainer keeps them outside the trained model and prepares them for inference (DeepSpeed or accelerate).

- `InternVideo2ImageTeacher`: any image model run per frame (CLIP, SigLIP-style ViTs with a cls token, InternViT):
  the multimodal teacher of Stage 1 (official: InternViT-6B, spec §2.1).
- `InternVideo2VideoTeacher`: a video model with tubelets (VideoMAE, tubelet 2): the motion teacher (official:
  VideoMAEv2-g).
- `InternVideo2EncoderTeacher`: our own `InternVideo2VisionModel`, e.g. the Stage-2 1B encoder that teaches the
  distilled S/B/L students (spec §2.5).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.utils import ModelOutput

from .modeling_vision import InternVideo2VisionModel


@dataclass
class InternVideo2TeacherOutput(ModelOutput):
    r"""
    hidden_states (`torch.FloatTensor` of shape `(num_layers, batch, tokens, hidden_size)`): unit-norm features of
        the adapter's layers, ascending. Image and encoder teachers: `1 + frames · patches` tokens (cls first);
        video teachers: `tubelets · patches` tokens (no cls).
    final_embeds (`torch.FloatTensor` of shape `(batch, dim)`, *optional*): unit-norm final embedding.
    attention (`torch.FloatTensor`, *optional*): non-negative attention over the patch tokens, either
        `(batch, frames, patches_per_frame)` (one mask draw per frame) or `(batch, frames · patches_per_frame)` (one
        joint draw); see `internvideo2.masking.attention_guided_token_mask`.
    """

    hidden_states: torch.FloatTensor | None = None
    final_embeds: torch.FloatTensor | None = None
    attention: torch.FloatTensor | None = None


def _checked_layers(layers, num_layers: int, model_name: str) -> tuple[int, ...]:
    """Normalise negative indices; the layers must exist and be strictly increasing (they pair with the student's
    ascending return layers)."""
    if isinstance(layers, int) or not all(isinstance(layer, int) for layer in layers) or not layers:
        raise TypeError(f"layers must be a non-empty sequence of ints, got {layers!r}")
    missing = [layer for layer in layers if not -num_layers <= layer < num_layers]
    if missing:
        raise ValueError(
            f"teacher layers {missing} do not exist: {model_name} has {num_layers} layers (indices 0..{num_layers - 1})"
        )
    resolved = tuple(layer % num_layers for layer in layers)
    if any(b <= a for a, b in zip(resolved, resolved[1:])):
        raise ValueError(
            f"teacher layers must be strictly increasing (ascending, like the student's), got {list(layers)}"
        )
    return resolved


class InternVideo2Teacher(nn.Module):
    """Base adapter: holds `model` frozen and in eval mode, and reads the outputs of `layers`.

    Args:
        model: a Hugging Face model whose config has `num_hidden_layers` and that returns `hidden_states` (embedding
            output first, then one entry per layer) when called with `output_hidden_states=True`.
        layers: teacher layer indices (0-based, negative counts from the end), strictly increasing.
    """

    # Student frames per teacher token along time: a teacher with tubelets of 2 sees twice the student's frames.
    frames_per_token: int = 1
    # What `forward` fills in besides `hidden_states`.
    has_final_embeds: bool = True
    return_attention: bool = True

    def __init__(self, model: nn.Module, layers):
        super().__init__()
        self.model = model.requires_grad_(False)
        self.eval()
        self.layers = _checked_layers(layers, model.config.num_hidden_layers, type(model).__name__)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def train(self, mode: bool = True) -> "InternVideo2Teacher":
        """Teachers always run in eval mode (no dropout / drop-path), whatever the trainer asks."""
        return super().train(False)

    def _layer_outputs(self, outputs) -> torch.Tensor:
        """(num_layers, batch, tokens, dim). The last layer is read from `last_hidden_state`, i.e. after the model's
        final norm when it has one (the official VideoMAEv2 teacher normalises its last block)."""
        last = self.model.config.num_hidden_layers - 1
        return torch.stack(
            [outputs.last_hidden_state if layer == last else outputs.hidden_states[layer + 1] for layer in self.layers]
        )


class InternVideo2ImageTeacher(InternVideo2Teacher):
    """A per-frame image teacher (the multimodal teacher of Stage 1).

    Each frame runs through `model`; the cls tokens of a clip are averaged over frames and its patch tokens are
    concatenated frame by frame, giving `1 + frames · patches` tokens like the student. The final embedding (the
    projected `image_embeds` when the model returns them, else `pooler_output`) is averaged over frames. The attention
    map is the last layer's cls → patch attention, averaged over heads, one row per frame (the official InternViT
    teacher uses its attention pool; a CLIP-style model has no pool, so UMT's last-layer cls attention stands in).

    Args:
        model: e.g. `CLIPVisionModel`, `CLIPVisionModelWithProjection`; tokens per frame must be 1 + a square grid.
        layers: teacher layers aligned with the student's `clip_num_return_layers` return layers.
        return_attention: compute the attention map (switches the teacher to eager attention, the only backend that
            returns attention weights).
        image_mean, image_std: the normalisation the teacher expects (e.g. CLIP's); `None` keeps the input's.
        input_mean, input_std: the normalisation of the incoming pixels (ImageNet, as the student's processor).
    """

    def __init__(
        self,
        model: nn.Module,
        layers,
        return_attention: bool = True,
        image_mean: tuple[float, ...] | None = None,
        image_std: tuple[float, ...] | None = None,
        input_mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
        input_std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
    ):
        super().__init__(model, layers)
        self.return_attention = return_attention
        if return_attention and model.config._attn_implementation != "eager":
            model.set_attn_implementation("eager")
        if (image_mean is None) != (image_std is None):
            raise ValueError("pass both image_mean and image_std, or neither")
        # x_teacher = x · scale + shift maps input normalisation to the teacher's, channel by channel.
        if image_mean is None:
            scale, shift = torch.ones(3), torch.zeros(3)
        else:
            input_mean, input_std = torch.tensor(input_mean), torch.tensor(input_std)
            image_mean, image_std = torch.tensor(image_mean), torch.tensor(image_std)
            scale, shift = input_std / image_std, (input_mean - image_mean) / image_std
        self.register_buffer("pixel_scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_shift", shift.view(1, -1, 1, 1), persistent=False)

    def forward(self, pixel_values_videos: torch.Tensor) -> InternVideo2TeacherOutput:
        """`pixel_values_videos`: `(batch, frames, channels, height, width)`, normalised like the student's input."""
        batch_size, num_frames = pixel_values_videos.shape[:2]
        frames = pixel_values_videos.flatten(0, 1)
        frames = frames * self.pixel_scale.to(frames.dtype) + self.pixel_shift.to(frames.dtype)
        outputs = self.model(
            **{self.model.main_input_name: frames},
            output_hidden_states=True,
            output_attentions=self.return_attention,
        )
        states = self._layer_outputs(outputs)  # (K, B·T, 1 + P, C)
        num_patches = states.shape[2] - 1
        if int(num_patches**0.5) ** 2 != num_patches:
            raise ValueError(
                f"{type(self.model).__name__} returns {states.shape[2]} tokens per frame; an image teacher needs a cls "
                "token followed by a square grid of patches"
            )
        states = states.unflatten(1, (batch_size, num_frames))  # (K, B, T, 1 + P, C)
        cls = states[:, :, :, :1].mean(dim=2)
        patches = states[:, :, :, 1:].flatten(2, 3)
        hidden_states = F.normalize(torch.cat([cls, patches], dim=2), dim=-1)

        final = getattr(outputs, "image_embeds", None)
        final = outputs.pooler_output if final is None else final
        final_embeds = F.normalize(final.unflatten(0, (batch_size, num_frames)).mean(dim=1), dim=-1)

        attention = None
        if self.return_attention:
            attention = outputs.attentions[-1][:, :, 0, 1:].mean(dim=1).unflatten(0, (batch_size, num_frames))
        return InternVideo2TeacherOutput(hidden_states=hidden_states, final_embeds=final_embeds, attention=attention)


class InternVideo2VideoTeacher(InternVideo2Teacher):
    """A video teacher with tubelets (the motion teacher of Stage 1, e.g. `VideoMAEModel`).

    It sees `tubelet_size` times the student's frames (the student reads every `tubelet_size`-th frame), so its
    `tubelets · patches` tokens line up with the student's patch tokens. It has no final embedding and no attention
    map.

    Args:
        model: e.g. `VideoMAEModel`; its config must have `tubelet_size`.
        layers: teacher layers aligned with the student's `mae_num_return_layers` return layers.
    """

    has_final_embeds = False
    return_attention = False

    def __init__(self, model: nn.Module, layers):
        super().__init__(model, layers)
        self.frames_per_token = int(getattr(model.config, "tubelet_size", 1))

    def forward(self, pixel_values_videos: torch.Tensor) -> InternVideo2TeacherOutput:
        """`pixel_values_videos`: `(batch, frames, channels, height, width)`, all the frames the teacher needs."""
        outputs = self.model(**{self.model.main_input_name: pixel_values_videos}, output_hidden_states=True)
        return InternVideo2TeacherOutput(hidden_states=F.normalize(self._layer_outputs(outputs), dim=-1))


def stage2_teacher_layers(depth: int = 40, num_layers: int = 6, interval: float = 3.34) -> tuple[int, ...]:
    """Teacher layers of the official S/B/L distillation: `depth − 1 − int(k · interval)` for k < num_layers,
    ascending (1B Stage-2 teacher: 23, 26, 29, 33, 36, 39)."""
    return tuple(sorted(depth - 1 - int(k * interval) for k in range(num_layers)))


class InternVideo2EncoderTeacher(InternVideo2Teacher):
    """An InternVideo2 video encoder as teacher (official S/B/L distillation from the Stage-2 1B encoder, spec §2.5).

    Targets: the tokens of `layers` (cls included), the attention-pool output as final embedding, and the pool's
    attention over all patch tokens of the clip jointly (averaged over heads), for one joint mask draw.

    Args:
        model: an `InternVideo2VisionModel` with its attention pool (e.g. `InternVideo2Model.vision_model`).
        layers: teacher layers; default `stage2_teacher_layers(depth, num_layers, interval)`.
        num_layers, interval: the official `clip_return_layer` (6) and `clip_teacher_return_interval` (3.34).
    """

    def __init__(
        self, model: InternVideo2VisionModel, layers=None, num_layers: int = 6, interval: float = 3.34
    ):
        if not isinstance(model, InternVideo2VisionModel):
            raise TypeError(f"model must be an InternVideo2VisionModel, got {type(model).__name__}")
        if model.pooler is None:
            raise ValueError("the teacher encoder has no attention pool (use_attention_pool=False)")
        if layers is None:
            layers = stage2_teacher_layers(model.config.num_hidden_layers, num_layers, interval)
        super().__init__(model, layers)

    def forward(self, pixel_values_videos: torch.Tensor) -> InternVideo2TeacherOutput:
        outputs = self.model(pixel_values_videos=pixel_values_videos, output_hidden_states=True)
        hidden_states = F.normalize(self._layer_outputs(outputs), dim=-1)
        pooled, attention = self.model.pooler(outputs.last_hidden_state, return_attention=True)
        return InternVideo2TeacherOutput(
            hidden_states=hidden_states,
            final_embeds=F.normalize(pooled, dim=-1),
            attention=attention.mean(dim=1)[:, 0, 1:],
        )


__all__ = [
    "InternVideo2EncoderTeacher",
    "InternVideo2ImageTeacher",
    "InternVideo2Teacher",
    "InternVideo2TeacherOutput",
    "InternVideo2VideoTeacher",
    "stage2_teacher_layers",
]
