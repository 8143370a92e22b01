"""Preprocessing for InternVideo2: video (PyAV decoding, official sampling and transforms), text, audio."""

from .feature_extraction_internvideo2 import InternVideo2FeatureExtractor
from .frame_sampling import sample_frame_indices
from .processing_internvideo2 import InternVideo2Processor
from .tokenization_internvideo2 import InternVideo2Tokenizer, caption_cleaner
from .video_decoding import decode_frames, open_video
from .video_processing_internvideo2 import PRESETS, InternVideo2VideoMetadata, InternVideo2VideoProcessor

__all__ = [
    "PRESETS",
    "InternVideo2FeatureExtractor",
    "InternVideo2Processor",
    "InternVideo2Tokenizer",
    "InternVideo2VideoMetadata",
    "InternVideo2VideoProcessor",
    "caption_cleaner",
    "decode_frames",
    "open_video",
    "sample_frame_indices",
]
