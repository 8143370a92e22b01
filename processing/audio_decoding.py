"""
Audio decoding and resampling with PyAV (FFmpeg's libswresample).

InternVideo2-6B reads the audio track of each video, resamples it to 16 kHz and averages the channels. Here the first
audio stream of a media file (path, bytes or binary file-like object) is decoded and resampled by
`av.AudioResampler`; raw waveforms are resampled with the same resampler. libswresample's default resampler is a
windowed-sinc polyphase filter, so results match the official `torchaudio.transforms.Resample` up to filter
differences (both are band-limited sinc interpolators).
"""

import io
import os
from typing import BinaryIO

import av
import numpy as np


AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


def is_audio_source(obj) -> bool:
    """Whether `obj` names or holds an encoded media file (as opposed to a decoded waveform)."""
    return isinstance(obj, (str, os.PathLike, bytes, bytearray, memoryview)) or callable(getattr(obj, "read", None))


def _check_sampling_rate(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int (Hz), got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _open_container(source: AudioSource) -> tuple["av.container.InputContainer", str]:
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"media file not found: {name}")
        opened = name
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = f"<{len(source)} bytes>"
        opened = io.BytesIO(bytes(source))
    elif callable(getattr(source, "read", None)):
        name = getattr(source, "name", None) or f"<{type(source).__name__}>"
        opened = source
    else:
        raise TypeError(
            f"audio source must be a path, bytes or a binary file-like object, got {type(source).__name__}"
        )
    try:
        return av.open(opened), str(name)
    except av.error.FFmpegError as error:
        raise ValueError(f"cannot open {name} as a media file: {error}") from None


def _duration_seconds(container) -> float | None:
    if container.duration is not None:
        return container.duration / av.time_base
    durations = [float(s.duration * s.time_base) for s in container.streams if s.duration is not None and s.time_base]
    return max(durations) if durations else None


def decode_audio(
    source: AudioSource,
    sampling_rate: int = 16000,
    start_time: float | None = None,
    end_time: float | None = None,
    allow_missing_audio: bool = False,
) -> np.ndarray:
    """
    Decode the first audio stream of a media file and resample it.

    Args:
        source: path, bytes or binary file-like object of any container/codec FFmpeg reads (mp4/aac, mkv, wav, ...).
        sampling_rate: output sampling rate in Hz.
        start_time, end_time: keep only the samples of this window, in seconds on the file's timeline (for clips of
            a longer video); `None` means the start / end of the track.
        allow_missing_audio: if the file has no audio stream, return digital silence as long as the file (or the
            requested window) instead of raising; the feature extractor turns silence into the Kaldi log floor.

    Returns:
        `np.ndarray` of shape `(num_channels, num_samples)`, float32 in [-1, 1].
    """
    sampling_rate = _check_sampling_rate(sampling_rate, "sampling_rate")
    for value, name in ((start_time, "start_time"), (end_time, "end_time")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    if start_time is not None and end_time is not None and end_time <= start_time:
        raise ValueError(f"end_time ({end_time}) must be after start_time ({start_time})")

    container, name = _open_container(source)
    with container:
        if not container.streams.audio:
            if not allow_missing_audio:
                raise ValueError(f"{name} has no audio track; pass allow_missing_audio=True to use silence instead")
            duration = _duration_seconds(container)
            if end_time is not None:
                duration = end_time if duration is None else min(duration, end_time)
            if duration is None:
                raise ValueError(f"{name} has no audio track and no known duration to fill with silence")
            num_samples = max(0, round((duration - (start_time or 0.0)) * sampling_rate))
            return np.zeros((1, num_samples), dtype=np.float32)

        stream = container.streams.audio[0]
        # planar float keeps one row per channel; the channel layout is left as decoded
        resampler = av.AudioResampler(format="fltp", rate=sampling_rate)
        chunks, track_start = [], None
        try:
            for frame in container.decode(stream):
                if track_start is None:
                    track_start = frame.time or 0.0
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as error:
            raise ValueError(f"cannot decode the audio track of {name}: {error}") from None
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32)
    waveform = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    # sample i of the track plays at track_start + i / sampling_rate
    first = 0 if start_time is None else max(0, round((start_time - track_start) * sampling_rate))
    last = waveform.shape[1] if end_time is None else max(0, round((end_time - track_start) * sampling_rate))
    return waveform[:, first:last]


def _resample_channel(channel: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(channel[None]), format="fltp", layout="mono")
    frame.sample_rate = orig_sampling_rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=target_sampling_rate)
    chunks = [out.to_ndarray() for out in resampler.resample(frame)]
    chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks:  # libswresample emits nothing for inputs shorter than its filter
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks, axis=1)[0]


def resample_audio(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """
    Resample a waveform of shape `(num_samples,)` or `(num_channels, num_samples)` with libswresample (PyAV).

    Returns float32 of the same rank with about `num_samples * target / orig` samples (libswresample rounds up).
    """
    orig_sampling_rate = _check_sampling_rate(orig_sampling_rate, "orig_sampling_rate")
    target_sampling_rate = _check_sampling_rate(target_sampling_rate, "target_sampling_rate")
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim not in (1, 2):
        raise ValueError(
            f"waveform must have shape (num_samples,) or (num_channels, num_samples), got {waveform.shape}"
        )
    if waveform.shape[-1] == 0:
        raise ValueError("waveform has zero samples")
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    channels = waveform[None] if waveform.ndim == 1 else waveform
    resampled = np.stack([_resample_channel(c, orig_sampling_rate, target_sampling_rate) for c in channels])
    return resampled[0] if waveform.ndim == 1 else resampled


__all__ = ["AudioSource", "decode_audio", "is_audio_source", "resample_audio"]
