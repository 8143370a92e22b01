"""Video-text matching loss (VTM) with hard-negative mining, as in InternVideo2 Stage 2."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .contrastive import check_paired_embeds, check_temperature, video_text_similarity


MatchFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""`match_fn(vision_hidden_states, vision_attention_mask, text_hidden_states, text_attention_mask) -> logits (N, 2)`:
the fusion encoder + matching head of the model (class 1 = "matched")."""


@dataclass
class InternVideo2MatchingLossOutput(ModelOutput):
    """Output of the (audio-)video-text matching losses.

    Args:
        loss: scalar cross-entropy over the `3 * batch` pairs.
        logits: `(3 * batch, 2)` matching logits, rows ordered `[(v_i, t_i); (v_neg(i), t_i); (v_i, t_neg(i))]`.
        labels: `(3 * batch,)` targets: 1 for the first `batch` rows, 0 for the rest.
        vision_negative_indices: `(batch,)` index of the negative video paired with text i.
        text_negative_indices: `(batch,)` index of the negative text paired with video i.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    vision_negative_indices: torch.LongTensor | None = None
    text_negative_indices: torch.LongTensor | None = None


def _positive_pairs(sample_ids: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor:
    if sample_ids is None:
        return torch.eye(batch_size, dtype=torch.bool, device=device)
    return sample_ids[:, None] == sample_ids[None, :]


@torch.no_grad()
def matching_negative_weights(
    similarity: torch.Tensor, sample_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard-negative sampling weights (unnormalised) of the official VTM.

    Args:
        similarity: `(batch, batch)` video-to-text logits (cosine / temperature), rows = videos.
        sample_ids: `(batch,)` integer video ids; pairs with equal ids are positives and get weight 0.
            `None`: only the diagonal is positive.

    Returns:
        `(weights_v2t, weights_t2v)`: row i of `weights_v2t` weighs the candidate negative texts of video i,
        row i of `weights_t2v` the candidate negative videos of text i. Each is `softmax(similarity + 1e-4)` over the
        row with the positives zeroed; NaN and ±inf become 0.01.
    """
    positives = _positive_pairs(sample_ids, similarity.shape[0], similarity.device)
    weights = []
    for logits in (similarity, similarity.T):
        row_weights = F.softmax(logits + 1e-4, dim=1).masked_fill(positives, 0)
        weights.append(torch.nan_to_num(row_weights, nan=1e-2, posinf=1e-2, neginf=1e-2))
    return weights[0], weights[1]


