# Copyright 2025 The InternVideo2 re-implementation authors. Apache-2.0.
"""Frame-accurate video decoding with PyAV, without torchvision, torchcodec or decord.

:func:`open_video` accepts a path, a binary file object, the bytes of a file, a ``uint8`` numpy array or torch tensor
of frames, or a list of PIL images, and returns a video whose ``get_frames(indices)`` gives ``(N, 3, H, W)`` uint8
RGB frames. Frame ``i`` is the ``i``-th frame in presentation order, as decord counts it.

Opening an encoded video reads its packets without decoding them (like decord's index) to learn the frame count,
every frame's timestamp and where the keyframes are. Frames can then be decoded two ways:

* ``sequential`` decodes from the start up to the last requested frame;
* ``seek`` jumps to the keyframe before each requested frame and decodes from there, skipping the stretches in
  between; on long videos this decodes a small fraction of the frames.

Both give bit-identical frames. ``auto`` estimates the decoding work of each from the packet index (frames decoded,
weighted by packet size, since keyframes are large) and picks the cheaper one, which is ``seek`` whenever the sampled
frames are spread over several keyframe intervals.
"""

from __future__ import annotations

import bisect
import io
import itertools
import os
from typing import BinaryIO

import av
import numpy as np
import PIL.Image
import torch
from transformers.video_utils import VideoMetadata


DECODE_METHODS = ("auto", "seek", "sequential")

# A seek wastes about this many frames of decoding: the decoder is flushed and, with B-frames, reads ahead of the
# target (which sequential decoding reuses). `auto` adds it to every seek it would make.
SEEK_COST_IN_FRAMES = 2

VideoSource = str | os.PathLike | bytes | bytearray | BinaryIO | np.ndarray | torch.Tensor | list[PIL.Image.Image]


