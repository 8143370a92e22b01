"""Stage-2 trainer on tiny towers and generated clips (in process): loss composition and logging, vision masking,
freezing, audio-visual and UTA terms, gradient accumulation / checkpointing / bf16 wiring, bad media, and a learning
run that must raise held-out text-to-video retrieval far above chance."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from _stage2_testing import (
    NO_DROPOUT,
    TINY_VISION,
    VOCAB_DIR,
    cli_arguments,
    data_arguments,
    make_color_clips,
    model_arguments,
)
from transformers import BertModel, TrainingArguments

from internvideo2 import InternVideo2AudioConfig, InternVideo2Model, InternVideo2VisionModel
from internvideo2.data import (
    COLORS,
    InternVideo2MediaTransform,
    InternVideo2VideoTextCollator,
    MediaSkippedWarning,
    stage2_video_processor,
)
from internvideo2.trainers.arguments import (
    InternVideo2DataArguments,
    InternVideo2ModelArguments,
    InternVideo2Stage2Arguments,
    parse_ratios,
)
from internvideo2.trainers.stage2 import (
    InternVideo2Stage2Trainer,
    build_model,
    build_tokenizer,
    build_video_text_datasets,
    keep_scalar_parameters_one_dimensional,
    main,
    parse_args,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_color_clips(tmp_path_factory.mktemp("clips"), num_train=12, num_test=6)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(model_arguments())


def make_trainer(tmp_path, clips, *, stage2=None, model=None, text=None, teacher=None, data=None, **options):
    """A Trainer over the tiny set-up; `options` are TrainingArguments fields."""
    data = data or data_arguments(clips)
    torch.manual_seed(0)
    model = model if model is not None else build_model(model_arguments(text={**NO_DROPOUT, **(text or {})}), data)
    tokenizer = build_tokenizer(model_arguments())
    train_dataset, eval_dataset = build_video_text_datasets(data)
    values = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=2, logging_steps=1, report_to=[],
        learning_rate=1e-3, save_strategy="no", use_cpu=True, disable_tqdm=True, seed=3,
    )
    return InternVideo2Stage2Trainer(
        model=model,
        args=TrainingArguments(**{**values, **options}),
        stage2_args=stage2 or InternVideo2Stage2Arguments(),
        teacher_model=teacher,
        processing_class=tokenizer,
        data_collator=InternVideo2VideoTextCollator(tokenizer, max_length=16),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
    )


def logged(trainer):
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def batch_of(trainer, indices):
    """A collated batch of train rows, as the Trainer would give compute_loss."""
    rows = trainer.train_dataset.__getitems__(indices)
    return trainer._prepare_inputs(trainer.data_collator(rows))


def test_losses_are_weighted_summed_and_logged(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(vtc_weight=1.0, vtm_weight=0.5, mlm_weight=0.25)
    trainer = make_trainer(tmp_path, clips, stage2=stage2)
    trainer.train()
    for entry in logged(trainer):
        assert set(entry) >= {"loss_vtc", "loss_vtm", "loss_mlm"}
        expected = entry["loss_vtc"] + 0.5 * entry["loss_vtm"] + 0.25 * entry["loss_mlm"]
        assert entry["loss"] == pytest.approx(expected, rel=1e-5)
        assert 0.3 < entry["loss_vtm"] < 1.5 and entry["loss_mlm"] > 1.0  # binary CE and a 30k-way CE

    without_mlm = make_trainer(tmp_path, clips, stage2=InternVideo2Stage2Arguments(mlm_weight=0.0), max_steps=1)
    without_mlm.train()
    assert "loss_mlm" not in logged(without_mlm)[0] and "loss_vtm" in logged(without_mlm)[0]


def test_vision_tokens_are_masked_per_media_type_and_sample(tmp_path, clips):
    trainer = make_trainer(tmp_path, clips)
    model = trainer.model.train()
    captured = []
    model.vision_model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.append(kwargs.get("bool_masked_pos")), with_kwargs=True
    )
    trainer.compute_loss(model, batch_of(trainer, [0, 1, 2]))
    mask = captured[-1]
    num_tokens = 4 * 4 * 4  # frames x patches per side^2
    assert mask.shape == (3, num_tokens) and mask.sum(dim=1).tolist() == [int(0.8 * num_tokens)] * 3

    # a sample's mask depends on (seed, step, sample), not on its batch: the same on any number of processes
    trainer.compute_loss(model, batch_of(trainer, [2, 5]))
    torch.testing.assert_close(captured[-1][0], mask[2])
    assert not torch.equal(captured[-1][1], mask[0])

    # images: one frame, half the patches
    image_path = tmp_path / "image.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8)).save(image_path)
    images = [
        {"media": str(image_path), "media_type": "image", "captions": ["a red image"], "audio_visual_captions": [],
         "sample_id": i}
        for i in range(2)
    ]
    rows = InternVideo2MediaTransform(stage2_video_processor(num_frames=4, image_size=56))(
        {key: [row[key] for row in images] for key in images[0]}
    )
    rows = [dict(zip(rows, values)) for values in zip(*rows.values())]
    image_batch = trainer._prepare_inputs(trainer.data_collator(rows))
    assert "pixel_values" in image_batch
    trainer.compute_loss(model, image_batch)
    assert captured[-1].shape == (2, 16) and captured[-1].sum(dim=1).tolist() == [8, 8]

    model.eval()
    trainer.compute_loss(model, batch_of(trainer, [0, 1]))
    assert captured[-1] is None  # evaluation sees every token


def test_freezing_policies(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(freeze_vision=True, unfreeze=[r"vision_model\.pooler\."], mlm_weight=0.0)
    trainer = make_trainer(tmp_path, clips, stage2=stage2, max_steps=1)
    before = {name: parameter.detach().clone() for name, parameter in trainer.model.named_parameters()}
    trainer.train()
    for name, parameter in trainer.model.named_parameters():
        changed = not torch.equal(before[name], parameter.detach())
        frozen = name.startswith("vision_model.") and not name.startswith("vision_model.pooler.")
        assert parameter.requires_grad == (not frozen), name
        if frozen:
            assert not changed, name
    assert not torch.equal(before["vision_model.pooler.q_proj.weight"], trainer.model.vision_model.pooler.q_proj.weight)
    assert not torch.equal(before["text_projection.weight"], trainer.model.text_projection.weight)

    with pytest.raises(ValueError, match=r"unfreeze patterns \['no_such_module'\] match no parameter name"):
        make_trainer(tmp_path, clips, stage2=InternVideo2Stage2Arguments(freeze_text=True, unfreeze=["no_such_module"]))
    with pytest.raises(ValueError, match="unfreeze pattern '\\(' is not a valid regular expression"):
        make_trainer(tmp_path, clips, stage2=InternVideo2Stage2Arguments(unfreeze=["("]))


def test_locked_text_encoder_and_projection(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(freeze_text_encoder=True, freeze_text_projection=True)
    trainer = make_trainer(tmp_path, clips, stage2=stage2, max_steps=1)
    fusion_layer = trainer.model.config.text_config.fusion_layer
    before = {name: parameter.detach().clone() for name, parameter in trainer.model.named_parameters()}
    trainer.train()
    locked = [f"text_model.bert.encoder.layer.{i}." for i in range(fusion_layer)]
    locked += ["text_model.bert.embeddings.", "text_projection."]
    for name, parameter in trainer.model.named_parameters():
        is_locked = name.startswith(tuple(locked))
        assert parameter.requires_grad == (not is_locked), name
        if is_locked:
            assert torch.equal(before[name], parameter.detach()), name
    for changed in (f"text_model.bert.encoder.layer.{fusion_layer}.crossattention.self.query.weight",
                    f"text_model.bert.encoder.layer.{fusion_layer}.attention.self.query.weight",
                    "text_model.cls.predictions.transform.dense.weight", "vision_projection.weight"):
        assert not torch.equal(before[changed], trainer.model.get_parameter(changed)), changed


def test_stage2_command_whitens_the_text_projection_on_the_training_captions(tmp_path, clips):
    output_dir = str(tmp_path / "out")
    arguments = cli_arguments(
        clips, output_dir, text=NO_DROPOUT, max_steps=1, per_device_train_batch_size=4, whiten_text_projection=8,
        freeze_text_encoder="true", freeze_text_projection="true",
    )
    main([str(argument) for argument in arguments])
    model = InternVideo2Model.from_pretrained(output_dir).eval()
    captions = [entry["caption"] for entry in json.loads(clips.annotations["train"].retrieval.read_text())]
    tokens = build_tokenizer(model_arguments())(captions, padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        projected = model.encode_text(tokens["input_ids"], tokens["attention_mask"]).projected.double().numpy()
    # white over the training captions in the 8 kept components; the other rows stayed exactly zero (frozen)
    np.testing.assert_allclose(projected[:, :8].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(projected[:, :8], rowvar=False), np.eye(8), atol=2e-3)
    assert np.all(projected[:, 8:] == 0.0)
    with pytest.raises(ValueError, match="whiten_text_projection must be >= 0, got -1"):
        InternVideo2Stage2Arguments(whiten_text_projection=-1)


def test_trainer_whitens_the_text_projection_when_built(tmp_path, clips):
    trainer = make_trainer(tmp_path, clips, stage2=InternVideo2Stage2Arguments(whiten_text_projection=6))
    captions = [entry["caption"] for entry in json.loads(clips.annotations["train"].retrieval.read_text())]
    tokens = build_tokenizer(model_arguments())(captions, padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        projected = trainer.model.eval().encode_text(tokens["input_ids"], tokens["attention_mask"]).projected
    np.testing.assert_allclose(np.cov(projected[:, :6].double().numpy(), rowvar=False), np.eye(6), atol=2e-3)
    assert torch.all(projected[:, 6:] == 0.0)
    with pytest.raises(ValueError, match="whiten_text_projection needs the tokenizer: pass processing_class"):
        InternVideo2Stage2Trainer(
            model=trainer.model, args=trainer.args, train_dataset=trainer.train_dataset,
            stage2_args=InternVideo2Stage2Arguments(whiten_text_projection=6, mlm_weight=0.0),
        )


def test_text_encoder_learning_rate_applies_to_the_text_only_layers(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(text_encoder_learning_rate=0.0)
    trainer = make_trainer(tmp_path, clips, stage2=stage2, max_steps=2, weight_decay=0.1)
    fusion_layer = trainer.model.config.text_config.fusion_layer
    before = {name: parameter.detach().clone() for name, parameter in trainer.model.named_parameters()}
    trainer.train()
    text_only = [f"text_model.bert.encoder.layer.{i}." for i in range(fusion_layer)] + ["text_model.bert.embeddings."]
    for name, parameter in trainer.model.named_parameters():
        if name.startswith(tuple(text_only)):
            assert torch.equal(before[name], parameter.detach()), name  # learning rate 0, weight decay included
    for changed in ("vision_model.pooler.q_proj.weight", "text_projection.weight",
                    f"text_model.bert.encoder.layer.{fusion_layer}.crossattention.self.query.weight",
                    f"text_model.bert.encoder.layer.{fusion_layer}.attention.self.query.weight"):
        assert not torch.equal(before[changed], trainer.model.get_parameter(changed)), changed
    groups = trainer.optimizer.param_groups
    assert sorted({group["weight_decay"] for group in groups}) == [0.0, 0.1]
    trainable = sum(1 for parameter in trainer.model.parameters() if parameter.requires_grad)
    assert sum(len(group["params"]) for group in groups) == trainable
    with pytest.raises(ValueError, match="text_encoder_learning_rate must be >= 0, got -1"):
        InternVideo2Stage2Arguments(text_encoder_learning_rate=-1)


def test_audio_visual_losses_on_audio_video_batches(tmp_path_factory):
    root = tmp_path_factory.mktemp("av")
    av_clips = make_color_clips(root, num_train=6, with_audio=True, fps=8)
    data = data_arguments(av_clips, audio_video_train_files=[str(av_clips.annotations["train"].audio_video)])
    audio = InternVideo2AudioConfig(
        num_mel_bins=64, patch_embedding_dim=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=24, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, num_buckets=32,
        max_bucket_distance=64, layerdrop=0.0,
    )
    torch.manual_seed(0)
    base = build_model(model_arguments(text=NO_DROPOUT), data)
    text_config = base.config.text_config.to_dict() | {"encoder_width": 32}
    config = type(base.config)(
        vision_config=base.config.vision_config, text_config=text_config, audio_config=audio, projection_dim=64,
        memory_projection_dim=32,
    )
    model = InternVideo2Model(config)
    trainer = make_trainer(tmp_path_factory.mktemp("av_out"), av_clips, model=model, data=data)
    assert not any(parameter.requires_grad for parameter in model.audio_model.parameters())  # official freeze_audio

    train = trainer.train_dataset
    av_rows = [i for i, kind in enumerate(train.with_format(None)["media_type"]) if kind == "audio_video"]
    batch = batch_of(trainer, av_rows[:2])
    assert batch["media_type"] == "audio_video" and "input_features" in batch
    loss, outputs = trainer.compute_loss(trainer.model.train(), batch, return_outputs=True)
    components = outputs.component_losses
    assert set(components) == {"vtc", "vtm", "mlm", "avtc", "avtm", "avmlm"}
    assert loss.item() == pytest.approx(sum(value.item() for value in components.values()), rel=1e-5)
    loss.backward()
    assert model.audio_visual_fusion.weight.grad is not None and model.audio_visual_itm_head.weight.grad is not None

    video_rows = [i for i, kind in enumerate(train.with_format(None)["media_type"]) if kind == "video"]
    _, outputs = trainer.compute_loss(trainer.model, batch_of(trainer, video_rows[:2]), return_outputs=True)
    assert set(outputs.component_losses) == {"vtc", "vtm", "mlm"}


def test_uta_aligns_the_pooled_features_with_the_teacher(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(
        vtc_weight=0.0, vtm_weight=0.0, mlm_weight=0.0, uta_weight=1.0, video_mask_ratio=0.0
    )
    model = build_model(model_arguments(text=NO_DROPOUT), data_arguments(clips))
    teacher = InternVideo2VisionModel(model.config.vision_config)
    teacher.load_state_dict(model.vision_model.state_dict())
    trainer = make_trainer(tmp_path, clips, stage2=stage2, model=model, teacher=teacher)
    batch = batch_of(trainer, [0, 1])
    _, outputs = trainer.compute_loss(trainer.model.train(), batch, return_outputs=True)
    assert outputs.component_losses["uta"].item() == pytest.approx(0.0, abs=1e-5)  # the teacher is the student

    trainer.stage2_args.video_mask_ratio = 0.8  # the student sees 20% of the tokens, the teacher all of them
    _, outputs = trainer.compute_loss(trainer.model, batch, return_outputs=True)
    assert outputs.component_losses["uta"].item() > 1e-3
    assert not any(parameter.requires_grad for parameter in teacher.parameters())

    with pytest.raises(ValueError, match="uta_weight > 0 needs a teacher_model"):
        make_trainer(tmp_path, clips, stage2=stage2)


def test_gradient_accumulation_is_averaged_not_summed(tmp_path, clips):
    stage2 = InternVideo2Stage2Arguments(vtm_weight=0.0, mlm_weight=0.0)
    trainer = make_trainer(
        tmp_path, clips, stage2=stage2, max_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    trainer.train()
    entry = logged(trainer)[0]
    # `loss` is the Trainer's mean over the two micro-batches; `loss_vtc` our mean of the same two VTC values
    assert entry["loss"] == pytest.approx(entry["loss_vtc"], rel=1e-5)


def test_gradient_checkpointing_gives_the_same_training(tmp_path, clips):
    runs = []
    for checkpointing in (False, True):
        trainer = make_trainer(tmp_path, clips, activation_checkpointing=checkpointing)
        trainer.train()
        assert trainer.model.is_activation_checkpointing == checkpointing
        runs.append([entry["loss"] for entry in logged(trainer)])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5)  # step 2 follows the step-1 gradients


def test_bf16_autocast_step_is_close_to_float32(tmp_path, clips):
    losses = []
    for bf16 in (False, True):
        stage2 = InternVideo2Stage2Arguments(mlm_weight=0.0)
        trainer = make_trainer(tmp_path, clips, stage2=stage2, max_steps=1, bf16=bf16)
        trainer.train()
        losses.append(logged(trainer)[0]["loss"])
    assert losses[1] == pytest.approx(losses[0], rel=0.05)


def test_training_skips_missing_media_without_stopping(tmp_path, clips):
    entries = json.loads(clips.annotations["train"].retrieval.read_text())
    entries[1]["video"] = "videos/train/does_not_exist.mp4"
    annotation = tmp_path / "with_missing.json"
    annotation.write_text(json.dumps(entries))
    data = data_arguments(clips, train_files=[str(annotation)])
    trainer = make_trainer(tmp_path, clips, data=data, max_steps=3, stage2=InternVideo2Stage2Arguments(mlm_weight=0.0))
    with pytest.warns(MediaSkippedWarning, match="does_not_exist.mp4"):
        trainer.train()  # 3 steps of 4 over 12 clips: every clip, the missing one included, is drawn once
    transform = trainer.train_dataset.format["format_kwargs"]["transform"]
    # (a random replacement can be the missing clip again: each attempt counts)
    assert transform.num_skipped >= 1 and set(transform.skipped) == {str(clips.root / entries[1]["video"])}
    assert len(logged(trainer)) == 3


def test_trainer_errors(tmp_path, clips):
    with pytest.raises(ValueError, match="every loss weight is 0"):
        make_trainer(tmp_path, clips, stage2=InternVideo2Stage2Arguments(vtc_weight=0, vtm_weight=0, mlm_weight=0))
    vision_only = InternVideo2VisionModel(build_model(model_arguments(), data_arguments(clips)).config.vision_config)
    with pytest.raises(TypeError, match="trains an InternVideo2Model, got InternVideo2VisionModel"):
        make_trainer(tmp_path, clips, model=vision_only)
    with pytest.raises(ValueError, match="video_mask_ratio must be in"):
        InternVideo2Stage2Arguments(video_mask_ratio=1.0)


def test_build_model_from_pretrained_towers(tmp_path, clips):
    data = data_arguments(clips)
    vision = InternVideo2VisionModel(build_model(model_arguments(), data).config.vision_config)
    vision.save_pretrained(tmp_path / "stage1")
    arguments = model_arguments(
        text_config_overrides=None,
        text_model_name_or_path=VOCAB_DIR,
        vision_model_name_or_path=str(tmp_path / "stage1"),
    )
    with pytest.raises(ValueError, match=r"pass --num_fusion_layers: .* \(6 layers of 384\) is not a BERT-base"):
        build_model(arguments, data)
    arguments.num_fusion_layers = 2
    model = build_model(arguments, data)
    assert model.config.text_config.fusion_layer == 4  # MiniLM's last 2 of 6 layers get cross-attention
    assert model.config.vision_config.hidden_size == TINY_VISION["hidden_size"]
    text_weights = model.text_model.bert.state_dict()
    for name, value in BertModel.from_pretrained(VOCAB_DIR).state_dict().items():  # the real MiniLM
        if not name.startswith("pooler."):
            torch.testing.assert_close(text_weights[name], value, rtol=0, atol=0, msg=name)
    for name, value in vision.state_dict().items():
        torch.testing.assert_close(model.vision_model.state_dict()[name], value, rtol=0, atol=0, msg=name)
    arguments.num_fusion_layers, arguments.num_new_fusion_layers = None, 2
    stacked = build_model(arguments, data)  # all 6 MiniLM layers give the text features, 2 new fusion layers
    assert (stacked.config.text_config.num_hidden_layers, stacked.config.text_config.fusion_layer) == (8, 6)
    assert stacked.config.text_config.hidden_dropout_prob == 0.1  # MiniLM's own dropout by default
    arguments.text_dropout = 0.0
    undropped = build_model(arguments, data).train()
    text_config = undropped.config.text_config
    assert (text_config.hidden_dropout_prob, text_config.attention_probs_dropout_prob) == (0.0, 0.0)
    tokens = build_tokenizer(model_arguments())(["a red circle moves up"], return_tensors="pt")
    with torch.no_grad():  # in training mode, two passes agree only without dropout
        first, second = (undropped.get_text_features(tokens["input_ids"], tokens["attention_mask"]) for _ in range(2))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"text_dropout must be in \[0, 1\), got 1.5"):
        InternVideo2ModelArguments(text_dropout=1.5)
    with pytest.raises(ValueError, match="text_dropout applies to a Stage-2 text tower loaded from"):
        InternVideo2ModelArguments(text_dropout=0.0, model_type="clip", text_model_name_or_path=VOCAB_DIR)
    arguments.num_fusion_layers, arguments.num_new_fusion_layers = 0, 0
    with pytest.raises(ValueError, match=r"num_fusion_layers must be in \[1, 5\] for a 6-layer BERT \(or 0 with"):
        build_model(arguments, data)
    with pytest.raises(ValueError, match="num_new_fusion_layers must be >= 0, got -1"):
        InternVideo2ModelArguments(num_new_fusion_layers=-1)


def test_argument_parsing_and_errors():
    assert parse_ratios("image=1, video=2.5") == {"image": 1.0, "video": 2.5} and parse_ratios(None) is None
    for bad in ("image", "image=x", "image=-1", "=1", "video=1,video=2"):
        with pytest.raises(ValueError, match="modality_ratios"):
            parse_ratios(bad)
    with pytest.raises(ValueError, match="modality_ratios must look like"):
        InternVideo2DataArguments(modality_ratios="video")
    with pytest.raises(ValueError, match="num_frames must be positive"):
        InternVideo2DataArguments(num_frames=0)
    with pytest.raises(ValueError, match="model_type must be 'stage2' or 'clip'"):
        model_arguments(model_type="stage3")
    with pytest.raises(ValueError, match="vtm_weight must be >= 0"):
        InternVideo2Stage2Arguments(vtm_weight=-1)
    model_arguments_, data, stage2, clip, training = parse_args(
        ["--model_type", "clip", "--train_files", "a.json", "b.json", "--vtm_weight", "0", "--output_dir", "out",
         "--clip_text_lora", "true", "--unfreeze", "vision_model.pooler", "text_projection"]
    )
    assert model_arguments_.model_type == "clip" and data.train_files == ["a.json", "b.json"]
    assert stage2.vtm_weight == 0 and stage2.unfreeze == ["vision_model.pooler", "text_projection"]
    assert clip.clip_text_lora and training.output_dir == "out"
    with pytest.raises(ValueError, match="nothing to do: pass --train_files"):
        main(["--output_dir", "out"])


def test_scalar_parameters_keep_their_saved_layout():
    model = torch.nn.Module()
    model.temperature = torch.nn.Parameter(torch.tensor(0.07))
    model.weight = torch.nn.Parameter(torch.ones(2))
    assert keep_scalar_parameters_one_dimensional(model) == ["temperature"]
    assert model.temperature.shape == (1,)
    state = model.state_dict()
    assert state["temperature"].shape == () and state["weight"].shape == (2,)
    model.load_state_dict({"temperature": torch.tensor(0.5), "weight": torch.zeros(2)})
    assert model.temperature.shape == (1,) and model.temperature.item() == 0.5


def test_contrastive_training_raises_held_out_retrieval(tmp_path_factory):
    """6 colours x 20 clips of a growing circle for training, 4 new renders of each colour held out (new backgrounds,
    sizes, positions and noise). Stage-2 losses (VTC + VTM + MLM, official video masking 0.8, random crops and flips)
    from scratch on tiny towers, 150 steps of 12 clips."""
    root = tmp_path_factory.mktemp("learning")
    dataset = make_color_clips(root / "data", num_train=120, num_test=24)
    trainer = make_trainer(
        root, dataset, max_steps=150, per_device_train_batch_size=12, logging_steps=10, warmup_steps=5,
        lr_scheduler_type="constant_with_warmup", weight_decay=0.05, adam_beta2=0.98, max_grad_norm=3.0,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()

    # A caption names a colour, and any of the 4 held-out clips of that colour answers it: the class-level R@1 (chance
    # 4/24) is the retrieval score here; the instance-level R@1 of `evaluate` (chance 1/24) can only pick the exact
    # clip among its colour's 4 by luck, so it stays near 1/4.
    model = trainer.model.eval()
    videos, captions = [], []
    with torch.no_grad():
        for batch in trainer.get_eval_dataloader():
            videos.append(model.get_video_features(batch["pixel_values_videos"]))
            captions += [texts[0] for texts in batch["captions"]]
        encoding = trainer.processing_class(captions, max_length=16, return_tensors="pt")
        texts = model.get_text_features(encoding["input_ids"], encoding["attention_mask"])
    best_video = (texts @ torch.cat(videos).T).argmax(dim=1).numpy()
    colour = [next(name for name in COLORS if name in caption) for caption in captions]
    class_r1 = float(np.mean([colour[i] == colour[j] for i, j in enumerate(best_video)]))
    chance = 4 / 24

    history = logged(trainer)
    print(
        f"\nheld-out text->video R@1 (right colour) {class_r1:.3f}, chance {chance:.3f}; instance-level t2v R@1 "
        f"{before['eval_t2v_r1']:.3f} -> {after['eval_t2v_r1']:.3f} (chance {1 / 24:.3f})\n"
        + "\n".join(
            f"step {e['step']:3d}: loss {e['loss']:.3f} vtc {e['loss_vtc']:.3f} vtm {e['loss_vtm']:.3f} "
            f"mlm {e['loss_mlm']:.3f}" for e in history
        )
    )
    assert after["eval_t2v_r1"] == pytest.approx(float(np.mean(best_video == np.arange(len(captions)))))
    assert class_r1 >= 3 * chance
    first, last = history[0], history[-1]
    assert last["loss_vtc"] < first["loss_vtc"] - 0.5
    assert last["loss_mlm"] < first["loss_mlm"] - 3.0
    # VTM only learns its label prior (1 match in 3 pairs: entropy 0.637) at this scale
    assert last["loss_vtm"] < first["loss_vtm"]
