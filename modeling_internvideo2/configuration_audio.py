"""Configuration of the InternVideo2 audio encoder (BEATs, as used by InternVideo2-6B Stage 2)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class InternVideo2AudioConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2AudioModel`], the BEATs audio encoder of InternVideo2-6B Stage 2.

    The defaults reproduce the released 6B audio encoder (the `BEATs_iter3` configuration stored in the official
    `beats.pth`): a 16x16 patch embedding of a 64-bin log-Mel fbank, 12 post-LN ("deep-norm") transformer layers of
    width 768, a weight-normalised convolutional position embedding and a gated relative position bias that is shared
    by all layers.

    Args:
        num_mel_bins (`int`, *optional*, defaults to 64):
            Number of Mel bins of the input fbank (the frequency axis of `input_features`).
        patch_size (`int`, *optional*, defaults to 16):
            Side of the square (time x frequency) patches cut from the fbank.
        patch_embedding_dim (`int`, *optional*, defaults to 512):
            Width of the patch embedding before it is projected to `hidden_size`.
        patch_embedding_bias (`bool`, *optional*, defaults to `False`):
            Whether the patch-embedding convolution has a bias.
        hidden_size (`int`, *optional*, defaults to 768):
            Width of the transformer layers.
        num_hidden_layers (`int`, *optional*, defaults to 12):
            Number of transformer layers.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Number of attention heads per layer.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Width of the feed-forward layers.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward layers (a key of `transformers.activations.ACT2FN`).
        input_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the projected patch embeddings.
        hidden_dropout (`float`, *optional*, defaults to 0.0):
            Dropout after the position embedding and on the outputs of the attention and feed-forward blocks.
        attention_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the attention probabilities.
        activation_dropout (`float`, *optional*, defaults to 0.0):
            Dropout after the feed-forward activation.
        layerdrop (`float`, *optional*, defaults to 0.05):
            Probability of skipping a whole layer in training (LayerDrop); inactive in eval mode.
        layer_norm_first (`bool`, *optional*, defaults to `False`):
            Pre-LN layers with a final encoder LayerNorm if `True`; post-LN layers with a LayerNorm applied after the
            position embedding if `False`.
        deep_norm (`bool`, *optional*, defaults to `True`):
            Scale the residual branch of post-LN layers by `(2 * num_hidden_layers) ** 0.25` (DeepNet). Only valid
            with `layer_norm_first=False`.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm.
        num_conv_pos_embeddings (`int`, *optional*, defaults to 128):
            Kernel size of the convolutional position embedding.
        num_conv_pos_embedding_groups (`int`, *optional*, defaults to 16):
            Groups of the convolutional position embedding.
        use_relative_position_bias (`bool`, *optional*, defaults to `True`):
            Add a learned, bucketed relative position bias to the attention logits (one table shared by all layers).
        num_buckets (`int`, *optional*, defaults to 320):
            Number of relative position buckets (half for each direction).
        max_bucket_distance (`int`, *optional*, defaults to 800):
            Distance at which the log-spaced buckets saturate.
        use_gated_relative_position_bias (`bool`, *optional*, defaults to `True`):
            Scale the relative position bias per query and head by a gate computed from the query (BEATs/WavLM
            "gated relative position"). Requires `use_relative_position_bias`.
        layer_wise_gradient_decay_ratio (`float`, *optional*, defaults to 0.6):
            Factor by which the gradient is multiplied at the input of every layer (the forward pass is unchanged).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of linear and embedding weights.

    Example:

    ```python
    >>> from internvideo2.configuration_audio import InternVideo2AudioConfig
    >>> from internvideo2.modeling_audio import InternVideo2AudioModel

    >>> config = InternVideo2AudioConfig()  # the released InternVideo2-6B audio encoder
    >>> model = InternVideo2AudioModel(config)
    ```
    """

    model_type = "internvideo2_audio"
    base_config_key = "audio_config"

    num_mel_bins: int = 64
    patch_size: int = 16
    patch_embedding_dim: int = 512
    patch_embedding_bias: bool = False
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    input_dropout: float | int = 0.0
    hidden_dropout: float | int = 0.0
    attention_dropout: float | int = 0.0
    activation_dropout: float | int = 0.0
    layerdrop: float | int = 0.05
    layer_norm_first: bool = False
    deep_norm: bool = True
    layer_norm_eps: float = 1e-5
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    use_relative_position_bias: bool = True
    num_buckets: int = 320
    max_bucket_distance: int = 800
    use_gated_relative_position_bias: bool = True
    layer_wise_gradient_decay_ratio: float | int = 0.6
    initializer_range: float = 0.02

    def validate_architecture(self):
        """Part of `@strict`-powered validation: reject combinations the architecture cannot build."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})"
            )
        if self.num_mel_bins < self.patch_size:
            raise ValueError(f"num_mel_bins ({self.num_mel_bins}) must be at least patch_size ({self.patch_size})")
        if self.deep_norm and self.layer_norm_first:
            raise ValueError(
                "deep_norm applies to post-LN layers only; it cannot be combined with layer_norm_first=True"
            )
        if self.use_gated_relative_position_bias and not self.use_relative_position_bias:
            raise ValueError("use_gated_relative_position_bias=True requires use_relative_position_bias=True")
        if self.use_relative_position_bias and not 0 < self.num_buckets // 4 < self.max_bucket_distance:
            raise ValueError(
                f"num_buckets ({self.num_buckets}) and max_bucket_distance ({self.max_bucket_distance}) must satisfy "
                "0 < num_buckets // 4 < max_bucket_distance"
            )
        if not 0.0 <= self.layerdrop <= 1.0:
            raise ValueError(f"layerdrop must be in [0, 1], got {self.layerdrop}")
        if self.layer_wise_gradient_decay_ratio <= 0:
            raise ValueError(
                f"layer_wise_gradient_decay_ratio must be positive, got {self.layer_wise_gradient_decay_ratio}"
            )


__all__ = ["InternVideo2AudioConfig"]
