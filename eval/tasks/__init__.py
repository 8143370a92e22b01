"""Benchmark tasks of `python -m internvideo2.eval <task>`. Each task module lists its `Task`s (name, help, argument
builder, `run(args) -> results dict`); `TASKS` maps every task name to its `Task`."""

from . import audio, chat, classification, feature_export, linear_probe, multiple_choice, retrieval
from .common import Task


TASKS: dict[str, Task] = {
    task.name: task
    for module in (classification, retrieval, multiple_choice, linear_probe, audio, feature_export, chat)
    for task in module.TASKS
}

__all__ = ["TASKS", "Task"]
