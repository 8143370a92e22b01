"""Tests of the synthetic video generator: content, determinism, splits, annotation formats, audio and errors.

Checks are computed independently of the generator: object masks by colour distance, centroids and areas with numpy,
PSNR and FFT by hand, annotation files with `json` / `csv`.
"""

import csv
import json
import shutil

import av
import numpy as np
import pytest

from internvideo2.data import (
    COLORS,
    MOTIONS,
    NUM_CAPTION_TEMPLATES,
    PITCHES,
    SHAPES,
    SyntheticVideoSample,
    generate_dataset,
    iter_frames,
    load_synthetic_dataset,
    render_frames,
    render_tone,
    resolve_video_codec,
    write_benchmark_video,
    write_sample_video,
    write_video,
)
from internvideo2.data import synthetic


SMALL = {
    "num_frames": 8,
    "size": (48, 64),
    "fps": 8,
    "colors": ("red", "green", "blue"),
    "shapes": ("circle", "square"),
    "motions": ("left_to_right", "right_to_left", "up", "grow"),
    "label_by": ("shape", "motion"),
    "held_out": 6,
    "with_audio": True,
}
# words that any phrasing of a motion uses, in captions and in class names
MOTION_WORDS = {
    "left_to_right": ("left to right",),
    "right_to_left": ("right to left",),
    "up": ("up",),
    "down": ("down",),
    "grow": ("grow", "bigger", "larger"),
    "shrink": ("shrink", "smaller"),
    "orbit": ("orbit", "around"),
}


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        return frames, stream.codec_context.name, stream.average_rate