@torch.no_grad()
def sample_matching_negatives(
    similarity: torch.Tensor,
    sample_ids: torch.Tensor | None = None,
    *,
    hard_negatives: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws one negative video per text and one negative text per video.

    Args:
        similarity: `(batch, batch)` video-to-text logits, rows = videos.
        sample_ids: `(batch,)` integer video ids (equal ids are never drawn as negatives); `None`: distinct videos.
        hard_negatives: `True` draws ∝ `matching_negative_weights` (official `vtm_hard_neg=True`); a row whose
            weights all underflow to 0 (where the official code fails) draws uniformly among its non-positives.
            `False` draws uniformly among the non-positives.
        generator: random source for `torch.multinomial`; `None` uses torch's global generator. The videos are
            drawn first, then the texts, as in the official code, so a generator seeded like the official run
            reproduces its draws.

    Returns:
        `(vision_negative_indices, text_negative_indices)`, each `(batch,)` int64.
    """
    batch_size = similarity.shape[0]
    if similarity.shape != (batch_size, batch_size):
        raise ValueError(f"similarity must be a square (batch, batch) matrix, got {tuple(similarity.shape)}")
    negatives = ~_positive_pairs(sample_ids, batch_size, similarity.device)
    if not bool(negatives.any(dim=1).all()):
        raise ValueError("sample_ids leave a sample without any negative: VTM needs at least two distinct videos")
    uniform = negatives.to(similarity.dtype)
    if hard_negatives:
        weights_v2t, weights_t2v = matching_negative_weights(similarity, sample_ids)
        weights_v2t = torch.where(weights_v2t.sum(dim=1, keepdim=True) > 0, weights_v2t, uniform)
        weights_t2v = torch.where(weights_t2v.sum(dim=1, keepdim=True) > 0, weights_t2v, uniform)
    else:
        weights_v2t = weights_t2v = uniform
    if generator is not None:
        weights_v2t, weights_t2v = weights_v2t.to(generator.device), weights_t2v.to(generator.device)
    vision_negative_indices = torch.multinomial(weights_t2v, 1, generator=generator).squeeze(1)
    text_negative_indices = torch.multinomial(weights_v2t, 1, generator=generator).squeeze(1)
    return vision_negative_indices.to(similarity.device), text_negative_indices.to(similarity.device)


class InternVideo2VideoTextMatchingLoss(nn.Module):
    """Binary video-text matching over positives and one mined negative per video and per text (official VTM).

    For a local batch of `B` pairs it draws, from the contrastive similarities (no gradient), a negative video for
    every text and a negative text for every video, builds the `3B` pairs `[(v_i, t_i); (v_neg(i), t_i);
    (v_i, t_neg(i))]` with labels `[1]*B + [0]*2B`, scores them with the caller's `match_fn` (the model's fusion
    encoder + matching head) and returns the cross-entropy. Negatives come from the local batch only, so no
    distributed option is needed; under DDP each rank's loss is its local-batch VTM and DDP averages the gradients.

    Args:
        hard_negatives: draw negatives ∝ softmax similarity (official `vtm_hard_neg=True`) or uniformly.
    """

    def __init__(self, hard_negatives: bool = True):
        super().__init__()
        self.hard_negatives = hard_negatives

    def forward(
        self,
        vision_hidden_states: torch.Tensor,
        text_hidden_states: torch.Tensor,
        text_attention_mask: torch.Tensor,
        vision_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        temperature: float | torch.Tensor,
        match_fn: MatchFunction,
        sample_ids: torch.Tensor | None = None,
        vision_attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        negative_indices: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> InternVideo2MatchingLossOutput:
        """Computes the loss.

        Args:
            vision_hidden_states: `(batch, num_vision_tokens, dim_v)` cross-attention memory of each video.
            text_hidden_states: `(batch, text_len, dim_t)` text-encoder output of each caption.
            text_attention_mask: `(batch, text_len)`, 1 = real token.
            vision_embeds: `(batch, dim)` projected video features, used (without gradient) to mine negatives.
            text_embeds: `(batch, dim)` projected text features, used (without gradient) to mine negatives.
            temperature: the contrastive temperature applied to the similarities before the softmax.
            match_fn: `match_fn(vision_hidden_states, vision_attention_mask, text_hidden_states, text_attention_mask)`
                on the `3 * batch` pairs, returning `(3 * batch, 2)` logits.
            sample_ids: `(batch,)` integer video ids; pairs with equal ids are never negatives of each other.
            vision_attention_mask: `(batch, num_vision_tokens)`; `None` = all ones (int64), as in the official code.
            generator: random source for the negative draws.
            negative_indices: pre-drawn `(vision_negative_indices, text_negative_indices)`, each `(batch,)`; when
                given nothing is drawn (e.g. to replay recorded draws).

        Returns:
            `InternVideo2MatchingLossOutput`.
        """
        check_paired_embeds(vision_embeds, text_embeds, sample_ids)
        check_temperature(temperature)
        batch_size = vision_embeds.shape[0]
        for name, tensor in (
            ("vision_hidden_states", vision_hidden_states),
            ("text_hidden_states", text_hidden_states),
            ("text_attention_mask", text_attention_mask),
        ):
            if tensor.shape[0] != batch_size:
                raise ValueError(f"{name} must have batch size {batch_size}, got shape {tuple(tensor.shape)}")
        if vision_attention_mask is None:
            vision_attention_mask = torch.ones(
                vision_hidden_states.shape[:2], dtype=torch.long, device=vision_hidden_states.device
            )
        elif vision_attention_mask.shape != vision_hidden_states.shape[:2]:
            raise ValueError(
                f"vision_attention_mask must have shape {tuple(vision_hidden_states.shape[:2])}, got "
                f"{tuple(vision_attention_mask.shape)}"
            )

        if negative_indices is None:
            with torch.no_grad():
                similarity = video_text_similarity(vision_embeds, text_embeds, temperature)
            vision_negatives, text_negatives = sample_matching_negatives(
                similarity, sample_ids, hard_negatives=self.hard_negatives, generator=generator
            )
        else:
            vision_negatives, text_negatives = negative_indices
            if vision_negatives.shape != (batch_size,) or text_negatives.shape != (batch_size,):
                raise ValueError(
                    f"negative_indices must be two ({batch_size},) tensors, got {tuple(vision_negatives.shape)} and "
                    f"{tuple(text_negatives.shape)}"
                )

        logits = match_fn(
            torch.cat([vision_hidden_states, vision_hidden_states[vision_negatives], vision_hidden_states]),
            torch.cat([vision_attention_mask, vision_attention_mask[vision_negatives], vision_attention_mask]),
            torch.cat([text_hidden_states, text_hidden_states, text_hidden_states[text_negatives]]),
            torch.cat([text_attention_mask, text_attention_mask, text_attention_mask[text_negatives]]),
        )
        if logits.shape != (3 * batch_size, 2):
            raise ValueError(f"match_fn must return logits of shape ({3 * batch_size}, 2), got {tuple(logits.shape)}")
        labels = torch.zeros(3 * batch_size, dtype=torch.long, device=logits.device)
        labels[:batch_size] = 1
        return InternVideo2MatchingLossOutput(
            loss=F.cross_entropy(logits, labels),
            logits=logits,
            labels=labels,
            vision_negative_indices=vision_negatives,
            text_negative_indices=text_negatives,
        )
