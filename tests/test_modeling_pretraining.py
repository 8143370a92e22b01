import json

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file

from internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig, InternVideo2VisionModel
from internvideo2.convert.checkpoint_io import CheckpointConversionError, check_against_model
from internvideo2.convert.vision import OTHER_TOWER
from internvideo2.modeling_pretraining import (
    InternVideo2ForPreTraining,
    InternVideo2PreTrainingConfig,
    convert_pretraining_checkpoint,
    convert_pretraining_state_dict,
    student_return_layers,
)

from .conftest import FIXTURES

ATOL = dict(rtol=1e-5, atol=1e-5)
KEYS = json.loads((FIXTURES / "full_size_keys" / "keys.json").read_text())["models"]
HEADS = dict(num_attention_heads=4, attention_pool_num_heads=4)


def official_layout(video: torch.Tensor) -> torch.Tensor:
    return video.permute(0, 2, 1, 3, 4)  # fixtures store (B, C, T, H, W)


@pytest.fixture(scope="module")
def stage2_fixture():
    root = FIXTURES / "vision_stage2"
    return (
        load_file(root / "state_dict_sep.safetensors"),
        load_file(root / "inputs.safetensors"),
        load_file(root / "outputs.safetensors"),
    )


CASES = {
    "video": ("video", None),
    "image": ("image", None),
    "video_masked": ("video", "video_mask"),
    "image_masked": ("image", "image_mask"),
}


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_stage2_decoders_match_official(stage2_fixture, attn):
    """x_clip_align / x_align of the official Stage-2 encoder (linear decoders, separate image tables), masked and
    unmasked, videos and images."""
    state, inputs, outputs = stage2_fixture
    model, report = convert_pretraining_checkpoint(state, source_image_size=56, **HEADS)
    model.set_attn_implementation(attn)
    assert model.config.clip_decoder_type == "linear" and model.config.mae_num_return_layers == 0
    assert model.config.clip_return_layers == (1, 2)
    for case, (pixels, mask) in CASES.items():
        result = model(
            pixel_values_videos=official_layout(inputs[pixels]),
            bool_masked_pos=inputs[mask] if mask else None,
        )
        torch.testing.assert_close(result.clip_hidden_states, outputs[f"sep.{case}.x_clip_align"], **ATOL)
        torch.testing.assert_close(result.clip_embeds, outputs[f"sep.{case}.x_align"], **ATOL)
        torch.testing.assert_close(result.last_hidden_state, outputs[f"sep.{case}.x_vis"], **ATOL)
        torch.testing.assert_close(result.pooler_output, outputs[f"sep.{case}.x_pool_vis"], **ATOL)


def test_images_without_image_tables_use_the_time_mean_of_the_video_table(stage2_fixture):
    state, inputs, outputs = stage2_fixture
    nosep = {k: v for k, v in state.items() if k not in ("img_pos_embed", "clip_img_pos_embed")}
    model, _ = convert_pretraining_checkpoint(nosep, source_image_size=56, **HEADS)
    assert model.clip_image_position_embeddings is None
    for case in ("image", "image_masked"):
        pixels, mask = CASES[case]
        result = model(pixel_values_videos=official_layout(inputs[pixels]), bool_masked_pos=inputs[mask] if mask else None)
        torch.testing.assert_close(result.clip_hidden_states, outputs[f"nosep.{case}.x_clip_align"], **ATOL)
        torch.testing.assert_close(result.clip_embeds, outputs[f"nosep.{case}.x_align"], **ATOL)


def official_stage1_state_dict(generator, *, dim=32, depth=3, frames=4, grid=4, mlp=64, pool_out=16, clip=(2, 24),
                               final=12, decoder="mlp", mae=(2, 20)):
    """Random tensors under the official key names of a tiny Stage-1 / distillation student (spec §7.2)."""
    def rand(*shape):
        return torch.randn(*shape, generator=generator) / (shape[-1] ** 0.5 if len(shape) > 1 else 3)

    tokens = frames * grid * grid
    state = {
        "patch_embed.proj.weight": rand(dim, 3, 1, 14, 14), "patch_embed.proj.bias": rand(dim),
        "cls_token": rand(1, 1, dim), "pos_embed": rand(1, 1 + tokens, dim), "clip_pos_embed": rand(1, 1 + tokens, dim),
    }
    for i in range(depth):
        state |= {
            f"blocks.{i}.norm1.weight": 1 + rand(dim), f"blocks.{i}.norm2.weight": 1 + rand(dim),
            f"blocks.{i}.attn.qkv.weight": rand(3 * dim, dim), f"blocks.{i}.attn.q_norm.weight": 1 + rand(dim),
            f"blocks.{i}.attn.k_norm.weight": 1 + rand(dim), f"blocks.{i}.attn.proj.weight": rand(dim, dim),
            f"blocks.{i}.attn.proj.bias": rand(dim), f"blocks.{i}.ls1.gamma": 0.5 + rand(dim),
            f"blocks.{i}.ls2.gamma": 0.5 + rand(dim), f"blocks.{i}.mlp.fc1.weight": rand(mlp, dim),
            f"blocks.{i}.mlp.fc1.bias": rand(mlp), f"blocks.{i}.mlp.fc2.weight": rand(dim, mlp),
            f"blocks.{i}.mlp.fc2.bias": rand(dim),
        }
    for name in "qkv":
        state |= {
            f"clip_projector.norm1_{name}.weight": 1 + rand(dim), f"clip_projector.norm1_{name}.bias": rand(dim),
            f"clip_projector.cross_attn.{name}.weight": rand(dim, dim), f"clip_projector.cross_attn.{name}_bias": rand(dim),
        }
    state |= {"clip_projector.cross_attn.proj.weight": rand(pool_out, dim), "clip_projector.cross_attn.proj.bias": rand(pool_out)}

    def decoder_tensors(prefix, kind, width_in, width_out):
        if kind == "mlp":
            head = {"head.0.weight": rand(width_in, width_in), "head.0.bias": rand(width_in),
                    "head.2.weight": rand(width_out, width_in), "head.2.bias": rand(width_out)}
        else:
            head = {"head.weight": rand(width_out, width_in), "head.bias": rand(width_out)}
        head |= {"norm.weight": 1 + rand(width_out), "norm.bias": rand(width_out)}
        return {f"{prefix}.{k}": v for k, v in head.items()}

    for k in range(clip[0]):
        state |= decoder_tensors(f"clip_decoder.{k}", decoder, dim, clip[1])
    state |= decoder_tensors("final_clip_decoder", decoder, pool_out, final)
    if mae:
        state["mae_pos_embed"] = rand(1, tokens, dim)
        for k in range(mae[0]):
            state |= decoder_tensors(f"mae_decoder.{k}", "mlp", dim, mae[1])
    return state


def reference_decoder(state, prefix, x):
    """The official decoders written out: [Linear → GELU → Linear | Linear] → LayerNorm(1e-5) → divide by the norm."""
    if f"{prefix}.head.0.weight" in state:
        x = F.linear(F.gelu(F.linear(x, state[f"{prefix}.head.0.weight"], state[f"{prefix}.head.0.bias"])),
                     state[f"{prefix}.head.2.weight"], state[f"{prefix}.head.2.bias"])
    else:
        x = F.linear(x, state[f"{prefix}.head.weight"], state[f"{prefix}.head.bias"])
    x = F.layer_norm(x, x.shape[-1:], state[f"{prefix}.norm.weight"], state[f"{prefix}.norm.bias"], eps=1e-5)
    return x / x.norm(dim=-1, keepdim=True)


def test_mlp_and_motion_decoders_match_a_written_out_reference():
    """Stage-1 (motion decoders) with MLP clip decoders (distilled S/B/L) on a masked video: every visible token
    goes through the decoder of its layer with its own row of the decoder position table."""
    generator = torch.Generator().manual_seed(0)
    state = official_stage1_state_dict(generator)
    model, _ = convert_pretraining_checkpoint(state, source_image_size=56, **HEADS)
    assert (model.config.clip_decoder_type, model.config.mae_num_return_layers) == ("mlp", 2)
    video = torch.randn(2, 4, 3, 56, 56, generator=generator)
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, ::2] = True
    mask[1, torch.randperm(64, generator=generator)[:32]] = True
    result = model(pixel_values_videos=video, bool_masked_pos=mask, output_hidden_states=True)
    layers = result.hidden_states  # already checked against the official encoder in test_modeling_vision
    for b in range(2):
        visible = [0] + [1 + j for j in range(64) if not mask[b, j]]
        for k, layer in enumerate((1, 2)):  # the last two of three blocks, ascending
            features = layers[layer + 1][b] + state["clip_pos_embed"][0, visible]
            expected = reference_decoder(state, f"clip_decoder.{k}", features)
            torch.testing.assert_close(result.clip_hidden_states[k, b], expected, **ATOL)
            patches = layers[layer + 1][b, 1:] + state["mae_pos_embed"][0, [v - 1 for v in visible[1:]]]
            expected = reference_decoder(state, f"mae_decoder.{k}", patches)
            torch.testing.assert_close(result.mae_hidden_states[k, b], expected, **ATOL)
    torch.testing.assert_close(
        result.clip_embeds, reference_decoder(state, "final_clip_decoder", result.pooler_output), **ATOL
    )


def test_decoder_position_tables_are_interpolated_like_the_official_code():
    """Stage-1 (8 frames) → 4 frames: `clip_pos_embed` follows the official `interpolate_pos_embed_internvideo2_new`."""
    inputs = load_file(FIXTURES / "pos_embed" / "inputs.safetensors")
    outputs = load_file(FIXTURES / "pos_embed" / "outputs.safetensors")
    state = official_stage1_state_dict(torch.Generator().manual_seed(1), frames=8, mae=None)
    state["pos_embed"], state["clip_pos_embed"] = inputs["src_t8.pos_embed"], inputs["src_t8.clip_pos_embed"]
    converted, config, _ = convert_pretraining_state_dict(state, source_image_size=56, num_frames=4, **HEADS)
    assert config.vision_config.num_frames == 4
    torch.testing.assert_close(converted["clip_position_embeddings"], outputs["interp.new.t8to4_g4.clip_pos_embed"], **ATOL)
    torch.testing.assert_close(
        converted["internvideo2.embeddings.position_embeddings"], outputs["interp.new.t8to4_g4.pos_embed"], **ATOL
    )


def test_new_decoder_tables_start_from_the_official_sincos_tables():
    outputs = load_file(FIXTURES / "pos_embed" / "outputs.safetensors")
    vision = InternVideo2VisionConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      image_size=56, num_frames=4, attention_pool_num_heads=4,
                                      attention_pool_output_size=16, use_separate_image_position_embeddings=True)
    model = InternVideo2ForPreTraining(InternVideo2PreTrainingConfig(vision_config=vision, clip_num_return_layers=1,
                                                                     mae_num_return_layers=1))
    tables = {"clip_position_embeddings": "sincos3d_D64_g4_t4_cls", "clip_image_position_embeddings": "sincos3d_D64_g4_t1_cls",
              "mae_position_embeddings": "sincos3d_D64_g4_t4_nocls"}
    for name, golden in tables.items():
        torch.testing.assert_close(getattr(model, name)[0], outputs[f"sincos.{golden}"].float(), rtol=0, atol=1e-6)
    # official decoder init: xavier-uniform weights (bound sqrt(6 / (fan_in + fan_out))), zero biases
    weight = model.mae_decoders[0].fc2.weight
    bound = (6 / sum(weight.shape)) ** 0.5
    assert weight.abs().max() <= bound and weight.abs().max() > 0.8 * bound
    assert not model.mae_decoders[0].fc2.bias.any()


@pytest.mark.parametrize(
    "name", [name for name in KEYS if "PretrainInternVideo2" in name or "DistInternVideo2" in name or "multi_modality" in name]
)
def test_every_released_pretraining_checkpoint_converts_with_its_decoders(name):
    shapes = KEYS[name]["keys"]
    state = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    converted, config, report = convert_pretraining_state_dict(state, source=name)
    with torch.device("meta"):
        model = InternVideo2ForPreTraining(config)
    check_against_model(converted, model, name)  # every key, exact shapes, nothing missing or extra
    decoder_keys = [
        k for k in shapes
        if not k.startswith("text_encoder.") and any(part in k for part in ("decoder", "clip_pos", "mae_pos", "clip_img"))
    ]
    assert decoder_keys and set(decoder_keys) <= set(report.mapped)
    assert set(report.dropped) <= {OTHER_TOWER}  # only other towers of Stage-2 checkpoints are dropped
    if "PretrainInternVideo2_1B" in name:  # Stage 1 (spec §1.5): 6 linear decoders → 3200, 4 motion decoders → 1408
        assert config.clip_return_layers == tuple(range(34, 40)) and config.mae_return_layers == tuple(range(36, 40))
        assert (config.clip_decoder_type, config.clip_teacher_hidden_size, config.mae_teacher_hidden_size) == ("linear", 3200, 1408)
    elif "DistInternVideo2" in name:  # distilled S/B/L: MLP decoders → 1408 / 768, no motion teacher
        assert (config.clip_decoder_type, config.clip_teacher_hidden_size, config.clip_teacher_final_size) == ("mlp", 1408, 768)
        assert config.mae_num_return_layers == 0
        depth = config.vision_config.num_hidden_layers
        assert config.clip_return_layers == tuple(range(depth - 6, depth))


@pytest.mark.parametrize("preset, released", [
    ("1B", "single_modality.PretrainInternVideo2_1B.stage1"),
    ("S/14", "single_modality.DistInternVideo2_S14.dist_1B_stage2"),
    ("L/14", "single_modality.DistInternVideo2_L14.dist_1B_stage2"),
])
def test_presets_build_the_released_architectures(preset, released):
    state = {k: torch.empty(shape, device="meta") for k, shape in KEYS[released]["keys"].items()}
    converted, _, _ = convert_pretraining_state_dict(state, source=released)
    with torch.device("meta"):
        model = InternVideo2ForPreTraining(InternVideo2PreTrainingConfig.from_preset(preset, num_frames=8))
    check_against_model(converted, model, released)


def test_return_layers_follow_the_official_index():
    assert student_return_layers(40, 6, 1) == (34, 35, 36, 37, 38, 39)  # spec §1.5, 1B
    assert student_return_layers(48, 4, 1) == (44, 45, 46, 47)  # 6B MAE
    assert student_return_layers(12, 3, 2) == tuple(sorted(11 - 2 * i for i in range(3)))
    vision = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                      attention_pool_num_heads=4)
    with pytest.raises(StrictDataclassClassValidationError, match="clip_num_return_layers=4 .* selects student layers"):
        InternVideo2PreTrainingConfig(vision_config=vision, clip_num_return_layers=4)
    with pytest.raises(StrictDataclassClassValidationError, match="clip_decoder_type must be one of"):
        InternVideo2PreTrainingConfig(vision_config=vision, clip_num_return_layers=2, clip_decoder_type="conv")


def test_bad_checkpoints_are_refused_in_one_line():
    plain = {k: v for k, v in official_stage1_state_dict(torch.Generator().manual_seed(2), mae=None).items()
             if "decoder" not in k and "clip_pos" not in k}
    with pytest.raises(CheckpointConversionError, match="has no clip_decoder") as error:
        convert_pretraining_state_dict(plain, source="plain.pth", source_image_size=56, **HEADS)
    assert "\n" not in str(error.value)
    classifier = {**official_stage1_state_dict(torch.Generator().manual_seed(3), mae=None),
                  "head.weight": torch.zeros(5, 16), "head.bias": torch.zeros(5)}
    with pytest.raises(CheckpointConversionError, match="fine-tuned classifier"):
        convert_pretraining_state_dict(classifier, source="ft.pth", source_image_size=56, **HEADS)


def tiny_student(**overrides) -> InternVideo2ForPreTraining:
    vision = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      image_size=28, num_frames=4, attention_pool_num_heads=4,
                                      attention_pool_output_size=16, layer_scale_init_value=0.5)
    fields = dict(clip_teacher_hidden_size=24, clip_teacher_final_size=8, clip_num_return_layers=2,
                  mae_teacher_hidden_size=20, mae_num_return_layers=1, **overrides)
    return InternVideo2ForPreTraining(InternVideo2PreTrainingConfig(vision_config=vision, **fields)).eval()


def test_saved_student_reloads_and_its_encoder_loads_into_vision_and_classifier_models(tmp_path):
    torch.manual_seed(0)
    model = tiny_student()
    video = torch.randn(2, 4, 3, 28, 28)
    model.save_pretrained(tmp_path)
    reloaded = InternVideo2ForPreTraining.from_pretrained(tmp_path).eval()
    expected = model(pixel_values_videos=video)
    for name in ("clip_hidden_states", "clip_embeds", "mae_hidden_states"):
        torch.testing.assert_close(reloaded(pixel_values_videos=video)[name], expected[name])
    encoder = InternVideo2VisionModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(encoder(pixel_values_videos=video).pooler_output, expected.pooler_output)
    classifier = InternVideo2ForVideoClassification.from_pretrained(tmp_path, num_labels=3).eval()
    torch.testing.assert_close(classifier.internvideo2(pixel_values_videos=video).pooler_output, expected.pooler_output)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = tiny_student().train()
    video = torch.randn(2, 4, 3, 28, 28)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :8] = True
    calls = []
    model.internvideo2.encoder.layers[0].attention.register_forward_hook(lambda *_: calls.append(1))

    def gradients():
        model.zero_grad()
        calls.clear()
        out = model(pixel_values_videos=video, bool_masked_pos=mask)
        (out.clip_hidden_states.sum() + out.clip_embeds.sum() + out.mae_hidden_states.sum()).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, len(calls)

    plain, plain_calls = gradients()
    model.activation_checkpointing_enable()
    checkpointed, checkpointed_calls = gradients()
    assert (plain_calls, checkpointed_calls) == (1, 2)  # the block is recomputed in backward
    assert plain.keys() == checkpointed.keys() and any("mae_decoders" in n for n in plain)
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6)
