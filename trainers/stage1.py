"""Stage-1 unmasked-token distillation with the Hugging Face `Trainer` (spec §2).

`InternVideo2DistillationTrainer.compute_loss` runs the frozen teachers under `no_grad`, masks the student's input
(attention-guided by the multimodal teacher, or tube / random), runs `InternVideo2ForPreTraining` on the visible tokens
and returns `Σ ratio · (2 − 2·cos)` over the components `clip_middle` (teacher layers), `clip_final` (teacher final
embedding) and `mae` (motion-teacher layers). Each component is logged as `loss_<name>` (`eval_loss_<name>` in
evaluation).

The teachers are adapters from `internvideo2.teachers`. They are attributes of the trainer, never submodules of the
trained model, so the optimizer, ZeRO and checkpoints only see the student; like TRL's `GKDTrainer`, they are prepared
for inference with DeepSpeed (ZeRO-3 shards them, other stages replicate them) or with accelerate
(`prepare_model(..., evaluation_mode=True)`).

Command line (see `python -m internvideo2.trainers.stage1 --help`):

    python -m internvideo2.trainers.stage1 --student_preset 1B --multimodal_teacher internvit_6b/ \
        --multimodal_teacher_layers 42 43 44 45 46 47 --motion_teacher videomae_g/ --motion_teacher_layers 36 37 38 39 \
        --train_files train.csv --data_root videos/ --num_frames 16 --output_dir out/ --bf16 \
        --gradient_checkpointing --per_device_train_batch_size 32 --learning_rate 2.4e-3
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import datasets
import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoModel, HfArgumentParser, Trainer, TrainingArguments, set_seed
from transformers.trainer_pt_utils import nested_gather

from ..configuration_vision import InternVideo2VisionConfig
from ..data.collators import InternVideo2VideoCollator
from ..data.datasets import InternVideo2MediaTransform, load_stage1_csv
from ..losses import InternVideo2DistillationLoss
from ..masking import (
    attention_guided_token_mask,
    prepend_cls_to_mask,
    random_token_mask,
    select_visible_tokens,
    tube_token_mask,
)
from ..modeling_pretraining import PRETRAINING_PRESETS, InternVideo2ForPreTraining, InternVideo2PreTrainingConfig
from ..modeling_vision import InternVideo2VisionModel
from ..processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from ..teachers import (
    InternVideo2EncoderTeacher,
    InternVideo2ImageTeacher,
    InternVideo2Teacher,
    InternVideo2TeacherOutput,
    InternVideo2VideoTeacher,
)
from .arguments import InternVideo2DataArguments
from .running import train_and_evaluate
from .finetune import InternVideo2TransformEpochCallback, layer_decay_parameter_groups
from .model_card import write_model_card

MASK_TYPES = ("attention", "tube", "random")


def prepare_teacher_for_deepspeed(teacher: nn.Module, accelerator):
    """Wrap a frozen teacher in an inference-only DeepSpeed engine built from the trainer's DeepSpeed config (the TRL
    `prepare_deepspeed` recipe): under ZeRO-3 the teacher is sharded like the student, otherwise it is replicated
    (stage 0). No optimizer or scheduler is attached."""
    import deepspeed

    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    for key in ("optimizer", "scheduler"):
        config.pop(key, None)
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage", 0) == 3:
        hidden = teacher.hidden_size
        sizes = {
            "reduce_bucket_size": hidden * hidden,
            "stage3_param_persistence_threshold": 10 * hidden,
            "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
        }
        zero.update({key: value for key, value in sizes.items() if zero.get(key, "auto") == "auto"})
    else:
        config["zero_optimization"] = {"stage": 0}
    engine, *_ = deepspeed.initialize(model=teacher, config=config)
    engine.eval()
    return engine


class InternVideo2DistillationTrainer(Trainer):
    """`Trainer` for Stage-1 distillation (and the S/B/L distillation from a Stage-2 encoder).

    Args:
        model: the student, an `InternVideo2ForPreTraining`.
        args: `TrainingArguments` (gradient accumulation, bf16, gradient checkpointing, DeepSpeed are used as usual).
        multimodal_teacher: adapter whose layers match `config.clip_num_return_layers` and whose width is
            `config.clip_teacher_hidden_size`; gives the final embedding and (for attention masks) the attention map.
            Stage 1: `InternVideo2ImageTeacher`; S/B/L distillation: `InternVideo2EncoderTeacher`.
        motion_teacher: `InternVideo2VideoTeacher` matching `config.mae_num_return_layers` (Stage 1); required exactly
            when the student has motion decoders. It sees all input frames; the student and the multimodal teacher
            see every `motion_teacher.frames_per_token`-th frame.
        mask_type: "attention" (visible tokens drawn ∝ the multimodal teacher's attention; per frame for a
            `(batch, frames, patches)` map, jointly for a `(batch, patches)` map), "tube" or "random".
        mask_ratio: fraction of patch tokens hidden from the student (official 0.8); the cls token is never masked.
        clip_loss_ratio: weights of the `clip_middle` and `clip_final` components (official 1, 1).
        mae_loss_ratio: weight of the `mae` component (official 1).
        **kwargs: the other `Trainer` arguments (datasets, data collator, callbacks, ...). Batches must hold
            `pixel_values_videos` of shape `(batch, frames, 3, height, width)`.
    """

    # compute_loss returns a per-batch mean: the Trainer divides it by the gradient accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: InternVideo2ForPreTraining,
        args: TrainingArguments,
        multimodal_teacher: InternVideo2Teacher,
        motion_teacher: InternVideo2Teacher | None = None,
        mask_type: str = "attention",
        mask_ratio: float = 0.8,
        clip_loss_ratio: tuple[float, float] = (1.0, 1.0),
        mae_loss_ratio: float = 1.0,
        **kwargs,
    ):
        _check_setup(model, multimodal_teacher, motion_teacher, mask_type, mask_ratio, clip_loss_ratio)
        super().__init__(model=model, args=args, **kwargs)
        self.mask_type, self.mask_ratio = mask_type, mask_ratio
        self.frame_stride = motion_teacher.frames_per_token if motion_teacher is not None else 1
        ratios = {"clip_middle": clip_loss_ratio[0], "clip_final": clip_loss_ratio[1], "mae": mae_loss_ratio}
        self.distillation_loss = InternVideo2DistillationLoss(ratios)
        self.multimodal_teacher, self.motion_teacher = multimodal_teacher, motion_teacher
        self._run_multimodal_teacher = self._prepare_teacher(multimodal_teacher)
        self._run_motion_teacher = self._prepare_teacher(motion_teacher) if motion_teacher is not None else None
        self._component_sums: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
        self._component_counts: dict[str, int] = defaultdict(int)
        self._eval_mask_generator: torch.Generator | None = None
        self.add_callback(InternVideo2TransformEpochCallback(self.train_dataset))

    def create_optimizer(self, model=None):
        """The official weight-decay exclusions: no decay on position tables (encoder and decoders), the cls token,
        biases, norms and LayerScale."""
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = layer_decay_parameter_groups(opt_model, self.args.learning_rate, self.args.weight_decay)
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs or self.get_optimizer_cls_and_kwargs(
                self.args, opt_model
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer(model)

    def _prepare_teacher(self, teacher: InternVideo2Teacher):
        if self.is_deepspeed_enabled:
            return prepare_teacher_for_deepspeed(teacher, self.accelerator)
        return self.accelerator.prepare_model(teacher, evaluation_mode=True)

    def draw_mask(self, attention: torch.Tensor | None, batch_size: int, num_frames: int, patches_per_frame: int):
        """(batch, num_frames · patches_per_frame) bool patch mask of the configured type (True = hidden)."""
        device = self.args.device
        generator = None if self.model.training else self._eval_mask_generator
        if self.mask_type == "attention":
            num_patches = num_frames * patches_per_frame
            if attention is None or attention.shape[0] != batch_size or attention[0].numel() != num_patches:
                shape = None if attention is None else tuple(attention.shape)
                raise ValueError(
                    f"attention masking needs a teacher attention map over the student's {num_patches} patch tokens "
                    f"per clip, got {shape}"
                )
            return attention_guided_token_mask(attention.float(), self.mask_ratio, generator=generator).to(device)
        if self.mask_type == "tube":
            mask = tube_token_mask(batch_size, num_frames, patches_per_frame, self.mask_ratio, generator=generator)
        else:
            mask = random_token_mask(batch_size, num_frames * patches_per_frame, self.mask_ratio, generator=generator)
        return mask.to(device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        videos = inputs["pixel_values_videos"]
        student_videos = videos[:, :: self.frame_stride]
        with torch.no_grad():
            clip_targets: InternVideo2TeacherOutput = self._run_multimodal_teacher(student_videos)
            motion_targets = self._run_motion_teacher(videos) if self._run_motion_teacher is not None else None

        vision = self.accelerator.unwrap_model(model).config.vision_config
        num_frames = student_videos.shape[1] // vision.tubelet_size
        patches_per_frame = (student_videos.shape[-1] // vision.patch_size) ** 2
        patch_mask = self.draw_mask(clip_targets.attention, videos.shape[0], num_frames, patches_per_frame)
        outputs = model(pixel_values_videos=student_videos, bool_masked_pos=patch_mask)

        token_mask = prepend_cls_to_mask(patch_mask)
        student = {"clip_middle": outputs.clip_hidden_states, "clip_final": outputs.clip_embeds}
        teacher = {
            "clip_middle": _visible(clip_targets.hidden_states, token_mask, "multimodal", student["clip_middle"]),
            "clip_final": clip_targets.final_embeds,
        }
        if motion_targets is not None:
            student["mae"] = outputs.mae_hidden_states
            teacher["mae"] = _visible(motion_targets.hidden_states, patch_mask, "motion", student["mae"])
        _check_targets(student, teacher)
        result = self.distillation_loss(
            {k: v.float() for k, v in student.items()}, {k: v.float() for k, v in teacher.items()}
        )
        self._track_components(result.component_losses, training=model.training)
        return (result.loss, outputs) if return_outputs else result.loss

    def _track_components(self, components: Mapping[str, torch.Tensor], training: bool) -> None:
        prefix = "" if training else "eval_"
        sums = self._component_sums[prefix]
        for name, value in components.items():
            sums[name] = sums.get(name, 0.0) + value.detach()
        self._component_counts[prefix] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean of each loss component since the last log (`loss_<name>` / `eval_loss_<name>`)."""
        prefix = "eval_" if any(key.startswith("eval_") for key in logs) else ""
        count = self._component_counts.pop(prefix, 0)
        for name, total in self._component_sums.pop(prefix, {}).items():
            logs[f"{prefix}loss_{name}"] = round(nested_gather(total / count, self.args.parallel_mode).mean().item(), 6)
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation computes the distillation loss only (there are no predictions to compare)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def evaluation_loop(self, *args, **kwargs):
        # Evaluation draws its masks from a fixed seed, so that evaluation losses are comparable across calls.
        self._eval_mask_generator = torch.Generator().manual_seed(self.args.seed)
        return super().evaluation_loop(*args, **kwargs)


    def create_model_card(self, model_name: str | None = None, **kwargs) -> None:
        if not self.is_world_process_zero():
            return
        teachers = {"multimodal_teacher": type(self.multimodal_teacher.model).__name__}
        teachers["multimodal_teacher_layers"] = list(self.multimodal_teacher.layers)
        if self.motion_teacher is not None:
            teachers["motion_teacher"] = type(self.motion_teacher.model).__name__
            teachers["motion_teacher_layers"] = list(self.motion_teacher.layers)
        write_model_card(
            self.args.output_dir,
            self.accelerator.unwrap_model(self.model),
            model_name=model_name,
            repo_id=self.hub_model_id or self.args.hub_model_id or self.args.output_dir,
            training_args=self.args,
            hyperparameters={"mask_type": self.mask_type, "mask_ratio": self.mask_ratio, **teachers},
            tags=["distillation"],
            **kwargs,
        )


