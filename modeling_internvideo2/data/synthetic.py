"""Labelled synthetic videos: coloured shapes that move, with captions, class labels and optional audio tones.

Every clip shows one anti-aliased shape (circle, square, triangle, cross) of one colour moving in one way (left to
right, right to left, up, down, growing, shrinking, orbiting the center) over a textured, slightly noisy gray
background. Frames are drawn from a per-clip seed, so the same seed always gives byte-identical frames (and, by
default, byte-identical files). Clips are written with PyAV (H.264 through libx264 when PyAV's FFmpeg has it, MPEG-4
Part 2 otherwise; yuv420p) and can carry a mono AAC tone whose pitch (low / medium / high) is an extra attribute.

`generate_dataset` builds a train/test split over colour x shape x motion combinations. With `held_out`, some
combinations appear only in the test split, while every colour, shape, motion and class is still shown in training, so
test numbers measure generalisation to new combinations rather than memorisation. It writes the official annotation
formats (spec section 6.3): Stage-2 / retrieval JSON, action-recognition JSON, the fine-tuning CSV `path,label`, a
labels file, and (with audio) an audio-video JSON whose caption keys follow the official `avs_all` convention.

Example:

    >>> from internvideo2.data import generate_dataset
    >>> dataset = generate_dataset("/tmp/shapes", num_train=64, num_test=16, label_by="motion")  # doctest: +SKIP
    >>> dataset.annotations["test"].retrieval  # doctest: +SKIP
    PosixPath('/tmp/shapes/annotations/test_retrieval.json')
"""

import csv
import dataclasses
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import av
import numpy as np


