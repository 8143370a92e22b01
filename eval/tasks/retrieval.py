"""Text <-> video retrieval (MSR-VTT, DiDeMo, ActivityNet, LSMDC, MSVD, VATEX style), zero-shot or fine-tuned.

    python -m internvideo2.eval retrieval --model MODEL --annotations test.json --media-root VIDEOS \\
        [--k-test 128] [--paragraph] [--audio-visual]

Annotations: the official JSON list `{"video": path, "caption": str | [str, ...]}` (several captions per video are
several texts; `--paragraph` joins them into one text, as for DiDeMo / ActivityNet paragraph retrieval).

Reports the three score sets of the official Stage-2 evaluation (spec §3.7): `itc` (cosine, temperature 1), `dsl`
(dual softmax) and `itm` (the top `--k-test` candidates of every query re-ranked by the matching head, the headline
Stage-2 numbers), each with R@1/5/10, median and mean rank in both directions, plus a recall@K plot.
"""

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from internvideo2.zero_shot import encode_texts, retrieval_scores

from ..metrics_loading import load_metric
from .annotations import is_caption
from .common import (
    MediaDataset,
    Task,
    add_data_arguments,
    add_model_arguments,
    add_text_arguments,
    as_model_input,
    audio_loader,
    both_loader,
    extract_features,
    load_annotations,
    load_feature_extractor,
    load_model,
    load_tokenizer,
    load_video_processor,
    make_context,
    video_loader,
)
from .reporting import metrics_table, plot_recall_at_k, write_report


NAME = "retrieval"
HELP = "text <-> video retrieval: ITC, dual softmax and ITM re-rank (R@K, MdR, MnR)"
DEFAULT_KS = (1, 5, 10)
TABLE_COLUMNS = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "r_mean")


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_data_arguments(parser, "JSON list of {'video': path, 'caption': str | [str, ...]} (or a datasets dataset)")
    add_text_arguments(parser)
    group = parser.add_argument_group("retrieval")
    group.add_argument(
        "--k-test", type=int, default=128, help="candidates re-ranked by the matching head (official 128)"
    )
    group.add_argument("--no-rerank", action="store_true", help="report ITC and dual softmax only (no ITM re-rank)")
    group.add_argument("--itm-batch-size", type=int, default=32, help="pairs per matching forward (default 32)")
    group.add_argument("--paragraph", action="store_true", help="join a video's captions into one text")
    group.add_argument("--ks", type=int, nargs="+", help="recall cut-offs (default 1 5 10, those <= the set size)")
    group.add_argument(
        "--audio-visual", action="store_true", help="score audio + video (6B): fused embedding, audio-visual head"
    )
    group.add_argument("--allow-missing-audio", action="store_true", help="use silence for videos without audio")


def texts_of(records: list[dict], paragraph: bool) -> tuple[list[str], list[int]]:
    """Flatten captions into texts and the index of each text's video."""
    texts, text_to_video = [], []
    for position, record in enumerate(records):
        captions = [record["caption"]] if isinstance(record["caption"], str) else list(record["caption"])
        if paragraph:
            captions = [" ".join(captions)]
        texts.extend(captions)
        text_to_video.extend([position] * len(captions))
    return texts, text_to_video


def retrieval_metrics(scores: dict, text_to_video: list[int], ks) -> dict[str, dict[str, float]]:
    """The metric module on each score set: v2t numbers from `video_to_text`, t2v numbers from `text_to_video`."""
    metric = load_metric("text_video_retrieval", keep_in_memory=True)
    results = {}
    for name, score in scores.items():
        v2t = metric.compute(predictions=score.video_to_text.numpy(), text_to_video=text_to_video, ks=list(ks))
        t2v = metric.compute(predictions=score.text_to_video.T.numpy(), text_to_video=text_to_video, ks=list(ks))
        merged = {key: value for key, value in t2v.items() if key.startswith("t2v_")}
        merged |= {key: value for key, value in v2t.items() if key.startswith("v2t_")}
        merged["r_mean"] = (merged["t2v_r_mean"] + merged["v2t_r_mean"]) / 2
        results[name] = merged
    return results


def recall_curves(scores: dict, text_to_video: list[int], max_k: int) -> dict[str, dict[str, list[float]]]:
    ks = list(range(1, max_k + 1))
    metrics = retrieval_metrics(scores, text_to_video, ks)
    return {
        name: {
            "text-to-video": [values[f"t2v_r{k}"] for k in ks],
            "video-to-text": [values[f"v2t_r{k}"] for k in ks],
        }
        for name, values in metrics.items()
    }


