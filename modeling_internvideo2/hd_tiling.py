"""HD tiling of InternVideo2-Chat-HD (spec §5.3): a clip becomes up to `hd_num` sub-videos of `image_size`² plus a
global view, each encoded separately; their visual tokens follow in tile order (row-major), global view last.

Two grid rules, as the official `hd_utils.py` has them:
* no padding (InternVL-1.5 style, the released HD default): the (columns, rows) grid with at most `hd_num` cells
  whose aspect ratio is closest to the clip's; the clip is resized to fill it exactly.
* padding (InternLM-XComposer2-HD style): the largest width scale s with `s · ceil(s / ratio) ≤ hd_num`, width
  `s · image_size`, height kept in ratio, then padded with `pad_value` to a multiple of 224 rows (224 even for other
  tile sizes, as in the official code). Portrait clips are reversed on both axes around the resize, not transposed,
  which is what the official code does (the result is landscape-shaped).
"""

import math

import torch
import torch.nn.functional as F


def candidate_grids(hd_num: int) -> list[tuple[int, int]]:
    """(columns, rows) grids with 1 ≤ columns·rows ≤ hd_num, by cell count; equal counts keep the official order
    (iteration order of the set of pairs)."""
    if not isinstance(hd_num, int) or hd_num < 1:
        raise ValueError(f"hd_num must be a positive int, got {hd_num!r}")
    grids = {(c, r) for n in range(1, hd_num + 1) for c in range(1, n + 1) for r in range(1, n + 1) if c * r <= hd_num}
    return sorted(grids, key=lambda grid: grid[0] * grid[1])


def closest_grid(width: int, height: int, hd_num: int, image_size: int = 224) -> tuple[int, int]:
    """The (columns, rows) grid whose ratio is closest to width / height; on a tie a later (larger) grid wins only
    when the clip has more than half its pixel area."""
    aspect = width / height
    best, best_difference = (1, 1), float("inf")
    for columns, rows in candidate_grids(hd_num):
        difference = abs(aspect - columns / rows)
        if difference < best_difference:
            best, best_difference = (columns, rows), difference
        elif difference == best_difference and width * height > 0.5 * image_size * image_size * columns * rows:
            best = (columns, rows)
    return best


def _resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(frames, size=(height, width), mode="bicubic", align_corners=False)


def hd_transform(
    frames: torch.Tensor, hd_num: int, image_size: int = 224, padding: bool = False, pad_value: float = 255.0
) -> torch.Tensor:
    """Resize (and with `padding`, pad) float frames `(T, C, H, W)` to a whole grid of `image_size` tiles."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or not frames.is_floating_point():
        raise ValueError(f"frames must be a float tensor (T, C, H, W), got {getattr(frames, 'shape', type(frames))}")
    height, width = frames.shape[-2:]
    if not padding:
        columns, rows = closest_grid(width, height, hd_num, image_size)
        return _resize(frames, image_size * rows, image_size * columns)
    candidate_grids(hd_num)  # validates hd_num
    portrait = width < height
    if portrait:
        frames, width, height = frames.flip(-2, -1), height, width
    ratio = width / height
    scale = 1
    while (scale + 1) * math.ceil((scale + 1) / ratio) <= hd_num:
        scale += 1
    new_width = int(scale * image_size)
    frames = _resize(frames, int(new_width / ratio), new_width)
    target = math.ceil(frames.shape[-2] / 224) * 224
    top = (target - frames.shape[-2]) // 2
    frames = F.pad(frames, (0, 0, top, target - frames.shape[-2] - top), mode="constant", value=pad_value)
    return frames.flip(-2, -1) if portrait else frames


def hd_tiles(
    frames: torch.Tensor,
    hd_num: int,
    image_size: int = 224,
    padding: bool = False,
    add_global: bool = True,
    pad_value: float = 255.0,
) -> torch.Tensor:
    """Sub-videos `(num_tiles [+ 1], T, C, image_size, image_size)` of frames `(T, C, H, W)`: the HD-transformed clip
    cut row-major, then (with `add_global`) the whole transformed clip resized to one tile."""
    transformed = hd_transform(frames, hd_num, image_size, padding, pad_value)
    steps, channels, height, width = transformed.shape
    rows, columns = height // image_size, width // image_size
    tiles = transformed.reshape(steps, channels, rows, image_size, columns, image_size)
    tiles = tiles.permute(2, 4, 0, 1, 3, 5).reshape(rows * columns, steps, channels, image_size, image_size)
    if add_global:
        tiles = torch.cat([tiles, _resize(transformed, image_size, image_size)[None]], dim=0)
    return tiles


__all__ = ["candidate_grids", "closest_grid", "hd_transform", "hd_tiles"]
