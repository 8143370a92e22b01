"""InternVideo2VideoProcessor: official pipelines rebuilt by hand, presets, metadata, save/load, Auto classes."""

import io
import json

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from _video_testing import MEDIA, pyav_decode_all, synthetic_frames
from transformers import BertTokenizerFast, PreTrainedConfig, ProcessorMixin
from transformers.image_utils import PILImageResampling
from transformers.models.auto.video_processing_auto import AutoVideoProcessor
from transformers.video_processing_utils import VideoProcessorMixin

from internvideo2.processing.video_processing_internvideo2 import (
    PRESETS,
    InternVideo2VideoMetadata,
    InternVideo2VideoProcessor,
)


EXAMPLE = MEDIA / "example1.mp4"  # 40 frames, 640x480, 5 fps
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@pytest.fixture(scope="module")
def example_frames():
    """Every frame of example1.mp4 decoded by plain PyAV, (40, 3, 480, 640) uint8."""
    return torch.from_numpy(pyav_decode_all(EXAMPLE)).permute(0, 3, 1, 2)


def official_uint8_resize(frames, size, mode):
    """torchvision 0.14 `resize` on a uint8 tensor: float32 interpolate, clamp for bicubic, round, cast."""
    out = F.interpolate(frames.float(), size=size, mode=mode, align_corners=False, antialias=False)
    return (out.clamp(0, 255) if mode == "bicubic" else out).round().to(torch.uint8)


def official_normalize(frames_float01):
    return (frames_float01 - MEAN) / STD


def test_default_is_the_stage2_test_path(example_frames):
    processor = InternVideo2VideoProcessor()
    assert processor.num_frames == 8 and processor.sampling == "middle" and processor.antialias is False
    out = processor(str(EXAMPLE))
    pixels = out["pixel_values_videos"]
    assert pixels.shape == (1, 8, 3, 224, 224) and pixels.dtype == torch.float32
    # middles of the 8 segments of 5 frames
    frames = example_frames[[2, 7, 12, 17, 22, 27, 32, 37]]
    expected = official_normalize(official_uint8_resize(frames, (224, 224), "bicubic").float().div(255.0))
    torch.testing.assert_close(pixels[0], expected, rtol=0, atol=0)


def test_chat_preset_resizes_the_short_side_in_float_and_center_crops(example_frames):
    pixels = InternVideo2VideoProcessor(preset="chat")(EXAMPLE)["pixel_values_videos"]
    frames = example_frames[[2, 7, 12, 17, 22, 27, 32, 37]].float().div(255.0)
    resized = F.interpolate(frames, size=(224, 298), mode="bicubic", align_corners=False)  # 480x640 -> short 224
    expected = official_normalize(resized[..., :, 37 : 37 + 224])  # left = round((298 - 224) / 2) = 37
    torch.testing.assert_close(pixels[0], expected, rtol=0, atol=0)


def test_finetune_test_preset_gives_4_clips_by_3_crops(example_frames):
    out = InternVideo2VideoProcessor(preset="finetune_test")(EXAMPLE, return_metadata=True)
    pixels, metadata = out["pixel_values_videos"], out["video_metadata"]
    assert pixels.shape == (12, 8, 3, 224, 224)
    # segment 39 / 8 = 4.875, starts round(4.875 i) = 0 5 10 15 20 24 29 34, clip c shifts by int(0.975 (c + 1)) = c
    first_clip = [0, 5, 10, 15, 20, 24, 29, 34]
    resized_clips = [
        official_uint8_resize(example_frames[[i + c for i in first_clip]], (224, 298), "bilinear") for c in range(4)
    ]
    for view, meta in enumerate(metadata):
        clip, crop = divmod(view, 3)
        assert (meta.video_index, meta.clip_index, meta.crop_index) == (0, clip, crop)
        assert meta.frames_indices == [i + clip for i in first_clip]
        resized = resized_clips[clip]
        left = [0, 37, 74][crop]  # int(k * (298 - 224) / 2)
        expected = official_normalize(resized[..., left : left + 224].float().div(255.0))
        torch.testing.assert_close(pixels[view], expected, rtol=0, atol=0)


