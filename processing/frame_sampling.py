# Copyright 2025 The InternVideo2 re-implementation authors. Apache-2.0.
"""Which frames of a video the InternVideo2 pipelines feed to the model (spec §6.1).

Frame ``i`` is the ``i``-th frame of the video in presentation order, as decord and
:mod:`internvideo2.processing.video_decoding` count them.

* ``middle`` / ``rand`` -- Stage-2 and CLIP test / training sampling: split the video into ``num_frames`` segments
  with ``np.linspace(0, total_frames, num_frames + 1).astype(int)`` and take the middle frame of each (test) or a
  random frame (training). Videos shorter than ``num_frames`` repeat their last sampled frame.
* ``fps`` -- one frame every ``1 / fps`` seconds, at the centre of each period.
* ``sparse`` -- the fine-tuning (``kinetics_sparse``) test clips: ``num_clips`` temporally shifted clips of
  ``num_frames`` frames, e.g. the 4 clips of the Kinetics-400 protocol.

Random draws use an explicit ``torch.Generator`` so that a seed reproduces them.
"""

from __future__ import annotations

import numpy as np
import torch


SAMPLING_MODES = ("middle", "rand", "fps", "sparse")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def segment_frame_indices(
    num_frames: int,
    total_frames: int,
    sampling: str = "middle",
    generator: torch.Generator | None = None,
) -> list[int]:
    """Stage-2 / CLIP segment sampling (official `multi_modality/dataset/video_utils.py::get_frame_indices`).

    The video is cut into ``min(num_frames, total_frames)`` segments ``[x0, x1)`` by ``np.linspace(...).astype(int)``
    (numpy's float truncation is part of the definition: it decides some borders). ``middle`` takes
    ``(x0 + x1 - 1) // 2``. ``rand`` draws uniformly from ``[x0, x1 - 2]``: the official code draws from
    ``range(x0, x1 - 1)``, so the last frame of a segment is never picked; when one such range is empty it takes a
    sorted random subset of all frames instead. Short videos repeat their last index up to ``num_frames``.
    """
    _check_positive_int(num_frames, "num_frames")
    _check_positive_int(total_frames, "total_frames")
    if sampling not in ("middle", "rand"):
        raise ValueError(f"`sampling` must be 'middle' or 'rand' for segment sampling, got {sampling!r}")
    num_segments = min(num_frames, total_frames)
    borders = np.linspace(0, total_frames, num_segments + 1).astype(int)
    firsts, lasts = borders[:-1], borders[1:] - 1
    if sampling == "middle":
        indices = ((firsts + lasts) // 2).tolist()
    elif np.all(lasts > firsts):
        indices = [int(torch.randint(int(a), int(b), (1,), generator=generator)) for a, b in zip(firsts, lasts)]
    else:
        subset = torch.randperm(total_frames, generator=generator)[:num_segments]
        indices = torch.sort(subset).values.tolist()
    return indices + [indices[-1]] * (num_frames - num_segments)


def fps_frame_indices(
    total_frames: int,
    video_fps: float,
    target_fps: float,
    max_num_frames: int | None = None,
) -> list[int]:
    """One frame per ``1 / target_fps`` seconds, at the middle of each period (official ``fps{r}`` mode).

    Periods whose middle frame lies past the end are dropped; ``max_num_frames`` keeps only the first ones.
    """
    _check_positive_int(total_frames, "total_frames")
    if video_fps is None or not video_fps > 0:
        raise ValueError(
            f"`sampling='fps'` needs the video's frame rate, got {video_fps!r}; pass `video_metadata={{'fps': ...}}` "
            "for decoded frames"
        )
    if target_fps is None or not target_fps > 0:
        raise ValueError(f"`sampling='fps'` needs `fps` (frames to sample per second) > 0, got {target_fps!r}")
    period = 1 / target_fps
    centres = np.arange(period / 2, total_frames / video_fps + period / 2, period)
    indices = [int(i) for i in np.around(centres * video_fps).astype(int) if i < total_frames]
    if not indices:
        raise ValueError(
            f"`sampling='fps'` at fps={target_fps} selects no frame of a {total_frames / video_fps:.3f}-s video; "
            "raise `fps` or use sampling='middle'"
        )
    if max_num_frames is not None:
        _check_positive_int(max_num_frames, "num_frames")
        indices = indices[:max_num_frames]
    return indices


def sparse_clip_frame_indices(
    num_frames: int,
    total_frames: int,
    clip_index: int = 0,
    num_clips: int = 1,
) -> list[int]:
    """Test clip ``clip_index`` of ``num_clips`` of the fine-tuning pipeline (``kinetics_sparse._get_seq_frames``).

    With ``segment = (total_frames - 1) / num_frames``, frame ``i`` of the clip is
    ``round(segment * i) + int(segment / (num_clips + 1) * (clip_index + 1))``, capped at the last frame.
    """
    _check_positive_int(num_frames, "num_frames")
    _check_positive_int(total_frames, "total_frames")
    _check_positive_int(num_clips, "num_clips")
    valid_clip = isinstance(clip_index, (int, np.integer)) and not isinstance(clip_index, bool)
    if not valid_clip or not 0 <= clip_index < num_clips:
        raise ValueError(f"`clip_index` must be an integer in [0, {num_clips}), got {clip_index!r}")
    segment = max(0.0, (total_frames - 1) / num_frames)
    shift = int(segment / (num_clips + 1) * (clip_index + 1))
    return [min(int(np.round(segment * i)) + shift, total_frames - 1) for i in range(num_frames)]


def sample_frame_indices(
    num_frames: int,
    total_frames: int,
    sampling: str = "middle",
    *,
    video_fps: float | None = None,
    fps: float | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Dispatch to the sampling mode ``sampling`` (one of :data:`SAMPLING_MODES`).

    ``num_frames`` is the clip length, or the maximum number of frames in ``fps`` mode. ``clip_index`` and
    ``num_clips`` select a test clip in ``sparse`` mode.
    """
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"`sampling` must be one of {SAMPLING_MODES}, got {sampling!r}")
    if num_clips != 1 and sampling != "sparse":
        raise ValueError(f"`num_clips={num_clips}` needs sampling='sparse' (fine-tuning test clips), got {sampling!r}")
    if sampling == "fps":
        return fps_frame_indices(total_frames, video_fps, fps, max_num_frames=num_frames)
    if sampling == "sparse":
        return sparse_clip_frame_indices(num_frames, total_frames, clip_index=clip_index, num_clips=num_clips)
    return segment_frame_indices(num_frames, total_frames, sampling=sampling, generator=generator)


def count_repeated_frames(indices) -> int:
    """How many sampled frames repeat an earlier one (the official padding of videos shorter than the clip)."""
    return len(indices) - len(set(int(i) for i in indices))
