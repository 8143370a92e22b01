import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel

from internvideo2 import InternVideo2Config, InternVideo2Model, InternVideo2TextConfig
from internvideo2.convert.audio import audio_config_from_beats_cfg
from internvideo2.convert.checkpoint_io import check_against_model
from internvideo2.convert.stage2 import convert_stage2_checkpoint, convert_stage2_state_dict

from .conftest import FIXTURES

ATOL = dict(rtol=1e-5, atol=1e-5)
KEYS = json.loads((FIXTURES / "full_size_keys" / "keys.json").read_text())["models"]


def fixture(folder):
    root = FIXTURES / folder
    bert = json.loads((root / "bert_config.json").read_text())
    text_config = InternVideo2TextConfig(
        **{k: bert[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size", "max_position_embeddings", "fusion_layer", "encoder_width")}
    )
    return (
        load_file(root / "state_dict.safetensors"),
        load_file(root / "inputs.safetensors"),
        load_file(root / "outputs.safetensors"),
        text_config,
    )


@pytest.fixture(scope="module")
def stage2():
    state, inputs, outputs, text_config = fixture("stage2_model")
    model, report = convert_stage2_checkpoint(
        state, text_config=text_config, num_attention_heads=4, attention_pool_num_heads=4
    )
    return model, report, inputs, outputs


@pytest.fixture(scope="module")
def audiovisual():
    state, inputs, outputs, text_config = fixture("stage2_audiovisual")
    beats_cfg = json.loads((FIXTURES / "stage2_audiovisual" / "config.json").read_text())["beats_cfg"]
    model, _ = convert_stage2_checkpoint(
        state,
        text_config=text_config,
        audio_config=audio_config_from_beats_cfg(beats_cfg, num_mel_bins=64),
        num_attention_heads=4,
        attention_pool_num_heads=4,
        source_image_size=28,
    )
    return model, inputs, outputs


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_stage2_1b_encoders_heads_and_matching_match_official(stage2, attn):
    model, _, inputs, outputs = stage2
    model.set_attn_implementation(attn)
    vision = model.encode_vision(inputs["video"])
    text = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
    torch.testing.assert_close(vision.last_hidden_state, outputs["encode_vision.x_vis"], **ATOL)
    torch.testing.assert_close(vision.pooled, outputs["encode_vision.pooled"], **ATOL)
    torch.testing.assert_close(vision.projected, outputs["vision_proj"], **ATOL)
    torch.testing.assert_close(text.last_hidden_state, outputs["encode_text.text_embeds"], **ATOL)
    torch.testing.assert_close(text.last_hidden_state[:, 0], outputs["encode_text.pooled"], **ATOL)
    torch.testing.assert_close(text.projected, outputs["text_proj"], **ATOL)
    torch.testing.assert_close(vision.embeds @ text.embeds.T, outputs["itc.sim_cosine"], **ATOL)

    output = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], pixel_values_videos=inputs["video"])
    torch.testing.assert_close(output.logits_per_video, outputs["itc.sim_v2t_over_temp"], **ATOL)
    torch.testing.assert_close(output.logits_per_text, outputs["itc.sim_t2v_over_temp"], **ATOL)

    n = inputs["video"].shape[0]
    pairs = torch.stack(
        [
            model.match_logits(
                vision.memory[[v] * n], text.last_hidden_state, text.attention_mask
            )
            for v in range(n)
        ]
    )
    torch.testing.assert_close(pairs, outputs["itm.logits_all_pairs"], **ATOL)

    mlm = model.masked_language_modeling(
        outputs["mlm.input_ids_masked"], inputs["attention_mask"], vision.memory, labels=outputs["mlm.labels"]
    )
    torch.testing.assert_close(mlm.logits, outputs["mlm.prediction_scores"], rtol=1e-5, atol=5e-5)
    torch.testing.assert_close(mlm.loss, outputs["loss.mlm"], rtol=1e-5, atol=5e-5)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_stage2_6b_audio_visual_path_matches_official(audiovisual, attn):
    model, inputs, outputs = audiovisual
    model.set_attn_implementation(attn)
    vision = model.encode_vision(inputs["video"])
    audio = model.encode_audio(inputs["fbank"])
    text = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
    torch.testing.assert_close(vision.memory, outputs["encode_vision.vision_embeds"], **ATOL)
    torch.testing.assert_close(vision.pooled, outputs["encode_vision.pooled"], **ATOL)
    torch.testing.assert_close(audio.pooled, outputs["encode_audio.pooled"], **ATOL)
    torch.testing.assert_close(audio.memory, outputs["encode_audio.audio_embeds"], **ATOL)
    torch.testing.assert_close(audio.projected, outputs["audio_proj"], **ATOL)
    torch.testing.assert_close(text.projected, outputs["text_proj"], **ATOL)
    fused = model.fuse_audio_visual(audio.projected, vision.projected)
    torch.testing.assert_close(fused, outputs["av_fusion"], **ATOL)
    torch.testing.assert_close(vision.embeds @ text.embeds.T, outputs["itc.sim_cosine_vt"], **ATOL)
    av = model.get_audio_visual_features(inputs["video"], inputs["fbank"])
    torch.testing.assert_close(av @ text.embeds.T, outputs["itc.sim_cosine_avt"], **ATOL)
    output = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                   pixel_values_videos=inputs["video"], input_features=inputs["fbank"])
    torch.testing.assert_close(output.logits_per_video * model.temperature, outputs["itc.sim_cosine_avt"], **ATOL)

    n = inputs["video"].shape[0]
    itm = torch.stack([model.match_logits(vision.memory[[v] * n], text.last_hidden_state, text.attention_mask) for v in range(n)])
    torch.testing.assert_close(itm, outputs["itm.logits_all_pairs"], **ATOL)
    av_memory = torch.cat([audio.memory, vision.memory], dim=1)  # audio tokens first, as the official code
    avtm = torch.stack(
        [model.match_logits(av_memory[[v] * n], text.last_hidden_state, text.attention_mask, audio_visual=True) for v in range(n)]
    )
    torch.testing.assert_close(avtm, outputs["avtm.logits_all_pairs"], **ATOL)


