"""Tests of the local `evaluate` metric modules against independent computations (numpy, scikit-learn, naive loops)."""

import inspect
import socket
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, balanced_accuracy_score, top_k_accuracy_score

from internvideo2.eval.metrics_loading import METRICS_DIR, available_metrics, load_metric


TIE_BREAKS = ("pessimistic", "optimistic", "reverse_index")


@pytest.fixture(scope="module")
def metrics():
    # In memory: a failed compute leaves evaluate's cache-file lock behind, and the next compute waits 1 s for it.
    return {name: load_metric(name, keep_in_memory=True) for name in available_metrics()}


def naive_rank(scores, targets, tie_break):
    """Position of the first target in a full sort of the candidates, written with Python's sorted / np.argsort."""
    if tie_break == "reverse_index":  # the official itm_eval loop, with a stable sort
        order = list(np.argsort(scores, kind="stable")[::-1])
    else:
        target_last = tie_break == "pessimistic"
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], (j in targets) == target_last))
    return min(order.index(t) for t in targets)


def tied_scores(rng, shape):
    """Integer-valued scores in {0, 1, 2, 3}: most rows contain ties."""
    return rng.integers(0, 4, size=shape).astype(np.float64)


# ----------------------------------------------------------------------------------------------------- topk_accuracy


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
def test_topk_matches_sklearn_without_ties(metrics):
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(60, 7)), rng.integers(0, 7, size=60)
    for tie_break in TIE_BREAKS:
        result = metrics["topk_accuracy"].compute(
            predictions=scores, references=labels, k=list(range(1, 8)), tie_break=tie_break
        )
        for k in range(1, 8):
            assert result[f"top{k}"] == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=np.arange(7)))
        assert result["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(labels, scores.argmax(1)))


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
def test_topk_reverse_index_ties_match_sklearn(metrics):
    # sklearn.metrics.top_k_accuracy_score puts the higher label index first among equal scores.
    rng = np.random.default_rng(1)
    scores, labels = tied_scores(rng, (80, 6)), rng.integers(0, 6, size=80)
    result = metrics["topk_accuracy"].compute(
        predictions=scores, references=labels, k=list(range(1, 7)), tie_break="reverse_index"
    )
    for k in range(1, 7):
        assert result[f"top{k}"] == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=np.arange(6)))


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
def test_topk_ties_match_naive_sort(metrics, tie_break):
    rng = np.random.default_rng(2)
    scores, labels = tied_scores(rng, (50, 5)), rng.integers(0, 5, size=50)
    result = metrics["topk_accuracy"].compute(predictions=scores, references=labels, k=[1, 2, 5], tie_break=tie_break)
    ranks = np.array([naive_rank(row, {label}, tie_break) for row, label in zip(scores, labels)])
    for k in (1, 2, 5):
        assert result[f"top{k}"] == pytest.approx(np.mean(ranks < k))
    per_class = [np.mean(ranks[labels == c] == 0) for c in sorted(set(labels))]
    assert result["mean_class_accuracy"] == pytest.approx(sum(per_class) / len(per_class))
    assert result["avg_top1_top5"] == pytest.approx((result["top1"] + result["top5"]) / 2)


