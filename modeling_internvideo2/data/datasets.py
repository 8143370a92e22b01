"""Annotation loaders (official formats, spec §6.3) built on `datasets`, and the decoding transform.

Every loader returns a `datasets.Dataset` of *references* to media (paths or bytes) plus text and labels; decoding
happens lazily in `InternVideo2MediaTransform`, set with `Dataset.with_transform` / `set_transform`, so nothing is
decoded up front and `datasets`' own `Video()` / `Audio()` features (torchcodec) are never needed.

Schemas (column -> type):

- video-text (`load_video_text_json`, `load_retrieval_json`, `from_media_dataset`): `media` (path), `media_type`
  ("video", "image" or "audio_video"), `captions` (list of str), `audio_visual_captions` (list of str; the
  `avs_captions`-style captions of audio-video samples, empty otherwise), `sample_id` (int64: the entry's position in
  its annotation file; samples with the same id are the same media, i.e. positives of each other in VTC).
- Stage-1 CSV (`load_stage1_csv`): `media`, `media_type`, `source`, `total_time`, `start_time`, `end_time`, `label`,
  `sample_id`; times of -1 mean the whole video.
- classification CSV (`load_classification_csv`, fine-tuning `path,label`): `media`, `media_type`, `label`,
  `sample_id`.

Example:

    >>> from internvideo2.data import InternVideo2MediaTransform, load_video_text_json
    >>> from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor
    >>> raw = load_video_text_json("train.json", data_root="/data/videos")  # doctest: +SKIP
    >>> processor = InternVideo2VideoProcessor(preset="stage2_train", num_frames=4)  # doctest: +SKIP
    >>> transform = InternVideo2MediaTransform(processor, training=True, replacement_dataset=raw)  # doctest: +SKIP
    >>> train = raw.with_transform(transform)  # doctest: +SKIP
    >>> train[0]["pixel_values_videos"].shape  # doctest: +SKIP
    torch.Size([4, 3, 224, 224])
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import av
import datasets
import numpy as np
import PIL.Image
import torch
from transformers.video_utils import VideoMetadata

from ..processing.video_decoding import open_video
from ..processing.video_processing_internvideo2 import InternVideo2VideoProcessor


MEDIA_TYPES = ("video", "image", "audio_video")

VIDEO_TEXT_FEATURES = datasets.Features(
    {
        "media": datasets.Value("string"),
        "media_type": datasets.Value("string"),
        "captions": datasets.List(datasets.Value("string")),
        "audio_visual_captions": datasets.List(datasets.Value("string")),
        "sample_id": datasets.Value("int64"),
    }
)
STAGE1_FEATURES = datasets.Features(
    {
        "media": datasets.Value("string"),
        "media_type": datasets.Value("string"),
        "source": datasets.Value("string"),
        "total_time": datasets.Value("float64"),
        "start_time": datasets.Value("float64"),
        "end_time": datasets.Value("float64"),
        "label": datasets.Value("int64"),
        "sample_id": datasets.Value("int64"),
    }
)
CLASSIFICATION_FEATURES = datasets.Features(
    {
        "media": datasets.Value("string"),
        "media_type": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "sample_id": datasets.Value("int64"),
    }
)

# What the transform returns for every row (None where a field does not apply), so batches of any media mix have
# the same columns.
TRANSFORM_OUTPUT_COLUMNS = (
    "pixel_values_videos",
    "input_features",
    "audio_attention_mask",
    "caption",
    "captions",
    "audio_visual_caption",
    "label",
    "sample_id",
    "media_type",
)


class MediaSkippedWarning(UserWarning):
    """An unreadable media file was skipped (and replaced by another sample when the transform can)."""


# ------------------------------------------------------------------------------------------------------ loaders


def _resolve(path: str, data_root: str | os.PathLike | None) -> str:
    if data_root is None or os.path.isabs(path):
        return path
    return os.path.join(os.fspath(data_root), path)


def _check_annotation_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {str(path)!r}")
    return path


def _caption_list(value, file: Path, index: int, key: str) -> list[str]:
    captions = [value] if isinstance(value, str) else value
    if not isinstance(captions, list) or not all(isinstance(caption, str) for caption in captions):
        raise ValueError(f"{file} entry {index}: {key!r} must be a string or a list of strings, got {value!r}")
    return captions


def load_video_text_json(
    path: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    media_type: str | None = None,
    audio_visual_caption_key: str = "avs_captions",
    paragraph: bool = False,
    skip_empty_captions: bool = False,
) -> datasets.Dataset:
    """Loads a Stage-2 / CLIP / retrieval annotation JSON (official `load_anno` format).

    The file is a list of entries with an `"image"` or `"video"` path (relative to `data_root`) and a `"caption"`
    (a string or a list: several captions of the same media) or `"captions"` (a list). Audio-video files (6B
    Stage 2) carry more caption types (`"audio_caption"`, `"avs_captions"`, ...); `audio_visual_caption_key` names
    the one the audio-visual losses use (it lands in `audio_visual_captions`).

    Args:
        path: the JSON file.
        data_root: folder the media paths are relative to (absolute paths are kept).
        media_type: "video", "image" or "audio_video"; `None` infers "image" or "video" from each entry's key.
        audio_visual_caption_key: caption key of audio-video entries read into `audio_visual_captions`.
        paragraph: join a list of captions into one text (paragraph retrieval: DiDeMo, ActivityNet).
        skip_empty_captions: drop entries whose captions are all empty with a warning (counted in it) instead of
            raising.

    Returns:
        A `datasets.Dataset` with the video-text schema (see the module docstring); `sample_id` is the entry index.
    """
    file = _check_annotation_file(path)
    if media_type is not None and media_type not in MEDIA_TYPES:
        raise ValueError(f"media_type must be one of {MEDIA_TYPES} or None, got {media_type!r}")
    try:
        entries = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON ({error})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{file} must hold a list of annotation entries, got {type(entries).__name__}")
    columns = {name: [] for name in VIDEO_TEXT_FEATURES}
    empty = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{file} entry {index} must be an object, got {type(entry).__name__}")
        keys = [key for key in ("video", "image") if key in entry]
        if len(keys) != 1:
            raise ValueError(
                f"{file} entry {index} must have exactly one of 'video' or 'image', got keys {sorted(entry)}"
            )
        entry_type = media_type or keys[0]
        if entry_type in ("video", "audio_video") and keys[0] != "video":
            raise ValueError(f"{file} entry {index} has no 'video' path (media_type={entry_type!r})")
        caption_key = "caption" if "caption" in entry else "captions"
        if caption_key not in entry:
            raise ValueError(f"{file} entry {index} has no 'caption' or 'captions'")
        captions = [caption.strip() for caption in _caption_list(entry[caption_key], file, index, caption_key)]
        if paragraph:
            captions = [" ".join(caption for caption in captions if caption)]
        captions = [caption for caption in captions if caption]
        if not captions:
            if not skip_empty_captions:
                raise ValueError(f"{file} entry {index} ({entry[keys[0]]!r}) has an empty caption")
            empty.append(index)
            continue
        audio_visual = []
        if entry_type == "audio_video" and entry.get(audio_visual_caption_key) is not None:
            audio_visual = [
                caption.strip()
                for caption in _caption_list(entry[audio_visual_caption_key], file, index, audio_visual_caption_key)
                if caption.strip()
            ]
        media = entry[keys[0]]
        if not isinstance(media, str) or not media:
            raise ValueError(f"{file} entry {index}: {keys[0]!r} must be a non-empty path string, got {media!r}")
        columns["media"].append(_resolve(media, data_root))
        columns["media_type"].append(entry_type)
        columns["captions"].append(captions)
        columns["audio_visual_captions"].append(audio_visual)
        columns["sample_id"].append(index)
    if empty:
        warnings.warn(
            f"{file}: skipped {len(empty)} entries with empty captions (entries {empty[:10]}"
            f"{' ...' if len(empty) > 10 else ''})",
            MediaSkippedWarning,
            stacklevel=2,
        )
    return datasets.Dataset.from_dict(columns, features=VIDEO_TEXT_FEATURES)


def load_retrieval_json(
    path: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    paragraph: bool = False,
) -> datasets.Dataset:
    """Loads a retrieval / action-recognition evaluation JSON (VINDLU format `{"video", "caption": str | list}`).

    One row per video with all its captions (`captions`); with `paragraph=True` (DiDeMo, ActivityNet) the captions
    of a video are joined into one paragraph. For action recognition the caption is the class name. Empty captions
    are an error (an evaluation set must not silently shrink).
    """
    return load_video_text_json(path, data_root=data_root, paragraph=paragraph)


def _read_rows(file: Path, delimiter: str) -> Iterable[tuple[int, list[str]]]:
    with open(file, newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if delimiter == " ":  # space-separated files may pad fields with several spaces
                row = [field for field in row if field != ""]
            if row:
                yield line_number, row


def _number(text: str, kind: type, file: Path, line_number: int, name: str):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{file} line {line_number}: {name} must be {kind.__name__}, got {text!r}") from None


def load_stage1_csv(
    path: str | os.PathLike, *, data_root: str | os.PathLike | None = None, delimiter: str = " "
) -> datasets.Dataset:
    """Loads a Stage-1 pretraining list (`source path total_time start_time end_time label`, space separated by
    default; times of -1 mean the whole video; `source` "ssv2" disables flipping in `InternVideo2MediaTransform`)."""
    file = _check_annotation_file(path)
    columns = {name: [] for name in STAGE1_FEATURES}
    for line_number, row in _read_rows(file, delimiter):
        if len(row) != 6:
            raise ValueError(
                f"{file} line {line_number}: expected 6 fields 'source path total_time start_time end_time label', "
                f"got {len(row)}"
            )
        source, media, total_time, start_time, end_time, label = row
        columns["media"].append(_resolve(media, data_root))
        columns["media_type"].append("video")
        columns["source"].append(source)
        columns["total_time"].append(_number(total_time, float, file, line_number, "total_time"))
        columns["start_time"].append(_number(start_time, float, file, line_number, "start_time"))
        columns["end_time"].append(_number(end_time, float, file, line_number, "end_time"))
        columns["label"].append(_number(label, int, file, line_number, "label"))
        columns["sample_id"].append(len(columns["sample_id"]))
    return datasets.Dataset.from_dict(columns, features=STAGE1_FEATURES)


def load_classification_csv(
    path: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    delimiter: str = ",",
    num_labels: int | None = None,
) -> datasets.Dataset:
    """Loads a fine-tuning list: rows `path,label` without header (`--split ','`); `num_labels` checks the range."""
    file = _check_annotation_file(path)
    columns = {name: [] for name in CLASSIFICATION_FEATURES}
    for line_number, row in _read_rows(file, delimiter):
        if len(row) != 2:
            raise ValueError(f"{file} line {line_number}: expected 2 fields 'path{delimiter}label', got {len(row)}")
        label = _number(row[1], int, file, line_number, "label")
        if label < 0 or (num_labels is not None and label >= num_labels):
            bound = f"[0, {num_labels})" if num_labels is not None else ">= 0"
            raise ValueError(f"{file} line {line_number}: label must be {bound}, got {label}")
        columns["media"].append(_resolve(row[0], data_root))
        columns["media_type"].append("video")
        columns["label"].append(label)
        columns["sample_id"].append(len(columns["sample_id"]))
    return datasets.Dataset.from_dict(columns, features=CLASSIFICATION_FEATURES)


def from_media_dataset(
    dataset: datasets.Dataset,
    *,
    media_column: str,
    caption_column: str | None = None,
    label_column: str | None = None,
    media_type: str = "video",
    data_root: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """Adapts any local `datasets.Dataset` with a media column to the loaders' schema.

    The media column may hold paths (relative to `data_root`), raw bytes, or `{"bytes", "path"}` dicts (a
    `Video(decode=False)` / `Image(decode=False)` / `Audio(decode=False)` column). Captions (a string or a list of
    strings per row) become `captions`; labels become `label`. Other columns are dropped; `sample_id` is the row
    index.
    """
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if media_type not in MEDIA_TYPES:
        raise ValueError(f"media_type must be one of {MEDIA_TYPES}, got {media_type!r}")
    columns = {"media_column": media_column, "caption_column": caption_column, "label_column": label_column}
    for name, column in columns.items():
        if column is not None and column not in dataset.column_names:
            raise ValueError(f"{name} {column!r} is not a column of the dataset; columns: {dataset.column_names}")
    if caption_column is None and label_column is None:
        raise ValueError("pass caption_column (video-text data) or label_column (classification data)")
    raw = dataset.with_format(None)

    def normalise(batch, indices):
        output = {"media": [], "media_type": [media_type] * len(indices), "sample_id": list(indices)}
        for media in batch[media_column]:
            if isinstance(media, dict):  # {"bytes", "path"} of a non-decoded media feature
                media = media.get("bytes") or media.get("path")
            if isinstance(media, str):
                media = _resolve(media, data_root)
            elif not isinstance(media, (bytes, bytearray)):
                raise ValueError(f"media_column {media_column!r} must hold paths or bytes, got {type(media).__name__}")
            output["media"].append(media)
        if caption_column is not None:
            output["captions"], output["audio_visual_captions"] = [], []
            for index, value in zip(indices, batch[caption_column]):
                captions = [value] if isinstance(value, str) else list(value or [])
                captions = [caption.strip() for caption in captions if isinstance(caption, str) and caption.strip()]
                if not captions:
                    raise ValueError(f"row {index} of caption_column {caption_column!r} has an empty caption")
                output["captions"].append(captions)
                output["audio_visual_captions"].append([])
        if label_column is not None:
            output["label"] = [int(label) for label in batch[label_column]]
        return output

    return raw.map(normalise, batched=True, with_indices=True, remove_columns=raw.column_names)


# ---------------------------------------------------------------------------------------------------- transform


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded from a tuple of non-negative integers (well mixed by numpy's `SeedSequence`, so
    nearby tuples give unrelated streams)."""
    state = np.random.SeedSequence([int(key) for key in keys]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def _has_window(row: dict) -> bool:
    start, end = row.get("start_time"), row.get("end_time")
    return start is not None and end is not None and start >= 0 and end >= 0


def _media_source(media):
    if isinstance(media, dict):
        media = media.get("bytes") or media.get("path")
    if isinstance(media, (bytes, bytearray, str)):
        return bytes(media) if isinstance(media, bytearray) else media
    raise TypeError(f"media must be a path, bytes or a {{'bytes', 'path'}} dict, got {type(media).__name__}")


def _media_name(media) -> str:
    if isinstance(media, dict):
        media = media.get("path") or media.get("bytes")
    if isinstance(media, str):
        return media
    return f"<{len(media)} bytes>" if isinstance(media, (bytes, bytearray)) else repr(media)


class InternVideo2MediaTransform:
    """Decodes the media of dataset rows for training or evaluation; use with `Dataset.with_transform`.

    For every row it decodes the video (sampled and transformed by `video_processor`; Stage-1 rows with
    `start_time`/`end_time` >= 0 are sampled inside that window), the image (a one-frame video) or, for
    "audio_video" rows, the video plus its audio fbank (`feature_extractor`), and picks the caption: a random one of
    `captions` when `training`, else the first. Output columns: see `TRANSFORM_OUTPUT_COLUMNS` (None where a field
    does not apply): `pixel_values_videos` `(frames, 3, H, W)` (`(views, frames, 3, H, W)` for multi-view test
    processors), `input_features` / `audio_attention_mask`, `caption`, `captions`, `audio_visual_caption`,
    `label`, `sample_id`, `media_type`.

    Randomness (frame choice, crop, flip, caption, audio crop) comes from a generator seeded by
    `(seed, epoch, sample_id)`, so it does not depend on worker processes, the number of ranks or an interrupted run;
    call `set_epoch` (the Stage-2 trainer does) to change the draws every epoch.

    Unreadable media (missing file, corrupt or undecodable data, a video without the audio an audio-video row
    needs) never stops an epoch: a `MediaSkippedWarning` names the file, it is counted in `skipped`, and the row is
    replaced by a random row of `replacement_dataset` (official behaviour; the batch keeps its size) or, without
    one, dropped from the batch. More than `max_skipped` skips in this process raise a ValueError.

    Args:
        video_processor: the `InternVideo2VideoProcessor` (default: Stage-2 test pipeline, 8 frames, 224 px).
        feature_extractor: `InternVideo2FeatureExtractor` for audio-video rows.
        training: random caption choice and random audio crop.
        seed: base seed of the per-row generators.
        max_skipped: how many unreadable media this transform may skip before raising; None never raises.
        replacement_dataset: the raw (untransformed) dataset replacements are drawn from; usually the dataset this
            transform is set on.
        max_replacement_attempts: replacements tried for one row before raising.
        allow_missing_audio: use silence for audio-video rows whose file has no audio track instead of skipping.
        no_flip_sources: Stage-1 `source` values for which random flipping is disabled (SSv2: direction matters).
    """

    def __init__(
        self,
        video_processor: InternVideo2VideoProcessor | None = None,
        feature_extractor=None,
        *,
        training: bool = False,
        seed: int = 0,
        max_skipped: int | None = 100,
        replacement_dataset: datasets.Dataset | None = None,
        max_replacement_attempts: int = 10,
        allow_missing_audio: bool = False,
        no_flip_sources: Sequence[str] = ("ssv2",),
    ):
        if video_processor is not None and not isinstance(video_processor, InternVideo2VideoProcessor):
            raise TypeError(
                f"video_processor must be an InternVideo2VideoProcessor, got {type(video_processor).__name__}"
            )
        valid_count = isinstance(max_skipped, int) and not isinstance(max_skipped, bool) and max_skipped >= 0
        if max_skipped is not None and not valid_count:
            raise ValueError(f"max_skipped must be a non-negative int or None, got {max_skipped!r}")
        if not isinstance(max_replacement_attempts, int) or max_replacement_attempts < 1:
            raise ValueError(f"max_replacement_attempts must be a positive int, got {max_replacement_attempts!r}")
        if replacement_dataset is not None:
            if not isinstance(replacement_dataset, datasets.Dataset):
                raise TypeError(
                    f"replacement_dataset must be a datasets.Dataset, got {type(replacement_dataset).__name__}"
                )
            if len(replacement_dataset) == 0:
                raise ValueError("replacement_dataset is empty")
            replacement_dataset = replacement_dataset.with_format(None)  # raw rows, even if given a transformed one
        self.video_processor = video_processor if video_processor is not None else InternVideo2VideoProcessor()
        self.feature_extractor = feature_extractor
        self.training = training
        self.seed = int(seed)
        self.epoch = 0
        self.max_skipped = max_skipped
        self.replacement_dataset = replacement_dataset
        self.max_replacement_attempts = max_replacement_attempts
        self.allow_missing_audio = allow_missing_audio
        self.no_flip_sources = tuple(no_flip_sources)
        self.skipped: Counter[str] = Counter()

    @property
    def num_skipped(self) -> int:
        """Unreadable media skipped by this transform (in this process)."""
        return sum(self.skipped.values())

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of `epoch` (augmentation differs between epochs, is identical within one)."""
        self.epoch = int(epoch)

    def __call__(self, batch: Mapping[str, list]) -> dict[str, list]:
        if "media" not in batch or "sample_id" not in batch:
            raise ValueError(
                f"rows need 'media' and 'sample_id' columns (use the internvideo2.data loaders), got {sorted(batch)}"
            )
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        outputs = []
        for row in rows:
            item = self._load_or_replace(row)
            if item is not None:
                outputs.append(item)
        return {column: [item[column] for item in outputs] for column in TRANSFORM_OUTPUT_COLUMNS}

    def _load_or_replace(self, row: dict) -> dict | None:
        for attempt in range(self.max_replacement_attempts + 1):
            generator = seeded_generator(self.seed, self.epoch, int(row["sample_id"]), attempt)
            try:
                return self._load(row, generator)
            except (OSError, ValueError, EOFError, av.error.FFmpegError) as error:
                self._record_skip(row["media"], error)
            if self.replacement_dataset is None:
                return None
            index = int(torch.randint(len(self.replacement_dataset), (1,), generator=generator))
            row = self.replacement_dataset[index]
        raise ValueError(
            f"could not load a readable replacement in {self.max_replacement_attempts} attempts; last tried "
            f"{_media_name(row['media'])}"
        )

    def _record_skip(self, media, error: Exception) -> None:
        name = _media_name(media)
        self.skipped[name] += 1
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.max_skipped is not None and self.num_skipped > self.max_skipped:
            raise ValueError(
                f"too many unreadable media: {self.num_skipped} skipped (max_skipped={self.max_skipped}); last: "
                f"{name} ({reason})"
            )
        warnings.warn(
            f"skipping unreadable media {name}: {reason} ({self.num_skipped} skipped so far)",
            MediaSkippedWarning,
            stacklevel=3,
        )

    def _load(self, row: dict, generator: torch.Generator) -> dict:
        media_type = row.get("media_type") or "video"
        if media_type not in MEDIA_TYPES:
            raise TypeError(f"media_type must be one of {MEDIA_TYPES}, got {media_type!r}")
        source = _media_source(row["media"])
        if isinstance(source, str) and not os.path.exists(source):
            raise FileNotFoundError(f"media file not found: {source!r}")
        options = {"generator": generator, "return_tensors": "pt"}
        if row.get("source") in self.no_flip_sources:
            options["do_random_flip"] = False
        if media_type == "image":
            with PIL.Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                frames = [image.convert("RGB")]
            pixel_values = self.video_processor(frames, do_sample_frames=False, **options)["pixel_values_videos"]
        elif _has_window(row):
            pixel_values = self._window(source, row["start_time"], row["end_time"], options)
        else:
            pixel_values = self.video_processor(source, **options)["pixel_values_videos"]
        item = dict.fromkeys(TRANSFORM_OUTPUT_COLUMNS)
        item["pixel_values_videos"] = pixel_values[0] if pixel_values.shape[0] == 1 else pixel_values
        if media_type == "audio_video":
            if self.feature_extractor is None:
                raise TypeError("audio_video rows need a feature_extractor (InternVideo2FeatureExtractor)")
            audio_seed = int(torch.randint(2**31, (1,), generator=generator))
            audio = self.feature_extractor(
                source,
                random_crop=self.training,
                generator=np.random.default_rng(audio_seed),
                allow_missing_audio=self.allow_missing_audio,
                return_attention_mask=True,
                return_tensors="pt",
            )
            item["input_features"] = audio["input_features"][0]
            item["audio_attention_mask"] = audio["attention_mask"][0]
        captions = list(row.get("captions") or [])
        if captions:
            choice = int(torch.randint(len(captions), (1,), generator=generator)) if self.training else 0
            item["caption"], item["captions"] = captions[choice], captions
        audio_visual = list(row.get("audio_visual_captions") or [])
        if audio_visual:
            choice = int(torch.randint(len(audio_visual), (1,), generator=generator)) if self.training else 0
            item["audio_visual_caption"] = audio_visual[choice]
        item["label"] = row.get("label")
        item["sample_id"] = int(row["sample_id"])
        item["media_type"] = media_type
        return item

    def _window(self, source, start_time: float, end_time: float, options: dict) -> torch.Tensor:
        """Frames sampled inside `[start_time, end_time)` seconds (Stage-1 clips), decoded without the rest."""
        video = open_video(source)
        metadata = video.metadata
        if not metadata.fps:
            raise ValueError(f"{video.name} has no frame rate: cannot locate start_time/end_time")
        total = metadata.total_num_frames
        first = min(int(start_time * metadata.fps), total - 1)
        last = min(max(int(end_time * metadata.fps), first + 1), total)
        window = VideoMetadata(total_num_frames=last - first, fps=metadata.fps)
        offsets = self.video_processor.sample_frames(window, generator=options["generator"])
        indices = [first + offset for offset in offsets]
        frames = video.get_frames(indices)
        return self.video_processor(frames, do_sample_frames=False, **options)["pixel_values_videos"]


def stage2_video_processor(
    *, num_frames: int = 4, image_size: int = 224, training: bool = False, **options
) -> InternVideo2VideoProcessor:
    """The official Stage-2 / CLIP video pipeline at `num_frames` x `image_size`: random segment frames +
    RandomResizedCrop(scale 0.5-1) + flip for training, middle frames + plain resize for evaluation."""
    preset = "stage2_train" if training else "stage2_test"
    return InternVideo2VideoProcessor(preset=preset, num_frames=num_frames, size=image_size, **options)


__all__ = [
    "CLASSIFICATION_FEATURES",
    "MEDIA_TYPES",
    "STAGE1_FEATURES",
    "TRANSFORM_OUTPUT_COLUMNS",
    "VIDEO_TEXT_FEATURES",
    "InternVideo2MediaTransform",
    "MediaSkippedWarning",
    "from_media_dataset",
    "load_classification_csv",
    "load_retrieval_json",
    "load_stage1_csv",
    "load_video_text_json",
    "seeded_generator",
    "stage2_video_processor",
]
