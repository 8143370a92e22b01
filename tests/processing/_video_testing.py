"""Shared helpers of the video-processing tests: synthetic clips written with PyAV and a numpy resize oracle."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"

# Every 8th frame is a keyframe, with B-frames in between: several GOPs and reordered packets in a short clip.
X264_PARAMS = "keyint=8:min-keyint=8:scenecut=0:bframes=2"


def synthetic_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames that change a lot from frame to frame (moving square, drifting gradients, noise)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = np.stack(
            [(cols * 3 + t * 11) % 256, (rows * 5 + t * 7) % 256, ((rows + cols) * 2 + t * 29) % 256], axis=-1
        ).astype(np.int64)
        top, left = (t * 5) % (height - 12), (t * 7) % (width - 12)
        frame[top : top + 12, left : left + 12] = 255 - frame[top : top + 12, left : left + 12]
        frame += rng.integers(-12, 13, size=frame.shape)
        frames[t] = np.clip(frame, 0, 255)
    return frames


def write_video(path, frames: np.ndarray, codec: str = "libx264", fps: int = 24, x264_params: str = X264_PARAMS):
    """Encode (T, H, W, 3) uint8 ``frames`` to ``path`` with PyAV (yuv420p; container from the file extension)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"x264-params": x264_params}
        else:
            stream.codec_context.gop_size = 8
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def pyav_decode_all(path) -> np.ndarray:
    """Every frame of ``path`` in decoder output order, (T, H, W, 3) uint8, with plain PyAV."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    """Keys cubic convolution weights of the 4 taps at offsets -1, 0, 1, 2 around a sample at fractional ``t``."""

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def resize_matrix(in_size: int, out_size: int, mode: str) -> np.ndarray:
    """(out, in) float64 matrix of a half-pixel-centred resize without antialias (borders replicated)."""
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size))
    for out_index in range(out_size):
        source = (out_index + 0.5) * scale - 0.5
        if mode == "bicubic":
            base = int(np.floor(source))
            for offset, weight in zip(range(-1, 3), _cubic_weights(source - base)):
                matrix[out_index, min(max(base + offset, 0), in_size - 1)] += weight
        elif mode == "bilinear":
            source = max(source, 0.0)
            base = int(np.floor(source))
            upper = min(base + 1, in_size - 1)
            matrix[out_index, base] += 1 - (source - base)
            matrix[out_index, upper] += source - base
        else:
            raise ValueError(mode)
    return matrix


def numpy_resize(frames: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """Resize (..., H, W) ``frames`` in float64 with separable interpolation matrices."""
    rows = resize_matrix(frames.shape[-2], height, mode)
    cols = resize_matrix(frames.shape[-1], width, mode)
    return rows @ frames.astype(np.float64) @ cols.T