def decode_audio(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
        return samples[0], stream.codec_context.name, stream.sample_rate


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def object_mask(frames, color):
    """Pixels within a small distance of the object's colour (the background is gray, far from every colour)."""
    return np.abs(frames.astype(np.int32) - np.array(COLORS[color])).sum(-1) < 60


def centroids(mask):
    """Per-frame (x, y) centroid and area of a (T, H, W) mask."""
    ys, xs = np.mgrid[: mask.shape[1], : mask.shape[2]]
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    return (mask * xs).sum(axis=(1, 2)) / area, (mask * ys).sum(axis=(1, 2)) / area, area


def assert_motion(frames, color, motion):
    mask = object_mask(frames, color)
    assert mask.sum(axis=(1, 2)).min() > 4, "object not found in every frame"
    x, y, area = centroids(mask)
    height, width = frames.shape[1:3]
    steps = {"x": np.diff(x), "y": np.diff(y), "area": np.diff(area)}
    if motion in ("left_to_right", "right_to_left", "up", "down"):
        axis, other = ("x", "y") if motion in ("left_to_right", "right_to_left") else ("y", "x")
        sign = 1 if motion in ("left_to_right", "down") else -1
        assert np.all(sign * steps[axis] > 0), (motion, steps[axis])
        assert np.ptp(x if other == "x" else y) < 1.5, f"{motion}: the cross-axis coordinate drifts"
    elif motion in ("grow", "shrink"):
        assert np.all((1 if motion == "grow" else -1) * steps["area"] > 0), (motion, area)
        assert np.ptp(x) < 1.5 and np.ptp(y) < 1.5, f"{motion}: the object should stay in place"
    else:  # orbit: clockwise on screen = increasing angle when y points down
        angle = np.unwrap(np.arctan2(y - (height - 1) / 2, x - (width - 1) / 2))
        assert np.all(np.diff(angle) > 0), angle
        distance = np.hypot(x - (width - 1) / 2, y - (height - 1) / 2)
        assert np.ptp(distance) < 1.5


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    first = generate_dataset(base / "a", num_train=18, num_test=6, seed=0, **SMALL)
    again = generate_dataset(base / "b", num_train=18, num_test=6, seed=0, **SMALL)
    other = generate_dataset(base / "c", num_train=18, num_test=6, seed=1, **{**SMALL, "with_audio": False})
    return first, again, other


# -------------------------------------------------------------------------------------------------------- rendering


def test_render_is_deterministic_and_seeded():
    sample = SyntheticVideoSample("blue", "triangle", "down", seed=7)
    frames = render_frames(sample, num_frames=6, size=(32, 48))
    assert frames.shape == (6, 32, 48, 3) and frames.dtype == np.uint8
    assert frames.tobytes() == render_frames(sample, num_frames=6, size=(32, 48)).tobytes()
    assert np.array_equal(np.stack(list(iter_frames(sample, num_frames=6, size=(32, 48)))), frames)
    different = render_frames(SyntheticVideoSample("blue", "triangle", "down", seed=8), num_frames=6, size=(32, 48))
    assert not np.array_equal(frames, different)


def test_background_is_textured_and_noisy():
    frames = render_frames(SyntheticVideoSample("red", "circle", "up", seed=3), num_frames=4, size=64)
    background = ~object_mask(frames, "red")
    background = background[0] & background[1]
    assert frames[0][background].std() > 3, "background should not be flat"
    changed = frames[0][background] != frames[1][background]
    assert changed.mean() > 0.5, "background pixels should carry fresh noise in every frame"
    # desaturated: channels of background pixels stay close to each other
    pixels = frames[0][background].astype(np.int32)
    assert np.median(pixels.max(-1) - pixels.min(-1)) < 20


@pytest.mark.parametrize("motion", MOTIONS)
def test_object_moves_as_stated(motion):
    frames = render_frames(SyntheticVideoSample("yellow", "square", motion, seed=11), num_frames=8, size=(64, 80))
    assert_motion(frames, "yellow", motion)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_have_their_geometry(shape):
    # the last frame of "grow" shows the biggest shape, for precise area ratios
    frames = render_frames(SyntheticVideoSample("green", shape, "grow", seed=5), num_frames=2, size=128)
    mask = object_mask(frames[-1:], "green")[0]
    rows, cols = np.nonzero(mask)
    box_height, box_width = np.ptp(rows) + 1, np.ptp(cols) + 1
    fill = mask.sum() / (box_height * box_width)
    expected_fill = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5, "cross": None}[shape]
    if shape == "cross":
        center_row, center_col = rows.min() + box_height // 2, cols.min() + box_width // 2
        assert mask[center_row, center_col] and not mask[rows.min(), cols.min()] and not mask[rows.max(), cols.max()]
        assert 0.45 < fill < 0.7
    else:
        assert abs(fill - expected_fill) < 0.07, (shape, fill)
    aspect = box_width / box_height
    assert abs(aspect - (2 / np.sqrt(3) if shape == "triangle" else 1.0)) < 0.08, (shape, aspect)
    if shape == "triangle":  # pointing up: more mass in the lower half
        assert rows.mean() > rows.min() + box_height / 2


def test_captions_and_class_names():
    templates = range(NUM_CAPTION_TEMPLATES)
    captions = {SyntheticVideoSample("orange", "cross", "shrink", template=t).caption for t in templates}
    assert len(captions) == NUM_CAPTION_TEMPLATES
    for caption in captions:
        assert "orange cross" in caption and any(word in caption for word in MOTION_WORDS["shrink"])
        assert "a orange" not in caption
    assert SyntheticVideoSample("orange", "cross", "shrink").caption == "an orange cross shrinks"
    sample = SyntheticVideoSample("red", "circle", "up", pitch="high", label_by=("motion", "color"))
    assert sample.label_by == ("color", "motion")
    assert sample.class_name.startswith("red") and "up" in sample.class_name
    assert "high" in sample.audio_caption and sample.audio_visual_caption.startswith(sample.caption)
    assert SyntheticVideoSample("red", "circle", "up").audio_caption is None


