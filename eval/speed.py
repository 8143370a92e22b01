"""Speed and memory of the InternVideo2 encoder and video processor. Prints figures; asserts nothing.

    python -m internvideo2.eval.speed                      # everything at the issue's settings (B/14, 8x224, batch 4)
    python -m internvideo2.eval.speed --only encoder --preset S/14 --batch-size 2

Each encoder measurement runs in a fresh subprocess so that its peak memory (max RSS on CPU, max allocated on CUDA)
is its own. Achieved FLOP/s is reported as a fraction of this machine's measured float32 matmul throughput.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch


def matmul_flops_per_second(device: str, dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Throughput of a large square matmul: the ceiling a transformer forward can approach."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    _synchronize(device)
    a @ b
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def encoder_forward_flops(config, batch_size: int, num_frames: int) -> float:
    """Multiply-adds ×2 of one encoder forward (linear layers, attention scores and pooling)."""
    tokens = 1 + num_frames * config.num_patches_per_frame
    width, hidden = config.hidden_size, config.intermediate_size
    per_layer = 2 * tokens * (4 * width * width + 2 * width * hidden) + 2 * 2 * tokens * tokens * width
    patch = 2 * tokens * width * config.num_channels * config.patch_size**2 * config.tubelet_size
    pool = 2 * (3 * tokens * width * width + width * config.attention_pool_output_size)
    return batch_size * (config.num_hidden_layers * per_layer + patch + pool)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_encoder(
    preset: str, attn: str, batch_size: int, num_frames: int, image_size: int, device: str, dtype: str,
    train: bool, checkpointing: bool, repeats: int,
) -> dict:
    """One measurement (run inside a fresh process by `main`)."""
    from internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel

    torch.manual_seed(0)
    config = InternVideo2VisionConfig.from_preset(preset, num_frames=num_frames, image_size=image_size)
    model = InternVideo2VisionModel(config).to(device=device, dtype=getattr(torch, dtype))
    model.set_attn_implementation(attn)
    model.train(train)
    if checkpointing:
        model.activation_checkpointing_enable()
    videos = torch.randn(batch_size, num_frames, 3, image_size, image_size, device=device, dtype=getattr(torch, dtype))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    baseline = _peak_memory_bytes(device)

    def step():
        if train:
            model(videos).pooler_output.float().square().mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(videos)

    step()  # warm-up (allocator, kernels)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    flops = encoder_forward_flops(config, batch_size, num_frames) * (3 if train else 1)
    return {
        "clips_per_s": batch_size / seconds,
        "seconds_per_batch": seconds,
        "achieved_flops_per_s": flops / seconds,
        "peak_memory_above_model_mb": (_peak_memory_bytes(device) - baseline) / 2**20,
    }


def _run_isolated(**kwargs) -> dict:
    code = (
        "import json, sys; from internvideo2.eval.speed import measure_encoder; "
        f"print(json.dumps(measure_encoder(**{kwargs!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def benchmark_encoder(args) -> None:
    peak = matmul_flops_per_second(args.device, getattr(torch, args.dtype))
    print(f"\n## Encoder ({args.preset}, {args.num_frames}x{args.image_size}, batch {args.batch_size}, "
          f"{args.device}, {args.dtype}, {torch.get_num_threads()} threads)")
    print(f"measured matmul throughput: {peak / 1e9:.1f} GFLOP/s")
    common = dict(preset=args.preset, batch_size=args.batch_size, num_frames=args.num_frames,
                  image_size=args.image_size, device=args.device, dtype=args.dtype, repeats=args.repeats)
    print("| mode | attention | clips/s | s/batch | FLOP/s | of matmul peak | peak memory above model |")
    print("|---|---|---|---|---|---|---|")
    rows = [("inference", attn, False, False) for attn in ("eager", "sdpa")]
    rows += [("training", "sdpa", True, False), ("training + checkpointing", "sdpa", True, True)]
    results = {}
    for label, attn, train, checkpointing in rows:
        r = _run_isolated(attn=attn, train=train, checkpointing=checkpointing, **common)
        results[label, attn] = r
        print(f"| {label} | {attn} | {r['clips_per_s']:.3f} | {r['seconds_per_batch']:.2f} | "
              f"{r['achieved_flops_per_s'] / 1e9:.1f} G | {r['achieved_flops_per_s'] / peak:.0%} | "
              f"{r['peak_memory_above_model_mb']:.0f} MB |")
    eager, sdpa = results["inference", "eager"], results["inference", "sdpa"]
    plain, ckpt = results["training", "sdpa"], results["training + checkpointing", "sdpa"]
    print(f"sdpa / eager speed: {sdpa['clips_per_s'] / eager['clips_per_s']:.2f}x; "
          f"checkpointing saves {1 - ckpt['peak_memory_above_model_mb'] / plain['peak_memory_above_model_mb']:.0%} "
          f"of training activation memory")


def benchmark_processor(args) -> None:
    from internvideo2.data.synthetic import write_benchmark_video
    from internvideo2.processing.video_decoding import decode_frames, open_video
    from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor

    processor = InternVideo2VideoProcessor(num_frames=args.num_frames)
    print(f"\n## Video processor (10-s 720p h264 at 30 fps, 300 frames, {args.num_frames} frames sampled)")
    print("| keyframes | decoding | clips/s (decode only) | clips/s (decode + preprocess) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for keyframe_interval, label in ((30, "every 1 s"), (None, "x264 default (0 and 250)")):
            path = os.path.join(folder, f"benchmark_gop{keyframe_interval}.mp4")
            write_benchmark_video(path, keyframe_interval=keyframe_interval)
            total = open_video(path).metadata.total_num_frames
            indices = [int(i) for i in torch.linspace(0, total - 1, args.num_frames)]
            for method in ("seek", "sequential"):
                start = time.perf_counter()
                for _ in range(args.repeats):
                    decode_frames(path, indices, method=method)
                decode_rate = args.repeats / (time.perf_counter() - start)
                start = time.perf_counter()
                for _ in range(args.repeats):
                    processor(path, decode_method=method, return_tensors="pt")
                full_rate = args.repeats / (time.perf_counter() - start)
                print(f"| {label} | {method} | {decode_rate:.2f} | {full_rate:.2f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["encoder", "processor"])
    parser.add_argument("--preset", default="B/14")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}")
    if args.only in (None, "encoder"):
        benchmark_encoder(args)
    if args.only in (None, "processor"):
        benchmark_processor(args)


if __name__ == "__main__":
    main()
