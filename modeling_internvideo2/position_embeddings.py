"""Sin-cos position tables and their interpolation, exactly as the official InternVideo2 code builds and resizes them.

Token layout everywhere: an optional cls row first, then patches ordered time-major, then row (h), then column (w).
"""

import torch
import torch.nn.functional as F


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """`concat(sin(p * w), cos(p * w))` with `w_k = 10000^(-k / (dim / 2))`, shape (len(positions), dim)."""
    if dim % 2:
        raise ValueError(f"dim must be even for a sin-cos table, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d(dim: int, grid_size: int) -> torch.Tensor:
    """Spatial table (grid_size**2, dim): first half encodes the column (w), second half the row (h) (MAE convention)."""
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, cols.flatten()), sincos_1d(dim // 2, rows.flatten())], dim=1)


def sincos_3d(dim: int, grid_size: int, num_frames: int, cls_token: bool = True) -> torch.Tensor:
    """3-D table (cls + T*g*g, dim), float64: a quarter of the channels encode time (first), the rest space."""
    if dim % 4:
        raise ValueError(f"hidden_size must be divisible by 4 for the 3-D sin-cos table, got {dim}")
    temporal_dim, spatial_dim = dim // 4, dim * 3 // 4
    temporal = sincos_1d(temporal_dim, torch.arange(num_frames))  # (T, Dt)
    spatial = sincos_2d(spatial_dim, grid_size)  # (g*g, Ds)
    num_patches = spatial.shape[0]
    table = torch.cat(
        [
            temporal[:, None, :].expand(num_frames, num_patches, temporal_dim),
            spatial[None, :, :].expand(num_frames, num_patches, spatial_dim),
        ],
        dim=-1,
    ).reshape(num_frames * num_patches, dim)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim, dtype=table.dtype), table], dim=0)
    return table


def interpolate_position_embeddings(
    table: torch.Tensor, source_frames: int, target_frames: int, target_grid: int
) -> torch.Tensor:
    """Resize a (1, 1 + T*g*g, D) table like the official `interpolate_pos_embed*`: keep the cls row, interpolate time
    linearly (align_corners=False), then space bicubically per frame (align_corners=False) when the grid changes.

    Computed in float32 whatever the table's dtype (bf16 checkpoints), and cast back.
    """
    if table.ndim != 3 or table.shape[0] != 1:
        raise ValueError(f"position table must have shape (1, 1 + T*H*W, D), got {tuple(table.shape)}")
    num_tokens, dim = table.shape[1] - 1, table.shape[2]
    if num_tokens % source_frames:
        raise ValueError(f"position table with {num_tokens} patch rows cannot hold {source_frames} frames")
    source_grid = int(round((num_tokens // source_frames) ** 0.5))
    if source_grid * source_grid * source_frames != num_tokens:
        raise ValueError(f"position table with {num_tokens} patch rows is not {source_frames} square frames")
    if source_frames == target_frames and source_grid == target_grid:
        return table

    dtype = table.dtype
    cls_row, patches = table[:, :1].float(), table[:, 1:].float()
    patches = patches.reshape(source_frames, source_grid * source_grid, dim)
    if source_frames != target_frames:
        patches = patches.permute(1, 2, 0)  # (HW, D, T): interpolate over time per position and channel
        patches = F.interpolate(patches, size=target_frames, mode="linear", align_corners=False)
        patches = patches.permute(2, 0, 1)
    if source_grid != target_grid:
        patches = patches.reshape(target_frames, source_grid, source_grid, dim).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=(target_grid, target_grid), mode="bicubic", align_corners=False)
        patches = patches.permute(0, 2, 3, 1)
    patches = patches.reshape(1, target_frames * target_grid * target_grid, dim)
    return torch.cat([cls_row, patches], dim=1).to(dtype)


def image_position_embeddings_from_video(table: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The official rule for images when no separate image table exists: cls row + the video table averaged over time."""
    dim = table.shape[-1]
    patches = table[:, 1:].reshape(1, num_frames, -1, dim).mean(dim=1)
    return torch.cat([table[:, :1], patches], dim=1)


def position_table_for(
    table: torch.Tensor, image_table: torch.Tensor | None, table_frames: int, num_frames: int, grid_size: int
) -> torch.Tensor:
    """The table for an input of `num_frames` temporal tokens on a `grid_size`² grid: one frame uses `image_table`
    (or the time-mean rule when there is none), anything else the video table; interpolated where shapes differ."""
    if num_frames == 1:
        if image_table is None:
            image_table = image_position_embeddings_from_video(table, table_frames)
        return interpolate_position_embeddings(image_table, 1, 1, grid_size)
    return interpolate_position_embeddings(table, table_frames, num_frames, grid_size)
