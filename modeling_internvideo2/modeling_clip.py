"""InternVideo2-CLIP: the InternVideo2 video encoder + any Hugging Face text tower, aligned contrastively (spec §4)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .configuration_clip import InternVideo2ClipConfig
from .configuration_vision import InternVideo2VisionConfig
from .modeling_vision import InternVideo2VisionModel
from .losses.contrastive import in_batch_contrastive_loss


@dataclass
class InternVideo2ClipOutput(ModelOutput):
    r"""
    loss: in-batch symmetric contrastive loss, when `return_loss=True`.
    logits_per_video: (videos, texts) cosine similarities divided by the temperature.
    logits_per_text: its transpose.
    video_embeds / text_embeds: L2-normalised embeddings (batch, projection_dim).
    vision_model_output: the video encoder output (tokens and attention-pool output).
    text_model_output: the text tower output.
    """

    loss: torch.Tensor | None = None
    logits_per_video: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    video_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None
    text_model_output: ModelOutput | None = None

    def to_tuple(self):
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


class InternVideo2ClipVisionProjection(nn.Module):
    """LayerNorm + Linear from the attention-pool output to the embedding width (official small-model
    `vision_align`)."""

    def __init__(self, config: InternVideo2ClipConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.vision_config.attention_pool_output_size)
        self.dense = nn.Linear(config.vision_config.attention_pool_output_size, config.projection_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layer_norm(pooled))


class InternVideo2ClipPreTrainedModel(PreTrainedModel):
    config: InternVideo2ClipConfig
    config_class = InternVideo2ClipConfig
    base_model_prefix = "internvideo2_clip"
    main_input_name = "pixel_values_videos"
    input_modalities = ("video", "image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2AttentionPool"]
    _supports_sdpa = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2ClipModel):
            init.constant_(module.temperature, self.config.temperature)


class InternVideo2ClipModel(InternVideo2ClipPreTrainedModel):
    """InternVideo2-CLIP: zero-shot video/image <-> text retrieval and classification.

    Video embedding: the vision encoder's attention pool (optionally LayerNorm + Linear). Text embedding: the text
    tower's last hidden state pooled at the EOS / CLS token (or averaged), times a bias-free projection. Official
    CLIP training updates only the attention pool (and the temperature): see `freeze_for_clip_training`; LoRA on the
    text tower goes through peft (`text_lora_config`).
    """

    def __init__(self, config: InternVideo2ClipConfig):
        super().__init__(config)
        self.vision_model = InternVideo2VisionModel(config.vision_config)
        self.text_model = AutoModel.from_config(config.text_config)
        self.vision_projection = InternVideo2ClipVisionProjection(config) if config.use_vision_projection else None
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.temperature = nn.Parameter(torch.tensor(config.temperature))
        text_no_split = getattr(self.text_model, "_no_split_modules", None) or []
        self._no_split_modules = list(self._no_split_modules) + list(text_no_split)
        self.post_init()

    @classmethod
    def from_vision_text_pretrained(
        cls,
        vision_model_name_or_path: str | os.PathLike | PreTrainedModel,
        text_model_name_or_path: str | os.PathLike | PreTrainedModel,
        *,
        projection_dim: int | None = None,
        use_vision_projection: bool = False,
        text_pooling: str = "eos",
        **config_kwargs,
    ) -> "InternVideo2ClipModel":
        """Builds a CLIP model from a pretrained InternVideo2 vision encoder and a pretrained text tower.

        Args:
            vision_model_name_or_path: an `InternVideo2VisionModel` or a Stage-2 `InternVideo2Model` (instance or
                saved folder); the Stage-2 model contributes its `vision_model`.
            text_model_name_or_path: any `AutoModel` text model (instance, folder or Hub id); its weights are kept.
            projection_dim: embedding width (default: the attention-pool output size).
            use_vision_projection, text_pooling, config_kwargs: `InternVideo2ClipConfig` fields.

        The text projection (and the vision projection, if any) start randomly initialised.
        """
        vision = _load_vision_encoder(vision_model_name_or_path)
        text = (
            text_model_name_or_path
            if isinstance(text_model_name_or_path, PreTrainedModel)
            else AutoModel.from_pretrained(text_model_name_or_path)
        )
        config = InternVideo2ClipConfig(
            vision_config=vision.config,
            text_config=text.config,
            projection_dim=projection_dim or vision.config.attention_pool_output_size,
            use_vision_projection=use_vision_projection,
            text_pooling=text_pooling,
            **config_kwargs,
        )
        model = cls(config)
        model.vision_model.load_state_dict(vision.state_dict())
        model.text_model.load_state_dict(text.state_dict())
        return model

    # ------------------------------------------------------------------------------------------------- features

    def pool_text(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text feature of each caption from the last hidden states, by `config.text_pooling`."""
        mode = self.config.text_pooling
        if mode == "cls":
            return hidden_states[:, 0]
        mask = attention_mask.to(hidden_states.dtype)
        if mode == "mean":
            return (hidden_states * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        # eos: the last real token, wherever the padding is
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.bool() * positions).argmax(dim=1)
        return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last]

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ModelOutput]:
        """`(projected text features (batch, projection_dim), text tower output)`; not normalised."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        output = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.text_projection(self.pool_text(output.last_hidden_state, attention_mask)), output

    def encode_vision(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, BaseModelOutputWithPooling]:
        """`(video embeddings before normalisation (batch, projection_dim), vision encoder output)`."""
        output = self.vision_model(
            pixel_values_videos=pixel_values_videos, pixel_values=pixel_values, bool_masked_pos=bool_masked_pos
        )
        pooled = output.pooler_output
        return (self.vision_projection(pooled) if self.vision_projection is not None else pooled), output

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Normalised video embeddings (batch, projection_dim)."""
        return F.normalize(self.encode_vision(pixel_values_videos=pixel_values_videos)[0], dim=-1)

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Normalised image embeddings (batch, projection_dim)."""
        return F.normalize(self.encode_vision(pixel_values=pixel_values)[0], dim=-1)

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised text embeddings (batch, projection_dim)."""
        return F.normalize(self.encode_text(input_ids, attention_mask)[0], dim=-1)

    # ------------------------------------------------------------------------------------------------- training

    def clamp_temperature(self) -> None:
        """Keep the temperature in [temperature_min, temperature_max] (in place, as the official training does)."""
        with torch.no_grad():
            self.temperature.clamp_(self.config.temperature_min, self.config.temperature_max)

    def freeze_for_clip_training(self, train_text_projection: bool = False) -> None:
        """Official CLIP training: only the vision attention pool (and vision projection, if any) and the
        temperature are trained; `train_text_projection=True` also trains the text projection."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        trainable = [self.vision_model.pooler, self.vision_projection]
        if train_text_projection:
            trainable.append(self.text_projection)
        for module in trainable:
            if module is not None:
                module.requires_grad_(True)
        self.temperature.requires_grad_(True)

    def text_lora_config(
        self,
        r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.1,
        target_modules: list[str] | None = None,
        train_text_projection: bool = False,
    ):
        """A `peft.LoraConfig` putting LoRA on the text tower only (official: r 16, alpha 32, dropout 0.1 on the
        query / value projections), with the vision attention pool (and optionally the text projection) fully
        trained and saved alongside. Use it as `peft.get_peft_model(model, model.text_lora_config())`."""
        from peft import LoraConfig
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        if not target_modules:
            target_modules = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(self.config.text_config.model_type)
            if not target_modules:
                raise ValueError(
                    f"peft has no default LoRA targets for text model type {self.config.text_config.model_type!r}; "
                    "pass target_modules"
                )
        pattern = r"^text_model\..*\b(" + "|".join(map(re.escape, target_modules)) + r")$"
        modules_to_save = ["vision_model.pooler"]
        if self.vision_projection is not None:
            modules_to_save.append("vision_projection")
        if train_text_projection:
            modules_to_save.append("text_projection")
        return LoraConfig(
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=pattern,
            modules_to_save=modules_to_save,
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        return_loss: bool = False,
        **kwargs,
    ) -> InternVideo2ClipOutput:
        r"""
        Encodes the videos (or images) and / or the texts given; with both, returns similarity logits
        `video_embeds @ text_embeds.T / temperature` and, with `return_loss=True`, the in-batch contrastive loss
        (use `internvideo2.losses.InternVideo2VideoTextContrastiveLoss` for the gathered, multi-positive loss).
        """
        if self.training:
            self.clamp_temperature()
        has_media = pixel_values_videos is not None or pixel_values is not None
        if not has_media and input_ids is None:
            raise ValueError("pass input_ids and / or pixel_values_videos (or pixel_values)")
        video_embeds = text_embeds = vision_output = text_output = None
        if has_media:
            projected, vision_output = self.encode_vision(pixel_values_videos, pixel_values, bool_masked_pos)
            video_embeds = F.normalize(projected, dim=-1)
        if input_ids is not None:
            projected, text_output = self.encode_text(input_ids, attention_mask)
            text_embeds = F.normalize(projected, dim=-1)
        logits_per_video = logits_per_text = loss = None
        if video_embeds is not None and text_embeds is not None:
            logits_per_video = video_embeds @ text_embeds.T / self.temperature
            logits_per_text = logits_per_video.T
            if return_loss:
                loss = in_batch_contrastive_loss(logits_per_video)
        elif return_loss:
            raise ValueError("return_loss needs both texts and videos (or images)")
        return InternVideo2ClipOutput(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_text,
            video_embeds=video_embeds,
            text_embeds=text_embeds,
            vision_model_output=vision_output,
            text_model_output=text_output,
        )


def _load_vision_encoder(source) -> InternVideo2VisionModel:
    if isinstance(source, InternVideo2VisionModel):
        return source
    if isinstance(getattr(source, "vision_model", None), InternVideo2VisionModel):
        return source.vision_model
    if isinstance(source, PreTrainedModel):
        raise TypeError(f"expected an InternVideo2 vision or Stage-2 model, got {type(source).__name__}")
    config = AutoConfig.from_pretrained(source)
    if isinstance(config, InternVideo2VisionConfig):
        return InternVideo2VisionModel.from_pretrained(source)
    if getattr(config, "model_type", None) == "internvideo2":
        from .modeling_internvideo2 import InternVideo2Model

        return InternVideo2Model.from_pretrained(source).vision_model
    raise ValueError(f"{source} holds a {config.model_type!r} model, not an InternVideo2 vision or Stage-2 model")


__all__ = ["InternVideo2ClipModel", "InternVideo2ClipOutput", "InternVideo2ClipPreTrainedModel"]
