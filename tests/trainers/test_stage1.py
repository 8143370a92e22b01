"""Stage-1 distillation trainer: learning signal, masking wired to the teachers, teachers kept out of the optimized
model, the S/B/L recipe, bad setups, and the command line on generated videos."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, TrainingArguments, VideoMAEConfig, VideoMAEModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel
from internvideo2.data import COLORS, MOTIONS, SHAPES, SyntheticVideoSample, generate_dataset, render_frames
from internvideo2.modeling_pretraining import InternVideo2ForPreTraining, InternVideo2PreTrainingConfig
from internvideo2.teachers import InternVideo2EncoderTeacher, InternVideo2ImageTeacher, InternVideo2VideoTeacher
from internvideo2.trainers.stage1 import InternVideo2DistillationTrainer, main

SIZE, TEACHER_FRAMES = 56, 8  # 4x4 patches per frame; the student sees every 2nd frame (motion tubelet 2)


def clips(seeds):
    """Generated shape clips, ImageNet-normalised, as a list dataset of {"pixel_values_videos": (8, 3, 56, 56)}."""
    mean, std = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    rows = []
    for seed in seeds:
        sample = SyntheticVideoSample(color=list(COLORS)[seed % 6], shape=SHAPES[seed // 6 % 4],
                                      motion=MOTIONS[seed // 24 % 7], seed=seed)
        frames = torch.from_numpy(render_frames(sample, num_frames=TEACHER_FRAMES, size=SIZE)).permute(0, 3, 1, 2)
        rows.append({"pixel_values_videos": (frames.float() / 255 - mean) / std})
    return rows


def teachers(return_attention=True):
    torch.manual_seed(0)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                                          num_attention_heads=4, image_size=SIZE, patch_size=14,
                                                          projection_dim=24))
    mae = VideoMAEModel(VideoMAEConfig(hidden_size=40, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                                       image_size=SIZE, patch_size=14, num_frames=TEACHER_FRAMES, tubelet_size=2,
                                       use_mean_pooling=False))
    return (InternVideo2ImageTeacher(clip, layers=[1, 2], return_attention=return_attention),
            InternVideo2VideoTeacher(mae, layers=[1, 2]))


def student(mae_layers=2, decoder="linear", clip_width=48, final_width=24, seed=0):
    torch.manual_seed(seed)
    vision = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      image_size=SIZE, num_frames=TEACHER_FRAMES // 2, attention_pool_num_heads=4,
                                      attention_pool_output_size=32)
    config = InternVideo2PreTrainingConfig(vision_config=vision, clip_teacher_hidden_size=clip_width,
                                           clip_teacher_final_size=final_width, clip_num_return_layers=2,
                                           clip_decoder_type=decoder, mae_teacher_hidden_size=40,
                                           mae_num_return_layers=mae_layers)
    return InternVideo2ForPreTraining(config)


def arguments(tmp_path, **overrides):
    fields = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, per_device_eval_batch_size=8,
                  learning_rate=1e-3, warmup_steps=3, logging_steps=6, save_strategy="no", report_to=[], use_cpu=True,
                  seed=0, disable_tqdm=True)
    return TrainingArguments(**{**fields, **overrides})


def final_alignment(model, teacher, rows):
    """Mean cosine between the student's unmasked final embedding and the teacher's, on `rows`."""
    videos = torch.stack([row["pixel_values_videos"] for row in rows])[:, ::2]
    model.eval()
    with torch.no_grad():
        return F.cosine_similarity(model(pixel_values_videos=videos).clip_embeds, teacher(videos).final_embeds).mean().item()


def test_distillation_learns_on_held_out_clips(tmp_path):
    multimodal, motion = teachers()
    model = student()
    teacher_state = {k: v.clone() for k, v in {**multimodal.state_dict(), **motion.state_dict()}.items()}
    train, held_out = clips(range(40)), clips(range(1000, 1016))
    trainer = InternVideo2DistillationTrainer(
        model=model, args=arguments(tmp_path, num_train_epochs=4), multimodal_teacher=multimodal,
        motion_teacher=motion, train_dataset=train, eval_dataset=held_out,
    )
    before, cosine_before = trainer.evaluate(), final_alignment(model, multimodal, held_out)
    trainer.train()
    after, cosine_after = trainer.evaluate(), final_alignment(model, multimodal, held_out)
    print(f"held-out distillation loss {before['eval_loss']:.3f} -> {after['eval_loss']:.3f}; "
          f"final-embedding cosine {cosine_before:.3f} -> {cosine_after:.3f}")
    for name in ("clip_middle", "clip_final", "mae"):
        print(f"  {name}: {before[f'eval_loss_{name}']:.3f} -> {after[f'eval_loss_{name}']:.3f}")
        assert after[f"eval_loss_{name}"] < 0.8 * before[f"eval_loss_{name}"]
    assert after["eval_loss"] < 0.6 * before["eval_loss"]
    assert cosine_after > cosine_before + 0.3
    # the logged total is the weighted sum (ratios 1) of the logged components
    components = sum(after[f"eval_loss_{name}"] for name in ("clip_middle", "clip_final", "mae"))
    assert after["eval_loss"] == pytest.approx(components, rel=1e-4)
    assert {"loss_clip_middle", "loss_clip_final", "loss_mae"} <= set(trainer.state.log_history[0])
    # teachers: frozen, outside the optimizer, unchanged, still in eval mode
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.parameters()}
    assert not optimized & {id(p) for p in [*multimodal.parameters(), *motion.parameters()]}
    assert all(torch.equal(v, {**multimodal.state_dict(), **motion.state_dict()}[k]) for k, v in teacher_state.items())
    assert not multimodal.training and not motion.training
    assert trainer.loss_is_scaled_for_ga is False  # per-batch mean: the Trainer divides by accumulation steps


def with_fixed_attention(teacher, attention):
    """Makes `teacher` report `attention` instead of its own attention map (everything else unchanged)."""
    forward = teacher.forward

    def fixed(pixel_values_videos):
        out = forward(pixel_values_videos)
        out.attention = attention.to(out.attention)
        return out

    teacher.forward = fixed
    return teacher


def captured_masks(model):
    masks = []
    model.register_forward_pre_hook(lambda _, args, kwargs: masks.append(kwargs["bool_masked_pos"]), with_kwargs=True)
    return masks


def test_attention_masking_keeps_the_tokens_the_teacher_attends_to(tmp_path):
    multimodal, motion = teachers()
    batch = clips(range(2))
    attention = torch.zeros(2, 4, 16)  # ratio 0.8 keeps 16 - int(12.8) = 4 tokens per frame
    chosen = torch.stack([torch.randperm(16, generator=torch.Generator().manual_seed(i))[:4] for i in range(8)])
    attention.view(8, 16).scatter_(1, chosen, torch.rand(8, 4) + 0.1)
    teacher = with_fixed_attention(multimodal, attention)
    model = student()
    masks = captured_masks(model)
    trainer = InternVideo2DistillationTrainer(model=model, args=arguments(tmp_path), multimodal_teacher=teacher,
                                              motion_teacher=motion)
    loss = trainer.compute_loss(model, {"pixel_values_videos": torch.stack([row["pixel_values_videos"] for row in batch])})
    assert torch.isfinite(loss)
    expected = torch.ones(8, 16, dtype=torch.bool)
    expected.scatter_(1, chosen, False)
    assert torch.equal(masks[0], expected.view(2, 64))


def test_tube_and_random_masks_are_wired(tmp_path):
    multimodal, motion = teachers(return_attention=False)
    videos = torch.stack([row["pixel_values_videos"] for row in clips(range(3))])
    for mask_type in ("tube", "random"):
        model = student()
        masks = captured_masks(model)
        trainer = InternVideo2DistillationTrainer(model=model, args=arguments(tmp_path), multimodal_teacher=multimodal,
                                                  motion_teacher=motion, mask_type=mask_type, mask_ratio=0.5)
        trainer.compute_loss(model, {"pixel_values_videos": videos})
        mask = masks[0]
        assert mask.shape == (3, 64) and (mask.sum(1) == 32).all()
        frames = mask.view(3, 4, 16)
        same_in_every_frame = bool((frames == frames[:, :1]).all())
        assert same_in_every_frame == (mask_type == "tube")


def test_distillation_from_a_stage2_encoder_uses_its_joint_pool_attention(tmp_path):
    """The official S/B/L recipe: teacher = an InternVideo2 encoder, MLP decoders, no motion teacher, one mask draw
    over all patch tokens of the clip from the teacher's pool attention."""
    torch.manual_seed(1)
    encoder = InternVideo2VisionModel(InternVideo2VisionConfig(
        hidden_size=48, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96, image_size=SIZE, num_frames=4,
        attention_pool_num_heads=4, attention_pool_output_size=24))
    teacher = InternVideo2EncoderTeacher(encoder, num_layers=2, interval=1.5)
    videos = torch.stack([row["pixel_values_videos"] for row in clips(range(4))])[:, ::2]
    assert teacher(videos).attention.shape == (4, 64)  # one distribution over the whole clip
    # 13 = 64 - int(0.8 * 64) attended tokens, all in the first two frames: only a joint draw can keep exactly these
    chosen = torch.stack([torch.randperm(32, generator=torch.Generator().manual_seed(i))[:13] for i in range(4)])
    attention = torch.zeros(4, 64).scatter_(1, chosen, torch.rand(4, 13) + 0.1)
    model = student(mae_layers=0, decoder="mlp")
    masks = captured_masks(model)
    trainer = InternVideo2DistillationTrainer(model=model, args=arguments(tmp_path),
                                              multimodal_teacher=with_fixed_attention(teacher, attention))
    first = trainer.compute_loss(model, {"pixel_values_videos": videos})
    expected = torch.ones(4, 64, dtype=torch.bool).scatter_(1, chosen, False)
    assert torch.equal(masks[0], expected)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(15):
        loss = trainer.compute_loss(model, {"pixel_values_videos": videos})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first.item()


