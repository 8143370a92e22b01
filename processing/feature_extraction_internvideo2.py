"""
Audio feature extractor of InternVideo2-6B: 16 kHz mono audio -> 10-s crop -> Kaldi log-Mel fbank (64 bins) ->
InternVideo2's normalisation -> zero padding to 998 frames.

The fbank is computed with `transformers.audio_utils` (the Kaldi-compatible path ASTFeatureExtractor uses without
torchaudio) and matches `torchaudio.compliance.kaldi.fbank(waveform * 2**15, num_mel_bins=64,
sample_frequency=16000, frame_length=25, frame_shift=10)` with its defaults: povey window, no dither, DC removal,
pre-emphasis 0.97, `snip_edges=True` framing, 512-point FFT power spectrum, Kaldi Mel banks from 20 Hz to Nyquist,
natural log floored at float32 epsilon.
"""

import numpy as np
from transformers.audio_utils import mel_filter_bank, optimal_fft_length, spectrogram, window_function
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, is_torch_tensor

from .audio_decoding import _check_sampling_rate, decode_audio, is_audio_source, resample_audio


# Kaldi fbank settings used by InternVideo2 (torchaudio defaults apart from the Mel bin count)
_FRAME_LENGTH_MS = 25.0
_FRAME_SHIFT_MS = 10.0
_PREEMPHASIS = 0.97
_LOW_FREQUENCY = 20.0
_LOG_FLOOR = float(np.finfo(np.float32).eps)
# Kaldi works on 16-bit PCM sample values
_WAVEFORM_SCALE = 2.0**15