def _check_indices(indices, total_frames: int, name: str) -> list[int]:
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices).reshape(-1)
    if array.size == 0:
        raise ValueError(f"no frame indices were requested from {name}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"frame indices must be integers, got dtype {array.dtype} for {name}")
    bad = array[(array < 0) | (array >= total_frames)]
    if bad.size:
        raise ValueError(f"frame index {int(bad[0])} is out of range for {name}, which has {total_frames} frames")
    return array.tolist()


def _check_method(method: str) -> None:
    if method not in DECODE_METHODS:
        raise ValueError(f"`method` must be one of {DECODE_METHODS}, got {method!r}")


class InternVideo2EncodedVideo:
    """An encoded video (a path or the bytes of a file) decoded with PyAV. Build it with :func:`open_video`.

    Attributes:
        name (`str`): how error messages name the video.
        metadata (`VideoMetadata`): frame count, fps, size and duration.
    """

    def __init__(self, data: str | bytes, name: str):
        self._data = data
        self.name = name
        with self._open() as container:
            stream = container.streams.video[0]
            packets = [packet for packet in container.demux(stream) if packet.size > 0 and not packet.is_discard]
            if not packets:
                raise ValueError(f"{name} has no decodable video frames")
            timestamps = [packet.pts for packet in packets]
            # Frames are addressed by their pts; without distinct timestamps only sequential decoding is possible.
            self._timestamps, self._position_of, self._keyframes, self._work = None, None, [], None
            if None not in timestamps and len(set(timestamps)) == len(timestamps):
                self._timestamps = sorted(timestamps)
                self._position_of = {pts: position for position, pts in enumerate(self._timestamps)}
                self._keyframes = sorted(self._position_of[packet.pts] for packet in packets if packet.is_keyframe)
                sizes = np.empty(len(packets))
                for packet in packets:
                    sizes[self._position_of[packet.pts]] = packet.size
                # Decoding a frame costs pixel work (the same for all frames) plus bit work (keyframes are often ten
                # times larger than the frames between them): a frame of the median size counts 1.
                self._work = np.concatenate([[0.0], np.cumsum(0.5 + 0.5 * sizes / np.median(sizes))])
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = len(packets) / fps if fps else None
            self.metadata = VideoMetadata(
                total_num_frames=len(packets),
                fps=fps,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                duration=duration,
                video_backend="pyav",
            )

    def _open(self):
        try:
            container = av.open(io.BytesIO(self._data) if isinstance(self._data, bytes) else self._data, mode="r")
        except av.FFmpegError as error:
            raise ValueError(f"{self.name} is not a readable video file ({error})") from None
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.name} has no video stream")
        return container

    @property
    def supports_seek(self) -> bool:
        """Whether frames can be addressed by timestamp (every packet has a distinct pts)."""
        return self._position_of is not None

    def _keyframe_before(self, position: int) -> int:
        """Index into the keyframe list of the last keyframe at or before frame ``position`` (-1 if none)."""
        return bisect.bisect_right(self._keyframes, position) - 1

    def _work_between(self, first: int, last: int) -> float:
        """Estimated work to decode frames ``first`` to ``last`` (presentation order) in one run."""
        if self._work is None:
            return float(last - first + 1)
        return float(self._work[last + 1] - self._work[first])

    def decode_cost(self, indices, method: str) -> float:
        """Estimated decoding work of ``method`` ('seek' or 'sequential') to get ``indices``, in frames of median
        packet size; larger frames (keyframes) count more, and each seek adds :data:`SEEK_COST_IN_FRAMES`."""
        _check_method(method)
        targets = sorted(set(_check_indices(indices, self.metadata.total_num_frames, self.name)))
        if method == "sequential" or not self.supports_seek:
            return self._work_between(0, targets[-1])
        cost, current = 0.0, None
        for target in targets:
            keyframe_index = self._keyframe_before(target)
            if keyframe_index < 0:  # no keyframe to seek to: the seek path falls back to decoding from the start
                return cost + self._work_between(0, targets[-1])
            keyframe = self._keyframes[keyframe_index]
            if current is None or keyframe > current:
                cost += SEEK_COST_IN_FRAMES + self._work_between(keyframe, target)
            else:
                cost += self._work_between(current + 1, target)
            current = target
        return cost

    def get_frames(self, indices, method: str = "auto") -> torch.Tensor:
        """Frames ``indices`` (in that order, repeats allowed) as a ``(N, 3, H, W)`` uint8 RGB tensor.

        ``method``: 'seek', 'sequential', or 'auto' (the one with the smaller :meth:`decode_cost`).
        """
        _check_method(method)
        indices = _check_indices(indices, self.metadata.total_num_frames, self.name)
        if method == "seek" and not self.supports_seek:
            raise ValueError(f"{self.name} has no distinct packet timestamps to seek by; use method='sequential'")
        if method == "auto":
            seek_is_cheaper = self.decode_cost(indices, "seek") < self.decode_cost(indices, "sequential")
            method = "seek" if self.supports_seek and seek_is_cheaper else "sequential"
        targets = sorted(set(indices))
        try:
            decoded = self._decode_by_seeking(targets) if method == "seek" else self._decode_sequentially(targets)
        except av.FFmpegError as error:
            raise ValueError(f"{self.name} is corrupt: decoding failed ({error})") from None
        missing = [target for target in targets if target not in decoded]
        if missing:
            raise ValueError(
                f"frame {missing[0]} of {self.name} could not be decoded (the file indexes "
                f"{self.metadata.total_num_frames} frames)"
            )
        frames = np.stack([decoded[index] for index in indices])
        return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()

    def _positioned(self, frames):
        """``(position, frame)`` for the decoded ``frames``; frames whose pts is not in the index are skipped."""
        for frame in frames:
            position = self._position_of.get(frame.pts)
            if position is not None:
                yield position, frame

    def _decode_sequentially(self, targets: list[int]) -> dict[int, np.ndarray]:
        wanted, decoded = set(targets), {}
        with self._open() as container:
            frames = container.decode(container.streams.video[0])
            positioned = self._positioned(frames) if self.supports_seek else enumerate(frames)
            for position, frame in positioned:
                if position in wanted:
                    decoded[position] = frame.to_ndarray(format="rgb24")
                if position >= targets[-1]:
                    break
        return decoded

    def _decode_by_seeking(self, targets: list[int]) -> dict[int, np.ndarray]:
        decoded = {}
        with self._open() as container:
            stream = container.streams.video[0]
            frames, current = None, None  # positioned frames after the last seek, position of the last one taken
            for number, target in enumerate(targets):
                keyframe_index = self._keyframe_before(target)
                if frames is None or keyframe_index < 0 or self._keyframes[keyframe_index] > current:
                    frames = self._seek(container, stream, keyframe_index, target)
                    if frames is None:  # the demuxer cannot land before this frame: decode the rest from the start
                        decoded.update(self._decode_sequentially(targets[number:]))
                        return decoded
                for current, frame in frames:
                    if current >= target:
                        break
                else:
                    frames = None
                    continue
                if current == target:
                    decoded[target] = frame.to_ndarray(format="rgb24")
        return decoded

    def _seek(self, container, stream, keyframe_index: int, target: int):
        """Seek to keyframe ``keyframe_index`` and return the positioned frames from there, or None if no keyframe at
        or before it makes the decoder start at or before ``target``.

        Demuxers are asked for the keyframe's pts: mp4 / mkv / avi / webm then start exactly at that keyframe (asking
        for its dts makes mp4 start one keyframe early). Some (MPEG-TS) start at the next one; the frames before the
        target would then be missing, so the previous keyframe is tried.
        """
        for index in range(keyframe_index, -1, -1):
            try:
                container.seek(self._timestamps[self._keyframes[index]], backward=True, any_frame=False, stream=stream)
            except av.FFmpegError:
                return None
            frames = self._positioned(container.decode(stream))
            first = next(frames, None)
            if first is not None and first[0] <= target:
                return itertools.chain([first], frames)
        return None


