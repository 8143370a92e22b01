"""InternVideo2 audio encoder: BEATs as used by InternVideo2-6B Stage 2 (a native transformers re-implementation).

The encoder takes the normalised 64-bin Kaldi fbank of [`InternVideo2FeatureExtractor`], cuts it into 16x16
(time x frequency) patches, and runs a BEATs transformer over the patch tokens (time-major: token `n` is time patch
`n // F`, frequency patch `n % F`). InternVideo2 pools the audio tokens by their mean.
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_audio import InternVideo2AudioConfig


class _ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass, multiplies the gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, hidden_states: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return hidden_states.view_as(hidden_states)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output * ctx.scale, None


def relative_position_bucket(relative_position: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """
    Map signed relative positions (key index minus query index) to bidirectional buckets, as in BEATs and T5.

    Half of the buckets encode positive offsets. Within each half, distances below a quarter of `num_buckets` get one
    bucket each; larger distances share log-spaced buckets that saturate at `max_distance`.
    """
    num_buckets = num_buckets // 2
    buckets = (relative_position > 0).to(torch.long) * num_buckets
    distance = relative_position.abs()
    max_exact = num_buckets // 2
    # clamp only avoids log(0); distances below max_exact take the exact branch below anyway
    log_ratio = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    distance_if_large = max_exact + (log_ratio * (num_buckets - max_exact)).to(torch.long)
    distance_if_large = distance_if_large.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, distance_if_large)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if position_bias is not None:
        attn_weights = attn_weights + position_bias
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class InternVideo2AudioEmbeddings(nn.Module):
    """Patch embedding of the fbank: Conv2d (k = s = patch_size) -> LayerNorm -> projection to `hidden_size`."""

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(
            1,
            config.patch_embedding_dim,
            kernel_size=config.patch_size,
            stride=config.patch_size,
            bias=config.patch_embedding_bias,
        )
        self.layer_norm = nn.LayerNorm(config.patch_embedding_dim, eps=config.layer_norm_eps)
        # BEATs has no projection when the two widths agree
        self.projection = (
            nn.Linear(config.patch_embedding_dim, config.hidden_size)
            if config.patch_embedding_dim != config.hidden_size
            else nn.Identity()
        )
        self.dropout = nn.Dropout(config.input_dropout)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(input_features.unsqueeze(1))  # (B, C, time_patches, freq_patches)
        patches = patches.flatten(2).transpose(1, 2)  # time-major tokens: (B, time_patches * freq_patches, C)
        return self.dropout(self.projection(self.layer_norm(patches)))


class InternVideo2AudioPositionalConvEmbedding(nn.Module):
    """Grouped Conv1d over the token axis with weight norm (one magnitude per kernel tap), trimmed to length, GELU."""

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=config.num_conv_pos_embeddings,
            padding=config.num_conv_pos_embeddings // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        # A real parametrization (not a folded weight) so that training updates magnitude and direction like BEATs.
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        # symmetric padding of an even kernel yields one extra step, which BEATs ("SamePad") drops at the end
        self.num_pad_remove = 1 if config.num_conv_pos_embeddings % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        position_embeddings = self.conv(hidden_states.transpose(1, 2))
        if self.num_pad_remove > 0:
            position_embeddings = position_embeddings[:, :, : -self.num_pad_remove]
        return self.activation(position_embeddings).transpose(1, 2)


class InternVideo2AudioRelativePositionBias(nn.Module):
    """Bucketed relative position bias. BEATs computes it once (in layer 0) and every layer reuses that table."""

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_bucket_distance
        self.embedding = nn.Embedding(config.num_buckets, config.num_attention_heads)

    def forward(self, sequence_length: int) -> torch.Tensor:
        """Returns the bias of shape `(1, num_heads, sequence_length, sequence_length)`."""
        positions = torch.arange(sequence_length, device=self.embedding.weight.device)
        relative_position = positions[None, :] - positions[:, None]
        buckets = relative_position_bucket(relative_position, self.num_buckets, self.max_distance)
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)


class InternVideo2AudioRelativePositionGate(nn.Module):
    """
    Query-dependent gate of the relative position bias ("gated relative position bias", WavLM arXiv:2110.13900 and
    BEATs): two sigmoid gates per query and head, each the sum of 4 outputs of a Linear on the head's query vector.
    """

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        head_dim = config.hidden_size // config.num_attention_heads
        self.proj = nn.Linear(head_dim, 8)
        self.scale = nn.Parameter(torch.ones(1, config.num_attention_heads, 1, 1))

    def forward(self, query_states: torch.Tensor) -> torch.Tensor:
        """Maps queries `(B, H, L, head_dim)` to gates `(B, H, L, 1)` that multiply the bias row of each query."""
        gate_logits = self.proj(query_states).unflatten(-1, (2, 4)).sum(-1)
        gate_a, gate_b = torch.sigmoid(gate_logits).chunk(2, dim=-1)
        return gate_a * (gate_b * self.scale - 1.0) + 2.0


class InternVideo2AudioAttention(nn.Module):
    """Multi-head self-attention with an additive (optionally query-gated) relative position bias."""

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.config = config
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.relative_position_gate = (
            InternVideo2AudioRelativePositionGate(config) if config.use_gated_relative_position_bias else None
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, sequence_length, _ = hidden_states.shape
        hidden_shape = (batch_size, sequence_length, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        if position_bias is not None and self.relative_position_gate is not None:
            # the gate sees the unscaled query projection
            position_bias = self.relative_position_gate(query_states) * position_bias

        # BEATs subtracts the row maximum from the logits before adding the bias; softmax is shift-invariant, so the
        # plain "logits + bias" of the attention interface computes the same probabilities.
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.config.attention_dropout,
            scaling=self.scaling,
            is_causal=False,
            position_bias=position_bias,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, sequence_length, -1).contiguous()
        return self.out_proj(attn_output), attn_weights


class InternVideo2AudioMLP(nn.Module):
    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation_dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class InternVideo2AudioLayer(GradientCheckpointingLayer):
    """BEATs transformer layer: pre-LN (`layer_norm_first`) or post-LN with optional DeepNet residual scaling."""

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.layer_norm_first = config.layer_norm_first
        self.residual_scale = (2 * config.num_hidden_layers) ** 0.25 if config.deep_norm else 1.0
        self.self_attn = InternVideo2AudioAttention(config)
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.mlp = InternVideo2AudioMLP(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        if config.deep_norm:
            # DeepNet initialisation (arXiv:2203.00555), read by `_init_weights`: Xavier-normal projections, with the
            # value, output and feed-forward ones down-scaled by beta = (8 * num_layers) ** -0.25
            beta = (8 * config.num_hidden_layers) ** -0.25
            for linear in (self.self_attn.q_proj, self.self_attn.k_proj):
                linear.xavier_init_gain = 1.0
            for linear in (self.self_attn.v_proj, self.self_attn.out_proj, self.mlp.fc1, self.mlp.fc2):
                linear.xavier_init_gain = beta

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_bias: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        if self.layer_norm_first:
            attn_output, _ = self.self_attn(
                self.self_attn_layer_norm(hidden_states), position_bias, attention_mask=attention_mask, **kwargs
            )
            hidden_states = hidden_states + self.dropout(attn_output)
            return hidden_states + self.mlp(self.final_layer_norm(hidden_states))

        attn_output, _ = self.self_attn(hidden_states, position_bias, attention_mask=attention_mask, **kwargs)
        hidden_states = self.self_attn_layer_norm(hidden_states * self.residual_scale + self.dropout(attn_output))
        return self.final_layer_norm(hidden_states * self.residual_scale + self.mlp(hidden_states))


class InternVideo2AudioEncoder(nn.Module):
    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__()
        self.config = config
        self.pos_conv_embed = InternVideo2AudioPositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        # one bias table owned by the encoder: BEATs shares layer 0's table with all layers
        self.relative_position_bias = (
            InternVideo2AudioRelativePositionBias(config) if config.use_relative_position_bias else None
        )
        self.layers = nn.ModuleList([InternVideo2AudioLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutput:
        """`attention_mask`: `(batch_size, num_tokens)`, 1 for real tokens and 0 for padding."""
        if attention_mask is not None:
            # padded tokens must not leak into their neighbours through the convolutional position embedding
            hidden_states = hidden_states.masked_fill(~attention_mask.bool().unsqueeze(-1), 0.0)
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        if not self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        hidden_states = self.dropout(hidden_states)

        position_bias = None
        if self.relative_position_bias is not None:
            position_bias = self.relative_position_bias(hidden_states.shape[1])
        attention_mask = create_bidirectional_mask(self.config, hidden_states, attention_mask)

        gradient_scale = self.config.layer_wise_gradient_decay_ratio
        for layer in self.layers:
            if gradient_scale != 1.0 and torch.is_grad_enabled():
                hidden_states = _ScaleGradient.apply(hidden_states, gradient_scale)
            if self.training and self.config.layerdrop > 0 and torch.rand([]).item() < self.config.layerdrop:
                continue
            hidden_states = layer(hidden_states, position_bias, attention_mask=attention_mask, **kwargs)

        if self.config.layer_norm_first:
            hidden_states = self.layer_norm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


class InternVideo2AudioPreTrainedModel(PreTrainedModel):
    config_class = InternVideo2AudioConfig
    base_model_prefix = "audio_model"
    main_input_name = "input_features"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2AudioLayer"]
    # the relative position bias is an additive float mask: eager and SDPA take it, flash-attention kernels do not
    _supports_sdpa = True
    _can_record_outputs = {
        "hidden_states": InternVideo2AudioLayer,
        "attentions": OutputRecorder(InternVideo2AudioAttention, index=1),
    }

    @torch.no_grad()
    def _init_weights(self, module):
        """BEATs initialisation: N(0, initializer_range) linears/embeddings, DeepNet gains, weight-normed conv."""
        super()._init_weights(module)
        # Parameters are initialised by the module that owns them: transformers skips parameter-less containers
        # of models defined outside the library.
        if isinstance(module, nn.Linear) and hasattr(module, "xavier_init_gain"):
            init.xavier_normal_(module.weight, gain=module.xavier_init_gain)
        elif isinstance(module, nn.Conv1d) and parametrize.is_parametrized(module, "weight"):
            magnitude = module.parametrizations.weight.original0
            direction = module.parametrizations.weight.original1
            std = math.sqrt(4.0 / (module.kernel_size[0] * module.in_channels))
            init.normal_(direction, mean=0.0, std=std)
            init.copy_(magnitude, torch.norm_except_dim(direction, 2, 2))
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2AudioRelativePositionGate):
            init.ones_(module.scale)


class InternVideo2AudioModel(InternVideo2AudioPreTrainedModel):
    """
    The InternVideo2 (BEATs) audio encoder. Returns the audio tokens (`last_hidden_state`) and their mean
    (`pooler_output`), which is what InternVideo2-6B feeds to `audio_proj`.
    """

    def __init__(self, config: InternVideo2AudioConfig):
        super().__init__(config)
        self.embeddings = InternVideo2AudioEmbeddings(config)
        self.encoder = InternVideo2AudioEncoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    def get_token_attention_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """
        Turn a frame mask `(batch_size, num_frames)` (1 = real fbank frame) into the token mask
        `(batch_size, num_tokens)`: a time patch counts as real if any of its frames is real, and all frequency
        patches of a time patch share its value. Trailing frames that do not fill a patch are dropped, like the
        patch embedding drops them.
        """
        patch_size = self.config.patch_size
        batch_size, num_frames = attention_mask.shape
        num_time_patches = num_frames // patch_size
        time_patch_mask = attention_mask[:, : num_time_patches * patch_size].reshape(
            batch_size, num_time_patches, patch_size
        )
        time_patch_mask = time_patch_mask.bool().any(dim=-1)
        num_freq_patches = self.config.num_mel_bins // patch_size
        return time_patch_mask.repeat_interleave(num_freq_patches, dim=1).to(attention_mask.dtype)

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_features (`torch.Tensor` of shape `(batch_size, num_frames, num_mel_bins)`):
            Normalised log-Mel fbank, as returned by [`InternVideo2FeatureExtractor`] (998 frames for 10 s).
        attention_mask (`torch.Tensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for real fbank frames, 0 for padding. Padded tokens are zeroed before the positional convolution,
            masked as attention keys and left out of the pooled mean. The official InternVideo2 code passes no mask
            (zero-padded frames are attended and pooled); leave it `None` to reproduce the released model exactly.
        """
        if input_features.dim() != 3:
            raise ValueError(
                "input_features must have shape (batch_size, num_frames, num_mel_bins), "
                f"got {tuple(input_features.shape)}"
            )
        if input_features.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_features has {input_features.shape[-1]} Mel bins, "
                f"the config expects {self.config.num_mel_bins}"
            )
        if input_features.shape[1] < self.config.patch_size:
            raise ValueError(
                f"input_features has {input_features.shape[1]} frames, fewer than one patch ({self.config.patch_size})"
            )
        token_mask = None
        if attention_mask is not None:
            if attention_mask.shape != input_features.shape[:2]:
                raise ValueError(
                    f"attention_mask must have shape {tuple(input_features.shape[:2])} (batch_size, num_frames), "
                    f"got {tuple(attention_mask.shape)}"
                )
            token_mask = self.get_token_attention_mask(attention_mask)

        hidden_states = self.embeddings(input_features)
        encoder_outputs = self.encoder(hidden_states, attention_mask=token_mask, **kwargs)
        last_hidden_state = encoder_outputs.last_hidden_state

        if token_mask is None:
            pooled_output = last_hidden_state.mean(dim=1)
        else:
            weights = token_mask.to(last_hidden_state.dtype).unsqueeze(-1)
            pooled_output = (last_hidden_state * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return BaseModelOutputWithPooling(last_hidden_state=last_hidden_state, pooler_output=pooled_output)


__all__ = ["InternVideo2AudioModel", "InternVideo2AudioPreTrainedModel"]
