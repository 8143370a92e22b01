"""Top-k accuracy and mean-class accuracy from a (samples x classes) score matrix."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Top-k accuracy: the fraction of samples whose true class is among the k best-scored classes, for every k asked for,
plus mean-class accuracy (top-1 accuracy of each class present in the references, averaged over those classes).
When k contains both 1 and 5, `avg_top1_top5` = (top1 + top5) / 2 is added (the "AVG" column of the InternVideo2
zero-shot Kinetics tables). Values are fractions in [0, 1].

Ties: the rank of the true class is the number of other classes placed before it. `tie_break` decides where classes
with exactly the true class's score go:
  * "pessimistic" (default): before it, so a tie never counts as a hit;
  * "optimistic": after it;
  * "reverse_index": among tied classes the higher index comes first. This is the order of
    `np.argsort(scores, kind="stable")[::-1]` and of `sklearn.metrics.top_k_accuracy_score`. The official
    InternVideo2 code uses numpy's default (unstable) sort, whose order among ties is implementation-defined.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): one row of class scores per sample, all rows of the same length C.
    references (`list` of `int`): the true class index of every sample, in [0, C).
    k (`int` or `list` of `int`, defaults to `(1, 5)`): the cut-offs, each in [1, C].
    tie_break (`str`, defaults to `"pessimistic"`): "pessimistic", "optimistic" or "reverse_index".
Returns:
    `top{k}` for every k, `mean_class_accuracy`, and `avg_top1_top5` when 1 and 5 are both in k.
Examples:
    >>> metric = load_metric("topk_accuracy")
    >>> metric.compute(predictions=[[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], references=[2, 0], k=[1, 2])
    {'top1': 0.5, 'top2': 1.0, 'mean_class_accuracy': 0.5}
"""

_CITATION = """
@article{wang2024internvideo2,
  title={InternVideo2: Scaling Foundation Models for Multimodal Video Understanding},
  author={Wang, Yi and Li, Kunchang and Li, Xinhao and Yu, Jiashuo and He, Yinan and others},
  journal={arXiv preprint arXiv:2403.15377},
  year={2024}
}
"""

_TIE_BREAKS = ("pessimistic", "optimistic", "reverse_index")


def _score_matrix(rows):
    """Stack the `predictions` rows into a float64 (N, C) matrix, with one-line errors."""
    if len(rows) == 0:
        raise ValueError("predictions is empty: pass at least one row of scores")
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(f"predictions rows must all have the same length, got lengths {sorted(lengths)}")
    scores = np.asarray(rows, dtype=np.float64)
    if scores.shape[1] == 0:
        raise ValueError("predictions rows are empty: there are no candidates to rank")
    if np.isnan(scores).any():
        raise ValueError("predictions contains NaN scores, which cannot be ranked")
    return scores


def _best_target_rank(scores, is_target, tie_break):
    """0-based rank of the best-placed target in every row of `scores` (N, C); `is_target` has a True per row."""
    best = np.where(is_target, scores, -np.inf).max(axis=1, keepdims=True)
    others = ~is_target
    ahead = (others & (scores > best)).sum(axis=1)
    if tie_break == "optimistic":
        return ahead
    tied = others & (scores == best)
    if tie_break == "pessimistic":
        return ahead + tied.sum(axis=1)
    # reverse_index: the best-scored target with the highest index leads its tie group.
    num_candidates = scores.shape[1]
    lead_target = num_candidates - 1 - np.argmax((is_target & (scores == best))[:, ::-1], axis=1)
    return ahead + (tied & (np.arange(num_candidates) > lead_target[:, None])).sum(axis=1)


def _check_tie_break(tie_break):
    if tie_break not in _TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {_TIE_BREAKS}, got {tie_break!r}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopkAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.top_k_accuracy_score.html"
            ],
        )

    def _compute(self, predictions, references, k=(1, 5), tie_break="pessimistic"):
        _check_tie_break(tie_break)
        scores = _score_matrix(predictions)
        num_classes = scores.shape[1]
        ks = [k] if isinstance(k, (int, np.integer)) else list(k)
        if not ks:
            raise ValueError("k is empty: pass at least one cut-off")
        for cutoff in ks:
            if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or cutoff < 1:
                raise ValueError(f"k must hold positive integers, got {cutoff!r}")
            if cutoff > num_classes:
                raise ValueError(f"k={cutoff} is larger than the number of classes ({num_classes} score columns)")
        labels = np.asarray(references, dtype=np.int64)
        outside = labels[(labels < 0) | (labels >= num_classes)]
        if outside.size:
            raise ValueError(
                f"references contains label {outside[0]} outside the {num_classes} score columns [0, {num_classes})"
            )

        is_target = np.zeros(scores.shape, dtype=bool)
        is_target[np.arange(len(labels)), labels] = True
        ranks = _best_target_rank(scores, is_target, tie_break)

        result = {f"top{cutoff}": float(np.mean(ranks < cutoff)) for cutoff in ks}
        top1_hits = ranks == 0
        result["mean_class_accuracy"] = float(np.mean([top1_hits[labels == c].mean() for c in np.unique(labels)]))
        if 1 in ks and 5 in ks:
            result["avg_top1_top5"] = (result["top1"] + result["top5"]) / 2
        return result