COLORS: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (220, 40, 40),
        "orange": (240, 140, 30),
        "yellow": (235, 210, 40),
        "green": (40, 170, 70),
        "blue": (40, 90, 230),
        "purple": (150, 60, 210),
    }
)
"""Colour name -> RGB. Saturated colours, so they stand apart from the desaturated background."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")

MOTIONS: tuple[str, ...] = ("left_to_right", "right_to_left", "up", "down", "grow", "shrink", "orbit")
"""`orbit` is a clockwise three-quarter turn around the frame center (a spin in place would not show on a circle)."""

PITCHES: Mapping[str, float] = MappingProxyType({"low": 220.0, "medium": 440.0, "high": 880.0})
"""Pitch name -> tone frequency in Hz (the audio attribute)."""

ATTRIBUTES: tuple[str, ...] = ("color", "shape", "motion")
"""The visual attributes, in the order used for combinations, class names and `held_out` tuples."""

_MOTION_PHRASES: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "left_to_right": ("moves from left to right", "slides from left to right", "travels from left to right"),
        "right_to_left": ("moves from right to left", "slides from right to left", "travels from right to left"),
        "up": ("moves up", "moves upward", "floats up"),
        "down": ("moves down", "moves downward", "sinks down"),
        "grow": ("grows", "grows larger", "gets bigger"),
        "shrink": ("shrinks", "shrinks in size", "gets smaller"),
        "orbit": ("orbits the center", "moves around the center", "loops around the center"),
    }
)
_MOTION_CLASS_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "left_to_right": "moving left to right",
        "right_to_left": "moving right to left",
        "up": "moving up",
        "down": "moving down",
        "grow": "growing",
        "shrink": "shrinking",
        "orbit": "orbiting",
    }
)
_SENTENCES: tuple[str, ...] = (
    "{article} {color} {shape} {motion}",
    "the {color} {shape} {motion}",
    "{article} {color} {shape} {motion} in front of a gray background",
    "a video of {article} {color} {shape} that {motion}",
)
NUM_CAPTION_TEMPLATES = len(_SENTENCES) * 3
"""Captions are a sentence template times one of three phrasings of the motion."""

_MIN_SIDE = 16
_SPLITS = ("train", "test")
_MANIFEST_VERSION = 1


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@dataclass(frozen=True)
class SyntheticVideoSample:
    """What one synthetic clip shows and how it is labelled.

    Args:
        color: a key of `COLORS`.
        shape: one of `SHAPES`.
        motion: one of `MOTIONS`.
        seed: seeds everything random in the clip (background texture, object size, path jitter, pixel noise).
        pitch: a key of `PITCHES` for clips with an audio tone, else None.
        template: which caption phrasing to use, in `range(NUM_CAPTION_TEMPLATES)`.
        label_by: the attributes that make up the class (a subset of `ATTRIBUTES`, in that order).
        label: the class index in the dataset's class list, when the sample belongs to a dataset.
        split: "train" or "test" when the sample belongs to a dataset.
        path: the video file, relative to the dataset root (POSIX separators), or as given to `write_sample_video`.
    """

    color: str
    shape: str
    motion: str
    seed: int = 0
    pitch: str | None = None
    template: int = 0
    label_by: tuple[str, ...] = ("motion",)
    label: int | None = None
    split: str | None = None
    path: str | None = None

    def __post_init__(self):
        _check_choice("color", self.color, tuple(COLORS))
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("motion", self.motion, MOTIONS)
        if self.pitch is not None:
            _check_choice("pitch", self.pitch, tuple(PITCHES))
        _check_int("seed", self.seed, minimum=0)
        _check_int("template", self.template, minimum=0)
        if self.template >= NUM_CAPTION_TEMPLATES:
            raise ValueError(f"template must be < {NUM_CAPTION_TEMPLATES}, got {self.template}")
        object.__setattr__(self, "label_by", _normalize_label_by(self.label_by))
        if self.split is not None:
            _check_choice("split", self.split, _SPLITS)

    @property
    def combination(self) -> tuple[str, str, str]:
        """(color, shape, motion)."""
        return (self.color, self.shape, self.motion)

    @property
    def caption(self) -> str:
        """A natural sentence, e.g. "a red circle moves from left to right"."""
        sentence = _SENTENCES[self.template % len(_SENTENCES)]
        phrase = _MOTION_PHRASES[self.motion][self.template // len(_SENTENCES)]
        return sentence.format(article=_article(self.color), color=self.color, shape=self.shape, motion=phrase)

    @property
    def audio_caption(self) -> str | None:
        """E.g. "a high-pitched tone"; None without audio."""
        return None if self.pitch is None else f"a {self.pitch}-pitched tone"

    @property
    def audio_visual_caption(self) -> str | None:
        """The caption plus the tone, e.g. "... while a low-pitched tone plays"; None without audio."""
        return None if self.pitch is None else f"{self.caption} while {self.audio_caption} plays"

    @property
    def class_name(self) -> str:
        """The class as a short phrase built from the `label_by` attributes, e.g. "circle moving left to right"."""
        return _class_name(dict(zip(ATTRIBUTES, self.combination)), self.label_by)


@dataclass(frozen=True)
class SyntheticAnnotationFiles:
    """The annotation files of one split (absolute paths).

    Attributes:
        retrieval: Stage-2 / retrieval JSON, a list of `{"video": relative path, "caption": str}`.
        action_recognition: a list of `{"video": relative path, "caption": class name}`.
        classification_csv: fine-tuning CSV, rows `relative path,label`, no header.
        audio_video: a list of `{"video", "caption", "audio_caption", "avs_captions"}` (audio datasets only); the keys
            that contain "caption" are what the official `avs_all` caption sampling collects.
    """

    retrieval: Path
    action_recognition: Path
    classification_csv: Path
    audio_video: Path | None = None


@dataclass(frozen=True)
class SyntheticVideoDataset:
    """What `generate_dataset` wrote. Video paths in the samples and annotation files are relative to `root`."""

    root: Path
    train: tuple[SyntheticVideoSample, ...]
    test: tuple[SyntheticVideoSample, ...]
    class_names: tuple[str, ...]
    label_by: tuple[str, ...]
    colors: tuple[str, ...]
    shapes: tuple[str, ...]
    motions: tuple[str, ...]
    held_out: tuple[tuple[str, str, str], ...]
    num_frames: int
    size: tuple[int, int]
    fps: int
    seed: int
    codec: str
    with_audio: bool
    sample_rate: int
    annotations: Mapping[str, SyntheticAnnotationFiles]
    labels_file: Path
    manifest_file: Path

    def video_path(self, sample: SyntheticVideoSample) -> Path:
        """Absolute path of a sample's video."""
        return self.root / sample.path


# ----------------------------------------------------------------------------------------------------------- rendering


def iter_frames(sample: SyntheticVideoSample, *, num_frames: int, size: int | tuple[int, int]) -> Iterator[np.ndarray]:
    """Yield the clip's frames one at a time as `(height, width, 3)` uint8 RGB arrays (for long or large clips).

    Args:
        sample: what to draw; its `seed` makes the frames reproducible.
        num_frames: at least 2 (the motion runs from the first to the last frame).
        size: `(height, width)` or one int for square frames; both even (yuv420p) and at least 16.
    """
    num_frames = _check_int("num_frames", num_frames, minimum=2)
    height, width = _normalize_size(size)
    rng = np.random.default_rng(sample.seed)
    background = _background(rng, height, width)
    radius = rng.uniform(0.10, 0.14) * min(height, width)
    centers_x, centers_y, scales = _trajectory(sample.motion, rng, num_frames, height, width, radius)
    color = np.asarray(COLORS[sample.color], dtype=np.float32)
    return _frames(sample.shape, color, background, radius, centers_x, centers_y, scales, rng)


