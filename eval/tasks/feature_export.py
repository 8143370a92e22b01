"""Sliding-window video features for temporal action localisation (ActionFormer / OpenTAD style inputs).

    python -m internvideo2.eval export-features --model MODEL --annotations videos.json --media-root VIDEOS \\
        --output-dir features/ [--window-frames 16 --stride-frames 4 --frames-per-window 8 --layer -7]

Each video is cut into windows of `--window-frames` consecutive frames starting every `--stride-frames` frames
(windows lie inside the video; a video shorter than one window gives one window over all its frames).
`--frames-per-window` frames are taken from each window at the middle of equal segments (the Stage-2 test sampling)
and encoded by the video encoder up to block `--layer` (default -7, counted from the end; blocks after it are not
run). The window's feature is the mean of its patch tokens (the class token dropped, as OpenTAD does), or with
`--pooling cls` the class token.

Streaming: a video is opened once (its packet index, no decoding), then every window is decoded on its own,
seeking to the keyframe before it, and at most `--batch-size` decoded windows are held at a time, so memory does not
grow with the video's length. With several processes the videos are split between them.

Output, per video (`<name>` = the media path relative to `--media-root`, without extension, `/` -> `__`):
  - `<name>.safetensors`: tensor `features`, float32, shape (num_windows, hidden_size);
  - `<name>.json`: the video path, fps, frame count, settings and `windows`, a list of
    `{"start_frame", "end_frame" (exclusive), "start_time", "end_time" (seconds), "frame_indices"}`;
plus `index.json` (every video and its files), `results.json` and `results.md`.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from internvideo2.processing.frame_sampling import segment_frame_indices
from internvideo2.processing.video_decoding import open_video

from .annotations import prepare_annotations
from .common import (
    Task,
    add_data_arguments,
    add_model_arguments,
    center_crop_if_needed,
    load_annotations,
    load_model,
    load_video_processor,
    make_context,
    vision_encoder,
)
from .reporting import write_report


POOLINGS = ("mean", "cls")
FORMAT = "internvideo2-window-features/1"


def add_arguments(parser) -> None:
    add_model_arguments(parser, text=False, plot=False, scores=False)
    add_data_arguments(
        parser, "JSON / CSV / datasets records with a 'video' path (or use --videos)", annotations_required=False
    )
    group = parser.add_argument_group("windows")
    group.add_argument("--videos", nargs="+", help="video paths, instead of --annotations")
    group.add_argument("--window-frames", type=int, default=16, help="frames per window (default 16)")
    group.add_argument("--stride-frames", type=int, default=4, help="frames between window starts (default 4)")
    group.add_argument(
        "--frames-per-window", type=int, help="frames fed to the model per window (default: the encoder's num_frames)"
    )
    group.add_argument("--layer", type=int, default=-7, help="last encoder block to run (default -7)")
    group.add_argument("--pooling", choices=POOLINGS, default="mean", help="mean of patch tokens (default) or cls")
    group.add_argument("--skip-existing", action="store_true", help="keep videos whose feature file already exists")


def window_starts(total_frames: int, window_frames: int, stride_frames: int) -> list[int]:
    """First frame of every window lying inside the video (one window at 0 when the video is shorter)."""
    if total_frames <= window_frames:
        return [0]
    return list(range(0, total_frames - window_frames + 1, stride_frames))


def window_frame_indices(start: int, total_frames: int, window_frames: int, frames_per_window: int) -> list[int]:
    """Frames of the window at `start`: the middle frame of `frames_per_window` equal segments of it."""
    length = min(window_frames, total_frames - start)
    return [start + index for index in segment_frame_indices(frames_per_window, length, "middle")]


def output_name(path: str, media_root: str) -> str:
    """Feature file stem of a media path: relative to `media_root` when under it, separators -> `__`."""
    relative = os.path.relpath(path, media_root) if media_root else os.path.basename(path)
    if relative.startswith(".."):
        relative = os.path.basename(path)
    return os.path.splitext(relative)[0].replace(os.sep, "__").replace("/", "__")


def _check_settings(args, num_frames: int) -> int:
    for name in ("window_frames", "stride_frames"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    frames_per_window = args.frames_per_window or num_frames
    if not 1 <= frames_per_window <= args.window_frames:
        raise ValueError(
            f"--frames-per-window ({frames_per_window}) must be between 1 and --window-frames ({args.window_frames})"
        )
    return frames_per_window


@torch.no_grad()
def export_video(path: str, encode_windows, processor, overrides, args, frames_per_window: int, progress=None):
    """Features (num_windows, dim) and window metadata of one video, decoding one window at a time."""
    video = open_video(path)
    total, fps = video.metadata.total_num_frames, video.metadata.fps
    windows, features, pending = [], [], []
    for start in window_starts(total, args.window_frames, args.stride_frames):
        indices = window_frame_indices(start, total, args.window_frames, frames_per_window)
        frames = video.get_frames(indices, method="auto")
        pending.append(
            processor(frames, do_sample_frames=False, return_tensors="pt", **overrides)["pixel_values_videos"]
        )
        del frames
        end = min(start + args.window_frames, total)
        windows.append(
            {
                "start_frame": start,
                "end_frame": end,
                "start_time": start / fps if fps else None,
                "end_time": end / fps if fps else None,
                "frame_indices": indices,
            }
        )
        if len(pending) == args.batch_size:
            features.append(encode_windows(torch.cat(pending)))
            pending = []
        if progress is not None:
            progress.update(1)
    if pending:
        features.append(encode_windows(torch.cat(pending)))
    metadata = {"video": path, "fps": fps, "total_frames": total, "duration": video.metadata.duration}
    return torch.cat(features), windows, metadata


def run(args) -> dict:
    ctx = make_context(args, "export-features")
    if (args.annotations is None) == (args.videos is None):
        raise ValueError("pass exactly one of --annotations or --videos")
    if args.annotations is not None:
        annotations = load_annotations(args, {})
    else:
        annotations = prepare_annotations(
            [{"video": path} for path in args.videos], source="--videos", required={}, media_root=args.media_root,
            strict=args.strict, max_samples=args.max_samples,
        )
    records = annotations.records
    names = [output_name(record["video"], args.media_root) for record in records]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"several videos map to the same feature file name: {duplicates[:3]}")

    model = load_model(args.model, ctx, args.attn_implementation, kind="vision")
    encoder = vision_encoder(model)
    depth = encoder.config.num_hidden_layers
    if not -depth <= args.layer < depth:
        raise ValueError(
            f"--layer {args.layer} must be between {-depth} and {depth - 1} (the encoder has {depth} blocks)"
        )
    processor, overrides = load_video_processor(args, model)
    frames_per_window = _check_settings(args, overrides.get("num_frames", processor.num_frames))
    overrides |= {"num_clips": 1, "sampling": "middle", "num_crops": 1}  # one view per window
    overrides |= center_crop_if_needed(processor, overrides)

    def encode_windows(pixels: torch.Tensor) -> torch.Tensor:
        tokens = encoder(pixel_values_videos=pixels.to(model.device, model.dtype), last_layer=args.layer)
        tokens = tokens.last_hidden_state
        pooled = tokens[:, 1:].mean(dim=1) if args.pooling == "mean" else tokens[:, 0]
        return pooled.float().cpu()

    settings = {
        "format": FORMAT,
        "window_frames": args.window_frames,
        "stride_frames": args.stride_frames,
        "frames_per_window": frames_per_window,
        "layer": args.layer,
        "pooling": args.pooling,
        "image_size": overrides.get("size", processor.size),
        "dtype": args.dtype,
        "model": args.model,
    }
    output_dir = Path(ctx.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    exported = []
    with ctx.accelerator.split_between_processes(list(zip(records, names))) as mine:
        for record, name in tqdm(mine, desc="exporting videos", disable=not ctx.progress):
            feature_file, metadata_file = output_dir / f"{name}.safetensors", output_dir / f"{name}.json"
            if args.skip_existing and feature_file.is_file() and metadata_file.is_file():
                continue
            features, windows, metadata = export_video(
                record["video"], encode_windows, processor, overrides, args, frames_per_window
            )
            save_file({"features": features.contiguous()}, feature_file, metadata={"format": FORMAT})
            payload = {**metadata, **settings, "feature_dim": features.shape[1], "windows": windows}
            metadata_file.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
            exported.append(name)
    ctx.accelerator.wait_for_everyone()
    if not ctx.is_main:
        return {}
    index, num_windows = [], []
    for record, name in zip(records, names):
        metadata = json.loads((output_dir / f"{name}.json").read_text(encoding="utf-8"))
        num_windows.append(len(metadata["windows"]))
        index.append(
            {"video": record["video"], "features": f"{name}.safetensors", "metadata": f"{name}.json",
             "num_windows": num_windows[-1]}
        )
    (output_dir / "index.json").write_text(json.dumps({**settings, "videos": index}, indent=1) + "\n")
    summary = {
        "num_videos": len(records),
        "num_windows": int(np.sum(num_windows)),
        "mean_windows_per_video": float(np.mean(num_windows)),
        "feature_dim": encoder.config.hidden_size,
        "seconds": time.perf_counter() - started,
    }
    results = {
        "task": ctx.task,
        "model": args.model,
        "annotations": annotations.summary(),
        "settings": settings,
        "metrics": {"export": summary},
        "files": {"index": str(output_dir / "index.json")},
    }
    table = (
        "| videos | windows | feature dim | seconds |\n|---|---|---|---|\n"
        f"| {len(records)} | {summary['num_windows']} | {summary['feature_dim']} | {summary['seconds']:.1f} |"
    )
    return write_report(ctx, results, table)


TASKS = (
    Task(
        "export-features",
        "sliding-window features of long videos for temporal action localisation",
        add_arguments,
        run,
        description=__doc__,
    ),
)

__all__ = ["FORMAT", "TASKS", "export_video", "output_name", "window_frame_indices", "window_starts"]
