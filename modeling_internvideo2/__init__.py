"""InternVideo2 video foundation models as native Hugging Face transformers models.

Importing the package registers every config, model and processor with the transformers Auto classes.
"""

from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from .configuration_vision import VISION_PRESETS, InternVideo2VisionConfig
from .modeling_vision import InternVideo2ForVideoClassification, InternVideo2VisionModel

AutoConfig.register(InternVideo2VisionConfig.model_type, InternVideo2VisionConfig, exist_ok=True)
AutoModel.register(InternVideo2VisionConfig, InternVideo2VisionModel, exist_ok=True)
AutoModelForVideoClassification.register(InternVideo2VisionConfig, InternVideo2ForVideoClassification, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
    "VISION_PRESETS",
    "InternVideo2VisionConfig",
    "InternVideo2VisionModel",
    "InternVideo2ForVideoClassification",
]
