"""Annotation loaders (official formats) and the decoding transform: parsing checked against the files written in the
test, decoded pixels against a numpy computation or the processors run directly, and the skip-and-count policy for
unreadable media."""

import csv
import json
import warnings

import datasets
import numpy as np
import PIL.Image
import pytest
import torch

from internvideo2.data import (
    InternVideo2MediaTransform,
    MediaSkippedWarning,
    from_media_dataset,
    load_classification_csv,
    load_retrieval_json,
    load_stage1_csv,
    load_video_text_json,
    stage2_video_processor,
    write_sample_video,
    write_video,
)
from internvideo2.processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two short clips (one with an audio tone), one image, one corrupt file."""
    root = tmp_path_factory.mktemp("media")
    write_sample_video(root / "a.mp4", num_frames=8, size=32, color="red")
    write_sample_video(root / "b.mp4", num_frames=8, size=32, color="blue", motion="up", pitch="high")
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(root / "c.png")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return root, pixels


def write_json(path, payload):
    path.write_text(json.dumps(payload))
    return path


def row_dataset(rows):
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    return datasets.Dataset.from_dict(columns)


def video_row(path, sample_id=0, captions=("a clip",), media_type="video"):
    return {"media": str(path), "media_type": media_type, "captions": list(captions), "audio_visual_captions": [],
            "sample_id": sample_id}


# ---------------------------------------------------------------------------------------------------------- loaders


def test_video_text_json_matches_the_file(tmp_path):
    entries = [
        {"video": "v/1.mp4", "caption": "  A dog runs. "},
        {"image": "i/2.jpg", "caption": ["a cat", "a small cat"]},
        {"video": "/abs/3.mp4", "captions": ["first", "", "third"]},
    ]
    dataset = load_video_text_json(write_json(tmp_path / "a.json", entries), data_root="/data")
    assert dataset.column_names == ["media", "media_type", "captions", "audio_visual_captions", "sample_id"]
    assert dataset["media"] == ["/data/v/1.mp4", "/data/i/2.jpg", "/abs/3.mp4"]
    assert dataset["media_type"] == ["video", "image", "video"]
    assert dataset["captions"] == [["A dog runs."], ["a cat", "a small cat"], ["first", "third"]]
    assert dataset["sample_id"] == [0, 1, 2]


def test_audio_video_json_reads_the_audio_visual_captions(tmp_path):
    entries = [
        {"video": "1.mp4", "caption": "a drum", "audio_caption": "drumming", "avs_captions": "a drum is played loudly"},
        {"video": "2.mp4", "caption": "a flute", "audio_caption": "a melody"},
    ]
    path = write_json(tmp_path / "av.json", entries)
    dataset = load_video_text_json(path, media_type="audio_video")
    assert dataset["media_type"] == ["audio_video"] * 2
    assert dataset["audio_visual_captions"] == [["a drum is played loudly"], []]
    other_key = load_video_text_json(path, media_type="audio_video", audio_visual_caption_key="audio_caption")
    assert other_key["audio_visual_captions"] == [["drumming"], ["a melody"]]


def test_retrieval_json_paragraphs(tmp_path):
    entries = [{"video": "1.mp4", "caption": ["one.", "two."]}, {"video": "2.mp4", "caption": "x"}]
    path = write_json(tmp_path / "r.json", entries)
    assert load_retrieval_json(path)["captions"] == [["one.", "two."], ["x"]]
    assert load_retrieval_json(path, paragraph=True)["captions"] == [["one. two."], ["x"]]


def test_empty_caption_is_an_error_or_a_counted_skip(tmp_path):
    entries = [
        {"video": "1.mp4", "caption": "fine"}, {"video": "2.mp4", "caption": "  "}, {"video": "3.mp4", "caption": []}
    ]
    path = write_json(tmp_path / "e.json", entries)
    with pytest.raises(ValueError, match=r"entry 1 \('2.mp4'\) has an empty caption"):
        load_video_text_json(path)
    with pytest.warns(MediaSkippedWarning, match=r"skipped 2 entries with empty captions \(entries \[1, 2\]\)"):
        dataset = load_video_text_json(path, skip_empty_captions=True)
    assert dataset["media"] == ["1.mp4"] and dataset["sample_id"] == [0]


@pytest.mark.parametrize(
    "payload, kwargs, error, message",
    [
        (None, {}, FileNotFoundError, "annotation file not found"),
        ("not json", {}, ValueError, "is not valid JSON"),
        ({"video": "a"}, {}, ValueError, "must hold a list of annotation entries"),
        ([{"caption": "x"}], {}, ValueError, "entry 0 must have exactly one of 'video' or 'image'"),
        ([{"video": "a", "image": "b", "caption": "x"}], {}, ValueError, "exactly one of 'video' or 'image'"),
        ([{"video": "a"}], {}, ValueError, "entry 0 has no 'caption' or 'captions'"),
        ([{"video": "a", "caption": 3}], {}, ValueError, "'caption' must be a string or a list of strings"),
        ([{"video": "", "caption": "x"}], {}, ValueError, "'video' must be a non-empty path string"),
        ([{"image": "a", "caption": "x"}], {"media_type": "audio_video"}, ValueError, "has no 'video' path"),
        ([{"video": "a", "caption": "x"}], {"media_type": "audio"}, ValueError, "media_type must be one of"),
    ],
)
def test_video_text_json_errors(tmp_path, payload, kwargs, error, message):
    path = tmp_path / "bad.json"
    if payload is not None:
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    with pytest.raises(error, match=message):
        load_video_text_json(path, **kwargs)


def test_stage1_csv_matches_the_csv_module(tmp_path):
    lines = ["k400 a/1.mp4 10.0 -1 -1 3", "ssv2  b/2.webm  4.5  1.0  3.5  17", ""]
    path = tmp_path / "s1.csv"
    path.write_text("\n".join(lines))
    dataset = load_stage1_csv(path, data_root="/root")
    expected = [[field for field in row if field] for row in csv.reader(open(path), delimiter=" ") if row]
    assert dataset["source"] == [row[0] for row in expected]
    assert dataset["media"] == ["/root/" + row[1] for row in expected]
    assert dataset["total_time"] == [float(row[2]) for row in expected]
    assert dataset["start_time"] == [float(row[3]) for row in expected]
    assert dataset["end_time"] == [float(row[4]) for row in expected]
    assert dataset["label"] == [int(row[5]) for row in expected]
    with pytest.raises(ValueError, match="line 1: expected 6 fields"):
        path.write_text("a/1.mp4 3\n")
        load_stage1_csv(path)
    with pytest.raises(ValueError, match="line 1: start_time must be float, got 'x'"):
        path.write_text("k400 a 1 x 2 3\n")
        load_stage1_csv(path)


def test_classification_csv_matches_the_csv_module(tmp_path):
    path = tmp_path / "ft.csv"
    path.write_text("v/1.mp4,0\nv/2.mp4,399\n")
    dataset = load_classification_csv(path, data_root="/d", num_labels=400)
    rows = list(csv.reader(open(path)))
    assert dataset["media"] == ["/d/" + row[0] for row in rows]
    assert dataset["label"] == [int(row[1]) for row in rows]
    assert dataset["media_type"] == ["video", "video"] and dataset["sample_id"] == [0, 1]
    with pytest.raises(ValueError, match=r"line 2: label must be \[0, 10\), got 399"):
        load_classification_csv(path, num_labels=10)
    path.write_text("v/1.mp4;0\n")
    with pytest.raises(ValueError, match="line 1: expected 2 fields 'path,label', got 1"):
        load_classification_csv(path)
    with pytest.raises(ValueError, match="line 1: label must be int"):
        path.write_text("v/1.mp4,cat\n")
        load_classification_csv(path)


def test_any_local_dataset_with_paths_or_bytes(media):
    root, _ = media
    # paths and bytes cannot share an Arrow column: one dataset of each
    by_path = datasets.Dataset.from_dict({"file": ["a.mp4"], "text": ["red clip"], "extra": [1]})
    video_bytes = {"bytes": (root / "a.mp4").read_bytes(), "path": None}  # a Video(decode=False) value
    by_bytes = datasets.Dataset.from_dict({"video": [video_bytes], "label": [4]})
    paths = from_media_dataset(by_path, media_column="file", caption_column="text", data_root=root)
    assert paths.column_names == ["media", "media_type", "sample_id", "captions", "audio_visual_captions"]
    assert paths[0]["media"] == str(root / "a.mp4") and paths[0]["captions"] == ["red clip"]
    raw_bytes = from_media_dataset(by_bytes, media_column="video", label_column="label")
    assert raw_bytes[0]["label"] == 4
    transform = InternVideo2MediaTransform(stage2_video_processor(num_frames=4, image_size=28))
    decoded_path = paths.with_transform(transform)[0]["pixel_values_videos"]
    decoded_bytes = raw_bytes.with_transform(transform)[0]["pixel_values_videos"]
    torch.testing.assert_close(decoded_bytes, decoded_path, rtol=0, atol=0)
    with pytest.raises(ValueError, match="caption_column 'nope' is not a column"):
        from_media_dataset(by_path, media_column="file", caption_column="nope")
    with pytest.raises(ValueError, match="pass caption_column .* or label_column"):
        from_media_dataset(by_path, media_column="file")
    with pytest.raises(ValueError, match="row 0 of caption_column 'text' has an empty caption"):
        empty = datasets.Dataset.from_dict({"f": ["a"], "text": [""]})
        from_media_dataset(empty, media_column="f", caption_column="text")


# ------------------------------------------------------------------------------------------------------- transform


def test_image_pixels_equal_numpy_normalisation(media):
    root, pixels = media
    dataset = row_dataset([video_row(root / "c.png", media_type="image")])
    item = dataset.with_transform(InternVideo2MediaTransform(stage2_video_processor(num_frames=4, image_size=28)))[0]
    expected = ((pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(item["pixel_values_videos"].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert item["media_type"] == "image" and item["input_features"] is None


def test_evaluation_transform_equals_the_processor(media):
    root, _ = media
    processor = stage2_video_processor(num_frames=4, image_size=28)
    rows = [video_row(root / "a.mp4", 0, ["first", "second"]), video_row(root / "b.mp4", 1)]
    items = row_dataset(rows).with_transform(InternVideo2MediaTransform(processor)).__getitems__([0, 1])
    for item, row in zip(items, rows):
        expected = processor(row["media"], return_tensors="pt")["pixel_values_videos"][0]
        torch.testing.assert_close(item["pixel_values_videos"], expected, rtol=0, atol=0)
        assert item["caption"] == row["captions"][0] and item["captions"] == row["captions"]
        assert item["sample_id"] == row["sample_id"]


def test_training_draws_depend_only_on_seed_epoch_and_sample(media):
    root, _ = media
    rows = row_dataset([video_row(root / "a.mp4", 5, [f"caption {i}" for i in range(6)])])

    def draw(epoch, seed=0):
        processor = stage2_video_processor(num_frames=4, image_size=28, training=True)
        transform = InternVideo2MediaTransform(processor, training=True, seed=seed)
        transform.set_epoch(epoch)
        return rows.with_transform(transform)[0]

    first, again = draw(0), draw(0)
    torch.testing.assert_close(first["pixel_values_videos"], again["pixel_values_videos"], rtol=0, atol=0)
    assert first["caption"] == again["caption"]
    others = [draw(epoch) for epoch in range(1, 9)] + [draw(0, seed=1)]
    assert all(not torch.equal(first["pixel_values_videos"], other["pixel_values_videos"]) for other in others)
    assert len({item["caption"] for item in [first, *others]}) > 2  # a random caption per epoch, not always the first


def test_stage1_window_is_sampled_inside_start_and_end(tmp_path):
    # frame i is uniformly gray at level 8 * i, so a decoded frame tells which frame it was
    frames = np.repeat(np.arange(0, 240, 8, dtype=np.uint8)[:, None, None, None], 32 * 32 * 3).reshape(30, 32, 32, 3)
    write_video(tmp_path / "ramp.mp4", frames, fps=10)
    rows = row_dataset([{**video_row(tmp_path / "ramp.mp4"), "start_time": 1.0, "end_time": 2.0}])
    processor = stage2_video_processor(num_frames=4, image_size=32, do_normalize=False, do_rescale=False)
    item = rows.with_transform(InternVideo2MediaTransform(processor))[0]
    decoded_frames = item["pixel_values_videos"].mean(dim=(1, 2, 3)) / 8
    expected = np.linspace(10, 20, 5).astype(int)  # middle frames of the 4 segments of frames 10..19
    np.testing.assert_allclose(decoded_frames.numpy(), (expected[:-1] + expected[1:] - 1) // 2, atol=0.5)


def test_audio_video_rows_get_the_fbank(media):
    root, _ = media
    extractor = InternVideo2FeatureExtractor(max_duration=2.0)
    rows = row_dataset([{**video_row(root / "b.mp4", media_type="audio_video"), "audio_visual_captions": ["a tone"]}])
    processor = stage2_video_processor(num_frames=4, image_size=28)
    item = rows.with_transform(InternVideo2MediaTransform(processor, extractor))[0]
    expected = extractor(str(root / "b.mp4"), return_tensors="pt")
    torch.testing.assert_close(item["input_features"], expected["input_features"][0], rtol=0, atol=0)
    torch.testing.assert_close(item["audio_attention_mask"], expected["attention_mask"][0], rtol=0, atol=0)
    assert item["audio_visual_caption"] == "a tone"
    with pytest.raises(TypeError, match="audio_video rows need a feature_extractor"):
        rows.with_transform(InternVideo2MediaTransform(stage2_video_processor(num_frames=4, image_size=28)))[0]


def test_unreadable_media_are_skipped_counted_and_replaced(media):
    root, _ = media
    rows = [
        video_row(root / "a.mp4", 0),
        video_row(root / "missing.mp4", 1),
        video_row(root / "broken.mp4", 2),
        # an audio-video row whose file has no audio track is unreadable too
        {**video_row(root / "a.mp4", 3), "media_type": "audio_video"},
    ]
    raw = row_dataset(rows)
    processor = stage2_video_processor(num_frames=4, image_size=28)
    extractor = InternVideo2FeatureExtractor(max_duration=1.0)
    transform = InternVideo2MediaTransform(processor, extractor, replacement_dataset=raw.select([0]))
    with pytest.warns(MediaSkippedWarning) as caught:
        items = raw.with_transform(transform).__getitems__([0, 1, 2, 3])
    messages = [str(warning.message) for warning in caught]
    assert any(str(root / "missing.mp4") in message and "not found" in message for message in messages)
    assert any(str(root / "broken.mp4") in message for message in messages)
    assert transform.num_skipped == 3 and transform.skipped[str(root / "missing.mp4")] == 1
    assert [item["sample_id"] for item in items] == [0, 0, 0, 0]  # the batch keeps its size, with readable samples
    assert all(item["pixel_values_videos"].shape == (4, 3, 28, 28) for item in items)

    dropping = InternVideo2MediaTransform(processor)
    with pytest.warns(MediaSkippedWarning, match="missing.mp4"):
        kept = raw.select([0, 1]).with_transform(dropping).__getitems__([0, 1])
    assert [item["sample_id"] for item in kept] == [0] and dropping.num_skipped == 1

    strict = InternVideo2MediaTransform(processor, max_skipped=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaSkippedWarning)
        message = r"too many unreadable media: 2 skipped \(max_skipped=1\); last: .*broken.mp4"
        with pytest.raises(ValueError, match=message):
            raw.select([1, 2]).with_transform(strict).__getitems__([0, 1])


def test_transform_argument_errors(media):
    root, _ = media
    with pytest.raises(TypeError, match="video_processor must be an InternVideo2VideoProcessor"):
        InternVideo2MediaTransform(video_processor="processor")
    with pytest.raises(ValueError, match="max_skipped must be a non-negative int or None"):
        InternVideo2MediaTransform(max_skipped=-1)
    with pytest.raises(ValueError, match="replacement_dataset is empty"):
        InternVideo2MediaTransform(replacement_dataset=datasets.Dataset.from_dict({"media": []}))
    with pytest.raises(ValueError, match="rows need 'media' and 'sample_id' columns"):
        datasets.Dataset.from_dict({"path": ["a"]}).with_transform(InternVideo2MediaTransform())[0]
    with pytest.raises(TypeError, match="media_type must be one of"):
        row_dataset([video_row(root / "a.mp4", media_type="audio")]).with_transform(InternVideo2MediaTransform())[0]


def test_replacements_give_up_with_a_clear_error(media):
    root, _ = media
    raw = row_dataset([video_row(root / "missing.mp4", 0)])
    transform = InternVideo2MediaTransform(replacement_dataset=raw, max_replacement_attempts=2, max_skipped=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaSkippedWarning)
        with pytest.raises(ValueError, match="could not load a readable replacement in 2 attempts; last tried .*missing"):
            raw.with_transform(transform)[0]
    assert transform.num_skipped == 3  # the row and its 2 replacements


def test_flipping_is_disabled_for_ssv2_rows(media):
    root, _ = media
    processor = InternVideo2VideoProcessor(num_frames=4, size=28, do_random_flip=True, flip_prob=1.0)
    rows = [{**video_row(root / "a.mp4", 0), "source": source} for source in ("k400", "ssv2")]
    k400, ssv2 = row_dataset(rows).with_transform(InternVideo2MediaTransform(processor)).__getitems__([0, 1])
    unflipped = InternVideo2VideoProcessor(num_frames=4, size=28)(str(root / "a.mp4"))["pixel_values_videos"][0]
    torch.testing.assert_close(ssv2["pixel_values_videos"], unflipped, rtol=0, atol=0)
    torch.testing.assert_close(k400["pixel_values_videos"], unflipped.flip(-1), rtol=0, atol=0)
