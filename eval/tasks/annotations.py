"""Reading and checking evaluation annotations: official JSON / JSONL lists, fine-tuning CSVs, or `datasets` datasets.

Every record becomes a dict with canonical keys: `video` (absolute media path; audio tasks use it for the file holding
the audio track), and, as the task needs, `caption` (a string or a list of strings), `label` (an int class index or a
class name), `answer` (an int option index). `--video-column` etc. map other column names onto these keys.

Records with a missing or malformed field, or whose media file does not exist under `--media-root`, are skipped and
counted (the report names the first few), or, with `--strict`, are an error.
"""

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


CANONICAL_FIELDS = ("video", "caption", "label", "answer")
_EXAMPLES_KEPT = 5


@dataclass
class AnnotationSet:
    """Valid records (with `video` made absolute and `index` = position in the source) and what was skipped.

    `skipped` maps a reason ("missing_fields", "invalid_fields", "missing_media") to the number of records and up to
    5 examples, e.g. `{"missing_media": {"count": 2, "examples": ["record 3: videos/a.mp4", ...]}}`.
    """

    source: str
    records: list[dict]
    num_read: int
    skipped: dict[str, dict] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(reason["count"] for reason in self.skipped.values())

    def summary(self) -> dict:
        return {
            "source": self.source, "num_read": self.num_read, "num_used": len(self.records), "skipped": self.skipped
        }


def is_caption(value) -> bool:
    """A non-empty string, or a non-empty list of non-empty strings."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and v.strip() for v in value)


def is_caption_list(value) -> bool:
    """At least two non-empty strings (multiple-choice options)."""
    return isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) and v.strip() for v in value)


def is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_label(value) -> bool:
    """A class index or a class name."""
    return is_index(value) or (isinstance(value, str) and bool(value.strip()))


def read_records(
    source: str,
    *,
    split: str | None = None,
    columns: dict[str, str] | None = None,
    csv_delimiter: str = ",",
) -> list[dict]:
    """Raw records of `source`, with columns renamed to the canonical keys.

    `source` is a `.json` file (a list of objects, the official format), a `.jsonl` file, a `.csv` / `.txt` file (the
    fine-tuning format `path,label` without header, or with a header row naming the columns), a folder written by
    `datasets.Dataset.save_to_disk`, or a `datasets` Hub name (loaded with `datasets.load_dataset`; offline this needs
    the local cache). `split` picks the split of a `DatasetDict`. `columns` maps canonical keys to column names.
    """
    columns = {name: name for name in CANONICAL_FIELDS} | (columns or {})
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            records = _read_json(path)
        elif suffix == ".jsonl":
            records = [_parse_json_line(line, path, number) for number, line in _numbered_lines(path)]
        elif suffix in (".csv", ".txt", ".tsv"):
            records = _read_csv(path, csv_delimiter, columns)
        else:
            raise ValueError(
                f"annotation file {source} must be .json, .jsonl, .csv or .txt, got {suffix or 'no extension'}"
            )
    elif path.is_dir():
        records = _read_dataset(source, split, from_disk=True)
    elif path.suffix.lower() in (".json", ".jsonl", ".csv", ".txt", ".tsv") or source.startswith((".", "/", "~")):
        raise FileNotFoundError(f"annotation file not found: {source}")
    else:
        records = _read_dataset(source, split, from_disk=False)
    renamed = []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{source} must hold one object per record, found a {type(record).__name__}")
        record = dict(record)
        for canonical, column in columns.items():
            if column != canonical and column in record:
                record[canonical] = record.pop(column)
        renamed.append(record)
    return renamed


def _numbered_lines(path: Path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def _read_json(path: Path) -> list:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"annotation file {path} is not valid JSON ({error})") from None
    if isinstance(payload, dict):
        # some releases wrap the list, e.g. {"annotations": [...]}
        lists = [value for value in payload.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise ValueError(f"annotation file {path} must hold a list of records (or an object with one list)")
        payload = lists[0]
    if not isinstance(payload, list):
        raise ValueError(f"annotation file {path} must hold a list of records, got {type(payload).__name__}")
    return payload


def _parse_json_line(line: str, path: Path, number: int):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"line {number} of {path} is not valid JSON ({error})") from None


def _read_csv(path: Path, delimiter: str, columns: dict[str, str]) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if row and any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip() for cell in rows[0]]
    if columns["video"] in header:
        return [dict(zip(header, (cell.strip() for cell in row))) for row in rows[1:]]
    records = []
    for row in rows:
        record = {"video": row[0].strip()}
        if len(row) > 1:
            label = row[-1].strip()
            record["label"] = int(label) if label.lstrip("-").isdigit() else label
        records.append(record)
    return records


def _read_dataset(source: str, split: str | None, from_disk: bool) -> list[dict]:
    import datasets

    try:
        dataset = datasets.load_from_disk(source) if from_disk else datasets.load_dataset(source, split=split)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FileNotFoundError(f"cannot load the dataset {source!r}: {message}") from None
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            if len(dataset) != 1:
                raise ValueError(f"dataset {source!r} has splits {sorted(dataset)}; choose one with --dataset-split")
            split = next(iter(dataset))
        if split not in dataset:
            raise ValueError(f"dataset {source!r} has no split {split!r}; available: {sorted(dataset)}")
        dataset = dataset[split]
    return dataset.to_list()


def prepare_annotations(
    records: list[dict],
    *,
    source: str,
    required: dict[str, Callable[[object], bool]],
    media_root: str | None = None,
    strict: bool = False,
    max_samples: int | None = None,
    check_media: bool = True,
    record_check: Callable[[dict], str | None] | None = None,
) -> AnnotationSet:
    """Keep the records that have every `required` field (validated by its checker) and an existing media file.

    `required` maps canonical field names to validators; `video` is always required. `media_root` is joined with
    relative paths. `max_samples` keeps only the first records of the source. `record_check(record)` returns why a
    record whose fields are valid one by one is still invalid (e.g. an answer index past its options), or None.
    Skips are counted per reason; with `strict` the first bad record raises a one-line ValueError /
    FileNotFoundError naming it.
    """
    if max_samples is not None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"max_samples must be a positive integer, got {max_samples!r}")
        records = records[:max_samples]
    checks = {"video": lambda value: isinstance(value, str) and bool(value.strip())} | dict(required)
    kept, skipped = [], {}

    def skip(reason: str, example: str, error_type=ValueError):
        if strict:
            raise error_type(f"{source}: {example} (use without --strict to skip such records)")
        entry = skipped.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < _EXAMPLES_KEPT:
            entry["examples"].append(example)

    for index, record in enumerate(records):
        name = f"record {index}"
        missing = [key for key in checks if record.get(key) is None]
        if missing:
            skip("missing_fields", f"{name} has no {', '.join(repr(key) for key in missing)}")
            continue
        invalid = [key for key, check in checks.items() if not check(record[key])]
        if invalid:
            skip("invalid_fields", f"{name} has an invalid {', '.join(f'{k!r} ({record[k]!r})' for k in invalid)}")
            continue
        problem = record_check(record) if record_check is not None else None
        if problem:
            skip("invalid_fields", f"{name} {problem}")
            continue
        path = record["video"] if os.path.isabs(record["video"]) else os.path.join(media_root or "", record["video"])
        if check_media and not os.path.isfile(path):
            skip("missing_media", f"{name}: media file not found: {path}", FileNotFoundError)
            continue
        kept.append({**record, "video": path, "index": index})
    if not kept:
        details = "; ".join(f"{reason}: {entry['examples'][0]}" for reason, entry in skipped.items())
        raise ValueError(f"{source}: no usable record out of {len(records)}" + (f" ({details})" if details else ""))
    return AnnotationSet(source=source, records=kept, num_read=len(records), skipped=skipped)


def class_names_from_file(path: str) -> list[str]:
    """One class name per line (line i = class i), like the fine-tuning label files."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class names file not found: {path}")
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ValueError(f"class names file {path} is empty")
    return names


