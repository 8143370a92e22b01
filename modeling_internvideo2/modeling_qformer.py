"""The VideoChat2 Q-Former of InternVideo2-Chat.

transformers' InstructBLIP Q-Former is reused: its parameters and inference maths are the official ones, checked
point by point against the VideoChat2 `modeling_qformer` (and by the `chat_qformer` golden outputs):
* word + absolute position embeddings, no token-type table; `[queries; text]` goes through the embedding LayerNorm;
  text positions count from 0 at the first text column (with left padding, from the first padding column);
* post-LayerNorm BERT layers; cross-attention to the vision tokens (key/value width = vision width) in layers
  0, f, 2f, ... and on the query rows only;
* query rows use `intermediate_query`/`output_query`, text rows `intermediate`/`output`;
* bidirectional self-attention over queries and text with the padding mask (the official additive -10000 and
  transformers' dtype minimum both give exactly zero weight in float32).
The one difference is stochastic depth: VideoChat2 drops the residual branch (after its dropout, before the
residual LayerNorm) of the self-attention, cross-attention and both feed-forward outputs, at a rate rising linearly
over the layers. We add it by chaining a drop-path module after each of those dropouts, which keeps every parameter
name and changes nothing in evaluation.
"""

import torch
from torch import nn
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel

from .configuration_chat import InternVideo2QFormerConfig
from .modeling_vision import InternVideo2DropPath


class InternVideo2QFormerModel(InstructBlipQFormerModel):
    config: InternVideo2QFormerConfig
    config_class = InternVideo2QFormerConfig
    base_model_prefix = "qformer"

    def __init__(self, config: InternVideo2QFormerConfig):
        super().__init__(config)
        num_layers = config.num_hidden_layers
        for index, layer in enumerate(self.encoder.layer):
            rate = config.drop_path_rate * index / max(num_layers - 1, 1)
            if rate == 0.0:
                continue
            outputs = [layer.attention.output, layer.output, layer.output_query]
            if layer.has_cross_attention:
                outputs.append(layer.crossattention.output)
            for output in outputs:
                output.dropout = nn.Sequential(output.dropout, InternVideo2DropPath(rate))

    def forward(
        self,
        query_embeds: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        r"""
        query_embeds (`torch.FloatTensor` of shape `(batch, num_queries, hidden_size)`): the learned queries.
        encoder_hidden_states (`torch.FloatTensor` of shape `(batch, num_vision_tokens, encoder_hidden_size)`):
            the vision tokens the queries cross-attend to (all of them are attended).
        input_ids (`torch.LongTensor` of shape `(batch, text_length)`, *optional*): instruction tokens (left padded).
        attention_mask (`torch.Tensor` of shape `(batch, text_length)`, *optional*): padding mask of `input_ids`;
            the queries are always attended.

        Returns a `BaseModelOutputWithPoolingAndCrossAttentions` whose `last_hidden_state` holds the query rows first,
        then the text rows.
        """
        batch_size, num_queries = query_embeds.shape[:2]
        if input_ids is not None:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            query_mask = torch.ones(batch_size, num_queries, dtype=attention_mask.dtype, device=attention_mask.device)
            attention_mask = torch.cat([query_mask, attention_mask], dim=1)
        encoder_attention_mask = torch.ones(
            encoder_hidden_states.shape[:2], dtype=torch.long, device=encoder_hidden_states.device
        )
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            query_embeds=query_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            **kwargs,
        )


__all__ = ["InternVideo2QFormerModel"]
