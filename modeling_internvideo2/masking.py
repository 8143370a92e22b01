"""Patch-token masks for masked video training (Stage-1 distillation, Stage-2 `only_mask` training).

Every mask is a bool tensor over the patch tokens in the encoder's order (frame-major, then row, then column);
True = masked (dropped from the encoder input). The cls token is never part of these masks: `prepend_cls_to_mask`
adds its always-visible column for encoders whose mask covers `1 + num_patches` tokens.
"""

import torch


def _check_mask_ratio(mask_ratio: float) -> None:
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")


def random_token_mask(
    batch_size: int,
    num_tokens: int,
    mask_ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Masks exactly `int(mask_ratio * num_tokens)` tokens per sample, chosen uniformly (official
    `RandomMaskingGenerator`, Stage-2 video ratio 0.8 and image ratio 0.5).

    Args:
        batch_size: number of samples.
        num_tokens: patch tokens per sample (`frames * height * width` in patches).
        mask_ratio: fraction to mask, in [0, 1].
        generator: random source; draws happen on its device. `None` uses torch's global generator.
        device: device of the returned mask.

    Returns:
        `(batch_size, num_tokens)` bool mask.
    """
    _check_mask_ratio(mask_ratio)
    num_masked = int(mask_ratio * num_tokens)
    noise = torch.rand(
        batch_size, num_tokens, generator=generator, device=generator.device if generator is not None else device
    )
    masked_positions = noise.argsort(dim=1)[:, :num_masked]
    mask = torch.zeros_like(noise, dtype=torch.bool).scatter_(1, masked_positions, True)
    return mask.to(device) if device is not None else mask


def tube_token_mask(
    batch_size: int,
    num_frames: int,
    tokens_per_frame: int,
    mask_ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Masks the same `int(mask_ratio * tokens_per_frame)` spatial positions in every frame of a sample (tube
    masking).

    Returns:
        `(batch_size, num_frames * tokens_per_frame)` bool mask.
    """
    frame_mask = random_token_mask(batch_size, tokens_per_frame, mask_ratio, generator=generator, device=device)
    return frame_mask.repeat(1, num_frames)


def attention_guided_token_mask(
    attention: torch.Tensor, mask_ratio: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keeps the tokens a teacher attends to (UMT / InternVideo2 Stage-1 `attention` mask type).

    Within each group of `n` tokens, `torch.multinomial` draws `n - int(n * mask_ratio)` distinct tokens with
    probability ∝ the teacher's attention; those are visible, the rest masked. Drawing only the visible tokens gives
    the same tokens as the official draw of the full order followed by taking its head.

    Args:
        attention: non-negative teacher attention over the patch tokens, either
            `(batch, num_frames, tokens_per_frame)`: one draw per frame (Stage-1 recipe, spec §2.2), or
            `(batch, num_tokens)`: one joint draw over all tokens (distillation recipe, spec §2.5).
        mask_ratio: fraction to mask in each group (official 0.8).
        generator: random source; draws happen on its device. `None` uses torch's global generator.

    Returns:
        `(batch, num_tokens)` bool mask on the attention's device.
    """
    _check_mask_ratio(mask_ratio)
    if attention.ndim not in (2, 3) or not attention.is_floating_point():
        raise ValueError(
            "attention must be a float (batch, tokens) or (batch, frames, tokens_per_frame) tensor, got "
            f"{attention.dtype} {tuple(attention.shape)}"
        )
    batch_size, group_size = attention.shape[0], attention.shape[-1]
    groups = attention.reshape(-1, group_size)
    num_visible = group_size - int(mask_ratio * group_size)
    if not bool(torch.isfinite(groups).all()) or bool((groups < 0).any()):
        raise ValueError("attention must be finite and non-negative")
    if bool(((groups > 0).sum(dim=1) < num_visible).any()):
        raise ValueError(f"attention needs at least {num_visible} positive entries per group to keep that many tokens")
    mask = torch.ones(groups.shape, dtype=torch.bool, device=attention.device)
    if num_visible > 0:
        sampling_weights = groups if generator is None else groups.to(generator.device)
        visible = torch.multinomial(sampling_weights, num_visible, replacement=False, generator=generator)
        mask.scatter_(1, visible.to(attention.device), False)
    return mask.reshape(batch_size, -1)


def prepend_cls_to_mask(mask: torch.Tensor) -> torch.Tensor:
    """Adds the never-masked cls column: `(batch, num_patches)` → `(batch, 1 + num_patches)`."""
    if mask.ndim != 2 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a (batch, num_patches) bool tensor, got {mask.dtype} {tuple(mask.shape)}")
    return torch.cat([mask.new_zeros(mask.shape[0], 1), mask], dim=1)


def select_visible_tokens(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keeps the unmasked tokens, in order, e.g. to pick the teacher targets of the visible student tokens.

    Args:
        hidden_states: `(..., batch, num_tokens, dim)`, e.g. `(layers, batch, 1 + num_patches, dim)`.
        mask: `(batch, num_tokens)` bool, True = masked; every sample must keep the same number of tokens.

    Returns:
        `(..., batch, num_visible, dim)`.
    """
    if mask.ndim != 2 or mask.dtype != torch.bool or hidden_states.shape[-3:-1] != mask.shape:
        raise ValueError(
            f"mask must be a bool (batch, num_tokens) matching hidden_states {tuple(hidden_states.shape)}, got "
            f"{mask.dtype} {tuple(mask.shape)}"
        )
    num_visible = (~mask).sum(dim=1)
    if bool((num_visible != num_visible[0]).any()):
        raise ValueError(f"every sample must keep the same number of tokens, got {num_visible.tolist()}")
    visible = hidden_states[..., ~mask, :]
    return visible.reshape(*hidden_states.shape[:-3], mask.shape[0], -1, hidden_states.shape[-1])
