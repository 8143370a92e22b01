"""What every evaluation task shares: command-line options, the run context (accelerate, device, dtype), loading the
model / tokenizer / processors saved with it, and sharded feature extraction.

Feature extraction runs under `accelerate`: the dataset is sharded between processes (`Accelerator.prepare`) and the
outputs of every batch are gathered with `Accelerator.gather_for_metrics`, which drops the samples repeated to even
out the last batch; every process ends with the features of the whole dataset, in dataset order. Launch with
`accelerate launch` / `torchrun` for several GPUs (or CPU processes with gloo), or plain `python` for one.
"""

import argparse
import functools
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .annotations import AnnotationSet, class_names_from_file, prepare_annotations, read_records


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")


@dataclass(frozen=True)
class Task:
    """A command of `python -m internvideo2.eval`: `add_arguments(parser)` declares its options, `run(args)` runs it
    and returns the results written to results.json (an empty dict on processes other than the main one)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict]
    description: str = ""


# ----------------------------------------------------------------------------------------------------- arguments


def add_model_arguments(
    parser: argparse.ArgumentParser, text: bool = True, plot: bool = True, scores: bool = True
) -> None:
    """Options of every task; `text`, `plot`, `scores` add --tokenizer, --no-plot, --save-scores."""
    group = parser.add_argument_group("model and run")
    group.add_argument("--model", required=True, help="folder written by save_pretrained (or a Hub name in the cache)")
    if text:
        group.add_argument("--tokenizer", help="tokenizer folder when it is not saved with the model")
    group.add_argument("--output-dir", help="where results.json, results.md and plots go (default eval_results/<task>)")
    group.add_argument("--batch-size", type=int, default=8, help="media per forward pass (default 8)")
    group.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes (default 0)")
    group.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="auto (accelerate's choice: the process's GPU if any), cpu, or cuda",
    )
    group.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="weights dtype (default float32)")
    group.add_argument(
        "--attn-implementation", choices=ATTENTION_IMPLEMENTATIONS, help="attention backend (default sdpa)"
    )
    if plot:
        group.add_argument("--no-plot", action="store_true", help="do not draw plots")
    if scores:
        group.add_argument("--save-scores", action="store_true", help="also write the raw scores to scores.safetensors")


def add_data_arguments(
    parser: argparse.ArgumentParser, annotations_help: str, media: bool = True, annotations_required: bool = True
) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--annotations", required=annotations_required, help=annotations_help)
    group.add_argument("--media-root", default="", help="folder the relative media paths are joined to")
    group.add_argument("--dataset-split", help="split of a `datasets` DatasetDict or Hub dataset")
    group.add_argument("--video-column", default="video", help="column holding the media path (default video)")
    group.add_argument("--caption-column", default="caption", help="column holding captions / class names")
    group.add_argument("--label-column", default="label", help="column holding class labels")
    group.add_argument("--answer-column", default="answer", help="column holding the answer index (multiple choice)")
    group.add_argument("--csv-delimiter", default=",", help="delimiter of CSV annotations (default ',')")
    group.add_argument("--max-samples", type=int, help="use only the first N records")
    group.add_argument("--strict", action="store_true", help="fail on the first bad record instead of skipping it")
    if media:
        group.add_argument("--num-frames", type=int, help="frames per clip (default: the saved video processor's)")
        group.add_argument("--image-size", type=int, help="frame size (default: the saved video processor's)")


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("text")
    group.add_argument(
        "--max-text-length", type=int, help="caption tokens (default: the tokenizer's model_max_length, 32)"
    )
    group.add_argument("--text-batch-size", type=int, default=256, help="captions per text forward (default 256)")


def load_annotations(
    args, required: dict, source: str | None = None, check_media: bool = True, record_check=None,
    label_from_caption: bool = False,
) -> AnnotationSet:
    """Read `--annotations` (or `source`) and keep the usable records (see `prepare_annotations`).

    `label_from_caption`: records without a label take their caption as the class name (the official
    action-recognition JSON names the class in `caption`).
    """
    source = source or args.annotations
    columns = {
        "video": args.video_column,
        "caption": args.caption_column,
        "label": args.label_column,
        "answer": args.answer_column,
    }
    records = read_records(source, split=args.dataset_split, columns=columns, csv_delimiter=args.csv_delimiter)
    if label_from_caption:
        records = [
            {**record, "label": record["caption"]} if record.get("label") is None and "caption" in record else record
            for record in records
        ]
    annotations = prepare_annotations(
        records,
        source=source,
        required=required,
        media_root=args.media_root,
        strict=args.strict,
        max_samples=args.max_samples,
        check_media=check_media,
        record_check=record_check,
    )
    if annotations.skipped:
        from accelerate.logging import get_logger

        reasons = "; ".join(f"{entry['count']} {reason} (e.g. {entry['examples'][0]})" for reason, entry in
                            annotations.skipped.items())
        get_logger(__name__).warning(
            f"skipped {annotations.num_skipped} of {annotations.num_read} records of {source}: {reasons}"
        )
    return annotations


def class_names_argument(args) -> list[str] | None:
    return class_names_from_file(args.class_names_file) if getattr(args, "class_names_file", None) else None


# ------------------------------------------------------------------------------------------------------- context


@dataclass
class EvalContext:
    """The accelerator (processes and device), the weights dtype, and where outputs go."""

    accelerator: object
    dtype: torch.dtype
    output_dir: Path
    task: str

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def progress(self) -> bool:
        return self.accelerator.is_local_main_process


def make_context(args, task: str) -> EvalContext:
    from accelerate import Accelerator

    _check_positive(args.batch_size, "--batch-size")
    if args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    accelerator = Accelerator(cpu=args.device == "cpu")
    output_dir = Path(args.output_dir or os.path.join("eval_results", task))
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    return EvalContext(accelerator=accelerator, dtype=DTYPES[args.dtype], output_dir=output_dir, task=task)


def _check_positive(value, name: str) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")


# ------------------------------------------------------------------------------------------------------- loading


def load_model(path: str, ctx: EvalContext, attn_implementation: str | None = None, kind: str = "stage2"):
    """Load a saved model in eval mode on the context's device and dtype.

    `kind`: "stage2" (an `InternVideo2Model`), "classifier" (`InternVideo2ForVideoClassification`), or "vision"
    (anything holding a video encoder: a vision model, a classifier or a Stage-2 model).
    """
    from internvideo2 import (  # importing the package registers the Auto classes
        InternVideo2Config,
        InternVideo2ForVideoClassification,
        InternVideo2Model,
        InternVideo2VisionModel,
    )
    from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"--model {path} is not a saved model folder ({str(error).splitlines()[0]})") from None
    architecture = (getattr(config, "architectures", None) or [type(config).__name__])[0]
    is_stage2 = isinstance(config, InternVideo2Config)
    is_classifier = architecture == InternVideo2ForVideoClassification.__name__
    wanted = {"stage2": is_stage2, "classifier": is_classifier, "vision": True}[kind]
    if not wanted:
        needed = {"stage2": "a Stage-2 InternVideo2Model", "classifier": "an InternVideo2ForVideoClassification"}[kind]
        raise ValueError(f"--model {path} holds a {architecture}; this task needs {needed}")
    auto = AutoModelForVideoClassification if is_classifier else AutoModel
    kwargs = {"dtype": ctx.dtype}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = auto.from_pretrained(path, config=config, **kwargs)
    if not isinstance(model, (InternVideo2Model, InternVideo2ForVideoClassification, InternVideo2VisionModel)):
        raise ValueError(f"--model {path} holds a {type(model).__name__}, not an InternVideo2 model")
    return model.to(ctx.device).eval()


def vision_encoder(model):
    """The `InternVideo2VisionModel` inside a Stage-2 model or a classifier (or the model itself)."""
    for name in ("vision_model", "internvideo2"):
        if hasattr(model, name):
            return getattr(model, name)
    return model


def vision_config(model):
    return vision_encoder(model).config


def load_tokenizer(args):
    from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer

    path = getattr(args, "tokenizer", None) or args.model
    try:
        return InternVideo2Tokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"no InternVideo2 tokenizer in {path} ({str(error).splitlines()[0]}); save one with the model or pass "
            "--tokenizer"
        ) from None


def load_video_processor(args, model, **defaults):
    """The video processor saved with the model (else one built from `defaults` and the encoder's frame count and
    size), and the per-call overrides from `--num-frames` / `--image-size`."""
    from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor

    config = vision_config(model)
    try:
        processor = InternVideo2VideoProcessor.from_pretrained(args.model)
    except OSError:
        defaults = {"num_frames": config.num_frames, "size": config.image_size, **defaults}
        processor = InternVideo2VideoProcessor(**defaults)
    overrides = {}
    _check_positive(args.num_frames, "--num-frames")
    _check_positive(args.image_size, "--image-size")
    if args.num_frames:
        overrides["num_frames"] = args.num_frames
    if args.image_size:
        overrides["size"] = (
            {"shortest_edge": args.image_size} if "shortest_edge" in (processor.size or {}) else args.image_size
        )
        if processor.crop_size is not None:
            overrides["crop_size"] = args.image_size
    return processor, overrides


def center_crop_if_needed(processor, overrides: dict) -> dict:
    """Extra options so that a single-crop view is square: a short-side resize without crops gets a center crop
    (of `crop_size`, else of the short side), since the encoder takes square frames."""
    size = overrides.get("size", processor.size)
    single_crop = overrides.get("num_crops", processor.num_crops) == 1
    center_crop = overrides.get("do_center_crop", processor.do_center_crop)
    if single_crop and not center_crop and isinstance(size, dict) and "shortest_edge" in size:
        crop_size = overrides.get("crop_size", processor.crop_size) or size["shortest_edge"]
        return {"do_center_crop": True, "crop_size": crop_size}
    return {}


def load_feature_extractor(args):
    from internvideo2.processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor

    try:
        return InternVideo2FeatureExtractor.from_pretrained(args.model)
    except OSError:
        return InternVideo2FeatureExtractor()


# ------------------------------------------------------------------------------------------------------ datasets


class MediaDataset(Dataset):
    """Records -> model inputs with `load(record)`; every item also carries its position as `index`."""

    def __init__(self, records: list[dict], load: Callable[[dict], dict]):
        self.records, self.load = records, load

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, position: int) -> dict:
        return {**self.load(self.records[position]), "index": position}


def _load_video(record: dict, processor, overrides: dict) -> dict:
    return {"pixel_values_videos": processor(record["video"], return_tensors="pt", **overrides)["pixel_values_videos"]}


def _load_audio(record: dict, feature_extractor, allow_missing_audio: bool) -> dict:
    features = feature_extractor(record["video"], allow_missing_audio=allow_missing_audio, return_tensors="pt")
    return {"input_features": features["input_features"][0], "audio_attention_mask": features["attention_mask"][0]}


def video_loader(processor, overrides: dict) -> Callable[[dict], dict]:
    """`pixel_values_videos` of shape (views, frames, 3, height, width) per record."""
    return functools.partial(_load_video, processor=processor, overrides=overrides)


def audio_loader(feature_extractor, allow_missing_audio: bool = False) -> Callable[[dict], dict]:
    """`input_features` (frames, mel bins) and `audio_attention_mask` of the record's audio track."""
    return functools.partial(_load_audio, feature_extractor=feature_extractor, allow_missing_audio=allow_missing_audio)