def render_frames(sample: SyntheticVideoSample, *, num_frames: int, size: int | tuple[int, int]) -> np.ndarray:
    """The clip as a `(num_frames, height, width, 3)` uint8 RGB array; see `iter_frames` for the arguments."""
    return np.stack(list(iter_frames(sample, num_frames=num_frames, size=size)))


def render_tone(sample: SyntheticVideoSample, *, duration_s: float, sample_rate: int = 16000) -> np.ndarray:
    """The sample's tone as a mono float32 waveform in [-0.5, 0.5], with 10-ms fades so it starts and stops cleanly."""
    if sample.pitch is None:
        raise ValueError("sample.pitch is None: only samples with a pitch have an audio tone")
    sample_rate = _check_int("sample_rate", sample_rate, minimum=8000)
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    frequency = PITCHES[sample.pitch]
    num_samples = round(duration_s * sample_rate)
    wave = 0.5 * np.sin(2 * np.pi * frequency * np.arange(num_samples) / sample_rate)
    fade = min(num_samples // 2, sample_rate // 100)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    wave[:fade] *= ramp
    wave[num_samples - fade :] *= ramp[::-1]
    return wave.astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A desaturated gray field: linear gradient + a few low-frequency waves + a faint colour tint."""
    ys = (np.arange(height, dtype=np.float32) / height)[:, None]
    xs = (np.arange(width, dtype=np.float32) / width)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    luma = rng.uniform(45, 95) + rng.uniform(10, 25) * ((xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle))
    for _ in range(3):
        cycles_x, cycles_y = rng.uniform(-6, 6, size=2)
        phase = 2 * np.pi * (cycles_x * xs + cycles_y * ys) + rng.uniform(0, 2 * np.pi)
        luma = luma + rng.uniform(3, 7) * np.sin(phase)
    tint = rng.uniform(-6, 6, size=3).astype(np.float32)
    return (luma[..., None] + tint).astype(np.float32)


def _trajectory(
    motion: str, rng: np.random.Generator, num_frames: int, height: int, width: int, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object center (x, y in pixels) and scale per frame; linear in time, so the motion is smooth."""
    t = np.linspace(0.0, 1.0, num_frames)
    ones = np.ones_like(t)
    reach = 1.4 * radius + 1  # the farthest any shape extends from its center, so it stays inside the frame
    if motion in ("left_to_right", "right_to_left", "up", "down"):
        horizontal = motion in ("left_to_right", "right_to_left")
        length, across = (width, height) if horizontal else (height, width)
        start = reach + rng.uniform(0, 0.1) * length
        end = length - 1 - reach - rng.uniform(0, 0.1) * length
        if motion in ("right_to_left", "up"):
            start, end = end, start
        along = start + (end - start) * t
        fixed = across * rng.uniform(0.35, 0.65) * ones
        return (along, fixed, ones) if horizontal else (fixed, along, ones)
    if motion in ("grow", "shrink"):
        center_x, center_y = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6)
        scales = 0.6 + 0.9 * t if motion == "grow" else 1.5 - 0.9 * t
        return center_x * ones, center_y * ones, scales
    # orbit: with y pointing down, an increasing angle turns clockwise on screen.
    angles = rng.uniform(0, 2 * np.pi) + 1.5 * np.pi * t
    orbit_radius = 0.25 * min(height, width)
    return (width - 1) / 2 + orbit_radius * np.cos(angles), (height - 1) / 2 + orbit_radius * np.sin(angles), ones


def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance in pixels to the shape's outline (negative inside); shapes have similar areas."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * radius
    if shape == "triangle":  # equilateral, pointing up, centroid at the center; max over its three edge lines
        inradius = 0.5 * 1.35 * radius
        sin60 = np.sqrt(3.0) / 2
        return np.maximum(dy, np.maximum(sin60 * dx - 0.5 * dy, -sin60 * dx - 0.5 * dy)) - inradius
    arm_length, arm_width = 1.1 * radius, 0.38 * radius  # cross: union of two bars
    ax, ay = np.abs(dx), np.abs(dy)
    return np.minimum(np.maximum(ax - arm_length, ay - arm_width), np.maximum(ax - arm_width, ay - arm_length))


def _frames(shape, color, background, radius, centers_x, centers_y, scales, rng) -> Iterator[np.ndarray]:
    height, width, _ = background.shape
    for center_x, center_y, scale in zip(centers_x, centers_y, scales):
        # luma-only noise, so the background is never constant from frame to frame
        frame = background + rng.integers(-3, 4, size=(height, width, 1), dtype=np.int8)
        shape_radius = radius * scale
        extent = 1.4 * shape_radius + 2  # draw inside the bounding box only: cheap even at 720p
        top, bottom = max(int(center_y - extent), 0), min(int(center_y + extent) + 2, height)
        left, right = max(int(center_x - extent), 0), min(int(center_x + extent) + 2, width)
        dy = (np.arange(top, bottom, dtype=np.float32) - center_y)[:, None]
        dx = (np.arange(left, right, dtype=np.float32) - center_x)[None, :]
        # coverage of a one-pixel-wide ramp across the outline: enough anti-aliasing for smooth edges
        coverage = np.clip(0.5 - _signed_distance(shape, dx, dy, shape_radius), 0.0, 1.0)[..., None]
        patch = frame[top:bottom, left:right]
        frame[top:bottom, left:right] = patch + coverage * (color - patch)
        yield np.clip(np.rint(frame, out=frame), 0, 255, out=frame).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------------- writing


