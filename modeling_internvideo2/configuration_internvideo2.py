"""Configuration of the composite Stage-2 InternVideo2 model (video encoder + BERT text/fusion encoder + optional
BEATs audio encoder, with contrastive projections and matching heads)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_audio import InternVideo2AudioConfig
from .configuration_text import InternVideo2TextConfig
from .configuration_vision import InternVideo2VisionConfig


@strict
class InternVideo2Config(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2Model`]. Use [`InternVideo2Config.from_preset`] for the released Stage-2 models:
    "1B" (`InternVideo2-Stage2_1B-224p-f4`: 1B video encoder with an image position table, BERT-large 19+5, 512-d
    embeddings) and "6B" (`InternVideo2-Stage2_6B-224p-f4`: 6B video encoder, BEATs audio encoder, 768-d embeddings,
    vision and audio tokens projected to 768 before the fusion layers).

    vision_config / text_config / audio_config: sub-configs; `audio_config=None` builds no audio tower.
    projection_dim (`int`): width of the contrastive embeddings (`vision_proj`, `text_proj`, `audio_proj`).
    memory_projection_dim (`int`, *optional*): when set (6B: 768), vision and audio tokens go through
        Linear + LayerNorm to this width before the fusion layers attend to them (`av_concat_*_proj`), and
        `text_config.encoder_width` must equal it; when None the fusion layers attend to raw vision tokens.
    temperature / temperature_min / temperature_max: learnable softmax temperature (init 0.07), clamped in place to
        [0.001, 0.5] at every training forward as the official code does.
    """

    model_type = "internvideo2"
    sub_configs_defaults = {
        "vision_config": InternVideo2VisionConfig,
        "text_config": InternVideo2TextConfig,
        "audio_config": SubConfigSpec(InternVideo2AudioConfig, optional=True),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 512
    memory_projection_dim: int | None = None
    temperature: float = 0.07
    temperature_min: float = 0.001
    temperature_max: float = 0.5

    @classmethod
    def from_preset(cls, name: str, num_frames: int = 4, **kwargs) -> "InternVideo2Config":
        """Config of a released Stage-2 model ("1B" or "6B"); `kwargs` override top-level fields."""
        if name == "1B":
            vision = InternVideo2VisionConfig.from_preset(
                "1B", num_frames=num_frames, use_separate_image_position_embeddings=True
            )
            fields = dict(
                vision_config=vision,
                text_config=InternVideo2TextConfig.from_preset("bert-large", encoder_width=vision.hidden_size),
                projection_dim=512,
            )
        elif name == "6B":
            fields = dict(
                vision_config=InternVideo2VisionConfig.from_preset("6B", num_frames=num_frames),
                text_config=InternVideo2TextConfig.from_preset("bert-large", encoder_width=768),
                audio_config=InternVideo2AudioConfig(),
                projection_dim=768,
                memory_projection_dim=768,
            )
        else:
            raise ValueError(f"unknown preset {name!r}; available presets: 1B, 6B")
        return cls(**{**fields, **kwargs})

    @property
    def memory_width(self) -> int:
        """Width of the tokens the fusion layers attend to."""
        return self.memory_projection_dim or self.vision_config.hidden_size

    def validate_architecture(self):
        """Part of `@strict` validation."""
        if self.text_config.encoder_width != self.memory_width:
            raise ValueError(
                f"text_config.encoder_width ({self.text_config.encoder_width}) must equal the width of the tokens the "
                f"fusion layers attend to ({self.memory_width})"
            )
        if self.audio_config is not None and self.memory_projection_dim is None:
            raise ValueError("an audio tower needs memory_projection_dim (audio and vision tokens share the memory)")
        if not self.vision_config.use_attention_pool:
            raise ValueError("vision_config.use_attention_pool must be True: the contrastive embedding is the pool")


__all__ = ["InternVideo2Config"]
