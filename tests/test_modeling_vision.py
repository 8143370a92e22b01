import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification

from internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig, InternVideo2VisionModel
from internvideo2.convert.vision import convert_vision_checkpoint
from internvideo2.position_embeddings import sincos_3d

from .conftest import FIXTURES

ATOL = dict(rtol=1e-5, atol=1e-5)


def tiny_config(**overrides) -> InternVideo2VisionConfig:
    fields = dict(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=279,
        image_size=56,
        num_frames=4,
        attention_pool_num_heads=4,
        attention_pool_output_size=32,
        layer_scale_init_value=0.5,
    )
    return InternVideo2VisionConfig(**{**fields, **overrides})


def videos(batch=2, frames=4, size=56, seed=0):
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def official_layout(video: torch.Tensor) -> torch.Tensor:
    """Fixtures store (B, C, T, H, W); the model takes (B, T, C, H, W)."""
    return video.permute(0, 2, 1, 3, 4)


def load_fixture(folder, state="state_dict"):
    root = FIXTURES / folder
    return (
        load_file(root / f"{state}.safetensors"),
        load_file(root / "inputs.safetensors"),
        load_file(root / "outputs.safetensors"),
    )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_classifier_matches_official(attn):
    state, inputs, outputs = load_fixture("vision_single_modality")
    model, _ = convert_vision_checkpoint(state, source_image_size=56, num_attention_heads=4, attention_pool_num_heads=4)
    model.set_attn_implementation(attn)
    assert isinstance(model, InternVideo2ForVideoClassification)
    result = model(official_layout(inputs["video"]), output_hidden_states=True)
    torch.testing.assert_close(result.hidden_states[0], outputs["embeddings"], **ATOL)
    for i in range(3):
        torch.testing.assert_close(result.hidden_states[i + 1], outputs[f"block_{i}"], **ATOL)
    pooled = model.internvideo2(official_layout(inputs["video"])).pooler_output
    torch.testing.assert_close(pooled, outputs["attn_pool"], **ATOL)
    torch.testing.assert_close(model.fc_norm(pooled), outputs["fc_norm"], **ATOL)
    torch.testing.assert_close(result.logits, outputs["logits"], **ATOL)


@pytest.fixture(scope="module")
def stage2_models():
    state, inputs, outputs = load_fixture("vision_stage2", "state_dict_sep")
    heads = dict(num_attention_heads=4, attention_pool_num_heads=4)
    sep, _ = convert_vision_checkpoint(state, **heads)
    no_image_tables = {k: v for k, v in state.items() if "img_pos_embed" not in k}
    nosep, _ = convert_vision_checkpoint(no_image_tables, source_image_size=56, **heads)
    return sep, nosep, inputs, outputs


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_stage2_encoder_matches_official(stage2_models, attn):
    sep, nosep, inputs, outputs = stage2_models
    for model in (sep, nosep):
        model.set_attn_implementation(attn)
    video, image = official_layout(inputs["video"]), inputs["image"][:, :, 0]
    cases = {
        "sep.video": sep(video, output_hidden_states=True),
        "sep.image": sep(pixel_values=image, output_hidden_states=True),
        "sep.video_masked": sep(video, bool_masked_pos=inputs["video_mask"], output_hidden_states=True),
        "sep.image_masked": sep(pixel_values=image, bool_masked_pos=inputs["image_mask"]),
        "nosep.image": nosep(pixel_values=image, output_hidden_states=True),
        "nosep.image_masked": nosep(pixel_values=image, bool_masked_pos=inputs["image_mask"]),
    }
    for name, result in cases.items():
        torch.testing.assert_close(result.last_hidden_state, outputs[f"{name}.x_vis"], **ATOL, msg=name)
        torch.testing.assert_close(result.pooler_output, outputs[f"{name}.x_pool_vis"], **ATOL, msg=name)
        if f"{name}.embeddings" in outputs:
            torch.testing.assert_close(result.hidden_states[0], outputs[f"{name}.embeddings"], **ATOL, msg=name)
            for i in range(3):
                torch.testing.assert_close(result.hidden_states[i + 1], outputs[f"{name}.block_{i}"], **ATOL)
    penultimate = sep(video, last_layer=-2)
    torch.testing.assert_close(penultimate.last_hidden_state, outputs["sep.video_return_idx_m2_xvisonly.x_vis"], **ATOL)
    assert penultimate.pooler_output is None


def test_mask_without_cls_column_equals_official_mask(stage2_models):
    sep, _, inputs, _ = stage2_models
    video, mask = official_layout(inputs["video"]), inputs["video_mask"]
    with_cls = sep(video, bool_masked_pos=mask).last_hidden_state
    without_cls = sep(video, bool_masked_pos=mask[:, 1:]).last_hidden_state
    torch.testing.assert_close(with_cls, without_cls, rtol=0, atol=0)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_chat_tower_matches_official_including_on_the_fly_interpolation(attn):
    state, inputs, outputs = load_fixture("chat_vision")
    model, _ = convert_vision_checkpoint(state, num_attention_heads=4)
    model.set_attn_implementation(attn)
    assert model.config.use_post_layernorm and not model.config.use_attention_pool
    for name, video in inputs.items():
        result = model(official_layout(video), output_hidden_states=True)
        torch.testing.assert_close(result.hidden_states[-1], outputs[f"{name}.x_vis"], **ATOL, msg=name)
        torch.testing.assert_close(result.last_hidden_state, outputs[f"{name}.tokens_ln"], **ATOL, msg=name)


def test_presets_have_the_released_parameter_counts():
    # Block and attention-pool parameter counts of spec §1.2/§1.3.
    expected = {"S/14": (21.3e6, 0.74e6), "B/14": (85.1e6, 2.37e6), "L/14": (302.3e6, 3.94e6), "1B": (1010e6, 7.04e6),
                "6B": (5900e6, 33.2e6)}
    for name, (blocks, pool) in expected.items():
        with torch.device("meta"):
            model = InternVideo2VisionModel(InternVideo2VisionConfig.from_preset(name))
        block_params = sum(p.numel() for p in model.encoder.parameters())
        pool_params = sum(p.numel() for p in model.pooler.parameters())
        assert abs(block_params - blocks) / blocks < 0.01, name
        assert abs(pool_params - pool) / pool < 0.01, name
    assert InternVideo2VisionConfig.from_preset("base").hidden_size == 768
    with pytest.raises(ValueError, match="unknown preset 'XL'"):
        InternVideo2VisionConfig.from_preset("XL")


def test_init_follows_the_official_recipe():
    config = tiny_config(layer_scale_init_value=1e-5, drop_path_rate=0.3)
    model = InternVideo2VisionModel(config)
    torch.testing.assert_close(model.embeddings.position_embeddings[0], sincos_3d(64, 4, 4).float())
    assert torch.all(model.encoder.layers[1].lambda_2 == 1e-5)
    rates = [layer.drop_path.drop_prob for layer in model.encoder.layers[1:]]
    assert rates == pytest.approx([0.15, 0.3])
    # Residual output projections shrink with depth (1/sqrt(2i)).
    stds = [layer.mlp.fc2.weight.std().item() for layer in model.encoder.layers]
    assert stds[0] > stds[2]


def test_save_and_load_with_auto_classes(tmp_path):
    model = InternVideo2VisionModel(tiny_config()).eval()
    model.save_pretrained(tmp_path / "encoder")
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "encoder"), InternVideo2VisionConfig)
    loaded = AutoModel.from_pretrained(tmp_path / "encoder").eval()
    assert isinstance(loaded, InternVideo2VisionModel)
    x = videos()
    torch.testing.assert_close(loaded(x).pooler_output, model(x).pooler_output, rtol=0, atol=0)

    classifier = InternVideo2ForVideoClassification(tiny_config(num_labels=3)).eval()
    classifier.save_pretrained(tmp_path / "classifier")
    reloaded = AutoModelForVideoClassification.from_pretrained(tmp_path / "classifier").eval()
    torch.testing.assert_close(reloaded(x).logits, classifier(x).logits, rtol=0, atol=0)
    # A classifier can start from a saved encoder: the backbone loads, the head is new.
    from_encoder = InternVideo2ForVideoClassification.from_pretrained(tmp_path / "encoder", num_labels=3).eval()
    torch.testing.assert_close(from_encoder.internvideo2(x).pooler_output, model(x).pooler_output, rtol=0, atol=0)


def test_attention_implementations_agree():
    x = videos()
    reference = InternVideo2VisionModel(tiny_config(num_hidden_layers=2)).eval()
    expected = reference(x).last_hidden_state
    for attn in ("eager", "sdpa"):
        reference.set_attn_implementation(attn)
        torch.testing.assert_close(reference(x).last_hidden_state, expected, rtol=1e-5, atol=1e-5)


def test_eager_attention_maps_are_returned():
    model = InternVideo2VisionModel(tiny_config()).eval()
    model.set_attn_implementation("eager")
    attentions = model(videos(), output_attentions=True).attentions
    assert len(attentions) == 3
    assert attentions[0].shape == (2, 4, 65, 65)
    torch.testing.assert_close(attentions[0].sum(-1), torch.ones(2, 4, 65))


def test_last_layer_does_not_run_later_blocks():
    model = InternVideo2VisionModel(tiny_config()).eval()
    calls = []
    for i, layer in enumerate(model.encoder.layers):
        layer.register_forward_hook(lambda module, args, output, i=i: calls.append(i))
    x = videos()
    full = model(x, output_hidden_states=True)
    calls.clear()
    partial = model(x, last_layer=-2)
    assert calls == [0, 1]
    torch.testing.assert_close(partial.last_hidden_state, full.hidden_states[2], rtol=0, atol=0)
    assert model(x, last_layer=2).pooler_output is not None
    with pytest.raises(ValueError, match=r"last_layer must be an int in \[-3, 2\]"):
        model(x, last_layer=3)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = InternVideo2VisionModel(tiny_config()).train()
    x = videos()

    def gradients():
        model.zero_grad()
        model(x).pooler_output.square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.activation_checkpointing_enable()
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys() and len(plain) > 20
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)


def test_on_the_fly_interpolation_equals_converting_the_table():
    state, _, _ = load_fixture("vision_stage2", "state_dict_sep")
    heads = dict(num_attention_heads=4, attention_pool_num_heads=4)
    four_frames, _ = convert_vision_checkpoint(state, **heads)
    eight_frames, _ = convert_vision_checkpoint(state, num_frames=8, **heads)
    assert eight_frames.config.num_frames == 8
    x = videos(frames=8)
    torch.testing.assert_close(four_frames(x).last_hidden_state, eight_frames(x).last_hidden_state, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="pass interpolate_pos_encoding=True"):
        four_frames(x, interpolate_pos_encoding=False)


def test_classifier_loss_freezing_and_attentive_probe():
    x, labels = videos(), torch.tensor([0, 2])
    model = InternVideo2ForVideoClassification(tiny_config(num_labels=3)).eval()
    output = model(x, labels=labels)
    expected = torch.nn.functional.cross_entropy(output.logits, labels)
    torch.testing.assert_close(output.loss, expected)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        model(x, labels=torch.tensor([0, 3]))

    model.freeze_backbone()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc_norm.weight", "fc_norm.bias", "classifier.weight", "classifier.bias"}

    probe = InternVideo2ForVideoClassification(tiny_config(num_labels=3, use_attentive_probe=True)).eval()
    probe.freeze_backbone(train_pooler=True)
    trainable = {n.split(".")[0] + "." + n.split(".")[1] for n, p in probe.named_parameters() if p.requires_grad}
    assert "internvideo2.pooler" in trainable and "probe_mlp.fc1" in trainable
    assert not any(n.startswith("internvideo2.encoder") for n, p in probe.named_parameters() if p.requires_grad)
    # The probe MLP starts as the identity residual: logits equal the plain head's on the same features.
    pooled = probe.internvideo2(x).pooler_output
    torch.testing.assert_close(probe(x).logits, probe.classifier(probe.fc_norm(pooled)))


def test_bfloat16_forward_tracks_float32():
    model = InternVideo2VisionModel(tiny_config()).eval()
    x = videos()
    reference = model(x).pooler_output
    low = model.to(torch.bfloat16)(x.bfloat16()).pooler_output
    assert low.dtype == torch.bfloat16
    cosine = torch.nn.functional.cosine_similarity(low.float(), reference, dim=-1)
    assert torch.all(cosine > 0.99)


def unequal_mask() -> torch.Tensor:
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, 5] = True
    return mask


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m(torch.randn(2, 4, 56, 56, 3, 1)), ValueError, "must have shape"),
        (lambda m: m(torch.randn(2, 4, 1, 56, 56)), ValueError, "must have 3 channels"),
        (lambda m: m(torch.zeros(2, 4, 3, 56, 56, dtype=torch.uint8)), TypeError, "floating-point"),
        (lambda m: m(torch.randn(2, 4, 3, 50, 50)), ValueError, "multiple of patch_size=14"),
        (lambda m: m(torch.randn(2, 4, 3, 56, 56), pixel_values=torch.randn(2, 3, 56, 56)), ValueError, "exactly one"),
        (lambda m: m(videos(), bool_masked_pos=torch.zeros(2, 64)), TypeError, "bool tensor"),
        (lambda m: m(videos(), bool_masked_pos=torch.zeros(2, 10, dtype=torch.bool)), ValueError, r"shape \(2, 64\)"),
        (lambda m: m(videos(), bool_masked_pos=unequal_mask()), ValueError, "same number"),
        (lambda m: m(videos(), bool_masked_pos=torch.ones(2, 65, dtype=torch.bool)), ValueError, "cls token"),
        (lambda m: m("video.mp4"), TypeError, "must be a torch.Tensor"),
    ],
)
def test_bad_input_errors(call, error, message):
    model = InternVideo2VisionModel(tiny_config()).eval()
    with pytest.raises(error, match=message):
        call(model)


def test_bad_config_errors():
    with pytest.raises(StrictDataclassClassValidationError, match="multiple of num_attention_heads"):
        tiny_config(num_attention_heads=5)
    with pytest.raises(StrictDataclassClassValidationError, match="multiple of patch_size"):
        tiny_config(image_size=50)
    with pytest.raises(StrictDataclassClassValidationError, match="hidden_act"):
        tiny_config(hidden_act="swish2")


def test_flash_attention_is_optional_and_never_imported_eagerly():
    import sys

    assert "flash_attn" not in sys.modules  # importing the package did not import flash-attn
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="FlashAttention2"):
            InternVideo2VisionModel(tiny_config()).set_attn_implementation("flash_attention_2")
    else:
        pytest.skip("flash-attn is installed")


@pytest.mark.slow
def test_flex_attention_matches_eager_forward():
    model = InternVideo2VisionModel(tiny_config()).eval()
    x = videos()
    expected = model(x).last_hidden_state
    model.set_attn_implementation("flex_attention")
    with torch.no_grad():  # flex attention has no CPU backward
        torch.testing.assert_close(model(x).last_hidden_state, expected, rtol=1e-4, atol=1e-4)


def test_from_pretrained_interpolates_position_tables_for_other_frames_or_sizes(tmp_path):
    from internvideo2.position_embeddings import interpolate_position_embeddings

    model = InternVideo2VisionModel(tiny_config(use_separate_image_position_embeddings=True)).eval()
    model.save_pretrained(tmp_path)
    table = model.embeddings.position_embeddings.detach()
    more_frames = InternVideo2VisionModel.from_pretrained(tmp_path, num_frames=8).eval()
    torch.testing.assert_close(
        more_frames.embeddings.position_embeddings, interpolate_position_embeddings(table, 4, 8, 4), rtol=0, atol=0
    )
    x = videos(frames=8)
    torch.testing.assert_close(more_frames(x).last_hidden_state, model(x).last_hidden_state, rtol=0, atol=1e-6)
    larger = InternVideo2VisionModel.from_pretrained(tmp_path, image_size=70).eval()
    torch.testing.assert_close(
        larger.embeddings.position_embeddings, interpolate_position_embeddings(table, 4, 4, 5), rtol=0, atol=0
    )
    image_table = model.embeddings.image_position_embeddings.detach()
    torch.testing.assert_close(
        larger.embeddings.image_position_embeddings, interpolate_position_embeddings(image_table, 1, 1, 5), rtol=0, atol=0
    )
    # Both changed at once is ambiguous: the loader refuses (its report names the table and the reason).
    with pytest.raises(RuntimeError, match="automatic conversion of the weights"):
        InternVideo2VisionModel.from_pretrained(tmp_path, num_frames=8, image_size=70)