class InternVideo2FeatureExtractor(SequenceFeatureExtractor):
    r"""
    Audio feature extractor of InternVideo2-6B (BEATs input).

    Each input is averaged over its channels, resampled to `sampling_rate` (PyAV / libswresample), cropped to
    `max_duration` seconds (the first seconds, or a random window with `random_crop=True` as in training),
    multiplied by 2**15, turned into a Kaldi log-Mel fbank, normalised as `(fbank - fbank_mean) / (2 * fbank_std)`
    and zero-padded to the number of frames of `max_duration` (998 for 10 s at 16 kHz).

    Args:
        feature_size (`int`, *optional*, defaults to 64):
            Number of Mel bins.
        sampling_rate (`int`, *optional*, defaults to 16000):
            Sampling rate of the waveform the fbank is computed on, in Hz.
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of the padded fbank frames (after normalisation, as in InternVideo2).
        max_duration (`float`, *optional*, defaults to 10.0):
            Crop length in seconds; also fixes the padded number of frames.
        fbank_mean (`float`, *optional*, defaults to 15.41663):
            Mean subtracted from the log-Mel fbank.
        fbank_std (`float`, *optional*, defaults to 6.55582):
            Standard deviation; the fbank is divided by twice this value.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to apply the normalisation.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Whether to return the frame mask (1 for real frames, 0 for padding).
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 16000,
        padding_value: float = 0.0,
        max_duration: float = 10.0,
        fbank_mean: float = 15.41663,
        fbank_std: float = 6.55582,
        do_normalize: bool = True,
        return_attention_mask: bool = True,
        **kwargs,
    ):
        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.max_duration = max_duration
        self.fbank_mean = fbank_mean
        self.fbank_std = fbank_std
        self.do_normalize = do_normalize
        # derived arrays; FeatureExtractionMixin.to_dict leaves `window` and `mel_filters` out of the saved JSON
        self.window = window_function(self.frame_length, "povey", periodic=False)
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=self.fft_length // 2 + 1,
            num_mel_filters=feature_size,
            min_frequency=_LOW_FREQUENCY,
            max_frequency=sampling_rate / 2,
            sampling_rate=sampling_rate,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )

    @property
    def frame_length(self) -> int:
        return int(self.sampling_rate * _FRAME_LENGTH_MS / 1000)

    @property
    def hop_length(self) -> int:
        return int(self.sampling_rate * _FRAME_SHIFT_MS / 1000)

    @property
    def fft_length(self) -> int:
        return optimal_fft_length(self.frame_length)

    @property
    def max_samples(self) -> int:
        return round(self.max_duration * self.sampling_rate)

    @property
    def max_frames(self) -> int:
        """Frames of a `max_duration` crop with Kaldi's `snip_edges` framing (998 for 10 s at 16 kHz)."""
        return 1 + (self.max_samples - self.frame_length) // self.hop_length

    def _fbank(self, waveform: np.ndarray) -> np.ndarray:
        """Kaldi log-Mel fbank `(num_frames, feature_size)` of a mono waveform in [-1, 1] at `sampling_rate`."""
        return spectrogram(
            waveform * _WAVEFORM_SCALE,
            self.window,
            frame_length=self.frame_length,
            hop_length=self.hop_length,
            fft_length=self.fft_length,
            power=2.0,
            center=False,
            preemphasis=_PREEMPHASIS,
            mel_filters=self.mel_filters,
            mel_floor=_LOG_FLOOR,
            log_mel="log",
            remove_dc_offset=True,
        ).T

    def _to_mono(self, item, index: int, sampling_rate: int | None, allow_missing_audio: bool) -> np.ndarray:
        """Decode or convert one input to a mono float32 waveform at `self.sampling_rate`."""
        if is_audio_source(item):
            waveform = decode_audio(item, self.sampling_rate, allow_missing_audio=allow_missing_audio)
            return waveform.mean(axis=0)
        if sampling_rate is None:
            raise ValueError("sampling_rate is required for raw waveforms (the rate of the arrays, in Hz)")
        waveform = np.asarray(item.detach().cpu() if is_torch_tensor(item) else item, dtype=np.float32)
        if waveform.ndim not in (1, 2):
            raise ValueError(
                f"audio[{index}] must have shape (num_samples,) or (num_channels, num_samples), got {waveform.shape}"
            )
        if waveform.shape[-1] == 0:
            raise ValueError(f"audio[{index}] has zero samples")
        if not np.isfinite(waveform).all():
            raise ValueError(f"audio[{index}] contains NaN or infinite samples")
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=0)
        return resample_audio(waveform, sampling_rate, self.sampling_rate)

    def __call__(
        self,
        audio,
        sampling_rate: int | None = None,
        random_crop: bool = False,
        generator: np.random.Generator | int | None = None,
        allow_missing_audio: bool = False,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """
        Featurize one input or a batch.

        Args:
            audio:
                One input or a list of inputs. An input is a media file (path, bytes or binary file-like object; its
                first audio track is decoded with PyAV) or a raw waveform: a 1-D array (mono) or a 2-D
                `(num_channels, num_samples)` array / tensor. A 2-D array given directly is a batch of mono
                waveforms and a 3-D array a batch of `(num_channels, num_samples)` waveforms.
            sampling_rate (`int`):
                Sampling rate of the raw waveforms in Hz (required for them; media files carry their own).
            random_crop (`bool`, *optional*, defaults to `False`):
                Crop a random `max_duration` window from longer audio (training) instead of its beginning.
            generator (`np.random.Generator` or `int`, *optional*):
                Random generator or seed of the random crop.
            allow_missing_audio (`bool`, *optional*, defaults to `False`):
                Use silence for media files without an audio track instead of raising.
            return_attention_mask (`bool`, *optional*):
                Overrides `self.return_attention_mask`.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` or `"np"`; lists of arrays otherwise.

        Returns:
            [`BatchFeature`] with `input_features` `(batch_size, max_frames, feature_size)` and, if requested,
            `attention_mask` `(batch_size, max_frames)`.
        """
        if sampling_rate is not None:
            sampling_rate = _check_sampling_rate(sampling_rate, "sampling_rate")
        items = self._as_list(audio)
        rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)

        features = []
        for index, item in enumerate(items):
            waveform = self._to_mono(item, index, sampling_rate, allow_missing_audio)
            if waveform.shape[0] < self.frame_length:
                raise ValueError(
                    f"audio[{index}] has {waveform.shape[0]} samples at {self.sampling_rate} Hz, fewer than one "
                    f"{_FRAME_LENGTH_MS:g} ms fbank frame ({self.frame_length} samples)"
                )
            if waveform.shape[0] > self.max_samples:
                start = int(rng.integers(0, waveform.shape[0] - self.max_samples + 1)) if random_crop else 0
                waveform = waveform[start : start + self.max_samples]
            fbank = self._fbank(waveform)
            if self.do_normalize:
                fbank = (fbank - self.fbank_mean) / (2 * self.fbank_std)
            features.append(fbank.astype(np.float32))

        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        return self.pad(
            BatchFeature({"input_features": features}),
            padding="max_length",
            max_length=self.max_frames,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
        )

    @staticmethod
    def _as_list(audio) -> list:
        if is_audio_source(audio):
            return [audio]
        if is_torch_tensor(audio):
            audio = audio.detach().cpu().numpy()
        if isinstance(audio, np.ndarray):
            if audio.ndim == 1:
                return [audio]
            if audio.ndim in (2, 3):
                return list(audio)
            raise ValueError(f"audio arrays must have 1, 2 or 3 dimensions, got shape {audio.shape}")
        if isinstance(audio, (list, tuple)):
            if len(audio) == 0:
                raise ValueError("audio is an empty list")
            if all(isinstance(x, (int, float, np.number)) for x in audio):
                return [np.asarray(audio, dtype=np.float32)]
            return list(audio)
        raise TypeError(
            f"audio must be a media file, a waveform array/tensor or a list of them, got {type(audio).__name__}"
        )


__all__ = ["InternVideo2FeatureExtractor"]
