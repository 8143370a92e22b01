"""Frame sampling against independent re-derivations of the official formulas (spec §6.1)."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from internvideo2.processing.frame_sampling import (
    SAMPLING_MODES,
    count_repeated_frames,
    fps_frame_indices,
    sample_frame_indices,
    segment_frame_indices,
    sparse_clip_frame_indices,
)


def official_segments(num_frames, vlen):
    """Segment ranges (x0, x1 - 1) of `get_frame_indices`, written as a plain loop over numpy's linspace borders."""
    count = min(num_frames, vlen)
    borders = np.linspace(start=0, stop=vlen, num=count + 1).astype(int)
    return [(int(borders[i]), int(borders[i + 1]) - 1) for i in range(count)]


def official_middle(num_frames, vlen):
    picks = [(first + last) // 2 for first, last in official_segments(num_frames, vlen)]
    while len(picks) < num_frames:
        picks.append(picks[-1])
    return picks


def official_sparse(num_frames, vlen, clip_idx, num_segment):
    """`kinetics_sparse._get_seq_frames` test branch (clip_idx >= 0), step by step as the spec states it."""
    seg_size = max(0.0, float(vlen - 1) / num_frames)
    duration = seg_size / (num_segment + 1)
    picks = []
    for i in range(num_frames):
        start = int(np.round(seg_size * i))
        picks.append(min(start + int(duration * (clip_idx + 1)), vlen - 1))
    return picks


@pytest.mark.parametrize("num_frames", [1, 2, 3, 4, 8, 16])
def test_middle_matches_official_formula_including_short_videos(num_frames):
    for vlen in range(1, 130):
        assert segment_frame_indices(num_frames, vlen, "middle") == official_middle(num_frames, vlen), vlen


def test_middle_hand_derived_examples():
    # 40 frames / 8 segments of 5: middles of [0, 4], [5, 9], ... (the official demo clip example1.mp4)
    assert segment_frame_indices(8, 40, "middle") == [2, 7, 12, 17, 22, 27, 32, 37]
    # 5 frames, 8 requested: one frame per segment, then the last index repeated 3 times
    assert segment_frame_indices(8, 5, "middle") == [0, 1, 2, 3, 4, 4, 4, 4]


def test_segment_borders_use_numpy_float_truncation():
    # linspace(0, 30, 23) gives 14.999999999999998 where the exact border is 15; the official code truncates it to 14.
    exact = [math.floor(Fraction(30 * i, 22)) for i in range(23)]
    numpy_borders = [first for first, _ in official_segments(22, 30)] + [30]
    assert exact != numpy_borders
    assert segment_frame_indices(22, 30, "middle") == official_middle(22, 30)


def test_rand_draws_inside_official_ranges_and_uses_the_fallback_exactly_when_a_range_is_empty():
    generator = torch.Generator().manual_seed(0)
    for num_frames in (1, 3, 4, 8):
        for vlen in range(1, 90):
            segments = official_segments(num_frames, vlen)
            picks = segment_frame_indices(num_frames, vlen, "rand", generator=generator)
            assert len(picks) == num_frames
            count = len(segments)
            if all(last > first for first, last in segments):
                # random.choice(range(x0, x1 - 1)): the segment's last frame is never drawn
                assert all(first <= p <= last - 1 for p, (first, last) in zip(picks, segments)), (num_frames, vlen)
            else:
                # fallback: sorted random subset of all frames of the official size, then last-index padding
                head = picks[:count]
                assert head == sorted(head) and len(set(head)) == count and all(0 <= p < vlen for p in head)
            assert picks[count:] == [picks[count - 1]] * (num_frames - count)


def test_rand_reaches_every_allowed_frame_and_never_the_segment_end():
    segments = official_segments(4, 40)  # [(0, 9), (10, 19), (20, 29), (30, 39)]
    generator = torch.Generator().manual_seed(1)
    seen = [set() for _ in segments]
    for _ in range(400):
        for k, pick in enumerate(segment_frame_indices(4, 40, "rand", generator=generator)):
            seen[k].add(pick)
    assert seen == [set(range(first, last)) for first, last in segments]


def test_rand_is_reproducible_with_a_seed_and_varies_across_seeds():
    def draw(seed):
        return segment_frame_indices(8, 300, "rand", generator=torch.Generator().manual_seed(seed))

    assert draw(3) == draw(3)
    assert len({tuple(draw(seed)) for seed in range(5)}) > 1


def test_fps_mode_hand_derived():
    # 10 s at 30 fps, one frame per second at the middle of each second: 0.5 s -> frame 15, 1.5 s -> 45, ...
    assert fps_frame_indices(300, 30.0, 1.0) == [15 + 30 * k for k in range(10)]
    # two per second: 0.25 s -> 7.5 -> 8 (numpy rounds half to even), 0.75 s -> 22.5 -> 22, ...
    expected = [int(np.around((0.25 + 0.5 * k) * 30)) for k in range(20)]
    assert fps_frame_indices(300, 30.0, 2.0) == expected
    assert expected[:2] == [8, 22]
    assert fps_frame_indices(300, 30.0, 2.0, max_num_frames=5) == expected[:5]
    # periods whose middle falls past the end are dropped: 2.5 s at 4 fps = 10 frames, 1 fps -> 0.5 s, 1.5 s
    assert fps_frame_indices(10, 4.0, 1.0) == [2, 6]


def test_sparse_test_clips_match_official_formula():
    for num_frames in (8, 16):
        for vlen in list(range(1, 60)) + [250, 301]:
            for clip in range(4):
                expected = official_sparse(num_frames, vlen, clip, 4)
                assert sparse_clip_frame_indices(num_frames, vlen, clip, 4) == expected


def test_sparse_hand_derived_example():
    # 81 frames, 8 per clip: segment 10, 4 clips shift by int(10 / 5 * (c + 1)) = 2, 4, 6, 8
    for clip, shift in enumerate([2, 4, 6, 8]):
        assert sparse_clip_frame_indices(8, 81, clip, 4) == [10 * i + shift for i in range(8)]


def test_dispatcher_routes_every_mode():
    generator = torch.Generator().manual_seed(0)
    assert sample_frame_indices(8, 40, "middle") == official_middle(8, 40)
    assert sample_frame_indices(8, 81, "sparse", clip_index=1, num_clips=4) == official_sparse(8, 81, 1, 4)
    assert sample_frame_indices(30, 300, "fps", video_fps=30.0, fps=1.0) == [15 + 30 * k for k in range(10)]
    picks = sample_frame_indices(4, 40, "rand", generator=generator)
    assert all(10 * k <= p <= 10 * k + 8 for k, p in enumerate(picks))
    assert set(SAMPLING_MODES) == {"middle", "rand", "fps", "sparse"}


def test_count_repeated_frames():
    assert count_repeated_frames([0, 1, 2, 3, 4, 4, 4, 4]) == 3
    assert count_repeated_frames(np.array([2, 7, 12])) == 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_non_positive_or_non_integer_num_frames_is_rejected(bad):
    with pytest.raises(ValueError, match=r"`num_frames` must be a positive integer"):
        sample_frame_indices(bad, 40)


def test_sampling_errors():
    with pytest.raises(ValueError, match=r"`sampling` must be one of .*'uniform'"):
        sample_frame_indices(8, 40, "uniform")
    with pytest.raises(ValueError, match=r"`total_frames` must be a positive integer, got 0"):
        sample_frame_indices(8, 0)
    with pytest.raises(ValueError, match=r"needs the video's frame rate"):
        sample_frame_indices(8, 40, "fps", video_fps=None, fps=1.0)
    with pytest.raises(ValueError, match=r"needs `fps`"):
        sample_frame_indices(8, 40, "fps", video_fps=30.0, fps=None)
    with pytest.raises(ValueError, match=r"selects no frame"):
        fps_frame_indices(1, 30.0, 0.5)
    with pytest.raises(ValueError, match=r"`clip_index` must be an integer in \[0, 4\)"):
        sparse_clip_frame_indices(8, 40, clip_index=4, num_clips=4)
    with pytest.raises(ValueError, match=r"`num_clips=4` needs sampling='sparse'"):
        sample_frame_indices(8, 40, "middle", num_clips=4)
    with pytest.raises(ValueError, match=r"'middle' or 'rand'"):
        segment_frame_indices(8, 40, "fps")
