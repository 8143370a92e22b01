"""Annotation reading and checking, label resolution, window arithmetic, reporting helpers and the one-line errors of
the evaluation tasks (no model needed)."""

import csv
import json

import datasets
import PIL.Image
import pytest
import torch

from internvideo2.eval.__main__ import build_parser, main
from internvideo2.eval.tasks import TASKS
from internvideo2.eval.tasks.annotations import (
    class_names_from_file,
    is_caption,
    is_caption_list,
    is_index,
    is_label,
    prepare_annotations,
    read_records,
    resolve_labels,
)
from internvideo2.eval.tasks.classification import average_view_probabilities
from internvideo2.eval.tasks.feature_export import output_name, window_frame_indices, window_starts
from internvideo2.eval.tasks.reporting import metrics_table, plot_confusion_matrix, plot_recall_at_k
from internvideo2.eval.tasks.retrieval import checked_ks, texts_of


@pytest.fixture
def media(tmp_path):
    for name in ("a.mp4", "b.mp4", "sub/c.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"not decoded here")
    return tmp_path


# ------------------------------------------------------------------------------------------------------ reading


def test_read_records_formats(tmp_path):
    rows = [{"video": "a.mp4", "caption": "x"}, {"video": "b.mp4", "caption": ["y", "z"]}]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "wrapped.json").write_text(json.dumps({"annotations": rows}))
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_records(str(tmp_path / "list.json")) == rows
    assert read_records(str(tmp_path / "wrapped.json")) == rows
    assert read_records(str(tmp_path / "lines.jsonl")) == rows

    (tmp_path / "finetune.csv").write_text("videos/a.mp4,3\nvideos/b.mp4,0\n")
    assert read_records(str(tmp_path / "finetune.csv")) == [
        {"video": "videos/a.mp4", "label": 3}, {"video": "videos/b.mp4", "label": 0}
    ]
    (tmp_path / "stage1.txt").write_text("videos/a.mp4 -1 -1 -1 7\n")
    assert read_records(str(tmp_path / "stage1.txt"), csv_delimiter=" ") == [{"video": "videos/a.mp4", "label": 7}]
    with open(tmp_path / "header.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "sentence"], ["a.mp4", "hello"]])
    assert read_records(str(tmp_path / "header.csv"), columns={"video": "path", "caption": "sentence"}) == [
        {"video": "a.mp4", "caption": "hello"}
    ]

    splits = datasets.DatasetDict(
        {"test": datasets.Dataset.from_list([{"path": "a.mp4", "text": "x"}]),
         "train": datasets.Dataset.from_list([{"path": "b.mp4", "text": "y"}])}
    )
    splits.save_to_disk(str(tmp_path / "saved"))
    assert read_records(str(tmp_path / "saved"), split="train", columns={"video": "path", "caption": "text"}) == [
        {"video": "b.mp4", "caption": "y"}
    ]
    with pytest.raises(ValueError, match=r"has splits \['test', 'train'\]; choose one with --dataset-split"):
        read_records(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match="has no split 'val'"):
        read_records(str(tmp_path / "saved"), split="val")


def test_read_records_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*missing.json"):
        read_records(str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match="cannot load the dataset 'someone/no_such_dataset'"):
        read_records("someone/no_such_dataset")  # offline in the tests: the Hub cannot be reached
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_records(str(tmp_path / "bad.json"))
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(ValueError, match="must be .json, .jsonl, .csv or .txt"):
        read_records(str(tmp_path / "notes.md"))
    (tmp_path / "scalars.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold one object per record, found a int"):
        read_records(str(tmp_path / "scalars.json"))


# ------------------------------------------------------------------------------------------------------ checking


def test_prepare_annotations_skips_and_counts_bad_records(media):
    records = [
        {"video": "a.mp4", "caption": "fine"},
        {"video": "b.mp4"},
        {"caption": "no video"},
        {"video": "sub/c.mp4", "caption": ""},
        {"video": "gone.mp4", "caption": "missing file"},
        {"video": str(media / "b.mp4"), "caption": ["absolute", "path"]},
    ]
    result = prepare_annotations(records, source="ann.json", required={"caption": is_caption}, media_root=str(media))
    assert [r["index"] for r in result.records] == [0, 5]
    assert result.records[0]["video"] == str(media / "a.mp4")
    assert result.num_read == 6 and result.num_skipped == 4
    assert result.skipped["missing_fields"] == {
        "count": 2, "examples": ["record 1 has no 'caption'", "record 2 has no 'video'"]
    }
    assert result.skipped["invalid_fields"]["count"] == 1
    assert result.skipped["missing_media"]["examples"] == [f"record 4: media file not found: {media / 'gone.mp4'}"]
    assert result.summary()["num_used"] == 2

    with pytest.raises(ValueError, match=r"ann.json: record 1 has no 'caption' \(use without --strict"):
        prepare_annotations(records, source="ann.json", required={"caption": is_caption}, media_root=str(media),
                            strict=True)
    with pytest.raises(FileNotFoundError, match="ann.json: record 1: media file not found: .*gone.mp4"):
        prepare_annotations([records[0], records[4]], source="ann.json", required={"caption": is_caption},
                            media_root=str(media), strict=True)
    limited = prepare_annotations(records, source="ann.json", required={"caption": is_caption},
                                  media_root=str(media), max_samples=2)
    assert limited.num_read == 2 and len(limited.records) == 1
    with pytest.raises(ValueError, match=r"ann.json: no usable record out of 2 \(missing_media: record 0"):
        prepare_annotations(records[4:5] * 2, source="ann.json", required={}, media_root=str(media))
    with pytest.raises(ValueError, match="max_samples must be a positive integer"):
        prepare_annotations(records, source="ann.json", required={}, max_samples=0)


def test_field_validators_and_record_check(media):
    assert is_caption("x") and is_caption(["x", "y"]) and not is_caption([]) and not is_caption(["x", ""])
    assert is_caption_list(["a", "b"]) and not is_caption_list(["a"]) and not is_caption_list("ab")
    assert is_index(0) and not is_index(-1) and not is_index(True) and not is_index(1.0)
    assert is_label(3) and is_label("dog") and not is_label(" ") and not is_label(None)
    records = [{"video": "a.mp4", "caption": ["x", "y"], "answer": answer} for answer in (1, 2)]
    result = prepare_annotations(
        records, source="mc.json", required={"caption": is_caption_list, "answer": is_index}, media_root=str(media),
        record_check=lambda r: "answer out of range" if r["answer"] >= len(r["caption"]) else None,
    )
    assert len(result.records) == 1 and result.skipped["invalid_fields"]["examples"] == ["record 1 answer out of range"]


def test_resolve_labels(tmp_path):
    by_name = [{"video": "v", "caption": "run"}, {"video": "v", "caption": "jump"}, {"video": "v", "caption": "run"}]
    assert resolve_labels(by_name, None, "a.json") == ([0, 1, 0], ["run", "jump"])
    assert resolve_labels(by_name, ["jump", "swim", "run"], "a.json") == ([2, 0, 2], ["jump", "swim", "run"])
    by_index = [{"video": "v", "label": 2}, {"video": "v", "label": 0}]
    assert resolve_labels(by_index, None, "a.csv") == ([2, 0], ["0", "1", "2"])
    assert resolve_labels(by_index, None, "a.csv", num_classes=4)[1] == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="class 'run' of v is not in the class names list"):
        resolve_labels(by_name, ["jump"], "a.json")
    with pytest.raises(ValueError, match="a.csv: label 2 of v is outside the 2 classes"):
        resolve_labels(by_index, ["x", "y"], "a.csv")
    with pytest.raises(ValueError, match="mixes class indices and class names"):
        resolve_labels(by_name + by_index, None, "a.json")
    (tmp_path / "labels.txt").write_text("run\n\njump\n")
    assert class_names_from_file(str(tmp_path / "labels.txt")) == ["run", "jump"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="class names file .*empty.txt is empty"):
        class_names_from_file(str(tmp_path / "empty.txt"))
    with pytest.raises(FileNotFoundError, match="class names file not found"):
        class_names_from_file(str(tmp_path / "nope.txt"))


