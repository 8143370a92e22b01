"""Video classification: zero-shot action recognition with a Stage-2 model, and a fine-tuned classifier with
multi-view testing.

    python -m internvideo2.eval zero-shot-classification --model STAGE2 --annotations k400_val.json --media-root V
    python -m internvideo2.eval classification --model CLASSIFIER --annotations val.csv --media-root V \\
        [--num-clips 4 --num-crops 3]

Zero-shot (spec §3.8): every class is described by the 16 official prompts (`--templates-file` to change them);
`stage2` scores softmax each video's similarities over all prompts and average a class's prompts, `clip` scores
average the cosines. Annotations: the official action-recognition JSON `{"video", "caption": class name}`, or
`{"video", "label"}` / a `path,label` CSV with `--class-names-file`. The class list is `--class-names-file` or the
distinct class names in order of first appearance.

Fine-tuned (spec §6.2): each video gives `num_clips x num_crops` views (default: the saved processor's, e.g. the
official 4 clips x 3 crops); the softmax scores of the views are averaged. Annotations: the fine-tuning CSV
`path,label` or JSON `{"video", "label"}`; class names from `--class-names-file` or the model's `id2label`.

Both report top-1 / top-5 accuracy, their mean (the "AVG" of the zero-shot tables) and mean class accuracy, and draw
a confusion matrix.
"""

from pathlib import Path

import torch

from internvideo2.zero_shot import ACTION_TEMPLATES, CLASSIFICATION_MODES, zero_shot_classification_scores

from ..metrics_loading import load_metric
from .annotations import is_label, resolve_labels
from .common import (
    MediaDataset,
    Task,
    add_data_arguments,
    add_model_arguments,
    add_text_arguments,
    as_model_input,
    center_crop_if_needed,
    class_names_argument,
    extract_features,
    load_annotations,
    load_model,
    load_tokenizer,
    load_video_processor,
    make_context,
    video_loader,
)
from .reporting import metrics_table, plot_confusion_matrix, write_report


TOPK = (1, 5)


def add_class_arguments(parser) -> None:
    group = parser.add_argument_group("classes")
    group.add_argument("--class-names-file", help="class names, one per line (line i = class i)")
    group.add_argument("--topk", type=int, nargs="+", default=list(TOPK), help="top-k accuracies (default 1 5)")


def add_prompt_arguments(parser, default_templates) -> None:
    group = parser.add_argument_group("prompts")
    group.add_argument(
        "--templates-file",
        help=f"prompt templates with one '{{}}' each, one per line (default: {len(default_templates)} built in)",
    )
    group.add_argument(
        "--modes", nargs="+", choices=CLASSIFICATION_MODES, default=list(CLASSIFICATION_MODES),
        help="stage2: softmax over all prompts then mean per class; clip: mean cosine per class (default both)",
    )


def read_templates(args, default) -> tuple[str, ...]:
    if not args.templates_file:
        return tuple(default)
    path = Path(args.templates_file)
    if not path.is_file():
        raise FileNotFoundError(f"--templates-file not found: {path}")
    templates = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not templates:
        raise ValueError(f"--templates-file {path} has no template")
    return templates


def topk_metrics(scores: torch.Tensor, labels: list[int], topk) -> dict[str, float]:
    """`topk_accuracy` with the k that fit the number of classes (top-5 of 3 classes is left out)."""
    ks = sorted({k for k in topk if k <= scores.shape[1]})
    if not ks or any(k < 1 for k in topk):
        raise ValueError(f"--topk {list(topk)} must hold values between 1 and the {scores.shape[1]} classes")
    metric = load_metric("topk_accuracy", keep_in_memory=True)
    return metric.compute(predictions=scores.numpy(), references=labels, k=ks)


def report_classification(
    ctx, args, annotations, class_names: list[str], labels: list[int], scores: dict[str, torch.Tensor], settings: dict
) -> dict:
    """Metrics per score set, table, confusion matrix (of the first score set) and files."""
    metrics = {name: topk_metrics(value, labels, args.topk) for name, value in scores.items()}
    results = {
        "task": ctx.task,
        "model": args.model,
        "annotations": annotations.summary(),
        "num_samples": len(labels),
        "num_classes": len(class_names),
        "settings": {"dtype": args.dtype, **settings},
        "metrics": metrics,
    }
    if not args.no_plot:
        name, first = next(iter(scores.items()))
        path = plot_confusion_matrix(
            ctx.output_dir / "confusion_matrix.png", labels, first.argmax(1).tolist(), class_names,
            f"{ctx.task} ({name}): {args.model}",
        )
        results["files"] = {"plots": [path]}
    saved = None
    if args.save_scores:
        saved = {f"{name}_scores": value for name, value in scores.items()} | {"labels": torch.tensor(labels)}
        results["class_names"] = class_names
    return write_report(ctx, results, metrics_table(metrics), saved)


# --------------------------------------------------------------------------------------------------- zero-shot


def add_zero_shot_arguments(parser) -> None:
    add_model_arguments(parser)
    add_data_arguments(parser, "JSON list of {'video', 'caption': class name} (official act-rec format), or CSV")
    add_text_arguments(parser)
    add_class_arguments(parser)
    add_prompt_arguments(parser, ACTION_TEMPLATES)