def _visible(hidden_states: torch.Tensor, mask: torch.Tensor, role: str, student: torch.Tensor) -> torch.Tensor:
    if hidden_states.shape[-2] != mask.shape[1]:
        raise ValueError(
            f"the {role} teacher returns {hidden_states.shape[-2]} tokens per clip but the student has {mask.shape[1]} "
            f"(student output {tuple(student.shape)}): the teacher's patch grid and frames must match the student's"
        )
    return select_visible_tokens(hidden_states, mask.to(hidden_states.device))


def _check_targets(student: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor]) -> None:
    for name, value in student.items():
        if value.shape != teacher[name].shape:
            raise ValueError(
                f"teacher targets for {name} have shape {tuple(teacher[name].shape)} but the student produces "
                f"{tuple(value.shape)}: check the teacher's width against the student config"
            )


def _check_setup(model, multimodal_teacher, motion_teacher, mask_type, mask_ratio, clip_loss_ratio) -> None:
    if not isinstance(model, InternVideo2ForPreTraining):
        raise TypeError(f"model must be an InternVideo2ForPreTraining, got {type(model).__name__}")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    if len(clip_loss_ratio) != 2:
        raise ValueError(f"clip_loss_ratio must be (middle, final), got {clip_loss_ratio!r}")
    config = model.config
    checks = [("multimodal", multimodal_teacher, config.clip_num_return_layers, config.clip_teacher_hidden_size)]
    if (motion_teacher is None) != (config.mae_num_return_layers == 0):
        raise ValueError(
            f"the student has {config.mae_num_return_layers} motion decoders (mae_num_return_layers) but "
            f"motion_teacher is {'missing' if motion_teacher is None else 'given'}"
        )
    if motion_teacher is not None:
        checks.append(("motion", motion_teacher, config.mae_num_return_layers, config.mae_teacher_hidden_size))
    for role, teacher, num_layers, width in checks:
        if not isinstance(teacher, InternVideo2Teacher):
            raise TypeError(f"{role}_teacher must be an internvideo2.teachers adapter, got {type(teacher).__name__}")
        if len(teacher.layers) != num_layers:
            raise ValueError(
                f"{role}_teacher has {len(teacher.layers)} layers {list(teacher.layers)} but the student aligns "
                f"{num_layers} layers with it"
            )
        if teacher.hidden_size != width:
            raise ValueError(
                f"{role}_teacher has width {teacher.hidden_size} but the student's decoders output {width}"
            )
    if not multimodal_teacher.has_final_embeds:
        raise ValueError(f"multimodal_teacher ({type(multimodal_teacher).__name__}) gives no final embedding")
    if mask_type == "attention" and not multimodal_teacher.return_attention:
        raise ValueError(
            "mask_type='attention' needs a multimodal_teacher that returns attention; "
            f"{type(multimodal_teacher).__name__} does not (use return_attention=True, or mask_type 'tube' / 'random')"
        )


