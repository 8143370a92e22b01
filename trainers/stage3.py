"""Stage 3 (instruction tuning of InternVideo2-Chat) with the Hugging Face `Trainer`.

Data: the official VideoChat2 instruction JSON (spec §6.3), a list of
`{"video" | "image": path, "QA": [{"i": instruction, "q": question, "a": answer}, ...], "start"?, "end"?}` (start /
end in seconds cut the video before frame sampling). Each record becomes one conversation written with the chat
processor's template (the prompt `generate` sees at inference, spec §5.2): the record's first instruction `i` joins
the system text, the media opens the first user turn, and every QA is a ` [INST] q [/INST]` turn followed by
`a</s>`. Labels are -100 everywhere except on the answer tokens and their `</s>` (loss on answers only).

Training (spec §5.3): the vision tower, the Q-Former, its queries and the projection are trained; the LLM is frozen
under LoRA (`official_lora_config`: r 16, alpha 32, dropout 0.1 on attention, MLP and `lm_head`). Batches hold one
media type (images or videos), mixed like the other stages (`InternVideo2ModalityBatchSampler`). HD
post-training (`--hd_num 6 --num_frames 16`, spec §5.3) feeds every video as its HD sub-videos, one
`<Video>[<VID_PLH>]</Video>` block each, as the processor does at inference.

Saving: checkpoints and `--save_merged False` write the peft adapter (`adapter_model.safetensors`) plus the other
trained weights (`non_lora_trainables.safetensors`); `--save_merged` writes a plain model with LoRA merged in.
`load_stage3_model` loads either.

Command line (`python -m internvideo2.trainers.stage3 --help`; also under `torchrun` / `accelerate launch` /
`deepspeed` with `--deepspeed examples/deepspeed/zero2.json`):

    python -m internvideo2.trainers.stage3 --model_name_or_path chat_stage2 --train_file instructions.json \
        --data_root media --output_dir out --per_device_train_batch_size 4 --learning_rate 2e-5 \
        --num_train_epochs 3 --warmup_steps 0.6 --weight_decay 0.02 --bf16
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import seed_worker

from ..data.mixing import InternVideo2ModalityBatchSampler
from ..modeling_chat import InternVideo2ChatForConditionalGeneration, official_lora_config
from ..processing.processing_chat import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER


NON_LORA_TRAINABLES = "non_lora_trainables.safetensors"
IGNORE_INDEX = -100


# ------------------------------------------------------------------------------------------------------------ data


def load_instruction_json(path: str | os.PathLike, data_root: str | os.PathLike = "") -> list[dict]:
    """Records of an instruction JSON, checked, with the media path joined to `data_root`; each record gets
    `media_type` ("video" / "image") and `path`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"instruction file {path} does not exist")
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list) or not records:
        raise ValueError(f"instruction file {path} must hold a non-empty JSON list of records")
    checked = []
    for index, record in enumerate(records):
        where = f"{path} record {index}"
        kinds = [kind for kind in ("video", "image") if isinstance(record, dict) and kind in record]
        if len(kinds) != 1:
            raise ValueError(f"{where} must have exactly one of 'video' or 'image'")
        qa = record.get("QA")
        if not isinstance(qa, list) or not qa:
            raise ValueError(f"{where} needs a non-empty 'QA' list")
        for turn in qa:
            if not isinstance(turn, dict) or not all(isinstance(turn.get(k), str) for k in ("q", "a")):
                raise ValueError(f"{where}: every QA entry needs string 'q' and 'a' (and optionally 'i')")
        start, end = record.get("start"), record.get("end")
        if (start is None) != (end is None) or (start is not None and not 0 <= float(start) < float(end)):
            raise ValueError(f"{where}: 'start' and 'end' must be given together with 0 <= start < end seconds")
        checked.append(
            {**record, "media_type": kinds[0], "path": str(Path(data_root) / record[kinds[0]]) if data_root else
             record[kinds[0]]}
        )
    return checked


