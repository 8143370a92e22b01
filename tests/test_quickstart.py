"""The README's quickstart command (`python3 -m internvideo2 quickstart`, here with `--smoke`) end to end: files,
reload parity, and its retrieval numbers recomputed independently from the saved-and-reloaded models (naive rank
counting in numpy)."""

import base64
import contextlib
import io
import json
import re
import socket
from pathlib import Path
from types import SimpleNamespace

import httpx2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, constants, set_client_factory
from huggingface_hub.utils._http import default_client_factory, hf_request_event_hook
from transformers import AutoModel, AutoProcessor

from internvideo2.__main__ import main
from internvideo2.modeling_pretraining import InternVideo2ForPreTraining
from internvideo2.quickstart import publish_code, run_quickstart

FAKE_TOKEN = "hf_fake_token_for_the_fake_hub"
HUB_REPO_PATH = re.compile(r"/api/models/(?P<repo_id>[^/]+/[^/]+)/(?P<endpoint>preupload|commit)/(?P<revision>[^/]+)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The smoke quickstart: its folder, its results.json and what it printed."""
    output_dir = tmp_path_factory.mktemp("quickstart")
    torch.set_num_threads(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["quickstart", "--output-dir", str(output_dir), "--smoke", "--seed", "3"]) == 0
    return output_dir, json.loads((output_dir / "results.json").read_text()), printed.getvalue()


@pytest.fixture
def fake_hub(monkeypatch):
    """huggingface_hub's own HTTP client (offline check, request ids) whose transport is a fake Hub: it creates repos,
    validates cards, answers the preupload request with "regular" for every file (so their bytes travel inline, base64,
    in the commits' ndjson: "lfs" would send them through hf_xet's native client, out of httpx's reach) and records
    each commit. Sockets are refused, so anything that bypassed the fake Hub would fail."""
    hub = SimpleNamespace(created=[], commits=[], authorizations=[], unexpected=[])

    def handle(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if request.method == "GET" and path == "/api/agent-harnesses":
            return httpx2.Response(404)  # user-agent detection (not an upload step), which tolerates a missing answer
        hub.authorizations.append(request.headers.get("authorization"))
        if request.method == "POST" and path == "/api/repos/create":
            payload = json.loads(request.content)
            hub.created.append(payload)
            repo_url = f"https://{request.url.host}/{payload['organization']}/{payload['name']}"
            return httpx2.Response(200, json={"url": repo_url})
        if request.method == "POST" and path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        match = HUB_REPO_PATH.fullmatch(path)
        if request.method == "POST" and match and match["endpoint"] == "preupload":
            files = [
                {"path": file["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                for file in json.loads(request.content)["files"]
            ]
            return httpx2.Response(200, json={"files": files})
        if request.method == "POST" and match and match["endpoint"] == "commit":
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line]
            assert request.headers["content-type"] == "application/x-ndjson"
            assert lines[0]["key"] == "header"
            files = {}
            for line in lines[1:]:
                assert line["key"] == "file" and line["value"]["encoding"] == "base64", line["key"]
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            hub.commits.append({"repo_id": match["repo_id"], "revision": match["revision"], "files": files})
            oid = "0" * 40
            return httpx2.Response(
                200, json={"commitUrl": f"https://{request.url.host}/{match['repo_id']}/commit/{oid}", "commitOid": oid}
            )
        hub.unexpected.append(f"{request.method} {request.url}")  # recorded: some callers swallow errors
        return httpx2.Response(404)

    def client_factory() -> httpx2.Client:  # default_client_factory's client, with the fake Hub as its transport
        return httpx2.Client(
            transport=httpx2.MockTransport(handle),
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
        )

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    # CI sets HF_HUB_OFFLINE=1, which huggingface_hub reads once at import into `constants.HF_HUB_OFFLINE`; the client's
    # request hook then refuses every request. Uploading is what is under test, against the fake Hub only (sockets
    # stay refused), so the client is put online here.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)  # a logged-in user, whatever this machine holds
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    set_client_factory(client_factory)
    try:
        yield hub
    finally:
        set_client_factory(default_client_factory)  # also closes the fake-Hub client


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
    output_dir, metrics, _ = run
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
    _, metrics, _ = run
    assert metrics["results"]["stage2_reloaded"] == metrics["results"]["stage2"]


def test_reported_retrieval_equals_an_independent_recomputation_from_the_reloaded_models(run):
    output_dir, metrics, _ = run
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


def test_the_printed_publish_code_uploads_the_saved_folder_with_its_card(run, fake_hub):
    """The lines the quickstart prints, executed as printed against the fake Hub: the repo is created and committed to,
    the commits hold every file of the saved folder byte for byte, and the model card's results table carries the
    numbers results.json reports."""
    output_dir, metrics, printed = run
    model_dir = output_dir / "model"
    code = publish_code(model_dir)
    assert code in printed
    exec(code, {})

    assert fake_hub.unexpected == []
    assert fake_hub.created == [{"name": "internvideo2-quickstart", "organization": "your-name"}]
    assert set(fake_hub.authorizations) == {f"Bearer {FAKE_TOKEN}"}
    # upload_folder may split the upload over several commits (it caps the inline bytes per commit)
    assert fake_hub.commits
    assert {(commit["repo_id"], commit["revision"]) for commit in fake_hub.commits} == {
        ("your-name/internvideo2-quickstart", "main")
    }
    uploaded = {}
    for commit in fake_hub.commits:
        assert not uploaded.keys() & commit["files"].keys()
        uploaded.update(commit["files"])
    saved = {path.relative_to(model_dir).as_posix(): path for path in model_dir.rglob("*") if path.is_file()}
    required = {"config.json", "model.safetensors", "README.md", "processor_config.json", "tokenizer_config.json"}
    assert required <= saved.keys()
    assert uploaded.keys() == saved.keys()
    for name, path in saved.items():
        assert uploaded[name] == path.read_bytes(), name

    card = ModelCard(uploaded["README.md"].decode())
    assert card.data.model_name == "internvideo2-quickstart" and card.data.library_name == "transformers"
    # the Stage-2 model has no pipeline tag, so the card has no model-index: the metrics are its results table
    table = dict(re.findall(r"^\| heldout_(\w+) \| ([^|]+) \|$", card.text, flags=re.MULTILINE))
    expected = metrics["results"]["stage2"]
    assert table.keys() == expected.keys()
    for name, value in expected.items():
        assert float(table[name]) == pytest.approx(value, abs=0.005 + 1e-9), name  # the card rounds to 2 decimals


STUDENT_MARGIN = 20.0  # README: the student's held-out R@1 within 20 points of its teacher's


@pytest.mark.slow
def test_the_full_quickstart_meets_the_readme_targets(tmp_path):
    """The README's first command as written (full settings, seed 0; about 9 minutes on 2 cores)."""
    assert main(["quickstart", "--output-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "results.json").read_text())
    stage2, student = metrics["results"]["stage2"], metrics["results"]["student"]
    assert metrics["num_test"] == 40 and not metrics["smoke"]
    assert stage2["t2v_r1"] >= 20 * metrics["chance"]["t2v_r1"]
    assert student["t2v_r1"] >= stage2["t2v_r1"] - STUDENT_MARGIN
    assert metrics["results"]["stage2_reloaded"] == stage2
