"""Video chat evaluation of InternVideo2-Chat models: MVBench-style multiple choice and open-ended QA export.

    python -m internvideo2.eval chat-multiple-choice --model CHAT_DIR --annotations mvbench.json --media-root VIDEOS
    python -m internvideo2.eval chat-open-ended --model CHAT_DIR --annotations questions.json --media-root VIDEOS

`--model` is a folder written by `save_pretrained` (with the chat processor) or a Stage-3 adapter folder (see
`internvideo2.trainers.stage3.load_stage3_model`; `--processor` when the processor is saved elsewhere).

Multiple choice: a JSON list of `{"video", "question", "candidates": [option, ...], "answer": the right option's
text (or its letter), "task_type"?: name}`. The prompt is the official MVBench one: the system text (`--system`,
default the MVBench instruction), the video, then the user turn "Question: {question}\\nOptions:\\n(A) {option}\\n(B)
...", and the reply is started with `--answer-prompt` (default "Best option:("). Greedy generation continues it; the
option letter is read from answer prompt + reply with the `multiple_choice_letter_accuracy` rules (a leading label,
an "answer/option is X" cue, or a bracketed letter). Reported: accuracy per `task_type` and overall (micro: over all
questions; `mean_over_tasks`: the MVBench average of the task accuracies), the fraction of replies without a letter,
a bar plot per task, and `predictions.json` with every reply.

Open ended: a JSON list of `{"video", "question", "answer"?}`; `predictions.json` lists every generated answer next
to the question (and the reference, when given), for external scoring (e.g. GPT-assisted).
"""

import functools
import json
import string
from pathlib import Path

import torch

from ..metrics_loading import load_metric
from .common import Task, add_data_arguments, add_model_arguments, make_context
from .reporting import _pyplot, metrics_table, write_report


MVBENCH_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option that "
    "accurately addresses the question.\n"
)
DEFAULT_ANSWER_PROMPT = "Best option:("


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_options(value) -> bool:
    return isinstance(value, list) and 2 <= len(value) <= 26 and all(_is_text(v) for v in value)


def multiple_choice_question(question: str, candidates: list[str]) -> str:
    """The MVBench user text: "Question: ...\\nOptions:\\n(A) ...\\n(B) ...\\n"."""
    options = "".join(f"({letter}) {option}\n" for letter, option in zip(string.ascii_uppercase, candidates))
    return f"Question: {question}\nOptions:\n{options}"


def gold_letter(record: dict) -> str | None:
    """The right option's letter: the answer is an option's text, or a letter within the options."""
    answer, candidates = record["answer"].strip(), [c.strip() for c in record["candidates"]]
    if answer in candidates:
        return string.ascii_uppercase[candidates.index(answer)]
    letter = answer.strip("()").upper()
    if len(letter) == 1 and letter in string.ascii_uppercase[: len(candidates)]:
        return letter
    return None


def add_chat_arguments(parser, multiple_choice: bool) -> None:
    add_model_arguments(parser, text=False, plot=multiple_choice, scores=False)
    if multiple_choice:
        help_text = "JSON list of {'video', 'question', 'candidates': [options], 'answer': option text, 'task_type'?}"
    else:
        help_text = "JSON list of {'video', 'question', 'answer'?}"
    add_data_arguments(parser, help_text)
    group = parser.add_argument_group("chat")
    group.add_argument("--processor", help="chat processor folder when it is not saved with the model")
    group.add_argument("--question-column", default="question", help="column holding the question (default question)")
    group.add_argument("--max-new-tokens", type=int, default=100 if not multiple_choice else 10,
                       help="generated tokens per answer")
    if multiple_choice:
        group.add_argument("--system", default=MVBENCH_SYSTEM, help="system text (default: the MVBench one)")
        group.add_argument("--answer-prompt", default=DEFAULT_ANSWER_PROMPT,
                           help="text that starts the reply (default 'Best option:(')")
        group.add_argument("--candidates-column", default="candidates", help="column holding the options")
        group.add_argument("--task-column", default="task_type", help="column naming the task (default task_type)")
    else:
        group.add_argument("--system", default="", help="system text before the video (default none)")


