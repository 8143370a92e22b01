"""InternVideo2 video encoder: 3-D patch embedding, pre-norm RMSNorm blocks with full-width QK-RMSNorm and LayerScale,
and the attention-pooling head, plus the video-classification model built on it."""

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, logging
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .attention import eager_attention_forward
from .configuration_vision import InternVideo2VisionConfig
from .position_embeddings import position_table_for, sincos_3d

logger = logging.get_logger(__name__)


class InternVideo2RMSNorm(nn.Module):
    """RMSNorm computed in float32, cast back to the input dtype, then scaled (the official order)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.float()
        hidden_states = hidden_states * torch.rsqrt(hidden_states.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return hidden_states.to(input_dtype) * self.weight

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class InternVideo2DropPath(nn.Module):
    """Stochastic depth per sample; identity outside training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep_prob = 1 - self.drop_prob
        shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
        keep = hidden_states.new_empty(shape).bernoulli_(keep_prob)
        return hidden_states * keep / keep_prob

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class InternVideo2VisionEmbeddings(nn.Module):
    """Conv3d patches + cls token + learned position table; drops masked tokens after adding positions."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        kernel = (config.tubelet_size, config.patch_size, config.patch_size)
        self.patch_embedding = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=kernel, stride=kernel)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        num_positions = 1 + (config.num_frames // config.tubelet_size) * config.num_patches_per_frame
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_positions, config.hidden_size))
        if config.use_separate_image_position_embeddings:
            self.image_position_embeddings = nn.Parameter(
                torch.zeros(1, 1 + config.num_patches_per_frame, config.hidden_size)
            )
        else:
            self.image_position_embeddings = None

    def position_table(self, num_frames: int, grid_size: int, interpolate: bool) -> torch.Tensor:
        """The table for an input of `num_frames` temporal tokens on a `grid_size`² grid (1 frame = image rule)."""
        config = self.config
        table_frames = config.num_frames // config.tubelet_size
        needs_resize = num_frames not in (1, table_frames) or grid_size != config.grid_size
        if needs_resize and not interpolate:
            raise ValueError(
                f"pixel_values_videos has {num_frames * config.tubelet_size} frames of "
                f"{grid_size * config.patch_size}x{grid_size * config.patch_size} pixels but the position table covers "
                f"{config.num_frames} frames of {config.image_size}x{config.image_size}; pass interpolate_pos_encoding=True"
            )
        if needs_resize:
            logger.warning_once(
                f"Interpolating the position table from {config.num_frames} frames at {config.image_size}px to "
                f"{num_frames * config.tubelet_size} frames at {grid_size * config.patch_size}px on the fly."
            )
        return position_table_for(
            self.position_embeddings, self.image_position_embeddings, table_frames, num_frames, grid_size
        )

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
    ) -> torch.Tensor:
        config = self.config
        batch_size, num_frames, _, height, width = pixel_values_videos.shape
        if num_frames % config.tubelet_size:
            raise ValueError(
                f"pixel_values_videos has {num_frames} frames, not a multiple of tubelet_size={config.tubelet_size}"
            )
        if height % config.patch_size or width % config.patch_size or height != width:
            raise ValueError(
                f"pixel_values_videos frames are {height}x{width}; they must be square and a multiple of "
                f"patch_size={config.patch_size}"
            )
        target_dtype = self.patch_embedding.weight.dtype
        patches = self.patch_embedding(pixel_values_videos.permute(0, 2, 1, 3, 4).to(target_dtype))
        patches = patches.flatten(2).transpose(1, 2)  # (B, T*h*w, D), time-major then row then column
        cls = self.cls_token.expand(batch_size, -1, -1).to(patches.dtype)
        embeddings = torch.cat([cls, patches], dim=1)

        interpolate = config.interpolate_pos_encoding if interpolate_pos_encoding is None else interpolate_pos_encoding
        table = self.position_table(num_frames // config.tubelet_size, height // config.patch_size, interpolate)
        embeddings = embeddings + table.to(embeddings.dtype)

        if bool_masked_pos is not None:
            embeddings = drop_masked_tokens(embeddings, bool_masked_pos)
        return embeddings


def drop_masked_tokens(embeddings: torch.Tensor, bool_masked_pos: torch.Tensor) -> torch.Tensor:
    """Keep the visible tokens in order. `bool_masked_pos` is (B, num_patches) or (B, 1 + num_patches), True = masked;
    the cls token is always kept. Every sample must mask the same number of tokens."""
    batch_size, num_tokens, dim = embeddings.shape
    if bool_masked_pos.dtype != torch.bool:
        raise TypeError(f"bool_masked_pos must be a bool tensor, got {bool_masked_pos.dtype}")
    if bool_masked_pos.ndim != 2 or bool_masked_pos.shape[0] != batch_size:
        raise ValueError(
            f"bool_masked_pos must have shape ({batch_size}, {num_tokens - 1}), got {tuple(bool_masked_pos.shape)}"
        )
    if bool_masked_pos.shape[1] == num_tokens:
        if bool_masked_pos[:, 0].any():
            raise ValueError("bool_masked_pos masks the cls token (column 0); the cls token is never masked")
        bool_masked_pos = bool_masked_pos[:, 1:]
    elif bool_masked_pos.shape[1] != num_tokens - 1:
        raise ValueError(
            f"bool_masked_pos must have shape ({batch_size}, {num_tokens - 1}), got {tuple(bool_masked_pos.shape)}"
        )
    counts = bool_masked_pos.sum(dim=1)
    if (counts != counts[0]).any():
        raise ValueError(f"bool_masked_pos must mask the same number of tokens in every sample, got {counts.tolist()}")
    visible = torch.cat([bool_masked_pos.new_ones(batch_size, 1), ~bool_masked_pos.to(embeddings.device)], dim=1)
    return embeddings[visible].reshape(batch_size, -1, dim)


class InternVideo2VisionAttention(nn.Module):
    """Multi-head self-attention with RMSNorm over the full width of q and k (before the head split)."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.q_norm = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps) if config.use_qk_norm else None
        self.k_norm = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps) if config.use_qk_norm else None
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_len, _ = hidden_states.shape
        query, key, value = self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)
        if self.q_norm is not None:
            query, key = self.q_norm(query), self.k_norm(key)
        shape = (batch_size, seq_len, self.num_heads, self.head_dim)
        query, key, value = (t.view(shape).transpose(1, 2) for t in (query, key, value))

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            is_causal=False,
            scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, seq_len, -1)
        return self.o_proj(attn_output), attn_weights


