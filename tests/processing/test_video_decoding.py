"""PyAV decoding: seek == sequential bit for bit, the right frame for each index, every input type and error."""

import io
from unittest import mock

import av
import numpy as np
import PIL.Image
import pytest
import torch
from _video_testing import MEDIA, X264_PARAMS, pyav_decode_all, synthetic_frames, write_video

from internvideo2.processing.video_decoding import (
    DECODE_METHODS,
    SEEK_COST_IN_FRAMES,
    InternVideo2DecodedVideo,
    InternVideo2EncodedVideo,
    decode_frames,
    open_video,
)


NUM_FRAMES, HEIGHT, WIDTH, FPS = 64, 48, 64, 24


@pytest.fixture(scope="module")
def source_frames():
    return synthetic_frames(NUM_FRAMES, HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def h264_path(tmp_path_factory, source_frames):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", source_frames, fps=FPS)


@pytest.fixture(scope="module")
def reference_frames(h264_path):
    """All frames decoded by plain PyAV, channels first."""
    return torch.from_numpy(pyav_decode_all(h264_path)).permute(0, 3, 1, 2)


def keyframe_positions(path):
    """Presentation indices of the keyframes, from the packets (independent of the module under test)."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    order = sorted(p.pts for p in packets)
    return sorted(order.index(p.pts) for p in packets if p.is_keyframe)


def test_generated_h264_has_several_gops_and_b_frames(h264_path):
    assert keyframe_positions(h264_path) == list(range(0, NUM_FRAMES, 8))
    with av.open(str(h264_path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert any(p.pts != p.dts for p in packets)  # reordered (B-frames)


def test_metadata_of_generated_video(h264_path):
    video = open_video(h264_path)
    assert isinstance(video, InternVideo2EncodedVideo) and video.supports_seek
    meta = video.metadata
    assert (meta.total_num_frames, meta.fps, meta.height, meta.width) == (NUM_FRAMES, FPS, HEIGHT, WIDTH)
    assert meta.duration == pytest.approx(NUM_FRAMES / FPS, abs=1 / FPS)
    assert meta.video_backend == "pyav"


def test_sequential_returns_the_frames_plain_pyav_decodes(h264_path, reference_frames):
    frames = decode_frames(h264_path, list(range(NUM_FRAMES)), method="sequential")
    assert frames.dtype == torch.uint8 and frames.shape == (NUM_FRAMES, 3, HEIGHT, WIDTH)
    assert torch.equal(frames, reference_frames)


def test_index_i_is_the_ith_source_frame(h264_path, source_frames):
    decoded = decode_frames(h264_path, list(range(NUM_FRAMES)), method="seek").permute(0, 2, 3, 1).numpy()
    source = source_frames.astype(np.float32)
    for i in range(NUM_FRAMES):
        errors = {j: np.mean((decoded[i] - source[j]) ** 2) for j in (i - 1, i, i + 1) if 0 <= j < NUM_FRAMES}
        assert min(errors, key=errors.get) == i


@pytest.mark.parametrize(
    "indices",
    [[0], [63], [7, 8, 9], [62, 5, 33, 33, 1, 60], list(range(NUM_FRAMES))[::-1], [15, 16, 17, 40, 47, 48]],
)
def test_seek_equals_sequential_bit_exact(h264_path, reference_frames, indices):
    seek = decode_frames(h264_path, indices, method="seek")
    sequential = decode_frames(h264_path, indices, method="sequential")
    assert torch.equal(seek, sequential)
    assert torch.equal(seek, reference_frames[indices])


def test_random_index_sets_seek_equals_sequential(h264_path, reference_frames):
    video = open_video(h264_path)
    rng = np.random.default_rng(0)
    for _ in range(5):
        indices = rng.integers(0, NUM_FRAMES, size=int(rng.integers(1, 9)))
        assert torch.equal(video.get_frames(indices, method="seek"), reference_frames[indices])


def test_open_gop_h264_mpegts_and_vp9_seek_equals_sequential(tmp_path, source_frames):
    frames = source_frames[:40]
    open_gop = X264_PARAMS.replace("bframes=2", "bframes=3:open-gop=1")
    paths = [
        write_video(tmp_path / "open_gop.mp4", frames, x264_params=open_gop),
        write_video(tmp_path / "clip.ts", frames),  # the MPEG-TS demuxer lands after the requested keyframe
        write_video(tmp_path / "clip.webm", frames, codec="libvpx-vp9"),
    ]
    for path in paths:
        reference = torch.from_numpy(pyav_decode_all(path)).permute(0, 3, 1, 2)
        indices = [39, 3, 17, 8, 24, 25]
        assert torch.equal(decode_frames(path, indices, method="seek"), reference[indices]), path.name


def test_decode_cost_weights_frames_by_packet_size_and_counts_from_the_previous_keyframe(h264_path):
    with av.open(str(h264_path)) as container:
        packets = sorted((p.pts, p.size) for p in container.demux(video=0) if p.size)
    sizes = np.array([size for _, size in packets], dtype=float)
    work = 0.5 + 0.5 * sizes / np.median(sizes)  # a median-size frame counts 1, a keyframe several

    def run(first, last):
        return work[first : last + 1].sum()

    video = open_video(h264_path)  # keyframes every 8 frames
    assert video.decode_cost([60], "sequential") == pytest.approx(run(0, 60))
    assert video.decode_cost([60], "seek") == pytest.approx(SEEK_COST_IN_FRAMES + run(56, 60))
    # 10 -> 12 continues decoding (no keyframe in between); 40 needs a new seek to keyframe 40
    expected = SEEK_COST_IN_FRAMES + run(8, 10) + run(11, 12) + SEEK_COST_IN_FRAMES + run(40, 40)
    assert video.decode_cost([12, 40, 10], "seek") == pytest.approx(expected)
    assert work[0] > 2 * np.median(work)  # the keyframe weighs more than a typical frame
    # auto: seeking pays for frames spread over the clip, not for the first few frames
    assert video.decode_cost([0, 1, 2], "seek") > video.decode_cost([0, 1, 2], "sequential")
    assert video.decode_cost([20, 40, 60], "seek") < video.decode_cost([20, 40, 60], "sequential")


def test_auto_gives_the_same_frames(h264_path, reference_frames):
    for indices in ([0, 1, 2], [5, 30, 61]):
        assert torch.equal(decode_frames(h264_path, indices, method="auto"), reference_frames[indices])


def test_real_clip_mpeg4_seek_equals_sequential():
    path = MEDIA / "example1.mp4"  # MPEG-4 part 2, keyframes 0, 12, 24, 36
    video = open_video(path)
    assert video.metadata.total_num_frames == 40 and video.metadata.fps == 5
    every = list(range(40))
    sequential = video.get_frames(every, method="sequential")
    assert torch.equal(video.get_frames(every[::-1], method="seek"), sequential.flip(0))


def test_real_clip_h264_with_b_frames_seek_equals_sequential():
    path = MEDIA / "yoga.mp4"  # H.264 with B-frames, keyframes 0 and 250
    video = open_video(path)
    assert (video.metadata.total_num_frames, video.metadata.fps) == (300, 30)
    indices = [18, 56, 93, 131, 168, 206, 243, 249, 250, 251, 281, 299]
    assert torch.equal(video.get_frames(indices, method="seek"), video.get_frames(indices, method="sequential"))


def test_all_encoded_source_types_give_the_same_frames(h264_path, reference_frames):
    indices = [3, 30]
    data = h264_path.read_bytes()
    for source in (h264_path, str(h264_path), data, bytearray(data), io.BytesIO(data), open(h264_path, "rb")):
        assert torch.equal(decode_frames(source, indices), reference_frames[indices]), type(source)


def test_array_and_pil_sources(source_frames):
    channels_last = source_frames[:6]
    expected = torch.from_numpy(channels_last).permute(0, 3, 1, 2)[[4, 1]]
    sources = [
        channels_last,
        channels_last.transpose(0, 3, 1, 2),
        torch.from_numpy(channels_last),
        [PIL.Image.fromarray(frame) for frame in channels_last],
    ]
    for source in sources:
        video = open_video(source)
        assert isinstance(video, InternVideo2DecodedVideo)
        assert (video.metadata.total_num_frames, video.metadata.height, video.metadata.width) == (6, HEIGHT, WIDTH)
        assert video.metadata.fps is None
        assert torch.equal(video.get_frames([4, 1]), expected), type(source)


def test_explicit_input_data_format_resolves_ambiguous_shapes():
    frames = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)  # 3 rows and 3 channels: ambiguous
    first = open_video(frames, input_data_format="channels_first").get_frames([0])
    last = open_video(frames, input_data_format="channels_last").get_frames([0])
    assert torch.equal(first[0], torch.from_numpy(frames[0]))
    assert torch.equal(last[0], torch.from_numpy(frames[0].transpose(2, 0, 1)))


def test_raw_h264_without_timestamps_decodes_sequentially(tmp_path, source_frames):
    path = write_video(tmp_path / "clip.h264", source_frames[:16])  # elementary stream: packets carry no pts
    video = open_video(path)
    assert not video.supports_seek
    reference = torch.from_numpy(pyav_decode_all(path)).permute(0, 3, 1, 2)
    assert torch.equal(video.get_frames([9, 2], method="auto"), reference[[9, 2]])
    with pytest.raises(ValueError, match=r"clip.h264.* has no distinct packet timestamps to seek by"):
        video.get_frames([9], method="seek")


# ----------------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"video file not found: '.*nothing.mp4'"):
        open_video(tmp_path / "nothing.mp4")


def test_corrupt_and_non_video_files(tmp_path, h264_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ValueError, match=r"video file '.*junk.mp4' is not a readable video file"):
        open_video(junk)
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 20)
    with pytest.raises(ValueError, match=r"notes.txt' is not a readable video file"):
        open_video(text)
    truncated = h264_path.read_bytes()[:2000]  # the mp4 index (moov) is written at the end
    with pytest.raises(ValueError, match=r"the video bytes \(2000 bytes\) is not a readable video file"):
        open_video(truncated)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(ValueError, match=r"tone.wav' has no video stream"):
        open_video(path)


def test_video_stream_without_frames(tmp_path):
    path = tmp_path / "silent.mkv"  # an audio track keeps the file valid; the video track has no packet
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*audio.encode(frame), *audio.encode(), *video.encode()]:
            container.mux(packet)
    with pytest.raises(ValueError, match=r"silent.mkv' has no decodable video frames"):
        open_video(path)


def test_packets_that_do_not_decode(tmp_path, h264_path):
    data = bytearray(h264_path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start : start + 4000] = bytes(4000)  # wipe the first frames' payload, keep the container index
    video = open_video(bytes(data))
    with pytest.raises(ValueError, match=r"the video bytes \(\d+ bytes\) is corrupt: decoding failed"):
        video.get_frames([0], method="sequential")


def test_frames_the_decoder_never_outputs_are_reported(h264_path):
    video = open_video(h264_path)
    # a decoder that stops early
    with mock.patch.object(InternVideo2EncodedVideo, "_decode_sequentially", return_value={}):
        with pytest.raises(ValueError, match=r"frame 5 of video file .* could not be decoded \(the file indexes 64"):
            video.get_frames([5], method="sequential")


def test_array_errors(source_frames):
    with pytest.raises(TypeError, match=r"the video array must hold uint8 RGB frames, got dtype torch.float32"):
        open_video(source_frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"the video array must have 4 dims .* got shape \(48, 64, 3\)"):
        open_video(source_frames[0])
    with pytest.raises(ValueError, match=r"must have 3 RGB channels, as \(T, H, W, 3\) or .* \(2, 48, 64, 4\)"):
        open_video(np.zeros((2, 48, 64, 4), np.uint8))
    with pytest.raises(ValueError, match=r"must have 3 RGB channels \(channels_first\), got shape \(2, 48, 64, 3\)"):
        open_video(source_frames[:2], input_data_format="channels_first")
    with pytest.raises(ValueError, match=r"the video array has no frames"):
        open_video(np.zeros((0, 48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"`input_data_format` must be 'channels_first' or 'channels_last'"):
        open_video(source_frames, input_data_format="nhwc")


def test_other_input_errors(h264_path, source_frames):
    with pytest.raises(TypeError, match=r"a video must be a path, bytes, .* got int"):
        open_video(42)
    with pytest.raises(ValueError, match=r"PIL frames of a video must all have the same size"):
        open_video([PIL.Image.new("RGB", (8, 8)), PIL.Image.new("RGB", (9, 8))])
    with open(h264_path, "r", encoding="latin-1") as text_file:
        with pytest.raises(TypeError, match=r"must be opened in binary mode"):
            open_video(text_file)
    video = open_video(h264_path)
    with pytest.raises(ValueError, match=r"frame index 64 is out of range for video file .*, which has 64 frames"):
        video.get_frames([3, 64])
    with pytest.raises(ValueError, match=r"frame index -1 is out of range"):
        open_video(source_frames).get_frames([-1])
    with pytest.raises(TypeError, match=r"frame indices must be integers, got dtype float64"):
        video.get_frames([1.5])
    with pytest.raises(ValueError, match=r"no frame indices were requested"):
        video.get_frames([])
    with pytest.raises(ValueError, match=r"`method` must be one of \('auto', 'seek', 'sequential'\), got 'fast'"):
        video.get_frames([1], method="fast")
    assert DECODE_METHODS == ("auto", "seek", "sequential")