def decode_video_segment(path: str, start: float, end: float) -> np.ndarray:
    """All frames `(T, H, W, 3)` uint8 of `path` whose timestamps lie in [start, end] seconds (PyAV)."""
    import av

    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and start <= frame.time <= end:
                frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError(f"{path} has no frame between {start} and {end} seconds")
    return np.stack(frames)


class InternVideo2InstructionDataset(Dataset):
    """Instruction records -> `{"media_type", "pixels", "qa"}`; videos go through `video_processor` (frames
    `(T, C, H, W)`), images become `(C, H, W)`. With `hd_processor` (an `InternVideo2ChatProcessor` with `hd_num`,
    for HD post-training) videos become their HD sub-videos `(N, T, C, H, W)`. `media_types` lists every record's
    type (for batch grouping)."""

    def __init__(self, records: list[dict], video_processor, video_kwargs: dict | None = None, hd_processor=None):
        if hd_processor is not None and getattr(hd_processor, "hd_num", None) is None:
            raise ValueError("hd_processor must be an InternVideo2ChatProcessor with hd_num set")
        self.records = records
        self.video_processor = video_processor
        self.video_kwargs = dict(video_kwargs or {})
        self.hd_processor = hd_processor

    @property
    def media_types(self) -> list[str]:
        return [record["media_type"] for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        if record["media_type"] == "image":
            image = np.asarray(PIL.Image.open(record["path"]).convert("RGB"))
            pixels = self.video_processor([image[None]], do_sample_frames=False, return_tensors="pt",
                                          **self.video_kwargs)["pixel_values_videos"][0, 0]
        else:
            video = record["path"]
            if record.get("start") is not None:
                video = decode_video_segment(video, float(record["start"]), float(record["end"]))
            if self.hd_processor is not None:
                pixels = self.hd_processor._hd_videos([video], self.video_kwargs)[0]
            else:
                processed = self.video_processor([video], return_tensors="pt", **self.video_kwargs)
                pixels = processed["pixel_values_videos"][0]
        return {"media_type": record["media_type"], "pixels": pixels, "qa": record["QA"]}


def conversation_messages(qa: list[dict], media_type: str, system: str = "") -> list[dict]:
    """Chat messages of one record: system text (+ the first instruction `i`), the media, then every QA turn."""
    instruction = (qa[0].get("i") or "").strip()
    system_text = " ".join(part for part in (system.strip(), instruction) if part)
    messages = [{"role": "system", "content": system_text + " "}] if system_text else []
    for index, turn in enumerate(qa):
        question = [{"type": "text", "text": turn["q"]}]
        messages.append({"role": "user", "content": [{"type": media_type}, *question] if index == 0 else question})
        messages.append({"role": "assistant", "content": turn["a"]})
    return messages


def build_instruction_example(
    processor, messages: list[dict], num_sub_videos: int = 1
) -> tuple[list[int], list[int], str]:
    """`(input_ids, labels, prompt)` of a conversation: the prompt the processor's template writes (with the video
    block repeated `num_sub_videos` times for HD), tokenized as the processor does (one `<s>` per text piece,
    `num_media_tokens` media ids per placeholder); labels keep the tokens that start inside an assistant reply (the
    answer and its `</s>`), the rest is -100."""

    def rendered(prefix: list[dict]) -> str:
        text = processor.apply_chat_template(prefix, tokenize=False)
        has_video = VIDEO_PLACEHOLDER in text
        return processor._repeat_video_blocks([text], [num_sub_videos])[0] if has_video else text

    prompt = rendered(messages)
    answer_spans = []
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            answer_spans.append((len(rendered(messages[:index])), len(rendered(messages[: index + 1]))))
    tokenizer = processor.tokenizer
    input_ids, labels, offset = [], [], 0
    for piece in _split_keeping_placeholders(prompt):
        if piece in (VIDEO_PLACEHOLDER, IMAGE_PLACEHOLDER):
            token_id = processor.media_token_id if piece == VIDEO_PLACEHOLDER else processor.image_media_token_id
            input_ids += [token_id] * processor.num_media_tokens
            labels += [IGNORE_INDEX] * processor.num_media_tokens
        else:
            encoded = tokenizer(piece, return_offsets_mapping=True)
            for token, (begin, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
                # tokens the tokenizer adds (the piece's `<s>`) cover no text: never labelled
                inside = end > begin and any(lo <= offset + begin < hi for lo, hi in answer_spans)
                input_ids.append(token)
                labels.append(token if inside else IGNORE_INDEX)
        offset += len(piece)
    return input_ids, labels, prompt


def _split_keeping_placeholders(prompt: str) -> list[str]:
    pattern = "(" + re.escape(VIDEO_PLACEHOLDER) + "|" + re.escape(IMAGE_PLACEHOLDER) + ")"
    return re.split(pattern, prompt)


@dataclass
class InternVideo2ChatInstructionCollator:
    """Samples of `InternVideo2InstructionDataset` (one media type per batch) -> `input_ids`, `attention_mask`,
    `labels` (right padded), `pixel_values_videos` or `pixel_values`, and the Q-Former instruction
    (`qformer_input_ids` / `qformer_attention_mask`, the record's first `i`, else its first question)."""

    processor: object
    system: str = ""
    max_length: int = 512
    qformer_instruction: bool = True

    def __call__(self, samples: list[dict]) -> dict:
        kinds = {sample["media_type"] for sample in samples}
        if len(kinds) != 1:
            raise ValueError(f"a batch must hold one media type, got {sorted(kinds)} (use the modality batch sampler)")
        rows = []
        sub_videos = [len(s["pixels"]) if s["pixels"].ndim == 5 else 1 for s in samples]
        for sample, count in zip(samples, sub_videos):
            ids, labels, _ = build_instruction_example(
                self.processor, conversation_messages(sample["qa"], sample["media_type"], self.system), count
            )
            if len(ids) > self.max_length:
                raise ValueError(f"a conversation has {len(ids)} tokens, more than max_length={self.max_length}")
            rows.append((ids, labels))
        width = max(len(ids) for ids, _ in rows)
        pad = self.processor.tokenizer.pad_token_id
        batch = {
            "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
            "labels": torch.tensor([labels + [IGNORE_INDEX] * (width - len(labels)) for _, labels in rows]),
        }
        key = "pixel_values" if kinds == {"image"} else "pixel_values_videos"
        hd = samples[0]["pixels"].ndim == 5
        batch[key] = torch.cat([s["pixels"] for s in samples]) if hd else torch.stack([s["pixels"] for s in samples])
        if self.qformer_instruction:
            texts = [
                (sample["qa"][0].get("i") or sample["qa"][0]["q"]).strip()
                for sample, count in zip(samples, sub_videos) for _ in range(count)
            ]
            encoded = self.processor.qformer_tokenizer(
                texts, padding="longest", truncation=True, max_length=self.processor.qformer_max_length,
                padding_side="left", truncation_side="left", return_tensors="pt",
            )
            batch["qformer_input_ids"] = encoded["input_ids"]
            batch["qformer_attention_mask"] = encoded["attention_mask"]
        return batch


# ----------------------------------------------------------------------------------------------------- model


def prepare_stage3_model(
    model: InternVideo2ChatForConditionalGeneration,
    use_lora: bool = True,
    lora_config=None,
    train_vision: bool = True,
    train_qformer: bool = True,
):
    """Stage-3 trainable set: LoRA on the LLM (peft, `official_lora_config()` unless `lora_config`), vision tower,
    Q-Former, queries and projection trainable (each optional). Returns the peft model (or `model` without LoRA)."""
    if not isinstance(model, InternVideo2ChatForConditionalGeneration):
        raise TypeError(f"model must be an InternVideo2ChatForConditionalGeneration, got {type(model).__name__}")
    model.language_model.requires_grad_(not use_lora)
    model.vision_model.requires_grad_(train_vision)
    for module in (model.qformer, model.language_projection):
        module.requires_grad_(train_qformer)
    model.query_tokens.requires_grad_(train_qformer)
    if not use_lora:
        return model
    import peft

    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    peft_model = peft.get_peft_model(model, lora_config or official_lora_config())
    # get_peft_model freezes everything outside the adapter; the Stage-3 modules stay trainable.
    for name, parameter in peft_model.base_model.model.named_parameters():
        if name in trainable:
            parameter.requires_grad_(True)
    return peft_model


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save_stage3_model(model, output_dir: str | os.PathLike, merged: bool = False) -> None:
    """Save a (peft-wrapped) Stage-3 model: the adapter plus `non_lora_trainables.safetensors`, or (`merged`) a
    plain `save_pretrained` folder with LoRA merged (the model passed in stays unmerged)."""
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    if not _is_peft(model):
        model.save_pretrained(output_dir)
        return
    if merged:
        import copy

        copy.deepcopy(model).merge_and_unload().save_pretrained(output_dir)
        return
    model.save_pretrained(output_dir)
    prefix = "base_model.model."
    extra = {
        name[len(prefix):]: parameter.detach().contiguous().cpu()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and "lora_" not in name
    }
    save_file(extra, str(output_dir / NON_LORA_TRAINABLES))


def load_stage3_model(path: str | os.PathLike, base_model_name_or_path: str | None = None, merge: bool = False):
    """Load what `save_stage3_model` wrote: a merged folder directly, an adapter folder onto its base model
    (`base_model_name_or_path`, default the one in adapter_config.json) with the non-LoRA weights; `merge` merges
    the adapter into the returned plain model."""
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds neither a saved model (config.json) nor an adapter")
        return InternVideo2ChatForConditionalGeneration.from_pretrained(path)
    import peft
    from safetensors.torch import load_file

    config = peft.PeftConfig.from_pretrained(str(path))
    base_path = base_model_name_or_path or config.base_model_name_or_path
    if not base_path:
        raise ValueError(f"{path}/adapter_config.json names no base model: pass base_model_name_or_path")
    base = InternVideo2ChatForConditionalGeneration.from_pretrained(base_path)
    if (path / NON_LORA_TRAINABLES).is_file():
        trained = load_file(str(path / NON_LORA_TRAINABLES))
        unknown = sorted(set(trained) - set(base.state_dict()))
        if unknown:
            raise ValueError(f"{path}/{NON_LORA_TRAINABLES} has weights the base model lacks: {unknown[:3]}")
        base.load_state_dict(trained, strict=False)
    model = peft.PeftModel.from_pretrained(base, str(path))
    return model.merge_and_unload() if merge else model


# ---------------------------------------------------------------------------------------------------- trainer


class InternVideo2Stage3Trainer(Trainer):
    """`Trainer` for Stage-3 instruction tuning: single-media-type batches mixed by
    `InternVideo2ModalityBatchSampler` (optional `modality_ratios`, e.g. `{"image": 1, "video": 3}`), the model's own
    answer-only loss, and `save_stage3_model` for checkpoints (adapter + non-LoRA weights)."""

    def __init__(self, *args, modality_ratios: dict[str, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.modality_ratios = modality_ratios

    def get_train_dataloader(self) -> DataLoader:
        dataset = self.train_dataset
        if not isinstance(dataset, InternVideo2InstructionDataset):
            return super().get_train_dataloader()
        groups: dict[str, list[int]] = {}
        for index, kind in enumerate(dataset.media_types):
            groups.setdefault(kind, []).append(index)
        sampler = InternVideo2ModalityBatchSampler(
            groups, self._train_batch_size, ratios=self.modality_ratios, num_processes=self.args.world_size,
            seed=self.args.data_seed or self.args.seed,
        )
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            worker_init_fn=partial(seed_worker, num_workers=self.args.dataloader_num_workers,
                                   rank=self.args.process_index),
        )
        return self.accelerator.prepare(loader)

    def _save(self, output_dir: str | None = None, state_dict=None):
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        save_stage3_model(self.model, output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))


# ------------------------------------------------------------------------------------------------------- CLI


@dataclass
class InternVideo2Stage3Arguments:
    model_name_or_path: str = field(metadata={"help": "saved InternVideo2-Chat model (after Stage 2), with processor"})
    processor_name_or_path: str | None = field(default=None, metadata={"help": "processor folder (default: model)"})
    train_file: str | None = field(default=None, metadata={"help": "instruction JSON (spec §6.3)"})
    data_root: str = field(default="", metadata={"help": "folder the media paths are joined to"})
    num_frames: int | None = field(default=None, metadata={"help": "frames per video (default: the processor's)"})
    system: str = field(default="", metadata={"help": "system text before every conversation"})
    max_text_length: int = field(default=512, metadata={"help": "maximum tokens of a conversation"})
    use_lora: bool = field(default=True, metadata={"help": "LoRA on the LLM (official r 16, alpha 32, dropout 0.1)"})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    train_vision: bool = field(default=True, metadata={"help": "train the vision tower"})
    train_qformer: bool = field(default=True, metadata={"help": "train the Q-Former, queries and projection"})
    qformer_instruction: bool = field(default=True, metadata={"help": "feed the instruction to the Q-Former"})
    hd_num: int | None = field(default=None, metadata={"help": "HD post-training: at most this many tiles a video"})
    hd_local_size: int = field(default=224, metadata={"help": "HD tile size"})
    hd_padding: bool = field(default=False, metadata={"help": "HD padding grid rule (InternLM-XComposer2-HD)"})
    save_merged: bool = field(default=False, metadata={"help": "save the final model with LoRA merged"})
    modality_ratios: str | None = field(default=None, metadata={"help": "e.g. 'image=1,video=3' steps per type"})


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((InternVideo2Stage3Arguments, TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Instruction-tune a saved chat model and save it (adapter + non-LoRA weights, or merged)."""
    from ..processing.processing_chat import InternVideo2ChatProcessor
    from .arguments import parse_ratios

    args, training_args = parse_args(argv)
    if not args.train_file:
        raise ValueError("nothing to do: pass --train_file")
    set_seed(training_args.seed)
    processor = InternVideo2ChatProcessor.from_pretrained(args.processor_name_or_path or args.model_name_or_path)
    model = InternVideo2ChatForConditionalGeneration.from_pretrained(args.model_name_or_path)
    model = prepare_stage3_model(
        model, args.use_lora, official_lora_config(args.lora_r, args.lora_alpha, args.lora_dropout),
        args.train_vision, args.train_qformer,
    )
    video_kwargs = {"num_frames": args.num_frames} if args.num_frames else {}
    if args.hd_num is not None:
        processor.hd_num, processor.hd_local_size = args.hd_num, args.hd_local_size
        processor.hd_padding = args.hd_padding
    dataset = InternVideo2InstructionDataset(
        load_instruction_json(args.train_file, args.data_root), processor.video_processor, video_kwargs,
        hd_processor=processor if args.hd_num is not None else None,
    )
    training_args.remove_unused_columns = False
    trainer = InternVideo2Stage3Trainer(
        model=model, args=training_args, train_dataset=dataset,
        data_collator=InternVideo2ChatInstructionCollator(
            processor, args.system, args.max_text_length, args.qformer_instruction
        ),
        modality_ratios=parse_ratios(args.modality_ratios),
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    if trainer.is_world_process_zero():
        save_stage3_model(trainer.model, training_args.output_dir, merged=args.save_merged)
        processor.save_pretrained(training_args.output_dir)
    trainer.save_state()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    return result.metrics


if __name__ == "__main__":
    main()


__all__ = [
    "InternVideo2ChatInstructionCollator",
    "InternVideo2InstructionDataset",
    "InternVideo2Stage3Arguments",
    "InternVideo2Stage3Trainer",
    "build_instruction_example",
    "conversation_messages",
    "decode_video_segment",
    "load_instruction_json",
    "load_stage3_model",
    "main",
    "parse_args",
    "prepare_stage3_model",
    "save_stage3_model",
]