# -------------------------------------------------------------------------------------------- task arithmetic


def test_texts_of_flattens_or_joins_captions():
    records = [{"caption": "a"}, {"caption": ["b", "c"]}]
    assert texts_of(records, paragraph=False) == (["a", "b", "c"], [0, 1, 1])
    assert texts_of(records, paragraph=True) == (["a", "b c"], [0, 1])
    assert checked_ks(None, 7, 9) == [1, 5]
    assert checked_ks([3, 1, 3], 7, 9) == [1, 3]
    with pytest.raises(ValueError, match=r"--ks \[8\] must be between 1 and 7"):
        checked_ks([1, 8], 7, 9)


def test_average_view_probabilities_matches_a_loop():
    logits = torch.randn(3 * 4, 5, generator=torch.Generator().manual_seed(0))
    averaged = average_view_probabilities(logits, num_videos=3)
    for video in range(3):
        views = [torch.exp(row) / torch.exp(row).sum() for row in logits[4 * video : 4 * video + 4]]
        torch.testing.assert_close(averaged[video], sum(views) / 4)


def test_window_arithmetic():
    assert window_starts(60, 16, 8) == [0, 8, 16, 24, 32, 40]
    assert window_starts(16, 16, 8) == [0]
    assert window_starts(5, 16, 8) == [0]
    assert window_starts(20, 16, 1) == [0, 1, 2, 3, 4]
    # 8 middle frames of 16: segments [0, 2), [2, 4), ...: middles (x0 + x1 - 1) // 2
    assert window_frame_indices(32, 100, 16, 8) == [32 + i for i in (0, 2, 4, 6, 8, 10, 12, 14)]
    # a video shorter than the window repeats its last frame
    assert window_frame_indices(0, 3, 16, 4) == [0, 1, 2, 2]
    assert output_name("/data/videos/x/y.mp4", "/data/videos") == "x__y"
    assert output_name("/elsewhere/z.webm", "/data/videos") == "z"
    assert output_name("/data/v.mkv", "") == "v"