def resolve_video_codec(codec: str = "auto") -> str:
    """The FFmpeg encoder for `codec`: "auto" -> libx264 when available else mpeg4; "h264" -> libx264; "mpeg4"."""
    if codec not in ("auto", "h264", "mpeg4"):
        raise ValueError(f"codec must be 'auto', 'h264' or 'mpeg4', got {codec!r}")
    if codec == "mpeg4":
        return "mpeg4"
    if _libx264_available():
        return "libx264"
    if codec == "h264":
        raise ValueError("codec='h264' needs libx264, which PyAV's FFmpeg lacks here; use codec='auto' or 'mpeg4'")
    return "mpeg4"


def _libx264_available() -> bool:
    return "libx264" in av.codecs_available


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    fps: int,
    codec: str = "auto",
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    crf: int = 18,
    bit_rate: int | None = None,
    preset: str = "veryfast",
    reproducible: bool = True,
    keyframe_interval: int | None = None,
) -> str:
    """Encode RGB frames (and an optional mono waveform) into a video file with PyAV; returns the encoder used.

    Args:
        path: output file; its extension picks the container (e.g. `.mp4`). Parent folders are created.
        frames: a `(T, H, W, 3)` uint8 array, or an iterable of `(H, W, 3)` uint8 frames (streamed: nothing is held
            in memory). Height and width must be even (yuv420p).
        fps: frames per second.
        codec: "auto", "h264" or "mpeg4" (see `resolve_video_codec`).
        audio: mono float waveform in [-1, 1], stored as AAC.
        sample_rate: audio sample rate in Hz.
        crf: libx264 constant rate factor (lower is better quality); mpeg4 gets about 2 bits per pixel instead.
        bit_rate: a target bit rate in bit/s, replacing `crf` (and mpeg4's default).
        preset: libx264 speed preset.
        reproducible: make the file bit-identical from run to run: one swscale thread and x264 single-threaded on
            its C code path (its SIMD path let memory left over from earlier allocations change the stream). About
            1.5x slower on small clips and 3.5x at 720p; pass False where only speed matters.
        keyframe_interval: frames between keyframes (the encoder's default when None; x264 uses 250).
    """
    fps = _check_int("fps", fps, minimum=1)
    if keyframe_interval is not None:
        keyframe_interval = _check_int("keyframe_interval", keyframe_interval, minimum=1)
    crf = _check_int("crf", crf, minimum=0)
    if not isinstance(reproducible, bool):
        raise TypeError(f"reproducible must be a bool, got {type(reproducible).__name__}")
    if bit_rate is not None:
        bit_rate = _check_int("bit_rate", bit_rate, minimum=1000)
    encoder = resolve_video_codec(codec)
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.dtype} {frames.shape}")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("frames is empty")
    if not isinstance(first, np.ndarray) or first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        raise ValueError(f"each frame must be a (H, W, 3) uint8 array, got {getattr(first, 'shape', type(first))}")
    height, width = _normalize_size(first.shape[:2], minimum=2, name="frame size")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"audio must be a non-empty mono (num_samples,) waveform, got shape {audio.shape}")
        sample_rate = _check_int("sample_rate", sample_rate, minimum=8000)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        video_stream = container.add_stream(encoder, rate=fps)
        video_stream.width, video_stream.height, video_stream.pix_fmt = width, height, "yuv420p"
        if keyframe_interval is not None:
            video_stream.codec_context.gop_size = keyframe_interval
        if bit_rate is not None:
            video_stream.bit_rate = bit_rate
        elif encoder == "mpeg4":
            video_stream.bit_rate = 2 * width * height * fps  # about 2 bits per pixel: little visible loss
        if encoder == "libx264":
            options = {"preset": preset} if bit_rate is not None else {"preset": preset, "crf": str(crf)}
            if reproducible:
                options["x264-params"] = "threads=1:lookahead-threads=1:asm=0"
            video_stream.options = options
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"
        for index, frame in enumerate(itertools.chain([first], frames)):
            if not isinstance(frame, np.ndarray) or frame.shape != first.shape or frame.dtype != np.uint8:
                raise ValueError(f"frame {index} is not a uint8 array of shape {first.shape} like frame 0")
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format="yuv420p", threads=1 if reproducible else 0
            )
            video_frame.pts = index
            container.mux(video_stream.encode(video_frame))
        container.mux(video_stream.encode())
        if audio_stream is not None:
            audio_frame = av.AudioFrame.from_ndarray(audio[None], format="fltp", layout="mono")
            audio_frame.sample_rate, audio_frame.pts = sample_rate, 0
            container.mux(audio_stream.encode(audio_frame))  # PyAV re-cuts it into AAC-sized frames
            container.mux(audio_stream.encode())
    return encoder