def test_stage2_train_preset_same_crop_and_flip_for_every_frame():
    base = torch.from_numpy(synthetic_frames(1, 60, 90, seed=3)).permute(0, 3, 1, 2)
    base = (base.int() * 150 // 255 + 40).to(torch.uint8)  # away from 0 / 255: bicubic never clamps
    video = torch.cat([base + t for t in range(24)])  # frame t = frame 0 + t
    processor = InternVideo2VideoProcessor(preset="stage2_train", num_frames=4, do_rescale=False, do_normalize=False)
    first_pixels = set()
    for seed in range(6):
        out = processor(video, generator=torch.Generator().manual_seed(seed), return_metadata=True)
        pixels, indices = out["pixel_values_videos"][0], out["video_metadata"][0].frames_indices
        assert all(6 * k <= index <= 6 * k + 4 for k, index in enumerate(indices))  # segments [6k, 6k + 5]
        for t in range(4):  # one window and one flip decision for the whole clip: frame t = frame 0 + offset
            off_by = (pixels[t] - pixels[0] - (indices[t] - indices[0])).abs()
            assert off_by.max() <= 1 and (off_by > 0).float().mean() < 0.005  # float32 sums can flip a rounding
        again = processor(video, generator=torch.Generator().manual_seed(seed))["pixel_values_videos"][0]
        assert torch.equal(pixels, again)
        first_pixels.add(pixels[0, 0, 0, 0].item())
    assert len(first_pixels) > 1  # the seed changes the crop


def test_stage2_train_preset_composes_sampling_crop_and_flip_in_the_official_order():
    from internvideo2.processing.frame_sampling import segment_frame_indices
    from internvideo2.processing.video_transforms import random_horizontal_flip, random_resized_crop

    video = torch.from_numpy(synthetic_frames(20, 50, 70, seed=4)).permute(0, 3, 1, 2).contiguous()
    out = InternVideo2VideoProcessor(preset="stage2_train", num_frames=4)(
        video, generator=torch.Generator().manual_seed(11)
    )["pixel_values_videos"][0]
    stream = torch.Generator().manual_seed(11)
    frames = video[segment_frame_indices(4, 20, "rand", generator=stream)]
    frames = random_resized_crop(frames, (224, 224), (0.5, 1.0), (3 / 4, 4 / 3), "bicubic", False, generator=stream)
    frames = random_horizontal_flip(frames, 0.5, generator=stream)
    torch.testing.assert_close(out, official_normalize(frames.float().div(255.0)), rtol=0, atol=0)


def test_metadata_of_a_real_clip():
    out = InternVideo2VideoProcessor()(EXAMPLE, return_metadata=True)
    (meta,) = out["video_metadata"]
    assert isinstance(meta, InternVideo2VideoMetadata)
    assert (meta.total_num_frames, meta.fps, meta.width, meta.height) == (40, 5.0, 640, 480)
    assert meta.frames_indices == [2, 7, 12, 17, 22, 27, 32, 37]
    assert meta.timestamps == pytest.approx([i / 5 for i in [2, 7, 12, 17, 22, 27, 32, 37]])
    assert meta.num_repeated_frames == 0 and not meta.is_padded
    assert "video_metadata" not in InternVideo2VideoProcessor()(EXAMPLE)


def test_short_video_repeats_its_last_frame_and_says_so():
    frames = synthetic_frames(5, 32, 40)
    out = InternVideo2VideoProcessor(do_resize=False)(frames, video_metadata={"fps": 10}, return_metadata=True)
    meta = out["video_metadata"][0]
    assert meta.frames_indices == [0, 1, 2, 3, 4, 4, 4, 4]
    assert meta.num_repeated_frames == 3 and meta.is_padded
    assert meta.timestamps == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4])
    pixels = out["pixel_values_videos"][0]
    assert torch.equal(pixels[4], pixels[7]) and not torch.equal(pixels[3], pixels[4])


