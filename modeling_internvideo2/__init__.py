"""InternVideo2 video foundation models as native Hugging Face transformers models.

Importing the package registers every config, model and processor with the transformers Auto classes.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the top-level name needs torchvision

from .configuration_audio import InternVideo2AudioConfig
from .configuration_chat import InternVideo2ChatConfig, InternVideo2QFormerConfig
from .configuration_clip import InternVideo2ClipConfig
from .configuration_internvideo2 import InternVideo2Config
from .configuration_text import TEXT_ENCODER_PRESETS, InternVideo2TextConfig
from .configuration_vision import VISION_PRESETS, InternVideo2VisionConfig
from .modeling_audio import InternVideo2AudioModel
from .modeling_chat import InternVideo2ChatForConditionalGeneration
from .modeling_clip import InternVideo2ClipModel, InternVideo2ClipOutput
from .modeling_internvideo2 import InternVideo2Model, InternVideo2Output
from .modeling_pretraining import InternVideo2ForPreTraining, InternVideo2PreTrainingConfig
from .modeling_qformer import InternVideo2QFormerModel
from .modeling_text import InternVideo2TextForMaskedLM, InternVideo2TextModel
from .modeling_vision import InternVideo2ForVideoClassification, InternVideo2VisionModel
from .position_loading import register_position_table_loading
from .processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor
from .processing.processing_chat import InternVideo2ChatProcessor
from .processing.processing_internvideo2 import InternVideo2Processor
from .processing.tokenization_internvideo2 import InternVideo2Tokenizer
from .processing.video_processing_internvideo2 import InternVideo2VideoProcessor

for _config, _models in (
    (InternVideo2VisionConfig, {AutoModel: InternVideo2VisionModel, AutoModelForVideoClassification: InternVideo2ForVideoClassification}),
    (InternVideo2TextConfig, {AutoModel: InternVideo2TextModel, AutoModelForMaskedLM: InternVideo2TextForMaskedLM}),
    (InternVideo2AudioConfig, {AutoModel: InternVideo2AudioModel}),
    (InternVideo2Config, {AutoModel: InternVideo2Model}),
    (InternVideo2ClipConfig, {AutoModel: InternVideo2ClipModel}),
    (InternVideo2PreTrainingConfig, {AutoModelForPreTraining: InternVideo2ForPreTraining}),
    (InternVideo2QFormerConfig, {AutoModel: InternVideo2QFormerModel}),
    (InternVideo2ChatConfig, {AutoModelForImageTextToText: InternVideo2ChatForConditionalGeneration}),
):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    for _auto, _model in _models.items():
        _auto.register(_config, _model, exist_ok=True)

for _config in (InternVideo2VisionConfig, InternVideo2Config, InternVideo2ChatConfig):
    # "torchvision" is the backend slot AutoVideoProcessor reads by default; our processor does not need torchvision.
    AutoVideoProcessor.register(_config, video_processor_classes={"torchvision": InternVideo2VideoProcessor}, exist_ok=True)
for _config in (InternVideo2TextConfig, InternVideo2Config):
    AutoTokenizer.register(_config, tokenizer_class=InternVideo2Tokenizer, exist_ok=True)
for _config in (InternVideo2AudioConfig, InternVideo2Config):
    AutoFeatureExtractor.register(_config, InternVideo2FeatureExtractor, exist_ok=True)
AutoProcessor.register(InternVideo2Config, InternVideo2Processor, exist_ok=True)
AutoProcessor.register(InternVideo2ChatConfig, InternVideo2ChatProcessor, exist_ok=True)
register_position_table_loading(InternVideo2VisionConfig.model_type)

__version__ = "0.1.0"

__all__ = [
    "TEXT_ENCODER_PRESETS",
    "VISION_PRESETS",
    "InternVideo2AudioConfig",
    "InternVideo2AudioModel",
    "InternVideo2ChatConfig",
    "InternVideo2ChatForConditionalGeneration",
    "InternVideo2ChatProcessor",
    "InternVideo2ClipConfig",
    "InternVideo2ClipModel",
    "InternVideo2ClipOutput",
    "InternVideo2Config",
    "InternVideo2FeatureExtractor",
    "InternVideo2Processor",
    "InternVideo2Tokenizer",
    "InternVideo2VideoProcessor",
    "InternVideo2ForPreTraining",
    "InternVideo2ForVideoClassification",
    "InternVideo2Model",
    "InternVideo2Output",
    "InternVideo2PreTrainingConfig",
    "InternVideo2QFormerConfig",
    "InternVideo2QFormerModel",
    "InternVideo2TextConfig",
    "InternVideo2TextForMaskedLM",
    "InternVideo2TextModel",
    "InternVideo2VisionConfig",
    "InternVideo2VisionModel",
]
