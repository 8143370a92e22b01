"""Command-line arguments shared by the InternVideo2 training entry points, as dataclasses for `HfArgumentParser`.

Entry points parse these together with their stage's own dataclass and `transformers.TrainingArguments` (Stage 2 /
CLIP: model, data, `InternVideo2Stage2Arguments`, `InternVideo2ClipArguments`, training). Precision (`--bf16`,
`--fp16`), gradient checkpointing, gradient accumulation, DeepSpeed (`--deepspeed zero2.json`), checkpointing and
resuming (`--resume_from_checkpoint`) are `TrainingArguments` options.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def parse_ratios(text: str | None) -> dict[str, float] | None:
    """Parses `"image=1,video=2"` into `{"image": 1.0, "video": 2.0}`; `None` or "" gives None."""
    if not text:
        return None
    ratios = {}
    for item in text.split(","):
        name, separator, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not separator or not name or number is None or number < 0:
            raise ValueError(f"modality_ratios must look like 'image=1,video=2', got {text!r}")
        if name in ratios:
            raise ValueError(f"modality_ratios names {name!r} twice: {text!r}")
        ratios[name] = number
    return ratios


@dataclass
class InternVideo2ModelArguments:
    """Which model to train and how to build it."""

    model_type: str = field(
        default="stage2", metadata={"help": "'stage2' (InternVideo2Model) or 'clip' (InternVideo2ClipModel)."}
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A saved InternVideo2 model (save_pretrained folder) to continue from. Without it a new "
                  "model is built from the options below."},
    )
    vision_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A saved InternVideo2VisionModel (e.g. the Stage-1 result) to start the vision tower from."},
    )
    vision_preset: str = field(
        default="B/14", metadata={"help": "Size of a new vision tower: S/14, B/14, L/14, 1B or 6B."}
    )
    vision_config_overrides: str | None = field(
        default=None,
        metadata={"help": "JSON object of InternVideo2VisionConfig fields overriding the preset, e.g. "
                  "'{\"num_hidden_layers\": 2, \"hidden_size\": 64}'."},
    )
    text_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Text tower to start from: a Hugging Face BERT checkpoint (Stage 2; its last layers get "
                  "cross-attention) or any AutoModel text model (CLIP)."},
    )
    text_config_overrides: str | None = field(
        default=None,
        metadata={"help": "Stage 2 without --text_model_name_or_path: JSON object of InternVideo2TextConfig fields "
                  "of a new, randomly initialised text tower (default: BERT-base sizes), e.g. '{\"hidden_size\": 64, "
                  "\"num_hidden_layers\": 3, \"fusion_layer\": 2}'."},
    )
    num_fusion_layers: int | None = field(
        default=None,
        metadata={"help": "Stage 2 from a BERT checkpoint: how many of its last layers become fusion layers (default: "
                  "the official split for BERT-large (5 of 24) and BERT-base (3 of 12) sizes, 0 with "
                  "--num_new_fusion_layers; required otherwise)."},
    )
    num_new_fusion_layers: int = field(
        default=0,
        metadata={"help": "Stage 2 from a BERT checkpoint: new, randomly initialised fusion layers stacked on top of "
                  "its layers. Use it for sentence-transformers BERTs (trained with mean pooling), whose CLS is "
                  "near-constant before the last layer: with --num_fusion_layers 0 the text features come from the "
                  "last layer."},
    )
    text_dropout: float | None = field(
        default=None,
        metadata={"help": "Stage 2 from a BERT checkpoint: hidden and attention dropout of the text tower (default: "
                  "the checkpoint's, 0.1 for BERTs), e.g. 0 for a locked text encoder whose features are fixed "
                  "targets."},
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer folder (a BERT vocab.txt folder for Stage 2); default: the text model's."},
    )
    projection_dim: int = field(default=512, metadata={"help": "Width of the contrastive embeddings."})
    text_pooling: str = field(
        default="cls", metadata={"help": "CLIP text pooling: 'cls', 'eos' (last real token) or 'mean'."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "'eager', 'sdpa' or 'flash_attention_2' (default: the model's default)."}
    )

    def __post_init__(self):
        if self.text_dropout is not None and not 0.0 <= self.text_dropout < 1.0:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout}")
        if self.text_dropout is not None and (self.model_type != "stage2" or self.text_model_name_or_path is None):
            raise ValueError(
                "text_dropout applies to a Stage-2 text tower loaded from --text_model_name_or_path (a new tower "
                "takes its dropout from --text_config_overrides)"
            )
        if self.num_new_fusion_layers < 0:
            raise ValueError(f"num_new_fusion_layers must be >= 0, got {self.num_new_fusion_layers}")
        if self.model_type not in ("stage2", "clip"):
            raise ValueError(f"model_type must be 'stage2' or 'clip', got {self.model_type!r}")
        if self.text_pooling not in ("cls", "eos", "mean"):
            raise ValueError(f"text_pooling must be 'cls', 'eos' or 'mean', got {self.text_pooling!r}")


@dataclass
class InternVideo2DataArguments:
    """Annotation files and the media pipeline."""

    train_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Training annotation files (Stage 2 / CLIP: JSON with 'video' or 'image' and 'caption')."},
    )
    audio_video_train_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Audio-video training JSON files (6B Stage 2): their videos are also decoded for audio."},
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Evaluation annotation file (retrieval JSON for Stage 2 / CLIP)."}
    )
    data_root: str | None = field(default=None, metadata={"help": "Folder the media paths are relative to."})
    num_frames: int = field(default=4, metadata={"help": "Frames per video clip (official Stage 2: 4, CLIP: 8)."})
    image_size: int = field(default=224, metadata={"help": "Frame height and width after the transforms."})
    max_text_length: int = field(default=32, metadata={"help": "Caption length in tokens (official 1B: 32, 6B: 40)."})
    audio_visual_caption_key: str = field(
        default="avs_captions", metadata={"help": "Caption key of audio-video entries for the audio-visual losses."}
    )
    modality_ratios: str | None = field(
        default=None,
        metadata={"help": "Relative steps per media type, e.g. 'image=1,video=2'; default: each media type once per "
                  "epoch (official MetaLoader)."},
    )
    max_skipped_media: int = field(
        default=100, metadata={"help": "Unreadable media files skipped (with a warning) before training stops."}
    )

    def __post_init__(self):
        parse_ratios(self.modality_ratios)  # fail at parse time, not after the model is built
        for name in ("num_frames", "image_size", "max_text_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class InternVideo2Stage2Arguments:
    """Stage-2 losses, masking and freezing (spec §3.4-3.6); the defaults are the official 1B recipe."""

    vtc_weight: float = field(default=1.0, metadata={"help": "Video-text contrastive loss weight."})
    vtm_weight: float = field(default=1.0, metadata={"help": "Video-text matching loss weight."})
    mlm_weight: float = field(default=1.0, metadata={"help": "Masked language modelling loss weight."})
    avtc_weight: float = field(default=1.0, metadata={"help": "Audio-visual-text contrastive weight (audio batches)."})
    avtm_weight: float = field(default=1.0, metadata={"help": "Audio-visual-text matching weight (audio batches)."})
    avmlm_weight: float = field(default=1.0, metadata={"help": "Audio-visual MLM weight (audio batches)."})
    uta_weight: float = field(
        default=0.0, metadata={"help": "Unmasked-teacher alignment weight (needs a teacher; 0 in released configs)."}
    )
    video_mask_ratio: float = field(default=0.8, metadata={"help": "Fraction of video patch tokens dropped."})
    image_mask_ratio: float = field(default=0.5, metadata={"help": "Fraction of image patch tokens dropped."})
    mlm_probability: float = field(default=0.5, metadata={"help": "Fraction of caption tokens masked for MLM."})
    vtm_hard_negatives: bool = field(default=True, metadata={"help": "Mine VTM negatives by similarity."})
    contrastive_local_loss: bool = field(
        default=False,
        metadata={"help": "Each rank computes only its rows of the gathered contrastive loss (open_clip "
                  "--local-loss; same gradients, less compute)."},
    )
    freeze_vision: bool = field(default=False, metadata={"help": "Freeze the vision tower (post-pretraining)."})
    freeze_text: bool = field(default=False, metadata={"help": "Freeze the text / fusion tower."})
    freeze_text_encoder: bool = field(
        default=False,
        metadata={"help": "Freeze only the text-only part of the text tower (word embeddings and the layers before "
                  "the fusion layers; a locked pretrained text encoder): fusion layers and MLM head still train."},
    )
    freeze_text_projection: bool = field(default=False, metadata={"help": "Freeze the text projection."})
    whiten_text_projection: int = field(
        default=0,
        metadata={"help": "When the trainer is built, set the text projection to the PCA whitening of the training "
                  "captions' text features with this many components (internvideo2.trainers.text_whitening; use with "
                  "--freeze_text_encoder --freeze_text_projection). 0: keep the projection as built."},
    )
    freeze_audio: bool = field(default=True, metadata={"help": "Freeze the audio tower (official 6B)."})
    unfreeze: list[str] = field(
        default_factory=list,
        metadata={"help": "Regular expressions of parameter names to train even when their tower is frozen, e.g. "
                  "'vision_model\\.pooler\\.'."},
    )
    text_encoder_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the text encoder's text-only part (word embeddings and the layers before "
                  "the fusion layers), e.g. a pretrained BERT fine-tuned more gently than new layers trained from "
                  "scratch; the schedule scales it like --learning_rate. Default: --learning_rate."},
    )
    teacher_model_name_or_path: str | None = field(
        default=None, metadata={"help": "InternVideo2VisionModel folder used as the UTA teacher."}
    )

    def __post_init__(self):
        for name in ("video_mask_ratio", "image_mask_ratio", "mlm_probability"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.whiten_text_projection < 0:
            raise ValueError(f"whiten_text_projection must be >= 0, got {self.whiten_text_projection}")
        if self.text_encoder_learning_rate is not None and self.text_encoder_learning_rate < 0:
            raise ValueError(f"text_encoder_learning_rate must be >= 0, got {self.text_encoder_learning_rate}")
        for name in self.loss_weights:
            if self.loss_weights[name] < 0:
                raise ValueError(f"{name}_weight must be >= 0, got {self.loss_weights[name]}")

    @property
    def loss_weights(self) -> dict[str, float]:
        """Loss name -> weight."""
        names = ("vtc", "vtm", "mlm", "avtc", "avtm", "avmlm", "uta")
        return {name: float(getattr(self, f"{name}_weight")) for name in names}


@dataclass
class InternVideo2ClipArguments:
    """InternVideo2-CLIP training (`--model_type clip`, spec §4): VTC only, the vision attention pool trainable.

    The Stage-2 loss weights, masking and freezing options do not apply to CLIP training; `contrastive_local_loss`
    does.
    """

    clip_train_text_projection: bool = field(default=False, metadata={"help": "Also train the text projection."})
    clip_text_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters on the text tower (peft)."})
    clip_lora_r: int = field(default=16, metadata={"help": "LoRA rank (official 16)."})
    clip_lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (official 32)."})
    clip_lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout (official 0.1)."})
    clip_lora_target_modules: list[str] = field(
        default_factory=list,
        metadata={"help": "Text-tower module names for LoRA (default: peft's defaults for the text model type)."},
    )


__all__ = [
    "InternVideo2ClipArguments",
    "InternVideo2DataArguments",
    "InternVideo2ModelArguments",
    "InternVideo2Stage2Arguments",
    "parse_ratios",
]
