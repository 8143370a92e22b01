"""Audio tasks with the audio encoder of a Stage-2 model (InternVideo2-6B): zero-shot audio classification
(ESC-50 style) and audio <-> text retrieval (AudioCaps / Clotho style).

    python -m internvideo2.eval audio-classification --model STAGE2_6B --annotations esc50.json --media-root AUDIO
    python -m internvideo2.eval audio-retrieval --model STAGE2_6B --annotations audiocaps_test.json --media-root A

The audio track of every media file (audio file or video) is decoded, resampled to 16 kHz and turned into the
model's fbank by the feature extractor saved with the model (10-s crop from the start, zero padding).

Classification annotations: `{"video": path, "caption": class name}` or `{"video", "label"}` / CSV with
`--class-names-file`. Classes are described by `--templates-file` prompts; the default is the single prompt
"this is a sound of {}" (the LAION-CLAP zero-shot ESC-50 prompt; the official InternVideo2 code has no audio
classification protocol). Retrieval annotations: `{"video": path, "caption": str | [str, ...]}`; the released model
has no audio-only matching head, so retrieval reports ITC and dual softmax (no re-rank).
"""

from types import SimpleNamespace

import torch

from internvideo2.zero_shot import encode_texts, retrieval_scores, zero_shot_classification_scores

from .annotations import is_caption, is_label, resolve_labels
from .classification import add_class_arguments, add_prompt_arguments, read_templates, report_classification
from .common import (
    MediaDataset,
    Task,
    add_data_arguments,
    add_model_arguments,
    add_text_arguments,
    as_model_input,
    audio_loader,
    class_names_argument,
    extract_features,
    load_annotations,
    load_feature_extractor,
    load_model,
    load_tokenizer,
    make_context,
)
from .retrieval import checked_ks, report_retrieval, texts_of


AUDIO_TEMPLATES = ("this is a sound of {}",)


def _add_audio_arguments(parser) -> None:
    parser.add_argument(
        "--allow-missing-audio", action="store_true", help="use silence for media without an audio track"
    )


def audio_model(args, ctx):
    model = load_model(args.model, ctx, args.attn_implementation, kind="stage2")
    if model.audio_model is None:
        raise ValueError(f"{args.model} has no audio encoder (only the InternVideo2-6B Stage-2 model has one)")
    return model


def audio_embeddings(ctx, args, model, records) -> torch.Tensor:
    feature_extractor = load_feature_extractor(args)

    def encode(batch):
        # the official evaluation feeds the zero-padded fbank without a mask
        return {"embeds": model.encode_audio(as_model_input(batch["input_features"], model)).embeds}

    dataset = MediaDataset(records, audio_loader(feature_extractor, args.allow_missing_audio))
    return extract_features(ctx, dataset, encode, args.batch_size, args.num_workers, "encoding audio")["embeds"]


def add_classification_arguments(parser) -> None:
    add_model_arguments(parser)
    add_data_arguments(parser, "JSON list of {'video': media path, 'caption': class name}, or CSV", media=False)
    add_text_arguments(parser)
    add_class_arguments(parser)
    add_prompt_arguments(parser, AUDIO_TEMPLATES)
    _add_audio_arguments(parser)


def run_classification(args) -> dict:
    ctx = make_context(args, "audio-classification")
    templates = read_templates(args, AUDIO_TEMPLATES)
    annotations = load_annotations(args, {"label": is_label}, label_from_caption=True)
    labels, class_names = resolve_labels(annotations.records, class_names_argument(args), args.annotations)
    model = audio_model(args, ctx)
    tokenizer = load_tokenizer(args)
    embeds = audio_embeddings(ctx, args, model, annotations.records)
    scores = {
        mode: zero_shot_classification_scores(
            model, embeds, class_names, tokenizer, mode=mode, templates=templates,
            batch_size=args.text_batch_size, max_length=args.max_text_length,
        )
        for mode in args.modes
    }
    if not ctx.is_main:
        return {}
    settings = {"templates": list(templates), "modes": args.modes}
    return report_classification(ctx, args, annotations, class_names, labels, scores, settings)


def add_retrieval_arguments(parser) -> None:
    add_model_arguments(parser)
    add_data_arguments(parser, "JSON list of {'video': media path, 'caption': str | [str, ...]}", media=False)
    add_text_arguments(parser)
    parser.add_argument("--ks", type=int, nargs="+", help="recall cut-offs (default 1 5 10, those <= the set size)")
    _add_audio_arguments(parser)


def run_retrieval(args) -> dict:
    ctx = make_context(args, "audio-retrieval")
    annotations = load_annotations(args, {"caption": is_caption})
    texts, text_to_video = texts_of(annotations.records, paragraph=False)
    ks = checked_ks(args.ks, len(annotations.records), len(texts))
    model = audio_model(args, ctx)
    tokenizer = load_tokenizer(args)
    embeds = audio_embeddings(ctx, args, model, annotations.records)
    text = encode_texts(
        model, tokenizer, texts, batch_size=args.text_batch_size, max_length=args.max_text_length,
        return_hidden_states=False, progress=ctx.progress,
    )
    scores = retrieval_scores(model, SimpleNamespace(embeds=embeds), text, k=None)
    if not ctx.is_main:
        return {}
    return report_retrieval(ctx, args, annotations, scores, text_to_video, ks, extra_settings={"k_test": None})


TASKS = (
    Task(
        "audio-classification",
        "zero-shot audio classification (ESC-50 style) with the audio encoder",
        add_classification_arguments,
        run_classification,
        description=__doc__,
    ),
    Task(
        "audio-retrieval",
        "audio <-> text retrieval with the audio encoder (ITC, dual softmax)",
        add_retrieval_arguments,
        run_retrieval,
        description=__doc__,
    ),
)

__all__ = ["AUDIO_TEMPLATES", "TASKS"]