def test_render_tone_frequency():
    for pitch, frequency in PITCHES.items():
        wave = render_tone(SyntheticVideoSample("red", "circle", "up", pitch=pitch), duration_s=0.5, sample_rate=16000)
        assert wave.shape == (8000,) and wave.dtype == np.float32 and np.abs(wave).max() <= 0.5
        spectrum = np.abs(np.fft.rfft(wave))
        assert abs(np.argmax(spectrum) * 16000 / len(wave) - frequency) <= 2.0
        assert abs(wave[0]) < 1e-3 and abs(wave[-1]) < 1e-3  # faded in and out


# ---------------------------------------------------------------------------------------------------------- writing


def test_write_sample_video_round_trip(tmp_path):
    path = tmp_path / "clips" / "sample.mp4"
    sample = write_sample_video(path, num_frames=10, size=(48, 64), fps=5, motion="right_to_left", pitch="low", seed=2)
    frames, codec, rate = decode(path)
    rendered = render_frames(sample, num_frames=10, size=(48, 64))
    assert frames.shape == rendered.shape and rate == 5
    assert codec == ("h264" if synthetic._libx264_available() else "mpeg4")
    assert psnr(frames, rendered) > 30
    assert_motion(frames, "red", "right_to_left")
    audio, audio_codec, sample_rate = decode_audio(path)
    assert audio_codec == "aac" and sample_rate == 16000
    peak = np.argmax(np.abs(np.fft.rfft(audio))) * sample_rate / len(audio)
    assert abs(peak - PITCHES["low"]) <= 2.0
    assert sample.label == MOTIONS.index("right_to_left") and sample.path == str(path)


def test_write_video_streams_frames(tmp_path):
    frames = render_frames(SyntheticVideoSample("purple", "cross", "orbit", seed=4), num_frames=6, size=32)
    write_video(tmp_path / "stream.mp4", iter(frames), fps=6)
    write_video(tmp_path / "array.mp4", frames, fps=6)
    streamed, _, _ = decode(tmp_path / "stream.mp4")
    assert np.array_equal(streamed, decode(tmp_path / "array.mp4")[0])
    assert psnr(streamed, frames) > 30


def test_mpeg4_fallback_without_libx264(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "_libx264_available", lambda: False)
    assert resolve_video_codec("auto") == "mpeg4"
    with pytest.raises(ValueError, match="codec='h264' needs libx264"):
        resolve_video_codec("h264")
    sample = write_sample_video(tmp_path / "m.mp4", num_frames=6, size=32, motion="up")
    frames, codec, _ = decode(tmp_path / "m.mp4")
    assert codec == "mpeg4" and psnr(frames, render_frames(sample, num_frames=6, size=32)) > 30


