"""Command line: convert a released InternVideo2 checkpoint into a `save_pretrained` folder.

    python -m internvideo2.convert vision CHECKPOINT OUTPUT_DIR [--num-frames 8] [--dtype float32]
    python -m internvideo2.convert stage2 CHECKPOINT OUTPUT_DIR --vocab bert-large-uncased/vocab.txt

The folder holds `config.json`, `model.safetensors`, the processor config and `conversion_report.json` (which keys
were dropped and why). It is written to a temporary folder first and moved into place only when complete.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

from ..processing.processing_internvideo2 import InternVideo2Processor
from ..processing.tokenization_internvideo2 import InternVideo2Tokenizer
from ..processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from .checkpoint_io import CheckpointConversionError, load_checkpoint
from .stage2 import convert_stage2_checkpoint
from .vision import convert_vision_checkpoint

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _add_stage2_arguments(parser: argparse.ArgumentParser) -> None:
    _add_vision_arguments(parser)
    parser.add_argument(
        "--vocab",
        help="vocab.txt of bert-large-uncased (the Stage-2 text encoder's WordPiece vocabulary); without it the "
        "folder gets the model and video processor but no tokenizer",
    )
    parser.add_argument("--max-text-length", type=int, default=32, help="tokenizer max length (32; 6B trained with 40)")
    parser.add_argument("--text-num-attention-heads", type=int, help="needed only for non-BERT text widths")


def _add_vision_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="official .pt/.pth/.bin/.safetensors file or folder")
    parser.add_argument("output_dir", help="folder to write (must not exist unless --overwrite)")
    parser.add_argument("--num-frames", type=int, help="frames of the converted position table (interpolated)")
    parser.add_argument("--image-size", type=int, help="input size of the converted position table (interpolated)")
    parser.add_argument("--source-image-size", type=int, help="image size the checkpoint was trained at (default 224)")
    parser.add_argument("--num-attention-heads", type=int, help="needed only for non-released widths")
    parser.add_argument("--attention-pool-num-heads", type=int, help="needed only for non-released pools")
    parser.add_argument(
        "--hidden-act",
        choices=["gelu", "gelu_pytorch_tanh"],
        help="MLP activation: exact GELU (official non-fused code, default) or tanh GELU (official fused training)",
    )
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="dtype of the saved weights")
    parser.add_argument("--no-easydict", action="store_true", help="refuse the EasyDict config pickled in 6B files")
    parser.add_argument("--overwrite", action="store_true", help="replace output_dir if it exists")


def _vision_overrides(args: argparse.Namespace) -> dict:
    return {
        name: value
        for name, value in {
            "num_frames": args.num_frames,
            "image_size": args.image_size,
            "num_attention_heads": args.num_attention_heads,
            "attention_pool_num_heads": args.attention_pool_num_heads,
            "hidden_act": args.hidden_act,
        }.items()
        if value is not None
    }


def convert_vision_command(args: argparse.Namespace) -> str:
    checkpoint = load_checkpoint(args.checkpoint, allow_easydict=not args.no_easydict)
    model, report = convert_vision_checkpoint(
        checkpoint, source=args.checkpoint, source_image_size=args.source_image_size, **_vision_overrides(args)
    )
    model = model.to(_DTYPES[args.dtype])
    return _write_atomically(
        args.output_dir, args.overwrite, model, video_processor_for(model.config), report.to_dict()
    )


def convert_stage2_command(args: argparse.Namespace) -> str:
    checkpoint = load_checkpoint(args.checkpoint, allow_easydict=not args.no_easydict)
    text_heads = {"text_num_attention_heads": args.text_num_attention_heads} if args.text_num_attention_heads else {}
    model, report = convert_stage2_checkpoint(
        checkpoint,
        source=args.checkpoint,
        source_image_size=args.source_image_size,
        **_vision_overrides(args),
        **text_heads,
    )
    model = model.to(_DTYPES[args.dtype])
    video_processor = video_processor_for(model.config.vision_config)
    if args.vocab is None:
        print("warning: no --vocab given; add the bert-large-uncased tokenizer before using AutoProcessor", file=sys.stderr)
        processor = video_processor
    else:
        tokenizer = InternVideo2Tokenizer(vocab_file=args.vocab, model_max_length=args.max_text_length)
        processor = InternVideo2Processor(video_processor, tokenizer)
    return _write_atomically(args.output_dir, args.overwrite, model, processor, report.to_dict())


def video_processor_for(config) -> InternVideo2VideoProcessor:
    """The official test-time preprocessing of a converted vision tower: Resize((S, S)) for the Stage-2/CLIP/classifier
    encoders, short-side resize + center crop for the chat tower; frames = the position table's."""
    size = config.image_size
    if config.use_post_layernorm:  # the chat tower
        return InternVideo2VideoProcessor(
            "chat", num_frames=config.num_frames, size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    return InternVideo2VideoProcessor(num_frames=config.num_frames, size=size)


def _write_atomically(output_dir: str, overwrite: bool, model, processor, report: dict) -> str:
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"output_dir {output_dir} exists; pass --overwrite to replace it")
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".converting-", dir=parent)
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        with open(os.path.join(staging, "conversion_report.json"), "w") as handle:
            json.dump(report, handle, indent=2)
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m internvideo2.convert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="family", required=True)
    _add_vision_arguments(commands.add_parser("vision", help="any released vision encoder or video classifier"))
    _add_stage2_arguments(commands.add_parser("stage2", help="a released Stage-2 model (1B, or 6B with audio)"))
    args = parser.parse_args(argv)
    command = {"vision": convert_vision_command, "stage2": convert_stage2_command}[args.family]
    try:
        output = command(args)
    except (CheckpointConversionError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"saved {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