def test_topk_tiny_hand_case(metrics):
    topk = metrics["topk_accuracy"]
    scores = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.1], [0.9, 0.0, 0.1]]
    labels = [0, 2, 0]
    # Row 0: label 0 ties with class 1; row 1: label 2 is last; row 2: label 0 is first.
    assert topk.compute(predictions=scores, references=labels, k=[1, 2]) == {
        "top1": 1 / 3, "top2": 2 / 3, "mean_class_accuracy": 0.25,
    }
    assert topk.compute(predictions=scores, references=labels, k=1, tie_break="optimistic")["top1"] == 2 / 3
    # reverse_index: among the tied classes 0 and 1, class 1 comes first.
    assert topk.compute(predictions=scores, references=labels, k=1, tie_break="reverse_index")["top1"] == 1 / 3
    assert topk.compute(predictions=scores, references=[1, 2, 0], k=1, tie_break="reverse_index")["top1"] == 2 / 3
    five = topk.compute(predictions=[[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]], references=[4, 4])
    assert five == {"top1": 0.5, "top5": 1.0, "mean_class_accuracy": 0.5, "avg_top1_top5": 0.75}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"predictions": [[0.1, 0.2]], "references": [0], "k": [1, 5]}, r"k=5 is larger than the number of classes"),
        ({"predictions": [[0.1, 0.2]], "references": [0], "k": 0}, r"k must hold positive integers"),
        ({"predictions": [[0.1, 0.2]], "references": [0], "k": []}, r"k is empty"),
        ({"predictions": [[0.1, 0.2]], "references": [2], "k": 1}, r"label 2 outside the 2 score columns"),
        ({"predictions": [[0.1, 0.2]], "references": [-1], "k": 1}, r"label -1 outside the 2 score columns"),
        ({"predictions": [], "references": []}, r"predictions is empty"),
        ({"predictions": [[0.1, 0.2], [0.3]], "references": [0, 0], "k": 1}, r"same length, got lengths \[1, 2\]"),
        ({"predictions": [[float("nan"), 0.2]], "references": [0], "k": 1}, r"contains NaN"),
        ({"predictions": [[0.1, 0.2]], "references": [0], "k": 1, "tie_break": "random"}, r"tie_break must be one of"),
        ({"predictions": [[0.1, 0.2]], "references": [0, 1]}, r"Mismatch in the number of predictions \(1\) and"),
    ],
)
def test_topk_errors(metrics, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics["topk_accuracy"].compute(**kwargs)


# ----------------------------------------------------------------------------------------------- text_video_retrieval


def random_owners(rng, num_videos, num_texts):
    """A text -> video mapping in which every video has at least one text."""
    owners = np.concatenate([np.arange(num_videos), rng.integers(0, num_videos, size=num_texts - num_videos)])
    return rng.permutation(owners)


def summarize_ranks(prefix, ranks, ks):
    ranks = np.asarray(ranks)
    result = {f"{prefix}_r{k}": np.mean(ranks < k) for k in ks}
    result[f"{prefix}_r_mean"] = np.mean(list(result.values()))
    result[f"{prefix}_medr"] = np.median(ranks) + 1
    result[f"{prefix}_meanr"] = np.mean(ranks) + 1
    return result


def naive_retrieval(v2t_scores, t2v_scores, owners, ks, tie_break):
    """The official itm_eval structure: one loop per query; v2t keeps the best rank among the video's texts."""
    v2t = [naive_rank(row, set(np.flatnonzero(owners == v)), tie_break) for v, row in enumerate(v2t_scores)]
    t2v = [naive_rank(row, {owners[t]}, tie_break) for t, row in enumerate(t2v_scores)]
    result = {**summarize_ranks("t2v", t2v, ks), **summarize_ranks("v2t", v2t, ks)}
    result["r_mean"] = (result["t2v_r_mean"] + result["v2t_r_mean"]) / 2
    return result


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
def test_retrieval_with_ties_and_several_captions_matches_naive_loop(metrics, tie_break):
    rng = np.random.default_rng(3)
    similarity, owners = tied_scores(rng, (12, 30)), random_owners(rng, 12, 30)
    result = metrics["text_video_retrieval"].compute(
        predictions=similarity, text_to_video=owners, ks=[1, 5, 10], tie_break=tie_break
    )
    expected = naive_retrieval(similarity, similarity.T, owners, [1, 5, 10], tie_break)
    assert result == pytest.approx(expected)


def test_retrieval_without_ties_matches_official_default_sort(metrics):
    # With distinct scores the official np.argsort(score)[::-1] order is unambiguous and every convention agrees.
    rng = np.random.default_rng(4)
    similarity, owners = rng.normal(size=(15, 40)), random_owners(rng, 15, 40)
    v2t_ranks = [
        min(np.where(np.argsort(row)[::-1] == t)[0][0] for t in np.flatnonzero(owners == v))
        for v, row in enumerate(similarity)
    ]
    t2v_ranks = [np.where(np.argsort(similarity[:, t])[::-1] == owners[t])[0][0] for t in range(40)]
    for tie_break in TIE_BREAKS:
        result = metrics["text_video_retrieval"].compute(
            predictions=similarity, text_to_video=owners, tie_break=tie_break
        )
        for k in (1, 5, 10):
            assert result[f"v2t_r{k}"] == pytest.approx(np.mean(np.array(v2t_ranks) < k))
            assert result[f"t2v_r{k}"] == pytest.approx(np.mean(np.array(t2v_ranks) < k))
        assert result["t2v_medr"] == np.median(t2v_ranks) + 1
        assert result["v2t_meanr"] == pytest.approx(np.mean(v2t_ranks) + 1)


def test_retrieval_dual_softmax_matches_torch_rescoring(metrics):
    rng = np.random.default_rng(5)
    similarity, owners = rng.uniform(-4, 4, size=(10, 25)), random_owners(rng, 10, 25)
    s = torch.from_numpy(similarity)
    v2t = (s * s.softmax(dim=0)).numpy()  # videos x texts, each text's column softmaxed over videos
    t2v = (s.T * s.T.softmax(dim=0)).numpy()  # texts x videos, each video's column softmaxed over texts
    retrieval = metrics["text_video_retrieval"]
    result = retrieval.compute(predictions=similarity, text_to_video=owners, ks=[1, 5], dual_softmax=True)
    assert result == pytest.approx(naive_retrieval(v2t, t2v, owners, [1, 5], "pessimistic"))
    plain = retrieval.compute(predictions=similarity, text_to_video=owners, ks=[1, 5])
    # The re-scoring changes both rankings on this matrix, so the test would notice it being skipped.
    assert plain["t2v_meanr"] != result["t2v_meanr"] and plain["v2t_meanr"] != result["v2t_meanr"]


def test_retrieval_paragraph_tiny_hand_case(metrics):
    retrieval = metrics["text_video_retrieval"]
    # Rows are videos, columns texts; text i describes video i. Video 1 ties between texts 0 and 1.
    similarity = [[3.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 1.0, 5.0]]
    result = retrieval.compute(predictions=similarity, ks=[1, 2])
    assert result["t2v_r1"] == 1.0 and result["t2v_medr"] == 1.0 and result["t2v_meanr"] == 1.0
    assert result["v2t_r1"] == 2 / 3 and result["v2t_r2"] == 1.0
    assert result["v2t_medr"] == 1.0 and result["v2t_meanr"] == 4 / 3
    assert result["r_mean"] == pytest.approx((1.0 + (2 / 3 + 1.0) / 2) / 2)
    assert retrieval.compute(predictions=similarity, ks=[1], tie_break="optimistic")["v2t_r1"] == 1.0
    # reverse_index: text 1 (higher index) comes before text 0 in the tie, so video 1 finds its text first.
    assert retrieval.compute(predictions=similarity, ks=[1], tie_break="reverse_index")["v2t_r1"] == 1.0
    assert retrieval.compute(predictions=similarity, text_to_video=[0, 1, 2], ks=[1, 2]) == result


def test_retrieval_several_captions_tiny_hand_case(metrics):
    # 2 videos x 3 texts; video 1 has texts 1 and 2, and only text 1 is its best.
    similarity = [[0.9, 0.1, 0.8], [0.2, 0.7, 0.3]]
    result = metrics["text_video_retrieval"].compute(predictions=similarity, text_to_video=[0, 1, 1], ks=[1, 2])
    assert result["t2v_r1"] == 2 / 3 and result["t2v_r2"] == 1.0 and result["t2v_meanr"] == 4 / 3
    assert result["v2t_r1"] == 1.0 and result["v2t_meanr"] == 1.0


def test_retrieval_accumulates_batches_and_accepts_torch(metrics):
    rng = np.random.default_rng(6)
    similarity, owners = tied_scores(rng, (9, 20)), random_owners(rng, 9, 20)
    retrieval = metrics["text_video_retrieval"]
    for rows in (similarity[:4], similarity[4:7], similarity[7:]):
        retrieval.add_batch(predictions=torch.from_numpy(rows))
    batched = retrieval.compute(text_to_video=torch.from_numpy(owners), ks=[1, 5])
    assert batched == retrieval.compute(predictions=similarity, text_to_video=owners, ks=[1, 5])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"text_to_video": [0, 1]}, ValueError, r"text_to_video has 2 entries but predictions has 3 text columns"),
        ({"text_to_video": [0, 1, 2]}, ValueError, r"text_to_video\[2\] = 2 points outside the 2 videos"),
        ({"text_to_video": [0, -1, 1]}, ValueError, r"text_to_video\[1\] = -1 points outside the 2 videos"),
        ({"text_to_video": [0.0, 1.0, 1.0]}, TypeError, r"text_to_video must be a flat sequence of integer"),
        ({"text_to_video": [0, 0, 0]}, ValueError, r"video 1 has no text in text_to_video"),
        ({"text_to_video": None}, ValueError, r"text_to_video=None means one text per video, but predictions is 2"),
        ({"text_to_video": [0, 1, 1], "ks": [1, 5]}, ValueError, r"ks contains 5, larger than the candidate set"),
        ({"text_to_video": [0, 1, 1], "ks": [0]}, ValueError, r"ks must hold positive integers"),
        ({"text_to_video": [0, 1, 1], "tie_break": "x"}, ValueError, r"tie_break must be one of"),
    ],
)
def test_retrieval_errors(metrics, kwargs, error, match):
    with pytest.raises(error, match=match):
        metrics["text_video_retrieval"].compute(predictions=[[0.9, 0.1, 0.8], [0.2, 0.7, 0.3]], **kwargs)