def test_fps_sampling_pads_shorter_videos_of_a_batch():
    short, long = synthetic_frames(20, 32, 40, seed=1), synthetic_frames(40, 32, 40, seed=2)
    out = InternVideo2VideoProcessor(sampling="fps", fps=2.0, num_frames=16, size=32)(
        [short, long], video_metadata=[{"fps": 10}, {"fps": 10}], return_metadata=True
    )
    # one frame per 0.5 s at its middle: 0.25 s -> round(2.5) = 2, 0.75 s -> round(7.5) = 8, 12, 18, 22, ...
    short_meta, long_meta = out["video_metadata"]
    assert long_meta.frames_indices == [2, 8, 12, 18, 22, 28, 32, 38]
    assert short_meta.frames_indices == [2, 8, 12, 18, 18, 18, 18, 18] and short_meta.num_repeated_frames == 4
    assert out["pixel_values_videos"].shape == (2, 8, 3, 32, 32)


def test_every_input_type_gives_the_same_pixels(tmp_path):
    frames = synthetic_frames(12, 36, 44)
    expected = InternVideo2VideoProcessor(num_frames=4)(frames)["pixel_values_videos"]
    processor = InternVideo2VideoProcessor(num_frames=4)
    for video in (
        frames.transpose(0, 3, 1, 2),
        torch.from_numpy(frames),
        [PIL.Image.fromarray(frame) for frame in frames],
    ):
        assert torch.equal(processor(video)["pixel_values_videos"], expected)
    batch = processor(np.stack([frames, frames[::-1]]))["pixel_values_videos"]  # a 5-D array is a batch
    assert batch.shape == (2, 4, 3, 224, 224) and torch.equal(batch[0], expected[0])
    data = EXAMPLE.read_bytes()
    from_path = processor(EXAMPLE)["pixel_values_videos"]
    for source in (data, io.BytesIO(data)):
        assert torch.equal(processor(source)["pixel_values_videos"], from_path)
    nested = processor([[PIL.Image.fromarray(f) for f in frames], EXAMPLE])["pixel_values_videos"]
    assert torch.equal(nested[0], expected[0]) and torch.equal(nested[1], from_path[0])


def test_decode_methods_give_identical_pixels():
    processor = InternVideo2VideoProcessor()
    outputs = [processor(EXAMPLE, decode_method=m)["pixel_values_videos"] for m in ("seek", "sequential", "auto")]
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_antialias_option_changes_the_output():
    frames = synthetic_frames(8, 120, 160)
    plain = InternVideo2VideoProcessor(size=40)(frames)["pixel_values_videos"]
    smooth = InternVideo2VideoProcessor(size=40, antialias=True)(frames)["pixel_values_videos"]
    assert not torch.equal(plain, smooth)


def test_call_kwargs_override_options_for_one_call_only():
    processor = InternVideo2VideoProcessor()
    assert processor(EXAMPLE, num_frames=4, size={"height": 56, "width": 70})["pixel_values_videos"].shape == (
        1, 4, 3, 56, 70
    )
    assert processor.num_frames == 8 and processor.size == {"height": 224, "width": 224}


def test_device_argument_and_return_tensors():
    processor = InternVideo2VideoProcessor(num_frames=2, size=32)
    frames = synthetic_frames(4, 40, 48)
    on_cpu = processor(frames, device="cpu")["pixel_values_videos"]
    assert on_cpu.device.type == "cpu"
    assert torch.equal(on_cpu, processor(frames, device=torch.device("cpu"))["pixel_values_videos"])
    as_numpy = processor(frames, return_tensors="np")["pixel_values_videos"]
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, on_cpu.numpy())


@pytest.mark.gpu
def test_cuda_device_matches_cpu():
    processor = InternVideo2VideoProcessor()
    on_gpu = processor(EXAMPLE, device="cuda")["pixel_values_videos"]
    assert on_gpu.device.type == "cuda"
    # a GPU rounding difference can move a uint8 pixel by one step (1 / 255 / std < 0.02 after normalisation)
    difference = (on_gpu.cpu() - processor(EXAMPLE)["pixel_values_videos"]).abs()
    assert difference.max() < 0.02 and (difference > 0).float().mean() < 0.01