class InternVideo2DecodedVideo:
    """Frames already in memory, with the interface of :class:`InternVideo2EncodedVideo`; see :func:`open_video`."""

    def __init__(self, frames: torch.Tensor, name: str):
        self._frames = frames
        self.name = name
        self.metadata = VideoMetadata(
            total_num_frames=frames.shape[0], width=frames.shape[-1], height=frames.shape[-2], video_backend=None
        )

    def get_frames(self, indices, method: str = "auto") -> torch.Tensor:
        """Frames ``indices`` as a ``(N, 3, H, W)`` uint8 tensor on the frames' device (``method`` is irrelevant)."""
        _check_method(method)
        indices = _check_indices(indices, self.metadata.total_num_frames, self.name)
        return self._frames[torch.as_tensor(indices, device=self._frames.device)]


def _frames_from_array(array: np.ndarray | torch.Tensor, input_data_format: str | None, name: str) -> torch.Tensor:
    frames = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
    if frames.dtype != torch.uint8:
        raise TypeError(f"{name} must hold uint8 RGB frames, got dtype {frames.dtype}")
    if frames.ndim != 4:
        raise ValueError(f"{name} must have 4 dims (T, H, W, 3) or (T, 3, H, W), got shape {tuple(frames.shape)}")
    if input_data_format is None:
        if 3 not in (frames.shape[-1], frames.shape[1]):
            raise ValueError(
                f"{name} must have 3 RGB channels, as (T, H, W, 3) or (T, 3, H, W), got shape {tuple(frames.shape)}"
            )
        input_data_format = "channels_last" if frames.shape[-1] == 3 else "channels_first"
    channel_dim = {"channels_last": -1, "channels_first": 1}.get(input_data_format)
    if channel_dim is None:
        raise ValueError(f"`input_data_format` must be 'channels_first' or 'channels_last', got {input_data_format!r}")
    if frames.shape[channel_dim] != 3:
        raise ValueError(f"{name} must have 3 RGB channels ({input_data_format}), got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    return frames.permute(0, 3, 1, 2) if channel_dim == -1 else frames


def open_video(
    source: VideoSource, input_data_format: str | None = None
) -> InternVideo2EncodedVideo | InternVideo2DecodedVideo:
    """Open ``source`` for frame access.

    Args:
        source: a path, a binary file object, the bytes of a video file, a uint8 array / tensor of frames
            (``(T, H, W, 3)`` or ``(T, 3, H, W)``), or a list of PIL images.
        input_data_format: ``"channels_last"`` or ``"channels_first"`` for arrays; inferred when None (channels last
            if the last dim is 3).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"video file not found: {path!r}")
        return InternVideo2EncodedVideo(path, name=f"video file {path!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return InternVideo2EncodedVideo(bytes(source), name=f"the video bytes ({len(source)} bytes)")
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise TypeError(f"the video file object must be opened in binary mode, it returned {type(data).__name__}")
        name = f"the video file object {source.name!r}" if isinstance(getattr(source, "name", None), str) else None
        return InternVideo2EncodedVideo(data, name=name or "the video file object")
    if isinstance(source, (np.ndarray, torch.Tensor)):
        input_data_format = getattr(input_data_format, "value", input_data_format)
        frames = _frames_from_array(source, input_data_format, "the video array")
        return InternVideo2DecodedVideo(frames, name="the video array")
    if isinstance(source, (list, tuple)) and source and all(isinstance(f, PIL.Image.Image) for f in source):
        sizes = {image.size for image in source}
        if len(sizes) > 1:
            raise ValueError(f"the PIL frames of a video must all have the same size, got {sorted(sizes)}")
        frames = np.stack([np.asarray(image.convert("RGB")) for image in source])
        return InternVideo2DecodedVideo(torch.from_numpy(frames).permute(0, 3, 1, 2), name="the list of PIL frames")
    raise TypeError(
        "a video must be a path, bytes, a binary file object, a uint8 array/tensor or a list of PIL images, "
        f"got {type(source).__name__}"
    )


def decode_frames(source: VideoSource, indices, method: str = "auto") -> torch.Tensor:
    """Frames ``indices`` of ``source`` as a ``(N, 3, H, W)`` uint8 RGB tensor.

    ``method="seek"`` jumps to the keyframe before each frame, ``"sequential"`` decodes from the start; both give the
    same frames, ``"auto"`` picks the one with the smaller estimated decoding work. Opening a file reads (without
    decoding) all its packets once.
    """
    return open_video(source).get_frames(indices, method=method)