def both_loader(*loads: Callable[[dict], dict]) -> Callable[[dict], dict]:
    return functools.partial(_merge_loads, loads=loads)


def _merge_loads(record: dict, loads) -> dict:
    merged = {}
    for load in loads:
        merged.update(load(record))
    return merged


@torch.no_grad()
def extract_features(
    ctx: EvalContext,
    dataset: Dataset,
    encode: Callable[[dict], dict[str, torch.Tensor]],
    batch_size: int,
    num_workers: int = 0,
    desc: str = "extracting features",
) -> dict[str, torch.Tensor]:
    """Run `encode(batch)` over `dataset`, sharded between processes, and return every output for the whole
    dataset (on the CPU, in dataset order) on every process."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    loader = ctx.accelerator.prepare(loader)
    outputs = defaultdict(list)
    for batch in tqdm(loader, desc=desc, disable=not ctx.progress):
        result = {**encode(batch), "index": batch["index"]}
        for name, value in ctx.accelerator.gather_for_metrics(result).items():
            outputs[name].append(value.cpu())
    merged = {name: torch.cat(values) for name, values in outputs.items()}
    order = merged.pop("index").argsort()
    return {name: value[order] for name, value in merged.items()}


def as_model_input(tensor: torch.Tensor, model) -> torch.Tensor:
    return tensor.to(model.device, model.dtype)


__all__ = [
    "DTYPES",
    "Task",
    "EvalContext",
    "MediaDataset",
    "add_data_arguments",
    "add_model_arguments",
    "add_text_arguments",
    "as_model_input",
    "audio_loader",
    "both_loader",
    "center_crop_if_needed",
    "class_names_argument",
    "extract_features",
    "load_annotations",
    "load_feature_extractor",
    "load_model",
    "load_tokenizer",
    "load_video_processor",
    "make_context",
    "video_loader",
    "vision_config",
    "vision_encoder",
]
