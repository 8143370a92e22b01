"""Configuration of the InternVideo2 Stage-2 text / fusion encoder (a BERT split into text and fusion layers)."""

from typing import Any, ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


# Architectures of the BERT text encoders the official Stage-2 code knows (`configs/model.py::TextEncoders`).
# The released 1B and 6B Stage-2 models use "bert-large" (19 text-only layers + 5 fusion layers).
TEXT_ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "bert-large": {
        "vocab_size": 30522,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "fusion_layer": 19,
    },
    "bert-base": {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "fusion_layer": 9,
    },
}

# BERT config fields that carry over unchanged to `InternVideo2TextConfig`.
_SHARED_BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
)


@strict
class InternVideo2TextConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2TextModel`] and [`InternVideo2TextForMaskedLM`]: a BERT encoder whose first
    `fusion_layer` layers are text-only and whose remaining layers add cross-attention to vision (or audio-visual)
    tokens of width `encoder_width`. The defaults are the BERT-large 19 + 5 encoder of the InternVideo2-Stage2-1B
    model (vision width 1408).

    Args:
        vocab_size (`int`, *optional*, defaults to 30522):
            Size of the WordPiece vocabulary.
        hidden_size (`int`, *optional*, defaults to 1024):
            Width of the BERT hidden states.
        num_hidden_layers (`int`, *optional*, defaults to 24):
            Total number of layers (text-only plus fusion layers).
        num_attention_heads (`int`, *optional*, defaults to 16):
            Attention heads of the self- and cross-attention.
        intermediate_size (`int`, *optional*, defaults to 4096):
            Width of the feed-forward layer.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward layer and of the MLM head (`"gelu"` is the exact erf GELU).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on embeddings and residual branches.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on attention probabilities.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Number of absolute position embeddings.
        type_vocab_size (`int`, *optional*, defaults to 2):
            Number of token-type embeddings (InternVideo2 always uses type 0).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal weight initialisation.
        layer_norm_eps (`float`, *optional*, defaults to 1e-12):
            Epsilon of every LayerNorm.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of `[PAD]`.
        fusion_layer (`int`, *optional*, defaults to 19):
            Index of the first layer with cross-attention. Layers `0 .. fusion_layer - 1` form the text encoder.
        encoder_width (`int`, *optional*, defaults to 1408):
            Width of the vision / audio-visual tokens the fusion layers attend to (1408 for the 1B model, 768 for the
            6B model).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Tie the MLM decoder to the word embeddings.

    Example:

    ```python
    >>> from internvideo2 import InternVideo2TextConfig, InternVideo2TextModel

    >>> config = InternVideo2TextConfig.from_preset("bert-large", encoder_width=1408)
    >>> model = InternVideo2TextModel(config)
    ```
    """

    model_type = "internvideo2_text"
    base_config_key = "text_config"
    presets: ClassVar[dict[str, dict[str, Any]]] = TEXT_ENCODER_PRESETS

    vocab_size: int = 30522
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    fusion_layer: int = 19
    encoder_width: int = 1408
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Checked here rather than in a `validate_*` hook so that a bad value raises a plain one-line ValueError.
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if not 0 <= self.fusion_layer <= self.num_hidden_layers:
            raise ValueError(
                f"fusion_layer must be between 0 and num_hidden_layers ({self.num_hidden_layers}), "
                f"got {self.fusion_layer}."
            )
        if self.encoder_width <= 0:
            raise ValueError(f"encoder_width must be positive, got {self.encoder_width}.")

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "InternVideo2TextConfig":
        """Build the config of a named text encoder (`"bert-large"`, `"bert-base"`); `kwargs` override fields."""
        if name not in cls.presets:
            raise ValueError(f"Unknown text encoder preset {name!r}; available presets: {sorted(cls.presets)}.")
        return cls(**{**cls.presets[name], **kwargs})

    @classmethod
    def from_bert_config(cls, bert_config: PreTrainedConfig, **kwargs) -> "InternVideo2TextConfig":
        """Build the config matching a Hugging Face `BertConfig`, plus `fusion_layer` / `encoder_width` in `kwargs`."""
        if getattr(bert_config, "model_type", None) != "bert":
            raise ValueError(f"bert_config must be a BERT config, got model_type={bert_config.model_type!r}.")
        position_embedding_type = getattr(bert_config, "position_embedding_type", "absolute")
        if position_embedding_type != "absolute":
            raise ValueError(
                f"bert_config uses position_embedding_type={position_embedding_type!r}; only 'absolute' is supported."
            )
        if getattr(bert_config, "is_decoder", False):
            raise ValueError("bert_config is a decoder (is_decoder=True); InternVideo2 needs a bidirectional BERT.")
        fields = {name: getattr(bert_config, name) for name in _SHARED_BERT_FIELDS}
        return cls(**{**fields, **kwargs})


__all__ = ["InternVideo2TextConfig", "TEXT_ENCODER_PRESETS"]
