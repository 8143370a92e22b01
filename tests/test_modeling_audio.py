import copy
import json
import math

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file
from torch.nn.utils import parametrize

from internvideo2.configuration_audio import InternVideo2AudioConfig
from internvideo2.convert.audio import (
    OFFICIAL_AUDIO_PREFIX,
    audio_config_from_beats_cfg,
    convert_beats_checkpoint,
    convert_beats_state_dict,
)
from internvideo2.convert.checkpoint_io import CheckpointConversionError
from internvideo2.modeling_audio import InternVideo2AudioModel, relative_position_bucket

from .conftest import FIXTURES


BEATS = FIXTURES / "beats_audio"
FIXTURE_CONFIG = json.loads((BEATS / "config.json").read_text())
FBANK = load_file(BEATS / "inputs.safetensors")["fbank"]
GOLDEN = load_file(BEATS / "outputs.safetensors")
TOL = dict(rtol=1e-5, atol=1e-5)  # fixture README: float32 re-implementations within 1e-5


def official_state_dict(name: str) -> dict[str, torch.Tensor]:
    return load_file(BEATS / f"state_dict_{name}.safetensors")


def fixture_model(name: str, attn_implementation: str = "eager", **overrides) -> InternVideo2AudioModel:
    config = audio_config_from_beats_cfg(FIXTURE_CONFIG["beats_cfg"][name], **overrides)
    model = InternVideo2AudioModel(config)
    model.load_state_dict(convert_beats_state_dict(official_state_dict(name), config), strict=True)
    model.set_attn_implementation(attn_implementation)
    return model.eval()


def tiny_config(**overrides) -> InternVideo2AudioConfig:
    values = dict(
        num_mel_bins=32,
        patch_embedding_dim=12,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=24,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4,
        num_buckets=32,
        max_bucket_distance=64,
        layerdrop=0.0,
    )
    return InternVideo2AudioConfig(**{**values, **overrides})


def run_recording_intermediates(model, fbank):
    """Full forward pass with hooks that record what the embedding sub-modules produce inside it."""
    recorded = {}

    def keep(name):
        return lambda module, args, output: recorded.__setitem__(name, output)

    hooks = [
        model.embeddings.patch_embedding.register_forward_hook(keep("patch_embedding")),
        model.embeddings.layer_norm.register_forward_hook(keep("patch_layer_norm")),
        model.embeddings.projection.register_forward_hook(keep("post_extract_proj")),
        model.encoder.pos_conv_embed.register_forward_hook(keep("pos_conv")),
    ]
    try:
        with torch.no_grad():
            outputs = model(fbank, output_hidden_states=True)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs, recorded


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_iter3_matches_every_official_output(attn_implementation):
    outputs, recorded = run_recording_intermediates(fixture_model("iter3", attn_implementation), FBANK)
    torch.testing.assert_close(recorded["patch_embedding"], GOLDEN["iter3.patch_embedding"], **TOL)
    torch.testing.assert_close(recorded["patch_layer_norm"], GOLDEN["iter3.patch_layer_norm"], **TOL)
    torch.testing.assert_close(recorded["post_extract_proj"], GOLDEN["iter3.post_extract_proj"], **TOL)
    torch.testing.assert_close(recorded["pos_conv"].transpose(1, 2), GOLDEN["iter3.pos_conv"], **TOL)
    # post-LN: the encoder LayerNorm output is the input of layer 0; the official layout is (T, B, C)
    torch.testing.assert_close(outputs.hidden_states[0], GOLDEN["iter3.encoder_layer_norm"], **TOL)
    torch.testing.assert_close(outputs.hidden_states[1], GOLDEN["iter3.layer_0"].transpose(0, 1), **TOL)
    torch.testing.assert_close(outputs.last_hidden_state, GOLDEN["iter3.output"], **TOL)
    torch.testing.assert_close(outputs.pooler_output, GOLDEN["iter3.output"].mean(dim=1), **TOL)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_plain_pre_ln_matches_official_outputs(attn_implementation):
    outputs, recorded = run_recording_intermediates(fixture_model("plain", attn_implementation), FBANK)
    torch.testing.assert_close(recorded["pos_conv"].transpose(1, 2), GOLDEN["plain.pos_conv"], **TOL)
    torch.testing.assert_close(outputs.last_hidden_state, GOLDEN["plain.output"], **TOL)


