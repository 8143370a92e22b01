"""The README's quickstart command (`python3 -m internvideo2 quickstart`, here with `--smoke`) end to end: files,
reload parity, and its retrieval numbers recomputed independently from the saved-and-reloaded models (naive rank
counting in numpy)."""

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import HfApi
from transformers import AutoModel, AutoProcessor

from internvideo2.__main__ import main
from internvideo2.modeling_pretraining import InternVideo2ForPreTraining
from internvideo2.quickstart import run_quickstart


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("quickstart")
    torch.set_num_threads(1)
    assert main(["quickstart", "--output-dir", str(output_dir), "--smoke", "--seed", "3"]) == 0
    return output_dir, json.loads((output_dir / "results.json").read_text())


def naive_text_to_video_recall(video_embeds: np.ndarray, text_embeds: np.ndarray, k: int) -> float:
    """Text i describes video i: % of texts whose video is among the k best-scoring videos (ties count against)."""
    hits = 0
    for text in range(len(text_embeds)):
        scores = [float(np.dot(video, text_embeds[text])) for video in video_embeds]
        better_or_equal = sum(1 for video, score in enumerate(scores) if video != text and score >= scores[text])
        hits += better_or_equal < k
    return 100.0 * hits / len(text_embeds)


def saved_test_set(output_dir: Path):
    entries = json.loads((output_dir / "data" / "annotations" / "test_retrieval.json").read_text())
    return [str(output_dir / "data" / entry["video"]) for entry in entries], [entry["caption"] for entry in entries]


def test_writes_plot_results_model_card_and_loadable_folders(run):
    output_dir, metrics = run
    assert (output_dir / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["smoke"] and metrics["seed"] == 3
    card = (output_dir / "model" / "README.md").read_text()
    assert "internvideo2-quickstart" in card
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json"):
        assert (output_dir / "model" / name).is_file(), name
    assert (output_dir / "student" / "config.json").is_file()
    # held-out combinations: no test combination appears in training
    manifest = json.loads((output_dir / "data" / "manifest.json").read_text())
    train = {(s["color"], s["shape"], s["motion"]) for s in manifest["train"]}
    test = [(s["color"], s["shape"], s["motion"]) for s in manifest["test"]]
    assert test and not train & set(test) and len(set(test)) == len(test)


def test_reload_gives_identical_numbers(run):
    _, metrics = run
    assert metrics["results"]["stage2_reloaded"] == metrics["results"]["stage2"]


def test_reported_retrieval_equals_an_independent_recomputation_from_the_reloaded_models(run):
    output_dir, metrics = run
    videos, captions = saved_test_set(output_dir)
    assert captions == metrics["test_captions"]
    model = AutoModel.from_pretrained(output_dir / "model").eval()
    processor = AutoProcessor.from_pretrained(output_dir / "model")
    inputs = processor(text=captions, videos=videos, text_kwargs={"max_length": metrics["settings"]["max_text_length"]})
    with torch.no_grad():
        text = F.normalize(model.get_text_features(inputs["input_ids"], inputs["attention_mask"]), dim=-1).numpy()
        video = F.normalize(model.get_video_features(inputs["pixel_values_videos"]), dim=-1).numpy()
        student = InternVideo2ForPreTraining.from_pretrained(output_dir / "student").eval()
        predicted = F.normalize(student(pixel_values_videos=inputs["pixel_values_videos"]).clip_embeds, dim=-1)
        student_video = F.normalize(
            model.vision_projection(metrics["student_pooled_norm"] * predicted), dim=-1
        ).numpy()
    for k in (1, 5, 10):
        if k > len(captions):
            continue
        for name, embeds in (("stage2", video), ("student", student_video)):
            expected = naive_text_to_video_recall(embeds, text, k)
            assert metrics["results"][name][f"t2v_r{k}"] == pytest.approx(expected, abs=1e-9), (name, k)
    assert metrics["chance"]["t2v_r1"] == pytest.approx(100.0 / len(captions))


def test_bad_arguments_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        run_quickstart(tmp_path, smoke=True, seed=-1)
    target = tmp_path / "a_file"
    target.write_text("")
    with pytest.raises(ValueError, match="output_dir .* is not a folder"):
        run_quickstart(target, smoke=True)


def test_the_printed_push_to_hub_call_uploads_model_processor_and_card(run, monkeypatch):
    """The call the quickstart prints, with the Hub client mocked at its HfApi methods (create_repo, create_commit)
    and sockets refused: the uploads hold the weights, config, processor files and the model card."""
    output_dir, _ = run

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    uploads = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        uploads.append((repo_id, {operation.path_in_repo for operation in operations}))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0", oid="0", pr_url=None)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    model = AutoModel.from_pretrained(output_dir / "model")
    processor = AutoProcessor.from_pretrained(output_dir / "model")
    model.push_to_hub("your-name/internvideo2-quickstart", token="x")
    processor.push_to_hub("your-name/internvideo2-quickstart", token="x")
    assert [repo for repo, _ in uploads] == ["your-name/internvideo2-quickstart"] * 2
    assert {"config.json", "model.safetensors", "README.md"} <= uploads[0][1]
    assert {"processor_config.json", "tokenizer_config.json"} <= uploads[1][1]
