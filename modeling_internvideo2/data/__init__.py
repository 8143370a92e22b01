"""Data utilities: labelled synthetic videos for tests, smoke runs and benchmarks."""

from .synthetic import (
    ATTRIBUTES,
    COLORS,
    MOTIONS,
    NUM_CAPTION_TEMPLATES,
    PITCHES,
    SHAPES,
    SyntheticAnnotationFiles,
    SyntheticVideoDataset,
    SyntheticVideoSample,
    generate_dataset,
    iter_frames,
    load_synthetic_dataset,
    render_frames,
    render_tone,
    resolve_video_codec,
    write_benchmark_video,
    write_sample_video,
    write_video,
)


__all__ = [
    "ATTRIBUTES",
    "COLORS",
    "MOTIONS",
    "NUM_CAPTION_TEMPLATES",
    "PITCHES",
    "SHAPES",
    "SyntheticAnnotationFiles",
    "SyntheticVideoDataset",
    "SyntheticVideoSample",
    "generate_dataset",
    "iter_frames",
    "load_synthetic_dataset",
    "render_frames",
    "render_tone",
    "resolve_video_codec",
    "write_benchmark_video",
    "write_sample_video",
    "write_video",
]
