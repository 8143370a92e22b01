"""Linear probing: frozen pooled video features and a logistic-regression classifier (scikit-learn).

    python -m internvideo2.eval linear-probe --model MODEL --train-annotations train.csv --annotations test.csv \\
        --media-root VIDEOS

The features are the attention-pool outputs (`pooler_output`, 768-d for the released encoders) of the video encoder
of any saved InternVideo2 model (vision encoder, classifier or Stage-2 model), averaged over the processor's views.
They are standardised (mean 0, variance 1 per dimension, from the training set) and fitted with
`sklearn.linear_model.LogisticRegression(C=--c, max_iter=--max-iter)` (multinomial, L-BFGS). Reports top-1 (and
top-5) accuracy on the test annotations, and the training accuracy.
"""

import torch

from .annotations import is_label, resolve_labels
from .classification import add_class_arguments, report_classification
from .common import (
    MediaDataset,
    Task,
    add_data_arguments,
    add_model_arguments,
    as_model_input,
    class_names_argument,
    extract_features,
    load_annotations,
    load_model,
    load_video_processor,
    make_context,
    video_loader,
    vision_encoder,
)


def add_arguments(parser) -> None:
    add_model_arguments(parser, text=False)
    add_data_arguments(parser, "test annotations: CSV 'path,label' or JSON list of {'video', 'label' | 'caption'}")
    parser.add_argument("--train-annotations", required=True, help="training annotations, same formats")
    add_class_arguments(parser)
    group = parser.add_argument_group("probe")
    group.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength (default 1.0)")
    group.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iterations (default 1000)")
    group.add_argument("--no-standardize", action="store_true", help="fit on the raw features")


def pooled_features(ctx, args, model, records, processor, overrides, desc) -> torch.Tensor:
    encoder = vision_encoder(model)
    if encoder.pooler is None:
        raise ValueError(f"the video encoder of {args.model} has no attention pool to take features from")

    def encode(batch):
        pixels = batch["pixel_values_videos"]  # (videos, views, frames, 3, height, width)
        pooled = encoder(pixel_values_videos=as_model_input(pixels.flatten(0, 1), model)).pooler_output
        return {"features": pooled.float().view(len(pixels), -1, pooled.shape[-1]).mean(dim=1)}

    dataset = MediaDataset(records, video_loader(processor, overrides))
    return extract_features(ctx, dataset, encode, args.batch_size, args.num_workers, desc)["features"]


def fit_linear_probe(train_features, train_labels, c: float, max_iter: int, standardize: bool):
    """A fitted scikit-learn pipeline: (StandardScaler ->) LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if c <= 0:
        raise ValueError(f"--c must be positive, got {c}")
    steps = [StandardScaler()] if standardize else []
    probe = make_pipeline(*steps, LogisticRegression(C=c, max_iter=max_iter))
    return probe.fit(train_features.numpy(), train_labels)


def class_scores(probe, features, num_classes: int) -> torch.Tensor:
    """(N, num_classes) probabilities; classes without training samples get 0."""
    probabilities = probe.predict_proba(features.numpy())
    scores = torch.zeros(len(features), num_classes, dtype=torch.float64)
    scores[:, torch.as_tensor(probe.classes_)] = torch.as_tensor(probabilities, dtype=torch.float64)
    return scores


def run(args) -> dict:
    ctx = make_context(args, "linear-probe")
    train = load_annotations(args, {"label": is_label}, source=args.train_annotations, label_from_caption=True)
    test = load_annotations(args, {"label": is_label}, label_from_caption=True)
    class_names = class_names_argument(args)
    num_classes = None
    if class_names is None:
        labelled = [record.get("label") for record in train.records + test.records]
        if all(isinstance(value, int) for value in labelled):
            num_classes = max(labelled) + 1
        else:
            # one class list for both splits: names in order of first appearance over train then test
            class_names = list(dict.fromkeys(labelled))
    train_labels, class_names = resolve_labels(train.records, class_names, args.train_annotations, num_classes)
    test_labels, class_names = resolve_labels(test.records, class_names, args.annotations)
    if len(set(train_labels)) < 2:
        raise ValueError(f"{args.train_annotations} has only one class; a linear probe needs at least two")

    model = load_model(args.model, ctx, args.attn_implementation, kind="vision")
    processor, overrides = load_video_processor(args, model)
    train_features = pooled_features(ctx, args, model, train.records, processor, overrides, "training features")
    test_features = pooled_features(ctx, args, model, test.records, processor, overrides, "test features")
    if not ctx.is_main:
        return {}
    probe = fit_linear_probe(train_features, train_labels, args.c, args.max_iter, not args.no_standardize)
    scores = class_scores(probe, test_features, len(class_names))
    settings = {
        "c": args.c,
        "max_iter": args.max_iter,
        "standardize": not args.no_standardize,
        "feature_dim": train_features.shape[1],
        "num_train": len(train_labels),
        "train_accuracy": float(probe.score(train_features.numpy(), train_labels)),
        "train_annotations": train.summary(),
        "num_frames": overrides.get("num_frames", processor.num_frames),
    }
    return report_classification(ctx, args, test, class_names, test_labels, {"linear_probe": scores}, settings)


TASKS = (
    Task(
        "linear-probe",
        "linear probing of frozen pooled video features (logistic regression, top-1)",
        add_arguments,
        run,
        description=__doc__,
    ),
)

__all__ = ["TASKS", "class_scores", "fit_linear_probe", "pooled_features"]