def test_plain_weight_pos_conv_checkpoint_converts_to_the_same_model():
    """Checkpoints saved without weight norm store `pos_conv.0.weight`; it must give the same outputs."""
    state_dict = official_state_dict("iter3")
    magnitude = state_dict.pop("encoder.pos_conv.0.weight_g")
    direction = state_dict.pop("encoder.pos_conv.0.weight_v")
    # weight norm over dim 2: one norm per kernel tap, taken over output and input channels
    state_dict["encoder.pos_conv.0.weight"] = magnitude * direction / direction.norm(dim=(0, 1), keepdim=True)
    config = audio_config_from_beats_cfg(FIXTURE_CONFIG["beats_cfg"]["iter3"])
    model = InternVideo2AudioModel(config).eval()
    model.load_state_dict(convert_beats_state_dict(state_dict, config), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(FBANK).last_hidden_state, GOLDEN["iter3.output"], **TOL)


def test_parametrization_style_pos_conv_keys_are_accepted():
    state_dict = official_state_dict("plain")
    state_dict["encoder.pos_conv.0.parametrizations.weight.original0"] = state_dict.pop("encoder.pos_conv.0.weight_g")
    state_dict["encoder.pos_conv.0.parametrizations.weight.original1"] = state_dict.pop("encoder.pos_conv.0.weight_v")
    config = audio_config_from_beats_cfg(FIXTURE_CONFIG["beats_cfg"]["plain"])
    model = InternVideo2AudioModel(config).eval()
    model.load_state_dict(convert_beats_state_dict(state_dict, config), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(FBANK).last_hidden_state, GOLDEN["plain.output"], **TOL)


def test_relative_position_table_is_stored_once():
    official = official_state_dict("iter3")
    model = fixture_model("iter3")
    ours = model.state_dict()
    tables = [key for key in ours if "relative_position_bias" in key]
    assert tables == ["encoder.relative_position_bias.embedding.weight"]
    # the official state dict repeats layer 0's table under each of the other layers' keys
    num_layers = model.config.num_hidden_layers
    assert len(ours) == len(official) - (num_layers - 1)
    duplicated = official["encoder.layers.0.self_attn.relative_attention_bias.weight"].numel() * (num_layers - 1)
    assert sum(p.numel() for p in model.parameters()) == sum(t.numel() for t in official.values()) - duplicated
    torch.testing.assert_close(ours[tables[0]], official["encoder.layers.1.self_attn.relative_attention_bias.weight"])


def test_conversion_lists_every_mismatch():
    config = audio_config_from_beats_cfg(FIXTURE_CONFIG["beats_cfg"]["iter3"])
    state_dict = official_state_dict("iter3")
    state_dict["encoder.extra.weight"] = torch.zeros(1)
    del state_dict["encoder.layers.1.fc2.bias"]
    state_dict["post_extract_proj.weight"] = torch.zeros(32, 25)
    with pytest.raises(
        CheckpointConversionError,
        match=r"unknown keys \['encoder\.extra\.weight'\]; missing keys \['encoder\.layers\.1\.mlp\.fc2\.bias'\]; "
        r"shape mismatches \['embeddings\.projection\.weight: \(32, 25\) vs expected \(32, 24\)'\]",
    ):
        convert_beats_state_dict(state_dict, config)