def video_embeddings(ctx, args, model, records, processor, overrides) -> torch.Tensor:
    """Normalised contrastive embeddings of every record's video (one view each)."""

    def encode(batch):
        pixels = batch["pixel_values_videos"]
        if pixels.shape[1] != 1:
            raise ValueError(f"zero-shot scoring uses one view per video; the video processor made {pixels.shape[1]}")
        return {"embeds": model.encode_vision(pixel_values_videos=as_model_input(pixels[:, 0], model)).embeds}

    dataset = MediaDataset(records, video_loader(processor, overrides))
    return extract_features(ctx, dataset, encode, args.batch_size, args.num_workers, "encoding videos")["embeds"]


def run_zero_shot(args) -> dict:
    ctx = make_context(args, "zero-shot-classification")
    templates = read_templates(args, ACTION_TEMPLATES)
    annotations = load_annotations(args, {"label": is_label}, label_from_caption=True)
    labels, class_names = resolve_labels(annotations.records, class_names_argument(args), args.annotations)
    model = load_model(args.model, ctx, args.attn_implementation, kind="stage2")
    tokenizer = load_tokenizer(args)
    processor, overrides = load_video_processor(args, model)
    embeds = video_embeddings(ctx, args, model, annotations.records, processor, overrides)
    scores = {
        mode: zero_shot_classification_scores(
            model, embeds, class_names, tokenizer, mode=mode, templates=templates,
            batch_size=args.text_batch_size, max_length=args.max_text_length,
        )
        for mode in args.modes
    }
    if not ctx.is_main:
        return {}
    settings = {
        "num_templates": len(templates),
        "modes": args.modes,
        "num_frames": overrides.get("num_frames", processor.num_frames),
    }
    return report_classification(ctx, args, annotations, class_names, labels, scores, settings)


# --------------------------------------------------------------------------------------------------- fine-tuned


def add_finetuned_arguments(parser) -> None:
    add_model_arguments(parser, text=False)
    add_data_arguments(parser, "fine-tuning CSV 'path,label' (no header) or JSON list of {'video', 'label'}")
    add_class_arguments(parser)
    group = parser.add_argument_group("test views")
    group.add_argument("--num-clips", type=int, help="temporal clips per video (sparse sampling; official 4)")
    group.add_argument("--num-crops", type=int, help="spatial crops per clip (official 3)")


def multi_view_overrides(args, processor, image_size: int) -> dict:
    """Processor options for `--num-clips` / `--num-crops`."""
    overrides = {}
    if args.num_clips is not None:
        if args.num_clips < 1:
            raise ValueError(f"--num-clips must be a positive integer, got {args.num_clips}")
        overrides["num_clips"] = args.num_clips
        if args.num_clips > 1:
            overrides["sampling"] = "sparse"
    if args.num_crops is not None:
        if args.num_crops < 1:
            raise ValueError(f"--num-crops must be a positive integer, got {args.num_crops}")
        overrides["num_crops"] = args.num_crops
        if args.num_crops > 1 and processor.crop_size is None:
            overrides["crop_size"] = image_size
    return overrides


def average_view_probabilities(logits: torch.Tensor, num_videos: int) -> torch.Tensor:
    """Mean over each video's views of the softmax scores: logits (videos * views, classes), views consecutive."""
    probabilities = logits.float().softmax(dim=-1)
    return probabilities.view(num_videos, -1, probabilities.shape[-1]).mean(dim=1)


def run_finetuned(args) -> dict:
    ctx = make_context(args, "classification")
    annotations = load_annotations(args, {"label": is_label})
    model = load_model(args.model, ctx, args.attn_implementation, kind="classifier")
    config = model.config
    class_names = class_names_argument(args)
    if class_names is None:
        class_names = [config.id2label[i] for i in range(config.num_labels)]
    elif len(class_names) != config.num_labels:
        raise ValueError(f"--class-names-file lists {len(class_names)} classes but the model has {config.num_labels}")
    labels, class_names = resolve_labels(annotations.records, class_names, args.annotations)
    processor, overrides = load_video_processor(
        args, model, preset="finetune_test", size={"shortest_edge": config.image_size}, crop_size=config.image_size,
    )
    overrides |= multi_view_overrides(args, processor, args.image_size or config.image_size)
    overrides |= center_crop_if_needed(processor, overrides)

    def encode(batch):
        pixels = batch["pixel_values_videos"]  # (videos, views, frames, 3, height, width)
        logits = model(pixel_values_videos=as_model_input(pixels.flatten(0, 1), model)).logits
        return {"scores": average_view_probabilities(logits, len(pixels))}

    dataset = MediaDataset(annotations.records, video_loader(processor, overrides))
    scores = extract_features(ctx, dataset, encode, args.batch_size, args.num_workers, "classifying videos")["scores"]
    if not ctx.is_main:
        return {}
    settings = {
        "num_clips": overrides.get("num_clips", processor.num_clips),
        "num_crops": overrides.get("num_crops", processor.num_crops),
        "num_frames": overrides.get("num_frames", processor.num_frames),
    }
    return report_classification(ctx, args, annotations, class_names, labels, {"multi_view": scores}, settings)


TASKS = (
    Task(
        "zero-shot-classification",
        "zero-shot action recognition with prompt ensembles (top-1/5, AVG)",
        add_zero_shot_arguments,
        run_zero_shot,
        description=__doc__,
    ),
    Task(
        "classification",
        "fine-tuned classifier with multi-view (clips x crops) softmax averaging",
        add_finetuned_arguments,
        run_finetuned,
        description=__doc__,
    ),
)

__all__ = ["TASKS", "average_view_probabilities", "read_templates", "report_classification", "topk_metrics"]