def test_no_weight_decay_on_position_tables_cls_token_biases_and_norms(tmp_path):
    multimodal, motion = teachers()
    model = student()
    trainer = InternVideo2DistillationTrainer(model=model, args=arguments(tmp_path, weight_decay=0.05),
                                              multimodal_teacher=multimodal, motion_teacher=motion)
    decay = {id(p): group["weight_decay"] for group in trainer.create_optimizer().param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        exempt = parameter.dim() < 2 or name.endswith((".bias", "cls_token", "position_embeddings"))
        assert decay[id(parameter)] == (0.0 if exempt else 0.05), name
    assert decay[id(model.mae_position_embeddings)] == decay[id(model.clip_position_embeddings)] == 0.0
    assert decay[id(model.clip_decoders[0].projection.weight)] == 0.05


def test_bad_setups_give_one_line_errors(tmp_path):
    multimodal, motion = teachers()
    args = arguments(tmp_path)
    with pytest.raises(ValueError, match="multimodal_teacher has 2 layers .* aligns 3 layers"):
        model = student()
        model.config.clip_num_return_layers = 3
        InternVideo2DistillationTrainer(model=model, args=args, multimodal_teacher=multimodal, motion_teacher=motion)
    with pytest.raises(ValueError, match="multimodal_teacher has width 48 but the student's decoders output 64"):
        InternVideo2DistillationTrainer(model=student(clip_width=64), args=args, multimodal_teacher=multimodal,
                                        motion_teacher=motion)
    with pytest.raises(ValueError, match="2 motion decoders .* motion_teacher is missing"):
        InternVideo2DistillationTrainer(model=student(), args=args, multimodal_teacher=multimodal)
    with pytest.raises(ValueError, match="mask_type must be one of"):
        InternVideo2DistillationTrainer(model=student(), args=args, multimodal_teacher=multimodal,
                                        motion_teacher=motion, mask_type="block")
    with pytest.raises(ValueError, match="gives no final embedding"):
        InternVideo2DistillationTrainer(model=student(mae_layers=0, clip_width=40), args=args, multimodal_teacher=motion)
    no_attention, _ = teachers(return_attention=False)
    with pytest.raises(ValueError, match="needs a multimodal_teacher that returns attention"):
        InternVideo2DistillationTrainer(model=student(), args=args, multimodal_teacher=no_attention,
                                        motion_teacher=motion)
    trainer = InternVideo2DistillationTrainer(model=student(final_width=16), args=args,
                                              multimodal_teacher=multimodal, motion_teacher=motion)
    videos = torch.stack([row["pixel_values_videos"] for row in clips(range(2))])
    with pytest.raises(ValueError, match=r"teacher targets for clip_final have shape \(2, 24\) but the student produces \(2, 16\)"):
        trainer.compute_loss(trainer.model, {"pixel_values_videos": videos})


def test_command_line_distils_generated_videos(tmp_path):
    data = generate_dataset(tmp_path / "data", num_train=8, num_test=2, num_frames=8, size=28, colors=["red", "blue"],
                            shapes=["circle"], motions=["up", "down"], held_out=None, max_test_per_combination=1)
    for split in ("train", "test"):
        rows = [f"synthetic {sample.path} -1 -1 -1 {sample.label}" for sample in getattr(data, split)]
        (tmp_path / f"{split}.csv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                   num_attention_heads=4, image_size=28, patch_size=14,
                                                   projection_dim=16)).save_pretrained(tmp_path / "clip")
    VideoMAEModel(VideoMAEConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                                 image_size=28, patch_size=14, num_frames=8, tubelet_size=2)).save_pretrained(tmp_path / "mae")
    overrides = ('{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, '
                 '"attention_pool_num_heads": 4, "attention_pool_output_size": 16}')
    metrics = main([
        "--student_preset", "S/14", "--student_config_overrides", overrides,
        "--multimodal_teacher", str(tmp_path / "clip"), "--multimodal_teacher_layers", "0", "1",
        "--motion_teacher", str(tmp_path / "mae"), "--motion_teacher_layers", "0", "1",
        "--train_files", str(tmp_path / "train.csv"), "--eval_file", str(tmp_path / "test.csv"),
        "--data_root", str(data.root), "--num_frames", "8", "--image_size", "28", "--output_dir", str(tmp_path / "out"),
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu",
        "--save_strategy", "no", "--disable_tqdm", "true",
    ])
    assert {"train_loss", "eval_loss", "eval_loss_clip_middle", "eval_loss_clip_final", "eval_loss_mae"} <= set(metrics)
    saved = InternVideo2ForPreTraining.from_pretrained(tmp_path / "out")
    assert saved.config.vision_config.num_frames == 4  # every 2nd frame: the motion teacher has tubelets of 2
    assert (saved.config.clip_teacher_hidden_size, saved.config.clip_teacher_final_size) == (32, 16)
    assert saved.config.mae_teacher_hidden_size == 24 and saved.config.clip_decoder_type == "mlp"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "CLIPVisionModelWithProjection" in card and "mask_ratio | 0.8" in card


