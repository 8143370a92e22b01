"""`internvideo2` command line (also `python -m internvideo2`).

    internvideo2 demo                 # build a small encoder, write a sample mp4, encode it, print shape and clips/s
    internvideo2 demo --video my.mp4 --preset B/14
    internvideo2 quickstart --output-dir out  # train, distil, evaluate, save, reload a small model on synthetic clips
"""

import argparse
import os
import sys
import tempfile
import time

import torch


def demo(args: argparse.Namespace) -> None:
    from . import InternVideo2VisionConfig, InternVideo2VisionModel
    from .data import write_sample_video
    from .processing import InternVideo2VideoProcessor

    torch.manual_seed(0)
    config = InternVideo2VisionConfig.from_preset(args.preset, num_frames=args.num_frames)
    model = InternVideo2VisionModel(config).to(args.device).eval()
    processor = InternVideo2VideoProcessor(num_frames=args.num_frames, size=config.image_size)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"encoder: InternVideo2 {args.preset} (random weights), {parameters / 1e6:.1f} M parameters, {args.device}")

    with tempfile.TemporaryDirectory() as folder:
        video = args.video
        if video is None:
            video = os.path.join(folder, "sample.mp4")
            write_sample_video(video, num_frames=48, size=256, fps=24, motion="orbit", shape="triangle", color="blue")
            print(f"video: generated {video} (48 frames, 256x256, h264)")
        else:
            print(f"video: {video}")
        start = time.perf_counter()
        inputs = processor([video] * args.batch_size, return_tensors="pt", device=args.device)
        preprocess_seconds = time.perf_counter() - start
    pixels = inputs["pixel_values_videos"]
    print(f"pixel_values_videos: {tuple(pixels.shape)} (decode + preprocess {args.batch_size / preprocess_seconds:.1f} clips/s)")

    with torch.inference_mode():
        embeddings = model.get_video_features(pixels)  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            embeddings = model.get_video_features(pixels)
        seconds = (time.perf_counter() - start) / args.repeats
    print(f"video embeddings: {tuple(embeddings.shape)}")
    print(f"encoder throughput: {args.batch_size / seconds:.2f} clips/s (batch {args.batch_size}, {args.num_frames} frames)")


def quickstart(args: argparse.Namespace) -> None:
    from .quickstart import run_quickstart

    run_quickstart(args.output_dir, smoke=args.smoke, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    """The `internvideo2` command line (`demo`, `quickstart`)."""
    parser = argparse.ArgumentParser(prog="internvideo2", description="InternVideo2 for Hugging Face transformers")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="encode a video with a small InternVideo2 encoder")
    demo_parser.add_argument("--preset", default="S/14", help="S/14, B/14, L/14, 1B or 6B")
    demo_parser.add_argument("--video", help="an mp4 to encode (default: a generated sample)")
    demo_parser.add_argument("--num-frames", type=int, default=8)
    demo_parser.add_argument("--batch-size", type=int, default=2)
    demo_parser.add_argument("--repeats", type=int, default=3)
    demo_parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    quickstart_parser = commands.add_parser(
        "quickstart", help="data -> Stage-2 training -> distillation -> zero-shot eval -> save -> reload (CPU, offline)"
    )
    quickstart_parser.add_argument("--output-dir", default="internvideo2_quickstart", help="folder for data, models, plot")
    quickstart_parser.add_argument("--smoke", action="store_true", help="a seconds-long run (numbers mean nothing)")
    quickstart_parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"demo": demo, "quickstart": quickstart}[args.command](args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
