"""Evaluation: `evaluate` metric modules (loadable offline by path) and benchmark tasks."""

from .metrics_loading import available_metrics, load_metric

__all__ = ["available_metrics", "load_metric"]
