"""Spatial transforms against independent numpy computations and hand-derived geometry (spec §6.2)."""

import math

import numpy as np
import pytest
import torch
from _video_testing import numpy_resize, synthetic_frames

from internvideo2.processing.video_transforms import (
    center_crop_frames,
    crop_frames,
    normalize_frames,
    random_horizontal_flip,
    random_resized_crop,
    random_resized_crop_params,
    rescale_frames,
    resize_frames,
    resize_output_size,
    spatial_crop_offsets,
    uniform_crops,
)


@pytest.fixture(scope="module")
def clip():
    """(T, C, H, W) uint8 frames, channels first."""
    return torch.from_numpy(synthetic_frames(3, 48, 80, seed=1)).permute(0, 3, 1, 2).contiguous()


def position_frames(num_frames, height, width):
    """float64 frames whose pixel value encodes its (row, col): value = row * 1000 + col, plus 1e6 * frame."""
    rows, cols = np.mgrid[0:height, 0:width]
    value = rows * 1000 + cols
    return torch.from_numpy(np.stack([np.stack([value] * 3) + 1e6 * t for t in range(num_frames)]).astype(np.float64))


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size", [(24, 40), (37, 113), (100, 61)])
def test_uint8_resize_matches_numpy_and_torchvision_014_rounding(clip, mode, size):
    ours = resize_frames(clip, size, interpolation=mode, antialias=False)
    assert ours.dtype == torch.uint8 and ours.shape == (3, 3, *size)
    reference = numpy_resize(clip.numpy(), *size, mode)
    expected = np.round(np.clip(reference, 0, 255))  # float resize, clamp (bicubic overshoots), round, cast
    # float32 vs float64 can only flip a rounding decision when the exact value is within ~1e-2 of a half-integer
    decisive = np.abs(np.clip(reference, 0, 255) % 1 - 0.5) > 1e-2
    np.testing.assert_array_equal(ours.numpy()[decisive], expected[decisive])
    assert np.abs(ours.numpy().astype(int) - expected).max() <= 1
    if mode == "bicubic" and size[0] > 48:
        assert (reference > 255.5).any() or (reference < -0.5).any()  # the clamp was exercised


def test_float_resize_is_not_rounded_and_matches_numpy(clip):
    frames = clip.double() / 255
    ours = resize_frames(frames, (30, 70), interpolation="bicubic")
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), numpy_resize(frames.numpy(), 30, 70, "bicubic"), atol=1e-9)


def test_antialias_changes_downscaling_and_removes_aliasing():
    # 1-pixel vertical stripes: without antialias a 3x bicubic downscale keeps a strong pattern, with it almost none
    stripes = torch.zeros(1, 3, 60, 90, dtype=torch.uint8)
    stripes[..., ::2] = 255
    plain = resize_frames(stripes, (20, 30), antialias=False)
    smooth = resize_frames(stripes, (20, 30), antialias=True)
    assert not torch.equal(plain, smooth)
    assert smooth.float().std() < plain.float().std() / 4


def test_resize_output_size():
    assert resize_output_size(480, 640, {"shortest_edge": 224}) == (224, 298)  # int(224 * 640 / 480) = int(298.67)
    assert resize_output_size(640, 360, {"shortest_edge": 224}) == (398, 224)  # int(224 * 640 / 360) = int(398.2)
    assert resize_output_size(320, 568, {"height": 224, "width": 224}) == (224, 224)
    with pytest.raises(ValueError, match=r"`size` must have keys"):
        resize_output_size(10, 10, {"longest_edge": 5})


def test_center_crop_geometry_follows_torchvision_rounding():
    frames = position_frames(2, 9, 12)
    # (9 - 4) / 2 = 2.5 -> round -> 2 ; (12 - 5) / 2 = 3.5 -> round -> 4 (Python rounds half to even)
    crop = center_crop_frames(frames, (4, 5))
    assert crop.shape[-2:] == (4, 5)
    assert crop[0, 0, 0, 0].item() == 2 * 1000 + 4
    assert crop[1, 0, -1, -1].item() == 1e6 + 5 * 1000 + 8


def test_spatial_crop_offsets_hand_derived():
    assert spatial_crop_offsets(298, 224, 3) == [0, 37, 74]
    assert spatial_crop_offsets(299, 224, 3) == [0, 37, 75]  # int(1 * 37.5) = 37
    assert spatial_crop_offsets(298, 224, 1) == [37]
    assert spatial_crop_offsets(224, 224, 3) == [0, 0, 0]
    with pytest.raises(ValueError, match=r"crop of 225 pixels does not fit in a side of 224 pixels"):
        spatial_crop_offsets(224, 225, 3)


def test_uniform_crops_run_along_the_long_side_and_centre_the_short_side():
    landscape = position_frames(1, 10, 20)
    crops = uniform_crops(landscape, (8, 8), 3)  # long side 20: offsets 0, 6, 12 ; short side: round(1.0) = 1
    assert [c[0, 0, 0, 0].item() for c in crops] == [1000 + 0, 1000 + 6, 1000 + 12]
    portrait = position_frames(1, 20, 10)
    crops = uniform_crops(portrait, (8, 8), 3)
    assert [c[0, 0, 0, 0].item() for c in crops] == [0 * 1000 + 1, 6 * 1000 + 1, 12 * 1000 + 1]
    assert all(c.shape[-2:] == (8, 8) for c in crops)