def test_presets_and_option_overrides():
    assert set(PRESETS) == {"stage2_test", "stage2_train", "chat", "finetune_test"}
    finetune = InternVideo2VideoProcessor(preset="finetune_test", num_clips=2)
    assert (finetune.sampling, finetune.num_clips, finetune.num_crops) == ("sparse", 2, 3)
    assert finetune.resample == PILImageResampling.BILINEAR and finetune.size == {"shortest_edge": 224}
    assert InternVideo2VideoProcessor(preset="stage2_test").to_dict() == InternVideo2VideoProcessor().to_dict()


def test_save_and_load_round_trip(tmp_path):
    processor = InternVideo2VideoProcessor(preset="chat", num_frames=4, antialias=True)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "video_preprocessor_config.json").read_text())
    assert saved["video_processor_type"] == "InternVideo2VideoProcessor"
    assert saved["size"] == {"shortest_edge": 224} and saved["num_frames"] == 4 and saved["antialias"] is True
    loaded = InternVideo2VideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert torch.equal(loaded(EXAMPLE)["pixel_values_videos"], processor(EXAMPLE)["pixel_values_videos"])
    assert InternVideo2VideoProcessor.from_pretrained(tmp_path, num_frames=2).num_frames == 2


class _ThrowawayConfig(PreTrainedConfig):
    model_type = "internvideo2_video_processor_test"


def test_auto_video_processor_after_registration(tmp_path):
    AutoVideoProcessor.register(
        _ThrowawayConfig, video_processor_classes={"torchvision": InternVideo2VideoProcessor}, exist_ok=True
    )
    InternVideo2VideoProcessor(preset="finetune_test").save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is InternVideo2VideoProcessor and loaded.num_clips == 4


class _VideoTextProcessor(ProcessorMixin):
    """The minimal composite processor; the override is needed while torchvision is absent (see module docs)."""

    def __init__(self, video_processor=None, tokenizer=None):
        super().__init__(video_processor, tokenizer)

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(f"`video_processor` must be a VideoProcessorMixin, got {type(argument).__name__}")
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)


def test_usable_inside_a_processor_mixin(tmp_path):
    AutoVideoProcessor.register(
        _ThrowawayConfig, video_processor_classes={"torchvision": InternVideo2VideoProcessor}, exist_ok=True
    )
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "runs"]))
    tokenizer = BertTokenizerFast(vocab=str(vocab))  # (`vocab_file=` is ignored in transformers 5)
    processor = _VideoTextProcessor(InternVideo2VideoProcessor(num_frames=4), tokenizer)
    out = processor(videos=EXAMPLE, text="a dog runs", return_tensors="pt", num_frames=2)
    assert out["input_ids"].tolist() == [[2, 5, 6, 7, 3]]
    direct = InternVideo2VideoProcessor(num_frames=2)(EXAMPLE)["pixel_values_videos"]
    assert torch.equal(out["pixel_values_videos"], direct)
    processor.save_pretrained(tmp_path / "saved")
    reloaded = _VideoTextProcessor.from_pretrained(tmp_path / "saved")
    assert type(reloaded.video_processor) is InternVideo2VideoProcessor and reloaded.video_processor.num_frames == 4


def test_sample_frames_uses_the_processor_defaults():
    processor = InternVideo2VideoProcessor(preset="finetune_test")
    metadata = InternVideo2VideoMetadata(total_num_frames=81)
    assert processor.sample_frames(metadata, clip_index=0) == [2, 12, 22, 32, 42, 52, 62, 72]
    # linspace(0, 81, 3) = 0, 40.5, 81 -> segments [0, 39] and [40, 80]
    assert processor.sample_frames(metadata, sampling="middle", num_clips=1, num_frames=2) == [19, 60]


