"""Composite Stage-2 InternVideo2: video, text and (6B) audio towers, contrastive projections, matching heads."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput
from transformers.utils import ModelOutput

from .configuration_internvideo2 import InternVideo2Config
from .modeling_audio import InternVideo2AudioModel
from .modeling_text import InternVideo2TextForMaskedLM
from .modeling_vision import InternVideo2VisionModel
from .losses.contrastive import in_batch_contrastive_loss


@dataclass
class InternVideo2VisionEncoding(ModelOutput):
    r"""
    embeds: L2-normalised contrastive embedding (batch, projection_dim).
    projected: `vision_proj(pooled)` before normalisation (what audio-visual fusion and the losses consume).
    pooled: attention-pool output (batch, 768).
    memory: tokens the fusion layers attend to (batch, tokens, memory_width): raw tokens, or their memory projection.
    last_hidden_state: raw encoder tokens (batch, tokens, hidden_size).
    """

    embeds: torch.Tensor | None = None
    projected: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    memory: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


@dataclass
class InternVideo2TextEncoding(ModelOutput):
    r"""
    embeds: L2-normalised contrastive embedding of the CLS token (batch, projection_dim).
    projected: `text_proj(cls)` before normalisation.
    last_hidden_state: output of the text-only layers (batch, length, hidden), the input of the fusion layers.
    attention_mask: the text attention mask.
    """

    embeds: torch.Tensor | None = None
    projected: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None


@dataclass
class InternVideo2AudioEncoding(ModelOutput):
    r"""
    embeds: L2-normalised contrastive embedding (batch, projection_dim).
    projected: `audio_proj(pooled)` before normalisation.
    pooled: mean of the audio tokens (batch, audio hidden).
    memory: audio tokens projected for the fusion layers (batch, tokens, memory_width).
    """

    embeds: torch.Tensor | None = None
    projected: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    memory: torch.Tensor | None = None


@dataclass
class InternVideo2Output(ModelOutput):
    r"""
    loss: in-batch contrastive loss (symmetric cross-entropy), when `return_loss=True`.
    logits_per_video: (videos, texts) similarities divided by the temperature; the "video" side is the audio-visual
        fusion when audio is given to a model with an audio tower.
    logits_per_text: its transpose.
    video_embeds / text_embeds / audio_embeds: normalised embeddings.
    vision_encoding / text_encoding / audio_encoding: the per-tower encodings (tokens for matching).
    """

    loss: torch.Tensor | None = None
    logits_per_video: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    video_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    vision_encoding: InternVideo2VisionEncoding | None = None
    text_encoding: InternVideo2TextEncoding | None = None
    audio_encoding: InternVideo2AudioEncoding | None = None

    def to_tuple(self):
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


class InternVideo2MemoryProjection(nn.Module):
    """Linear + LayerNorm taking vision or audio tokens to the width the fusion layers attend to (6B)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, out_features)
        self.layer_norm = nn.LayerNorm(out_features)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.dense(hidden_states))


class InternVideo2PreTrainedModel(PreTrainedModel):
    config: InternVideo2Config
    config_class = InternVideo2Config
    base_model_prefix = "internvideo2"
    main_input_name = "input_ids"
    input_modalities = ("video", "image", "text", "audio")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2TextLayer", "InternVideo2AudioLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range if hasattr(self.config, "initializer_range") else 0.02
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2Model):
            init.constant_(module.temperature, self.config.temperature)


