"""Video-text contrastive loss (VTC) of InternVideo2 Stage 2 and InternVideo2-CLIP."""

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import all_gather_batch, distributed_rank_and_world_size


def check_temperature(temperature: float | torch.Tensor) -> None:
    """Raises a one-line error unless `temperature` is a positive number or a one-element tensor."""
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got a tensor of shape {tuple(temperature.shape)}")
    elif isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
    else:
        raise TypeError(f"temperature must be a float or a scalar tensor, got {type(temperature).__name__}")


def check_paired_embeds(vision_embeds: torch.Tensor, text_embeds: torch.Tensor, sample_ids: torch.Tensor | None):
    """Raises a one-line error unless the embeddings are `(batch, dim)` pairs and `sample_ids` `(batch,)` integers."""
    if vision_embeds.ndim != 2 or text_embeds.ndim != 2:
        raise ValueError(
            f"vision_embeds and text_embeds must be (batch, dim), got {tuple(vision_embeds.shape)} and "
            f"{tuple(text_embeds.shape)}"
        )
    if vision_embeds.shape != text_embeds.shape:
        raise ValueError(
            f"vision_embeds {tuple(vision_embeds.shape)} and text_embeds {tuple(text_embeds.shape)} must have the "
            "same shape (one text per video)"
        )
    if sample_ids is not None:
        if sample_ids.shape != (vision_embeds.shape[0],):
            raise ValueError(
                f"sample_ids must have shape ({vision_embeds.shape[0]},), got {tuple(sample_ids.shape)}"
            )
        if sample_ids.is_floating_point() or sample_ids.is_complex():
            raise TypeError(f"sample_ids must be an integer tensor, got {sample_ids.dtype}")


def video_text_similarity(
    vision_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Cosine similarity of every video with every text, divided by `temperature`.

    Args:
        vision_embeds: `(num_videos, dim)` projected video features, not necessarily normalised.
        text_embeds: `(num_texts, dim)` projected text features, not necessarily normalised.
        temperature: `1.0` gives the retrieval-evaluation similarity.

    Returns:
        `(num_videos, num_texts)` logits; the text-to-video logits are its transpose.
    """
    check_temperature(temperature)
    return F.normalize(vision_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).T / temperature


def in_batch_contrastive_loss(logits_per_video: torch.Tensor) -> torch.Tensor:
    """CLIP's local loss: symmetric cross-entropy of (videos, texts) logits whose i-th video matches the i-th text."""
    if logits_per_video.ndim != 2 or logits_per_video.shape[0] != logits_per_video.shape[1]:
        raise ValueError(
            f"return_loss needs one text per video, got logits of shape {tuple(logits_per_video.shape)}"
        )
    targets = torch.arange(logits_per_video.shape[0], device=logits_per_video.device)
    return (F.cross_entropy(logits_per_video, targets) + F.cross_entropy(logits_per_video.T, targets)) / 2


def multi_positive_targets(row_ids: torch.Tensor, column_ids: torch.Tensor) -> torch.Tensor:
    """Soft targets `(len(row_ids), len(column_ids))`: 1 where the sample ids match, each row normalised to sum 1.

    A video that appears twice in a batch (two captions) is a positive for both captions.
    """
    targets = (row_ids[:, None] == column_ids[None, :]).float()
    return targets / targets.sum(dim=1, keepdim=True)


class InternVideo2VideoTextContrastiveLoss(nn.Module):
    """Symmetric video-text InfoNCE with multi-positive soft targets (official VTC; also the InternVideo2-CLIP loss).

    `loss = ½ (CE(v→t) + CE(t→v))` over `logits = cos(v, t) / temperature`, where the target of a row is uniform
    over the columns whose sample id equals the row's (no label smoothing).

    Distributed options (only act when torch.distributed is initialised with more than one rank; every rank must
    pass the same local batch size):

    - `all_gather=False`: each rank contrasts its local batch only.
    - `all_gather=True, local_loss=False` (official): each rank computes the loss of the *global* batch, so every
      rank's loss value is the single-process loss of the global batch.
    - `all_gather=True, local_loss=True` (open_clip's `--local-loss`): each rank computes only its own rows against
      all columns; the mean of the ranks' losses is the global-batch loss. Cheaper: `B × W·B` logits instead of
      `W·B × W·B`.

    With `gather_with_grad=True` (default) and DDP's gradient averaging, every parameter gradient equals the
    single-process gradient of the global batch, in both `local_loss` modes. With `gather_with_grad=False` (only
    with `local_loss=False`), a rank's features receive gradient from that rank's copy of the loss only; after DDP
    averaging, gradients of parameters that feed the features are `1 / world_size` of the global-batch gradient
    while the temperature gradient is not scaled. This reproduces the official InternVideo2 gradient, whose gather
    backward returns the local slice.
    """

    def __init__(self, all_gather: bool = True, local_loss: bool = False, gather_with_grad: bool = True):
        super().__init__()
        if local_loss and not gather_with_grad:
            raise ValueError(
                "local_loss=True needs gather_with_grad=True: otherwise the rows of the other ranks never send "
                "gradient to this rank's features"
            )
        self.all_gather = all_gather
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad

    def forward(
        self,
        vision_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        temperature: float | torch.Tensor,
        sample_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Computes the loss.

        Args:
            vision_embeds: `(batch, dim)` projected video features (video i is paired with text i); normalised here.
            text_embeds: `(batch, dim)` projected text features; normalised here.
            temperature: scalar (float or tensor, may require grad) dividing the cosine similarities.
            sample_ids: `(batch,)` integer id of the video of each pair; equal ids are positives of each other.
                `None`: only the pair itself is positive.

        Returns:
            The scalar loss (see the class docstring for its meaning under each distributed option).
        """
        check_paired_embeds(vision_embeds, text_embeds, sample_ids)
        check_temperature(temperature)
        rank, world_size = distributed_rank_and_world_size()
        batch_size = vision_embeds.shape[0]
        if sample_ids is None:
            sample_ids = torch.arange(batch_size, device=vision_embeds.device) + rank * batch_size
        vision_embeds = F.normalize(vision_embeds, dim=-1)
        text_embeds = F.normalize(text_embeds, dim=-1)

        if self.all_gather and world_size > 1:
            all_vision = all_gather_batch(vision_embeds, with_grad=self.gather_with_grad)
            all_text = all_gather_batch(text_embeds, with_grad=self.gather_with_grad)
            all_ids = all_gather_batch(sample_ids, with_grad=False)
            if self.local_loss:
                logits_v2t = vision_embeds @ all_text.T / temperature
                logits_t2v = text_embeds @ all_vision.T / temperature
                targets = multi_positive_targets(sample_ids, all_ids)
            else:
                logits_v2t = all_vision @ all_text.T / temperature
                logits_t2v = logits_v2t.T
                targets = multi_positive_targets(all_ids, all_ids)
        else:
            logits_v2t = vision_embeds @ text_embeds.T / temperature
            logits_t2v = logits_v2t.T
            targets = multi_positive_targets(sample_ids, sample_ids)

        targets = targets.to(logits_v2t.dtype)
        return (F.cross_entropy(logits_v2t, targets) + F.cross_entropy(logits_t2v, targets)) / 2