@pytest.mark.skipif(not synthetic._libx264_available(), reason="needs libx264 in PyAV's FFmpeg")
def test_benchmark_video_is_h264_at_the_requested_bit_rate(tmp_path):
    rates = {}
    for target in (60_000, 300_000):
        write_benchmark_video(tmp_path / "bench.mp4", duration_s=2.0, size=(96, 128), fps=15, bit_rate=target)
        with av.open(str(tmp_path / "bench.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and (stream.height, stream.width) == (96, 128)
            assert stream.frames == 30 and stream.average_rate == 15
            assert abs(container.duration / av.time_base - 2.0) < 0.1
            rates[target] = stream.bit_rate
    for target, measured in rates.items():
        assert 0.6 * target < measured < 1.4 * target, rates


# --------------------------------------------------------------------------------------------------------- datasets


def test_dataset_is_deterministic(datasets):
    first, again, other = datasets
    assert first.train == again.train and first.test == again.test and first.held_out == again.held_out
    for name in ("retrieval", "action_recognition", "classification_csv", "audio_video"):
        for split in ("train", "test"):
            a, b = getattr(first.annotations[split], name), getattr(again.annotations[split], name)
            assert a.read_bytes() == b.read_bytes()
    for sample_a, sample_b in zip(first.train + first.test, again.train + again.test):
        assert first.video_path(sample_a).read_bytes() == again.video_path(sample_b).read_bytes()
        assert np.array_equal(decode(first.video_path(sample_a))[0], decode(again.video_path(sample_b))[0])
    assert [s.seed for s in other.train] != [s.seed for s in first.train]
    assert not np.array_equal(decode(first.video_path(first.train[0]))[0], decode(other.video_path(other.train[0]))[0])


def test_decoded_videos_match_rendered_frames_and_motion(datasets):
    dataset = datasets[0]
    expected_codec = "h264" if synthetic._libx264_available() else "mpeg4"
    for sample in dataset.train + dataset.test:
        frames, codec, rate = decode(dataset.video_path(sample))
        rendered = render_frames(sample, num_frames=dataset.num_frames, size=dataset.size)
        assert codec == expected_codec and rate == dataset.fps and frames.shape == (8, 48, 64, 3)
        assert psnr(frames, rendered) > 30, sample
        assert_motion(frames, sample.color, sample.motion)


def test_held_out_combinations_generalise(datasets):
    dataset = datasets[0]
    held = set(dataset.held_out)
    train = {sample.combination for sample in dataset.train}
    test = [sample.combination for sample in dataset.test]
    assert len(held) == 6 and not held & train and set(test) <= held
    assert len(set(test)) == len(test), "one clip per held-out combination keeps test captions distinct"
    for index, values in enumerate((SMALL["colors"], SMALL["shapes"], SMALL["motions"])):
        assert {combination[index] for combination in train} == set(values)
    assert {s.label for s in dataset.test} <= {s.label for s in dataset.train}, "every test class is trained on"
    # all train combinations are used once when num_train equals their number
    assert len(train) == 18


def test_held_out_options(tmp_path):
    explicit = [("red", "circle", "up"), ("green", "square", "left_to_right")]
    dataset = generate_dataset(
        tmp_path / "explicit", 8, 2, colors=("red", "green"), shapes=("circle", "square"),
        motions=("left_to_right", "up"), held_out=explicit, size=32, num_frames=2,
    )
    assert set(dataset.held_out) == set(explicit)
    assert {s.combination for s in dataset.test} == set(explicit)
    iid = generate_dataset(tmp_path / "iid", 4, 3, colors=("red",), shapes=("circle",), held_out=None, size=32,
                           num_frames=2, motions=("up", "down", "grow"))
    assert iid.held_out == () and {s.combination for s in iid.test} <= {s.combination for s in iid.train}
    repeated = generate_dataset(tmp_path / "rep", 4, 4, colors=("red", "blue"), shapes=("circle",), held_out=0.5,
                                max_test_per_combination=2, motions=("up", "down"), size=32, num_frames=2)
    assert len(repeated.held_out) == 2 and len(repeated.test) == 4


def test_smallest_training_set_still_shows_every_value(tmp_path):
    config = {"colors": ("red", "green", "blue"), "shapes": ("circle", "square", "cross"),
              "motions": ("up", "down", "grow"), "label_by": ("shape", "motion"), "held_out": 0.3,
              "size": 32, "num_frames": 2}
    with pytest.raises(ValueError, match=r"needs at least \d+ clips") as raised:
        generate_dataset(tmp_path / "none", 1, 0, **config)
    smallest = int(str(raised.value).split("at least ")[1].split()[0])
    dataset = generate_dataset(tmp_path / "small", smallest, 2, **config)
    train = dataset.train
    assert {s.color for s in train} == set(config["colors"]) and {s.shape for s in train} == set(config["shapes"])
    assert {s.motion for s in train} == set(config["motions"])
    pairs = {(shape, motion) for shape in config["shapes"] for motion in config["motions"]}
    assert {(s.shape, s.motion) for s in train} == pairs
    assert not {s.combination for s in train} & set(dataset.held_out)


def test_written_files_are_byte_identical(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        write_sample_video(tmp_path / name, num_frames=8, size=(48, 64), motion="orbit", pitch="medium", seed=9)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_annotation_files(datasets):
    dataset = datasets[0]
    class_names = dataset.labels_file.read_text().splitlines()
    assert class_names == list(dataset.class_names) and len(class_names) == 2 * 4
    for split in ("train", "test"):
        files, samples = dataset.annotations[split], getattr(dataset, split)
        retrieval = json.loads(files.retrieval.read_text())
        action = json.loads(files.action_recognition.read_text())
        audio_video = json.loads(files.audio_video.read_text())
        with open(files.classification_csv, newline="") as handle:
            rows = list(csv.reader(handle))
        assert len(retrieval) == len(action) == len(audio_video) == len(rows) == len(samples)
        for entry, act, av_entry, row, sample in zip(retrieval, action, audio_video, rows, samples):
            assert set(entry) == {"video", "caption"} and (dataset.root / entry["video"]).is_file()
            assert act["video"] == entry["video"] == av_entry["video"] == row[0] == sample.path
            assert len(row) == 2 and not row[0].startswith("/")
            label = int(row[1])
            assert act["caption"] == class_names[label]
            caption = entry["caption"]
            # the caption and the class name describe the same shape and motion; the caption also names the colour
            assert sample.color in caption and sample.shape in caption
            assert sample.shape in class_names[label]
            assert any(word in caption for word in MOTION_WORDS[sample.motion])
            assert any(word in class_names[label] for word in MOTION_WORDS[sample.motion])
            assert av_entry["caption"] == caption and sample.pitch in av_entry["audio_caption"]
            assert av_entry["avs_captions"].startswith(caption) and sample.pitch in av_entry["avs_captions"]
    no_audio = datasets[2]
    assert no_audio.annotations["train"].audio_video is None
    assert not (no_audio.root / "annotations" / "train_audio_video.json").exists()
    with av.open(str(no_audio.video_path(no_audio.train[0]))) as container:
        assert len(container.streams.audio) == 0


def test_audio_tone_encodes_pitch(datasets):
    dataset = datasets[0]
    pitches = set()
    for sample in dataset.test + dataset.train[:6]:
        audio, codec, sample_rate = decode_audio(dataset.video_path(sample))
        assert codec == "aac" and sample_rate == dataset.sample_rate
        assert abs(len(audio) / sample_rate - dataset.num_frames / dataset.fps) < 0.1
        peak = np.argmax(np.abs(np.fft.rfft(audio))) * sample_rate / len(audio)
        assert abs(peak - PITCHES[sample.pitch]) <= 2.0, (sample.pitch, peak)
        pitches.add(sample.pitch)
    assert len(pitches) > 1


def test_load_synthetic_dataset_round_trip(datasets, tmp_path):
    dataset = datasets[0]
    assert load_synthetic_dataset(dataset.root) == dataset
    moved = shutil.copytree(dataset.root, tmp_path / "moved")
    loaded = load_synthetic_dataset(moved)
    assert loaded.root == moved and loaded.train == dataset.train
    assert loaded.video_path(loaded.test[0]).is_file() and loaded.annotations["test"].retrieval.is_file()


def test_load_rejects_unknown_manifest_version(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match=r"manifest.json has format_version 99, expected 1"):
        load_synthetic_dataset(tmp_path)


# ----------------------------------------------------------------------------------------------------------- errors


TINY = {"colors": ("red", "green"), "shapes": ("circle",), "motions": ("up", "down"), "size": 32, "num_frames": 2}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_test": 3, "held_out": 1}, ValueError, r"num_test=3 is larger than possible: 1 test combinations"),
        ({"colors": ("red", "pink")}, ValueError, r"unknown color 'pink'"),
        ({"size": (32, 33)}, ValueError, r"size 32x33 .* must be even"),
        ({"size": 8}, ValueError, r"size height must be >= 16"),
        ({"num_train": 1}, ValueError, r"num_train=1 is too small"),
        ({"num_frames": 1}, ValueError, r"num_frames must be >= 2"),
        ({"held_out": 1.5}, ValueError, r"held_out as a fraction must be in \(0, 1\)"),
        ({"held_out": 3}, ValueError, r"asks for 3 held-out combinations, but only 2 could be held out"),
        ({"held_out": [("red", "circle", "up"), ("red", "circle", "down")]}, ValueError, r"no training .* for: red"),
        ({"held_out": [("red", "square", "up")]}, ValueError, r"is not among the chosen colors/shapes/motions"),
        ({"held_out": [("red", "circle")]}, ValueError, r"entries must be \(color, shape, motion\) tuples"),
        ({"held_out": [("red", "circle", "up")] * 2}, ValueError, r"lists \('red', 'circle', 'up'\) twice"),
        ({"held_out": "red"}, TypeError, r"held_out must be a fraction"),
        ({"label_by": "size"}, ValueError, r"unknown label_by attribute 'size'"),
        ({"label_by": ("color", "shape", "motion"), "held_out": 1}, ValueError, r"only 0 could be held out"),
        ({"codec": "vp9"}, ValueError, r"codec must be 'auto', 'h264' or 'mpeg4'"),
        ({"with_audio": 1}, TypeError, r"with_audio must be a bool"),
        ({"seed": -1}, ValueError, r"seed must be >= 0"),
        ({"shapes": ()}, ValueError, r"shapes must not be empty"),
    ],
)
def test_generate_dataset_errors(tmp_path, kwargs, error, message):
    arguments = {"num_train": 4, "num_test": 1, "held_out": 1, **TINY, **kwargs}
    with pytest.raises(error, match=message) as raised:
        generate_dataset(tmp_path / "never", **arguments)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "never").exists(), "nothing is written when the arguments are bad"


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: SyntheticVideoSample("red", "circle", "up", pitch="loud"), ValueError, r"unknown pitch 'loud'"),
        (lambda: SyntheticVideoSample("red", "hexagon", "up"), ValueError, r"unknown shape 'hexagon'"),
        (lambda: SyntheticVideoSample("red", "circle", "up", template=NUM_CAPTION_TEMPLATES), ValueError, r"template"),
        (lambda: SyntheticVideoSample("red", "circle", "up", seed=1.5), TypeError, r"seed must be an int"),
        (lambda: render_tone(SyntheticVideoSample("red", "circle", "up"), duration_s=1), ValueError, r"pitch is None"),
        (lambda: write_video("x.mp4", np.zeros((2, 16, 16, 3), np.float32), fps=4), ValueError, r"uint8"),
        (lambda: write_video("x.mp4", np.zeros((2, 15, 16, 3), np.uint8), fps=4), ValueError, r"frame size 15x16"),
        (lambda: write_sample_video("x.mp4", size=(64, 63)), ValueError, r"size 64x63 .* must be even"),
        (lambda: write_sample_video("x.mp4", motion="spin"), ValueError, r"unknown motion 'spin'"),
        (lambda: load_synthetic_dataset("/nonexistent/synthetic"), FileNotFoundError, r"no synthetic dataset"),
    ],
)
def test_other_errors(tmp_path, monkeypatch, call, error, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "x.mp4").exists()


def test_keyframe_interval_sets_the_gop(tmp_path):
    import av

    from internvideo2.data import write_sample_video

    path = tmp_path / "gop.mp4"
    write_sample_video(path, num_frames=20, size=32, keyframe_interval=5)
    with av.open(str(path)) as container:
        keyframes = [i for i, packet in enumerate(p for p in container.demux(video=0) if p.size) if packet.is_keyframe]
    assert keyframes[:2] == [0, 5] and len(keyframes) >= 3