@pytest.mark.parametrize(
    "predictions, kwargs, match",
    [
        ([], {}, r"predictions is empty"),
        ([[0.1, 0.2], [0.3]], {"text_to_video": [0, 1]}, r"predictions rows must all have the same length"),
        ([[0.1, float("inf")], [0.3, 0.2]], {"dual_softmax": True, "ks": [1]}, r"must be finite for dual_softmax"),
    ],
)
def test_retrieval_matrix_errors(metrics, predictions, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics["text_video_retrieval"].compute(predictions=predictions, **kwargs)


# ------------------------------------------------------------------------------------------- multiple_choice_accuracy


def test_multiple_choice_matches_sklearn_argmax_without_ties(metrics):
    rng = np.random.default_rng(7)
    scores, answers = rng.normal(size=(40, 5)), rng.integers(0, 5, size=40)
    result = metrics["multiple_choice_accuracy"].compute(predictions=scores, references=answers)
    assert result["accuracy"] == pytest.approx(accuracy_score(answers, scores.argmax(axis=1)))


@pytest.mark.parametrize("tie_break", TIE_BREAKS)
def test_multiple_choice_ties_agree_with_naive_sort_and_topk(metrics, tie_break):
    rng = np.random.default_rng(8)
    scores, answers = tied_scores(rng, (50, 4)), rng.integers(0, 4, size=50)
    result = metrics["multiple_choice_accuracy"].compute(predictions=scores, references=answers, tie_break=tie_break)
    expected = np.mean([naive_rank(row, {a}, tie_break) == 0 for row, a in zip(scores, answers)])
    assert result["accuracy"] == pytest.approx(expected)
    top1 = metrics["topk_accuracy"].compute(predictions=scores, references=answers, k=1, tie_break=tie_break)["top1"]
    assert result["accuracy"] == top1


def test_multiple_choice_varying_option_counts_hand_case(metrics):
    predictions = [[0.1, 0.9, 0.3], [0.2, 0.8], [0.4, 0.4, 0.1, 0.0, 0.3]]
    # Right, wrong, and a tie on the answer (counted wrong by default, right when optimistic).
    mc = metrics["multiple_choice_accuracy"]
    assert mc.compute(predictions=predictions, references=[1, 0, 0]) == {"accuracy": 1 / 3}
    assert mc.compute(predictions=predictions, references=[1, 0, 0], tie_break="optimistic") == {"accuracy": 2 / 3}


@pytest.mark.parametrize(
    "predictions, references, match",
    [
        ([[0.1, 0.9], [0.2, 0.8, 0.1]], [1, 3], r"references\[1\] = 3 is outside the 3 option scores"),
        ([[0.1, 0.9]], [-1], r"references\[0\] = -1 is outside the 2 option scores"),
        ([], [], r"predictions is empty"),
        ([[0.1, float("nan")]], [0], r"predictions\[0\] contains NaN"),
        ([[0.1], []], [0, 0], r"predictions\[1\] has no option scores"),
    ],
)
def test_multiple_choice_errors(metrics, predictions, references, match):
    with pytest.raises(ValueError, match=match):
        metrics["multiple_choice_accuracy"].compute(predictions=predictions, references=references)


# ------------------------------------------------------------------------------------ multiple_choice_letter_accuracy


@pytest.mark.parametrize(
    "text, num_options, letter",
    [
        ("(B) a dog", None, "B"),
        ("Answer: b", None, "B"),
        ("B.", None, "B"),
        ("The answer is C", None, "C"),
        ("b) running", None, "B"),
        ("  [d] a tree", None, "D"),
        ("C", None, "C"),
        ("c\nBecause the man runs.", None, "C"),
        ("Best option:(A) running", None, "A"),
        ("The correct option is (d).", None, "D"),
        ("the answer is b, since it moves", None, "B"),
        ("I would pick (c) because it moves", None, "C"),
        ("(B) a dog. The answer is C", None, "B"),
        ("Option F is wrong, the answer is (B)", 4, "B"),
        ("the answer is a dog", None, None),
        ("A dog is running", None, None),
        ("a cat", None, None),
        ("", None, None),
        ("(E) five", 4, None),
    ],
)
def test_letter_extraction_rule(metrics, text, num_options, letter):
    assert metrics["multiple_choice_letter_accuracy"].extract_letter(text, num_options) == letter


def test_letter_accuracy_hand_case(metrics):
    predictions = ["(B) a dog", "Answer: a", "The answer is C", "a cat", "D."]
    references = ["B", "(A) a man", "d", "C", "D"]
    # Right, right, wrong letter, no letter, right.
    result = metrics["multiple_choice_letter_accuracy"].compute(predictions=predictions, references=references)
    assert result == {"accuracy": 3 / 5, "unparsed": 1 / 5}


@pytest.mark.parametrize(
    "references, kwargs, match",
    [
        (["dog"], {}, r"references\[0\] = 'dog' is not an option letter in A-Z"),
        (["E"], {"num_options": 4}, r"references\[0\] = 'E' is not an option letter in A-D"),
        (["A"], {"num_options": 0}, r"num_options must be an integer in \[1, 26\]"),
        (["A"], {"num_options": 27}, r"num_options must be an integer in \[1, 26\]"),
    ],
)
def test_letter_accuracy_errors(metrics, references, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics["multiple_choice_letter_accuracy"].compute(predictions=["A"], references=references, **kwargs)


def test_letter_accuracy_rejects_empty(metrics):
    with pytest.raises(ValueError, match=r"predictions is empty"):
        metrics["multiple_choice_letter_accuracy"].compute(predictions=[], references=[])


def test_rank_helper_copies_are_identical(metrics):
    # evaluate modules must be self-contained, so the tie-aware rank helper is copied into three of them.
    names = ("topk_accuracy", "text_video_retrieval", "multiple_choice_accuracy")
    sources = {inspect.getsource(sys.modules[type(metrics[name]).__module__]._best_target_rank) for name in names}
    assert len(sources) == 1


# ----------------------------------------------------------------------------------------------------- multilabel_map


def test_map_with_ties_matches_sklearn_skipping_empty_classes(metrics):
    rng = np.random.default_rng(9)
    scores = tied_scores(rng, (40, 8))
    labels = (rng.random((40, 8)) < 0.3).astype(int)
    labels[:, 3] = 0  # a class without positives
    expected = [average_precision_score(labels[:, c], scores[:, c]) for c in range(8) if labels[:, c].any()]
    result = metrics["multilabel_map"].compute(predictions=scores, references=labels)
    assert result["num_classes"] == 7
    assert result["map"] == pytest.approx(np.mean(expected))


def test_map_zero_policy_matches_torchnet_style_loop(metrics):
    # torchnet's mAPMeter: precision at every positive of the descending sort, divided by max(positives, 1), averaged
    # over all classes (so a class without positives contributes 0). Tie-free scores make its sort unambiguous.
    rng = np.random.default_rng(10)
    scores = rng.normal(size=(30, 6))
    labels = (rng.random((30, 6)) < 0.4).astype(int)
    labels[:, 0] = 0
    aps = []
    for c in range(6):
        hits, precision_sum = 0, 0.0
        for position, sample in enumerate(sorted(range(30), key=lambda i: -scores[i, c]), start=1):
            if labels[sample, c]:
                hits += 1
                precision_sum += hits / position
        aps.append(precision_sum / max(hits, 1))
    result = metrics["multilabel_map"].compute(
        predictions=scores, references=labels, classes_without_positives="zero"
    )
    assert result == {"map": pytest.approx(np.mean(aps)), "num_classes": 6}
    skipped = metrics["multilabel_map"].compute(predictions=scores, references=labels)
    assert skipped == {"map": pytest.approx(np.mean(aps[1:])), "num_classes": 5}


def test_map_tiny_hand_cases(metrics):
    result = metrics["multilabel_map"].compute(
        predictions=[[0.9, 0.2], [0.8, 0.6], [0.7, 0.1]], references=[[1, 0], [0, 1], [1, 0]]
    )
    assert result == {"map": pytest.approx(((1 + 2 / 3) / 2 + 1) / 2), "num_classes": 2}
    # Samples 0 and 1 tie: one threshold holding 1 of 2 positives at precision 1/2, then 2 of 3 at 2/3.
    tied = metrics["multilabel_map"].compute(predictions=[[1.0], [1.0], [0.0]], references=[[0], [1], [1]])
    assert tied["map"] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize(
    "predictions, references, kwargs, match",
    [
        ([[0.1, 0.2]], [[1, 0, 0]], {}, r"predictions has 2 class columns but references has 3"),
        ([[0.1, 0.2]], [[2, 0]], {}, r"references must be multi-hot rows of 0 and 1"),
        ([[0.1, 0.2]], [[0, 0]], {}, r"no positive label in any class"),
        ([], [], {}, r"predictions is empty"),
        ([[0.1, float("nan")]], [[1, 0]], {}, r"contains NaN"),
        ([[0.1, 0.2], [0.3]], [[1, 0], [0, 1]], {}, r"predictions rows must all have the same length"),
        ([[0.1, 0.2]], [[1, 0]], {"classes_without_positives": "drop"}, r"classes_without_positives must be one of"),
    ],
)
def test_map_errors(metrics, predictions, references, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics["multilabel_map"].compute(predictions=predictions, references=references, **kwargs)


# -------------------------------------------------------------------------------------------------------- load_metric


def test_every_shipped_metric_has_a_module_and_a_card():
    assert available_metrics() == (
        "multilabel_map",
        "multiple_choice_accuracy",
        "multiple_choice_letter_accuracy",
        "text_video_retrieval",
        "topk_accuracy",
    )
    for name in available_metrics():
        assert (METRICS_DIR / name / "README.md").is_file()


def test_load_metric_unknown_name():
    with pytest.raises(FileNotFoundError, match=r"no metric named 'accuracy'.*available: multilabel_map"):
        load_metric("accuracy")


def test_file_backed_metric_recovers_after_an_error(tmp_path):
    # The default (file-backed) storage: an error in one compute must not leak its rows into the next one.
    topk = load_metric("topk_accuracy", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"label 5 outside"):
        topk.compute(predictions=[[0.9, 0.1]], references=[5], k=1)
    topk.add_batch(predictions=[[0.9, 0.1]], references=[1])
    topk.add_batch(predictions=[[0.2, 0.8]], references=[1])
    assert topk.compute(k=1) == {"top1": 0.5, "mean_class_accuracy": 0.5}


def test_load_metric_works_without_network(monkeypatch):
    # Sockets that cannot resolve or connect: loading by path and computing must not touch the network.
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    for target, name in ((socket.socket, "connect"), (socket, "create_connection"), (socket, "getaddrinfo")):
        monkeypatch.setattr(target, name, refuse)
    for name in available_metrics():
        assert load_metric(name).name == name
    assert load_metric("topk_accuracy").compute(predictions=[[0.2, 0.8]], references=[1], k=1)["top1"] == 1.0
