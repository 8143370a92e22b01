"""`InternVideo2Processor`: one call prepares any subset of videos, images, texts and audio for `InternVideo2Model`."""

import PIL.Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.video_processing_utils import VideoProcessorMixin

from .feature_extraction_internvideo2 import InternVideo2FeatureExtractor


class InternVideo2Processor(ProcessorMixin):
    r"""
    Wraps [`InternVideo2VideoProcessor`] (videos and images), [`InternVideo2Tokenizer`] (captions: official cleaning,
    `[CLS]` without `[SEP]`, padded to `max_length`) and [`InternVideo2FeatureExtractor`] (audio fbank; only the 6B
    model has an audio tower, the default extractor costs nothing otherwise).

    Returns a `BatchFeature` with `pixel_values_videos` (B, T, C, H, W), `pixel_values` (B, C, H, W) for images,
    `input_ids` / `attention_mask` for text and `input_features` (B, 998, 64) for audio, ready for
    `InternVideo2Model(**inputs)`. The audio padding mask is returned as `audio_attention_mask` only on request
    (`return_audio_attention_mask=True`): the released 6B model was trained without it.
    """

    def __init__(self, video_processor=None, tokenizer=None, feature_extractor=None, **kwargs):
        if feature_extractor is None:
            feature_extractor = InternVideo2FeatureExtractor()
        super().__init__(video_processor, tokenizer, feature_extractor=feature_extractor, **kwargs)

    def check_argument_for_proper_class(self, argument_name, argument):
        # Without torchvision, transformers hides its video-processor base class from the checks; ours needs none.
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"video_processor must be a VideoProcessorMixin, got {type(argument).__name__}")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        images=None,
        audio=None,
        sampling_rate: int | None = None,
        return_audio_attention_mask: bool = False,
        allow_missing_audio: bool = False,
        return_tensors: str | None = "pt",
        text_kwargs: dict | None = None,
        videos_kwargs: dict | None = None,
        audio_kwargs: dict | None = None,
    ) -> BatchFeature:
        """Prepare the given modalities. `audio` may be waveforms (with `sampling_rate`) or media files whose audio
        track is decoded; a file without one is an error unless `allow_missing_audio=True` (explicit silence).
        Videos and audio describe the same clips, so their counts must match; texts are independent (retrieval)."""
        if text is None and videos is None and images is None and audio is None:
            raise ValueError("pass at least one of text, videos, images or audio")
        data = {}
        if videos is not None:
            data.update(self.video_processor(videos, return_tensors=return_tensors, **(videos_kwargs or {})))
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            # An image is a one-frame video: PIL images as a one-image list, arrays (H, W, C) with a frame axis.
            clips = [[image] if isinstance(image, PIL.Image.Image) else image[None] for image in images]
            processed = self.video_processor(clips, do_sample_frames=False, return_tensors="pt", **(videos_kwargs or {}))
            data["pixel_values"] = processed["pixel_values_videos"][:, 0]
        if text is not None:
            encoded = self.tokenizer(text, return_tensors=return_tensors, **(text_kwargs or {}))
            data.update({key: encoded[key] for key in ("input_ids", "attention_mask")})
        if audio is not None:
            features = self.feature_extractor(
                audio,
                sampling_rate=sampling_rate,
                allow_missing_audio=allow_missing_audio,
                return_attention_mask=return_audio_attention_mask,
                return_tensors=return_tensors,
                **(audio_kwargs or {}),
            )
            data["input_features"] = features["input_features"]
            if return_audio_attention_mask:
                data["audio_attention_mask"] = features["attention_mask"]
            if videos is not None and len(data["input_features"]) != len(data["pixel_values_videos"]):
                raise ValueError(
                    f"batch size mismatch: {len(data['pixel_values_videos'])} video views but "
                    f"{len(data['input_features'])} audio clips; audio and videos must describe the same clips"
                )
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, *args, **kwargs):
        """Token ids → strings (the tokenizer's `batch_decode`)."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        """Token ids → string (the tokenizer's `decode`)."""
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["pixel_values_videos", "pixel_values", "input_ids", "attention_mask", "input_features"]


__all__ = ["InternVideo2Processor"]