class InternVideo2Model(InternVideo2PreTrainedModel):
    """InternVideo2 Stage 2: zero-shot video/image/audio ↔ text retrieval and classification, and (video, text)
    matching through the fusion layers."""

    def __init__(self, config: InternVideo2Config):
        super().__init__(config)
        text_width = config.text_config.hidden_size
        self.vision_model = InternVideo2VisionModel(config.vision_config)
        self.text_model = InternVideo2TextForMaskedLM(config.text_config)
        self.vision_projection = nn.Linear(config.vision_config.attention_pool_output_size, config.projection_dim)
        self.text_projection = nn.Linear(text_width, config.projection_dim)
        self.itm_head = nn.Linear(text_width, 2)
        self.temperature = nn.Parameter(torch.tensor(config.temperature))
        memory = config.memory_projection_dim
        self.vision_memory_projection = (
            InternVideo2MemoryProjection(config.vision_config.hidden_size, memory) if memory else None
        )
        if config.audio_config is not None:
            audio_width = config.audio_config.hidden_size
            self.audio_model = InternVideo2AudioModel(config.audio_config)
            self.audio_projection = nn.Linear(audio_width, config.projection_dim)
            self.audio_memory_projection = InternVideo2MemoryProjection(audio_width, memory)
            self.audio_visual_fusion = nn.Linear(2 * config.projection_dim, config.projection_dim)
            self.audio_visual_itm_head = nn.Linear(text_width, 2)
        else:
            self.audio_model = self.audio_projection = self.audio_memory_projection = None
            self.audio_visual_fusion = self.audio_visual_itm_head = None
        self.post_init()

    # ----------------------------------------------------------------------------------------------- encoders

    def encode_vision(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
    ) -> InternVideo2VisionEncoding:
        """Encode videos (B, T, C, H, W) or images (B, C, H, W); `bool_masked_pos` drops tokens (training)."""
        output: BaseModelOutputWithPooling = self.vision_model(
            pixel_values_videos=pixel_values_videos,
            pixel_values=pixel_values,
            bool_masked_pos=bool_masked_pos,
            interpolate_pos_encoding=interpolate_pos_encoding,
        )
        tokens = output.last_hidden_state
        memory = self.vision_memory_projection(tokens) if self.vision_memory_projection is not None else tokens
        projected = self.vision_projection(output.pooler_output)
        return InternVideo2VisionEncoding(
            embeds=F.normalize(projected, dim=-1),
            projected=projected,
            pooled=output.pooler_output,
            memory=memory,
            last_hidden_state=tokens,
        )

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> InternVideo2TextEncoding:
        """Run the text-only layers; the CLS token gives the contrastive embedding."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.text_model.bert(input_ids=input_ids, attention_mask=attention_mask, mode="text").last_hidden_state
        projected = self.text_projection(hidden[:, 0])
        return InternVideo2TextEncoding(
            embeds=F.normalize(projected, dim=-1),
            projected=projected,
            last_hidden_state=hidden,
            attention_mask=attention_mask,
        )

    def encode_audio(
        self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> InternVideo2AudioEncoding:
        """Encode fbank features (B, frames, 64) with the audio tower (6B only)."""
        if self.audio_model is None:
            raise ValueError("this model has no audio tower (config.audio_config is None)")
        output = self.audio_model(input_features, attention_mask=attention_mask)
        projected = self.audio_projection(output.pooler_output)
        return InternVideo2AudioEncoding(
            embeds=F.normalize(projected, dim=-1),
            projected=projected,
            pooled=output.pooler_output,
            memory=self.audio_memory_projection(output.last_hidden_state),
        )

    def fuse_audio_visual(self, audio_projected: torch.Tensor, vision_projected: torch.Tensor) -> torch.Tensor:
        """Unnormalised audio-visual embedding `av_fusion(cat(audio_proj, vision_proj))` (audio first)."""
        if self.audio_visual_fusion is None:
            raise ValueError("this model has no audio tower (config.audio_config is None)")
        return self.audio_visual_fusion(torch.cat([audio_projected, vision_projected], dim=-1))

    def get_video_features(self, pixel_values_videos: torch.Tensor, **kwargs) -> torch.Tensor:
        """Normalised video embeddings (batch, projection_dim)."""
        return self.encode_vision(pixel_values_videos=pixel_values_videos, **kwargs).embeds

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Normalised image embeddings (batch, projection_dim) (images use the image position rule)."""
        return self.encode_vision(pixel_values=pixel_values, **kwargs).embeds

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised text embeddings (batch, projection_dim)."""
        return self.encode_text(input_ids, attention_mask).embeds

    def get_audio_features(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised audio embeddings (batch, projection_dim)."""
        return self.encode_audio(input_features, attention_mask).embeds

    def get_audio_visual_features(
        self, pixel_values_videos: torch.Tensor, input_features: torch.Tensor, audio_attention_mask=None
    ) -> torch.Tensor:
        """Normalised fused audio-visual embeddings (batch, projection_dim)."""
        vision = self.encode_vision(pixel_values_videos=pixel_values_videos)
        audio = self.encode_audio(input_features, audio_attention_mask)
        return F.normalize(self.fuse_audio_visual(audio.projected, vision.projected), dim=-1)

    # ----------------------------------------------------------------------------------------------- matching

    def match_logits(
        self,
        memory: torch.Tensor,
        text_hidden_states: torch.Tensor,
        text_attention_mask: torch.Tensor,
        memory_attention_mask: torch.Tensor | None = None,
        audio_visual: bool = False,
    ) -> torch.Tensor:
        """(match, no-match) logits of aligned pairs: fusion layers on the text-only output attending to `memory`
        (vision tokens, or audio+vision tokens with `audio_visual=True`), then the matching head on CLS.
        Column 1 is the "match" logit used for re-ranking."""
        if memory.shape[0] != text_hidden_states.shape[0]:
            raise ValueError(
                f"memory has {memory.shape[0]} samples but text_hidden_states has {text_hidden_states.shape[0]}"
            )
        fused = self.text_model.bert(
            text_hidden_states=text_hidden_states,
            attention_mask=text_attention_mask,
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_attention_mask,
            mode="fusion",
        ).last_hidden_state[:, 0]
        head = self.audio_visual_itm_head if audio_visual else self.itm_head
        if head is None:
            raise ValueError("audio_visual=True needs a model with an audio tower")
        return head(fused)

    def masked_language_modeling(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        memory: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        """MLM prediction (and loss with `labels`) of masked text conditioned on `memory` through the fusion layers."""
        return self.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=memory,
            labels=labels,
            mode="full",
        )

    def clamp_temperature(self) -> None:
        """Keep the temperature in [temperature_min, temperature_max] (in place, like the official training)."""
        with torch.no_grad():
            self.temperature.clamp_(self.config.temperature_min, self.config.temperature_max)

    # ----------------------------------------------------------------------------------------------- forward

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        return_loss: bool = False,
        **kwargs,
    ) -> InternVideo2Output:
        r"""
        Encode whatever is given; with text and a visual (or audio) input, return similarity logits
        `embeds_media @ embeds_text.T / temperature`. With audio and video on a model with an audio tower, the media
        embedding is the audio-visual fusion. `return_loss=True` adds the in-batch contrastive loss (one positive per
        row; use `internvideo2.losses` for gathered, multi-positive and matching losses).
        """
        if self.training:
            self.clamp_temperature()
        if pixel_values_videos is None and pixel_values is None and input_features is None and input_ids is None:
            raise ValueError("pass at least one of input_ids, pixel_values_videos, pixel_values, input_features")
        vision = audio = text = None
        if pixel_values_videos is not None or pixel_values is not None:
            vision = self.encode_vision(pixel_values_videos, pixel_values, bool_masked_pos)
        if input_features is not None:
            audio = self.encode_audio(input_features, audio_attention_mask)
        if input_ids is not None:
            text = self.encode_text(input_ids, attention_mask)

        media_embeds = None
        if vision is not None and audio is not None:
            if vision.embeds.shape[0] != audio.embeds.shape[0]:
                raise ValueError(
                    f"batch size mismatch: {vision.embeds.shape[0]} videos but {audio.embeds.shape[0]} audio clips"
                )
            media_embeds = F.normalize(self.fuse_audio_visual(audio.projected, vision.projected), dim=-1)
        elif vision is not None or audio is not None:
            media_embeds = (vision or audio).embeds

        logits_per_video = logits_per_text = loss = None
        if media_embeds is not None and text is not None:
            logits_per_video = media_embeds @ text.embeds.T / self.temperature
            logits_per_text = logits_per_video.T
            if return_loss:
                loss = in_batch_contrastive_loss(logits_per_video)
        elif return_loss:
            raise ValueError("return_loss needs text and a visual or audio input")

        return InternVideo2Output(
            loss=loss,
            logits_per_video=logits_per_video,
            logits_per_text=logits_per_text,
            video_embeds=vision.embeds if vision is not None else None,
            text_embeds=text.embeds if text is not None else None,
            audio_embeds=audio.embeds if audio is not None else None,
            vision_encoding=vision,
            text_encoding=text,
            audio_encoding=audio,
        )


__all__ = ["InternVideo2PreTrainedModel", "InternVideo2Model"]
