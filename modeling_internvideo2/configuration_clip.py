"""Configuration of InternVideo2-CLIP: the InternVideo2 video encoder with any Hugging Face text tower."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_vision import InternVideo2VisionConfig


TEXT_POOLING_MODES = ("eos", "cls", "mean")


@strict
class InternVideo2ClipConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2ClipModel`] (spec §4): an InternVideo2 video encoder whose attention pool gives the
    video embedding, and a text tower of any architecture `AutoModel` can build (the official 1B/6B CLIP uses
    InternVL-C's LLaMA-7B, the small ones MobileCLIP's text transformer), pooled and linearly projected.

    vision_config (`InternVideo2VisionConfig`): the video encoder (`use_attention_pool=True`).
    text_config (`PreTrainedConfig`): any text model config (`model_type` picks the architecture; default BERT).
    projection_dim (`int`): width of the contrastive embeddings. Without `use_vision_projection` it must equal the
        vision attention pool's output size (official 1B/6B: the 768-d pool output is the embedding).
    use_vision_projection (`bool`): LayerNorm + Linear from the pool output to `projection_dim` (official S/B/L
        `vision_align`).
    text_pooling (`str`): text feature of a caption: `"eos"` (hidden state of the last real token; official LLaMA
        tower), `"cls"` (first token; BERT-style towers) or `"mean"` (mean over real tokens).
    temperature / temperature_min / temperature_max: learnable softmax temperature, clamped at every training forward
        (official: 0.01, clamped at min 0.01, so effectively fixed).
    """

    model_type = "internvideo2_clip"
    sub_configs_defaults = {
        "vision_config": InternVideo2VisionConfig,
        "text_config": SubConfigSpec(AutoConfig, model_type="bert"),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    projection_dim: int = 768
    use_vision_projection: bool = False
    text_pooling: str = "eos"
    temperature: float = 0.01
    temperature_min: float = 0.01
    temperature_max: float = 1.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Checked here rather than in a `validate_*` hook so that a bad value raises a plain one-line ValueError.
        if self.text_pooling not in TEXT_POOLING_MODES:
            raise ValueError(f"text_pooling must be one of {TEXT_POOLING_MODES}, got {self.text_pooling!r}")
        if not self.vision_config.use_attention_pool:
            raise ValueError("vision_config.use_attention_pool must be True: the video embedding is the pool output")
        pool_size = self.vision_config.attention_pool_output_size
        if not self.use_vision_projection and self.projection_dim != pool_size:
            raise ValueError(
                f"projection_dim ({self.projection_dim}) must equal vision_config.attention_pool_output_size "
                f"({pool_size}) unless use_vision_projection=True"
            )
        if getattr(self.text_config, "hidden_size", None) is None:
            raise ValueError(f"text_config ({self.text_config.model_type}) must define hidden_size")
        if not 0 < self.temperature_min <= self.temperature <= self.temperature_max:
            raise ValueError(
                "temperatures must satisfy 0 < temperature_min <= temperature <= temperature_max, got "
                f"{self.temperature_min}, {self.temperature}, {self.temperature_max}"
            )


__all__ = ["InternVideo2ClipConfig", "TEXT_POOLING_MODES"]