def checked_ks(requested, num_media: int, num_texts: int) -> list[int]:
    limit = min(num_media, num_texts)
    if requested is None:
        return [k for k in DEFAULT_KS if k <= limit]
    bad = [k for k in requested if not 1 <= k <= limit]
    if bad:
        raise ValueError(f"--ks {bad} must be between 1 and {limit} (the number of videos and of texts)")
    return sorted(set(requested))


def run(args) -> dict:
    ctx = make_context(args, NAME)
    annotations = load_annotations(args, {"caption": is_caption})
    records = annotations.records
    texts, text_to_video = texts_of(records, args.paragraph)
    rerank = not args.no_rerank
    if rerank and args.k_test < 1:
        raise ValueError(f"--k-test must be a positive integer, got {args.k_test}")
    if rerank and args.k_test > min(len(records), len(texts)):
        raise ValueError(
            f"--k-test {args.k_test} is larger than the candidate set ({len(records)} videos, {len(texts)} texts); "
            f"pass --k-test <= {min(len(records), len(texts))} or --no-rerank"
        )
    ks = checked_ks(args.ks, len(records), len(texts))

    model = load_model(args.model, ctx, args.attn_implementation, kind="stage2")
    tokenizer = load_tokenizer(args)
    processor, overrides = load_video_processor(args, model)
    load = video_loader(processor, overrides)
    if args.audio_visual:
        if model.audio_model is None:
            raise ValueError(f"--audio-visual needs a model with an audio tower; {args.model} has none")
        load = both_loader(load, audio_loader(load_feature_extractor(args), args.allow_missing_audio))

    def encode(batch):
        pixels = batch["pixel_values_videos"]
        if pixels.shape[1] != 1:
            raise ValueError(f"retrieval uses one view per video; the video processor made {pixels.shape[1]}")
        vision = model.encode_vision(pixel_values_videos=as_model_input(pixels[:, 0], model))
        if not args.audio_visual:
            return {"embeds": vision.embeds, **({"memory": vision.memory} if rerank else {})}
        # the official evaluation feeds the padded fbank without a mask
        audio = model.encode_audio(as_model_input(batch["input_features"], model))
        fused = F.normalize(model.fuse_audio_visual(audio.projected, vision.projected), dim=-1)
        memory = torch.cat([audio.memory, vision.memory], dim=1)
        return {"embeds": fused, **({"memory": memory} if rerank else {})}

    features = extract_features(
        ctx, MediaDataset(records, load), encode, args.batch_size, args.num_workers, desc="encoding videos"
    )
    text = encode_texts(
        model, tokenizer, texts, batch_size=args.text_batch_size, max_length=args.max_text_length,
        return_hidden_states=rerank, progress=ctx.progress,
    )
    media = SimpleNamespace(embeds=features["embeds"], memory=features.get("memory"))
    scores = retrieval_scores(
        model, media, text, k=args.k_test if rerank else None, batch_size=args.itm_batch_size,
        audio_visual=args.audio_visual, accelerator=ctx.accelerator, progress=ctx.progress,
    )
    if not ctx.is_main:
        return {}
    return report_retrieval(ctx, args, annotations, scores, text_to_video, ks, extra_settings={
        "k_test": args.k_test if rerank else None,
        "paragraph": args.paragraph,
        "audio_visual": args.audio_visual,
        "num_frames": overrides.get("num_frames", processor.num_frames),
    })


def report_retrieval(ctx, args, annotations, scores, text_to_video, ks, extra_settings: dict) -> dict:
    """Metrics, table, recall@K plot and files of a retrieval run (shared with audio retrieval)."""
    metrics = retrieval_metrics(scores, text_to_video, ks)
    num_media, num_texts = scores["itc"].video_to_text.shape
    results = {
        "task": ctx.task,
        "model": args.model,
        "annotations": annotations.summary(),
        "num_media": num_media,
        "num_texts": num_texts,
        "settings": {"ks": ks, "dtype": args.dtype, "max_text_length": args.max_text_length, **extra_settings},
        "metrics": metrics,
    }
    if not args.no_plot:
        curves = recall_curves(scores, text_to_video, min(num_media, num_texts, 50))
        path = plot_recall_at_k(ctx.output_dir / "recall_at_k.png", curves, f"{ctx.task}: {args.model}")
        results["files"] = {"plots": [path]}
    columns = [c for c in TABLE_COLUMNS if c in next(iter(metrics.values()))]
    saved = None
    if args.save_scores:
        saved = {"text_to_video": torch.tensor(text_to_video)}
        for name, score in scores.items():
            saved[f"{name}_video_to_text"] = score.video_to_text
            saved[f"{name}_text_to_video"] = score.text_to_video
    return write_report(ctx, results, metrics_table(metrics, columns), saved)


TASKS = (Task(NAME, HELP, add_arguments, run, description=__doc__),)

__all__ = ["TASKS", "checked_ks", "recall_curves", "report_retrieval", "retrieval_metrics", "texts_of"]
