"""Configuration of the InternVideo2 video encoder (ViT with 3-D patches, QK-RMSNorm, LayerScale, attention pooling)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# Released geometries (official `internvideo2_{small,base,large,1B,6B}_patch14_224`, spec §1.2).
VISION_PRESETS: dict[str, dict] = {
    "S/14": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "B/14": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "L/14": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "1B": dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=16, intermediate_size=6144),
    "6B": dict(hidden_size=3200, num_hidden_layers=48, num_attention_heads=25, intermediate_size=12800),
}
_PRESET_ALIASES = {"s": "S/14", "small": "S/14", "b": "B/14", "base": "B/14", "l": "L/14", "large": "L/14"}


@strict
class InternVideo2VisionConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2VisionModel`]. Defaults give the InternVideo2-1B encoder at 8 frames × 224².
    Use [`InternVideo2VisionConfig.from_preset`] for the released sizes ("S/14", "B/14", "L/14", "1B", "6B").

    num_frames (`int`): frames the learned position table covers; other frame counts are interpolated.
    tubelet_size (`int`): frames per 3-D patch (1 for all released models).
    use_qk_norm (`bool`): RMSNorm over the full width of queries and keys before splitting heads.
    layer_scale_init_value (`float`): LayerScale init (1e-5 in the official code); 0 disables LayerScale.
    layer_scale_force_fp32 (`bool`): compute LayerScale in float32 under mixed precision, as the official
        `layerscale_no_force_fp32=False` does.
    hidden_act (`str`): "gelu" (exact, what the official code runs without flash-attn) or "gelu_pytorch_tanh"
        (what its fused training MLP ran).
    use_attention_pool (`bool`): add the attention-pooling head (`clip_projector`); the chat tower has none.
    attention_pool_num_heads / attention_pool_output_size: heads and output width of that head (16 and 768).
    use_separate_image_position_embeddings (`bool`): images (T=1) use their own table (1B Stage-2, chat) instead of
        the video table averaged over time.
    interpolate_pos_encoding (`bool`): resize the position table on the fly for inputs of another frame count or
        size; when False such inputs are an error.
    use_post_layernorm (`bool`): LayerNorm on the output tokens (the chat tower's `vision_layernorm`).
    use_attentive_probe (`bool`): [`InternVideo2ForVideoClassification`] adds the attentive-probing residual MLP
        (LayerNorm + MLP(768→3072→768), zero-initialised output) after the pool.
    """

    model_type = "internvideo2_vision_model"
    base_config_key = "vision_config"

    hidden_size: int = 1408
    num_hidden_layers: int = 40
    num_attention_heads: int = 16
    intermediate_size: int = 6144
    hidden_act: str = "gelu"
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 8
    tubelet_size: int = 1
    qkv_bias: bool = False
    use_qk_norm: bool = True
    rms_norm_eps: float = 1e-6
    layer_scale_init_value: float = 1e-5
    layer_scale_force_fp32: bool = True
    attention_dropout: float = 0.0
    drop_path_rate: float = 0.0
    use_attention_pool: bool = True
    attention_pool_num_heads: int = 16
    attention_pool_output_size: int = 768
    attention_pool_layer_norm_eps: float = 1e-5
    use_separate_image_position_embeddings: bool = False
    interpolate_pos_encoding: bool = True
    use_post_layernorm: bool = False
    post_layernorm_eps: float = 1e-12
    initializer_range: float = 0.02
    classifier_dropout: float = 0.0
    use_attentive_probe: bool = False

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "InternVideo2VisionConfig":
        """Config of a released size ("S/14", "B/14", "L/14", "1B", "6B"); keyword arguments override any field."""
        key = _PRESET_ALIASES.get(name.lower(), name) if isinstance(name, str) else name
        key = {k.lower(): k for k in VISION_PRESETS}.get(str(key).lower(), key)
        if key not in VISION_PRESETS:
            raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(VISION_PRESETS)}")
        return cls(**{**VISION_PRESETS[key], **kwargs})

    @property
    def num_patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    def validate_architecture(self):
        """Part of `@strict` validation."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if self.use_attention_pool and self.hidden_size % self.attention_pool_num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of attention_pool_num_heads "
                f"({self.attention_pool_num_heads})"
            )
        if self.hidden_size % 4:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by 4 (3-D sin-cos position table)")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.num_frames % self.tubelet_size:
            raise ValueError(f"num_frames ({self.num_frames}) must be a multiple of tubelet_size ({self.tubelet_size})")
        if self.hidden_act not in ("gelu", "gelu_pytorch_tanh", "gelu_new", "quick_gelu", "silu", "relu"):
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; use 'gelu' or 'gelu_pytorch_tanh'")


__all__ = ["InternVideo2VisionConfig", "VISION_PRESETS"]
