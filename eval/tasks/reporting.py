"""Writing evaluation results: `results.json` (fractions, as the metrics return them), `results.md` (a Markdown table in
percent, also printed), optional `scores.safetensors`, and plots drawn with matplotlib's Agg backend."""

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


# Metric names that are not fractions (shown as they are, not in percent).
_RAW_SUFFIXES = ("medr", "meanr", "num_samples", "count")


def _is_raw(name: str) -> bool:
    return name.endswith(_RAW_SUFFIXES)


def format_value(name: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, float)) and not _is_raw(name):
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def metrics_table(
    rows: dict[str, dict[str, float]], columns: Sequence[str] | None = None, first: str = "scores"
) -> str:
    """A Markdown table with one row per entry of `rows` (e.g. per score type); fractions are shown in percent."""
    if columns is None:
        columns = list(dict.fromkeys(name for metrics in rows.values() for name in metrics))
    header = [first] + [name if _is_raw(name) else f"{name} (%)" for name in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row_name, metrics in rows.items():
        lines.append("| " + " | ".join([row_name] + [format_value(c, metrics.get(c)) for c in columns]) + " |")
    return "\n".join(lines)


def write_report(ctx, results: dict, markdown: str, scores: dict[str, torch.Tensor] | None = None) -> dict:
    """Write results.json / results.md (and scores.safetensors) on the main process and print the table."""
    if not ctx.is_main:
        return results
    output_dir = Path(ctx.output_dir)
    files = dict(results.get("files", {}))
    files["json"] = str(output_dir / "results.json")
    files["markdown"] = str(output_dir / "results.md")
    if scores:
        from safetensors.torch import save_file

        files["scores"] = str(output_dir / "scores.safetensors")
        save_file({name: value.detach().float().contiguous().cpu() for name, value in scores.items()}, files["scores"])
    results = {**results, "num_processes": ctx.accelerator.num_processes, "files": files}
    title = f"# {results['task']}: {results.get('model', '')}\n\n"
    skipped = results.get("annotations", {}).get("skipped")
    if skipped:
        counts = ", ".join(f"{entry['count']} {reason.replace('_', ' ')}" for reason, entry in skipped.items())
        markdown += f"\n\nSkipped records of {results['annotations']['source']}: {counts} (see results.json)."
    (output_dir / "results.md").write_text(title + markdown + "\n", encoding="utf-8")
    payload = json.dumps(results, indent=1, default=_json_default)
    (output_dir / "results.json").write_text(payload + "\n", encoding="utf-8")
    print(title + markdown)
    return results


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recall_at_k(path: str | Path, curves: dict[str, dict[str, Sequence[float]]], title: str) -> str:
    """Recall@K against K: one line per (score type, direction); `curves[score][direction][k - 1]` = R@k."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(next(iter(curves.values()))), figsize=(11, 4), squeeze=False)
    directions = list(next(iter(curves.values())))
    for axis, direction in zip(axes[0], directions):
        for score, per_direction in curves.items():
            recalls = per_direction[direction]
            axis.plot(range(1, len(recalls) + 1), [100 * r for r in recalls], marker=".", label=score)
        axis.set_title(direction)
        axis.set_xlabel("K")
        axis.set_ylabel("recall@K (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def plot_confusion_matrix(
    path: str | Path, references: Sequence[int], predictions: Sequence[int], class_names: Sequence[str], title: str
) -> str:
    """Row-normalised confusion matrix (rows: true class, columns: predicted class), counts written in the cells
    when there are few classes."""
    plt = _pyplot()
    num_classes = len(class_names)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(references), np.asarray(predictions)), 1)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(4 + 0.35 * num_classes, 30)
    figure, axis = plt.subplots(figsize=(side + 1.5, side))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="fraction of the true class")
    if num_classes <= 40:
        axis.set_xticks(range(num_classes), class_names, rotation=90, fontsize=8)
        axis.set_yticks(range(num_classes), class_names, fontsize=8)
    if num_classes <= 20:
        for row in range(num_classes):
            for column in range(num_classes):
                if counts[row, column]:
                    color = "white" if rates[row, column] > 0.5 else "black"
                    axis.text(column, row, counts[row, column], ha="center", va="center", color=color, fontsize=8)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


__all__ = ["format_value", "metrics_table", "plot_confusion_matrix", "plot_recall_at_k", "write_report"]