class InternVideo2VisionMLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACT2FN[hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))


class InternVideo2VisionLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + LS1(Attn(RMSNorm(x))), then x + LS2(MLP(RMSNorm(x)))."""

    def __init__(self, config: InternVideo2VisionConfig, layer_idx: int, drop_path_rate: float = 0.0):
        super().__init__()
        self.layer_idx = layer_idx
        self.layer_scale_force_fp32 = config.layer_scale_force_fp32
        self.layernorm_before = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attention = InternVideo2VisionAttention(config)
        self.layernorm_after = InternVideo2RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = InternVideo2VisionMLP(config.hidden_size, config.intermediate_size, config.hidden_act)
        if config.layer_scale_init_value > 0:
            self.lambda_1 = nn.Parameter(torch.full((config.hidden_size,), config.layer_scale_init_value))
            self.lambda_2 = nn.Parameter(torch.full((config.hidden_size,), config.layer_scale_init_value))
        else:
            self.lambda_1 = self.lambda_2 = None
        self.drop_path = InternVideo2DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _layer_scale(self, hidden_states: torch.Tensor, gamma: nn.Parameter | None) -> torch.Tensor:
        if gamma is None:
            return hidden_states
        if self.layer_scale_force_fp32:
            return (hidden_states.float() * gamma.float()).to(hidden_states.dtype)
        return hidden_states * gamma

    def forward(
        self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.attention(self.layernorm_before(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(self._layer_scale(attn_output, self.lambda_1))
        mlp_output = self.mlp(self.layernorm_after(hidden_states))
        hidden_states = hidden_states + self.drop_path(self._layer_scale(mlp_output, self.lambda_2))
        return hidden_states, attn_weights


class InternVideo2VisionEncoder(nn.Module):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.layers = nn.ModuleList(
            [InternVideo2VisionLayer(config, i, rates[i]) for i in range(config.num_hidden_layers)]
        )
        self.gradient_checkpointing = False

    def forward(
        self, hidden_states: torch.Tensor, num_layers: int, **kwargs: Unpack[TransformersKwargs]
    ) -> torch.Tensor:
        for layer in self.layers[:num_layers]:
            hidden_states = layer(hidden_states, **kwargs)[0]
        return hidden_states


class InternVideo2AttentionPool(nn.Module):
    """Attention pooling (`clip_projector`): one query, the mean of all tokens (cls included), attends to all tokens
    through separate LayerNorms for query, key and value, then projects to `attention_pool_output_size`."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.num_heads = config.attention_pool_num_heads
        self.head_dim = dim // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        eps = config.attention_pool_layer_norm_eps
        self.norm_q, self.norm_k, self.norm_v = nn.LayerNorm(dim, eps), nn.LayerNorm(dim, eps), nn.LayerNorm(dim, eps)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, config.attention_pool_output_size)

    def forward(
        self, hidden_states: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the pooled (B, out) features and, with `return_attention`, the (B, heads, 1, N) attention map."""
        batch_size, seq_len, _ = hidden_states.shape
        query = self.q_proj(self.norm_q(hidden_states.mean(dim=1, keepdim=True)))
        key, value = self.k_proj(self.norm_k(hidden_states)), self.v_proj(self.norm_v(hidden_states))
        query = query.view(batch_size, 1, self.num_heads, self.head_dim).transpose(1, 2)
        key = key.view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        value = value.view(batch_size, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        attention_interface: Callable = eager_attention_forward
        if not return_attention:  # only eager materialises the map that attention-guided masking needs
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self, query, key, value, None, is_causal=False, scaling=self.scaling, dropout=0.0
        )
        pooled = self.o_proj(attn_output.reshape(batch_size, -1))
        return pooled, (attn_weights if return_attention else None)


class InternVideo2VisionPreTrainedModel(PreTrainedModel):
    config: InternVideo2VisionConfig
    config_class = InternVideo2VisionConfig
    base_model_prefix = "internvideo2"
    main_input_name = "pixel_values_videos"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVideo2VisionLayer", "InternVideo2VisionEmbeddings", "InternVideo2AttentionPool"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": OutputRecorder(InternVideo2VisionLayer, index=0),
        "attentions": OutputRecorder(InternVideo2VisionAttention, index=1),
    }

    @torch.no_grad()
    def _init_weights(self, module):
        """Official training init: truncated normal (0.02) linears, sin-cos position tables, LayerScale at its init
        value, and the residual output projections of layer i (1-based) scaled by 1/sqrt(2i)."""
        config = self.config
        std = config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv3d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, InternVideo2RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, InternVideo2VisionEmbeddings):
            init.trunc_normal_(module.cls_token, std=std)
            frames = config.num_frames // config.tubelet_size
            init.copy_(module.position_embeddings, sincos_3d(config.hidden_size, config.grid_size, frames)[None].float())
            if module.image_position_embeddings is not None:
                init.copy_(
                    module.image_position_embeddings, sincos_3d(config.hidden_size, config.grid_size, 1)[None].float()
                )
        elif isinstance(module, InternVideo2VisionLayer):
            depth_std = std / math.sqrt(2.0 * (module.layer_idx + 1))
            init.trunc_normal_(module.attention.o_proj.weight, std=depth_std)
            init.trunc_normal_(module.mlp.fc2.weight, std=depth_std)
            if module.lambda_1 is not None:
                init.constant_(module.lambda_1, config.layer_scale_init_value)
                init.constant_(module.lambda_2, config.layer_scale_init_value)


class InternVideo2VisionModel(InternVideo2VisionPreTrainedModel):
    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        self.embeddings = InternVideo2VisionEmbeddings(config)
        self.encoder = InternVideo2VisionEncoder(config)
        self.pooler = InternVideo2AttentionPool(config) if config.use_attention_pool else None
        self.post_layernorm = (
            nn.LayerNorm(config.hidden_size, eps=config.post_layernorm_eps) if config.use_post_layernorm else None
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embedding

    def _resolve_last_layer(self, last_layer: int | None) -> int:
        depth = self.config.num_hidden_layers
        if last_layer is None:
            return depth
        if not isinstance(last_layer, int) or not -depth <= last_layer < depth:
            raise ValueError(f"last_layer must be an int in [{-depth}, {depth - 1}], got {last_layer!r}")
        return (last_layer % depth) + 1

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        last_layer: int | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values_videos (`torch.FloatTensor` of shape `(batch, frames, channels, height, width)`):
            Normalised video frames. A 4-D tensor `(batch, channels, height, width)` is read as images (one frame).
        pixel_values (`torch.FloatTensor` of shape `(batch, channels, height, width)`, *optional*):
            Images, as image processors name them; alternative to `pixel_values_videos`.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch, num_patches)` or `(batch, 1 + num_patches)`, *optional*):
            True marks patch tokens to drop before the blocks (masked training); every row masks the same count.
        interpolate_pos_encoding (`bool`, *optional*):
            Resize the position table for inputs of other frame counts or sizes (defaults to the config's value).
        last_layer (`int`, *optional*):
            Index of the last block to run (negative counts from the end: -2 is the penultimate block the chat model
            reads, -7 the block used for temporal action localisation). Blocks after it are not run; the output is
            that block's residual stream and `pooler_output` is None unless it is the final block.
        """
        pixel_values_videos = _as_video_batch(pixel_values_videos, pixel_values, self.config.num_channels)
        num_layers = self._resolve_last_layer(last_layer)
        hidden_states = self.embeddings(pixel_values_videos, bool_masked_pos, interpolate_pos_encoding)
        hidden_states = self.encoder(hidden_states, num_layers, **kwargs)

        pooled = None
        if num_layers == self.config.num_hidden_layers:
            if self.pooler is not None:
                pooled = self.pooler(hidden_states)[0]
            if self.post_layernorm is not None:
                hidden_states = self.post_layernorm(hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooled)

    def get_video_features(self, pixel_values_videos: torch.Tensor, **kwargs) -> torch.Tensor:
        """Pooled (batch, attention_pool_output_size) features of videos or images."""
        if self.pooler is None:
            raise ValueError("this encoder has no attention pool (use_attention_pool=False); read last_hidden_state")
        return self.forward(pixel_values_videos=pixel_values_videos, **kwargs).pooler_output


def _as_video_batch(
    pixel_values_videos: torch.Tensor | None, pixel_values: torch.Tensor | None, num_channels: int
) -> torch.Tensor:
    """Validate the input and return it as (batch, frames, channels, height, width)."""
    if (pixel_values_videos is None) == (pixel_values is None):
        raise ValueError("pass exactly one of pixel_values_videos (videos) or pixel_values (images)")
    name = "pixel_values_videos" if pixel_values is None else "pixel_values"
    values = pixel_values_videos if pixel_values is None else pixel_values
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of normalised pixels, got {values.dtype}")
    if values.ndim == 4:
        values = values.unsqueeze(1)
    if values.ndim != 5:
        raise ValueError(
            f"{name} must have shape (batch, frames, channels, height, width) or (batch, channels, height, width), "
            f"got {tuple(values.shape)}"
        )
    if values.shape[2] != num_channels:
        raise ValueError(
            f"{name} must have {num_channels} channels in dimension 2 of (batch, frames, channels, height, width), "
            f"got shape {tuple(values.shape)}"
        )
    return values


class InternVideo2ForVideoClassification(InternVideo2VisionPreTrainedModel):
    """Encoder → attention pool → (optional attentive-probe MLP) → LayerNorm → linear classifier."""

    def __init__(self, config: InternVideo2VisionConfig):
        super().__init__(config)
        if not config.use_attention_pool:
            raise ValueError("InternVideo2ForVideoClassification needs use_attention_pool=True")
        self.num_labels = config.num_labels
        self.internvideo2 = InternVideo2VisionModel(config)
        width = config.attention_pool_output_size
        if config.use_attentive_probe:
            self.probe_norm = nn.LayerNorm(width, eps=1e-5)
            self.probe_mlp = InternVideo2VisionMLP(width, 4 * width, "gelu")
        else:
            self.probe_norm = self.probe_mlp = None
        self.fc_norm = nn.LayerNorm(width, eps=1e-5)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        # The official head starts tiny (init_scale 0.001) and the probe MLP as the identity residual.
        if module is self.classifier:
            init.trunc_normal_(module.weight, std=self.config.initializer_range * 1e-3)
        elif self.probe_mlp is not None and module is self.probe_mlp.fc2:
            init.zeros_(module.weight)
            init.zeros_(module.bias)

    def freeze_backbone(self, train_pooler: bool = False) -> None:
        """Freeze the encoder for probing: linear probing trains only the head (`train_pooler=False`); attentive
        probing also trains the attention pool (`train_pooler=True`) and the probe MLP."""
        for parameter in self.internvideo2.parameters():
            parameter.requires_grad_(False)
        if train_pooler:
            for parameter in self.internvideo2.pooler.parameters():
                parameter.requires_grad_(True)

    @can_return_tuple
    def forward(
        self,
        pixel_values_videos: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
            Class indices in `[0, num_labels)` (cross-entropy), or floats for regression when `num_labels == 1`.
        """
        outputs = self.internvideo2(
            pixel_values_videos=pixel_values_videos,
            pixel_values=pixel_values,
            interpolate_pos_encoding=interpolate_pos_encoding,
            **kwargs,
        )
        features = outputs.pooler_output
        if self.probe_mlp is not None:
            features = features + self.probe_mlp(self.probe_norm(features))
        logits = self.classifier(self.dropout(self.fc_norm(features)))

        loss = None
        if labels is not None:
            if not labels.is_floating_point() and ((labels < 0) | (labels >= self.num_labels)).any():
                raise ValueError(f"labels must be class indices in [0, {self.num_labels}), got {labels.tolist()}")
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = [
    "InternVideo2VisionPreTrainedModel",
    "InternVideo2VisionModel",
    "InternVideo2ForVideoClassification",
    "InternVideo2AttentionPool",
]
