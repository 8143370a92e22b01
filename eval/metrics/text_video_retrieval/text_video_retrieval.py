"""Text-to-video and video-to-text retrieval recall, median and mean rank from a (videos x texts) similarity matrix."""

import datasets
import evaluate
import numpy as np


_DESCRIPTION = """
Retrieval metrics in both directions from a similarity matrix with one row per video and one column per text, and the
ground truth `text_to_video` (text index -> index of the video it describes):
  * text-to-video (t2v): every text ranks all videos; the rank of its own video counts;
  * video-to-text (v2t): every video ranks all texts; the best rank among its own texts counts (several captions per
    video, as in the official `itm_eval`).
Paragraph retrieval (one text per video, text i describes video i) is `text_to_video=None` with a square matrix.
For each direction: R@k (fraction of queries whose ground truth ranks within the first k) for every k, `r_mean` (mean
of those recalls), `medr` and `meanr` (median and mean of the 1-based rank). The overall `r_mean` averages the two
directions, as in the official `itm_eval`. Recalls are fractions in [0, 1] (the official code prints percentages).

`dual_softmax=True` re-scores as the official `_dsl` results do: v2t ranks `S * softmax(S, axis=0)` and t2v ranks
`S.T * softmax(S.T, axis=0)` (temperature 1 on the matrix given; pass raw cosine similarities to match the official
evaluation).

Ties: the rank of a query's ground truth is the number of other candidates placed before it. `tie_break` decides where
non-ground-truth candidates with exactly the ground truth's score go:
  * "pessimistic" (default): before it, so a tie never counts as a hit;
  * "optimistic": after it;
  * "reverse_index": among tied candidates the higher index comes first, the order of
    `np.argsort(scores, kind="stable")[::-1]`. The official `itm_eval` uses numpy's default (unstable) sort, whose
    order among ties is implementation-defined; with ties-free scores all three conventions agree with it.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): the (num_videos, num_texts) similarity matrix, one row per video.
    text_to_video (`list` of `int`, optional): for every text (column), the index of its video (row). Every video
        needs at least one text. `None` means text i describes video i (square matrix).
    ks (`list` of `int`, defaults to `(1, 5, 10)`): recall cut-offs, each at most the number of videos and of texts.
    tie_break (`str`, defaults to `"pessimistic"`): "pessimistic", "optimistic" or "reverse_index".
    dual_softmax (`bool`, defaults to `False`): rank dual-softmax re-scored similarities.
Returns:
    `t2v_r{k}`, `t2v_r_mean`, `t2v_medr`, `t2v_meanr`, the same with `v2t_`, and `r_mean`.
Examples:
    >>> metric = load_metric("text_video_retrieval")
    >>> similarity = [[0.9, 0.1, 0.8], [0.2, 0.7, 0.3]]  # 2 videos, 3 texts
    >>> metric.compute(predictions=similarity, text_to_video=[0, 1, 1], ks=[1])["t2v_r1"]
    0.6666666666666666
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


def _softmax(scores, axis):
    shifted = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _text_owners(text_to_video, num_videos, num_texts):
    """Validate the text -> video mapping (every video needs a text) and return it as an int array."""
    if text_to_video is None:
        if num_videos != num_texts:
            raise ValueError(
                f"text_to_video=None means one text per video, "
                f"but predictions is {num_videos} videos x {num_texts} texts"
            )
        return np.arange(num_texts)
    owners = np.asarray(text_to_video)
    if owners.ndim != 1 or owners.dtype.kind not in "iu":
        raise TypeError(f"text_to_video must be a flat sequence of integer video indices, got dtype {owners.dtype}")
    if len(owners) != num_texts:
        raise ValueError(
            f"text_to_video has {len(owners)} entries but predictions has {num_texts} text columns (videos x texts)"
        )
    outside = np.flatnonzero((owners < 0) | (owners >= num_videos))
    if outside.size:
        text = outside[0]
        raise ValueError(
            f"text_to_video[{text}] = {owners[text]} points outside the {num_videos} videos (rows of predictions)"
        )
    captionless = np.setdiff1d(np.arange(num_videos), owners)
    if captionless.size:
        raise ValueError(
            f"video {captionless[0]} has no text in text_to_video, so its video-to-text rank is undefined"
        )
    return owners


def _direction_metrics(prefix, ranks, ks):
    recalls = {f"{prefix}_r{k}": float(np.mean(ranks < k)) for k in ks}
    return {
        **recalls,
        f"{prefix}_r_mean": float(np.mean(list(recalls.values()))),
        f"{prefix}_medr": float(np.median(ranks + 1)),
        f"{prefix}_meanr": float(np.mean(ranks + 1)),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TextVideoRetrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64"))}),
            codebase_urls=["https://github.com/OpenGVLab/InternVideo/tree/main/InternVideo2/multi_modality"],
        )

    def _compute(self, predictions, text_to_video=None, ks=(1, 5, 10), tie_break="pessimistic", dual_softmax=False):
        _check_tie_break(tie_break)
        similarity = _score_matrix(predictions)
        num_videos, num_texts = similarity.shape
        owners = _text_owners(text_to_video, num_videos, num_texts)
        ks = list(ks)
        if not ks:
            raise ValueError("ks is empty: pass at least one recall cut-off")
        for k in ks:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"ks must hold positive integers, got {k!r}")
            if k > min(num_videos, num_texts):
                raise ValueError(
                    f"ks contains {k}, larger than the candidate set ({num_videos} videos, {num_texts} texts)"
                )
        text_of_video = owners[None, :] == np.arange(num_videos)[:, None]

        v2t_scores, t2v_scores = similarity, similarity.T
        if dual_softmax:
            if not np.isfinite(similarity).all():
                raise ValueError("predictions must be finite for dual_softmax=True")
            v2t_scores = similarity * _softmax(similarity, axis=0)
            t2v_scores = similarity.T * _softmax(similarity.T, axis=0)

        t2v_ranks = _best_target_rank(t2v_scores, text_of_video.T, tie_break)
        v2t_ranks = _best_target_rank(v2t_scores, text_of_video, tie_break)
        result = {**_direction_metrics("t2v", t2v_ranks, ks), **_direction_metrics("v2t", v2t_ranks, ks)}
        result["r_mean"] = (result["t2v_r_mean"] + result["v2t_r_mean"]) / 2
        return result
