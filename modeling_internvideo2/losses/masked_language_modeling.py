"""Masked language modelling (MLM) of InternVideo2 Stage 2: BERT-style token masking and its loss.

The audio-visual variant (AVMLM) uses the same masking and loss; only the memory the fusion layers attend to
changes (`concat_audio_vision_tokens`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


IGNORE_INDEX = -100


@dataclass
class InternVideo2MLMDraws:
    """The random numbers of one masking call, all `(batch, text_len)`, drawn in this order.

    Args:
        selected: Bernoulli(`mlm_probability`) draw, before special tokens are excluded.
        replace_with_mask: Bernoulli(`mask_replace_prob`) draw.
        replace_with_random: Bernoulli(`random_replace_prob / (1 - mask_replace_prob)`) draw.
        random_token_ids: uniform ids in `[0, vocab_size)`.
    """

    selected: torch.Tensor
    replace_with_mask: torch.Tensor
    replace_with_random: torch.Tensor
    random_token_ids: torch.Tensor


class InternVideo2TextMasker:
    """BERT-style masking of caption ids for the MLM loss (official `MLMLoss.mask`).

    Each non-special token is selected with probability `mlm_probability`; a selected token becomes `[MASK]` with
    probability `mask_replace_prob`, a uniformly random id with probability `random_replace_prob`, and stays
    unchanged otherwise. Labels are the original ids at the selected positions and -100 elsewhere.

    Args:
        mask_token_id: id of `[MASK]`.
        vocab_size: random replacements are drawn from `[0, vocab_size)` (the official code uses the text encoder's
            `config.vocab_size`).
        special_token_ids: ids that are never selected; the official code protects `[PAD]` and `[CLS]`.
        mlm_probability: official 0.5.
        mask_replace_prob: official 0.8.
        random_replace_prob: official 0.1.
    """

    def __init__(
        self,
        mask_token_id: int,
        vocab_size: int,
        special_token_ids: Iterable[int],
        mlm_probability: float = 0.5,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
    ):
        for name, value in (
            ("mlm_probability", mlm_probability),
            ("mask_replace_prob", mask_replace_prob),
            ("random_replace_prob", random_replace_prob),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if mask_replace_prob + random_replace_prob > 1.0:
            raise ValueError(
                "mask_replace_prob + random_replace_prob must be <= 1, got "
                f"{mask_replace_prob} + {random_replace_prob}"
            )
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.special_token_ids = tuple(special_token_ids)
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "InternVideo2TextMasker":
        """Builds the masker of a BERT tokenizer: `[MASK]`, `len(tokenizer)` ids, `[PAD]` and `[CLS]` protected."""
        return cls(
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=len(tokenizer),
            special_token_ids=(tokenizer.pad_token_id, tokenizer.cls_token_id),
            **kwargs,
        )

    def draw(
        self, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> InternVideo2MLMDraws:
        """Draws the random numbers of one masking call, in the official order, on the generator's device (else on
        `device`), so a CPU generator seeded like the official run reproduces its draws."""
        if generator is not None:
            device = generator.device
        remaining = 1.0 - self.mask_replace_prob
        random_given_not_mask = self.random_replace_prob / remaining if remaining > 0 else 0.0

        def bernoulli(probability: float) -> torch.Tensor:
            return torch.bernoulli(torch.full(shape, probability, device=device), generator=generator).bool()

        return InternVideo2MLMDraws(
            selected=bernoulli(self.mlm_probability),
            replace_with_mask=bernoulli(self.mask_replace_prob),
            replace_with_random=bernoulli(random_given_not_mask),
            random_token_ids=torch.randint(self.vocab_size, shape, generator=generator, device=device),
        )

    def __call__(
        self,
        input_ids: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        draws: InternVideo2MLMDraws | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks a batch of ids.

        Args:
            input_ids: `(batch, text_len)` int64 ids (left unchanged).
            generator: random source; `None` uses torch's global generator.
            draws: pre-drawn random numbers (e.g. replayed from a recording); nothing is drawn when given.

        Returns:
            `(masked_input_ids, labels)`, both `(batch, text_len)` int64.
        """
        if input_ids.ndim != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"input_ids must be a (batch, text_len) integer tensor, got {input_ids.dtype} {tuple(input_ids.shape)}"
            )
        if draws is None:
            draws = self.draw(tuple(input_ids.shape), generator=generator, device=input_ids.device)
        elif draws.selected.shape != input_ids.shape:
            raise ValueError(f"draws have shape {tuple(draws.selected.shape)}, input_ids {tuple(input_ids.shape)}")
        device = input_ids.device
        protected = torch.isin(input_ids, torch.tensor(self.special_token_ids, dtype=input_ids.dtype, device=device))
        selected = draws.selected.to(device) & ~protected
        to_mask = draws.replace_with_mask.to(device) & selected
        to_random = draws.replace_with_random.to(device) & selected & ~to_mask

        labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
        masked_input_ids = input_ids.masked_fill(to_mask, self.mask_token_id)
        masked_input_ids = torch.where(to_random, draws.random_token_ids.to(device), masked_input_ids)
        return masked_input_ids, labels


class InternVideo2MaskedLanguageModelingLoss(nn.Module):
    """Cross-entropy over the vocabulary at the masked positions (labels != -100), averaged over those positions.

    Returns a zero that keeps the graph when no position is masked (the official code returns NaN there).
    """

    def forward(self, prediction_scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Args:
            prediction_scores: `(batch, text_len, vocab_size)` MLM-head logits.
            labels: `(batch, text_len)` int64 targets, -100 where not masked.

        Returns:
            The scalar loss.
        """
        if prediction_scores.shape[:-1] != labels.shape:
            raise ValueError(
                f"prediction_scores {tuple(prediction_scores.shape)} must be labels {tuple(labels.shape)} + (vocab,)"
            )
        if not bool((labels != IGNORE_INDEX).any()):
            return prediction_scores.sum() * 0.0
        return F.cross_entropy(
            prediction_scores.reshape(-1, prediction_scores.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )
