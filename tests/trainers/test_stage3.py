import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import BertTokenizer, MistralConfig, PreTrainedTokenizerFast

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.data import generate_dataset, render_frames, write_video
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration, LORA_TARGET_MODULES
from internvideo2.processing.processing_chat import InternVideo2ChatProcessor
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor
from internvideo2.trainers.stage3 import (
    NON_LORA_TRAINABLES,
    InternVideo2ChatInstructionCollator,
    InternVideo2InstructionDataset,
    build_instruction_example,
    conversation_messages,
    decode_video_segment,
    load_instruction_json,
    load_stage3_model,
    main,
    prepare_stage3_model,
    save_stage3_model,
)

FOLDER = Path(__file__).parents[1] / "fixtures" / "chat_full"
MEDIA_TOKEN_ID = 200


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_processor(size: int = 56, image_media_token: str | None = None) -> InternVideo2ChatProcessor:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FOLDER / "llm_tokenizer" / "tokenizer.json"),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<VID_PLH>", *filter(None, [image_media_token])]})
    qformer_tokenizer = BertTokenizer(str(FOLDER / "qformer_vocab.txt"))
    qformer_tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    video_processor = InternVideo2VideoProcessor(
        preset="chat", num_frames=4, crop_size={"height": size, "width": size}, size={"shortest_edge": size}
    )
    return InternVideo2ChatProcessor(
        video_processor, tokenizer, qformer_tokenizer, num_media_tokens=8, image_media_token=image_media_token
    )


def tiny_model(seed: int = 0) -> InternVideo2ChatForConditionalGeneration:
    llm = json.loads((FOLDER / "llm_config.json").read_text())
    llm = {k: v for k, v in llm.items() if k not in ("architectures", "model_type", "torch_dtype")}
    # LoRA adapts an LLM that already carries information from the media rows to the answer, as a pretrained one
    # does. At the usual 0.02 init this 64-wide random LLM shrinks every branch by ~0.02 * sqrt(64) = 0.16, so the
    # frozen base passes almost nothing on; at 1 / sqrt(64) each layer keeps its input's scale.
    llm["initializer_range"] = llm["hidden_size"] ** -0.5
    config = InternVideo2ChatConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           image_size=56, num_frames=4, use_attention_pool=False, use_post_layernorm=True,
                           use_separate_image_position_embeddings=True),
        # a wider Q-Former init: at 0.02 the tiny cross-attention averages the video away and nothing is learned
        qformer_config=dict(vocab_size=58, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, initializer_range=0.2,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        text_config=MistralConfig(**llm).to_dict(),
        num_query_tokens=4, num_extra_query_tokens=4, media_token_id=MEDIA_TOKEN_ID,
    )
    torch.manual_seed(seed)
    return InternVideo2ChatForConditionalGeneration(config)


QA = [{"i": "Watch closely.", "q": "What colour is it?", "a": "red"}, {"q": "And the shape?", "a": "a circle"}]


def test_conversation_ids_match_the_processor_and_labels_cover_answers_only():
    processor = tiny_processor()
    messages = conversation_messages(QA, "video", system="Be brief.")
    ids, labels, prompt = build_instruction_example(processor, messages)
    assert prompt.startswith("Be brief. Watch closely. [INST] <Video>[<VID_PLH>]</Video>[/INST]")
    # the inference route: the processor tokenizes the same prompt
    video = np.zeros((4, 56, 56, 3), np.uint8)
    assert processor(text=prompt, videos=[video])["input_ids"][0].tolist() == ids
    labelled = [label for label in labels if label != -100]
    # an independent spelling of the targets: each answer then the eos, nothing of the questions or media
    assert processor.tokenizer.decode(labelled) == "red</s>a circle</s>"
    assert labelled.count(processor.tokenizer.eos_token_id) == 2
    first = labels.index(labelled[0])
    assert all(label == -100 for label in labels[:first]) and MEDIA_TOKEN_ID not in labelled


def test_image_conversations_use_the_image_placeholder_token_like_the_processor():
    processor = tiny_processor(image_media_token="<IMG_PLH>")
    ids, _, prompt = build_instruction_example(processor, conversation_messages(QA, "image"))
    assert processor(text=prompt, images=[np.zeros((56, 56, 3), np.uint8)])["input_ids"][0].tolist() == ids
    assert processor.image_media_token_id == MEDIA_TOKEN_ID + 1
    assert ids.count(MEDIA_TOKEN_ID + 1) == processor.num_media_tokens and MEDIA_TOKEN_ID not in ids