def load_chat_model(args, ctx):
    """The chat model (a saved model or a Stage-3 adapter folder) and its processor."""
    from internvideo2.processing.processing_chat import InternVideo2ChatProcessor
    from internvideo2.trainers.stage3 import load_stage3_model

    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"--model {args.model} is not a saved chat model folder")
    model = load_stage3_model(args.model, merge=True)
    try:
        processor = InternVideo2ChatProcessor.from_pretrained(args.processor or args.model)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"no chat processor in {args.processor or args.model} ({str(error).splitlines()[0]}); pass --processor"
        ) from None
    return model.to(ctx.device, ctx.dtype).eval(), processor


def _rename(records: list[dict], columns: dict[str, str]) -> list[dict]:
    return [{**record, **{key: record.get(column) for key, column in columns.items()}} for record in records]


@torch.no_grad()
def generate_replies(model, processor, records, prompts, args, ctx, desc: str) -> list[str]:
    """Greedy replies to `prompts`, `--batch-size` at a time (left padded), one video per prompt."""
    from tqdm.auto import tqdm

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be a positive integer, got {args.max_new_tokens}")
    overrides = {"num_frames": args.num_frames} if args.num_frames else {}
    replies = []
    for begin in tqdm(range(0, len(records), args.batch_size), desc=desc, disable=not ctx.progress):
        batch = records[begin: begin + args.batch_size]
        inputs = processor(
            text=prompts[begin: begin + args.batch_size], videos=[r["video"] for r in batch],
            qformer_text=[r["question"] for r in batch], videos_kwargs=overrides,
        )
        inputs = {
            key: value.to(ctx.device, ctx.dtype) if value.is_floating_point() else value.to(ctx.device)
            for key, value in inputs.items()
        }
        generated = model.generate(**inputs, do_sample=False, max_new_tokens=args.max_new_tokens)
        replies += processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return replies


def _prompt(processor, system: str, question: str, answer_prompt: str = "") -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]})
    return processor.apply_chat_template(messages, tokenize=False) + answer_prompt


def _check_answer(record: dict) -> str | None:
    return None if gold_letter(record) else f"has answer {record['answer']!r}, which is not one of its options"


def run_multiple_choice(args) -> dict:
    from .annotations import prepare_annotations, read_records

    ctx = make_context(args, "chat-multiple-choice")
    columns = {"question": args.question_column, "candidates": args.candidates_column, "task_type": args.task_column}
    raw = _rename(read_records(args.annotations, split=args.dataset_split, columns={"video": args.video_column,
                                                                                   "answer": args.answer_column}),
                  columns)
    annotations = prepare_annotations(
        raw, source=args.annotations, required={"question": _is_text, "candidates": _is_options, "answer": _is_text},
        media_root=args.media_root, strict=args.strict, max_samples=args.max_samples,
        record_check=_check_answer,
    )
    records = annotations.records
    model, processor = load_chat_model(args, ctx)
    prompts = [
        _prompt(processor, args.system, multiple_choice_question(r["question"], r["candidates"]), args.answer_prompt)
        for r in records
    ]
    replies = generate_replies(model, processor, records, prompts, args, ctx, "answering")
    metric = load_metric("multiple_choice_letter_accuracy", keep_in_memory=True)
    predictions, by_task = [], {}
    for record, reply in zip(records, replies):
        answered = args.answer_prompt + reply
        letter = metric.extract_letter(answered, len(record["candidates"]))
        gold = gold_letter(record)
        task = record.get("task_type") or "all"
        by_task.setdefault(task, []).append((answered, gold, len(record["candidates"])))
        predictions.append({
            "video": record["video"], "question": record["question"], "task_type": task, "reply": reply,
            "predicted": letter, "answer": gold, "correct": letter == gold,
        })
    metrics = {}
    for task, rows in sorted(by_task.items()):
        scores = [metric.compute(predictions=[a], references=[g], num_options=n) for a, g, n in rows]
        metrics[task] = {
            "accuracy": sum(s["accuracy"] for s in scores) / len(rows),
            "unparsed": sum(s["unparsed"] for s in scores) / len(rows),
            "num_samples": len(rows),
        }
    overall = {
        "accuracy": sum(p["correct"] for p in predictions) / len(predictions),
        "unparsed": sum(p["predicted"] is None for p in predictions) / len(predictions),
        "mean_over_tasks": sum(m["accuracy"] for m in metrics.values()) / len(metrics),
        "num_samples": len(predictions),
    }
    output_dir = Path(ctx.output_dir)
    files = {"predictions": str(output_dir / "predictions.json")}
    (output_dir / "predictions.json").write_text(json.dumps(predictions, indent=1) + "\n", encoding="utf-8")
    if not args.no_plot:
        files["plot"] = plot_task_accuracy(output_dir / "accuracy_per_task.png", metrics, overall["accuracy"])
    results = {
        "task": ctx.task, "model": args.model, "annotations": annotations.summary(), "num_questions": len(records),
        "settings": {"system": args.system, "answer_prompt": args.answer_prompt, "max_new_tokens": args.max_new_tokens,
                     "dtype": args.dtype},
        "metrics": {"overall": overall, "per_task": metrics}, "files": files,
    }
    columns = ["accuracy", "unparsed", "num_samples"]
    table = metrics_table({**metrics, "overall": overall}, columns=columns, first="task")
    return write_report(ctx, results, table)


