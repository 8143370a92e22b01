# Copyright 2025 The InternVideo2 re-implementation authors. Apache-2.0.
"""Torch-only spatial transforms of the InternVideo2 pipelines (spec §6.2), on ``(T, C, H, W)`` frame tensors.

They follow the tensor semantics of torchvision 0.14, the version the official code pins, without importing
torchvision: a uint8 input comes back as uint8 (resized in float32, then clamped for bicubic, rounded and cast, as
torchvision did), a float input stays float. Every frame of a clip gets the same geometry, and all ops run on the
tensor's device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


INTERPOLATION_MODES = ("nearest", "bilinear", "bicubic")


def _check_frames(frames: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"`frames` must be a (T, C, H, W) tensor, got {shape}")


def resize_output_size(height: int, width: int, size: dict[str, int]) -> tuple[int, int]:
    """Output ``(height, width)`` for ``size`` = ``{"height", "width"}`` (exact) or ``{"shortest_edge"}``.

    ``shortest_edge`` keeps the aspect ratio and truncates the long side like torchvision's ``Resize(int)``:
    ``long = int(shortest_edge * long / short)``.
    """
    if "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    if "shortest_edge" in size:
        short, long = sorted((height, width))
        new_short, new_long = int(size["shortest_edge"]), int(size["shortest_edge"] * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)
    raise ValueError(f"`size` must have keys ('height', 'width') or ('shortest_edge',), got {dict(size)}")


def resize_frames(
    frames: torch.Tensor,
    size: tuple[int, int],
    interpolation: str = "bicubic",
    antialias: bool = False,
) -> torch.Tensor:
    """Resize ``frames`` to ``size = (height, width)`` with ``torch.nn.functional.interpolate``.

    ``antialias=False`` reproduces the official torchvision-0.14 tensor path (it did not antialias tensors);
    torchvision >= 0.17 antialiases by default. uint8 frames are resized in float32, clamped to [0, 255] for bicubic,
    rounded and cast back to uint8, as torchvision did for uint8 tensors.
    """
    _check_frames(frames)
    if interpolation not in INTERPOLATION_MODES:
        raise ValueError(f"`interpolation` must be one of {INTERPOLATION_MODES}, got {interpolation!r}")
    size = (int(size[0]), int(size[1]))
    if tuple(frames.shape[-2:]) == size:
        return frames
    resized = F.interpolate(
        frames if frames.is_floating_point() else frames.float(),
        size=size,
        mode=interpolation,
        align_corners=None if interpolation == "nearest" else False,
        antialias=antialias and interpolation != "nearest",
    )
    if frames.is_floating_point():
        return resized
    if interpolation == "bicubic":
        resized = resized.clamp(0, 255)
    return resized.round().to(frames.dtype)


def crop_frames(frames: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The ``height x width`` window at ``(top, left)`` of every frame; it must lie inside the frames."""
    _check_frames(frames)
    frame_height, frame_width = frames.shape[-2:]
    if top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > frame_height or left + width > frame_width:
        raise ValueError(
            f"crop window (top={top}, left={left}, height={height}, width={width}) does not fit in "
            f"{frame_height}x{frame_width} frames"
        )
    return frames[..., top : top + height, left : left + width]


def center_crop_frames(frames: torch.Tensor, crop_size: tuple[int, int]) -> torch.Tensor:
    """torchvision ``CenterCrop``: offsets ``int(round((H - h) / 2))`` and ``int(round((W - w) / 2))``."""
    _check_frames(frames)
    height, width = int(crop_size[0]), int(crop_size[1])
    top = int(round((frames.shape[-2] - height) / 2.0))
    left = int(round((frames.shape[-1] - width) / 2.0))
    return crop_frames(frames, top, left, height, width)


def spatial_crop_offsets(length: int, crop: int, num_crops: int) -> list[int]:
    """Offsets of the fine-tuning test crops along a side of ``length`` (official ``kinetics_sparse`` test mode).

    ``num_crops`` crops are spread evenly from one end to the other, at
    ``int(k * (length - crop) / (num_crops - 1))``; a single crop sits at ``int((length - crop) / 2)``.
    """
    if crop > length:
        raise ValueError(f"crop of {crop} pixels does not fit in a side of {length} pixels")
    if num_crops == 1:
        return [int((length - crop) / 2)]
    step = (length - crop) / (num_crops - 1)
    return [int(k * step) for k in range(num_crops)]


def uniform_crops(frames: torch.Tensor, crop_size: tuple[int, int], num_crops: int) -> list[torch.Tensor]:
    """The fine-tuning test views: ``num_crops`` crops spread along the long side, centred on the short side."""
    _check_frames(frames)
    height, width = int(crop_size[0]), int(crop_size[1])
    frame_height, frame_width = frames.shape[-2:]
    if frame_height >= frame_width:
        left = int(round((frame_width - width) / 2.0))
        tops = spatial_crop_offsets(frame_height, height, num_crops)
        return [crop_frames(frames, top, left, height, width) for top in tops]
    top = int(round((frame_height - height) / 2.0))
    lefts = spatial_crop_offsets(frame_width, width, num_crops)
    return [crop_frames(frames, top, left, height, width) for left in lefts]


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)`` drawn with torchvision's ``RandomResizedCrop.get_params`` algorithm.

    Up to 10 tries of an area fraction in ``scale`` and a log-uniform aspect ratio in ``ratio``; if none fits, a
    central crop clamped to ``ratio``. The draws are the same float32 torch draws as torchvision's, so with the same
    generator state they give the same crop.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        crop_width = int(round(math.sqrt(target_area * aspect_ratio)))
        crop_height = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = int(torch.randint(0, height - crop_height + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - crop_width + 1, size=(1,), generator=generator).item())
            return top, left, crop_height, crop_width
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_width, crop_height = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_width, crop_height = int(round(height * max(ratio))), height
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def random_resized_crop(
    frames: torch.Tensor,
    size: tuple[int, int],
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    interpolation: str = "bicubic",
    antialias: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stage-2 training crop: one random window for the whole clip, resized to ``size = (height, width)``."""
    _check_frames(frames)
    top, left, crop_height, crop_width = random_resized_crop_params(
        frames.shape[-2], frames.shape[-1], scale=scale, ratio=ratio, generator=generator
    )
    window = crop_frames(frames, top, left, crop_height, crop_width)
    return resize_frames(window, size, interpolation=interpolation, antialias=antialias)


def random_horizontal_flip(
    frames: torch.Tensor, probability: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror the whole clip left-right with ``probability`` (torchvision ``RandomHorizontalFlip``'s single draw)."""
    _check_frames(frames)
    if torch.rand(1, generator=generator).item() < probability:
        return frames.flip(-1)
    return frames


def rescale_frames(frames: torch.Tensor, rescale_factor: float = 1 / 255) -> torch.Tensor:
    """``frames * rescale_factor`` in float32, computed as a division by ``1 / rescale_factor``.

    For the default factor this is the official ``x.float().div(255.)`` bit for bit; the float32 product
    ``x * (1 / 255)`` would be one ulp off for about half of the 256 pixel values.
    """
    _check_frames(frames)
    return frames.to(torch.float32) / (1 / rescale_factor)


def normalize_frames(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """``(frames - mean) / std`` per channel, in the frames' float dtype (torchvision ``Normalize``)."""
    _check_frames(frames)
    if not frames.is_floating_point():
        raise ValueError(f"`frames` must be floating point to be normalised, got {frames.dtype}")
    mean = torch.as_tensor(mean, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=frames.dtype, device=frames.device).view(-1, 1, 1)
    return (frames - mean) / std