# ------------------------------------------------------------------------------------------------- command line


@dataclass
class InternVideo2Stage1Arguments:
    """Student, teachers, masking and loss weights of Stage-1 distillation (defaults: the official 1B recipe)."""

    student_model_name_or_path: str | None = field(
        default=None, metadata={"help": "A saved InternVideo2ForPreTraining folder to continue from."}
    )
    student_preset: str = field(
        default="1B", metadata={"help": f"Recipe of a new student: {', '.join(PRETRAINING_PRESETS)}."}
    )
    student_config_overrides: str | None = field(
        default=None,
        metadata={"help": "JSON object of InternVideo2VisionConfig fields overriding the preset's encoder, e.g. "
                  "'{\"num_hidden_layers\": 2, \"hidden_size\": 64}'."},
    )
    multimodal_teacher: str | None = field(
        default=None,
        metadata={"help": "Folder of the multimodal teacher: a Hugging Face image model run per frame (e.g. "
                  "CLIPVisionModelWithProjection), or an InternVideo2VisionModel (S/B/L distillation from a "
                  "Stage-2 encoder)."},
    )
    multimodal_teacher_layers: list[int] = field(
        default_factory=list,
        metadata={"help": "Teacher layers aligned with the student's last layers (official InternViT-6B: 42..47); "
                  "default for an InternVideo2 teacher: 39 - int(k * 3.34) for k < 6 (scaled to its depth)."},
    )
    multimodal_teacher_image_mean: list[float] = field(
        default_factory=list, metadata={"help": "Normalisation mean the image teacher expects (default: ImageNet)."}
    )
    multimodal_teacher_image_std: list[float] = field(
        default_factory=list, metadata={"help": "Normalisation std the image teacher expects (default: ImageNet)."}
    )
    motion_teacher: str | None = field(
        default=None,
        metadata={"help": "Folder of the motion teacher, a video model with tubelets (e.g. VideoMAEModel); it sees "
                  "all --num_frames frames, the student every tubelet_size-th."},
    )
    motion_teacher_layers: list[int] = field(
        default_factory=list, metadata={"help": "Motion-teacher layers (official VideoMAEv2-g: 36 37 38 39)."}
    )
    mask_type: str = field(default="attention", metadata={"help": f"One of {MASK_TYPES}."})
    mask_ratio: float = field(default=0.8, metadata={"help": "Fraction of patch tokens hidden from the student."})
    clip_loss_ratio: list[float] = field(
        default_factory=lambda: [1.0, 1.0],
        metadata={"help": "Weights of the teacher-layer and final-embedding losses."},
    )
    mae_loss_ratio: float = field(default=1.0, metadata={"help": "Weight of the motion-teacher loss."})

    def __post_init__(self):
        if not self.multimodal_teacher:
            raise ValueError("--multimodal_teacher is required (folder of a saved teacher model)")
        if self.student_model_name_or_path is None and self.student_preset not in PRETRAINING_PRESETS:
            raise ValueError(f"student_preset must be one of {tuple(PRETRAINING_PRESETS)}, got {self.student_preset!r}")
        if self.motion_teacher and not self.motion_teacher_layers:
            raise ValueError("--motion_teacher needs --motion_teacher_layers")