def resolve_labels(
    records: list[dict], class_names: list[str] | None, source: str, num_classes: int | None = None
) -> tuple[list[int], list[str]]:
    """Class indices of records labelled by index (`label`) or by name (`label`, else `caption`), and the class list.

    With `class_names`, names are looked up in it and indices checked against it. Without, names come from the
    records in order of first appearance; records labelled by index then need `num_classes` (e.g. a classifier's
    `num_labels`) or get the names "0", "1", ... up to their largest index.
    """
    values = [record["label"] if record.get("label") is not None else record.get("caption") for record in records]
    by_index = [isinstance(value, int) for value in values]
    if class_names is None and any(by_index):
        if not all(by_index):
            raise ValueError(f"{source} mixes class indices and class names; pass --class-names-file")
        count = num_classes if num_classes is not None else max(values) + 1
        class_names = [str(i) for i in range(count)]
    if class_names is None:
        class_names = list(dict.fromkeys(values))
    if len(set(class_names)) != len(class_names):
        raise ValueError("the class names list has duplicates")
    position = {name: i for i, name in enumerate(class_names)}
    labels = []
    for record, value in zip(records, values):
        if isinstance(value, int):
            if not value < len(class_names):
                raise ValueError(
                    f"{source}: label {value} of {record['video']} is outside the {len(class_names)} classes"
                )
            labels.append(value)
        elif value in position:
            labels.append(position[value])
        else:
            raise ValueError(f"{source}: class {value!r} of {record['video']} is not in the class names list")
    return labels, list(class_names)


__all__ = [
    "AnnotationSet",
    "CANONICAL_FIELDS",
    "class_names_from_file",
    "is_caption",
    "is_caption_list",
    "is_index",
    "is_label",
    "prepare_annotations",
    "read_records",
    "resolve_labels",
]