def test_crop_window_must_fit():
    with pytest.raises(ValueError, match=r"does not fit in 9x12 frames"):
        crop_frames(position_frames(1, 9, 12), 5, 0, 5, 4)
    with pytest.raises(ValueError, match=r"does not fit"):
        center_crop_frames(position_frames(1, 9, 12), (10, 4))


def test_random_resized_crop_params_follow_torchvision_draw_order():
    """Re-derive the parameters from the same generator stream, drawn in torchvision's order."""
    height, width, scale, ratio = 120, 200, (0.5, 1.0), (3 / 4, 4 / 3)
    fallbacks = 0
    for seed in range(20):
        ours = random_resized_crop_params(height, width, scale, ratio, generator=torch.Generator().manual_seed(seed))
        stream = torch.Generator().manual_seed(seed)
        log_low, log_high = (torch.tensor(math.log(r)) for r in ratio)
        expected = (0, 20, 120, 160)  # after 10 misses: widest crop of aspect 4/3, centred (200 / 120 > 4 / 3)
        for _ in range(10):
            area = height * width * torch.empty(1).uniform_(*scale, generator=stream).item()
            aspect = math.exp(torch.empty(1).uniform_(log_low.item(), log_high.item(), generator=stream).item())
            w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = torch.randint(0, height - h + 1, (1,), generator=stream).item()
                left = torch.randint(0, width - w + 1, (1,), generator=stream).item()
                expected = (top, left, h, w)
                break
        fallbacks += expected == (0, 20, 120, 160)
        assert ours == expected, seed
        top, left, h, w = ours
        assert scale[0] * 0.95 <= h * w / (height * width) <= scale[1] * 1.05
        assert ratio[0] * 0.95 <= w / h <= ratio[1] * 1.05
    assert 0 < fallbacks < 20  # both branches were exercised


def test_random_resized_crop_params_fallback_is_a_central_crop():
    # an impossible request (whole area at aspect 2 inside a square) falls back to the widest crop of aspect 2
    assert random_resized_crop_params(100, 100, (1.0, 1.0), (2.0, 2.0)) == (25, 0, 50, 100)
    assert random_resized_crop_params(100, 100, (1.0, 1.0), (0.5, 0.5)) == (0, 25, 100, 50)


def test_random_resized_crop_is_the_same_window_for_every_frame_and_reproducible():
    base = torch.from_numpy(synthetic_frames(1, 60, 90, seed=2)).permute(0, 3, 1, 2)
    base = (base.int() * 150 // 255 + 40).to(torch.uint8)  # keep values away from 0 / 255 so nothing clamps
    frames = torch.cat([base + t for t in range(5)])  # frame t = frame 0 + t
    out = random_resized_crop(frames, (32, 32), generator=torch.Generator().manual_seed(7))
    assert out.shape == (5, 3, 32, 32) and out.dtype == torch.uint8
    for t in range(5):  # resizing is linear, so the same window gives frame 0 + t (float32 sums can flip a rounding)
        off_by = (out[t].int() - out[0].int() - t).abs()
        assert off_by.max() <= 1 and (off_by > 0).float().mean() < 0.005
    again = random_resized_crop(frames, (32, 32), generator=torch.Generator().manual_seed(7))
    assert torch.equal(out, again)
    other = random_resized_crop(frames, (32, 32), generator=torch.Generator().manual_seed(8))
    assert not torch.equal(out, other)


def test_random_horizontal_flip(clip):
    np.testing.assert_array_equal(random_horizontal_flip(clip, 1.0).numpy(), clip.numpy()[..., ::-1])
    assert torch.equal(random_horizontal_flip(clip, 0.0), clip)
    flips = {torch.equal(random_horizontal_flip(clip, 0.5, torch.Generator().manual_seed(s)), clip) for s in range(16)}
    assert flips == {True, False}
    # one draw per clip: the result is reproducible and every frame shares the decision
    first = random_horizontal_flip(clip, 0.5, torch.Generator().manual_seed(4))
    assert torch.equal(first, random_horizontal_flip(clip, 0.5, torch.Generator().manual_seed(4)))


def test_rescale_equals_official_float_division_for_every_pixel_value():
    values = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    expected = np.arange(256, dtype=np.float32).reshape(1, 1, 16, 16) / np.float32(255)
    ours = rescale_frames(values)
    assert ours.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy(), expected)


def test_normalize_matches_numpy(clip):
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    frames = rescale_frames(clip)
    expected = (frames.numpy() - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    torch.testing.assert_close(normalize_frames(frames, mean, std), torch.from_numpy(expected), rtol=1e-6, atol=1e-6)


def test_transform_input_errors(clip):
    with pytest.raises(ValueError, match=r"`frames` must be a \(T, C, H, W\) tensor, got \(3, 48, 80\)"):
        resize_frames(clip[0], (10, 10))
    with pytest.raises(ValueError, match=r"`interpolation` must be one of .*'lanczos'"):
        resize_frames(clip, (10, 10), interpolation="lanczos")
    with pytest.raises(ValueError, match=r"must be floating point to be normalised, got torch.uint8"):
        normalize_frames(clip, [0.5] * 3, [0.5] * 3)
