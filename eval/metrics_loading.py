"""Load the evaluation metrics shipped with the package as local `evaluate` modules, without the Hub."""

from pathlib import Path

import evaluate


METRICS_DIR = Path(__file__).resolve().parent / "metrics"


def available_metrics() -> tuple[str, ...]:
    """Names of the metric modules shipped in `METRICS_DIR` (folders holding `<name>/<name>.py`)."""
    return tuple(sorted(folder.name for folder in METRICS_DIR.iterdir() if (folder / f"{folder.name}.py").is_file()))


def load_metric(name: str, **load_kwargs) -> evaluate.EvaluationModule:
    """Load a shipped metric by name, e.g. `load_metric("topk_accuracy")`.

    The module is loaded from its absolute folder path, which `evaluate.load` resolves locally (no Hub access, so it
    works offline). Checking the folder first matters: a missing path would make `evaluate.load` fall back to the Hub.
    `load_kwargs` go to `evaluate.load` (e.g. `num_process`, `process_id`, `experiment_id`, `cache_dir`,
    `keep_in_memory`). `evaluate` copies the script into `HF_MODULES_CACHE` before importing it, so that folder must be
    writable.
    """
    if not isinstance(name, str) or not (METRICS_DIR / name / f"{name}.py").is_file():
        available = ", ".join(available_metrics())
        raise FileNotFoundError(f"no metric named {name!r} in {METRICS_DIR}; available: {available}")
    return evaluate.load(str(METRICS_DIR / name), **load_kwargs)