@pytest.mark.slow
def test_teachers_are_prepared_for_deepspeed_inference(tmp_path):
    """Under DeepSpeed (ZeRO-2, one CPU process) the teacher becomes its own inference engine (stage 0, no
    optimizer) and the student trains."""
    script = textwrap.dedent(
        """
        import sys, torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, TrainingArguments
        from internvideo2 import InternVideo2VisionConfig
        from internvideo2.modeling_pretraining import InternVideo2ForPreTraining, InternVideo2PreTrainingConfig
        from internvideo2.teachers import InternVideo2ImageTeacher
        from internvideo2.trainers.stage1 import InternVideo2DistillationTrainer
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, image_size=28, patch_size=14, projection_dim=24))
        teacher = InternVideo2ImageTeacher(clip, layers=[0, 1])
        vision = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, image_size=28, num_frames=4, attention_pool_num_heads=4, attention_pool_output_size=32)
        model = InternVideo2ForPreTraining(InternVideo2PreTrainingConfig(vision_config=vision,
            clip_teacher_hidden_size=48, clip_teacher_final_size=24, clip_num_return_layers=2, mae_num_return_layers=0))
        config = {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
                  "zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}}
        args = TrainingArguments(output_dir=sys.argv[1], per_device_train_batch_size=4, max_steps=2, save_strategy="no",
                                 report_to=[], use_cpu=True, deepspeed=config)
        data = [{"pixel_values_videos": torch.randn(4, 3, 28, 28)} for _ in range(8)]
        trainer = InternVideo2DistillationTrainer(model=model, args=args, multimodal_teacher=teacher, train_dataset=data)
        engine = trainer._run_multimodal_teacher
        assert type(engine).__name__ == "DeepSpeedEngine" and engine.module is teacher and engine.optimizer is None
        assert engine.zero_optimization_stage() == 0 and not engine.module.training
        trainer.train()
        assert trainer.model_wrapped.module is model
        print("ok")
        """
    )
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29561")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
