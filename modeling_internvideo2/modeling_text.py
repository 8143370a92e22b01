"""InternVideo2 Stage-2 text / fusion encoder: a BERT whose last layers cross-attend to vision or audio-visual tokens.

Layers `0 .. fusion_layer - 1` are plain BERT layers (the text encoder used for contrastive features); layers
`fusion_layer ..` add a cross-attention block whose keys and values come from tokens of width `encoder_width`
(the vision width, which differs from the BERT width). Parameter names follow Hugging Face BERT, so BERT checkpoints
and the official `text_encoder.bert.*` / `text_encoder.cls.*` keys map onto this model one to one.
"""

import os
import re
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from transformers import BertForMaskedLM, BertModel, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithCrossAttentions, MaskedLMOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils import logging as transformers_logging
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .attention import eager_attention_forward
from .configuration_text import InternVideo2TextConfig


TextEncoderMode = Literal["text", "fusion", "full"]
TEXT_ENCODER_MODES = ("text", "fusion", "full")

# The official BERT masks padded keys with an additive -10000 (not finfo.min) in self-attention.
SELF_ATTENTION_MASK_VALUE = -10000.0

# Parts of a Hugging Face BERT checkpoint a model may leave out: the pooler and the pretraining heads (the official
# code drops the pooler and the next-sentence head too; the bare encoder also has no MLM head).
_UNUSED_BERT_PARTS = re.compile(r"^(bert\.)?pooler\.|^cls\.")


def self_attention_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, keys) 1/0 mask -> additive (batch, 1, 1, keys) bias, with the official -10000 for padded keys."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * SELF_ATTENTION_MASK_VALUE


