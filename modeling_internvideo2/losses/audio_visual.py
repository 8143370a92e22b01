"""Audio-visual-text losses of the InternVideo2-6B Stage-2 model, composed from the video-text ones.

- AVTC: `InternVideo2VideoTextContrastiveLoss` on `av_fusion(cat(audio_embeds, vision_embeds))` against the text.
- AVTM: `InternVideo2VideoTextMatchingLoss` with the audio tokens prepended to the vision tokens as memory and the
  fused audio-visual embeddings as the negative-mining query.
- AVMLM: `InternVideo2TextMasker` + `InternVideo2MaskedLanguageModelingLoss`, with the fusion layers attending to
  `concat_audio_vision_tokens(...)`; no separate class is needed.
"""

from collections.abc import Callable

import torch
from torch import nn

from .contrastive import InternVideo2VideoTextContrastiveLoss
from .matching import InternVideo2MatchingLossOutput, InternVideo2VideoTextMatchingLoss, MatchFunction


def fuse_audio_vision_embeds(
    audio_embeds: torch.Tensor, vision_embeds: torch.Tensor, fusion: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """`fusion(cat([audio_embeds, vision_embeds], -1))`: audio first, as the official `av_fusion` expects.

    Args:
        audio_embeds: `(batch, dim)` projected audio features (`audio_proj` output).
        vision_embeds: `(batch, dim)` projected video features (`vision_proj` output).
        fusion: the model's fusion layer, e.g. `nn.Linear(2 * dim, dim)`.
    """
    if audio_embeds.shape[0] != vision_embeds.shape[0]:
        raise ValueError(
            f"audio_embeds {tuple(audio_embeds.shape)} and vision_embeds {tuple(vision_embeds.shape)} must have the "
            "same batch size"
        )
    return fusion(torch.cat([audio_embeds, vision_embeds], dim=-1))


def concat_audio_vision_tokens(
    audio_hidden_states: torch.Tensor,
    vision_hidden_states: torch.Tensor,
    audio_attention_mask: torch.Tensor | None = None,
    vision_attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-attention memory of the audio-visual losses: audio tokens first, then vision tokens.

    Args:
        audio_hidden_states: `(batch, num_audio_tokens, dim)`.
        vision_hidden_states: `(batch, num_vision_tokens, dim)`.
        audio_attention_mask: `(batch, num_audio_tokens)`; `None` = all ones.
        vision_attention_mask: `(batch, num_vision_tokens)`; `None` = all ones.

    Returns:
        `(hidden_states, attention_mask)` of shapes `(batch, num_audio + num_vision, dim)` and
        `(batch, num_audio + num_vision)` (int64 when both masks are `None`).
    """
    if audio_hidden_states.ndim != 3 or vision_hidden_states.ndim != 3:
        raise ValueError(
            f"audio_hidden_states {tuple(audio_hidden_states.shape)} and vision_hidden_states "
            f"{tuple(vision_hidden_states.shape)} must be (batch, tokens, dim)"
        )
    if audio_hidden_states.shape[0] != vision_hidden_states.shape[0] or (
        audio_hidden_states.shape[-1] != vision_hidden_states.shape[-1]
    ):
        raise ValueError(
            f"audio_hidden_states {tuple(audio_hidden_states.shape)} and vision_hidden_states "
            f"{tuple(vision_hidden_states.shape)} must share batch size and width"
        )
    masks = []
    for mask, states in ((audio_attention_mask, audio_hidden_states), (vision_attention_mask, vision_hidden_states)):
        masks.append(torch.ones(states.shape[:2], dtype=torch.long, device=states.device) if mask is None else mask)
    return torch.cat([audio_hidden_states, vision_hidden_states], dim=1), torch.cat(masks, dim=1)


class InternVideo2AudioVisualTextContrastiveLoss(nn.Module):
    """AVTC: the video-text contrastive loss on fused audio-visual embeddings.

    Args:
        contrastive_loss: the VTC module to apply (sharing its distributed options); default
            `InternVideo2VideoTextContrastiveLoss()`.
    """

    def __init__(self, contrastive_loss: InternVideo2VideoTextContrastiveLoss | None = None):
        super().__init__()
        if contrastive_loss is None:
            contrastive_loss = InternVideo2VideoTextContrastiveLoss()
        self.contrastive_loss = contrastive_loss

    def forward(
        self,
        audio_embeds: torch.Tensor,
        vision_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        fusion: Callable[[torch.Tensor], torch.Tensor],
        temperature: float | torch.Tensor,
        sample_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            audio_embeds, vision_embeds: `(batch, dim)` projected audio and video features.
            text_embeds: `(batch, dim)` projected text features.
            fusion: the model's `av_fusion` layer (see `fuse_audio_vision_embeds`).
            temperature, sample_ids: as in `InternVideo2VideoTextContrastiveLoss.forward`.

        Returns:
            The scalar loss.
        """
        audio_vision_embeds = fuse_audio_vision_embeds(audio_embeds, vision_embeds, fusion)
        return self.contrastive_loss(audio_vision_embeds, text_embeds, temperature, sample_ids)


class InternVideo2AudioVisualTextMatchingLoss(nn.Module):
    """AVTM: video-text matching whose memory is the audio tokens followed by the vision tokens.

    Args:
        matching_loss: the VTM module to apply; default `InternVideo2VideoTextMatchingLoss()`.
    """

    def __init__(self, matching_loss: InternVideo2VideoTextMatchingLoss | None = None):
        super().__init__()
        if matching_loss is None:
            matching_loss = InternVideo2VideoTextMatchingLoss()
        self.matching_loss = matching_loss

    def forward(
        self,
        audio_hidden_states: torch.Tensor,
        vision_hidden_states: torch.Tensor,
        text_hidden_states: torch.Tensor,
        text_attention_mask: torch.Tensor,
        audio_vision_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        temperature: float | torch.Tensor,
        match_fn: MatchFunction,
        sample_ids: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        vision_attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        negative_indices: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> InternVideo2MatchingLossOutput:
        """Args:
            audio_hidden_states: `(batch, num_audio_tokens, dim)` (the official `av_concat_audio_proj` output).
            vision_hidden_states: `(batch, num_vision_tokens, dim)` (the official `av_concat_vision_proj` output).
            audio_vision_embeds: `(batch, dim)` fused embeddings (`fuse_audio_vision_embeds`), used to mine negatives.
            match_fn: the fusion encoder + `avtm_head`.
            Other arguments: as in `InternVideo2VideoTextMatchingLoss.forward`.

        Returns:
            `InternVideo2MatchingLossOutput`.
        """
        memory, memory_mask = concat_audio_vision_tokens(
            audio_hidden_states, vision_hidden_states, audio_attention_mask, vision_attention_mask
        )
        return self.matching_loss(
            memory,
            text_hidden_states,
            text_attention_mask,
            audio_vision_embeds,
            text_embeds,
            temperature,
            match_fn,
            sample_ids=sample_ids,
            vision_attention_mask=memory_mask,
            generator=generator,
            negative_indices=negative_indices,
        )
