"""Fine-tuning / probing trainer: layer-wise lr decay, mixup / CutMix with label smoothing, multi-view evaluation,
probing, learning on generated classes, bad labels, the model card and push_to_hub (Hub client mocked), and the
command line."""

import socket
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import HfApi, ModelCard
from transformers import TrainingArguments
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from internvideo2 import InternVideo2ForVideoClassification, InternVideo2VisionConfig
from internvideo2.data import MOTIONS, SHAPES, SyntheticVideoSample, generate_dataset, render_frames
from internvideo2.modeling_pretraining import InternVideo2ForPreTraining, InternVideo2PreTrainingConfig
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from internvideo2.trainers.finetune import (
    InternVideo2ClassificationMetrics,
    InternVideo2Mixup,
    InternVideo2VideoClassificationTrainer,
    layer_decay_parameter_groups,
    main,
    multi_view_probabilities,
    prepare_probing,
    smoothed_one_hot,
    soft_target_cross_entropy,
)

COLORS = ("red", "green", "blue")  # the classes
SIZE, FRAMES = 28, 4


def tiny_classifier(seed=0, **overrides):
    torch.manual_seed(seed)
    fields = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, image_size=SIZE,
                  num_frames=FRAMES, attention_pool_num_heads=4, attention_pool_output_size=32, num_labels=3)
    return InternVideo2ForVideoClassification(InternVideo2VisionConfig(**{**fields, **overrides}))


