import io

import av
import numpy as np
import pytest

from internvideo2.processing.audio_decoding import decode_audio, is_audio_source, resample_audio


SOURCE_RATE = 44100


def dominant_frequency(signal: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / sampling_rate)[np.argmax(spectrum)])


def write_video(path, channels: np.ndarray | None, duration: float = 2.0, audio_codec: str = "aac") -> None:
    """An mp4 with a tiny mpeg4 video track and, if `channels` (C, N) at 44.1 kHz is given, an audio track."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        if channels is not None:
            audio = container.add_stream(audio_codec, rate=SOURCE_RATE)
            audio.layout = "stereo" if channels.shape[0] == 2 else "mono"
            for start in range(0, channels.shape[1], 1024):
                block = np.ascontiguousarray(channels[:, start : start + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=audio.layout.name)
                frame.sample_rate = SOURCE_RATE
                frame.pts = start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
        for index in range(int(duration * 10)):
            image = np.full((32, 32, 3), 8 * index, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def tone(frequency: float, duration: float, rate: int = SOURCE_RATE, amplitude: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(round(duration * rate)) / rate)


@pytest.fixture(scope="module")
def stereo_video(tmp_path_factory):
    """2-s mp4 with an AAC stereo track: 440 Hz on the left, 1000 Hz on the right."""
    path = tmp_path_factory.mktemp("media") / "stereo.mp4"
    write_video(path, np.stack([tone(440, 2.0), tone(1000, 2.0)]))
    return path


def test_decode_aac_track_of_mp4_keeps_channels_and_resamples(stereo_video):
    waveform = decode_audio(stereo_video, sampling_rate=16000)
    assert waveform.dtype == np.float32 and waveform.shape[0] == 2
    # 2 s at 16 kHz; AAC adds at most one frame of encoder padding
    assert abs(waveform.shape[1] - 32000) <= 1024 * 16000 // SOURCE_RATE + 1
    middle = waveform[:, 4000:28000]
    assert dominant_frequency(middle[0], 16000) == pytest.approx(440, abs=2)
    assert dominant_frequency(middle[1], 16000) == pytest.approx(1000, abs=2)
    # a 0.3-amplitude sine has RMS 0.3 / sqrt(2): the decoded scale is [-1, 1]
    np.testing.assert_allclose(np.sqrt((middle**2).mean(axis=1)), 0.3 / np.sqrt(2), rtol=0.03)


def test_bytes_and_file_objects_decode_like_the_path(stereo_video):
    from_path = decode_audio(stereo_video)
    data = stereo_video.read_bytes()
    np.testing.assert_array_equal(decode_audio(data), from_path)
    np.testing.assert_array_equal(decode_audio(io.BytesIO(data)), from_path)
    with open(stereo_video, "rb") as handle:
        np.testing.assert_array_equal(decode_audio(handle), from_path)


def test_time_window_selects_the_requested_part(tmp_path):
    path = tmp_path / "switch.mp4"
    signal = np.concatenate([tone(440, 1.0), tone(1000, 1.0)])
    write_video(path, signal[None])
    late = decode_audio(path, start_time=1.2, end_time=1.8)
    assert late.shape == (1, round(0.6 * 16000))
    assert dominant_frequency(late[0], 16000) == pytest.approx(1000, abs=3)
    early = decode_audio(path, end_time=0.8)
    assert dominant_frequency(early[0, 1600:], 16000) == pytest.approx(440, abs=3)


def test_pcm_wav_is_scaled_to_unit_range(tmp_path):
    """16-bit PCM sample s must come back as s / 32768 (the feature extractor multiplies by 2**15 again)."""
    samples = np.array([0, 1, -1, 16384, -32768, 32767, 1234, -4321] * 200, dtype=np.int16)
    path = tmp_path / "pcm.wav"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    decoded = decode_audio(path, sampling_rate=16000)
    np.testing.assert_array_equal(decoded[0], samples.astype(np.float32) / 32768)


def test_missing_audio_track_raises_unless_silence_is_allowed(tmp_path):
    path = tmp_path / "silent.mp4"
    write_video(path, None, duration=2.0)
    with pytest.raises(ValueError, match="has no audio track; pass allow_missing_audio=True"):
        decode_audio(path)
    silence = decode_audio(path, allow_missing_audio=True)
    assert not silence.any()
    assert abs(silence.shape[1] - 32000) <= 1600  # the container's duration, to a video frame
    assert decode_audio(path, start_time=0.5, end_time=1.5, allow_missing_audio=True).shape == (1, 16000)


def test_bad_sources_raise_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="media file not found"):
        decode_audio(tmp_path / "absent.mp4")
    with pytest.raises(ValueError, match="cannot open <.*bytes> as a media file"):
        decode_audio(b"not a media file" * 10)
    with pytest.raises(TypeError, match="audio source must be a path, bytes or a binary file-like object"):
        decode_audio(12345)
    with pytest.raises(TypeError, match="sampling_rate must be an int"):
        decode_audio(b"x", sampling_rate=16000.0)
    with pytest.raises(ValueError, match="end_time .* must be after start_time"):
        decode_audio(b"x", start_time=2.0, end_time=1.0)
    with pytest.raises(ValueError, match="start_time must be a non-negative number of seconds"):
        decode_audio(b"x", start_time=-1.0)


def test_is_audio_source_separates_media_from_waveforms(stereo_video):
    assert is_audio_source(str(stereo_video)) and is_audio_source(stereo_video) and is_audio_source(b"..")
    assert is_audio_source(io.BytesIO(b".."))
    assert not is_audio_source(np.zeros(10)) and not is_audio_source([0.0, 1.0])


def test_resample_matches_the_analytic_tone():
    """A 1 kHz tone resampled from 44.1 kHz must equal the tone sampled directly at 16 kHz (away from the edges)."""
    resampled = resample_audio(tone(1000, 1.0, amplitude=0.5).astype(np.float32), SOURCE_RATE, 16000)
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(resampled)) / 16000)
    assert abs(len(resampled) - 16000) <= 1
    np.testing.assert_allclose(resampled[200:-200], expected[200:-200], atol=1e-3)


def test_resample_channels_independently_and_passthrough():
    stereo = np.stack([tone(300, 0.5), tone(2000, 0.5)]).astype(np.float32)
    resampled = resample_audio(stereo, SOURCE_RATE, 16000)
    assert resampled.shape[0] == 2
    np.testing.assert_array_equal(resampled[1], resample_audio(stereo[1], SOURCE_RATE, 16000))
    same = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(resample_audio(same, 16000, 16000), same)


def test_resample_rejects_bad_arguments():
    with pytest.raises(TypeError, match="orig_sampling_rate must be an int"):
        resample_audio(np.zeros(100), "44100", 16000)
    with pytest.raises(ValueError, match="target_sampling_rate must be positive"):
        resample_audio(np.zeros(100), 44100, 0)
    with pytest.raises(ValueError, match="waveform has zero samples"):
        resample_audio(np.zeros(0), 44100, 16000)
    with pytest.raises(ValueError, match=r"waveform must have shape \(num_samples,\) or \(num_channels, "):
        resample_audio(np.zeros((1, 2, 100)), 44100, 16000)
