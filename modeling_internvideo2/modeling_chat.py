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
        the projected Q-Former outputs that replaced the placeholder rows, in placeholder order.
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
        """All queries N(0, initializer_range). The official init zeroes the extra queries, but a zero query row has
        zero variance in the Q-Former's embedding LayerNorm (eps 1e-12), whose input gradient then scales by
        1/sqrt(eps) = 1e6: under gradient clipping that gradient takes the whole update from every other weight. Loaded
        checkpoints (converted or saved) keep their own queries; only fresh models take this init."""
        super()._init_weights(module)
        if isinstance(module, InternVideo2ChatForConditionalGeneration):
            init.normal_(module.query_tokens, std=self.config.initializer_range)


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
            occupies `num_media_tokens` consecutive placeholder rows (the processor expands them): `media_token_id`
            for videos (and for images unless the config sets `image_token_id`).
        pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, frames, channels, height, width)`, *optional*):
            videos or HD tiles, in the order their placeholders appear in the batch (row by row).
        pixel_values (`torch.FloatTensor` of shape `(num_images, channels, height, width)`, *optional*): images, in
            the order of their placeholders. Images and videos mix in one call when `image_token_id` is set.
        qformer_input_ids / qformer_attention_mask (`(num_media, text_length)`, *optional*): Q-Former instruction,
            one row per media item in placeholder order (images and videos interleaved as in the prompts).
        labels (`torch.LongTensor` of shape `(batch, sequence_length)`, *optional*): targets aligned with
            `input_ids` (-100 ignored); the LLM shifts them.

        The text rows are the LLM's input embeddings, detached as in the official `pad_text_embeds`: the LLM's input
        embedding table gets no gradient through them (it is frozen under LoRA anyway).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        media_features = None
        if inputs_embeds is None:
            video_rows = input_ids == self.config.media_token_id
            image_token_id = self.config.image_token_id
            image_rows = video_rows if image_token_id is None else input_ids == image_token_id
            if pixel_values_videos is not None and pixel_values is not None and image_token_id is None:
                raise ValueError(
                    "pixel_values_videos and pixel_values in one call need image_token_id in the config (a separate "
                    "image placeholder token) to tell their placeholders apart"
                )
            placeholder = video_rows | image_rows
            # The placeholder ids may lie outside the LLM vocabulary: their rows are overwritten below anyway.
            inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(placeholder, 0)).detach()
            num_placeholders = int(placeholder.sum())
            if pixel_values_videos is None and pixel_values is None:
                if num_placeholders:
                    raise ValueError(
                        f"input_ids hold {num_placeholders} media placeholder tokens (id {self.config.media_token_id}"
                        f"{'' if image_token_id is None else f' or {image_token_id}'}) but no pixel_values_videos "
                        "or pixel_values were given"
                    )
            else:
                media_features = self._placeholder_features(
                    video_rows, image_rows, pixel_values_videos, pixel_values, qformer_input_ids,
                    qformer_attention_mask,
                )
                mask = placeholder.unsqueeze(-1).expand_as(inputs_embeds)
                inputs_embeds = inputs_embeds.masked_scatter(mask, media_features.to(inputs_embeds.dtype))
        elif pixel_values_videos is not None or pixel_values is not None:
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

    def _placeholder_features(
        self,
        video_rows: torch.Tensor,
        image_rows: torch.Tensor,
        pixel_values_videos: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        qformer_input_ids: torch.LongTensor | None,
        qformer_attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Projected query outputs `(num_media, num_media_tokens, llm_hidden_size)` of the placeholder slots in order
        of appearance (row by row): videos fill the video slots and images the image slots, each in its own order;
        the Q-Former instruction rows follow the slots."""
        per_item = self.config.num_media_tokens
        placeholder = video_rows | image_rows
        num_placeholders = int(placeholder.sum())
        num_videos = 0 if pixel_values_videos is None else len(pixel_values_videos)
        num_images = 0 if pixel_values is None else len(pixel_values)
        if num_videos and num_images:
            # a slot is `per_item` consecutive placeholder rows: its kind is that of its first row
            slot_is_video = video_rows[placeholder][::per_item]
        else:
            slot_is_video = torch.full((num_placeholders // per_item,), bool(num_videos), device=placeholder.device)
        image_token_id = self.config.image_token_id
        if image_token_id is None:
            found, wanted = num_placeholders, (num_videos + num_images) * per_item
            where = f"media placeholder tokens (id {self.config.media_token_id})"
        else:
            found = (int(video_rows.sum()), int(image_rows.sum()))
            wanted = (num_videos * per_item, num_images * per_item)
            where = f"video and image placeholder tokens (ids {self.config.media_token_id} and {image_token_id})"
        if found != wanted:
            raise ValueError(
                f"input_ids hold {found} {where} but {num_videos} videos and {num_images} images need {per_item} each"
            )
        if qformer_input_ids is not None and qformer_input_ids.shape[0] != len(slot_is_video):
            raise ValueError(
                f"qformer_input_ids has {qformer_input_ids.shape[0]} rows but there are {len(slot_is_video)} media "
                "items (one instruction row per image, video or HD tile)"
            )

        def features_of(slots: torch.Tensor, **pixels) -> torch.Tensor:
            return self.get_media_features(
                **pixels,
                qformer_input_ids=None if qformer_input_ids is None else qformer_input_ids[slots],
                qformer_attention_mask=None if qformer_attention_mask is None else qformer_attention_mask[slots],
            )

        if not num_images:
            return features_of(slot_is_video, pixel_values_videos=pixel_values_videos)
        if not num_videos:
            return features_of(~slot_is_video, pixel_values=pixel_values)
        video_features = features_of(slot_is_video, pixel_values_videos=pixel_values_videos)
        image_features = features_of(~slot_is_video, pixel_values=pixel_values)
        features = video_features.new_empty(len(slot_is_video), *video_features.shape[1:])
        features[slot_is_video] = video_features
        features[~slot_is_video] = image_features
        return features


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
