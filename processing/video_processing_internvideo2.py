# Copyright 2025 The InternVideo2 re-implementation authors. Apache-2.0.
"""Video processor for InternVideo2: decoding (PyAV), frame sampling and the official spatial pipelines.

transformers' ``BaseVideoProcessor`` needs torchvision (and decodes with torchcodec). This processor builds on
``VideoProcessorMixin`` (``save_pretrained`` / ``from_pretrained`` / ``to_dict`` / ``video_processor_type``) and does
everything with torch ops, so it runs with or without torchvision, on CPU or on a given ``device``.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata

from .frame_sampling import SAMPLING_MODES, count_repeated_frames, sample_frame_indices
from .video_decoding import DECODE_METHODS, open_video
from .video_transforms import (
    center_crop_frames,
    normalize_frames,
    random_horizontal_flip,
    random_resized_crop,
    rescale_frames,
    resize_frames,
    resize_output_size,
    uniform_crops,
)


_INTERPOLATIONS = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


class InternVideo2VideosKwargs(VideosKwargs, total=False):
    r"""
    sampling (`str`, *optional*, defaults to `"middle"`):
        Frame sampling: `"middle"` (test) or `"rand"` (training) segment sampling, `"fps"` (one frame per `1 / fps`
        seconds, at most `num_frames`), or `"sparse"` (the fine-tuning test clips).
    num_clips (`int`, *optional*, defaults to 1):
        Temporal test clips per video (`sampling="sparse"`); each clip is one output view.
    num_crops (`int`, *optional*, defaults to 1):
        Spatial test crops of `crop_size` spread along the long side; more than 1 replaces the center crop.
    antialias (`bool`, *optional*, defaults to `False`):
        Antialias when resizing. `False` is the official torchvision-0.14 tensor path.
    resize_uint8 (`bool`, *optional*, defaults to `True`):
        Resize the uint8 frames and round back to uint8 (what torchvision did on uint8 tensors: Stage-2 / CLIP);
        `False` rescales to float first and resizes in float (the chat demo).
    do_random_resized_crop (`bool`, *optional*, defaults to `False`):
        Training crop: one random window per clip (`crop_scale`, `crop_ratio`), resized to `size`.
    crop_scale (`list[float]`, *optional*, defaults to `[0.5, 1.0]`):
        Range of the crop area as a fraction of the frame area.
    crop_ratio (`list[float]`, *optional*, defaults to `[3/4, 4/3]`):
        Range of the crop aspect ratio (width / height), sampled log-uniformly.
    do_random_flip (`bool`, *optional*, defaults to `False`):
        Mirror the whole clip left-right with probability `flip_prob`.
    flip_prob (`float`, *optional*, defaults to 0.5):
        Probability of the flip.
    decode_method (`str`, *optional*, defaults to `"auto"`):
        `"seek"`, `"sequential"` or `"auto"` (whichever decodes fewer frames).
    generator (`torch.Generator`, *optional*):
        Source of the random draws (`sampling="rand"`, random crop, flip); seed it to reproduce them.
    """

    sampling: str | None
    num_clips: int | None
    num_crops: int | None
    antialias: bool | None
    resize_uint8: bool | None
    do_random_resized_crop: bool | None
    crop_scale: list[float] | None
    crop_ratio: list[float] | None
    do_random_flip: bool | None
    flip_prob: float | None
    decode_method: str | None
    generator: torch.Generator | None


@dataclass
class InternVideo2VideoMetadata(VideoMetadata):
    """`VideoMetadata` of one output view, with how it was sampled.

    `frames_indices` are the sampled frames (repeats included), `timestamps` their times in seconds (when `fps` is
    known), `num_repeated_frames` how many of them repeat an earlier one because the video is shorter than the clip.
    """

    num_repeated_frames: int = 0
    video_index: int = 0
    clip_index: int = 0
    crop_index: int = 0

    @property
    def is_padded(self) -> bool:
        return self.num_repeated_frames > 0


# Options saved in `video_preprocessor_config.json`; the rest of the kwargs only apply to one call.
_OPTIONS = (
    "do_sample_frames",
    "num_frames",
    "fps",
    "sampling",
    "num_clips",
    "decode_method",
    "do_resize",
    "size",
    "resample",
    "antialias",
    "resize_uint8",
    "do_random_resized_crop",
    "crop_scale",
    "crop_ratio",
    "do_random_flip",
    "flip_prob",
    "do_center_crop",
    "crop_size",
    "num_crops",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "return_metadata",
)
_CALL_ONLY = ("generator", "device", "video_metadata", "return_tensors", "input_data_format")
_VIDEO_FIELDS = tuple(name for name in VideoMetadata.__dataclass_fields__ if name != "frames_indices")
_FLAGS = tuple(
    name for name in _OPTIONS if name.startswith(("do_", "return_")) or name in ("antialias", "resize_uint8")
)

PRESETS = {
    # Stage-2 / CLIP test: the class defaults (Resize((224, 224)) bicubic on uint8, no antialias, no crop).
    "stage2_test": {},
    # Stage-2 training: random frame per segment, RandomResizedCrop(224, scale=(0.5, 1)) bicubic + horizontal flip.
    "stage2_train": {"sampling": "rand", "do_random_resized_crop": True, "do_random_flip": True},
    # Chat demo: /255, Resize(224) (short side) bicubic in float, CenterCrop(224).
    "chat": {
        "size": {"shortest_edge": 224},
        "resize_uint8": False,
        "do_center_crop": True,
        "crop_size": {"height": 224, "width": 224},
    },
    # Fine-tuning test views: 4 sparse clips x 3 crops along the long side of a short-side-224 bilinear resize.
    "finetune_test": {
        "sampling": "sparse",
        "num_clips": 4,
        "num_crops": 3,
        "size": {"shortest_edge": 224},
        "resample": PILImageResampling.BILINEAR,
        "crop_size": {"height": 224, "width": 224},
    },
}


def _size_dict(value, name: str) -> dict[str, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"height": value, "width": value}
    if isinstance(value, dict):
        keys = set(value)
        if keys in ({"height", "width"}, {"shortest_edge"}) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()
        ):
            return {key: int(value[key]) for key in sorted(keys)}
    raise ValueError(f"`{name}` must be a positive int, {{'height', 'width'}} or {{'shortest_edge'}}, got {value!r}")


def _is_positive_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and value > 0


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def _range_pair(value, name: str) -> list[float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not 0 < value[0] <= value[1]
    ):
        raise ValueError(f"`{name}` must be two numbers 0 < low <= high, got {value!r}")
    return [float(value[0]), float(value[1])]


def _validated(options: dict) -> dict:
    """Check every option and return them in canonical, JSON-friendly form; errors are one line naming the option."""
    options = dict(options)
    for name in _FLAGS:
        if not isinstance(options[name], bool):
            raise ValueError(f"`{name}` must be True or False, got {options[name]!r}")
    options["num_frames"] = _positive_int(options["num_frames"], "num_frames")
    if options["sampling"] not in SAMPLING_MODES:
        raise ValueError(f"`sampling` must be one of {SAMPLING_MODES}, got {options['sampling']!r}")
    if options["fps"] is not None and not _is_positive_number(options["fps"]):
        raise ValueError(f"`fps` must be a positive number, got {options['fps']!r}")
    if options["sampling"] == "fps" and options["fps"] is None:
        raise ValueError("`sampling='fps'` needs `fps`, the number of frames to sample per second")
    options["num_clips"] = _positive_int(options["num_clips"], "num_clips")
    if options["num_clips"] > 1 and (options["sampling"] != "sparse" or not options["do_sample_frames"]):
        raise ValueError(f"`num_clips={options['num_clips']}` needs sampling='sparse' and do_sample_frames=True")
    if options["decode_method"] not in DECODE_METHODS:
        raise ValueError(f"`decode_method` must be one of {DECODE_METHODS}, got {options['decode_method']!r}")
    options["size"] = _size_dict(options["size"], "size")
    if (options["do_resize"] or options["do_random_resized_crop"]) and options["size"] is None:
        raise ValueError("`size` is required when do_resize or do_random_resized_crop is set")
    if options["resample"] not in _INTERPOLATIONS:
        raise ValueError(
            f"`resample` must be PILImageResampling NEAREST, BILINEAR or BICUBIC, got {options['resample']!r}"
        )
    options["resample"] = int(options["resample"])
    options["crop_scale"] = _range_pair(options["crop_scale"], "crop_scale")
    options["crop_ratio"] = _range_pair(options["crop_ratio"], "crop_ratio")
    if not (_is_positive_number(options["flip_prob"]) or options["flip_prob"] == 0) or options["flip_prob"] > 1:
        raise ValueError(f"`flip_prob` must be a number in [0, 1], got {options['flip_prob']!r}")
    if not _is_positive_number(options["rescale_factor"]):
        raise ValueError(f"`rescale_factor` must be a positive number, got {options['rescale_factor']!r}")
    options["crop_size"] = _size_dict(options["crop_size"], "crop_size")
    if options["crop_size"] is not None and "shortest_edge" in options["crop_size"]:
        raise ValueError(f"`crop_size` must be {{'height', 'width'}}, got {options['crop_size']!r}")
    options["num_crops"] = _positive_int(options["num_crops"], "num_crops")
    if (options["do_center_crop"] or options["num_crops"] > 1) and options["crop_size"] is None:
        raise ValueError("`crop_size` is required when do_center_crop is set or num_crops > 1")
    if options["num_crops"] > 1 and options["do_random_resized_crop"]:
        raise ValueError("`num_crops > 1` (test views) cannot be combined with do_random_resized_crop (training)")
    for name in ("image_mean", "image_std"):
        value = options[name]
        value = [value] * 3 if _is_positive_number(value) else value
        if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_positive_number(v) for v in value):
            raise ValueError(
                f"`{name}` must be one or 3 (one per RGB channel) positive numbers, got {options[name]!r}"
            )
        options[name] = [float(v) for v in value]
    return options


@contextlib.contextmanager
def _naming_errors(video_index: int, num_videos: int):
    """Prefix errors about one video of a batch with its position, so the message names the input."""
    try:
        yield
    except (ValueError, TypeError, FileNotFoundError) as error:
        if num_videos == 1:
            raise
        raise type(error)(f"videos[{video_index}]: {error}") from None


def _checked_metadata(metadata) -> dict:
    metadata = dict(metadata)
    unknown = sorted(set(metadata) - set(VideoMetadata.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"`video_metadata` has unknown key(s) {unknown}; valid keys: {list(VideoMetadata.__dataclass_fields__)}"
        )
    return {key: value for key, value in metadata.items() if value is not None}


def _as_video_list(videos) -> list:
    """Split ``videos`` into a list of single videos (a path, bytes, file object, 4-D array or list of PIL images)."""
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        return list(videos) if videos.ndim == 5 else [videos]
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise ValueError("`videos` is empty")
        if all(isinstance(frame, PIL.Image.Image) for frame in videos):
            return [videos]
        return list(videos)
    return [videos]


class InternVideo2VideoProcessor(VideoProcessorMixin):
    r"""
    Turns videos into `pixel_values_videos` of shape `(batch_size * views, num_frames, 3, height, width)` (float32,
    ImageNet-normalised) the way the official InternVideo2 pipelines do.

    Videos can be paths, binary file objects, bytes, uint8 arrays / tensors (`(T, H, W, 3)` or `(T, 3, H, W)`, or a
    5-D batch) or lists of PIL images. Encoded videos are decoded with PyAV, seeking to the sampled frames.

    The defaults are the Stage-2 / CLIP test path: 8 frames sampled at the middle of 8 segments, `Resize((224, 224))`
    bicubic on the uint8 frames without antialias (torchvision 0.14), no crop, ImageNet mean / std. `preset` selects
    another official pipeline (see `PRESETS`): `"stage2_train"`, `"chat"` (short side 224 + center crop 224) or
    `"finetune_test"` (4 clips x 3 crops). Options given next to `preset` override it.

    Test views (`num_clips` x `num_crops` per video) are laid out video by video, then clip, then crop, so
    `pixel_values_videos.view(batch_size, num_clips * num_crops, ...)` groups the views of each video.
    `return_metadata=True` adds `video_metadata`: one `InternVideo2VideoMetadata` per view with the frame indices,
    timestamps, fps, frame count and how many frames were repeated to fill the clip.
    """

    valid_kwargs = InternVideo2VideosKwargs
    model_input_names = ["pixel_values_videos"]

    do_sample_frames = True
    num_frames = 8
    fps = None
    sampling = "middle"
    num_clips = 1
    decode_method = "auto"
    do_resize = True
    size = {"height": 224, "width": 224}
    resample = PILImageResampling.BICUBIC
    antialias = False
    resize_uint8 = True
    do_random_resized_crop = False
    crop_scale = [0.5, 1.0]
    crop_ratio = [3 / 4, 4 / 3]
    do_random_flip = False
    flip_prob = 0.5
    do_center_crop = False
    crop_size = None
    num_crops = 1
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    return_metadata = False

    def __init__(self, preset: str | None = None, **kwargs):
        super().__init__()
        # Written by `to_dict`; not options.
        kwargs.pop("video_processor_type", None)
        kwargs.pop("processor_class", None)
        unknown = sorted(set(kwargs) - set(_OPTIONS))
        if unknown:
            raise TypeError(f"InternVideo2VideoProcessor got unknown option(s) {unknown}")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"`preset` must be one of {tuple(PRESETS)}, got {preset!r}")
        settings = {**PRESETS.get(preset, {}), **kwargs}
        options = {
            name: copy.deepcopy(settings[name] if name in settings else getattr(type(self), name)) for name in _OPTIONS
        }
        for name, value in _validated(options).items():
            setattr(self, name, value)

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: float | None = None,
        sampling: str | None = None,
        clip_index: int = 0,
        num_clips: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Indices of the frames of clip `clip_index` to feed the model (see `internvideo2.processing.frame_sampling`).

        Arguments left as None take the processor's value.
        """
        return sample_frame_indices(
            self.num_frames if num_frames is None else num_frames,
            metadata.total_num_frames,
            self.sampling if sampling is None else sampling,
            video_fps=metadata.fps,
            fps=self.fps if fps is None else fps,
            clip_index=clip_index,
            num_clips=self.num_clips if num_clips is None else num_clips,
            generator=generator,
        )

    def preprocess(self, videos, **kwargs) -> BatchFeature:
        """Process `videos` (see the class docstring). Keyword arguments override the processor's options for this
        call; `generator`, `device`, `video_metadata` (e.g. `{"fps": 30}` for decoded frames), `input_data_format`
        and `return_tensors` apply to this call only."""
        unknown = sorted(set(kwargs) - set(_OPTIONS) - set(_CALL_ONLY))
        if unknown:
            raise TypeError(f"InternVideo2VideoProcessor got unknown or unsupported argument(s) {unknown}")
        options = _validated({name: kwargs.get(name, getattr(self, name)) for name in _OPTIONS})
        generator = kwargs.get("generator")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}")
        device = kwargs.get("device")
        if device is not None:
            try:
                device = torch.device(device)
            except (RuntimeError, TypeError) as error:
                raise ValueError(f"`device` {device!r} is not a valid torch device ({error})") from None

        sources = _as_video_list(videos)
        given_metadata = kwargs.get("video_metadata")
        if given_metadata is not None:
            given_metadata = given_metadata if isinstance(given_metadata, (list, tuple)) else [given_metadata]
            if len(given_metadata) != len(sources):
                raise ValueError(f"got {len(sources)} videos but {len(given_metadata)} `video_metadata` entries")

        # First pass: open every video and sample its clips, so that clips of different lengths (`fps` sampling,
        # `do_sample_frames=False`) can be padded to a common length by repeating their last frame.
        opened = []
        for video_index, source in enumerate(sources):
            with _naming_errors(video_index, len(sources)):
                video = open_video(source, input_data_format=kwargs.get("input_data_format"))
                metadata = copy.copy(video.metadata)
                if given_metadata is not None:
                    metadata.update(_checked_metadata(given_metadata[video_index]))
                opened.append((video, metadata, self._clip_indices(metadata, options, generator)))
        clip_length = max(len(clip) for _, _, clips in opened for clip in clips)

        pixel_values, views_metadata = [], []
        for video_index, (video, metadata, clips) in enumerate(opened):
            clips = [clip + clip[-1:] * (clip_length - len(clip)) for clip in clips]
            union = sorted(set(index for clip in clips for index in clip))
            with _naming_errors(video_index, len(sources)):
                frames = video.get_frames(union, method=options["decode_method"])
            if device is not None:
                frames = frames.to(device)
            row_of = {index: row for row, index in enumerate(union)}
            video_fields = {name: metadata[name] for name in _VIDEO_FIELDS}
            for clip_index, indices in enumerate(clips):
                rows = torch.as_tensor([row_of[index] for index in indices], device=frames.device)
                for crop_index, view in enumerate(self._transform(frames[rows], options, generator)):
                    pixel_values.append(view)
                    views_metadata.append(
                        InternVideo2VideoMetadata(
                            **video_fields,
                            frames_indices=list(indices),
                            num_repeated_frames=count_repeated_frames(indices),
                            video_index=video_index,
                            clip_index=clip_index,
                            crop_index=crop_index,
                        )
                    )

        shapes = {tuple(view.shape) for view in pixel_values}
        if len(shapes) > 1:
            raise ValueError(
                f"the processed videos have different shapes {sorted(shapes)}; resize to a fixed `size` or use a crop"
            )
        output = BatchFeature(
            data={"pixel_values_videos": torch.stack(pixel_values)}, tensor_type=kwargs.get("return_tensors")
        )
        if options["return_metadata"]:
            output["video_metadata"] = views_metadata
        return output

    def _clip_indices(self, metadata: VideoMetadata, options: dict, generator) -> list[list[int]]:
        if not options["do_sample_frames"]:
            return [list(range(metadata.total_num_frames))]
        return [
            self.sample_frames(
                metadata,
                num_frames=options["num_frames"],
                fps=options["fps"],
                sampling=options["sampling"],
                clip_index=clip_index,
                num_clips=options["num_clips"],
                generator=generator,
            )
            for clip_index in range(options["num_clips"])
        ]

    def _transform(self, frames: torch.Tensor, options: dict, generator) -> list[torch.Tensor]:
        """Spatial pipeline of one clip of uint8 `(T, 3, H, W)` frames; returns its views as float32 tensors."""
        interpolation = _INTERPOLATIONS[options["resample"]]
        if not options["resize_uint8"]:
            frames = rescale_frames(frames, options["rescale_factor"]) if options["do_rescale"] else frames.float()
        if options["do_random_resized_crop"]:
            size = options["size"]
            output_size = (size["height"], size["width"]) if "height" in size else (size["shortest_edge"],) * 2
            frames = random_resized_crop(
                frames,
                output_size,
                scale=options["crop_scale"],
                ratio=options["crop_ratio"],
                interpolation=interpolation,
                antialias=options["antialias"],
                generator=generator,
            )
        elif options["do_resize"]:
            output_size = resize_output_size(frames.shape[-2], frames.shape[-1], options["size"])
            frames = resize_frames(frames, output_size, interpolation=interpolation, antialias=options["antialias"])
        if options["do_random_flip"]:
            frames = random_horizontal_flip(frames, options["flip_prob"], generator=generator)
        crop = options["crop_size"]
        if options["num_crops"] > 1:
            views = uniform_crops(frames, (crop["height"], crop["width"]), options["num_crops"])
        elif options["do_center_crop"]:
            views = [center_crop_frames(frames, (crop["height"], crop["width"]))]
        else:
            views = [frames]
        processed = []
        for view in views:
            if not view.is_floating_point():
                view = rescale_frames(view, options["rescale_factor"]) if options["do_rescale"] else view.float()
            if options["do_normalize"]:
                view = normalize_frames(view, options["image_mean"], options["image_std"])
            processed.append(view)
        return processed


__all__ = ["InternVideo2VideoProcessor", "InternVideo2VideoMetadata", "InternVideo2VideosKwargs", "PRESETS"]
