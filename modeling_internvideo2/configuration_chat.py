"""Configuration of InternVideo2-Chat (VideoChat2 with the InternVideo2 vision tower, spec §5.1)."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.models.instructblip.configuration_instructblip import InstructBlipQFormerConfig

from .configuration_vision import InternVideo2VisionConfig

# The chat tower: InternVideo2-1B cut after block 39 of 40 (official `x_vis_return_idx=-2`, so 39 blocks are built and
# stored), no attention pool, a LayerNorm on every output token (`vision_layernorm`), separate image position table.
CHAT_VISION_DEFAULTS = dict(
    hidden_size=1408,
    num_hidden_layers=39,
    num_attention_heads=16,
    intermediate_size=6144,
    num_frames=8,
    use_attention_pool=False,
    use_post_layernorm=True,
    post_layernorm_eps=1e-12,
    use_separate_image_position_embeddings=True,
    layer_scale_force_fp32=False,
)
# Mistral-7B-Instruct-v0.3, the LLM of InternVideo2-Chat-8B and -HD.
CHAT_TEXT_DEFAULTS = dict(
    vocab_size=32768,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=32768,
    rope_theta=1e6,
    sliding_window=None,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


@strict
class InternVideo2QFormerConfig(InstructBlipQFormerConfig):
    r"""
    Configuration of [`InternVideo2QFormerModel`]: the BLIP-2 / InstructBLIP Q-Former (BERT-base geometry,
    cross-attention to the vision tokens in every `cross_attention_frequency`-th layer, separate feed-forward for the
    query rows, instruction text fed in beside the queries) with VideoChat2's stochastic depth.

    drop_path_rate (`float`): drop-path rate of the last layer; layer i uses `drop_path_rate * i / (layers - 1)`
        (official `qformer_drop_path_rate`, linearly spaced from 0). Only active in training.
    """

    model_type = "internvideo2_qformer"
    base_config_key = "qformer_config"

    vocab_size: int = 30523  # bert-base-uncased + the added `[DEC]` token
    encoder_hidden_size: int = 1408
    drop_path_rate: float = 0.2


@strict
class InternVideo2ChatConfig(PreTrainedConfig):
    r"""
    Configuration of [`InternVideo2ChatForConditionalGeneration`] (InternVideo2-Chat-8B by default).

    vision_config (`InternVideo2VisionConfig`): the vision tower, already cut at the block the chat model reads.
    qformer_config (`InternVideo2QFormerConfig`): the Q-Former; its `encoder_hidden_size` follows the vision width.
    text_config (`PreTrainedConfig`): any causal-LM config `AutoModelForCausalLM` can build (default Mistral v0.3).
    num_query_tokens (`int`): learned queries trained from the start (official `num_query_token`, 32).
    num_extra_query_tokens (`int`): queries added for instruction tuning (official `extra_num_query_token`, 64). Each
        image, video or HD tile gives `num_query_tokens + num_extra_query_tokens` LLM tokens.
    media_token_id (`int`): id of the visual placeholder token in `input_ids`; its rows are replaced by the projected
        Q-Former outputs, so it may lie outside the LLM vocabulary (our processor adds `<VID_PLH>` after it).
    image_token_id (`int`, *optional*): id of a separate image placeholder token (the processor's `image_token`,
        e.g. `<IMG_PLH>`), needed to mix images and videos in one call; None: images use `media_token_id` too.
    use_qformer_text_input (`bool`): feed the instruction text into the Q-Former when it is given.
    """

    model_type = "internvideo2_chat"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(InternVideo2VisionConfig, init_kwargs=CHAT_VISION_DEFAULTS),
        "qformer_config": InternVideo2QFormerConfig,
        "text_config": SubConfigSpec(AutoConfig, model_type="mistral", init_kwargs=CHAT_TEXT_DEFAULTS),
    }

    vision_config: dict | PreTrainedConfig | None = None
    qformer_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    num_query_tokens: int = 32
    num_extra_query_tokens: int = 64
    media_token_id: int = 32768
    image_token_id: int | None = None
    use_qformer_text_input: bool = True
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        # Checked here rather than in a `validate_*` hook so that a bad value raises a plain one-line ValueError.
        text_type = self.text_config.get("model_type") if isinstance(self.text_config, dict) else None
        if text_type is not None and text_type not in CONFIG_MAPPING_NAMES:
            raise ValueError(f"text_config.model_type {text_type!r} is not a model type transformers knows")
        super().__post_init__(**kwargs)
        if self.text_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise ValueError(
                f"text_config.model_type {self.text_config.model_type!r} is not a causal language model "
                "AutoModelForCausalLM can build"
            )
        if self.num_query_tokens < 1:
            raise ValueError(f"num_query_tokens must be >= 1, got {self.num_query_tokens}")
        if self.num_extra_query_tokens < 0:
            raise ValueError(f"num_extra_query_tokens must be >= 0, got {self.num_extra_query_tokens}")
        if self.media_token_id < 0:
            raise ValueError(f"media_token_id must be >= 0, got {self.media_token_id}")
        if self.image_token_id is not None and (self.image_token_id < 0 or self.image_token_id == self.media_token_id):
            raise ValueError(
                f"image_token_id must be None or a non-negative id other than media_token_id "
                f"({self.media_token_id}), got {self.image_token_id}"
            )
        if self.vision_config.use_attention_pool or not self.vision_config.use_post_layernorm:
            raise ValueError(
                "vision_config must be the chat tower: use_attention_pool=False and use_post_layernorm=True"
            )
        if self.qformer_config.hidden_size % self.qformer_config.num_attention_heads:
            raise ValueError(
                f"qformer_config.hidden_size ({self.qformer_config.hidden_size}) must be a multiple of "
                f"qformer_config.num_attention_heads ({self.qformer_config.num_attention_heads})"
            )
        self.qformer_config.encoder_hidden_size = self.vision_config.hidden_size

    @property
    def num_media_tokens(self) -> int:
        """LLM tokens per image, video or HD tile."""
        return self.num_query_tokens + self.num_extra_query_tokens


__all__ = ["InternVideo2ChatConfig", "InternVideo2QFormerConfig", "CHAT_VISION_DEFAULTS", "CHAT_TEXT_DEFAULTS"]
