"""InternVideo2-Chat: the InternVideo2 vision tower, the VideoChat2 Q-Former and a causal LLM (spec §5.1).

Each image, video or HD tile passes the vision tower (cut at the official block, LayerNorm on every token), then
the Q-Former reads it with `num_query_tokens + num_extra_query_tokens` learned queries (optionally beside the
instruction text); `language_projection` (official `project_up`) maps the query outputs to the LLM width and they
replace the placeholder rows of the prompt, in order of appearance.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import ModelOutput

from .configuration_chat import InternVideo2ChatConfig
from .modeling_qformer import InternVideo2QFormerModel
from .modeling_vision import InternVideo2VisionModel


@dataclass
class InternVideo2ChatCausalLMOutputWithPast(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `(1,)`, *optional*): next-token loss on the labelled positions.
    logits (`torch.FloatTensor` of shape `(batch, sequence_length, vocab_size)`): LLM logits.
    past_key_values (`Cache`, *optional*): the LLM's key/value cache.
    hidden_states / attentions: the LLM's, when requested.
    media_hidden_states (`torch.FloatTensor` of shape `(num_media, num_media_tokens, llm_hidden_size)`, *optional*):
        the projected Q-Former outputs that replaced the placeholder rows.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    media_hidden_states: torch.FloatTensor | None = None


class InternVideo2ChatPreTrainedModel(PreTrainedModel):
    config: InternVideo2ChatConfig
    config_class = InternVideo2ChatConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InstructBlipQFormerLayer", "InternVideo2VisionEmbeddings"]
    _skip_keys_device_placement = "past_key_values"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False

    @torch.no_grad()
    def _init_weights(self, module):
        """Official init of the queries: the first `num_query_tokens` N(0, 0.02), the extra ones zero."""
        super()._init_weights(module)
        if isinstance(module, InternVideo2ChatForConditionalGeneration):
            init.zeros_(module.query_tokens)
            init.normal_(module.query_tokens[:, : self.config.num_query_tokens], std=self.config.initializer_range)


class InternVideo2ChatForConditionalGeneration(InternVideo2ChatPreTrainedModel, GenerationMixin):
    def __init__(self, config: InternVideo2ChatConfig):
        super().__init__(config)
        self.vision_model = InternVideo2VisionModel(config.vision_config)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_media_tokens, config.qformer_config.hidden_size))
        self.qformer = InternVideo2QFormerModel(config.qformer_config)
        self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
        # Built from the config only: weights come from `from_pretrained` / the converter, never a download here.
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module):
        self.language_model.set_output_embeddings(value)

    def get_decoder(self):
        return self.language_model.get_decoder()

    def get_media_features(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r"""
        Projected query outputs `(num_media, num_media_tokens, llm_hidden_size)` of videos / HD tiles
        `pixel_values_videos (num_media, frames, channels, height, width)` or images `pixel_values (num_media,
        channels, height, width)`; `qformer_input_ids` / `qformer_attention_mask (num_media, text_length)` give the
        instruction each item's Q-Former reads (HD tiles repeat their video's instruction).
        """
        pixel_values = pixel_values_videos if pixel_values is None else pixel_values
        vision_dtype = self.vision_model.embeddings.patch_embedding.weight.dtype
        vision_tokens = self.vision_model(pixel_values_videos=pixel_values.to(vision_dtype)).last_hidden_state
        num_media = vision_tokens.shape[0]
        if qformer_input_ids is not None and qformer_input_ids.shape[0] != num_media:
            raise ValueError(
                f"qformer_input_ids has {qformer_input_ids.shape[0]} rows but there are {num_media} media items "
                "(one instruction row per image, video or HD tile)"
            )
        if not self.config.use_qformer_text_input:
            qformer_input_ids = qformer_attention_mask = None
        queries = self.query_tokens.expand(num_media, -1, -1)
        qformer_out = self.qformer(
            query_embeds=queries,
            encoder_hidden_states=vision_tokens,
            input_ids=qformer_input_ids,
            attention_mask=qformer_attention_mask,
        ).last_hidden_state[:, : queries.shape[1]]
        return self.language_projection(qformer_out)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        qformer_input_ids: torch.LongTensor | None = None,
        qformer_attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> InternVideo2ChatCausalLMOutputWithPast:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch, sequence_length)`): prompt ids in which each media item
            occupies `num_media_tokens` consecutive `media_token_id` rows (the processor expands them).
        pixel_values_videos (`torch.FloatTensor` of shape `(num_media, frames, channels, height, width)`, *optional*):
            videos or HD tiles, in the order their placeholders appear in the batch (row by row).
        pixel_values (`torch.FloatTensor` of shape `(num_media, channels, height, width)`, *optional*): images.
        qformer_input_ids / qformer_attention_mask (`(num_media, text_length)`, *optional*): Q-Former instruction.
        labels (`torch.LongTensor` of shape `(batch, sequence_length)`, *optional*): targets aligned with
            `input_ids` (-100 ignored); the LLM shifts them.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if pixel_values_videos is not None and pixel_values is not None:
            raise ValueError("pass either pixel_values_videos or pixel_values in one call, not both")
        media = pixel_values_videos if pixel_values is None else pixel_values

        media_features = None
        if inputs_embeds is None:
            placeholder = input_ids == self.config.media_token_id
            # The placeholder id may lie outside the LLM vocabulary: its rows are overwritten below anyway.
            inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(placeholder, 0))
            num_placeholders = int(placeholder.sum())
            if media is None and num_placeholders:
                raise ValueError(
                    f"input_ids hold {num_placeholders} media placeholder tokens (id {self.config.media_token_id}) "
                    "but no pixel_values_videos or pixel_values were given"
                )
            if media is not None:
                media_features = self.get_media_features(
                    pixel_values_videos, pixel_values, qformer_input_ids, qformer_attention_mask
                )
                if num_placeholders != media_features.shape[0] * media_features.shape[1]:
                    raise ValueError(
                        f"input_ids hold {num_placeholders} media placeholder tokens (id {self.config.media_token_id})"
                        f" but {media_features.shape[0]} media items need {media_features.shape[1]} each"
                    )
                mask = placeholder.unsqueeze(-1).expand_as(inputs_embeds)
                inputs_embeds = inputs_embeds.masked_scatter(mask, media_features.to(inputs_embeds.dtype))
        elif media is not None:
            raise ValueError("media needs input_ids (to locate its placeholder tokens), not inputs_embeds")

        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        return InternVideo2ChatCausalLMOutputWithPast(
            loss=outputs.loss,
            logits=outputs.logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            media_hidden_states=media_features,
        )


LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


def official_lora_config(r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.1, **kwargs):
    """peft `LoraConfig` of the released chat models (spec §5.1): r 16, alpha 32, dropout 0.1 on the LLM's attention,
    MLP and `lm_head` only (the vision tower also has `q_proj`-like names, hence the regex)."""
    from peft import LoraConfig

    targets = "|".join(LORA_TARGET_MODULES)
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=rf"language_model\.(.*\.)?({targets})",
        **kwargs,
    )


__all__ = [
    "InternVideo2ChatForConditionalGeneration",
    "InternVideo2ChatPreTrainedModel",
    "InternVideo2ChatCausalLMOutputWithPast",
    "official_lora_config",
]