# --------------------------------------------------------------------------------------------------- reporting


def test_metrics_table_shows_fractions_in_percent_and_ranks_raw():
    table = metrics_table({"itc": {"t2v_r1": 0.5, "t2v_medr": 3.5}, "itm": {"t2v_r1": 0.25}})
    assert table.splitlines() == [
        "| scores | t2v_r1 (%) | t2v_medr |", "|---|---|---|", "| itc | 50.00 | 3.50 |", "| itm | 25.00 | - |"
    ]


def test_plots_are_written(tmp_path):
    path = plot_confusion_matrix(tmp_path / "cm.png", [0, 1, 1, 2], [0, 1, 0, 2], ["a", "b", "c"], "title")
    assert PIL.Image.open(path).size[0] > 100
    curves = {"itc": {"text-to-video": [0.1, 0.5, 1.0], "video-to-text": [0.2, 0.6, 1.0]}}
    assert PIL.Image.open(plot_recall_at_k(tmp_path / "r.png", curves, "title")).size[0] > 100


# --------------------------------------------------------------------------------------------------- command line


def test_every_task_has_a_command_with_help():
    parser = build_parser()
    assert set(TASKS) == {
        "zero-shot-classification", "classification", "retrieval", "multiple-choice", "linear-probe",
        "audio-classification", "audio-retrieval", "export-features", "chat-multiple-choice", "chat-open-ended",
    }
    for name in TASKS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_bad_command_line_input_gives_one_line_errors(tmp_path, media, capsys):
    (tmp_path / "ann.json").write_text(json.dumps([{"video": "a.mp4"}]))
    common = ["--model", str(tmp_path / "no_model"), "--media-root", str(media), "--device", "cpu",
              "--output-dir", str(tmp_path / "out")]
    cases = [
        (["retrieval", "--annotations", str(tmp_path / "ann.json"), *common],
         "error: ann.json: no usable record out of 1 (missing_fields: record 0 has no 'caption')"),
        (["retrieval", "--annotations", str(tmp_path / "ann.json"), "--strict", *common],
         "error: ann.json: record 0 has no 'caption' (use without --strict to skip such records)"),
        (["zero-shot-classification", "--annotations", str(tmp_path / "none.json"), *common],
         "error: annotation file not found: none.json"),
        (["export-features", *common], "error: pass exactly one of --annotations or --videos"),
        (["classification", "--annotations", str(tmp_path / "ann.json"), "--batch-size", "0", *common],
         "error: --batch-size must be a positive integer, got 0"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error
        assert error.replace(str(tmp_path) + "/", "") == expected
    (tmp_path / "fine.json").write_text(json.dumps([{"video": "a.mp4", "caption": "x"}]))
    assert main(["retrieval", "--annotations", str(tmp_path / "fine.json"), "--k-test", "1", *common]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: --model {tmp_path / 'no_model'} is not a saved model folder") and "\n" not in error
