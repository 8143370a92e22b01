"""Modality mixing: homogeneous image / video / audio-video batches interleaved like the official `MetaLoader`.

The official Stage-2 loop keeps one data loader per media type and, every step, takes a batch from one of them in
a random order in which each loader appears as often as it has batches (the order is broadcast so every rank uses
the same media type at the same step). `InternVideo2ModalityBatchSampler` does the same inside one data loader over
one (concatenated) dataset: it is a batch sampler whose batches each hold one media type, with the per-step media
type drawn from `(seed, epoch)` only, so it is the same on every rank.

Distributed use: pass `num_processes`; each step then yields `num_processes` consecutive batches of the same media
type. `accelerate` (and so the Trainer) hands batch `i` to process `i % num_processes`, so at every step all
processes get different samples of the same media type and the same batch size (what the cross-rank contrastive
gather needs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch.utils.data import Sampler

from .datasets import seeded_generator


class InternVideo2ModalityBatchSampler(Sampler[list[int]]):
    """Batch sampler yielding single-media-type batches in a mixed, seeded order.

    Every full batch is drawn from one group (e.g. "image", "video", "audio_video"); incomplete batches are dropped
    so every batch of a group has its size.

    Args:
        groups: group name -> dataset indices of that group (see `from_dataset`).
        batch_size: per-process batch size, one int or one per group.
        ratios: group name -> relative number of steps per epoch. `None` (official `MetaLoader`): every group is
            seen once per epoch, so the steps per group are proportional to its size. Given: the epoch keeps the
            same total number of steps, split in these proportions; a group with more steps than its data cycles
            through fresh permutations of it, one with fewer sees a random subset.
        num_processes: data-parallel processes; every step yields this many consecutive batches of one group.
        shuffle: shuffle the indices inside each group and the order of the groups' steps; `False` keeps the
            indices in order and spreads each group's steps evenly.
        seed: seed of every draw (combined with the epoch).
    """

    def __init__(
        self,
        groups: Mapping[str, Sequence[int]],
        batch_size: int | Mapping[str, int],
        *,
        ratios: Mapping[str, float] | None = None,
        num_processes: int = 1,
        shuffle: bool = True,
        seed: int = 0,
    ):
        if not isinstance(groups, Mapping) or not groups:
            raise ValueError("groups must be a non-empty mapping of group name -> dataset indices")
        if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
            raise ValueError(f"num_processes must be a positive int, got {num_processes!r}")
        self.names = tuple(groups)
        self.groups = {name: list(map(int, indices)) for name, indices in groups.items()}
        sizes = batch_size if isinstance(batch_size, Mapping) else dict.fromkeys(self.names, batch_size)
        if set(sizes) != set(self.names):
            raise ValueError(f"batch_size has groups {sorted(sizes)} but the groups are {sorted(self.names)}")
        for name, size in sizes.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"batch_size of group {name!r} must be a positive int, got {size!r}")
        self.batch_sizes = dict(sizes)
        self.num_processes = num_processes
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.available_steps = {}
        for name in self.names:
            per_step = num_processes * self.batch_sizes[name]
            self.available_steps[name] = len(self.groups[name]) // per_step
            if self.available_steps[name] == 0:
                raise ValueError(
                    f"group {name!r} has {len(self.groups[name])} samples, fewer than one step needs "
                    f"({num_processes} processes x batch size {self.batch_sizes[name]})"
                )
        self.steps = self._steps_per_group(ratios)
        # accelerate's BatchSamplerShard reads these: one batch size (None when groups differ), never a short batch
        unique_sizes = set(self.batch_sizes.values())
        self.batch_size = unique_sizes.pop() if len(unique_sizes) == 1 else None
        self.drop_last = True

    @classmethod
    def from_dataset(
        cls, dataset, batch_size: int | Mapping[str, int], *, column: str = "media_type", **kwargs
    ) -> "InternVideo2ModalityBatchSampler":
        """Groups the rows of a `datasets.Dataset` by `column` (read without running any transform)."""
        if column not in dataset.column_names:
            raise ValueError(f"the dataset has no {column!r} column to group by; columns: {dataset.column_names}")
        groups: dict[str, list[int]] = {}
        for index, value in enumerate(dataset.with_format(None)[column]):
            groups.setdefault(value, []).append(index)
        return cls(groups, batch_size, **kwargs)

    def _steps_per_group(self, ratios) -> dict[str, int]:
        if ratios is None:
            return dict(self.available_steps)
        if set(ratios) != set(self.names):
            raise ValueError(f"ratios has groups {sorted(ratios)} but the groups are {sorted(self.names)}")
        if any(not isinstance(r, (int, float)) or isinstance(r, bool) or r < 0 for r in ratios.values()):
            raise ValueError(f"ratios must be non-negative numbers, got {dict(ratios)}")
        total_ratio = sum(ratios.values())
        if total_ratio <= 0:
            raise ValueError(f"ratios must not all be 0, got {dict(ratios)}")
        total_steps = sum(self.available_steps.values())
        return {
            name: max(1, round(total_steps * ratios[name] / total_ratio)) if ratios[name] > 0 else 0
            for name in self.names
        }

    def set_epoch(self, epoch: int) -> None:
        """Draw the permutations and the group order of `epoch`."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(self.steps.values()) * self.num_processes

    def schedule(self) -> list[str]:
        """The group of every step of the current epoch."""
        names = [name for name in self.names for _ in range(self.steps[name])]
        if self.shuffle:
            order = torch.randperm(len(names), generator=seeded_generator(self.seed, self.epoch))
            return [names[i] for i in order.tolist()]
        # evenly spread: step k of a group with n steps sits at (k + 0.5) / n
        keys = [(k + 0.5) / self.steps[name] for name in self.names for k in range(self.steps[name])]
        return [names[i] for i in sorted(range(len(names)), key=lambda i: (keys[i], self.names.index(names[i])))]

    def _index_stream(self, group_index: int, name: str) -> Iterator[int]:
        indices = self.groups[name]
        for cycle in range(2**31):
            if self.shuffle:
                generator = seeded_generator(self.seed, self.epoch, group_index, cycle)
                order = torch.randperm(len(indices), generator=generator)
                yield from (indices[i] for i in order.tolist())
            else:
                yield from indices

    def __iter__(self) -> Iterator[list[int]]:
        streams = {name: self._index_stream(position, name) for position, name in enumerate(self.names)}
        for name in self.schedule():
            size = self.batch_sizes[name]
            for _ in range(self.num_processes):
                yield [next(streams[name]) for _ in range(size)]


__all__ = ["InternVideo2ModalityBatchSampler"]
