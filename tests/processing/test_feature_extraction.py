import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_audioeval.samples.registry as audioeval_registry
import soundfile
import torch

from internvideo2.processing.audio_decoding import decode_audio, resample_audio
from internvideo2.processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor


SPEECH_DIR = Path(audioeval_registry.__file__).parent / "audio"
SPEECH_CLIPS = sorted(SPEECH_DIR.glob("*/*.wav"))
MEAN, STD = 15.41663, 6.55582
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def kaldi_mel(frequency):
    return 1127.0 * np.log(1.0 + np.asarray(frequency) / 700.0)


def kaldi_mel_centers(num_bins: int = 64, low: float = 20.0, high: float = 8000.0) -> np.ndarray:
    delta = (kaldi_mel(high) - kaldi_mel(low)) / (num_bins + 1)
    return kaldi_mel(low) + delta * np.arange(1, num_bins + 1)


def kaldi_fbank(waveform: np.ndarray, sample_rate: int = 16000, num_bins: int = 64) -> np.ndarray:
    """Kaldi `compute-fbank-feats` written out in numpy (25/10 ms, snip_edges, DC removal, pre-emphasis 0.97, povey
    window, 512-point power spectrum, Kaldi Mel triangles from 20 Hz to Nyquist, log floored at float32 eps)."""
    samples = np.asarray(waveform, dtype=np.float64) * 32768.0
    window, shift, fft_size = 400, 160, 512
    num_frames = 1 + (len(samples) - window) // shift
    frames = samples[np.arange(window)[None, :] + shift * np.arange(num_frames)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)  # x[-1] := x[0], as Kaldi does
    frames = frames - 0.97 * previous
    n = np.arange(window)
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * n / (window - 1))) ** 0.85
    power = np.abs(np.fft.rfft(frames, n=fft_size)) ** 2
    bin_mels = kaldi_mel(np.arange(fft_size // 2) * sample_rate / fft_size)
    delta = (kaldi_mel(sample_rate / 2) - kaldi_mel(20.0)) / (num_bins + 1)
    banks = np.zeros((num_bins, fft_size // 2 + 1))  # the Nyquist bin gets no weight
    for m in range(num_bins):
        left = kaldi_mel(20.0) + m * delta
        center, right = left + delta, left + 2 * delta
        rising = (bin_mels - left) / (center - left)
        falling = (right - bin_mels) / (right - center)
        banks[m, : fft_size // 2] = np.maximum(0.0, np.minimum(rising, falling))
    return np.log(np.maximum(power @ banks.T, FLOAT32_EPS))


def expected_features(waveform: np.ndarray, max_frames: int = 998) -> tuple[np.ndarray, np.ndarray]:
    fbank = (kaldi_fbank(waveform) - MEAN) / (2 * STD)
    padded = np.zeros((max_frames, fbank.shape[1]))
    padded[: len(fbank)] = fbank
    mask = np.zeros(max_frames, dtype=np.int64)
    mask[: len(fbank)] = 1
    return padded, mask


@pytest.fixture(scope="module")
def extractor():
    return InternVideo2FeatureExtractor()


@pytest.fixture(scope="module")
def speech():
    assert len(SPEECH_CLIPS) == 27  # the parametrized speech test must not silently run on nothing
    waveform, rate = soundfile.read(SPEECH_DIR / "en" / "counting.wav", dtype="float32")
    assert rate == 16000 and waveform.ndim == 1
    return waveform


@pytest.mark.parametrize("clip", SPEECH_CLIPS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_fbank_of_real_speech_matches_kaldi_formula(extractor, clip):
    speech, rate = soundfile.read(clip, dtype="float32")
    assert rate == 16000 and speech.ndim == 1
    features = extractor(speech, sampling_rate=16000, return_tensors="np")
    expected, mask = expected_features(speech)
    assert features["input_features"].shape == (1, 998, 64)
    np.testing.assert_allclose(features["input_features"][0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(features["attention_mask"][0], mask)
    assert mask.sum() == 1 + (len(speech) - 400) // 160


def test_fbank_of_a_tone_matches_kaldi_formula(extractor):
    t = np.arange(3 * 16000) / 16000
    waveform = (0.25 * np.sin(2 * np.pi * 700 * t) + 0.05 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)
    features = extractor(waveform, sampling_rate=16000, return_tensors="np")
    np.testing.assert_allclose(features["input_features"][0], expected_features(waveform)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mel_bin", [5, 20, 40, 60])
def test_pure_tone_peaks_in_its_mel_bin(extractor, mel_bin):
    frequency = 700.0 * (np.exp(kaldi_mel_centers()[mel_bin] / 1127.0) - 1.0)
    waveform = 0.5 * np.sin(2 * np.pi * frequency * np.arange(16000) / 16000)
    features = extractor(waveform, sampling_rate=16000, return_tensors="np")
    num_frames = features["attention_mask"][0].sum()
    assert np.argmax(features["input_features"][0, :num_frames].mean(axis=0)) == mel_bin


def test_long_audio_is_cropped_to_ten_seconds(extractor):
    rng = np.random.default_rng(0)
    waveform = (0.1 * rng.standard_normal(13 * 16000)).astype(np.float32)
    first = extractor(waveform, sampling_rate=16000, return_tensors="np")
    expected_first = expected_features(waveform[:160000])[0]
    np.testing.assert_allclose(first["input_features"][0], expected_first, rtol=1e-5, atol=1e-5)
    assert first["attention_mask"].sum() == 998

    seeded = extractor(waveform, sampling_rate=16000, random_crop=True, generator=7, return_tensors="np")
    start = int(np.random.default_rng(7).integers(0, len(waveform) - 160000 + 1))
    window = waveform[start : start + 160000]
    np.testing.assert_allclose(seeded["input_features"][0], expected_features(window)[0], rtol=1e-5, atol=1e-5)
    again = extractor(waveform, sampling_rate=16000, random_crop=True, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(np.asarray(again["input_features"][0]), seeded["input_features"][0])
    other = extractor(waveform, sampling_rate=16000, random_crop=True, generator=8, return_tensors="np")
    assert not np.allclose(other["input_features"], seeded["input_features"])


def test_channels_are_averaged_and_batches_padded(extractor, speech):
    stereo = np.stack([speech, 0.5 * speech[::-1]])
    short = speech[:8000]
    batch = extractor([stereo, short, torch.from_numpy(speech)], sampling_rate=16000, return_tensors="pt")
    assert batch["input_features"].dtype == torch.float32
    np.testing.assert_allclose(batch["input_features"][0].numpy(), expected_features(stereo.mean(0))[0], atol=1e-5)
    np.testing.assert_allclose(batch["input_features"][1].numpy(), expected_features(short)[0], atol=1e-5)
    np.testing.assert_allclose(batch["input_features"][2].numpy(), expected_features(speech)[0], atol=1e-5)
    np.testing.assert_array_equal(batch["attention_mask"][1].numpy(), expected_features(short)[1])
    # a 2-D array is a batch of mono waveforms, a 3-D array a batch of multi-channel ones
    two_d = extractor(np.stack([speech, speech]), sampling_rate=16000, return_tensors="np")["input_features"]
    three_d = extractor(stereo[None], sampling_rate=16000, return_tensors="np")["input_features"]
    np.testing.assert_array_equal(two_d[0], two_d[1])
    np.testing.assert_allclose(three_d[0], batch["input_features"][0].numpy(), atol=1e-6)


def test_raw_audio_at_another_rate_is_resampled_to_16k(extractor):
    def chirp(rate):
        t = np.arange(2 * rate) / rate
        return (0.3 * np.sin(2 * np.pi * (300 * t + 400 * t**2))).astype(np.float32)

    at_44k = extractor(chirp(44100), sampling_rate=44100, return_tensors="np")
    direct = expected_features(chirp(16000))
    np.testing.assert_array_equal(at_44k["attention_mask"][0], direct[1])
    num_frames = direct[1].sum()
    # band-limited resampling reproduces the 16 kHz fbank up to filter ripple; compare the Mel bins within ~57 dB
    # (1.0 in normalised units = 2 * 6.55582 nats) of each frame's peak, leaving out one frame of edge effect per side
    resampled, reference = at_44k["input_features"][0, 1 : num_frames - 1], direct[0][1 : num_frames - 1]
    loud = reference >= reference.max(axis=1, keepdims=True) - 1.0
    assert loud.sum() > 5 * len(reference)
    np.testing.assert_allclose(resampled[loud], reference[loud], atol=0.02)
    np.testing.assert_allclose(
        at_44k["input_features"][0],
        extractor(resample_audio(chirp(44100), 44100, 16000), sampling_rate=16000, return_tensors="np")[
            "input_features"
        ][0],
    )


def write_mp4(path, waveform_stereo: np.ndarray | None, rate: int = 48000, seconds: float = 1.5):
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        if waveform_stereo is not None:
            audio = container.add_stream("aac", rate=rate)
            audio.layout = "stereo"
            for start in range(0, waveform_stereo.shape[1], 1024):
                block = np.ascontiguousarray(waveform_stereo[:, start : start + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
        for index in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index, dtype=np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def test_media_files_are_decoded_and_averaged(extractor, tmp_path):
    t = np.arange(72000) / 48000
    path = tmp_path / "clip.mp4"
    write_mp4(path, np.stack([0.3 * np.sin(2 * np.pi * 500 * t), 0.2 * np.sin(2 * np.pi * 2500 * t)]))
    from_path = extractor(str(path), return_tensors="np")
    expected = expected_features(decode_audio(path).mean(axis=0))
    np.testing.assert_allclose(from_path["input_features"][0], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(from_path["attention_mask"][0], expected[1])
    batch = extractor([path.read_bytes(), io.BytesIO(path.read_bytes())], return_tensors="np")
    np.testing.assert_array_equal(batch["input_features"][0], from_path["input_features"][0])
    np.testing.assert_array_equal(batch["input_features"][1], from_path["input_features"][0])


def test_missing_audio_track_is_an_error_or_explicit_silence(extractor, tmp_path):
    path = tmp_path / "video_only.mp4"
    write_mp4(path, None, seconds=1.5)
    with pytest.raises(ValueError, match="has no audio track; pass allow_missing_audio=True"):
        extractor(path)
    silence = extractor(path, allow_missing_audio=True, return_tensors="np")
    num_frames = silence["attention_mask"][0].sum()
    assert num_frames == 1 + (round(1.5 * 16000) - 400) // 160
    # digital silence has zero Mel energy everywhere, so every real frame is Kaldi's log floor
    floor = (np.log(FLOAT32_EPS) - MEAN) / (2 * STD)
    np.testing.assert_allclose(silence["input_features"][0, :num_frames], floor, rtol=1e-6)
    assert not silence["input_features"][0, num_frames:].any()


def test_save_and_load_round_trip(extractor, tmp_path, speech):
    custom = InternVideo2FeatureExtractor(max_duration=2.0, fbank_mean=10.0, fbank_std=5.0)
    custom.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert "mel_filters" not in saved and "window" not in saved
    loaded = InternVideo2FeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == custom.to_dict()
    assert loaded.max_frames == 1 + (32000 - 400) // 160
    features = loaded(speech, sampling_rate=16000, return_tensors="np")["input_features"][0]
    fbank = kaldi_fbank(speech[:32000])
    np.testing.assert_allclose(features, (fbank - 10.0) / 10.0, rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise_one_line_errors(extractor, tmp_path):
    with pytest.raises(ValueError, match=r"audio\[0\] has zero samples"):
        extractor(np.zeros(0, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="audio arrays must have 1, 2 or 3 dimensions"):
        extractor(np.zeros((1, 1, 2, 800)), sampling_rate=16000)
    with pytest.raises(ValueError, match=r"audio\[1\] must have shape \(num_samples,\) or \(num_channels, "):
        extractor([np.zeros(800), np.zeros((1, 2, 800))], sampling_rate=16000)
    with pytest.raises(TypeError, match="sampling_rate must be an int"):
        extractor(np.zeros(800), sampling_rate="16k")
    with pytest.raises(TypeError, match="sampling_rate must be an int"):
        extractor(np.zeros(800), sampling_rate=16000.0)
    with pytest.raises(ValueError, match="sampling_rate is required for raw waveforms"):
        extractor(np.zeros(800))
    with pytest.raises(ValueError, match=r"audio\[0\] has 399 samples at 16000 Hz, fewer than one 25 ms fbank frame"):
        extractor(np.zeros(399), sampling_rate=16000)
    with pytest.raises(ValueError, match=r"audio\[0\] contains NaN or infinite samples"):
        extractor(np.full(800, np.nan), sampling_rate=16000)
    with pytest.raises(ValueError, match="audio is an empty list"):
        extractor([], sampling_rate=16000)
    with pytest.raises(TypeError, match="audio must be a media file, a waveform array/tensor or a list of them"):
        extractor({"array": np.zeros(800)}, sampling_rate=16000)
    with pytest.raises(FileNotFoundError, match="media file not found"):
        extractor(str(tmp_path / "missing.mp4"))