def write_sample_video(
    path: str | os.PathLike,
    *,
    num_frames: int = 16,
    size: int | tuple[int, int] = 64,
    fps: int = 8,
    codec: str = "auto",
    color: str = "red",
    shape: str = "circle",
    motion: str = "left_to_right",
    pitch: str | None = None,
    seed: int = 0,
    sample_rate: int = 16000,
    crf: int = 18,
    bit_rate: int | None = None,
    reproducible: bool = True,
    keyframe_interval: int | None = None,
) -> SyntheticVideoSample:
    """Write one synthetic clip (with a tone when `pitch` is given) in one call, for examples and smoke tests.

    Returns the sample, labelled by motion (label = index in `MOTIONS`). Frames are streamed, so long or large clips
    are fine. See `write_video` for the encoding arguments.
    """
    sample = SyntheticVideoSample(color, shape, motion, seed=seed, pitch=pitch, path=os.fspath(path))
    sample = dataclasses.replace(sample, label=MOTIONS.index(sample.motion))
    frames = iter_frames(sample, num_frames=num_frames, size=size)
    fps = _check_int("fps", fps, minimum=1)
    audio = None if pitch is None else render_tone(sample, duration_s=num_frames / fps, sample_rate=sample_rate)
    write_video(
        path, frames, fps=fps, codec=codec, audio=audio, sample_rate=sample_rate, crf=crf, bit_rate=bit_rate,
        reproducible=reproducible, keyframe_interval=keyframe_interval,
    )
    return sample


