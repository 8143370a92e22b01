"""Evaluation: `evaluate` metric modules (loadable offline by path) and benchmark tasks."""

from .metrics_loading import available_metrics, load_metric
from .tasks import TASKS

__all__ = ["TASKS", "available_metrics", "load_metric"]
