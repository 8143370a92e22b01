"""Model cards for models trained with the InternVideo2 trainers, written next to `save_pretrained` output (and
uploaded by `Trainer.push_to_hub`).

The card is a `huggingface_hub.ModelCard`: YAML metadata (library, pipeline tag, tags, base model, datasets, and a
model-index with the evaluation results when a dataset is named) followed by a description of the architecture, a
usage snippet, the label set, the training hyper-parameters and the evaluation results.
"""

import os
from pathlib import Path

import huggingface_hub
import torch
import transformers
from huggingface_hub import EvalResult, ModelCard, ModelCardData

_PIPELINE_TAGS = {"InternVideo2ForVideoClassification": "video-classification"}
_TASK_DESCRIPTIONS = {
    "InternVideo2ForVideoClassification": "fine-tuned for video classification",
    "InternVideo2ForPreTraining": "trained by Stage-1 unmasked-token distillation (encoder + alignment decoders)",
}
_USAGE = {
    "InternVideo2ForVideoClassification": """```python
import internvideo2  # registers the InternVideo2 classes with the transformers Auto API
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from transformers import AutoModelForVideoClassification

model = AutoModelForVideoClassification.from_pretrained("{repo}")
processor = InternVideo2VideoProcessor.from_pretrained("{repo}")  # the evaluation views (clips x crops)
inputs = processor(["video.mp4"], return_tensors="pt")
probabilities = model(**inputs).logits.softmax(-1).mean(0)  # averaged over the views
label = model.config.id2label[probabilities.argmax().item()]
```""",
    "InternVideo2ForPreTraining": """```python
from internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionModel

encoder = InternVideo2VisionModel.from_pretrained("{repo}")  # the distilled encoder (decoders are dropped)
classifier = InternVideo2ForVideoClassification.from_pretrained("{repo}", num_labels=400)  # to fine-tune
```""",
}
_TRAINING_FIELDS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "weight_decay",
    "lr_scheduler_type",
    "warmup_steps",
    "label_smoothing_factor",
    "optim",
    "bf16",
    "fp16",
    "gradient_checkpointing",
    "seed",
)


def build_model_card(
    model,
    *,
    model_name: str | None = None,
    repo_id: str | None = None,
    base_model: str | None = None,
    dataset_name: str | None = None,
    license: str | None = None,
    training_args=None,
    metrics: dict[str, float] | None = None,
    hyperparameters: dict | None = None,
    tags: list[str] | None = None,
) -> ModelCard:
    """A model card for a trained InternVideo2 model.

    Args:
        model: the trained model (its class and config describe the card).
        model_name: title of the card (default: the last part of `repo_id`, else the model class name).
        repo_id: Hub repository (or local folder) the usage snippet loads from (default: `model_name`).
        base_model: Hub id or path of the checkpoint training started from.
        dataset_name: training dataset; with `metrics` it also gives the model-index entry.
        license: SPDX-style license id.
        training_args: `TrainingArguments`; its main hyper-parameters are listed.
        metrics: evaluation results, e.g. `{"eval_top1": 0.8}`.
        hyperparameters: further hyper-parameters to list (layer decay, mixup, teachers, ...).
        tags: extra tags (always "internvideo2" and "video").
    """
    architecture = type(model).__name__
    config = getattr(model.config, "vision_config", model.config)
    name = model_name or (repo_id.rstrip("/").split("/")[-1] if repo_id else architecture)
    pipeline_tag = _PIPELINE_TAGS.get(architecture)
    metrics = {
        k: float(v)
        for k, v in (metrics or {}).items()
        if isinstance(v, (int, float)) and not k.endswith(("_runtime", "_per_second", "_preparation_time"))
    }
    eval_results = None
    if dataset_name and metrics and pipeline_tag:
        eval_results = [
            EvalResult(
                task_type=pipeline_tag,
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                metric_type=key.removeprefix("eval_"),
                metric_value=value,
            )
            for key, value in metrics.items()
            if key.removeprefix("eval_") != "loss"  # the model-index lists task metrics
        ]
    data = ModelCardData(
        model_name=name,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=sorted({"internvideo2", "video", *(tags or [])}),
        base_model=None if base_model is None or os.path.isdir(base_model) else base_model,  # Hub ids only
        datasets=[dataset_name] if dataset_name else None,
        license=license,
        eval_results=eval_results,
    )

    sections = [
        f"# {name}",
        f"InternVideo2 video encoder ({config.num_hidden_layers} layers, hidden size {config.hidden_size}, "
        f"{config.num_attention_heads} heads, {config.num_frames} frames of {config.image_size}x{config.image_size} "
        f"pixels, patch {config.patch_size}) {_TASK_DESCRIPTIONS.get(architecture, 'trained')}"
        + (f" from `{base_model}`" if base_model else "")
        + (f" on {dataset_name}" if dataset_name else "")
        + ".",
    ]
    if architecture in _USAGE:
        sections += ["## Usage", _USAGE[architecture].format(repo=repo_id or name)]
    id2label = getattr(model.config, "id2label", None) or {}
    if pipeline_tag and id2label:
        labels = ", ".join(f"{index}: {label}" for index, label in sorted(id2label.items()))
        sections += ["## Labels", f"{len(id2label)} classes: {labels}."]
    rows = {
        field: getattr(value, "value", value)  # enums (scheduler, optimizer) by their value
        for field in _TRAINING_FIELDS
        if (value := getattr(training_args, field, None)) is not None
    }
    rows.update(hyperparameters or {})
    if rows:
        sections += ["## Training hyper-parameters", _table(("hyper-parameter", "value"), rows.items())]
    if metrics:
        results = _table(("metric", "value"), ((key, f"{value:.4g}") for key, value in metrics.items()))
        sections += ["## Evaluation results", results]
    versions = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "huggingface_hub": huggingface_hub.__version__,
    }
    sections += ["## Framework versions", "\n".join(f"- {package} {version}" for package, version in versions.items())]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def write_model_card(output_dir: str | os.PathLike, model, **kwargs) -> Path:
    """Write `build_model_card(model, **kwargs)` as `README.md` in `output_dir` (created if needed)."""
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    build_model_card(model, **kwargs).save(path)
    return path


def _table(header: tuple[str, str], rows) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


__all__ = ["build_model_card", "write_model_card"]