def load_teacher_model(path: str) -> nn.Module:
    """A saved teacher model: the class named in its config's `architectures` when transformers (or this package,
    through the Auto classes) has it, so projection heads such as `CLIPVisionModelWithProjection` are kept."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"teacher folder not found: {path}")
    config = AutoConfig.from_pretrained(path)
    architecture = (getattr(config, "architectures", None) or [None])[0]
    model_class = getattr(transformers, architecture, None) if architecture else None
    return (model_class or AutoModel).from_pretrained(path)


def build_teachers(stage1_args: InternVideo2Stage1Arguments) -> tuple[InternVideo2Teacher, InternVideo2Teacher | None]:
    """The teacher adapters named by the command line."""
    model = load_teacher_model(stage1_args.multimodal_teacher)
    layers = stage1_args.multimodal_teacher_layers or None
    if isinstance(model, InternVideo2VisionModel):
        multimodal = InternVideo2EncoderTeacher(model, layers)
    else:
        if layers is None:
            raise ValueError("--multimodal_teacher_layers is required for an image teacher")
        normalisation = {}
        if stage1_args.multimodal_teacher_image_mean or stage1_args.multimodal_teacher_image_std:
            normalisation = dict(
                image_mean=tuple(stage1_args.multimodal_teacher_image_mean),
                image_std=tuple(stage1_args.multimodal_teacher_image_std),
            )
        multimodal = InternVideo2ImageTeacher(
            model, layers, return_attention=stage1_args.mask_type == "attention", **normalisation
        )
    motion = None
    if stage1_args.motion_teacher:
        motion_model = load_teacher_model(stage1_args.motion_teacher)
        motion = InternVideo2VideoTeacher(motion_model, stage1_args.motion_teacher_layers)
    return multimodal, motion


@torch.no_grad()
def build_student(
    stage1_args: InternVideo2Stage1Arguments,
    data_args: InternVideo2DataArguments,
    multimodal_teacher: InternVideo2Teacher,
    motion_teacher: InternVideo2Teacher | None,
) -> InternVideo2ForPreTraining:
    """A new student for the teachers (decoder widths read from one teacher forward on a blank clip), or the saved
    one."""
    if stage1_args.student_model_name_or_path:
        return InternVideo2ForPreTraining.from_pretrained(stage1_args.student_model_name_or_path)
    stride = motion_teacher.frames_per_token if motion_teacher is not None else 1
    if data_args.num_frames % stride:
        raise ValueError(
            f"num_frames ({data_args.num_frames}) must be a multiple of the motion teacher's tubelet ({stride})"
        )
    preset = PRETRAINING_PRESETS[stage1_args.student_preset]
    overrides = json.loads(stage1_args.student_config_overrides or "{}")
    geometry = {"num_frames": data_args.num_frames // stride, "image_size": data_args.image_size}
    vision = InternVideo2VisionConfig(**{**preset["vision"], **overrides, **geometry})
    blank = torch.zeros(1, vision.num_frames, 3, vision.image_size, vision.image_size)
    targets = multimodal_teacher(blank)
    fields = dict(
        clip_teacher_hidden_size=targets.hidden_states.shape[-1],
        clip_teacher_final_size=targets.final_embeds.shape[-1],
        clip_num_return_layers=len(multimodal_teacher.layers),
        clip_decoder_type=preset["clip_decoder_type"],
        mae_num_return_layers=0,
    )
    if motion_teacher is not None:
        fields.update(
            mae_teacher_hidden_size=motion_teacher.hidden_size, mae_num_return_layers=len(motion_teacher.layers)
        )
    return InternVideo2ForPreTraining(InternVideo2PreTrainingConfig(vision_config=vision, **fields))


def stage1_video_processor(num_frames: int, image_size: int) -> InternVideo2VideoProcessor:
    """Training clips: one random frame per segment (TSN sampling) and a random crop of 44-100% of the area (the
    official GroupMultiScaleCrop uses side scales 1-0.66) with horizontal flips, at `image_size`."""
    return InternVideo2VideoProcessor(
        preset="stage2_train", num_frames=num_frames, size={"height": image_size, "width": image_size},
        crop_scale=[0.4356, 1.0],
    )


def build_stage1_datasets(data_args: InternVideo2DataArguments, seed: int = 0):
    """(train, eval) datasets of Stage-1 CSV lists (`source path total_time start_time end_time label`) with the
    decoding transform set; several training lists are concatenated."""
    processor = stage1_video_processor(data_args.num_frames, data_args.image_size)
    train = None
    if data_args.train_files:
        raw = datasets.concatenate_datasets(
            [load_stage1_csv(path, data_root=data_args.data_root) for path in data_args.train_files]
        )
        raw = raw.map(lambda _, index: {"sample_id": index}, with_indices=True)  # unique across lists
        train = raw.with_transform(
            InternVideo2MediaTransform(
                processor, training=True, seed=seed, max_skipped=data_args.max_skipped_media, replacement_dataset=raw
            )
        )
    evaluation = None
    if data_args.eval_file:
        raw = load_stage1_csv(data_args.eval_file, data_root=data_args.data_root)
        size = {"height": data_args.image_size, "width": data_args.image_size}
        test_processor = InternVideo2VideoProcessor(num_frames=data_args.num_frames, size=size)  # middle frames, resize
        evaluation = raw.with_transform(
            InternVideo2MediaTransform(test_processor, seed=seed, max_skipped=data_args.max_skipped_media)
        )
    return train, evaluation


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((InternVideo2Stage1Arguments, InternVideo2DataArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Distils (with `--train_files`, Stage-1 CSV lists) and evaluates (with `--eval_file`); returns the metrics."""
    stage1_args, data_args, training_args = parse_args(argv)
    training_args.remove_unused_columns = False  # the media transform needs the annotation columns
    set_seed(training_args.seed)
    multimodal_teacher, motion_teacher = build_teachers(stage1_args)
    model = build_student(stage1_args, data_args, multimodal_teacher, motion_teacher)
    train_dataset, eval_dataset = build_stage1_datasets(data_args, seed=training_args.seed)
    if train_dataset is None and eval_dataset is None:
        raise ValueError("nothing to do: pass --train_files and / or --eval_file")
    trainer = InternVideo2DistillationTrainer(
        model=model, args=training_args, multimodal_teacher=multimodal_teacher, motion_teacher=motion_teacher,
        mask_type=stage1_args.mask_type, mask_ratio=stage1_args.mask_ratio,
        clip_loss_ratio=tuple(stage1_args.clip_loss_ratio), mae_loss_ratio=stage1_args.mae_loss_ratio,
        train_dataset=train_dataset, eval_dataset=eval_dataset, data_collator=InternVideo2VideoCollator(),
    )
    return train_and_evaluate(trainer, training_args)


if __name__ == "__main__":
    main()


__all__ = [
    "MASK_TYPES",
    "InternVideo2DistillationTrainer",
    "InternVideo2Stage1Arguments",
    "build_stage1_datasets",
    "build_student",
    "build_teachers",
    "load_teacher_model",
    "main",
    "parse_args",
    "prepare_teacher_for_deepspeed",
    "stage1_video_processor",
]
