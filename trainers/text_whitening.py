"""Whitened text projection: a Stage-2 start for a pretrained text tower that stays locked.

A pretrained BERT's CLS features of a caption set are strongly anisotropic: a few directions (often the words every
caption shares) hold most of the variance, and what tells two captions apart (a motion word, a shape word) lives in
small directions. A freshly initialised projection keeps that geometry, so the contrastive loss first aligns what is
easy and can settle there. Projecting onto the leading principal components of the training captions' features,
each scaled to unit variance (BERT-whitening, Su et al. 2021), makes those directions as large as the dominant ones;
kept frozen together with the text encoder (locked-tower tuning as in LiT, Zhai et al. 2022, with the text
tower locked), it gives the vision tower fixed, well-separated targets.

    >>> from internvideo2.trainers.text_whitening import whiten_text_projection
    >>> variances = whiten_text_projection(model, tokenizer, train_captions, num_components=32)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


@torch.no_grad()
def whiten_text_projection(
    model, tokenizer, captions: Sequence[str], num_components: int, *, max_length: int = 32, batch_size: int = 256
) -> torch.Tensor:
    """Set `model.text_projection` (an `InternVideo2Model`'s) to the PCA whitening of the CLS features of `captions`.

    Output dimension `i < num_components` is the caption feature's coordinate along the `i`-th principal component
    divided by its standard deviation (so over `captions` the projected features have zero mean and identity
    covariance there); the remaining output dimensions are zero.

    Args:
        model: an `InternVideo2Model` (its text tower's text-only layers give the features).
        tokenizer: the model's tokenizer; captions are tokenised like the Stage-2 collator does (truncated to
            `max_length`).
        captions: the training captions (a representative sample is enough).
        num_components: principal components kept, at most the projection width and fewer than the captions.
        max_length, batch_size: tokenisation length and captions per forward pass.

    Returns:
        The variances of the features along the kept components (descending), float64.
    """
    from ..modeling_internvideo2 import InternVideo2Model

    if not isinstance(model, InternVideo2Model):
        raise TypeError(f"model must be an InternVideo2Model, got {type(model).__name__}")
    if isinstance(captions, str) or not all(isinstance(caption, str) for caption in captions):
        raise TypeError("captions must be a sequence of strings")
    projection = model.text_projection
    if projection.bias is None:
        raise ValueError("model.text_projection has no bias to centre the features with")
    limit = min(projection.out_features, projection.in_features, len(captions) - 1)
    if isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= limit:
        raise ValueError(
            f"num_components must be an int in [1, {limit}] (projection {projection.in_features} -> "
            f"{projection.out_features}, {len(captions)} captions), got {num_components!r}"
        )
    was_training = model.training
    model.eval()
    features = []
    for start in range(0, len(captions), batch_size):
        tokens = tokenizer(
            list(captions[start : start + batch_size]), padding=True, truncation=True, max_length=max_length,
            return_tensors="pt",
        ).to(projection.weight.device)
        encoding = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
        features.append(encoding.last_hidden_state[:, 0].double())
    model.train(was_training)
    features = torch.cat(features)
    mean = features.mean(0)
    variances, directions = torch.linalg.eigh(torch.cov((features - mean).T))
    variances, directions = variances.flip(0)[:num_components], directions.flip(1)[:, :num_components]
    if variances[-1] <= 1e-12 * variances[0]:
        raise ValueError(
            f"the captions' features span fewer than num_components={num_components} directions: pass more "
            "(or more varied) captions or fewer components"
        )
    weight = torch.zeros(projection.out_features, projection.in_features, dtype=torch.float64, device=mean.device)
    weight[:num_components] = (directions / variances.sqrt()).T
    projection.weight.copy_(weight)
    projection.bias.copy_(-weight @ mean)
    return variances.cpu()


__all__ = ["whiten_text_projection"]