def test_collator_right_pads_and_takes_one_media_type():
    processor = tiny_processor()
    collator = InternVideo2ChatInstructionCollator(processor)
    short = {"media_type": "image", "pixels": torch.zeros(3, 56, 56), "qa": QA[:1]}
    long = {"media_type": "image", "pixels": torch.ones(3, 56, 56), "qa": QA}
    batch = collator([short, long])
    alone, _, _ = build_instruction_example(processor, conversation_messages(QA[:1], "image"))
    assert batch["input_ids"][0, : len(alone)].tolist() == alone
    assert batch["attention_mask"][0].tolist() == [1] * len(alone) + [0] * (batch["input_ids"].shape[1] - len(alone))
    assert (batch["labels"][0, len(alone):] == -100).all()
    assert batch["pixel_values"].shape == (2, 3, 56, 56) and "pixel_values_videos" not in batch
    expected_q = processor.qformer_tokenizer("Watch closely.")["input_ids"]
    assert batch["qformer_input_ids"][0, -len(expected_q):].tolist() == expected_q
    with pytest.raises(ValueError, match="a batch must hold one media type"):
        collator([short, {**long, "media_type": "video"}])
    with pytest.raises(ValueError, match="more than max_length=5"):
        InternVideo2ChatInstructionCollator(processor, max_length=5)([short])


def test_hd_samples_collate_like_the_hd_processor_and_train(tmp_path):
    processor = tiny_processor()
    processor.hd_num, processor.hd_local_size = 4, 56
    video = np.random.default_rng(0).integers(0, 255, (8, 60, 130, 3), np.uint8)
    frames_path = tmp_path / "wide.mp4"
    write_video(frames_path, video, fps=8)
    records = [{"video": "wide.mp4", "QA": QA, "media_type": "video", "path": str(frames_path)}] * 2
    dataset = InternVideo2InstructionDataset(records, processor.video_processor, hd_processor=processor)
    batch = InternVideo2ChatInstructionCollator(processor)([dataset[0], dataset[1]])
    # the inference route: the HD processor on the prompt the template writes
    prompt = build_instruction_example(processor, conversation_messages(QA, "video"))[2]
    reference = processor(text=prompt, videos=[str(frames_path)], qformer_text="Watch closely.")
    num_sub_videos = len(reference["pixel_values_videos"])
    assert num_sub_videos == 3  # a 2x1 grid plus the global view
    assert batch["input_ids"][0].tolist() == reference["input_ids"][0].tolist()
    torch.testing.assert_close(batch["pixel_values_videos"][:num_sub_videos], reference["pixel_values_videos"])
    assert batch["qformer_input_ids"].shape[0] == 2 * num_sub_videos
    model = prepare_stage3_model(tiny_model())
    loss = model(**batch).loss
    loss.backward()
    patch_gradient = model.base_model.model.vision_model.embeddings.patch_embedding.weight.grad
    assert torch.isfinite(loss) and patch_gradient.abs().sum() > 0
    with pytest.raises(ValueError, match="hd_processor must be an InternVideo2ChatProcessor with hd_num set"):
        InternVideo2InstructionDataset(records, processor.video_processor, hd_processor=tiny_processor())


def test_instruction_json_checks_and_video_segments(tmp_path):
    frames = np.zeros((16, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(16) * 15)[:, None, None]  # frame i has red level 15 i
    write_video(tmp_path / "v.mp4", frames, fps=8)
    segment = decode_video_segment(str(tmp_path / "v.mp4"), 0.5, 1.0)
    times = np.arange(16) / 8
    expected = np.flatnonzero((times >= 0.5) & (times <= 1.0))
    assert len(segment) == len(expected)
    np.testing.assert_allclose(segment[:, 16, 16, 0], expected * 15, atol=6)

    good = [{"video": "v.mp4", "QA": QA, "start": 0.5, "end": 1.0}, {"image": "i.png", "QA": QA[:1]}]
    (tmp_path / "a.json").write_text(json.dumps(good))
    records = load_instruction_json(tmp_path / "a.json", tmp_path)
    assert [r["media_type"] for r in records] == ["video", "image"]
    assert records[0]["path"] == str(tmp_path / "v.mp4")
    dataset = InternVideo2InstructionDataset(records[:1], tiny_processor().video_processor)
    assert dataset[0]["pixels"].shape == (4, 3, 56, 56)
    bad = {
        "exactly one of 'video' or 'image'": [{"QA": QA}],
        "non-empty 'QA' list": [{"video": "v.mp4", "QA": []}],
        "string 'q' and 'a'": [{"video": "v.mp4", "QA": [{"q": "x"}]}],
        "'start' and 'end' must be given together": [{"video": "v.mp4", "QA": QA, "start": 2, "end": 1}],
    }
    for message, records in bad.items():
        (tmp_path / "b.json").write_text(json.dumps(records))
        with pytest.raises(ValueError, match=message):
            load_instruction_json(tmp_path / "b.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_instruction_json(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="has no frame between 5.0 and 6.0 seconds"):
        decode_video_segment(str(tmp_path / "v.mp4"), 5.0, 6.0)


def test_lora_targets_the_llm_only_and_stage3_modules_stay_trainable():
    model = tiny_model()
    expected = {
        name for name, module in model.language_model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in LORA_TARGET_MODULES
    }
    peft_model = prepare_stage3_model(model)
    wrapped = {
        name.removeprefix("base_model.model.language_model.") for name, module in peft_model.named_modules()
        if hasattr(module, "lora_A") and isinstance(module.lora_A, torch.nn.ModuleDict) and module.lora_A
    }
    assert wrapped == expected and "lm_head" in wrapped
    lora = next(m for m in peft_model.modules() if hasattr(m, "lora_A") and m.lora_A)
    assert lora.r["default"] == 16 and lora.scaling["default"] == 2.0 and lora.lora_dropout["default"].p == 0.1
    for name, parameter in peft_model.named_parameters():
        inner = name.removeprefix("base_model.model.")
        should_train = "lora_" in name or not inner.startswith("language_model.")
        assert parameter.requires_grad == should_train, name
    with pytest.raises(TypeError, match="must be an InternVideo2ChatForConditionalGeneration"):
        prepare_stage3_model(torch.nn.Linear(2, 2))


def test_adapter_and_merged_saves_reload_to_equal_logits(tmp_path):
    base = tiny_model()
    base.save_pretrained(tmp_path / "base")
    model = prepare_stage3_model(InternVideo2ChatForConditionalGeneration.from_pretrained(tmp_path / "base"))
    with torch.no_grad():  # a trained state: non-zero LoRA B and changed Stage-3 weights
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()
    save_stage3_model(model, tmp_path / "adapter")
    save_stage3_model(model, tmp_path / "merged", merged=True)
    assert (tmp_path / "adapter" / NON_LORA_TRAINABLES).is_file()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()

    processor = tiny_processor()
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What colour is it?"}]}],
        tokenize=False,
    )
    inputs = processor(text=prompt, videos=[np.random.default_rng(0).integers(0, 255, (4, 56, 56, 3), np.uint8)],
                       qformer_text="What colour is it?")
    with torch.no_grad():
        reference = model(**inputs).logits
        assert not torch.allclose(reference, base.eval()(**inputs).logits, atol=1e-3)
        for loaded in (
            load_stage3_model(tmp_path / "adapter"),
            load_stage3_model(tmp_path / "adapter", merge=True),
            load_stage3_model(tmp_path / "merged"),
        ):
            torch.testing.assert_close(loaded.eval()(**inputs).logits, reference, rtol=1e-5, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="holds neither a saved model"):
        load_stage3_model(tmp_path / "nothing")


COLOUR_QUESTION = "What colour is the shape?"
SHAPE_QUESTION = "What shape is it?"


def held_out_accuracy(model, processor, root, samples) -> dict[str, float]:
    """Greedy answers through `generate`, scored by whether the reply starts with the right word."""
    right = {"colour": 0, "shape": 0}
    for sample in samples:
        asked = (("colour", COLOUR_QUESTION, sample.color), ("shape", SHAPE_QUESTION, sample.shape))
        for key, question, answer in asked:
            prompt = processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}], tokenize=False
            )
            inputs = processor(text=prompt, videos=[str(root / sample.path)], qformer_text=question)
            generated = model.generate(**inputs, do_sample=False, max_new_tokens=9)
            reply = processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
            right[key] += reply.strip().startswith(answer)
    return {key: count / len(samples) for key, count in right.items()}


# Held out: one shape per colour, so every colour and shape is still seen in training, each with two partners.
HELD_OUT = [("red", "circle", "left_to_right"), ("green", "square", "left_to_right"),
            ("blue", "triangle", "left_to_right")]