def test_conversion_rejects_inconsistent_shared_table_and_double_pos_conv():
    config = audio_config_from_beats_cfg(FIXTURE_CONFIG["beats_cfg"]["iter3"])
    state_dict = official_state_dict("iter3")
    state_dict["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(320, 4)
    with pytest.raises(CheckpointConversionError, match=r"relative_attention_bias of layers \[1\] differs"):
        convert_beats_state_dict(state_dict, config)
    state_dict = official_state_dict("iter3")
    del state_dict["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    with pytest.raises(CheckpointConversionError, match="but not the owning layer 0"):
        convert_beats_state_dict(state_dict, config)
    state_dict = official_state_dict("iter3")
    state_dict["encoder.pos_conv.0.weight"] = torch.zeros(32, 2, 128)
    with pytest.raises(CheckpointConversionError, match="has both encoder.pos_conv.0.weight and its weight-norm"):
        convert_beats_state_dict(state_dict, config)


def test_released_6b_audio_encoder_preset_and_keys():
    keys = json.loads((FIXTURES / "full_size_keys" / "keys.json").read_text())
    preset = InternVideo2AudioConfig()
    assert audio_config_from_beats_cfg(keys["beats_cfg_used"]).to_dict() == preset.to_dict()
    official_shapes = keys["models"]["multi_modality.InternVideo2_Stage2_audiovisual_6B"]["keys"]
    meta = {key: torch.empty(shape, device="meta") for key, shape in official_shapes.items()}
    converted = convert_beats_state_dict(meta, preset, prefix=OFFICIAL_AUDIO_PREFIX)
    assert len(converted) == sum(key.startswith(OFFICIAL_AUDIO_PREFIX) for key in official_shapes) - 11
    with torch.device("meta"):
        model = InternVideo2AudioModel(preset)
    expected = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
    assert {key: tuple(tensor.shape) for key, tensor in converted.items()} == expected


def test_beats_cfg_defaults_and_rejections():
    # keys absent from a BEATs cfg take the official BEATsConfig defaults, not ours
    config = audio_config_from_beats_cfg({"input_patch_size": 16})
    assert (config.hidden_dropout, config.attention_dropout, config.max_bucket_distance) == (0.1, 0.1, 1280)
    assert (config.deep_norm, config.use_relative_position_bias, config.layerdrop) == (False, False, 0.0)
    tanh_gelu = audio_config_from_beats_cfg({"input_patch_size": 16, "activation_fn": "gelu_accurate"})
    assert tanh_gelu.hidden_act == "gelu_new"
    with pytest.raises(ValueError, match=r"beats_cfg has keys that BEATs does not define: \['bogus'\]"):
        audio_config_from_beats_cfg({"input_patch_size": 16, "bogus": 1})
    with pytest.raises(ValueError, match="fine-tuned BEATs classifier"):
        audio_config_from_beats_cfg({"input_patch_size": 16, "finetuned_model": True})
    with pytest.raises(ValueError, match=r"activation_fn'\]='glu' is not supported"):
        audio_config_from_beats_cfg({"input_patch_size": 16, "activation_fn": "glu"})
    with pytest.raises(ValueError, match="input_patch_size'\\] must be a positive patch size"):
        audio_config_from_beats_cfg({})
    with pytest.raises(TypeError, match="beats_cfg must be a mapping"):
        audio_config_from_beats_cfg([("input_patch_size", 16)])


def test_checkpoint_file_conversion(tmp_path):
    path = tmp_path / "beats.pth"
    torch.save({"cfg": FIXTURE_CONFIG["beats_cfg"]["iter3"], "model": official_state_dict("iter3")}, path)
    model = convert_beats_checkpoint(path)
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(FBANK).last_hidden_state, GOLDEN["iter3.output"], **TOL)
    with pytest.raises(CheckpointConversionError, match="not a BEATs checkpoint"):
        convert_beats_checkpoint({"model": {}})


def test_relative_position_buckets_match_a_direct_loop():
    num_buckets, max_distance = 320, 800
    half, max_exact = num_buckets // 2, num_buckets // 4

    def bucket(offset: int) -> int:
        base = half if offset > 0 else 0
        distance = abs(offset)
        if distance < max_exact:
            return base + distance
        scaled = math.log(distance / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
        return base + min(max_exact + int(scaled), half - 1)

    offsets = torch.arange(-1500, 1501)
    expected = torch.tensor([bucket(int(o)) for o in offsets])
    torch.testing.assert_close(relative_position_bucket(offsets, num_buckets, max_distance), expected)


PRE_LN = dict(layer_norm_first=True, deep_norm=False, use_relative_position_bias=False)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("variant", [{}, PRE_LN], ids=["post_ln_gated_bias", "pre_ln_no_bias"])
def test_padding_mask_matches_running_on_the_unpadded_input(attn_implementation, variant):
    """With a mask, real tokens must not see padding: same tokens and mean as the truncated input."""
    torch.manual_seed(0)
    model = InternVideo2AudioModel(tiny_config(use_gated_relative_position_bias=not variant, **variant)).eval()
    model.set_attn_implementation(attn_implementation)
    real_frames = 5 * 16
    features = torch.randn(2, 8 * 16 + 5, 32)
    attention_mask = torch.ones(2, features.shape[1], dtype=torch.long)
    attention_mask[1, real_frames:] = 0
    with torch.no_grad():
        padded = model(features, attention_mask=attention_mask)
        truncated = model(features[1:, :real_frames])
    real_tokens = 5 * 2  # 5 time patches x 2 frequency patches
    torch.testing.assert_close(padded.last_hidden_state[1, :real_tokens], truncated.last_hidden_state[0], **TOL)
    torch.testing.assert_close(padded.pooler_output[1], truncated.pooler_output[0], **TOL)
    with torch.no_grad():
        torch.testing.assert_close(padded.last_hidden_state[0], model(features[:1]).last_hidden_state[0], **TOL)


def test_token_mask_follows_time_patches():
    model = InternVideo2AudioModel(tiny_config())
    frame_mask = torch.zeros(3, 70, dtype=torch.long)
    frame_mask[0, :70] = 1
    frame_mask[1, :17] = 1  # one frame into the second time patch
    token_mask = model.get_token_attention_mask(frame_mask)
    expected = torch.zeros(3, 8, dtype=torch.long)  # 70 // 16 = 4 time patches x 2 frequency patches
    for b in range(3):
        for token in range(8):
            time_patch = token // 2
            expected[b, token] = int(frame_mask[b, time_patch * 16 : (time_patch + 1) * 16].any())
    torch.testing.assert_close(token_mask, expected)


def test_eager_attention_probabilities_ignore_padded_keys():
    model = InternVideo2AudioModel(tiny_config()).eval()
    model.set_attn_implementation("eager")
    attention_mask = torch.ones(1, 96, dtype=torch.long)
    attention_mask[0, 64:] = 0
    with torch.no_grad():
        attentions = model(torch.randn(1, 96, 32), attention_mask=attention_mask, output_attentions=True).attentions
    assert len(attentions) == 3
    for probabilities in attentions:
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(1, 2, 12, dtype=probabilities.dtype))
        assert probabilities[..., 8:].max() == 0  # tokens of the 2 padded time patches


def test_weight_norm_is_a_trained_parametrization():
    torch.manual_seed(0)
    model = InternVideo2AudioModel(tiny_config(layer_wise_gradient_decay_ratio=1.0)).train()
    conv = model.encoder.pos_conv_embed.conv
    assert parametrize.is_parametrized(conv, "weight")
    magnitude, direction = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    torch.testing.assert_close(conv.weight, magnitude * direction / direction.norm(dim=(0, 1), keepdim=True))
    # fresh initialisation: weight norm's magnitude starts at the norm of the direction
    torch.testing.assert_close(magnitude, direction.norm(dim=(0, 1), keepdim=True))

    features, target = torch.randn(4, 64, 32), torch.randn(4, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = (magnitude.detach().clone(), direction.detach().clone())
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.mse_loss(model(features).pooler_output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.equal(magnitude, before[0]) and not torch.equal(direction, before[1])


def test_initialisation_follows_beats_and_deepnet():
    torch.manual_seed(0)
    config = tiny_config(hidden_size=64, intermediate_size=256, num_attention_heads=4, num_hidden_layers=2)
    model = InternVideo2AudioModel(config)
    beta = (8 * 2) ** -0.25  # DeepNet: beta = (8 N) ** -1/4 for N encoder layers

    def xavier_std(linear, gain):
        return gain * math.sqrt(2.0 / (linear.in_features + linear.out_features))

    for layer in model.encoder.layers:
        attention, mlp = layer.self_attn, layer.mlp
        for linear, gain in [(attention.q_proj, 1.0), (attention.k_proj, 1.0), (attention.v_proj, beta)]:
            assert linear.weight.std().item() == pytest.approx(xavier_std(linear, gain), rel=0.1)
        for linear in (attention.out_proj, mlp.fc1, mlp.fc2):
            assert linear.weight.std().item() == pytest.approx(xavier_std(linear, beta), rel=0.1)
        assert not attention.q_proj.bias.any()
        torch.testing.assert_close(attention.relative_position_gate.scale, torch.ones(1, 4, 1, 1))
    direction = model.encoder.pos_conv_embed.conv.parametrizations.weight.original1
    assert direction.std().item() == pytest.approx(math.sqrt(4.0 / (8 * 64)), rel=0.1)
    assert model.encoder.relative_position_bias.embedding.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert not model.encoder.pos_conv_embed.conv.bias.any()


def test_layer_wise_gradient_decay_scales_gradients_per_depth():
    torch.manual_seed(0)
    ratio = 0.5
    decayed = InternVideo2AudioModel(tiny_config(layer_wise_gradient_decay_ratio=ratio)).train()
    plain = copy.deepcopy(decayed)
    plain.config.layer_wise_gradient_decay_ratio = 1.0
    features = torch.randn(2, 64, 32)
    out_decayed, out_plain = decayed(features).last_hidden_state, plain(features).last_hidden_state
    torch.testing.assert_close(out_decayed, out_plain, rtol=0, atol=0)  # the forward pass is unchanged
    out_decayed.square().sum().backward()
    out_plain.square().sum().backward()
    num_layers = decayed.config.num_hidden_layers
    for layer in range(num_layers):
        # the gradient crosses the scaling at the inputs of all later layers
        factor = ratio ** (num_layers - 1 - layer)
        for (name, p_decayed), p_plain in zip(
            decayed.encoder.layers[layer].named_parameters(), plain.encoder.layers[layer].parameters()
        ):
            torch.testing.assert_close(p_decayed.grad, p_plain.grad * factor, rtol=1e-4, atol=1e-7, msg=name)
    patch = decayed.embeddings.patch_embedding.weight
    torch.testing.assert_close(
        patch.grad, plain.embeddings.patch_embedding.weight.grad * ratio**num_layers, rtol=1e-4, atol=1e-7
    )


def test_layerdrop_skips_layers_only_in_training():
    model = InternVideo2AudioModel(tiny_config(layerdrop=1.0))
    features = torch.randn(2, 64, 32)
    with torch.no_grad():
        evaluated = model.eval()(features, output_hidden_states=True)
        trained = model.train()(features, output_hidden_states=True)
    assert len(evaluated.hidden_states) == 4
    # every layer dropped: the output is the post-LN input of the first layer
    torch.testing.assert_close(trained.last_hidden_state, evaluated.hidden_states[0], rtol=0, atol=0)
    assert not torch.allclose(evaluated.last_hidden_state, evaluated.hidden_states[0])


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = InternVideo2AudioModel(tiny_config()).train()
    checkpointed = copy.deepcopy(model)
    checkpointed.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in checkpointed.encoder.layers)
    features = torch.randn(2, 64, 32)
    model(features).pooler_output.sum().backward()
    checkpointed(features).pooler_output.sum().backward()
    for (name, p), p_checkpointed in zip(model.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(p_checkpointed.grad, p.grad, msg=name)


def test_save_and_load_round_trip(tmp_path):
    model = fixture_model("iter3", "sdpa")
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert "encoder.pos_conv_embed.conv.parametrizations.weight.original0" in saved
    loaded = InternVideo2AudioModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert loaded.config.to_diff_dict() == model.config.to_diff_dict()
    assert parametrize.is_parametrized(loaded.encoder.pos_conv_embed.conv, "weight")
    with torch.no_grad():
        torch.testing.assert_close(loaded(FBANK).last_hidden_state, GOLDEN["iter3.output"], **TOL)


def test_config_rejects_impossible_architectures():
    with pytest.raises(StrictDataclassClassValidationError, match="deep_norm applies to post-LN layers only"):
        InternVideo2AudioConfig(layer_norm_first=True, deep_norm=True)
    with pytest.raises(StrictDataclassClassValidationError, match="requires use_relative_position_bias=True"):
        InternVideo2AudioConfig(use_relative_position_bias=False, use_gated_relative_position_bias=True)
    with pytest.raises(StrictDataclassClassValidationError, match=r"hidden_size \(100\) must be a multiple"):
        InternVideo2AudioConfig(hidden_size=100)
    with pytest.raises(StrictDataclassClassValidationError, match=r"num_mel_bins \(8\) must be at least patch_size"):
        InternVideo2AudioConfig(num_mel_bins=8)
    with pytest.raises(StrictDataclassClassValidationError, match="layerdrop must be in"):
        InternVideo2AudioConfig(layerdrop=1.5)


def test_bad_model_inputs_raise_one_line_errors():
    model = InternVideo2AudioModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"input_features must have shape \(batch_size, num_frames, num_mel_bins\)"):
        model(torch.randn(64, 32))
    with pytest.raises(ValueError, match="input_features has 64 Mel bins, the config expects 32"):
        model(torch.randn(1, 64, 64))
    with pytest.raises(ValueError, match=r"input_features has 10 frames, fewer than one patch \(16\)"):
        model(torch.randn(1, 10, 32))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(1, 64\)"):
        model(torch.randn(1, 64, 32), attention_mask=torch.ones(1, 63))