# ----------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"sampling": "uniform"}, ValueError, r"`sampling` must be one of \('middle', 'rand', 'fps', 'sparse'\)"),
        ({"num_frames": 0}, ValueError, r"`num_frames` must be a positive integer, got 0"),
        ({"num_frames": -2}, ValueError, r"`num_frames` must be a positive integer, got -2"),
        ({"preset": "bogus"}, ValueError, r"`preset` must be one of \('stage2_test'"),
        ({"colour": 1}, TypeError, r"unknown (option\(s\)|or unsupported argument\(s\)) \['colour'\]"),
        ({"size": {"longest_edge": 3}}, ValueError, r"`size` must be a positive int"),
        ({"crop_size": {"shortest_edge": 3}}, ValueError, r"`crop_size` must be \{'height', 'width'\}"),
        ({"num_clips": 2}, ValueError, r"`num_clips=2` needs sampling='sparse'"),
        ({"sampling": "fps"}, ValueError, r"`sampling='fps'` needs `fps`"),
        ({"fps": -1.0}, ValueError, r"`fps` must be a positive number"),
        ({"decode_method": "fast"}, ValueError, r"`decode_method` must be one of"),
        ({"resample": PILImageResampling.LANCZOS}, ValueError, r"`resample` must be PILImageResampling"),
        ({"do_center_crop": True}, ValueError, r"`crop_size` is required when do_center_crop"),
        ({"do_random_resized_crop": True, "num_crops": 3, "crop_size": 224}, ValueError, r"cannot be combined"),
        ({"crop_scale": [1.0, 0.5]}, ValueError, r"`crop_scale` must be two numbers 0 < low <= high"),
        ({"flip_prob": 2}, ValueError, r"`flip_prob` must be a number in \[0, 1\]"),
        ({"do_resize": "yes"}, ValueError, r"`do_resize` must be True or False, got 'yes'"),
        ({"rescale_factor": 0}, ValueError, r"`rescale_factor` must be a positive number, got 0"),
        ({"image_mean": [0.5, 0.5]}, ValueError, r"`image_mean` must be one or 3 \(one per RGB channel\) positive"),
    ],
)
def test_invalid_options_are_rejected_at_construction_and_call(options, error, message):
    with pytest.raises(error, match=message):
        InternVideo2VideoProcessor(**options)
    if "preset" not in options:
        with pytest.raises(error, match=message):
            InternVideo2VideoProcessor()(synthetic_frames(2, 8, 8), **options)


def test_bad_videos_name_the_input(tmp_path):
    processor = InternVideo2VideoProcessor(num_frames=2, size=16)
    good = synthetic_frames(3, 16, 16)
    with pytest.raises(FileNotFoundError, match=r"video file not found: '.*missing.mp4'"):
        processor(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match=r"videos\[1\]: video file not found: '.*missing.mp4'"):
        processor([good, str(tmp_path / "missing.mp4")])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match=r"junk.mp4' is not a readable video file"):
        processor(junk)
    with pytest.raises(TypeError, match=r"must hold uint8 RGB frames, got dtype torch.float64"):
        processor(good.astype(np.float64))
    with pytest.raises(ValueError, match=r"must have 4 dims .* got shape \(16, 16, 3\)"):
        processor(good[0])
    with pytest.raises(ValueError, match=r"must have 3 RGB channels"):
        processor(np.zeros((3, 16, 16, 2), np.uint8))
    with pytest.raises(ValueError, match=r"`videos` is empty"):
        processor([])


def test_bad_call_arguments():
    processor = InternVideo2VideoProcessor(num_frames=2, size=16)
    video = synthetic_frames(3, 16, 16)
    with pytest.raises(ValueError, match=r"`device` 'gpu0' is not a valid torch device"):
        processor(video, device="gpu0")
    with pytest.raises(TypeError, match=r"`generator` must be a torch.Generator, got int"):
        processor(video, generator=0)
    with pytest.raises(ValueError, match=r"got 2 videos but 1 `video_metadata` entries"):
        processor([video, video], video_metadata=[{"fps": 5}])
    with pytest.raises(ValueError, match=r"`video_metadata` has unknown key\(s\) \['rate'\]"):
        processor(video, video_metadata={"rate": 5})
    with pytest.raises(ValueError, match=r"`sampling='fps'` needs the video's frame rate"):
        processor(video, sampling="fps", fps=1.0)
    with pytest.raises(ValueError, match=r"different shapes"):
        processor([video, synthetic_frames(3, 16, 20)], do_resize=False)
