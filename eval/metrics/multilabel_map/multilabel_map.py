"""Multi-label mean average precision over classes (Charades style)."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Mean over classes of the average precision (AP) of each class, from a (samples x classes) score matrix and multi-hot
references. The AP of a class is the mean, over its positive samples, of the precision at the rank of that sample
(samples sorted by decreasing score).

Ties: samples with equal scores of one class form a single threshold; the precision of every positive in the group is
taken after the whole group, exactly as `sklearn.metrics.average_precision_score`. (torchnet's `mAPMeter`, used by
the official InternVideo2 Charades evaluation, orders ties by `torch.sort`, which is unspecified; on tie-free scores
the two agree.)

Classes without positive samples: their AP is undefined.
  * "skip" (default): they are left out of the mean, as PySlowFast's `get_map` (slowfast/utils/meters.py) does;
  * "zero": they count with AP 0. This is what torchnet's `mAPMeter` does (it divides by max(positives, 1) and
    averages over every class), so use it to reproduce the official numbers on subsets lacking some classes.
The value is a fraction in [0, 1] (the official code prints percentages).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): one row of class scores per sample, all rows of the same length C.
    references (`list` of `list` of `int`): one multi-hot row (0 or 1 per class) per sample, of length C.
    classes_without_positives (`str`, defaults to `"skip"`): "skip" or "zero".
Returns:
    `map`, and `num_classes` (the number of classes averaged).
Examples:
    >>> metric = load_metric("multilabel_map")
    >>> metric.compute(predictions=[[0.9, 0.2], [0.8, 0.6], [0.7, 0.1]], references=[[1, 0], [0, 1], [1, 0]])
    {'map': 0.9166666666666666, 'num_classes': 2}
"""

_CITATION = """
@inproceedings{sigurdsson2016hollywood,
  title={Hollywood in Homes: Crowdsourcing Data Collection for Activity Understanding},
  author={Sigurdsson, Gunnar A. and Varol, G{\\"u}l and Wang, Xiaolong and Farhadi, Ali and Laptev, Ivan
    and Gupta, Abhinav},
  booktitle={ECCV},
  year={2016}
}
"""

_POLICIES = ("skip", "zero")


def _average_precision(scores, positives):
    """AP of one class; tied scores share one threshold. `positives` is boolean with at least one True."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positives = scores[order], positives[order]
    true_positives = np.cumsum(sorted_positives)
    group_end = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    hits_at_end = true_positives[group_end]
    precision_at_end = hits_at_end / (np.flatnonzero(group_end) + 1)
    hits_in_group = np.diff(hits_at_end, prepend=0)
    return float((hits_in_group * precision_at_end).sum() / true_positives[-1])


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
            reference_urls=["https://github.com/pytorch/tnt/blob/master/torchnet/meter/mapmeter.py"],
        )

    def _compute(self, predictions, references, classes_without_positives="skip"):
        if classes_without_positives not in _POLICIES:
            raise ValueError(
                f"classes_without_positives must be one of {_POLICIES}, got {classes_without_positives!r}"
            )
        if len(predictions) == 0:
            raise ValueError("predictions is empty: pass at least one row of class scores")
        for name, rows in (("predictions", predictions), ("references", references)):
            lengths = {len(row) for row in rows}
            if len(lengths) > 1:
                raise ValueError(f"{name} rows must all have the same length, got lengths {sorted(lengths)}")
        scores = np.asarray(predictions, dtype=np.float64)
        labels = np.asarray(references, dtype=np.int64)
        if scores.shape != labels.shape:
            raise ValueError(f"predictions has {scores.shape[1]} class columns but references has {labels.shape[1]}")
        if scores.shape[1] == 0:
            raise ValueError("predictions rows are empty: there are no classes to evaluate")
        if np.isnan(scores).any():
            raise ValueError("predictions contains NaN scores, which cannot be ranked")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("references must be multi-hot rows of 0 and 1")

        positives = labels.astype(bool)
        has_positive = positives.any(axis=0)
        if not has_positive.any():
            raise ValueError("references has no positive label in any class, so mAP is undefined")
        aps = [_average_precision(scores[:, c], positives[:, c]) for c in np.flatnonzero(has_positive)]
        num_classes = len(aps) if classes_without_positives == "skip" else scores.shape[1]
        return {"map": float(np.sum(aps) / num_classes), "num_classes": num_classes}