def clips(seeds, views=1):
    """Generated clips labelled by colour; `views=2` adds the mirrored clip as a second test view."""
    mean, std = torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
    rows = []
    for seed in seeds:
        sample = SyntheticVideoSample(color=COLORS[seed % 3], shape=SHAPES[seed // 3 % 4], motion=MOTIONS[seed // 12 % 7],
                                      seed=seed)
        frames = torch.from_numpy(render_frames(sample, num_frames=FRAMES, size=SIZE)).permute(0, 3, 1, 2)
        video = (frames.float() / 255 - mean) / std
        rows.append({"pixel_values_videos": torch.stack([video, video.flip(-1)]) if views == 2 else video,
                     "labels": seed % 3})
    return rows


def arguments(tmp_path, **overrides):
    fields = dict(output_dir=str(tmp_path), per_device_train_batch_size=10, per_device_eval_batch_size=10,
                  learning_rate=2e-3, warmup_steps=3, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                  remove_unused_columns=False, disable_tqdm=True, logging_steps=10)
    return TrainingArguments(**{**fields, **overrides})


def test_layer_decay_groups_follow_the_official_rule(tmp_path):
    model = tiny_classifier(use_attentive_probe=True)
    depth, base, decay = 3, 1e-3, 0.75
    args = arguments(tmp_path, learning_rate=base, weight_decay=0.05)
    trainer = InternVideo2VideoClassificationTrainer(model=model, args=args, layer_decay=decay)
    optimizer = trainer.create_optimizer()
    by_parameter = {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    assert len(by_parameter) == len(list(model.parameters()))
    for name, parameter in model.named_parameters():
        parts = name.split(".")
        if "layers" in parts:
            layer = int(parts[parts.index("layers") + 1]) + 1
        elif "embeddings" in parts:
            layer = 0
        else:
            layer = depth + 1
        decays = parameter.dim() >= 2 and parts[-1] not in ("bias", "cls_token", "position_embeddings")
        expected = (base * decay ** (depth + 1 - layer), 0.05 if decays else 0.0)
        assert by_parameter[id(parameter)] == pytest.approx(expected), name
    # the classifier head gets the base rate, the patch embedding the most decayed one
    assert by_parameter[id(model.classifier.weight)][0] == pytest.approx(base)
    assert by_parameter[id(model.internvideo2.embeddings.patch_embedding.weight)][0] == pytest.approx(base * decay**4)
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        layer_decay_parameter_groups(model, base, 0.05, layer_decay=1.5)


def test_mixup_and_cutmix_mix_clips_and_targets_like_a_written_out_loop():
    mixup = InternVideo2Mixup(num_labels=4, label_smoothing=0.1, seed=0)
    videos, labels = torch.randn(3, 2, 3, 8, 8), torch.tensor([0, 3, 1])

    def smooth(label):
        target = torch.full((4,), 0.1 / 4)
        target[label] += 0.9
        return target

    for lam, box in ((0.3, None), (0.75, (2, 6, 1, 5))):
        mixed, targets = mixup.apply(videos, labels, lam, box)
        for b in range(3):
            partner = 2 - b  # the batch is mixed with its reverse
            if box is None:
                expected = lam * videos[b] + (1 - lam) * videos[partner]
            else:
                expected = videos[b].clone()
                for t in range(2):
                    for y in range(2, 6):
                        for x in range(1, 5):
                            expected[t, :, y, x] = videos[partner, t, :, y, x]
            torch.testing.assert_close(mixed[b], expected)
            torch.testing.assert_close(targets[b], lam * smooth(labels[b]) + (1 - lam) * smooth(labels[partner]))


def test_mixup_draws():
    mixup = InternVideo2Mixup(num_labels=3, seed=0)  # official: mixup 0.8, cutmix 1.0, switch 0.5, prob 1
    draws = [mixup.sample(16, 20) for _ in range(2000)]
    cutmix = [(lam, box) for lam, box in draws if box is not None]
    assert abs(len(cutmix) / 2000 - 0.5) < 0.05
    for lam, (top, bottom, left, right) in cutmix:  # λ is the share of the clip that is kept
        assert lam == pytest.approx(1 - (bottom - top) * (right - left) / (16 * 20))
    mixup_lams = np.array([lam for lam, box in draws if box is None])
    assert abs(mixup_lams.mean() - 0.5) < 0.03 and mixup_lams.min() < 0.05 and mixup_lams.max() > 0.95  # Beta(0.8, 0.8)
    assert all(InternVideo2Mixup(3, prob=0.0).sample(8, 8) == (1.0, None) for _ in range(5))
    with pytest.raises(ValueError, match=r"switch_prob must be in \[0, 1\]"):
        InternVideo2Mixup(3, switch_prob=2)


def test_label_smoothing_matches_torch_cross_entropy():
    logits, labels = torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])
    loss = soft_target_cross_entropy(logits, smoothed_one_hot(labels, 5, 0.1))
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_multi_view_probabilities_average_the_softmax_of_every_view():
    model = tiny_classifier().eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1000)  # make the views disagree visibly
    videos = torch.randn(2, 3, FRAMES, 3, SIZE, SIZE)
    probabilities = multi_view_probabilities(model, videos)
    with torch.no_grad():
        for b in range(2):
            views = [model(pixel_values_videos=videos[b, v : v + 1]).logits.softmax(-1)[0] for v in range(3)]
            torch.testing.assert_close(probabilities[b], sum(views) / 3, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(multi_view_probabilities(model, videos[:, 0]), multi_view_probabilities(model, videos[:, :1]))


def test_finetuning_learns_generated_classes(tmp_path):
    model = tiny_classifier()
    train, held_out = clips(range(60)), clips(range(1000, 1030), views=2)
    trainer = InternVideo2VideoClassificationTrainer(
        model=model, args=arguments(tmp_path, num_train_epochs=30, label_smoothing_factor=0.1),
        train_dataset=train, eval_dataset=held_out, compute_metrics=InternVideo2ClassificationMetrics(k=(1, 2)),
        layer_decay=0.9,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    print(f"held-out top-1 {before['eval_top1']:.3f} -> {after['eval_top1']:.3f} (chance 0.333), "
          f"loss {before['eval_loss']:.3f} -> {after['eval_loss']:.3f}")
    assert after["eval_top1"] >= 0.6 and after["eval_loss"] < 0.8 * before["eval_loss"]


@pytest.mark.parametrize("probe", ["linear", "attentive"])
def test_probing_trains_only_the_head(tmp_path, probe):
    model = tiny_classifier(use_attentive_probe=probe == "attentive")
    prepare_probing(model, probe)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = InternVideo2VideoClassificationTrainer(
        model=model, args=arguments(tmp_path, max_steps=4, learning_rate=1e-2),
        train_dataset=clips(range(40)), mixup=InternVideo2Mixup(3, seed=0),
    )
    trainer.train()
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        changed = not torch.equal(before[name], parameter)
        trainable = not name.startswith("internvideo2.") or (probe == "attentive" and name.startswith("internvideo2.pooler."))
        assert parameter.requires_grad == trainable == (id(parameter) in optimized), name
        if not trainable:
            assert not changed, name
    assert not torch.equal(before["classifier.weight"], model.classifier.weight)
    if probe == "attentive":
        assert not torch.equal(before["internvideo2.pooler.q_proj.weight"], model.internvideo2.pooler.q_proj.weight)
        assert not torch.equal(before["probe_mlp.fc1.weight"], model.probe_mlp.fc1.weight)
    with pytest.raises(ValueError, match="needs a model built with use_attentive_probe=True"):
        prepare_probing(tiny_classifier(), "attentive")


def test_labels_outside_the_label_set_give_one_line_errors(tmp_path):
    model = tiny_classifier()
    trainer = InternVideo2VideoClassificationTrainer(model=model, args=arguments(tmp_path))
    videos = torch.randn(2, FRAMES, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"^label 7 is outside the label set \[0, 3\)$"):
        trainer.compute_loss(model, {"pixel_values_videos": videos, "labels": torch.tensor([1, 7])})
    with pytest.raises(ValueError, match=r"^label -1 is outside the label set \[0, 3\)$"):
        trainer.prediction_step(model, {"pixel_values_videos": videos, "labels": torch.tensor([-1, 0])}, False)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_push_to_hub_uploads_model_processor_and_card(tmp_path, monkeypatch, no_network):
    """`Trainer.push_to_hub` with the Hub client mocked at its HfApi methods: the uploaded folder holds the weights,
    config, video processor and a model card, and loads back."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = repo_id
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload_folder"] = (repo_id, sorted(p.name for p in (tmp_path / "out").iterdir()))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    model = tiny_classifier(id2label={0: "red", 1: "green", 2: "blue"}, label2id={"red": 0, "green": 1, "blue": 2})
    processor = InternVideo2VideoProcessor(preset="finetune_test", num_frames=FRAMES, num_clips=2, num_crops=1,
                                           size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    args = arguments(tmp_path / "out", max_steps=2, hub_model_id="someone/internvideo2-tiny-colors", hub_token="x")
    trainer = InternVideo2VideoClassificationTrainer(
        model=model, args=args, train_dataset=clips(range(20)), eval_dataset=clips(range(100, 110)),
        processing_class=processor, compute_metrics=InternVideo2ClassificationMetrics(k=(1,)),
        model_card_kwargs={"dataset_name": "synthetic-shapes", "license": "apache-2.0"},
    )
    trainer.train()
    trainer.evaluate()
    trainer.push_to_hub()
    repo, files = calls["upload_folder"]
    assert calls["create_repo"] == repo == "someone/internvideo2-tiny-colors"
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"} <= set(files)
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.pipeline_tag == "video-classification" and card.data.library_name == "transformers"
    assert card.data.license == "apache-2.0" and "internvideo2" in card.data.tags
    assert card.data.eval_results[0].metric_type == "top1" and card.data.eval_results[0].dataset_name == "synthetic-shapes"
    assert 'from_pretrained("someone/internvideo2-tiny-colors")' in card.text and "0: red, 1: green, 2: blue" in card.text
    reloaded = InternVideo2ForVideoClassification.from_pretrained(tmp_path / "out")
    assert reloaded.config.id2label[2] == "blue"
    assert InternVideo2VideoProcessor.from_pretrained(tmp_path / "out").num_clips == 2


def test_command_line_finetunes_a_stage1_student_on_generated_videos(tmp_path):
    data = generate_dataset(tmp_path / "data", num_train=8, num_test=4, num_frames=8, size=SIZE, colors=["red", "blue"],
                            shapes=["circle"], motions=["up", "down"], label_by="color", held_out=None,
                            max_test_per_combination=1)
    torch.manual_seed(0)
    vision = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      image_size=SIZE, num_frames=FRAMES, attention_pool_num_heads=4,
                                      attention_pool_output_size=16)
    stage1 = InternVideo2ForPreTraining(InternVideo2PreTrainingConfig(vision_config=vision, clip_teacher_hidden_size=8,
                                                                      clip_num_return_layers=1, mae_num_return_layers=0))
    stage1.save_pretrained(tmp_path / "stage1")
    annotations = data.annotations
    metrics = main([
        "--model_name_or_path", str(tmp_path / "stage1"), "--labels_file", str(data.labels_file),
        "--train_files", str(annotations["train"].classification_csv), "--eval_file", str(annotations["test"].classification_csv),
        "--data_root", str(data.root), "--num_frames", str(FRAMES), "--image_size", str(SIZE),
        "--num_test_clips", "2", "--num_test_crops", "2", "--layer_decay", "0.8", "--label_smoothing_factor", "0.1",
        "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true",
    ])
    assert {"train_loss", "eval_loss", "eval_top1", "eval_mean_class_accuracy"} <= set(metrics)
    model = InternVideo2ForVideoClassification.from_pretrained(tmp_path / "out")
    assert model.config.id2label == {0: "red", 1: "blue"}
    # the encoder started from the Stage-1 student (only the training steps moved it)
    start = stage1.internvideo2.embeddings.cls_token
    assert (model.internvideo2.embeddings.cls_token - start).abs().max() < 0.05
    assert InternVideo2VideoProcessor.from_pretrained(tmp_path / "out").num_crops == 2
    assert ModelCard.load(tmp_path / "out" / "README.md").data.pipeline_tag == "video-classification"