def plot_task_accuracy(path, metrics: dict[str, dict], overall: float) -> str:
    """Bar plot of the accuracy per task, with the overall accuracy as a line."""
    plt = _pyplot()
    names = list(metrics)
    figure, axis = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 4))
    axis.bar(range(len(names)), [100 * metrics[n]["accuracy"] for n in names], color="tab:blue")
    axis.axhline(100 * overall, color="tab:red", linestyle="--", label=f"overall {100 * overall:.1f}%")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def run_open_ended(args) -> dict:
    from .annotations import prepare_annotations, read_records

    ctx = make_context(args, "chat-open-ended")
    raw = _rename(read_records(args.annotations, split=args.dataset_split, columns={"video": args.video_column}),
                  {"question": args.question_column})
    annotations = prepare_annotations(
        raw, source=args.annotations, required={"question": _is_text}, media_root=args.media_root,
        strict=args.strict, max_samples=args.max_samples,
    )
    records = annotations.records
    model, processor = load_chat_model(args, ctx)
    prompts = [_prompt(processor, args.system, r["question"]) for r in records]
    replies = generate_replies(model, processor, records, prompts, args, ctx, "answering")
    predictions = [
        {"video": r["video"], "question": r["question"], "prediction": reply.strip(),
         **({"answer": r[args.answer_column]} if r.get(args.answer_column) is not None else {})}
        for r, reply in zip(records, replies)
    ]
    path = Path(ctx.output_dir) / "predictions.json"
    path.write_text(json.dumps(predictions, indent=1) + "\n", encoding="utf-8")
    results = {
        "task": ctx.task, "model": args.model, "annotations": annotations.summary(), "num_questions": len(records),
        "settings": {"system": args.system, "max_new_tokens": args.max_new_tokens, "dtype": args.dtype},
        "files": {"predictions": str(path)},
    }
    return write_report(ctx, results, f"{len(predictions)} answers written to {path}")


TASKS = (
    Task(
        "chat-multiple-choice",
        "video chat multiple choice (MVBench style): answer letters, accuracy per task and overall",
        functools.partial(add_chat_arguments, multiple_choice=True),
        run_multiple_choice,
        description=__doc__,
    ),
    Task(
        "chat-open-ended",
        "video chat open-ended QA: export the generated answers to predictions.json",
        functools.partial(add_chat_arguments, multiple_choice=False),
        run_open_ended,
        description=__doc__,
    ),
)

__all__ = [
    "DEFAULT_ANSWER_PROMPT",
    "MVBENCH_SYSTEM",
    "TASKS",
    "gold_letter",
    "load_chat_model",
    "multiple_choice_question",
    "plot_task_accuracy",
]