def instruction_tune(tmp_path: Path, seed: int = 0, epochs: int = 12) -> dict:
    """Instruction tuning through the CLI, LoRA on the LLM (official r 16, alpha 32, dropout 0.1), on QA about the
    colour and shape of generated videos plus colour QA on stills (images mixed with videos); held-out accuracy
    through `generate` before and after, the LLM's base weights before and after."""
    start = time.perf_counter()
    colors, shapes = ("red", "green", "blue"), ("circle", "square", "triangle")
    dataset = generate_dataset(tmp_path / "data", 60, 12, num_frames=4, size=64, colors=colors, shapes=shapes,
                               motions=("left_to_right",), held_out=HELD_OUT, max_test_per_combination=4, seed=0)
    records = []
    for sample in dataset.train:
        records.append({"video": sample.path, "QA": [{"i": "", "q": COLOUR_QUESTION, "a": sample.color}]})
        records.append({"video": sample.path, "QA": [{"q": SHAPE_QUESTION, "a": sample.shape}]})
    for index, sample in enumerate(dataset.train[:24]):  # image instructions: a middle frame as a still
        frame = render_frames(sample, num_frames=4, size=64)[2]
        PIL.Image.fromarray(frame).save(tmp_path / "data" / f"still{index}.png")
        records.append({"image": f"still{index}.png", "QA": [{"q": COLOUR_QUESTION, "a": sample.color}]})
    (tmp_path / "train.json").write_text(json.dumps(records))
    processor = tiny_processor()
    tiny_model(seed).save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    base = InternVideo2ChatForConditionalGeneration.from_pretrained(tmp_path / "base").eval()
    before = held_out_accuracy(base, processor, tmp_path / "data", dataset.test)
    main([
        "--model_name_or_path", str(tmp_path / "base"), "--train_file", str(tmp_path / "train.json"),
        "--data_root", str(tmp_path / "data"), "--output_dir", str(tmp_path / "out"), "--use_cpu",
        "--per_device_train_batch_size", "8", "--num_train_epochs", str(epochs), "--learning_rate", "1e-3",
        "--warmup_steps", "5", "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1000",
        "--disable_tqdm", "true", "--seed", str(seed),
    ])
    trained = load_stage3_model(tmp_path / "out").eval()
    after = held_out_accuracy(trained, processor, tmp_path / "data", dataset.test)
    llm_weight = "language_model.model.layers.0.self_attn.q_proj.weight"
    return dict(
        before=before, after=after, seconds=time.perf_counter() - start, steps=epochs * -(-len(records) // 8),
        num_test=len(dataset.test), base_llm_weight=base.state_dict()[llm_weight],
        trained_llm_weight=trained.base_model.model.state_dict()[llm_weight.replace("weight", "base_layer.weight")],
        adapter_b=trained.base_model.model.state_dict()[llm_weight.replace("weight", "lora_B.default.weight")],
    )


def test_lora_instruction_tuning_learns_held_out_colours(tmp_path):
    """The held-out colour accuracy, measured with `generate` on colour/shape combinations never seen in training,
    rises from chance (1/3) to well above it while the LLM's own weights stay as they were: the answer is learned
    through LoRA and the trained vision path. Shapes are not learned at this size (colour is the cue the tiny vision
    tower picks up; on held-out clips the model names a shape seen with that colour in training): printed only."""
    result = instruction_tune(tmp_path)
    print(f"\nheld-out accuracy before {result['before']}, after {result['after']} (chance 1/3); "
          f"{result['num_test']} held-out clips, {result['steps']} steps, {result['seconds']:.0f} s")
    assert result["before"]["colour"] <= 0.5
    assert result["after"]["colour"] >= 0.75
    torch.testing.assert_close(result["trained_llm_weight"], result["base_llm_weight"], rtol=0, atol=0)
    assert result["adapter_b"].abs().sum() > 0


def test_lora_instruction_tuning_runs_under_deepspeed_zero2(tmp_path):
    """The Stage-3 command with the project's ZeRO-2 config (one CPU process): LoRA and the vision path train, the
    LLM's base weights stay, and the saved adapter loads."""
    colors, shapes = ("red", "green"), ("circle", "square")
    generate_dataset(tmp_path / "data", 8, 2, num_frames=4, size=56, colors=colors, shapes=shapes,
                     motions=("left_to_right",), held_out=None, seed=0)
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    records = [{"video": s["path"], "QA": [{"q": COLOUR_QUESTION, "a": s["color"]}]} for s in manifest["train"]]
    (tmp_path / "train.json").write_text(json.dumps(records))
    tiny_model().save_pretrained(tmp_path / "base")
    tiny_processor().save_pretrained(tmp_path / "base")
    script = textwrap.dedent(
        """
        import sys
        from internvideo2.trainers.stage3 import main
        root, config = sys.argv[1], sys.argv[2]
        main(["--model_name_or_path", f"{root}/base", "--train_file", f"{root}/train.json", "--data_root",
              f"{root}/data", "--output_dir", f"{root}/out", "--use_cpu", "--per_device_train_batch_size", "4",
              "--max_steps", "2", "--learning_rate", "1e-3", "--save_strategy", "no", "--report_to", "none",
              "--disable_tqdm", "true", "--deepspeed", config])
        print("ok")
        """
    )
    config = Path(__file__).parents[2] / "examples" / "deepspeed" / "zero2.json"
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29563",
               OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(config)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
    base = InternVideo2ChatForConditionalGeneration.from_pretrained(tmp_path / "base").state_dict()
    trained = load_stage3_model(tmp_path / "out", merge=False).base_model.model.state_dict()
    weight = "language_model.model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(trained[weight.replace("weight", "base_layer.weight")], base[weight], rtol=0, atol=0)
    assert trained[weight.replace("weight", "lora_B.default.weight")].abs().sum() > 0
    assert not torch.equal(trained["language_projection.weight"], base["language_projection.weight"])