def write_benchmark_video(
    path: str | os.PathLike,
    *,
    duration_s: float = 10.0,
    size: int | tuple[int, int] = (720, 1280),
    fps: int = 30,
    codec: str = "h264",
    seed: int = 0,
    bit_rate: int = 4_000_000,
    reproducible: bool = False,
    keyframe_interval: int | None = None,
) -> SyntheticVideoSample:
    """A long clip for decoding benchmarks: by default 10 s of 720p H.264 at 30 fps and 4 Mbit/s.

    A target bit rate (rather than a quality level, which would quantise the pixel noise away) makes the stream as
    dense as ordinary 720p web video, so decoding costs what it would on real footage; x264 keeps its B-frames and,
    unless `keyframe_interval` is given, its default GOP (250 frames; web video often has one keyframe per 1-2 s). Writing the default clip takes about 10-20 s on two cores; frames are the same for
    a given seed, while the encoded bytes may differ slightly between runs unless `reproducible` (3.5x slower).
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    fps = _check_int("fps", fps, minimum=1)
    return write_sample_video(
        path, num_frames=max(2, round(duration_s * fps)), size=size, fps=fps, codec=codec, motion="orbit", seed=seed,
        bit_rate=bit_rate, reproducible=reproducible, keyframe_interval=keyframe_interval,
    )


# ------------------------------------------------------------------------------------------------------------ datasets


def generate_dataset(
    root: str | os.PathLike,
    num_train: int,
    num_test: int,
    *,
    num_frames: int = 8,
    size: int | tuple[int, int] = 64,
    fps: int = 8,
    seed: int = 0,
    colors: Sequence[str] | None = None,
    shapes: Sequence[str] | None = None,
    motions: Sequence[str] | None = None,
    label_by: str | Sequence[str] = "motion",
    held_out: float | int | Sequence[Sequence[str]] | None = 0.25,
    max_test_per_combination: int = 1,
    with_audio: bool = False,
    sample_rate: int = 16000,
    codec: str = "auto",
    crf: int = 18,
) -> SyntheticVideoDataset:
    """Write a labelled synthetic video dataset under `root` and describe it.

    Layout: `videos/{train,test}/NNNNNN.mp4`, `annotations/{split}_retrieval.json`,
    `annotations/{split}_action_recognition.json`, `annotations/{split}.csv`, (with audio)
    `annotations/{split}_audio_video.json`, `annotations/labels.txt` (class names, line i = label i) and
    `manifest.json` (everything needed by `load_synthetic_dataset`).

    Args:
        root: output folder (created).
        num_train: training clips; at least the few needed to show every attribute value and class once.
        num_test: test clips; at most `max_test_per_combination` per test combination.
        num_frames, size, fps: clip length, `(height, width)` (or one int) and frame rate.
        seed: one integer that determines the whole dataset, frames included.
        colors, shapes, motions: the attribute values to use (default: all of `COLORS`, `SHAPES`, `MOTIONS`).
        label_by: attribute(s) forming the class: "motion", "shape", "color", or several, e.g. ("shape", "motion").
        held_out: combinations seen only in the test split: a fraction of all combinations (float in (0, 1)), a count
            (int), or explicit `(color, shape, motion)` tuples. Every attribute value and class keeps at least one
            training combination. None or 0: train and test draw from all combinations.
        max_test_per_combination: test clips per combination. The default 1 keeps test captions distinct, so
            retrieval metrics are well defined; raise it for larger classification test sets.
        with_audio: add an AAC tone whose pitch (random per clip) is described in the audio captions.
        sample_rate: audio sample rate in Hz.
        codec: "auto", "h264" or "mpeg4".
        crf: libx264 quality (lower is better).
    """
    num_train = _check_int("num_train", num_train, minimum=1)
    num_test = _check_int("num_test", num_test, minimum=0)
    num_frames = _check_int("num_frames", num_frames, minimum=2)
    size = _normalize_size(size)
    fps = _check_int("fps", fps, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    max_test_per_combination = _check_int("max_test_per_combination", max_test_per_combination, minimum=1)
    sample_rate = _check_int("sample_rate", sample_rate, minimum=8000)
    crf = _check_int("crf", crf, minimum=0)
    if not isinstance(with_audio, bool):
        raise TypeError(f"with_audio must be a bool, got {type(with_audio).__name__}")
    colors = _check_values("colors", colors, tuple(COLORS))
    shapes = _check_values("shapes", shapes, SHAPES)
    motions = _check_values("motions", motions, MOTIONS)
    label_by = _normalize_label_by(label_by)
    encoder = resolve_video_codec(codec)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"root {root} exists and is not a folder")

    combinations = list(itertools.product(colors, shapes, motions))
    rng = np.random.default_rng([seed, 0])
    requirements = {combination: _requirements(combination, label_by) for combination in combinations}
    held = _held_out_combinations(held_out, combinations, requirements, rng)
    held_set = set(held)
    train_combinations = [combination for combination in combinations if combination not in held_set]
    train_order = _covering_order(train_combinations, requirements, rng)
    if num_train < train_order.cover_size:
        raise ValueError(
            f"num_train={num_train} is too small: showing every attribute value and class in training needs "
            f"at least {train_order.cover_size} clips"
        )
    test_pool = list(held) if held else combinations
    test_pool = [test_pool[i] for i in rng.permutation(len(test_pool))]
    if num_test > len(test_pool) * max_test_per_combination:
        raise ValueError(
            f"num_test={num_test} is larger than possible: {len(test_pool)} test combinations x "
            f"max_test_per_combination={max_test_per_combination}; hold out more combinations or raise "
            "max_test_per_combination"
        )

    class_names, class_index = _classes(colors, shapes, motions, label_by)
    plan = {"train": [train_order.order[i % len(train_order.order)] for i in range(num_train)]}
    plan["test"] = [test_pool[i % len(test_pool)] for i in range(num_test)]
    samples = {}
    for split_index, split in enumerate(_SPLITS):
        samples[split] = tuple(
            SyntheticVideoSample(
                *combination,
                seed=int(np.random.SeedSequence([seed, 1 + split_index, index]).generate_state(1, np.uint64)[0]),
                pitch=str(rng.choice(tuple(PITCHES))) if with_audio else None,
                template=int(rng.integers(NUM_CAPTION_TEMPLATES)),
                label_by=label_by,
                label=class_index[_class_key(combination, label_by)],
                split=split,
                path=f"videos/{split}/{index:06d}.mp4",
            )
            for index, combination in enumerate(plan[split])
        )

    for sample in samples["train"] + samples["test"]:
        frames = iter_frames(sample, num_frames=num_frames, size=size)
        audio = render_tone(sample, duration_s=num_frames / fps, sample_rate=sample_rate) if with_audio else None
        write_video(root / sample.path, frames, fps=fps, codec=codec, audio=audio, sample_rate=sample_rate, crf=crf)

    dataset = SyntheticVideoDataset(
        root=root,
        train=samples["train"],
        test=samples["test"],
        class_names=class_names,
        label_by=label_by,
        colors=colors,
        shapes=shapes,
        motions=motions,
        held_out=tuple(held),
        num_frames=num_frames,
        size=size,
        fps=fps,
        seed=seed,
        codec=encoder,
        with_audio=with_audio,
        sample_rate=sample_rate,
        annotations=MappingProxyType({split: _annotation_files(root, split, with_audio) for split in _SPLITS}),
        labels_file=root / "annotations" / "labels.txt",
        manifest_file=root / "manifest.json",
    )
    _write_annotations(dataset)
    return dataset


def load_synthetic_dataset(root: str | os.PathLike) -> SyntheticVideoDataset:
    """Describe a dataset written by `generate_dataset` from its `manifest.json` (the folder may have moved)."""
    root = Path(root)
    manifest_file = root / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"no synthetic dataset manifest at {manifest_file}")
    manifest = json.loads(manifest_file.read_text())
    version = manifest.get("format_version")
    if version != _MANIFEST_VERSION:
        raise ValueError(f"{manifest_file} has format_version {version!r}, expected {_MANIFEST_VERSION}")
    with_audio = manifest["with_audio"]
    return SyntheticVideoDataset(
        root=root,
        train=tuple(_sample_from_json(item) for item in manifest["train"]),
        test=tuple(_sample_from_json(item) for item in manifest["test"]),
        class_names=tuple(manifest["class_names"]),
        label_by=tuple(manifest["label_by"]),
        colors=tuple(manifest["colors"]),
        shapes=tuple(manifest["shapes"]),
        motions=tuple(manifest["motions"]),
        held_out=tuple(tuple(combination) for combination in manifest["held_out"]),
        num_frames=manifest["num_frames"],
        size=tuple(manifest["size"]),
        fps=manifest["fps"],
        seed=manifest["seed"],
        codec=manifest["codec"],
        with_audio=with_audio,
        sample_rate=manifest["sample_rate"],
        annotations=MappingProxyType({split: _annotation_files(root, split, with_audio) for split in _SPLITS}),
        labels_file=root / "annotations" / "labels.txt",
        manifest_file=manifest_file,
    )


def _sample_from_json(item: dict) -> SyntheticVideoSample:
    return SyntheticVideoSample(**{**item, "label_by": tuple(item["label_by"])})


def _annotation_files(root: Path, split: str, with_audio: bool) -> SyntheticAnnotationFiles:
    folder = root / "annotations"
    return SyntheticAnnotationFiles(
        retrieval=folder / f"{split}_retrieval.json",
        action_recognition=folder / f"{split}_action_recognition.json",
        classification_csv=folder / f"{split}.csv",
        audio_video=folder / f"{split}_audio_video.json" if with_audio else None,
    )


def _write_annotations(dataset: SyntheticVideoDataset) -> None:
    dataset.labels_file.parent.mkdir(parents=True, exist_ok=True)
    dataset.labels_file.write_text("".join(f"{name}\n" for name in dataset.class_names))
    for split in _SPLITS:
        samples, files = getattr(dataset, split), dataset.annotations[split]
        _write_json(files.retrieval, [{"video": s.path, "caption": s.caption} for s in samples])
        _write_json(files.action_recognition, [{"video": s.path, "caption": s.class_name} for s in samples])
        with open(files.classification_csv, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows((s.path, s.label) for s in samples)
        if files.audio_video is not None:
            _write_json(
                files.audio_video,
                [
                    {
                        "video": s.path,
                        "caption": s.caption,
                        "audio_caption": s.audio_caption,
                        "avs_captions": s.audio_visual_caption,
                    }
                    for s in samples
                ],
            )
    manifest = {
        "format_version": _MANIFEST_VERSION,
        "generator": "internvideo2.data.synthetic",
        **{
            name: getattr(dataset, name)
            for name in (
                "class_names", "label_by", "colors", "shapes", "motions", "held_out", "num_frames", "size", "fps",
                "seed", "codec", "with_audio", "sample_rate",
            )
        },
        "train": [dataclasses.asdict(sample) for sample in dataset.train],
        "test": [dataclasses.asdict(sample) for sample in dataset.test],
    }
    _write_json(dataset.manifest_file, manifest)


def _write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=1) + "\n")


# ------------------------------------------------------------------------------------------------- splits and classes


def _class_key(combination: tuple[str, str, str], label_by: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for attribute, value in zip(ATTRIBUTES, combination) if attribute in label_by)


def _class_name(values: Mapping[str, str], label_by: tuple[str, ...]) -> str:
    words = []
    if "color" in label_by:
        words.append(values["color"])
    if "shape" in label_by:
        words.append(values["shape"])
    elif "color" in label_by and "motion" in label_by:
        words.append("object")  # "red object moving up" reads better than "red moving up"
    if "motion" in label_by:
        words.append(_MOTION_CLASS_NAMES[values["motion"]])
    return " ".join(words)


def _classes(colors, shapes, motions, label_by) -> tuple[tuple[str, ...], dict[tuple[str, ...], int]]:
    vocabularies = {"color": colors, "shape": shapes, "motion": motions}
    keys = list(itertools.product(*(vocabularies[attribute] for attribute in label_by)))
    names = tuple(_class_name(dict(zip(label_by, key)), label_by) for key in keys)
    return names, {key: index for index, key in enumerate(keys)}


def _requirements(combination: tuple[str, str, str], label_by: tuple[str, ...]) -> frozenset:
    """What a training combination shows: its three attribute values and its class."""
    return frozenset(zip(ATTRIBUTES, combination)) | {("class", _class_key(combination, label_by))}


def _held_out_combinations(held_out, combinations, requirements, rng) -> list[tuple[str, str, str]]:
    counts = Counter(item for combination in combinations for item in requirements[combination])
    if held_out is None or (isinstance(held_out, (int, float)) and not isinstance(held_out, bool) and held_out == 0):
        return []
    if isinstance(held_out, bool):
        raise TypeError("held_out must be a fraction, a count, a list of (color, shape, motion) tuples or None")
    if isinstance(held_out, (int, float)):
        if isinstance(held_out, float):
            if not 0 < held_out < 1:
                raise ValueError(f"held_out as a fraction must be in (0, 1), got {held_out}")
            wanted = max(1, round(held_out * len(combinations)))
        else:
            if not 0 < held_out < len(combinations):
                raise ValueError(f"held_out as a count must be in [0, {len(combinations)}), got {held_out}")
            wanted = held_out
        held = []
        for position in rng.permutation(len(combinations)):
            combination = combinations[position]
            if len(held) == wanted:
                break
            if all(counts[item] > 1 for item in requirements[combination]):
                held.append(combination)
                counts.subtract(requirements[combination])
        if len(held) < wanted:
            raise ValueError(
                f"held_out={held_out} asks for {wanted} held-out combinations, but only {len(held)} could be held "
                "out while every attribute value and class keeps a training combination"
            )
        return sorted(held, key=combinations.index)
    if isinstance(held_out, str) or not isinstance(held_out, Sequence):
        raise TypeError("held_out must be a fraction, a count, a list of (color, shape, motion) tuples or None")
    held = []
    for combination in held_out:
        if isinstance(combination, str) or not isinstance(combination, Sequence) or len(combination) != 3:
            raise ValueError(f"held_out entries must be (color, shape, motion) tuples, got {combination!r}")
        combination = tuple(combination)
        if combination not in requirements:
            raise ValueError(f"held_out combination {combination} is not among the chosen colors/shapes/motions")
        if combination in held:
            raise ValueError(f"held_out lists {combination} twice")
        held.append(combination)
        counts.subtract(requirements[combination])
    missing = sorted(str(item[1]) for item, count in counts.items() if count < 1)
    if missing:
        raise ValueError(f"held_out leaves no training combination for: {', '.join(missing)}")
    return sorted(held, key=combinations.index)


@dataclass(frozen=True)
class _TrainOrder:
    order: list
    cover_size: int


def _covering_order(train_combinations, requirements, rng) -> _TrainOrder:
    """Shuffled training combinations, led by a greedy cover, so the first few clips already show every value/class."""
    remaining = [train_combinations[i] for i in rng.permutation(len(train_combinations))]
    uncovered = set().union(*(requirements[combination] for combination in remaining))
    cover = []
    while uncovered:
        best = max(remaining, key=lambda combination: len(requirements[combination] & uncovered))
        cover.append(best)
        remaining.remove(best)
        uncovered -= requirements[best]
    return _TrainOrder(order=cover + remaining, cover_size=len(cover))


# ---------------------------------------------------------------------------------------------------------- validation


def _check_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")


def _check_values(name: str, values, vocabulary: tuple[str, ...]) -> tuple[str, ...]:
    if values is None:
        return vocabulary
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for value in values:
        _check_choice(name.rstrip("s"), value, vocabulary)
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has duplicates: {values}")
    return values


def _normalize_label_by(label_by) -> tuple[str, ...]:
    names = (label_by,) if isinstance(label_by, str) else tuple(label_by)
    if not names:
        raise ValueError(f"label_by must name at least one of {', '.join(ATTRIBUTES)}")
    for name in names:
        _check_choice("label_by attribute", name, ATTRIBUTES)
    if len(set(names)) != len(names):
        raise ValueError(f"label_by has duplicates: {names}")
    return tuple(attribute for attribute in ATTRIBUTES if attribute in names)


def _normalize_size(size, minimum: int = _MIN_SIDE, name: str = "size") -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"{name} must be an int or a (height, width) pair, got {size!r}")
    height = _check_int(f"{name} height", size[0], minimum=minimum)
    width = _check_int(f"{name} width", size[1], minimum=minimum)
    if height % 2 or width % 2:
        raise ValueError(f"{name} {height}x{width} (height x width) must be even: yuv420p H.264/MPEG-4 video needs it")
    return height, width