def test_save_and_reload_with_auto_classes_keeps_ties(stage2, tmp_path):
    model, _, inputs, _ = stage2
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), InternVideo2Config)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, InternVideo2Model)
    decoder = reloaded.text_model.cls.predictions.decoder.weight
    assert decoder.data_ptr() == reloaded.text_model.bert.embeddings.word_embeddings.weight.data_ptr()
    args = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], pixel_values_videos=inputs["video"])
    torch.testing.assert_close(reloaded(**args).logits_per_video, model(**args).logits_per_video, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["multi_modality.InternVideo2_Stage2_visual_1B", "multi_modality.InternVideo2_Stage2_audiovisual_6B"])
def test_released_stage2_checkpoints_convert_completely_on_meta(name):
    shapes = KEYS[name]["keys"]
    state = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    converted, config, report = convert_stage2_state_dict(state, source=name)
    with torch.device("meta"):
        model = InternVideo2Model(config)
    tied = model.all_tied_weights_keys
    check_against_model({**converted, **{k: converted[v] for k, v in tied.items()}}, model, name)
    preset = InternVideo2Config.from_preset("6B" if "6B" in name else "1B")
    assert config.projection_dim == preset.projection_dim
    assert config.memory_projection_dim == preset.memory_projection_dim
    assert config.text_config.fusion_layer == 19 and config.text_config.encoder_width == preset.text_config.encoder_width
    assert config.vision_config.hidden_size == preset.vision_config.hidden_size
    assert (config.audio_config is None) == ("1B" in name)
    dropped = [k for keys in report.dropped.values() for k in keys]
    assert all("decoder" in k or "clip_" in k or "position_ids" in k for k in dropped)


def test_presets_build_the_released_shapes():
    with torch.device("meta"):
        model = InternVideo2Model(InternVideo2Config.from_preset("1B"))
    assert model.vision_projection.weight.shape == (512, 768)
    assert model.text_model.bert.encoder.layer[19].crossattention.self.key.weight.shape == (1024, 1408)
    with pytest.raises(ValueError, match="unknown preset"):
        InternVideo2Config.from_preset("2B")


def test_temperature_is_clamped_in_training_only(stage2):
    model, _, inputs, _ = stage2
    args = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], pixel_values_videos=inputs["video"])
    original = model.temperature.detach().clone()
    try:
        with torch.no_grad():
            model.temperature.fill_(5.0)
        model.eval()(**args)
        assert model.temperature.item() == 5.0
        model.train()(**args)
        assert model.temperature.item() == pytest.approx(0.5)
    finally:
        with torch.no_grad():
            model.temperature.copy_(original)
        model.eval()


def test_in_batch_loss_equals_symmetric_cross_entropy(stage2):
    model, _, inputs, _ = stage2
    output = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                   pixel_values_videos=inputs["video"], return_loss=True)
    logits = output.logits_per_video
    manual = -(logits.log_softmax(1).diagonal().mean() + logits.log_softmax(0).diagonal().mean()) / 2
    torch.testing.assert_close(output.loss, manual)


def test_bad_inputs(stage2, audiovisual):
    model, _, inputs, _ = stage2
    with pytest.raises(ValueError, match="has no audio tower"):
        model.encode_audio(torch.zeros(1, 160, 64))
    with pytest.raises(ValueError, match="pass at least one"):
        model()
    with pytest.raises(ValueError, match="return_loss needs text"):
        model(pixel_values_videos=inputs["video"], return_loss=True)
    with pytest.raises(ValueError, match="memory has 3 samples but text_hidden_states has 1"):
        text = model.encode_text(inputs["input_ids"][:1], inputs["attention_mask"][:1])
        model.match_logits(model.encode_vision(inputs["video"]).memory, text.last_hidden_state, text.attention_mask)
    av_model, av_inputs, _ = audiovisual
    with pytest.raises(ValueError, match="batch size mismatch: 2 videos but 1 audio clips"):
        av_model(pixel_values_videos=av_inputs["video"], input_features=av_inputs["fbank"][:1])
    with pytest.raises(Exception, match="encoder_width"):
        InternVideo2Config(text_config=InternVideo2TextConfig(encoder_width=7))
