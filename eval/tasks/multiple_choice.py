"""Multiple-choice video QA by matching (MSR-VTT-MC, LSMDC-MC style): pick the option caption that best matches the
video.

    python -m internvideo2.eval multiple-choice --model STAGE2 --annotations msrvtt_mc.json --media-root VIDEOS

Annotations: JSON list of `{"video", "caption": [option, ...], "answer": index of the right option}`. Reports the
accuracy of two scorings: `itc` (cosine of the video and option embeddings, the dual-encoder protocol) and `itm` (the
matching head's "match" logit of every (video, option) pair; `--no-rerank` skips it).
"""

import torch
import torch.nn.functional as F

from internvideo2.zero_shot import encode_texts, match_scores

from ..metrics_loading import load_metric
from .annotations import is_caption_list, is_index
from .common import (
    MediaDataset,
    Task,
    add_data_arguments,
    add_model_arguments,
    add_text_arguments,
    as_model_input,
    extract_features,
    load_annotations,
    load_model,
    load_tokenizer,
    load_video_processor,
    make_context,
    video_loader,
)
from .reporting import metrics_table, write_report


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_data_arguments(parser, "JSON list of {'video', 'caption': [options], 'answer': index}")
    add_text_arguments(parser)
    group = parser.add_argument_group("matching")
    group.add_argument("--no-rerank", action="store_true", help="score options with ITC only (no matching head)")
    group.add_argument("--itm-batch-size", type=int, default=32, help="pairs per matching forward (default 32)")


def _answer_in_options(record: dict) -> str | None:
    if record["answer"] >= len(record["caption"]):
        return f"has answer {record['answer']} but only {len(record['caption'])} options"
    return None


def run(args) -> dict:
    ctx = make_context(args, "multiple-choice")
    annotations = load_annotations(
        args, {"caption": is_caption_list, "answer": is_index}, record_check=_answer_in_options
    )
    records = annotations.records
    rerank = not args.no_rerank
    model = load_model(args.model, ctx, args.attn_implementation, kind="stage2")
    tokenizer = load_tokenizer(args)
    processor, overrides = load_video_processor(args, model)

    def encode(batch):
        pixels = batch["pixel_values_videos"]
        if pixels.shape[1] != 1:
            raise ValueError(f"multiple choice uses one view per video; the video processor made {pixels.shape[1]}")
        vision = model.encode_vision(pixel_values_videos=as_model_input(pixels[:, 0], model))
        return {"embeds": vision.embeds, **({"memory": vision.memory} if rerank else {})}

    features = extract_features(
        ctx, MediaDataset(records, video_loader(processor, overrides)), encode, args.batch_size, args.num_workers,
        desc="encoding videos",
    )
    options = [option for record in records for option in record["caption"]]
    question_of = torch.tensor([q for q, record in enumerate(records) for _ in record["caption"]])
    text = encode_texts(
        model, tokenizer, options, batch_size=args.text_batch_size, max_length=args.max_text_length,
        return_hidden_states=rerank, progress=ctx.progress,
    )
    flat = {"itc": (F.normalize(features["embeds"].float(), dim=-1)[question_of] * text.embeds).sum(-1)}
    if rerank:
        flat["itm"] = match_scores(
            model, features["memory"], text, question_of, torch.arange(len(options)),
            batch_size=args.itm_batch_size, accelerator=ctx.accelerator, progress=ctx.progress,
        )
    if not ctx.is_main:
        return {}
    answers = [record["answer"] for record in records]
    sizes = [len(record["caption"]) for record in records]
    metric = load_metric("multiple_choice_accuracy", keep_in_memory=True)
    metrics = {}
    for name, values in flat.items():
        rows = [row.tolist() for row in values.split(sizes)]
        metrics[name] = metric.compute(predictions=rows, references=answers)
    results = {
        "task": ctx.task,
        "model": args.model,
        "annotations": annotations.summary(),
        "num_questions": len(records),
        "settings": {"dtype": args.dtype, "num_frames": overrides.get("num_frames", processor.num_frames)},
        "metrics": metrics,
    }
    saved = None
    if args.save_scores:
        # ragged rows: one flat vector per scoring plus the question of every option
        saved = {f"{name}_option_scores": values for name, values in flat.items()} | {"option_question": question_of}
    return write_report(ctx, results, metrics_table(metrics), saved)


TASKS = (
    Task(
        "multiple-choice",
        "multiple-choice video QA by caption matching (MSR-VTT-MC): ITC and ITM accuracy",
        add_arguments,
        run,
        description=__doc__,
    ),
)

__all__ = ["TASKS"]
