"""Training losses of InternVideo2 as small, separately testable modules (open_clip `loss.py` style).

Stage 1 / UTA: `InternVideo2DistillationLoss`, `cosine_distillation_loss`.
Stage 2: `InternVideo2VideoTextContrastiveLoss` (VTC, also the CLIP loss), `InternVideo2VideoTextMatchingLoss` (VTM),
`InternVideo2TextMasker` + `InternVideo2MaskedLanguageModelingLoss` (MLM, AVMLM), and the audio-visual compositions
`InternVideo2AudioVisualTextContrastiveLoss` (AVTC) and `InternVideo2AudioVisualTextMatchingLoss` (AVTM).
"""

from .audio_visual import (
    InternVideo2AudioVisualTextContrastiveLoss,
    InternVideo2AudioVisualTextMatchingLoss,
    concat_audio_vision_tokens,
    fuse_audio_vision_embeds,
)
from .contrastive import (
    InternVideo2VideoTextContrastiveLoss,
    in_batch_contrastive_loss,
    multi_positive_targets,
    video_text_similarity,
)
from .distillation import InternVideo2DistillationLoss, InternVideo2DistillationLossOutput, cosine_distillation_loss
from .distributed import all_gather_batch, distributed_rank_and_world_size
from .masked_language_modeling import (
    InternVideo2MaskedLanguageModelingLoss,
    InternVideo2MLMDraws,
    InternVideo2TextMasker,
)
from .matching import (
    InternVideo2MatchingLossOutput,
    InternVideo2VideoTextMatchingLoss,
    matching_negative_weights,
    sample_matching_negatives,
)


__all__ = [
    "in_batch_contrastive_loss",
    "InternVideo2AudioVisualTextContrastiveLoss",
    "InternVideo2AudioVisualTextMatchingLoss",
    "InternVideo2DistillationLoss",
    "InternVideo2DistillationLossOutput",
    "InternVideo2MLMDraws",
    "InternVideo2MaskedLanguageModelingLoss",
    "InternVideo2MatchingLossOutput",
    "InternVideo2TextMasker",
    "InternVideo2VideoTextContrastiveLoss",
    "InternVideo2VideoTextMatchingLoss",
    "all_gather_batch",
    "concat_audio_vision_tokens",
    "cosine_distillation_loss",
    "distributed_rank_and_world_size",
    "fuse_audio_vision_embeds",
    "matching_negative_weights",
    "multi_positive_targets",
    "sample_matching_negatives",
    "video_text_similarity",
]
