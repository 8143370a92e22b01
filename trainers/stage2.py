"""Stage 2 (video / audio / text alignment) and InternVideo2-CLIP training with the Hugging Face `Trainer`.

`InternVideo2Stage2Trainer` trains an `InternVideo2Model` with the official Stage-2 objective (spec §3.4-3.6):
VTC (gathered across ranks with gradient) + VTM (hard negatives) + MLM, their audio-visual variants on audio-video
batches, and UTA when a teacher is given, each weighted and logged as `loss_<name>`; the vision input is randomly
masked during training (video 0.8, image 0.5). `InternVideo2ClipTrainer` trains an `InternVideo2ClipModel` with VTC
only (spec §4).

Command line (`python -m internvideo2.trainers.stage2 --help`; also under `torchrun`, `accelerate launch` and the
`deepspeed` launcher with `--deepspeed examples/deepspeed/zero2.json`):

    python -m internvideo2.trainers.stage2 --train_files train.json --eval_file test.json --data_root videos \
        --text_model_name_or_path bert-base-uncased --vision_model_name_or_path stage1_output \
        --output_dir out --per_device_train_batch_size 64 --learning_rate 5e-5 --bf16
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import datasets
import torch
from torch.utils.data import DataLoader
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import seed_worker
from transformers.utils import ModelOutput

from ..data.collators import InternVideo2VideoTextCollator
from ..data.datasets import InternVideo2MediaTransform, load_video_text_json, seeded_generator, stage2_video_processor
from ..data.mixing import InternVideo2ModalityBatchSampler
from ..losses import (
    InternVideo2MaskedLanguageModelingLoss,
    InternVideo2TextMasker,
    InternVideo2VideoTextContrastiveLoss,
    InternVideo2VideoTextMatchingLoss,
    concat_audio_vision_tokens,
    cosine_distillation_loss,
)
from ..masking import random_token_mask
from .arguments import (
    InternVideo2ClipArguments,
    InternVideo2DataArguments,
    InternVideo2ModelArguments,
    InternVideo2Stage2Arguments,
    parse_ratios,
)
from .running import train_and_evaluate
from .text_whitening import whiten_text_projection


AUDIO_VISUAL_LOSSES = ("avtc", "avtm", "avmlm")


@dataclass
class InternVideo2Stage2LossOutput(ModelOutput):
    """What the training forward returns: the weighted total and each unweighted component (detached)."""

    loss: torch.Tensor | None = None
    component_losses: dict[str, torch.Tensor] | None = None


def _dataset_transform(dataset):
    """The `with_transform` / `set_transform` callable of a `datasets.Dataset`, if any."""
    if isinstance(dataset, datasets.Dataset):
        return dataset.format.get("format_kwargs", {}).get("transform")
    return None


def keep_scalar_parameters_one_dimensional(model: torch.nn.Module) -> list[str]:
    """Stores 0-dim parameters (the temperature) as 1-element vectors, while state dicts keep them 0-dim.

    DeepSpeed broadcasts every parameter at start-up through `p.data.view(torch.uint8)`, which torch refuses for 0-dim
    tensors. A 1-element vector broadcasts in every use of the temperature; the state-dict hooks keep saved weights and
    checkpoints in the model's own (0-dim) layout and accept both layouts when loading. Returns the parameter names.
    """
    names = [name for name, parameter in model.named_parameters() if parameter.ndim == 0]
    for name in names:
        model.get_parameter(name).data = model.get_parameter(name).data.reshape(1)

    def to_saved_layout(module, state_dict, prefix, local_metadata):
        for name in names:
            if state_dict.get(prefix + name) is not None:
                state_dict[prefix + name] = state_dict[prefix + name].reshape(())

    def to_training_layout(module, state_dict, prefix, *args):
        for name in names:
            if state_dict.get(prefix + name) is not None and state_dict[prefix + name].ndim == 0:
                state_dict[prefix + name] = state_dict[prefix + name].reshape(1)

    if names:
        model.register_state_dict_post_hook(to_saved_layout)
        model.register_load_state_dict_pre_hook(to_training_layout)
    return names


class _DataEpochCallback(TrainerCallback):
    """Gives the current epoch to the batch sampler and the media transform before each epoch's iterator exists."""

    def __init__(self, trainer: "InternVideo2Stage2Trainer"):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.set_data_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class InternVideo2Stage2Trainer(Trainer):
    """`Trainer` for InternVideo2 Stage 2.

    Every step is one media type (`InternVideo2ModalityBatchSampler` builds the batches: image, video and
    audio-video batches interleaved like the official MetaLoader, the same type on every rank). The losses are
    computed inside the wrapped model's forward (a forward hook), so DDP and DeepSpeed see every parameter they
    touch; the contrastive terms gather embeddings from all ranks with gradient, so a multi-process run follows the
    single-process run of the same global batch.

    Random draws that shape the loss (vision token masks, MLM masks) come from generators seeded by
    `(args.seed, global_step, sample_id)`: they do not depend on the number of processes or on an interrupted run.

    Args:
        model: an `InternVideo2Model`.
        args: `TrainingArguments`.
        stage2_args: loss weights, masking ratios and freezing (`InternVideo2Stage2Arguments`; default: official).
        teacher_model: a frozen vision model for UTA (`uta_weight > 0`): its pooled output (or a tensor it returns)
            for the unmasked video is the target of the student's attention-pool output (cosine distance). This
            is a simplification of the official UTA, which aligns Stage-1 decoder outputs the Stage-2 model does not
            keep.
        modality_ratios: relative steps per media type (see `InternVideo2ModalityBatchSampler`).
        processing_class: the tokenizer (needed for MLM masking and evaluation).
        Other arguments: as `Trainer`. `train_dataset` / `eval_dataset` are `datasets.Dataset`s with an
        `InternVideo2MediaTransform` set and a `media_type` column (the `internvideo2.data` loaders);
        `data_collator` an `InternVideo2VideoTextCollator`.
    """

    def __init__(
        self,
        model=None,
        args: TrainingArguments | None = None,
        stage2_args: InternVideo2Stage2Arguments | None = None,
        teacher_model=None,
        modality_ratios: Mapping[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(model=model, args=args, **kwargs)
        self.stage2_args = stage2_args if stage2_args is not None else InternVideo2Stage2Arguments()
        self.modality_ratios = dict(modality_ratios) if modality_ratios is not None else None
        # compute_loss returns the mean loss of one micro-batch; the Trainer divides it by the accumulation steps
        self.loss_is_scaled_for_ga = False
        self.loss_weights = {name: w for name, w in self._loss_weights().items() if w > 0}
        model = self._base_model(self.model)
        self._check_model(model)
        if not self.loss_weights:
            raise ValueError("every loss weight is 0 (for this model): nothing to train")
        if self.stage2_args.whiten_text_projection:
            self._whiten_text_projection(model)
        self._apply_freezing(model)
        self._scalar_parameter_names = []
        if self.is_deepspeed_enabled:
            self._scalar_parameter_names = keep_scalar_parameters_one_dimensional(model)
        self.contrastive_loss = InternVideo2VideoTextContrastiveLoss(
            all_gather=True, local_loss=self.stage2_args.contrastive_local_loss, gather_with_grad=True
        )
        self.matching_loss = InternVideo2VideoTextMatchingLoss(hard_negatives=self.stage2_args.vtm_hard_negatives)
        self.mlm_loss = InternVideo2MaskedLanguageModelingLoss()
        self.text_masker = None
        if {"mlm", "avmlm"} & set(self.loss_weights):
            if self.processing_class is None:
                raise ValueError("MLM needs the tokenizer: pass processing_class=tokenizer")
            self.text_masker = InternVideo2TextMasker.from_tokenizer(
                self.processing_class, mlm_probability=self.stage2_args.mlm_probability
            )
        if ("uta" in self.loss_weights) != (teacher_model is not None):
            raise ValueError("uta_weight > 0 needs a teacher_model, and a teacher_model needs uta_weight > 0")
        self.teacher_model = teacher_model
        self._teacher_prepared = False
        self._train_batch_sampler = None
        self._component_sums: dict[str, torch.Tensor] = {}
        self._component_counts: dict[str, int] = {}
        self.add_callback(_DataEpochCallback(self))

    # ------------------------------------------------------------------------------------------------- set-up

    def _loss_weights(self) -> dict[str, float]:
        return self.stage2_args.loss_weights

    def _check_model(self, model) -> None:
        from ..modeling_internvideo2 import InternVideo2Model

        if not isinstance(model, InternVideo2Model):
            raise TypeError(f"InternVideo2Stage2Trainer trains an InternVideo2Model, got {type(model).__name__}")
        if model.audio_model is None and set(AUDIO_VISUAL_LOSSES) & set(self.loss_weights):
            # audio-visual losses only run on audio-video batches; without an audio tower there are none
            self.loss_weights = {k: v for k, v in self.loss_weights.items() if k not in AUDIO_VISUAL_LOSSES}

    def _whiten_text_projection(self, model) -> None:
        """`whiten_text_projection` over every training caption, tokenised to the collator's length."""
        if self.processing_class is None:
            raise ValueError("whiten_text_projection needs the tokenizer: pass processing_class=tokenizer")
        if self.train_dataset is None:
            raise ValueError("whiten_text_projection needs the training captions: pass a train_dataset")
        captions = [text for texts in self.train_dataset.with_format(None)["captions"] for text in texts]
        whiten_text_projection(
            model, self.processing_class, captions, self.stage2_args.whiten_text_projection,
            max_length=getattr(self.data_collator, "max_length", 32),
        )

    def _base_model(self, model):
        """The `PreTrainedModel` under the DDP / DeepSpeed / peft wrappers."""
        model = self.accelerator.unwrap_model(model)
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def _apply_freezing(self, model) -> None:
        args = self.stage2_args
        frozen = []
        if args.freeze_vision:
            frozen.append("vision_model.")
        if args.freeze_text:
            frozen.append("text_model.")
        if args.freeze_audio and getattr(model, "audio_model", None) is not None:
            frozen.append("audio_model.")
        if args.freeze_text_projection:
            frozen.append("text_projection.")
        fusion_layer = model.config.text_config.fusion_layer if args.freeze_text_encoder else None
        patterns = []
        for pattern in args.unfreeze:
            try:
                patterns.append(re.compile(pattern))
            except re.error as error:
                raise ValueError(f"unfreeze pattern {pattern!r} is not a valid regular expression ({error})") from None
        matched = set()
        for name, parameter in model.named_parameters():
            hits = [pattern.pattern for pattern in patterns if pattern.search(name)]
            matched.update(hits)
            if hits:
                parameter.requires_grad_(True)
            elif name.startswith(tuple(frozen)) or (
                fusion_layer is not None and is_text_encoder_parameter(name, fusion_layer)
            ):
                parameter.requires_grad_(False)
        unmatched = [pattern.pattern for pattern in patterns if pattern.pattern not in matched]
        if unmatched:
            raise ValueError(f"unfreeze patterns {unmatched} match no parameter name")

    def create_optimizer(self, model=None):
        """The Trainer's optimizer; with `text_encoder_learning_rate`, the text-only part of the text encoder
        (embeddings and layers before `fusion_layer`) gets its own learning rate in every parameter group."""
        optimizer = super().create_optimizer(model)
        learning_rate = self.stage2_args.text_encoder_learning_rate
        if learning_rate is None:
            return optimizer
        base = self._base_model(self.model if model is None else model)
        fusion_layer = base.config.text_config.fusion_layer
        text_only = {
            id(parameter) for name, parameter in base.named_parameters()
            if is_text_encoder_parameter(name, fusion_layer)
        }
        groups = []
        for group in optimizer.param_groups:
            for rate, keep in ((group["lr"], False), (learning_rate, True)):
                params = [parameter for parameter in group["params"] if (id(parameter) in text_only) == keep]
                if params:
                    groups.append({**group, "params": params, "lr": rate})
        optimizer.param_groups.clear()
        for group in groups:
            optimizer.add_param_group(group)
        return optimizer

    def set_data_epoch(self, epoch: int) -> None:
        """Epoch of the batch order and of the media transform's random draws (called before every epoch)."""
        if self._train_batch_sampler is not None:
            self._train_batch_sampler.set_epoch(epoch)
        transform = _dataset_transform(self.train_dataset)
        if hasattr(transform, "set_epoch"):
            transform.set_epoch(epoch)

    # ------------------------------------------------------------------------------------------------- data

    def _loader_params(self) -> dict:
        params = {
            "collate_fn": self.data_collator,
            "num_workers": self.args.dataloader_num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
            "persistent_workers": self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0,
        }
        if self.args.dataloader_num_workers > 0:
            params["prefetch_factor"] = self.args.dataloader_prefetch_factor
        return params

    def get_train_dataloader(self) -> DataLoader:
        """Single-media-type batches from `InternVideo2ModalityBatchSampler` (full batches only)."""
        dataset = self.train_dataset
        if dataset is None:
            raise ValueError("Trainer: training requires a train_dataset")
        if isinstance(dataset, torch.utils.data.IterableDataset):
            raise TypeError("InternVideo2Stage2Trainer needs a map-style train_dataset (a datasets.Dataset)")
        options = dict(
            ratios=self.modality_ratios, num_processes=self.args.world_size, seed=self.args.data_seed or self.args.seed
        )
        if isinstance(dataset, datasets.Dataset) and "media_type" in dataset.column_names:
            sampler = InternVideo2ModalityBatchSampler.from_dataset(dataset, self._train_batch_size, **options)
        else:
            groups = {"video": range(len(dataset))}
            sampler = InternVideo2ModalityBatchSampler(groups, self._train_batch_size, **options)
        self._train_batch_sampler = sampler
        params = self._loader_params()
        params["worker_init_fn"] = partial(
            seed_worker, num_workers=self.args.dataloader_num_workers, rank=self.args.process_index
        )
        return self.accelerator.prepare(DataLoader(dataset, batch_sampler=sampler, **params))

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("Trainer: evaluation requires an eval_dataset")
        loader = DataLoader(dataset, batch_size=self.args.eval_batch_size, shuffle=False, **self._loader_params())
        return self.accelerator.prepare(loader)

    # ------------------------------------------------------------------------------------------------- losses

    def _vision_mask(self, model, pixel_values: torch.Tensor, sample_ids: torch.Tensor, is_image: bool):
        ratio = self.stage2_args.image_mask_ratio if is_image else self.stage2_args.video_mask_ratio
        if ratio == 0 or not model.training:
            return None
        config = model.config.vision_config
        frames = 1 if is_image else pixel_values.shape[1] // config.tubelet_size
        height, width = pixel_values.shape[-2] // config.patch_size, pixel_values.shape[-1] // config.patch_size
        num_tokens = frames * height * width
        masks = [
            random_token_mask(1, num_tokens, ratio, generator=self._generator(sample_id, purpose=1))
            for sample_id in sample_ids.tolist()
        ]
        return torch.cat(masks).to(pixel_values.device)

    def _generator(self, sample_id: int, purpose: int) -> torch.Generator:
        return seeded_generator(self.args.seed, self.state.global_step, sample_id, purpose)

    def _mask_text(self, input_ids: torch.Tensor, sample_ids: torch.Tensor, purpose: int):
        rows = [
            self.text_masker(input_ids[i : i + 1], generator=self._generator(sample_id, purpose))
            for i, sample_id in enumerate(sample_ids.tolist())
        ]
        return torch.cat([row[0] for row in rows]), torch.cat([row[1] for row in rows])

    def _teacher_targets(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if not self._teacher_prepared:
            self.teacher_model.eval().requires_grad_(False)
            if not self.is_deepspeed_enabled:
                self.teacher_model = self.accelerator.prepare_model(self.teacher_model, evaluation_mode=True)
            else:
                self.teacher_model.to(self.args.device)
            self._teacher_prepared = True
        with torch.no_grad():
            output = self.teacher_model(pixel_values)
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    def _model_inputs(self, model, inputs: dict) -> tuple[dict, dict]:
        """Splits a collated batch into the forward's inputs and what the losses need besides its outputs."""
        media_type = inputs.get("media_type", "video")
        sample_ids = inputs["sample_ids"]
        is_image = "pixel_values" in inputs
        pixels = inputs["pixel_values"] if is_image else inputs["pixel_values_videos"]
        model_inputs = {
            "pixel_values" if is_image else "pixel_values_videos": pixels,
            "input_ids": inputs["input_ids"],
            "attention_mask": inputs["attention_mask"],
            "bool_masked_pos": self._vision_mask(model, pixels, sample_ids, is_image),
        }
        loss_inputs = {"sample_ids": sample_ids, "attention_mask": inputs["attention_mask"]}
        if "mlm" in self.loss_weights:
            masked = self._mask_text(inputs["input_ids"], sample_ids, 2)
            loss_inputs["mlm_input_ids"], loss_inputs["mlm_labels"] = masked
        uses_audio = media_type == "audio_video" and set(AUDIO_VISUAL_LOSSES) & set(self.loss_weights)
        if uses_audio:
            model_inputs["input_features"] = inputs["input_features"]
            model_inputs["audio_attention_mask"] = inputs.get("audio_attention_mask")
            loss_inputs["audio_visual_input_ids"] = inputs["audio_visual_input_ids"]
            loss_inputs["audio_visual_attention_mask"] = inputs["audio_visual_attention_mask"]
            if "avmlm" in self.loss_weights:
                masked = self._mask_text(inputs["audio_visual_input_ids"], sample_ids, 3)
                loss_inputs["avmlm_input_ids"], loss_inputs["avmlm_labels"] = masked
        if "uta" in self.loss_weights:
            loss_inputs["teacher_targets"] = self._teacher_targets(pixels)
        return model_inputs, loss_inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        base = self._base_model(model)
        model_inputs, loss_inputs = self._model_inputs(base, inputs)
        hook = partial(self._losses_hook, loss_inputs=loss_inputs)
        # The losses run inside the wrapped forward: DDP finds every parameter they use from the forward's output,
        # and (prepended before DeepSpeed's hooks) ZeRO-3 still holds the model's own parameters (the temperature).
        with self.accelerator.unwrap_model(model).register_forward_hook(hook, with_kwargs=True, prepend=True):
            outputs = model(**model_inputs)
        for name, value in outputs.component_losses.items():
            self._component_sums[name] = self._component_sums.get(name, 0.0) + value.float()
            self._component_counts[name] = self._component_counts.get(name, 0) + 1
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _losses_hook(self, module, args, kwargs, output, *, loss_inputs):
        model = module.get_base_model() if hasattr(module, "get_base_model") else module
        components = self._compute_losses(model, output, loss_inputs)
        loss = sum(self.loss_weights[name] * value for name, value in components.items())
        return InternVideo2Stage2LossOutput(
            loss=loss, component_losses={name: value.detach() for name, value in components.items()}
        )

    def _compute_losses(self, model, output, inputs: dict) -> dict[str, torch.Tensor]:
        """Unweighted loss components of one batch from the forward's encodings."""
        weights, sample_ids, temperature = self.loss_weights, inputs["sample_ids"], model.temperature
        vision, text = output.vision_encoding, output.text_encoding
        losses = {}
        if "vtc" in weights:
            losses["vtc"] = self.contrastive_loss(vision.projected, text.projected, temperature, sample_ids)
        if "vtm" in weights:
            losses["vtm"] = self.matching_loss(
                vision.memory, text.last_hidden_state, text.attention_mask, vision.projected, text.projected,
                temperature, partial(_match_logits, model, audio_visual=False), sample_ids=sample_ids,
            ).loss
        if "mlm" in weights:
            losses["mlm"] = self._mlm(
                model, inputs["mlm_input_ids"], inputs["attention_mask"], vision.memory, inputs["mlm_labels"]
            )
        audio = output.audio_encoding
        if audio is not None:
            av_text = model.encode_text(inputs["audio_visual_input_ids"], inputs["audio_visual_attention_mask"])
            fused = model.fuse_audio_visual(audio.projected, vision.projected)
            memory, memory_mask = concat_audio_vision_tokens(audio.memory, vision.memory)
            if "avtc" in weights:
                losses["avtc"] = self.contrastive_loss(fused, av_text.projected, temperature, sample_ids)
            if "avtm" in weights:
                losses["avtm"] = self.matching_loss(
                    memory, av_text.last_hidden_state, av_text.attention_mask, fused, av_text.projected, temperature,
                    partial(_match_logits, model, audio_visual=True), sample_ids=sample_ids,
                    vision_attention_mask=memory_mask,
                ).loss
            if "avmlm" in weights:
                losses["avmlm"] = self._mlm(
                    model, inputs["avmlm_input_ids"], inputs["audio_visual_attention_mask"], memory,
                    inputs["avmlm_labels"],
                )
        if "uta" in weights:
            targets = inputs["teacher_targets"]
            if targets.shape != vision.pooled.shape:
                raise ValueError(
                    f"the UTA teacher gives features of shape {tuple(targets.shape)}, the student's pooled features "
                    f"are {tuple(vision.pooled.shape)}"
                )
            losses["uta"] = cosine_distillation_loss(vision.pooled, targets)
        return losses

    def _mlm(self, model, masked_input_ids, attention_mask, memory, labels) -> torch.Tensor:
        logits = model.masked_language_modeling(masked_input_ids, attention_mask, memory).logits
        return self.mlm_loss(logits, labels)

    def _save(self, output_dir: str | None = None, state_dict=None):
        # ZeRO-3 gathers its 16-bit state dict from the parameters, bypassing the state-dict hooks
        if state_dict is not None and self._scalar_parameter_names:
            state_dict = dict(state_dict)
            for name in self._scalar_parameter_names:
                if name in state_dict and state_dict[name].numel() == 1:
                    state_dict[name] = state_dict[name].reshape(())
        super()._save(output_dir, state_dict=state_dict)

    # ------------------------------------------------------------------------------------------------- logging

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean of every loss component since the last training log as `loss_<name>`."""
        if "loss" in logs and self._component_sums:
            names = sorted(self._component_sums)
            means = torch.stack([self._component_sums[name] / self._component_counts[name] for name in names])
            if self.args.world_size > 1:
                means = self.accelerator.reduce(means, reduction="mean")
            logs.update({f"loss_{name}": value for name, value in zip(names, means.tolist())})
            self._component_sums, self._component_counts = {}, {}
        super().log(logs, start_time)

    # ------------------------------------------------------------------------------------------------- evaluation

    def _media_embeddings(self, model, batch: dict) -> torch.Tensor:
        if "pixel_values" in batch:
            return model.get_image_features(batch["pixel_values"])
        if "input_features" in batch and getattr(model, "audio_model", None) is not None:
            return model.get_audio_visual_features(
                batch["pixel_values_videos"], batch["input_features"], batch.get("audio_attention_mask")
            )
        return model.get_video_features(batch["pixel_values_videos"])

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Zero-shot retrieval on `eval_dataset` (ITC cosine similarities, unmasked inputs): `t2v_r1`, `v2t_r1`,
        ... and `r_mean` from the `text_video_retrieval` metric. Every caption of every video is a query."""
        from ..eval.metrics_loading import load_metric

        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, Mapping):
            metrics = {}
            for name, part in dataset.items():
                metrics.update(self.evaluate(part, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        loader = self.get_eval_dataloader(dataset)
        model = self._base_model(self.model)
        was_training = model.training
        model.eval()
        media, captions = [], []
        with torch.no_grad(), self.autocast_smart_context_manager():
            for batch in loader:
                if "captions" not in batch:
                    raise ValueError(
                        "evaluation batches need 'captions' (InternVideo2VideoTextCollator(return_captions=True))"
                    )
                batch = self._prepare_inputs(batch)
                media.append(self.accelerator.gather_for_metrics(self._media_embeddings(model, batch).float()))
                captions.extend(self.accelerator.gather_for_metrics(batch["captions"], use_gather_object=True))
            video_embeds = torch.cat(media)
            texts = [caption for video_captions in captions for caption in video_captions]
            text_to_video = [video for video, video_captions in enumerate(captions) for _ in video_captions]
            text_embeds = self._text_embeddings(model, texts)
        model.train(was_training)
        similarity = (video_embeds @ text_embeds.T).cpu().numpy()
        ks = [k for k in (1, 5, 10) if k <= min(similarity.shape)]
        metric = load_metric("text_video_retrieval", keep_in_memory=True)
        results = metric.compute(predictions=similarity.tolist(), text_to_video=text_to_video, ks=ks)
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in results.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _text_embeddings(self, model, texts: list[str]) -> torch.Tensor:
        tokenizer = self.processing_class
        if tokenizer is None:
            raise ValueError("evaluation needs the tokenizer: pass processing_class=tokenizer")
        max_length = getattr(self.data_collator, "max_length", 32)
        embeds = []
        for start in range(0, len(texts), self.args.eval_batch_size):
            encoding = tokenizer(
                texts[start : start + self.args.eval_batch_size], padding="max_length", truncation=True,
                max_length=max_length, return_tensors="pt",
            ).to(self.args.device)
            embeds.append(model.get_text_features(encoding["input_ids"], encoding["attention_mask"]).float())
        return torch.cat(embeds)


class InternVideo2ClipTrainer(InternVideo2Stage2Trainer):
    """`Trainer` for `InternVideo2ClipModel` (spec §4): VTC only, gathered across ranks with gradient, no vision
    masking. Freeze the model first (`model.freeze_for_clip_training()` or peft LoRA via `model.text_lora_config()`).

    Args:
        contrastive_local_loss: see `InternVideo2Stage2Arguments`.
        Other arguments: as `InternVideo2Stage2Trainer` (without the Stage-2 options).
    """

    def __init__(self, model=None, args=None, contrastive_local_loss: bool = False, modality_ratios=None, **kwargs):
        stage2_args = InternVideo2Stage2Arguments(
            vtm_weight=0.0, mlm_weight=0.0, avtc_weight=0.0, avtm_weight=0.0, avmlm_weight=0.0,
            video_mask_ratio=0.0, image_mask_ratio=0.0, freeze_audio=False,
            contrastive_local_loss=contrastive_local_loss,
        )
        super().__init__(model=model, args=args, stage2_args=stage2_args, modality_ratios=modality_ratios, **kwargs)

    def _check_model(self, model) -> None:
        from ..modeling_clip import InternVideo2ClipModel

        if not isinstance(model, InternVideo2ClipModel):
            raise TypeError(f"InternVideo2ClipTrainer trains an InternVideo2ClipModel, got {type(model).__name__}")

    def _apply_freezing(self, model) -> None:
        """The caller chooses what trains (freeze_for_clip_training or peft)."""

    def _compute_losses(self, model, output, inputs: dict) -> dict[str, torch.Tensor]:
        vtc = self.contrastive_loss(output.video_embeds, output.text_embeds, model.temperature, inputs["sample_ids"])
        return {"vtc": vtc}


def is_text_encoder_parameter(name: str, fusion_layer: int) -> bool:
    """Whether an `InternVideo2Model` parameter belongs to the text-only part of the text tower: the embeddings and
    the layers before `fusion_layer`."""
    if name.startswith("text_model.bert.embeddings."):
        return True
    layer = re.match(r"text_model\.bert\.encoder\.layer\.(\d+)\.", name)
    return layer is not None and int(layer.group(1)) < fusion_layer


def _match_logits(model, memory, memory_mask, text_hidden_states, text_attention_mask, *, audio_visual: bool):
    """Adapts `InternVideo2Model.match_logits` to the matching loss's `match_fn` signature."""
    return model.match_logits(memory, text_hidden_states, text_attention_mask, memory_mask, audio_visual=audio_visual)


# ------------------------------------------------------------------------------------------------------------ building


def build_tokenizer(model_args: InternVideo2ModelArguments):
    """Stage 2: `InternVideo2Tokenizer` from a folder's `vocab.txt`; CLIP: the text tower's `AutoTokenizer`."""
    source = model_args.tokenizer_name_or_path or model_args.text_model_name_or_path or model_args.model_name_or_path
    if source is None:
        raise ValueError("pass --tokenizer_name_or_path (or --text_model_name_or_path)")
    if model_args.model_type == "clip":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source)
    from ..processing.tokenization_internvideo2 import InternVideo2Tokenizer

    vocab = os.path.join(source, "vocab.txt")
    if not os.path.isfile(vocab):
        raise FileNotFoundError(f"no vocab.txt in tokenizer folder {source!r}")
    return InternVideo2Tokenizer(vocab=vocab)


def _vision_config(model_args: InternVideo2ModelArguments, data_args: InternVideo2DataArguments):
    from ..configuration_vision import InternVideo2VisionConfig

    overrides = json.loads(model_args.vision_config_overrides) if model_args.vision_config_overrides else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"vision_config_overrides must be a JSON object, got {model_args.vision_config_overrides!r}")
    return InternVideo2VisionConfig.from_preset(
        model_args.vision_preset,
        **{"num_frames": data_args.num_frames, "image_size": data_args.image_size, **overrides},
    )


def _text_config(model_args: InternVideo2ModelArguments, encoder_width: int):
    from ..configuration_text import InternVideo2TextConfig

    overrides = json.loads(model_args.text_config_overrides)
    if not isinstance(overrides, dict):
        raise ValueError(f"text_config_overrides must be a JSON object, got {model_args.text_config_overrides!r}")
    return InternVideo2TextConfig.from_preset("bert-base", **{"encoder_width": encoder_width, **overrides})


def build_model(model_args: InternVideo2ModelArguments, data_args: InternVideo2DataArguments):
    """Loads `model_name_or_path`, or builds a new Stage-2 / CLIP model from a vision and a text starting point."""
    from ..configuration_internvideo2 import InternVideo2Config
    from ..configuration_text import TEXT_ENCODER_PRESETS
    from ..modeling_clip import InternVideo2ClipModel
    from ..modeling_internvideo2 import InternVideo2Model
    from ..modeling_text import InternVideo2TextForMaskedLM
    from ..modeling_vision import InternVideo2VisionModel

    extra = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    model_class = InternVideo2ClipModel if model_args.model_type == "clip" else InternVideo2Model
    if model_args.model_name_or_path:
        return model_class.from_pretrained(model_args.model_name_or_path, **extra)
    new_text_tower = model_args.model_type == "stage2" and model_args.text_config_overrides
    if model_args.text_model_name_or_path is None and not new_text_tower:
        raise ValueError(
            "a new model needs --text_model_name_or_path (or --text_config_overrides for a new Stage-2 text tower), or "
            "pass --model_name_or_path"
        )
    if model_args.vision_model_name_or_path:
        vision = InternVideo2VisionModel.from_pretrained(model_args.vision_model_name_or_path)
    else:
        vision = InternVideo2VisionModel(_vision_config(model_args, data_args))
    if model_args.model_type == "clip":
        return InternVideo2ClipModel.from_vision_text_pretrained(
            vision, model_args.text_model_name_or_path, projection_dim=model_args.projection_dim,
            use_vision_projection=model_args.projection_dim != vision.config.attention_pool_output_size,
            text_pooling=model_args.text_pooling,
        )
    text = None
    if model_args.text_model_name_or_path is None:
        text_config = _text_config(model_args, encoder_width=vision.config.hidden_size)
    else:
        from transformers import AutoConfig

        bert = AutoConfig.from_pretrained(model_args.text_model_name_or_path)
        layers, num_fusion_layers = bert.num_hidden_layers, model_args.num_fusion_layers
        new_layers = model_args.num_new_fusion_layers
        if num_fusion_layers is None and new_layers:
            num_fusion_layers = 0
        if num_fusion_layers is None:
            official = {
                (size["num_hidden_layers"], size["hidden_size"]): size["num_hidden_layers"] - size["fusion_layer"]
                for size in TEXT_ENCODER_PRESETS.values()
            }
            num_fusion_layers = official.get((layers, bert.hidden_size))
            if num_fusion_layers is None:
                raise ValueError(
                    f"pass --num_fusion_layers: {model_args.text_model_name_or_path} ({layers} layers of "
                    f"{bert.hidden_size}) is not a BERT-base or BERT-large size with an official split"
                )
        if not 0 <= num_fusion_layers < layers or num_fusion_layers + new_layers == 0:
            raise ValueError(
                f"num_fusion_layers must be in [1, {layers - 1}] for a {layers}-layer BERT (or 0 with "
                f"--num_new_fusion_layers), got {num_fusion_layers}"
            )
        dropout = model_args.text_dropout
        text = InternVideo2TextForMaskedLM.from_bert_pretrained(
            model_args.text_model_name_or_path, fusion_layer=layers - num_fusion_layers,
            encoder_width=vision.config.hidden_size, num_new_fusion_layers=new_layers, new_mlm_head=True,
            **({} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}),
        )
        text_config = text.config
    config = InternVideo2Config(
        vision_config=vision.config, text_config=text_config, projection_dim=model_args.projection_dim, **extra
    )
    model = InternVideo2Model(config)
    model.vision_model.load_state_dict(vision.state_dict())
    if text is not None:
        model.text_model.load_state_dict(text.state_dict())
    return model


def build_video_text_datasets(
    data_args: InternVideo2DataArguments, *, feature_extractor=None, seed: int = 0
) -> tuple[datasets.Dataset | None, datasets.Dataset | None]:
    """(train, eval) datasets with the Stage-2 training / evaluation transforms set."""
    train = None
    parts = [load_video_text_json(path, data_root=data_args.data_root) for path in data_args.train_files]
    parts += [
        load_video_text_json(
            path, data_root=data_args.data_root, media_type="audio_video",
            audio_visual_caption_key=data_args.audio_visual_caption_key,
        )
        for path in data_args.audio_video_train_files
    ]
    if parts:
        # sample ids must stay unique across files: equal ids are positives of each other in the contrastive loss
        offset, renumbered = 0, []
        for part in parts:
            ids = [offset + sample_id for sample_id in part["sample_id"]]
            renumbered.append(part.remove_columns("sample_id").add_column("sample_id", ids))
            offset = max(ids, default=offset - 1) + 1
        raw = datasets.concatenate_datasets(renumbered)
        if data_args.audio_video_train_files and feature_extractor is None:
            from ..processing.feature_extraction_internvideo2 import InternVideo2FeatureExtractor

            feature_extractor = InternVideo2FeatureExtractor()
        processor = stage2_video_processor(
            num_frames=data_args.num_frames, image_size=data_args.image_size, training=True
        )
        transform = InternVideo2MediaTransform(
            processor, feature_extractor, training=True, seed=seed, max_skipped=data_args.max_skipped_media,
            replacement_dataset=raw,
        )
        train = raw.with_transform(transform)
    evaluation = None
    if data_args.eval_file:
        raw = load_video_text_json(data_args.eval_file, data_root=data_args.data_root)
        processor = stage2_video_processor(num_frames=data_args.num_frames, image_size=data_args.image_size)
        evaluation = raw.with_transform(
            InternVideo2MediaTransform(processor, max_skipped=data_args.max_skipped_media, replacement_dataset=None)
        )
    return train, evaluation


# ------------------------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser(
        (
            InternVideo2ModelArguments,
            InternVideo2DataArguments,
            InternVideo2Stage2Arguments,
            InternVideo2ClipArguments,
            TrainingArguments,
        )
    )
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Trains (when `--train_files` are given) and evaluates (when `--eval_file` is given); returns the metrics."""
    model_args, data_args, stage2_args, clip_args, training_args = parse_args(argv)
    if not (data_args.train_files or data_args.audio_video_train_files or data_args.eval_file):
        raise ValueError("nothing to do: pass --train_files (or --audio_video_train_files) and / or --eval_file")
    if training_args.deepspeed and training_args.device.type == "cpu" and not torch.distributed.is_initialized():
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")
    set_seed(training_args.seed)
    tokenizer = build_tokenizer(model_args)
    model = build_model(model_args, data_args)
    train_dataset, eval_dataset = build_video_text_datasets(data_args, seed=training_args.seed)
    collator = InternVideo2VideoTextCollator(tokenizer, max_length=data_args.max_text_length)
    common = dict(
        args=training_args, processing_class=tokenizer, data_collator=collator, train_dataset=train_dataset,
        eval_dataset=eval_dataset, modality_ratios=parse_ratios(data_args.modality_ratios),
    )
    if model_args.model_type == "clip":
        if clip_args.clip_text_lora:
            import peft

            model = peft.get_peft_model(
                model,
                model.text_lora_config(
                    r=clip_args.clip_lora_r, lora_alpha=clip_args.clip_lora_alpha,
                    lora_dropout=clip_args.clip_lora_dropout, target_modules=clip_args.clip_lora_target_modules or None,
                    train_text_projection=clip_args.clip_train_text_projection,
                ),
            )
        else:
            model.freeze_for_clip_training(train_text_projection=clip_args.clip_train_text_projection)
        trainer = InternVideo2ClipTrainer(
            model=model, contrastive_local_loss=stage2_args.contrastive_local_loss, **common
        )
    else:
        teacher = None
        if stage2_args.teacher_model_name_or_path:
            from ..modeling_vision import InternVideo2VisionModel

            teacher = InternVideo2VisionModel.from_pretrained(stage2_args.teacher_model_name_or_path)
        trainer = InternVideo2Stage2Trainer(model=model, stage2_args=stage2_args, teacher_model=teacher, **common)

    return train_and_evaluate(trainer, training_args, model_card=False)


if __name__ == "__main__":
    main()


__all__ = [
    "InternVideo2ClipTrainer",
    "InternVideo2Stage2LossOutput",
    "InternVideo2Stage2Trainer",
    "build_model",
    "build_tokenizer",
    "build_video_text_datasets",
    "is_text_encoder_parameter",
    "main",
    "parse_args",
]