def cross_attention_bias(encoder_attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, keys) 1/0 mask -> additive bias; the official cross-attention uses `finfo(dtype).min`."""
    return (1.0 - encoder_attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class InternVideo2TextEmbeddings(nn.Module):
    """Word + absolute position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_ids = nn.Buffer(torch.arange(config.max_position_embeddings).expand((1, -1)), persistent=False)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        seq_length = inputs_embeds.shape[1]
        if seq_length > self.position_ids.shape[1]:
            raise ValueError(
                f"input_ids has {seq_length} tokens but max_position_embeddings is {self.position_ids.shape[1]}."
            )
        if position_ids is None:
            position_ids = self.position_ids[:, :seq_length]
        if token_type_ids is None:
            # InternVideo2 always encodes a single segment (type 0).
            token_type_ids = torch.zeros(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class InternVideo2TextMultiHeadAttention(nn.Module):
    """Multi-head attention whose keys / values may come from tokens of another width (cross-attention)."""

    def __init__(self, config: InternVideo2TextConfig, key_value_width: int):
        super().__init__()
        self.config = config
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(key_value_width, config.hidden_size)
        self.value = nn.Linear(key_value_width, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        query = self.query(hidden_states).unflatten(-1, (self.num_attention_heads, self.head_dim)).transpose(1, 2)
        key = self.key(key_value_states).unflatten(-1, (self.num_attention_heads, self.head_dim)).transpose(1, 2)
        value = self.value(key_value_states).unflatten(-1, (self.num_attention_heads, self.head_dim)).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout.p if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        return attn_output.flatten(-2), attn_weights


class InternVideo2TextResidualOutput(nn.Module):
    """Linear projection, dropout, residual add and post-LayerNorm (BERT's `*.output` blocks)."""

    def __init__(self, config: InternVideo2TextConfig, input_size: int):
        super().__init__()
        self.dense = nn.Linear(input_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class InternVideo2TextAttention(nn.Module):
    """Attention (`self`) followed by its residual output block (`output`); BERT's `attention` / `crossattention`."""

    def __init__(self, config: InternVideo2TextConfig, key_value_width: int):
        super().__init__()
        self.self = InternVideo2TextMultiHeadAttention(config, key_value_width)
        self.output = InternVideo2TextResidualOutput(config, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attn_output, _ = self.self(hidden_states, key_value_states, attention_mask, **kwargs)
        return self.output(attn_output, hidden_states)


class InternVideo2TextIntermediate(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class InternVideo2TextLayer(GradientCheckpointingLayer):
    """BERT layer; layers at or after `config.fusion_layer` cross-attend to `encoder_hidden_states`."""

    def __init__(self, config: InternVideo2TextConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.has_cross_attention = layer_idx >= config.fusion_layer
        self.attention = InternVideo2TextAttention(config, key_value_width=config.hidden_size)
        if self.has_cross_attention:
            self.crossattention = InternVideo2TextAttention(config, key_value_width=config.encoder_width)
        self.intermediate = InternVideo2TextIntermediate(config)
        self.output = InternVideo2TextResidualOutput(config, config.intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        hidden_states = self.attention(hidden_states, hidden_states, attention_mask, **kwargs)
        if self.has_cross_attention:
            hidden_states = self.crossattention(hidden_states, encoder_hidden_states, encoder_attention_mask, **kwargs)
        return self.output(self.intermediate(hidden_states), hidden_states)


class InternVideo2TextEncoder(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.layer = nn.ModuleList([InternVideo2TextLayer(config, i) for i in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        layers: range,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        for index in layers:
            hidden_states = self.layer[index](
                hidden_states,
                attention_mask,
                encoder_hidden_states,  # positional, so that gradient checkpointing propagates its gradient
                encoder_attention_mask=encoder_attention_mask,
                **kwargs,
            )
        return hidden_states


class InternVideo2TextPredictionHeadTransform(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class InternVideo2TextLMPredictionHead(nn.Module):
    """Transform + vocabulary decoder; the decoder weight is tied to the word embeddings, its bias to `bias`."""

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.transform = InternVideo2TextPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=True)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class InternVideo2TextMLMHead(nn.Module):
    def __init__(self, config: InternVideo2TextConfig):
        super().__init__()
        self.predictions = InternVideo2TextLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class InternVideo2TextPreTrainedModel(PreTrainedModel):
    config_class = InternVideo2TextConfig
    config: InternVideo2TextConfig
    base_model_prefix = "bert"
    main_input_name = "input_ids"
    input_modalities = "text"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2TextEmbeddings", "InternVideo2TextLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": InternVideo2TextLayer,
        "attentions": OutputRecorder(InternVideo2TextMultiHeadAttention, index=1, layer_name="attention.self"),
        "cross_attentions": OutputRecorder(
            InternVideo2TextMultiHeadAttention, index=1, layer_name="crossattention.self"
        ),
    }

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, InternVideo2TextLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2TextEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))

    @classmethod
    def _load_bert(
        cls,
        bert_class: type[PreTrainedModel],
        pretrained_model_name_or_path: str | os.PathLike,
        allowed_missing: re.Pattern | None,
        fusion_layer: int,
        encoder_width: int,
        num_new_fusion_layers: int,
        from_pretrained_kwargs: dict,
    ) -> "InternVideo2TextPreTrainedModel":
        """Load a Hugging Face BERT strictly and copy it into a new model; only the cross-attention and the
        `num_new_fusion_layers` layers stacked on top are new."""
        if type(num_new_fusion_layers) is not int or num_new_fusion_layers < 0:
            raise ValueError(f"num_new_fusion_layers must be an int >= 0, got {num_new_fusion_layers!r}.")
        # transformers' load report would list the keys this method checks (and reports) itself
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()
        try:
            bert, loading_info = bert_class.from_pretrained(
                pretrained_model_name_or_path, output_loading_info=True, **from_pretrained_kwargs
            )
        finally:
            transformers_logging.set_verbosity(verbosity)
        missing = sorted(
            k for k in loading_info["missing_keys"] if not (allowed_missing and allowed_missing.search(k))
        )
        unexpected = sorted(k for k in loading_info["unexpected_keys"] if not _UNUSED_BERT_PARTS.search(k))
        mismatched = sorted(str(k) for k in loading_info["mismatched_keys"])
        if missing or unexpected or mismatched:
            raise ValueError(
                f"BERT checkpoint {pretrained_model_name_or_path!s} does not match {bert_class.__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}, mismatched shapes {mismatched}."
            )
        bert_layers = bert.config.num_hidden_layers
        if not 0 <= fusion_layer <= bert_layers:
            raise ValueError(
                f"fusion_layer must be in [0, {bert_layers}] for a {bert_layers}-layer BERT, got {fusion_layer}."
            )
        config = InternVideo2TextConfig.from_bert_config(
            bert.config, fusion_layer=fusion_layer, encoder_width=encoder_width,
            num_hidden_layers=bert_layers + num_new_fusion_layers,
        )
        model = cls(config)
        model.set_attn_implementation(bert.config._attn_implementation)
        load_result = model.load_state_dict(bert.state_dict(), strict=False)

        def is_new(key: str) -> bool:
            layer = re.search(r"\.layer\.(\d+)\.", key)
            return ".crossattention." in key or (layer is not None and int(layer.group(1)) >= bert_layers)

        not_loaded = [k for k in load_result.missing_keys if not is_new(k)]
        if not_loaded or load_result.unexpected_keys:
            raise ValueError(
                f"BERT weights do not fit {cls.__name__}: not loaded {not_loaded}, "
                f"unexpected {load_result.unexpected_keys}."
            )
        return model.to(bert.dtype)


class InternVideo2TextModel(InternVideo2TextPreTrainedModel):
    """
    The text / fusion encoder. `mode` selects the layers that run:

    - `"text"`: embeddings + layers `0 .. fusion_layer - 1` on `input_ids` (contrastive text features; CLS = row 0).
    - `"fusion"`: layers `fusion_layer ..` on `text_hidden_states` (the `"text"` output), cross-attending to
      `encoder_hidden_states` (official `mode="fusion"`, used by video-text matching and retrieval re-ranking).
    - `"full"`: all layers on `input_ids` (official `mode="multi_modal"`).
    """

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__(config)
        self.embeddings = InternVideo2TextEmbeddings(config)
        self.encoder = InternVideo2TextEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.embeddings.word_embeddings = value

    @classmethod
    def from_bert_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        fusion_layer: int,
        encoder_width: int,
        num_new_fusion_layers: int = 0,
        **from_pretrained_kwargs,
    ) -> "InternVideo2TextModel":
        """
        Initialise from any Hugging Face BERT checkpoint (as the official code initialises from `bert-large-uncased`).
        Every BERT weight is loaded strictly (missing or unexpected encoder keys raise); only the cross-attention of
        layers `fusion_layer ..` is new. `num_new_fusion_layers` stacks that many new, randomly initialised fusion
        layers on top of the BERT's layers (with `fusion_layer` = its layer count the text features then come from
        its last layer: sentence-transformers BERTs trained with mean pooling give a near-constant CLS in every
        earlier layer). `from_pretrained_kwargs` go to `BertModel.from_pretrained` (e.g. `dtype`, `revision`,
        `attn_implementation`).
        """
        return cls._load_bert(
            BertModel,
            pretrained_model_name_or_path,
            allowed_missing=None,
            fusion_layer=fusion_layer,
            encoder_width=encoder_width,
            num_new_fusion_layers=num_new_fusion_layers,
            from_pretrained_kwargs={"add_pooling_layer": False, **from_pretrained_kwargs},
        )

    def _layer_range(self, mode: str) -> range:
        if mode == "text":
            return range(self.config.fusion_layer)
        if mode == "fusion":
            return range(self.config.fusion_layer, self.config.num_hidden_layers)
        return range(self.config.num_hidden_layers)

    def _check_inputs(self, mode, input_ids, inputs_embeds, text_hidden_states, encoder_hidden_states):
        if mode not in TEXT_ENCODER_MODES:
            raise ValueError(f"mode must be one of {TEXT_ENCODER_MODES}, got {mode!r}.")
        if mode == "fusion":
            if text_hidden_states is None or input_ids is not None or inputs_embeds is not None:
                raise ValueError("mode='fusion' takes text_hidden_states (the 'text' mode output), not input_ids.")
        else:
            if text_hidden_states is not None:
                raise ValueError(f"text_hidden_states is only used with mode='fusion', not mode={mode!r}.")
            if (input_ids is None) == (inputs_embeds is None):
                raise ValueError("Specify exactly one of input_ids or inputs_embeds.")
        runs_fusion_layers = mode != "text" and self.config.fusion_layer < self.config.num_hidden_layers
        if not runs_fusion_layers and encoder_hidden_states is not None:
            raise ValueError(f"encoder_hidden_states is not used with mode={mode!r}; use 'fusion' or 'full'.")
        if runs_fusion_layers:
            if encoder_hidden_states is None:
                raise ValueError(f"mode={mode!r} needs encoder_hidden_states (the vision tokens).")
            if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[-1] != self.config.encoder_width:
                raise ValueError(
                    "encoder_hidden_states must have shape (batch, tokens, "
                    f"encoder_width={self.config.encoder_width}), got {tuple(encoder_hidden_states.shape)}."
                )

    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        mode: TextEncoderMode = "text",
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithCrossAttentions:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
            Token ids from [`InternVideo2Tokenizer`] (`[CLS] tokens`, no `[SEP]`). Modes `"text"` and `"full"`.
        attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 for real tokens, 0 for padding. In mode `"fusion"` it is the mask of the text that produced
            `text_hidden_states`.
        text_hidden_states (`torch.Tensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Output of mode `"text"`; the input of mode `"fusion"`.
        encoder_hidden_states (`torch.Tensor` of shape `(batch_size, num_tokens, encoder_width)`):
            Vision (or audio-visual) tokens the fusion layers cross-attend to. Modes `"fusion"` and `"full"`.
        encoder_attention_mask (`torch.Tensor` of shape `(batch_size, num_tokens)`, *optional*):
            1 for tokens to attend to; all ones when omitted (as for vision tokens in the official code).
        mode (`str`, *optional*, defaults to `"text"`):
            `"text"`, `"fusion"` or `"full"`; see the class docstring.
        """
        self._check_inputs(mode, input_ids, inputs_embeds, text_hidden_states, encoder_hidden_states)
        if mode == "fusion":
            hidden_states = text_hidden_states
        else:
            hidden_states = self.embeddings(
                input_ids=input_ids,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
            )
        if attention_mask is not None:
            if attention_mask.shape != hidden_states.shape[:2]:
                expected_shape, shape = tuple(hidden_states.shape[:2]), tuple(attention_mask.shape)
                raise ValueError(f"attention_mask must have shape {expected_shape}, got {shape}.")
            attention_mask = self_attention_bias(attention_mask, hidden_states.dtype)
        if encoder_attention_mask is not None:
            if encoder_hidden_states is None or encoder_attention_mask.shape != encoder_hidden_states.shape[:2]:
                raise ValueError(
                    "encoder_attention_mask must have shape (batch, tokens) of encoder_hidden_states, "
                    f"got {tuple(encoder_attention_mask.shape)}."
                )
            encoder_attention_mask = cross_attention_bias(encoder_attention_mask, hidden_states.dtype)

        hidden_states = self.encoder(
            hidden_states,
            self._layer_range(mode),
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            **kwargs,
        )
        return BaseModelOutputWithCrossAttentions(last_hidden_state=hidden_states)


class InternVideo2TextForMaskedLM(InternVideo2TextPreTrainedModel):
    """[`InternVideo2TextModel`] plus the BERT MLM head (`cls.predictions`) of Stage-2 masked language modelling."""

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: InternVideo2TextConfig):
        super().__init__(config)
        self.bert = InternVideo2TextModel(config)
        self.cls = InternVideo2TextMLMHead(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.bert.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.bert.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    @classmethod
    def from_bert_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        fusion_layer: int,
        encoder_width: int,
        num_new_fusion_layers: int = 0,
        new_mlm_head: bool = False,
        **from_pretrained_kwargs,
    ) -> "InternVideo2TextForMaskedLM":
        """
        Like [`InternVideo2TextModel.from_bert_pretrained`] (same `num_new_fusion_layers`), also loading the MLM
        head (`cls.predictions.*`) of a `BertForMaskedLM` / `BertForPreTraining` checkpoint. A checkpoint without an
        MLM head (a bare `BertModel`) raises unless `new_mlm_head=True`, which initialises the head (its decoder
        stays tied to the embeddings).
        """
        return cls._load_bert(
            BertForMaskedLM,
            pretrained_model_name_or_path,
            allowed_missing=re.compile(r"^cls\.predictions\.") if new_mlm_head else None,
            fusion_layer=fusion_layer,
            encoder_width=encoder_width,
            num_new_fusion_layers=num_new_fusion_layers,
            from_pretrained_kwargs=from_pretrained_kwargs,
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        mode: TextEncoderMode = "full",
        **kwargs: Unpack[TransformersKwargs],
    ) -> MaskedLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Target ids of the masked positions, -100 elsewhere; gives the mean cross-entropy as `loss`.
        mode (`str`, *optional*, defaults to `"full"`):
            Layers to run before the head; `"full"` is the official MLM (text layers, then fusion layers over the
            vision tokens).
        """
        outputs = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            text_hidden_states=text_hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            mode=mode,
            return_dict=True,
            **kwargs,
        )
        prediction_scores = self.cls(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = self.loss_function(prediction_scores, labels, vocab_size=self.config.vocab_size, **kwargs)
        return MaskedLMOutput(
            loss=loss,
            logits=prediction_scores,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "InternVideo2TextForMaskedLM",
    "InternVideo2TextModel",
    "InternVideo2TextPreTrainedModel",
]
