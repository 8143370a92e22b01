"""Video classification fine-tuning and probing with the Hugging Face `Trainer` (spec §6.1–6.2, official
`single_modality/run_finetuning.py` recipe).

- Layer-wise learning-rate decay: embeddings (patch embedding, cls token, position tables) are layer 0, block i is
  layer i + 1, everything after the blocks (attention pool, probe, norm, classifier) is layer depth + 1; the
  learning rate of layer l is `lr · layer_decay^(depth + 1 − l)`. No weight decay on position tables, the cls token,
  biases and other 1-D parameters (norms, LayerScale).
- Mixup (α 0.8) / CutMix (α 1.0) on whole clips with label smoothing (0.1) folded into the soft targets, as timm's
  `Mixup(mode="batch")` that the official code uses.
- Linear probing (frozen encoder and pool, train the head) and attentive probing (frozen encoder, train the pool, the
  probe MLP and the head).
- Multi-view evaluation: batches of `(batch, views, frames, 3, H, W)` (clips × crops, e.g. the processor's
  `finetune_test` preset) are scored by averaging the softmax over the views.

Command line (see `python -m internvideo2.trainers.finetune --help`):

    python -m internvideo2.trainers.finetune --model_name_or_path stage1_out/ --labels_file labels.txt \
        --train_files train.csv --eval_file val.csv --data_root videos/ --num_frames 8 --output_dir out/ \
        --layer_decay 0.9 --mixup 0.8 --cutmix 1.0 --label_smoothing_factor 0.1 --num_test_clips 4 \
        --num_test_crops 3 --bf16 --eval_strategy epoch
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed

from ..configuration_vision import InternVideo2VisionConfig
from ..data.collators import InternVideo2VideoCollator
from ..data.datasets import InternVideo2MediaTransform, load_classification_csv
from ..eval import load_metric
from ..modeling_vision import InternVideo2ForVideoClassification
from ..processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from .arguments import InternVideo2DataArguments
from .model_card import write_model_card
from .running import train_and_evaluate

PROBE_MODES = ("none", "linear", "attentive")
_NO_DECAY_NAMES = (
    "cls_token",
    "position_embeddings",
    "image_position_embeddings",
    "clip_position_embeddings",
    "clip_image_position_embeddings",
    "mae_position_embeddings",
)


def parameter_layer_id(name: str, num_layers: int) -> int:
    """Layer id of a parameter for layer-wise lr decay: 0 for the embeddings, i + 1 for block i, num_layers + 1 for
    everything after the blocks (official `get_num_layer_for_vit`)."""
    block = re.search(r"(?:^|\.)encoder\.layers\.(\d+)\.", name)
    if block:
        return int(block.group(1)) + 1
    if re.search(r"(?:^|\.)embeddings\.", name):
        return 0
    return num_layers + 1


def layer_decay_parameter_groups(
    model: nn.Module, learning_rate: float, weight_decay: float, layer_decay: float = 1.0
) -> list[dict]:
    """Optimizer parameter groups with layer-wise lr decay and the official weight-decay exclusions.

    Args:
        model: an InternVideo2 model whose blocks are named `...encoder.layers.<i>.` and embeddings `...embeddings.`
            (`InternVideo2ForVideoClassification`, `InternVideo2VisionModel`, `InternVideo2ForPreTraining`).
        learning_rate: the base (top-layer) learning rate.
        weight_decay: weight decay of the parameters that take it.
        layer_decay: per-layer lr factor in (0, 1]; 1 gives every layer the base rate.

    Returns:
        one group per (layer, decay / no decay) with `params`, `lr`, `weight_decay`, and `layer_id` (for logging);
        frozen parameters are left out.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    config = model.config
    num_layers = getattr(config, "vision_config", config).num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        layer_id = parameter_layer_id(name, num_layers)
        decays = parameter.ndim > 1 and not name.endswith(".bias") and name.rsplit(".", 1)[-1] not in _NO_DECAY_NAMES
        group = groups.setdefault(
            (layer_id, decays),
            {
                "params": [],
                "lr": learning_rate * layer_decay ** (num_layers + 1 - layer_id),
                "weight_decay": weight_decay if decays else 0.0,
                "layer_id": layer_id,
            },
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


def smoothed_one_hot(labels: torch.Tensor, num_labels: int, smoothing: float = 0.0) -> torch.Tensor:
    """`(1 − smoothing)` on the label plus `smoothing / num_labels` everywhere (timm / torch label smoothing)."""
    off_value = smoothing / num_labels
    targets = torch.full((labels.shape[0], num_labels), off_value, device=labels.device)
    return targets.scatter_(1, labels.view(-1, 1), 1.0 - smoothing + off_value)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of `−Σ targets · log_softmax(logits)`."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def check_labels(labels: torch.Tensor, num_labels: int) -> None:
    """One-line error for labels outside `[0, num_labels)`."""
    if labels.is_floating_point() or labels.ndim != 1:
        raise TypeError(
            f"labels must be a 1-D integer tensor of class indices, got {labels.dtype} {tuple(labels.shape)}"
        )
    outside = labels[(labels < 0) | (labels >= num_labels)]
    if outside.numel():
        raise ValueError(f"label {outside[0].item()} is outside the label set [0, {num_labels})")


class InternVideo2TransformEpochCallback(TrainerCallback):
    """Gives the epoch to the training set's `InternVideo2MediaTransform` (`set_epoch`) before each epoch, so that
    frame sampling and crops change between epochs."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if isinstance(self.dataset, datasets.Dataset):
            transform = self.dataset.format.get("format_kwargs", {}).get("transform")
            if hasattr(transform, "set_epoch"):
                transform.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class InternVideo2Mixup:
    """Mixup / CutMix for video batches `(batch, frames, channels, height, width)` with soft, smoothed targets.

    Batch mode, as timm's `Mixup` in the official fine-tuning: with probability `prob` the whole batch is mixed with
    its reverse; CutMix (one box for all frames, λ corrected to the box area) is chosen with probability `switch_prob`
    when both α are positive; λ ~ Beta(α, α). Targets are `λ · smooth(y) + (1 − λ) · smooth(flip(y))`.

    Args:
        num_labels: number of classes.
        mixup_alpha: Beta parameter of mixup (0 disables it); official 0.8.
        cutmix_alpha: Beta parameter of CutMix (0 disables it); official 1.0.
        prob: probability of mixing a batch at all.
        switch_prob: probability of CutMix instead of mixup when both are enabled.
        label_smoothing: folded into the targets (official 0.1).
        seed: seed of the draws.
    """

    def __init__(
        self,
        num_labels: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        seed: int | None = None,
    ):
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name, value in (("prob", prob), ("switch_prob", switch_prob), ("label_smoothing", label_smoothing)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.num_labels, self.label_smoothing = num_labels, label_smoothing
        self.mixup_alpha, self.cutmix_alpha, self.prob, self.switch_prob = mixup_alpha, cutmix_alpha, prob, switch_prob
        self.rng = np.random.default_rng(seed)

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def sample(self, height: int, width: int) -> tuple[float, tuple[int, int, int, int] | None]:
        """Draw `(λ, box)` for one batch; `box = (top, bottom, left, right)` for CutMix (λ already corrected to the
        kept area), None for mixup (or no mixing, λ = 1)."""
        if not self.enabled or self.rng.random() >= self.prob:
            return 1.0, None
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or self.rng.random() < self.switch_prob)
        lam = float(self.rng.beta(*(2 * [self.cutmix_alpha if use_cutmix else self.mixup_alpha])))
        if not use_cutmix:
            return lam, None
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        center_y, center_x = int(self.rng.integers(height)), int(self.rng.integers(width))
        top, bottom = np.clip([center_y - cut_h // 2, center_y + cut_h // 2], 0, height)
        left, right = np.clip([center_x - cut_w // 2, center_x + cut_w // 2], 0, width)
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return float(lam), (int(top), int(bottom), int(left), int(right))

    def apply(
        self, videos: torch.Tensor, labels: torch.Tensor, lam: float, box: tuple[int, int, int, int] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix `videos` with their reverse for a given draw; returns new videos and soft targets."""
        flipped = videos.flip(0)
        if box is None:
            mixed = videos * lam + flipped * (1.0 - lam)
        else:
            top, bottom, left, right = box
            mixed = videos.clone()
            mixed[..., top:bottom, left:right] = flipped[..., top:bottom, left:right]
        targets = smoothed_one_hot(labels, self.num_labels, self.label_smoothing)
        return mixed, targets * lam + targets.flip(0) * (1.0 - lam)

    def __call__(self, videos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam, box = self.sample(videos.shape[-2], videos.shape[-1])
        return self.apply(videos, labels, lam, box)


@torch.no_grad()
def multi_view_probabilities(model: nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
    """Class probabilities of `(batch, views, frames, 3, H, W)` clips (or `(batch, frames, 3, H, W)`, one view):
    the softmax of every view's logits, averaged over the views (official multi-view testing)."""
    if pixel_values_videos.ndim == 5:
        pixel_values_videos = pixel_values_videos.unsqueeze(1)
    if pixel_values_videos.ndim != 6:
        raise ValueError(
            "pixel_values_videos must be (batch, views, frames, channels, height, width) or (batch, frames, channels, "
            f"height, width), got {tuple(pixel_values_videos.shape)}"
        )
    batch_size, num_views = pixel_values_videos.shape[:2]
    logits = model(pixel_values_videos=pixel_values_videos.flatten(0, 1)).logits
    return logits.float().softmax(dim=-1).unflatten(0, (batch_size, num_views)).mean(dim=1)


def prepare_probing(model: InternVideo2ForVideoClassification, probe: str) -> None:
    """Freeze the encoder for probing: "linear" trains the head (probe MLP, norm, classifier); "attentive" also the
    attention pool (build the model with `use_attentive_probe=True` for the official attentive probe); "none" trains
    everything."""
    if probe not in PROBE_MODES:
        raise ValueError(f"probe must be one of {PROBE_MODES}, got {probe!r}")
    if probe == "attentive" and not model.config.use_attentive_probe:
        raise ValueError("attentive probing needs a model built with use_attentive_probe=True")
    if probe != "none":
        model.freeze_backbone(train_pooler=probe == "attentive")


class InternVideo2VideoClassificationTrainer(Trainer):
    """`Trainer` for fine-tuning / probing `InternVideo2ForVideoClassification`.

    Adds to the standard Trainer: layer-wise lr decay (`layer_decay`), mixup / CutMix (`mixup`), label smoothing from
    `TrainingArguments.label_smoothing_factor` (folded into the mixup targets when mixup is on), a one-line error for
    labels outside the label set, multi-view evaluation (predictions are view-averaged probabilities) and a model card
    written with `internvideo2.trainers.model_card` on `save`/`push_to_hub` (pass the video processor as
    `processing_class` so it is saved too).

    Args:
        layer_decay: per-layer learning-rate factor (official fine-tuning uses values in 0.75–0.9); 1 disables it.
        mixup: an `InternVideo2Mixup`, or None.
        model_card_kwargs: extra `write_model_card` arguments (e.g. `base_model`, `dataset_name`, `license`).
        **kwargs: the `Trainer` arguments.
    """

    # compute_loss returns a per-batch mean: the Trainer divides it by the gradient accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        layer_decay: float = 1.0,
        mixup: InternVideo2Mixup | None = None,
        model_card_kwargs: dict | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not 0.0 < layer_decay <= 1.0:
            raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
        self.layer_decay, self.mixup = layer_decay, mixup
        self.model_card_kwargs = dict(model_card_kwargs or {})
        self.add_callback(InternVideo2TransformEpochCallback(self.train_dataset))

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = layer_decay_parameter_groups(
                opt_model, self.args.learning_rate, self.args.weight_decay, self.layer_decay
            )
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs or self.get_optimizer_cls_and_kwargs(
                self.args, opt_model
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer(model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, videos = inputs["labels"], inputs["pixel_values_videos"]
        num_labels = self.accelerator.unwrap_model(model).config.num_labels
        check_labels(labels, num_labels)
        smoothing = self.args.label_smoothing_factor
        if model.training and self.mixup is not None:
            videos, targets = self.mixup(videos, labels)
        else:
            targets = smoothed_one_hot(labels, num_labels, smoothing if model.training else 0.0)
        outputs = model(pixel_values_videos=videos)
        loss = soft_target_cross_entropy(outputs.logits, targets)
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Scores single- or multi-view batches: predictions are the view-averaged class probabilities and the loss
        is their negative log-likelihood."""
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        with self.compute_loss_context_manager():
            probabilities = multi_view_probabilities(model, inputs["pixel_values_videos"])
        loss = None
        if labels is not None:
            check_labels(labels, probabilities.shape[-1])
            loss = F.nll_loss(probabilities.clamp_min(1e-12).log(), labels)
        if prediction_loss_only:
            return loss, None, None
        return loss, probabilities, labels

    def create_model_card(self, model_name: str | None = None, **kwargs) -> None:
        if not self.is_world_process_zero():
            return
        metrics = next(
            (
                {k: v for k, v in entry.items() if k.startswith("eval_")}
                for entry in reversed(self.state.log_history)
                if any(k.startswith("eval_") for k in entry)
            ),
            None,
        )
        card_kwargs = {**self.model_card_kwargs, **kwargs}
        hyperparameters = {"layer_decay": self.layer_decay}
        if self.mixup is not None:
            hyperparameters.update(
                mixup_alpha=self.mixup.mixup_alpha, cutmix_alpha=self.mixup.cutmix_alpha, mixup_prob=self.mixup.prob
            )
        hyperparameters.update(card_kwargs.pop("hyperparameters", None) or {})
        write_model_card(
            self.args.output_dir,
            self.accelerator.unwrap_model(self.model),
            model_name=model_name,
            repo_id=self.hub_model_id or self.args.hub_model_id or self.args.output_dir,
            training_args=self.args,
            metrics=metrics,
            hyperparameters=hyperparameters,
            **card_kwargs,
        )


class InternVideo2ClassificationMetrics:
    """`compute_metrics` for the Trainer: top-1 / top-5 and mean-class accuracy of the (view-averaged) class scores,
    from the package's `topk_accuracy` metric module (loaded offline)."""

    def __init__(self, k: Sequence[int] = (1, 5)):
        self.k = tuple(k)
        self.metric = load_metric("topk_accuracy")

    def __call__(self, eval_prediction) -> dict[str, float]:
        scores = np.asarray(eval_prediction.predictions)
        k = [cutoff for cutoff in self.k if cutoff <= scores.shape[-1]]
        return self.metric.compute(predictions=scores.tolist(), references=np.asarray(eval_prediction.label_ids), k=k)


# ------------------------------------------------------------------------------------------------- command line


@dataclass
class InternVideo2FinetuneArguments:
    """Model, label set, probing and regularisation of fine-tuning (defaults follow the official recipe)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Saved InternVideo2 model to start from: a Stage-1 (InternVideo2ForPreTraining), vision "
                  "encoder or classifier folder. Without it a new encoder is built from --vision_preset."},
    )
    vision_preset: str = field(default="B/14", metadata={"help": "Size of a new encoder: S/14, B/14, L/14, 1B, 6B."})
    vision_config_overrides: str | None = field(
        default=None, metadata={"help": "JSON object of InternVideo2VisionConfig fields overriding the encoder's."}
    )
    labels_file: str | None = field(
        default=None, metadata={"help": "Text file with one class name per line (line i = label i)."}
    )
    probe: str = field(
        default="none",
        metadata={"help": "'none' (full fine-tuning), 'linear' (train the head) or 'attentive' (train the attention "
                  "pool, the probe MLP and the head)."},
    )
    layer_decay: float = field(default=1.0, metadata={"help": "Layer-wise learning-rate decay (1 = off)."})
    drop_path_rate: float | None = field(default=None, metadata={"help": "Stochastic depth (official S/B/L: 0.1)."})
    mixup: float = field(default=0.8, metadata={"help": "Mixup alpha (0 = off)."})
    cutmix: float = field(default=1.0, metadata={"help": "CutMix alpha (0 = off)."})
    mixup_prob: float = field(default=1.0, metadata={"help": "Probability of mixing a batch."})
    mixup_switch_prob: float = field(default=0.5, metadata={"help": "Probability of CutMix when both are on."})
    num_test_clips: int = field(default=1, metadata={"help": "Temporal views per evaluation video (official 4)."})
    num_test_crops: int = field(default=1, metadata={"help": "Spatial views per evaluation video (official 3)."})

    def __post_init__(self):
        if self.probe not in PROBE_MODES:
            raise ValueError(f"probe must be one of {PROBE_MODES}, got {self.probe!r}")
        if not self.labels_file:
            raise ValueError("--labels_file is required (one class name per line)")
        if self.num_test_clips < 1 or self.num_test_crops < 1:
            raise ValueError("num_test_clips and num_test_crops must be >= 1")


def read_labels(path: str) -> list[str]:
    """Class names, one per line (line i = label i)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labels_file not found: {path}")
    with open(path) as handle:
        names = [line.strip() for line in handle if line.strip()]
    if not names:
        raise ValueError(f"labels_file {path} has no class names")
    return names


def build_classifier(
    finetune_args: InternVideo2FinetuneArguments, data_args: InternVideo2DataArguments, label_names: Sequence[str]
) -> InternVideo2ForVideoClassification:
    """The classifier for `label_names`: a new one at the data's frame count and size, or one whose encoder comes
    from a saved Stage-1 / vision / classifier folder (a classification head of another size is re-initialised)."""
    id2label = dict(enumerate(label_names))
    fields = dict(
        json.loads(finetune_args.vision_config_overrides or "{}"),
        num_labels=len(label_names),
        id2label=id2label,
        label2id={name: index for index, name in id2label.items()},
        use_attentive_probe=finetune_args.probe == "attentive",
    )
    if finetune_args.drop_path_rate is not None:
        fields["drop_path_rate"] = finetune_args.drop_path_rate
    if finetune_args.model_name_or_path is None:
        geometry = dict(num_frames=data_args.num_frames, image_size=data_args.image_size)
        model = InternVideo2ForVideoClassification(
            InternVideo2VisionConfig.from_preset(finetune_args.vision_preset, **geometry, **fields)
        )
    else:
        # A saved model keeps its position table; inputs of another frame count or size are interpolated on the fly.
        # Stage-1 folders hold the encoder config as their `vision_config`, which from_pretrained reads.
        config = InternVideo2VisionConfig.from_pretrained(finetune_args.model_name_or_path, **fields)
        model = InternVideo2ForVideoClassification.from_pretrained(
            finetune_args.model_name_or_path, config=config, ignore_mismatched_sizes=True
        )
    prepare_probing(model, finetune_args.probe)
    return model


def build_classification_datasets(
    finetune_args: InternVideo2FinetuneArguments, data_args: InternVideo2DataArguments, num_labels: int, seed: int = 0
):
    """(train, eval, test processor): fine-tuning CSV lists (`path,label`) with the decoding transforms set.
    Training: one random frame per segment, random resized crop (area 8-100%) and flips; evaluation: the official
    multi-view test (`num_test_clips` sparse clips x `num_test_crops` crops of the short-side-resized frames)."""
    size = data_args.image_size
    train_processor = InternVideo2VideoProcessor(
        preset="stage2_train", num_frames=data_args.num_frames, size={"height": size, "width": size},
        crop_scale=[0.08, 1.0],
    )
    test_processor = InternVideo2VideoProcessor(
        preset="finetune_test", num_frames=data_args.num_frames, num_clips=finetune_args.num_test_clips,
        num_crops=finetune_args.num_test_crops, size={"shortest_edge": size}, crop_size={"height": size, "width": size},
        do_center_crop=True,
    )
    train = None
    if data_args.train_files:
        raw = datasets.concatenate_datasets(
            [
                load_classification_csv(path, data_root=data_args.data_root, num_labels=num_labels)
                for path in data_args.train_files
            ]
        )
        raw = raw.map(lambda _, index: {"sample_id": index}, with_indices=True)
        train = raw.with_transform(
            InternVideo2MediaTransform(
                train_processor, training=True, seed=seed, max_skipped=data_args.max_skipped_media,
                replacement_dataset=raw,
            )
        )
    evaluation = None
    if data_args.eval_file:
        raw = load_classification_csv(data_args.eval_file, data_root=data_args.data_root, num_labels=num_labels)
        evaluation = raw.with_transform(
            InternVideo2MediaTransform(test_processor, seed=seed, max_skipped=data_args.max_skipped_media)
        )
    return train, evaluation, test_processor


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((InternVideo2FinetuneArguments, InternVideo2DataArguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fine-tunes / probes (with `--train_files`) and evaluates (with `--eval_file`); saves the model, the test
    video processor and a model card, and pushes them with `--push_to_hub`. Returns the metrics."""
    finetune_args, data_args, training_args = parse_args(argv)
    training_args.remove_unused_columns = False  # the media transform needs the annotation columns
    set_seed(training_args.seed)
    label_names = read_labels(finetune_args.labels_file)
    model = build_classifier(finetune_args, data_args, label_names)
    train_dataset, eval_dataset, test_processor = build_classification_datasets(
        finetune_args, data_args, len(label_names), seed=training_args.seed
    )
    if train_dataset is None and eval_dataset is None:
        raise ValueError("nothing to do: pass --train_files and / or --eval_file")
    mixup = InternVideo2Mixup(
        len(label_names), finetune_args.mixup, finetune_args.cutmix, finetune_args.mixup_prob,
        finetune_args.mixup_switch_prob, training_args.label_smoothing_factor, seed=training_args.seed,
    )
    trainer = InternVideo2VideoClassificationTrainer(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        data_collator=InternVideo2VideoCollator(), processing_class=test_processor,
        compute_metrics=InternVideo2ClassificationMetrics(), layer_decay=finetune_args.layer_decay,
        mixup=mixup if mixup.enabled else None,
        model_card_kwargs={
            "base_model": finetune_args.model_name_or_path,
            "hyperparameters": {"probe": finetune_args.probe},
        },
    )
    return train_and_evaluate(trainer, training_args)


if __name__ == "__main__":
    main()


__all__ = [
    "PROBE_MODES",
    "InternVideo2ClassificationMetrics",
    "InternVideo2FinetuneArguments",
    "InternVideo2Mixup",
    "InternVideo2TransformEpochCallback",
    "InternVideo2VideoClassificationTrainer",
    "build_classification_datasets",
    "build_classifier",
    "check_labels",
    "layer_decay_parameter_groups",
    "main",
    "multi_view_probabilities",
    "parameter_layer_id",
    "parse_args",
    "prepare_probing",
    "read_labels",
    "smoothed_one_hot",
    "soft_target_cross_entropy",
]
