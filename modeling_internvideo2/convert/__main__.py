"""Command line: convert a released InternVideo2 checkpoint into a `save_pretrained` folder.

    python -m internvideo2.convert vision CHECKPOINT OUTPUT_DIR [--num-frames 8] [--dtype float32]
    python -m internvideo2.convert stage2 CHECKPOINT OUTPUT_DIR --vocab bert-large-uncased/vocab.txt
    python -m internvideo2.convert chat CHECKPOINT OUTPUT_DIR --llm-config Mistral-7B-Instruct-v0.3 \
        [--tokenizer Mistral-7B-Instruct-v0.3 --qformer-tokenizer bert-base-uncased] [--lora merge|adapter] [--hd]

The folder holds `config.json`, `model.safetensors`, the processor config and `conversion_report.json` (which keys
were dropped and why); `chat --lora adapter` adds the unmerged LoRA as a peft adapter in `lora_adapter/`. It is
written to a temporary folder first and moved into place only when complete.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

from ..processing.processing_chat import InternVideo2ChatProcessor
from ..processing.processing_internvideo2 import InternVideo2Processor
from ..processing.tokenization_internvideo2 import InternVideo2Tokenizer
from ..processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from .chat import LORA_MODES, convert_chat_checkpoint, infer_chat_config, load_llm_config
from .checkpoint_io import CheckpointConversionError, load_checkpoint, unwrap_state_dict
from .stage2 import convert_stage2_checkpoint
from .vision import convert_vision_checkpoint

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ADAPTER_FOLDER = "lora_adapter"
MEDIA_TOKEN = "<VID_PLH>"
# InternVideo2-Chat-8B-HD (spec §5.3, `config_mistral_hd.json`): at most 6 tiles, no padding, a global view.
HD_NUM_DEFAULT = 6
CHAT_EXAMPLE = """example (folders downloaded from the Hub):
  python -m internvideo2.convert chat InternVideo2-Chat-8B internvideo2-chat-8b-hf \\
      --llm-config Mistral-7B-Instruct-v0.3 --tokenizer Mistral-7B-Instruct-v0.3 \\
      --qformer-tokenizer bert-base-uncased --dtype bfloat16
  add --hd for InternVideo2_chat_8B_HD, --lora adapter to keep the LoRA unmerged"""


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


def _add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        help="InternVideo2-Chat-8B / -HD weights: the downloaded folder (safetensors shards + index), the index file, "
        "or one .safetensors/.bin/.pt file",
    )
    parser.add_argument("output_dir", help="folder to write (must not exist unless --overwrite)")
    parser.add_argument(
        "--llm-config",
        required=True,
        help="config.json (or its folder) of the causal LM the checkpoint was trained on: "
        "Mistral-7B-Instruct-v0.3 for Chat-8B and -HD; checked against the weights",
    )
    parser.add_argument(
        "--tokenizer",
        help="folder of the LLM tokenizer (the chat repo's own, or the LLM's); with --qformer-tokenizer it adds an "
        "InternVideo2ChatProcessor so that AutoProcessor works, without both only the model is written",
    )
    parser.add_argument("--qformer-tokenizer", help="bert-base-uncased folder or its vocab.txt ([DEC] is added)")
    parser.add_argument(
        "--lora",
        choices=LORA_MODES,
        default="merge",
        help="unmerged LoRA of the LLM: merge it into the weights (default), or keep the base weights and write the "
        f"LoRA as a peft adapter in OUTPUT_DIR/{ADAPTER_FOLDER}",
    )
    parser.add_argument("--lora-alpha", type=float, default=32.0, help="LoRA alpha of the checkpoint (released: 32)")
    parser.add_argument(
        "--hd",
        action="store_true",
        help="InternVideo2-Chat-8B-HD: the processor cuts each video into tiles plus a global view, as it was trained",
    )
    parser.add_argument("--hd-num", type=int, help=f"most tiles per video with --hd (default {HD_NUM_DEFAULT})")
    parser.add_argument("--hd-padding", action="store_true", help="with --hd: the padding grid rule (default: off)")
    parser.add_argument("--hd-local-size", type=int, help="tile size with --hd (default: the vision image size)")
    parser.add_argument("--num-attention-heads", type=int, help="vision heads; needed only for non-released widths")
    parser.add_argument(
        "--qformer-num-attention-heads", type=int, help="Q-Former heads; needed only for non-released widths"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(_DTYPES),
        default="float32",
        help="dtype of the saved weights (default float32; the release stores the LLM in bfloat16, the rest float32)",
    )
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


def convert_chat_command(args: argparse.Namespace) -> str:
    if (args.tokenizer is None) != (args.qformer_tokenizer is None):
        raise ValueError("--tokenizer and --qformer-tokenizer go together: the processor needs both")
    if not args.hd and (args.hd_num is not None or args.hd_padding or args.hd_local_size is not None):
        raise ValueError("--hd-num, --hd-padding and --hd-local-size only apply with --hd")
    if args.hd and args.tokenizer is None:
        raise ValueError("--hd needs --tokenizer and --qformer-tokenizer: the HD tiling is part of the processor")
    if os.path.exists(args.output_dir) and not args.overwrite:  # before a conversion that takes minutes at 8B
        raise FileExistsError(f"output_dir {args.output_dir} exists; pass --overwrite to replace it")
    llm_config = load_llm_config(args.llm_config)
    path = args.checkpoint
    if path.endswith(".index.json"):  # the index names the shards beside it
        path = os.path.dirname(os.path.abspath(path))
    state = unwrap_state_dict(load_checkpoint(path, allow_easydict=False), args.checkpoint)
    dtype = _DTYPES[args.dtype]
    for key, tensor in state.items():  # one tensor at a time: the released files are ~19 GB
        # LoRA factors stay as stored (float32 in the release): merging runs in float32, the adapter keeps them.
        if tensor.is_floating_point() and ".lora_" not in key:
            state[key] = tensor.to(dtype)

    tokenizer = qformer_tokenizer = None
    if args.tokenizer is not None:
        tokenizer = _llm_tokenizer(args.tokenizer, llm_config.vocab_size)
        qformer_tokenizer = _qformer_tokenizer(args.qformer_tokenizer)
    config = infer_chat_config(
        state,
        llm_config,
        source=args.checkpoint,
        vision_num_attention_heads=args.num_attention_heads,
        qformer_num_attention_heads=args.qformer_num_attention_heads,
        media_token_id=tokenizer.convert_tokens_to_ids(MEDIA_TOKEN) if tokenizer is not None else None,
    )
    config.text_config.dtype = dtype
    if qformer_tokenizer is not None and len(qformer_tokenizer) != config.qformer_config.vocab_size:
        raise ValueError(
            f"--qformer-tokenizer {args.qformer_tokenizer} has {len(qformer_tokenizer)} tokens with [DEC] but the "
            f"checkpoint's Q-Former embeds {config.qformer_config.vocab_size}: use bert-base-uncased"
        )

    model, report = convert_chat_checkpoint(state, config, args.lora, args.lora_alpha, args.checkpoint)
    del state
    has_adapter = hasattr(model, "peft_config")
    if has_adapter:
        model.peft_config["default"].base_model_name_or_path = os.path.abspath(args.output_dir)
    elif args.lora == "adapter":
        print("note: the checkpoint has no LoRA, so there is no adapter to write", file=sys.stderr)

    processor = None
    if tokenizer is None:
        print(
            "warning: no --tokenizer/--qformer-tokenizer given; only the model is written (AutoProcessor needs both)",
            file=sys.stderr,
        )
    else:
        vision = config.vision_config
        hd = {}
        if args.hd:
            hd = dict(
                hd_num=HD_NUM_DEFAULT if args.hd_num is None else args.hd_num,
                hd_local_size=vision.image_size if args.hd_local_size is None else args.hd_local_size,
                hd_padding=args.hd_padding,
            )
        processor = InternVideo2ChatProcessor(
            video_processor_for(vision), tokenizer, qformer_tokenizer, num_media_tokens=config.num_media_tokens, **hd
        )
    summary = {**report.to_dict(), "lora": args.lora, "adapter_folder": ADAPTER_FOLDER if has_adapter else None}
    return _write_atomically(args.output_dir, args.overwrite, model, processor, summary)


def _llm_tokenizer(path: str, vocab_size: int):
    """The LLM tokenizer with the media placeholder token added and a pad token (the unk token, as officially)."""
    from transformers import AutoTokenizer

    if not os.path.isdir(path):
        raise FileNotFoundError(f"--tokenizer {path} is not a folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        reason = " ".join(str(error).split()).split(". ")[0]
        raise ValueError(f"--tokenizer {path}: cannot load a tokenizer ({reason})") from error
    if MEDIA_TOKEN not in tokenizer.get_vocab():
        if len(tokenizer) > vocab_size:
            raise ValueError(f"--tokenizer {path} has {len(tokenizer)} tokens, more than the LLM's {vocab_size}")
        tokenizer.add_tokens([MEDIA_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def _qformer_tokenizer(path: str):
    """The Q-Former's BERT WordPiece tokenizer (a folder or its vocab.txt) with `[DEC]` added as bos, as officially."""
    from transformers import BertTokenizer

    if os.path.isdir(path):
        tokenizer = BertTokenizer.from_pretrained(path)
    elif os.path.isfile(path):
        tokenizer = BertTokenizer(path)
    else:
        raise FileNotFoundError(f"--qformer-tokenizer {path} is neither a folder nor a vocab.txt file")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


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
        if hasattr(model, "peft_config"):  # a peft model: the adapter on its own, then the bare base model
            model.save_pretrained(os.path.join(staging, ADAPTER_FOLDER), save_embedding_layers=False)
            model = model.unload()
        model.save_pretrained(staging)
        if processor is not None:
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


def build_parser() -> argparse.ArgumentParser:
    """The `python -m internvideo2.convert {vision,stage2,chat}` command line."""
    parser = argparse.ArgumentParser(prog="python -m internvideo2.convert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="family", required=True)
    _add_vision_arguments(commands.add_parser("vision", help="any released vision encoder or video classifier"))
    _add_stage2_arguments(commands.add_parser("stage2", help="a released Stage-2 model (1B, or 6B with audio)"))
    _add_chat_arguments(
        commands.add_parser(
            "chat",
            help="InternVideo2-Chat-8B or -HD (needs the LLM's config.json)",
            description="Convert InternVideo2-Chat-8B / -HD into an InternVideo2ChatForConditionalGeneration folder "
            "(AutoModelForImageTextToText). The geometry is read from the weights; the LLM's config is given "
            "and checked against them.",
            epilog=CHAT_EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"vision": convert_vision_command, "stage2": convert_stage2_command, "chat": convert_chat_command}
    command = command[args.family]
    try:
        output = command(args)
    except (CheckpointConversionError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"saved {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
