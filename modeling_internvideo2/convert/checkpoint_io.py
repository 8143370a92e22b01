"""Reading official checkpoints safely and renaming their keys strictly.

Official files are pickles (`.pt`, `.pth`, `.bin`) or safetensors (single file or a sharded folder with an index).
Pickles are read with `torch.load(weights_only=True)`: no code in the file runs. The Stage-2 6B file also pickles an
`utils.easydict.EasyDict` config; we allow exactly that class name and rebuild it as a plain `OrderedDict`.
"""

import collections
import json
import os
import re
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file


class CheckpointConversionError(ValueError):
    """A checkpoint does not match what the converter expects (unknown, missing or mis-shaped keys)."""


class _EasyDictAsOrderedDict:
    """Stands in for `utils.easydict.EasyDict` during unpickling; the weights-only unpickler allows item and attribute
    restoration on an OrderedDict, so the config arrives as plain data and no foreign class is imported."""

    def __new__(cls, *args, **kwargs):
        return collections.OrderedDict()


def load_checkpoint(path: str | os.PathLike, allow_easydict: bool = True) -> dict:
    """Load an official checkpoint file or folder without executing pickled code.

    Args:
        path: a `.pt`/`.pth`/`.bin` pickle, a `.safetensors` file, or a folder holding `model.safetensors`,
            a `*.safetensors.index.json` with its shards, or one pickle.
        allow_easydict: accept the `utils.easydict.EasyDict` config pickled in the Stage-2 6B checkpoint.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        return _load_folder(path)
    if path.endswith(".safetensors"):
        return load_file(path)
    safe = [(_EasyDictAsOrderedDict, "utils.easydict.EasyDict")] if allow_easydict else []
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except Exception as error:  # noqa: BLE001 - re-raised with the file name and the single offending reason
        raise CheckpointConversionError(
            f"cannot read checkpoint {path} with weights_only=True: {_load_failure_reason(error)}"
        ) from error


def _load_failure_reason(error: Exception) -> str:
    """The one informative sentence of torch.load's multi-paragraph message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip() or "".join(lines[index + 1 : index + 2])
            return reason.split(". ")[0].strip() + " (not a valid checkpoint, or it pickles objects that could run code)"
    return lines[0] if lines else type(error).__name__


def _is_zip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _load_folder(path: str) -> dict:
    names = sorted(os.listdir(path))
    index = [n for n in names if n.endswith(".safetensors.index.json")]
    if index:
        with open(os.path.join(path, index[0])) as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        state_dict = {}
        for shard in shards:
            state_dict.update(load_file(os.path.join(path, shard)))
        return state_dict
    singles = [n for n in names if n.endswith((".safetensors", ".pt", ".pth", ".bin"))]
    if len(singles) != 1:
        raise FileNotFoundError(f"checkpoint folder {path} must hold one weights file or a safetensors index, found {singles}")
    return load_checkpoint(os.path.join(path, singles[0]))


def unwrap_state_dict(checkpoint: dict, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Return the tensor dict inside the official containers (`{"model": ...}`, DeepSpeed `{"module": ...}`)."""
    for key in ("model", "module", "state_dict"):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointConversionError(f"{source} holds no tensors (top-level keys: {sorted(checkpoint)[:10]})")
    others = sorted(k for k in checkpoint if k not in tensors and k not in TRAINING_METADATA_KEYS)
    if others:
        raise CheckpointConversionError(f"{source} mixes tensors with non-tensor entries {others[:10]}")
    return tensors


# Non-tensor entries official training scripts save beside the weights; they carry no model parameters.
TRAINING_METADATA_KEYS = frozenset({"config", "cfg", "epoch", "global_step", "optimizer", "scheduler", "scaler", "args"})


@dataclass
class RenameRule:
    """Official key regex → our key template (regex groups allowed); `target=None` drops the key for `reason`."""

    pattern: str
    target: str | None
    reason: str = ""
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        self.regex = re.compile(self.pattern)


@dataclass
class ConversionReport:
    """What a conversion did: mapped keys and the dropped ones grouped by reason."""

    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"num_mapped": len(self.mapped), "dropped": self.dropped}


def rename_strict(
    state_dict: dict[str, torch.Tensor], rules: list[RenameRule], source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Apply the first matching rule to every key; a key no rule matches is an error listing all such keys."""
    renamed, report, unknown = {}, ConversionReport(), []
    for key, tensor in state_dict.items():
        rule = next((r for r in rules if r.regex.fullmatch(key)), None)
        if rule is None:
            unknown.append(key)
        elif rule.target is None:
            report.dropped.setdefault(rule.reason, []).append(key)
        else:
            new_key = rule.regex.sub(rule.target, key)
            if new_key in renamed:
                raise CheckpointConversionError(f"{source}: two keys map to {new_key!r}")
            renamed[new_key] = tensor
            report.mapped[key] = new_key
    if unknown:
        raise CheckpointConversionError(f"{source}: {len(unknown)} unknown keys: {_preview(unknown)}")
    return renamed, report


def check_against_model(
    converted: dict[str, torch.Tensor], model: torch.nn.Module, source: str = "checkpoint"
) -> None:
    """Every parameter/buffer the model saves must be present with its shape, and nothing else."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = sorted(k for k in set(expected) & set(converted) if tuple(converted[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if wrong:
        problems.append(
            "shape mismatch: "
            + _preview([f"{k} {tuple(converted[k].shape)} != {expected[k]}" for k in wrong])
        )
    if problems:
        raise CheckpointConversionError(f"{source}: " + "; ".join(problems))


def load_converted_model(model_class, config, converted: dict[str, torch.Tensor], source: str = "checkpoint"):
    """Check `converted` against a meta-device instance (strict: missing, unexpected and mis-shaped keys are errors),
    then build the real model from it with `from_pretrained`, which also rebuilds non-persistent buffers and ties
    weights. The weights keep the checkpoint's floating dtype."""
    with torch.device("meta"):
        skeleton = model_class(config)
    tied = getattr(skeleton, "all_tied_weights_keys", None) or {}
    check_against_model({**converted, **{k: converted[v] for k, v in tied.items() if v in converted}}, skeleton, source)
    dtype = next((t.dtype for t in converted.values() if t.is_floating_point()), torch.float32)
    model = model_class.from_pretrained(None, config=config, state_dict=converted, dtype=dtype)
    return model.eval()


def _preview(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
