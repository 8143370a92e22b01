import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    BertTokenizer,
    PreTrainedTokenizerFast,
)

from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the top-level name needs torchvision

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.data import write_sample_video
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration
from internvideo2.processing.processing_chat import InternVideo2ChatProcessor
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor

FOLDER = Path(__file__).parents[1] / "fixtures" / "chat_full"
FIXTURES_QFORMER = Path(__file__).parents[1] / "fixtures" / "chat_qformer"
MEDIA_TOKEN_ID = 200


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_chat_config(vision_width: int, qformer_layers: int, image_token_id: int | None = None):
    """The config of a tiny random chat model on the fixture's tiny Mistral."""
    llm = json.loads((FOLDER / "llm_config.json").read_text())
    return InternVideo2ChatConfig(
        vision_config=dict(hidden_size=vision_width, num_hidden_layers=1, num_attention_heads=vision_width // 16,
                           intermediate_size=64, image_size=56, num_frames=8, use_attention_pool=False,
                           use_post_layernorm=True, use_separate_image_position_embeddings=True),
        qformer_config=dict(vocab_size=58, hidden_size=32, num_hidden_layers=qformer_layers, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64),
        text_config={k: v for k, v in llm.items() if k not in ("architectures", "torch_dtype")},
        num_query_tokens=4, num_extra_query_tokens=4, media_token_id=MEDIA_TOKEN_ID, image_token_id=image_token_id,
    )


def llm_tokenizer(with_media_token: bool = True):
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FOLDER / "llm_tokenizer" / "tokenizer.json"),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>",
    )
    if with_media_token:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<VID_PLH>"]})
    return tokenizer


def qformer_tokenizer():
    tokenizer = BertTokenizer(str(FOLDER / "qformer_vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return tokenizer


def chat_processor(**kwargs):
    return InternVideo2ChatProcessor(
        InternVideo2VideoProcessor(preset="chat", **kwargs), llm_tokenizer(), qformer_tokenizer()
    )


def official_messages(call: dict) -> list[dict]:
    """The chat() arguments of a fixture call as chat messages."""
    messages = [{"role": "system", "content": call["instruction"]}] if call["instruction"] else []
    turns = [*call["chat_history"], (call["user_prompt"], None)]
    first = [{"type": call["media_type"]}]
    if call["msg"]:
        first.append({"type": "text", "text": call["msg"], "media_message": True})
    first.append({"type": "text", "text": turns[0][0]})
    for index, (question, answer) in enumerate(turns):
        messages.append({"role": "user", "content": first if index == 0 else question})
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
    return messages


@pytest.mark.parametrize("name", ["A_video_one_turn", "B_video_system_msg_history", "C_image_one_turn"])
def test_chat_template_and_ids_reproduce_the_official_prompt(name):
    call = json.loads((FOLDER / "config.json").read_text())["chat_calls"][name]
    inputs = load_file(FOLDER / "inputs.safetensors")
    processor = chat_processor()
    prompt = processor.apply_chat_template(official_messages(call), tokenize=False)
    assert prompt == call["conversation"]
    media = {"videos": [np.zeros((8, 32, 32, 3), np.uint8)]} if call["media_type"] == "video" else {
        "images": [np.zeros((32, 32, 3), np.uint8)]}
    encoded = processor(text=prompt, **media, videos_kwargs={"crop_size": {"height": 56, "width": 56},
                                                             "size": {"shortest_edge": 56}})
    expected = inputs[f"{name}.input_ids"].clone()
    expected[inputs[f"{name}.index"]] = MEDIA_TOKEN_ID
    assert encoded["input_ids"][0].tolist() == expected.tolist()
    assert encoded["attention_mask"].all()


def test_qformer_instruction_tokens_are_the_official_ones():
    outputs = load_file(FOLDER / "outputs.safetensors")
    qformer_config = json.loads((FIXTURES_QFORMER / "config.json").read_text())
    processor = chat_processor()
    prompt = "[INST] <Video>[<VID_PLH>]</Video>[/INST]"
    video = np.zeros((8, 32, 32, 3), np.uint8)
    encoded = processor(text=[prompt, prompt], videos=[video, video],
                        qformer_text=["describe the action step by step.", qformer_config["instructions"][2]])
    ids = encoded["qformer_input_ids"]
    single = outputs["forward_A.qformer_instruction_input_ids"][0]
    assert ids[0, -len(single):].tolist() == single.tolist()  # left padded
    assert (ids[0, : -len(single)] == 0).all() and encoded["qformer_attention_mask"][0].sum() == len(single)
    inputs = load_file(FIXTURES_QFORMER / "inputs.safetensors")
    assert ids[1].tolist() == inputs["instruction_input_ids"][2].tolist()


def test_bad_inputs_give_one_line_errors():
    processor = chat_processor()
    video = np.zeros((8, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"text has 0 \[<VID_PLH>\] .* but 1 videos and 0 images were given"):
        processor(text="[INST] hello [/INST]", videos=[video])
    with pytest.raises(ValueError, match=r"text has 1 \[<VID_PLH>\] .* but 0 videos"):
        processor(text="[INST] <Video>[<VID_PLH>]</Video>[/INST]")
    with pytest.raises(ValueError, match="tokenizer has no '<VID_PLH>' token"):
        InternVideo2ChatProcessor(InternVideo2VideoProcessor(), llm_tokenizer(with_media_token=False), qformer_tokenizer())
    with pytest.raises(ValueError, match="qformer_text has 2 entries for 1 prompts"):
        processor(text="<Video>[<VID_PLH>]</Video>", videos=[video], qformer_text=["a", "b"])
    with pytest.raises(ValueError, match="videos and images in one call need image_media_token"):
        processor(text="[<VID_PLH>][<IMG_PLH>]", videos=[video], images=[np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(ValueError, match="tokenizer has no '<IMG_PLH>' token: .* set the model's image_token_id"):
        InternVideo2ChatProcessor(InternVideo2VideoProcessor(), llm_tokenizer(), qformer_tokenizer(),
                                  image_media_token="<IMG_PLH>")


def register_chat():
    AutoConfig.register("internvideo2_chat", InternVideo2ChatConfig, exist_ok=True)
    AutoModelForImageTextToText.register(InternVideo2ChatConfig, InternVideo2ChatForConditionalGeneration, exist_ok=True)
    AutoVideoProcessor.register(
        InternVideo2ChatConfig, video_processor_classes={"torchvision": InternVideo2VideoProcessor}, exist_ok=True
    )
    AutoProcessor.register(InternVideo2ChatConfig, InternVideo2ChatProcessor, exist_ok=True)


def test_lmms_eval_generic_huggingface_call_sequence(tmp_path):
    """AutoConfig → AutoModelForImageTextToText → AutoProcessor → apply_chat_template → processor(text, videos) →
    generate → batch_decode, on a tiny random model saved with save_pretrained, batch of two (left padding)."""
    register_chat()
    torch.manual_seed(0)
    config = tiny_chat_config(vision_width=64, qformer_layers=2)
    InternVideo2ChatForConditionalGeneration(config).save_pretrained(tmp_path / "model")
    processor = InternVideo2ChatProcessor(
        InternVideo2VideoProcessor(preset="chat", crop_size={"height": 56, "width": 56}, size={"shortest_edge": 56}),
        llm_tokenizer(), qformer_tokenizer(), num_media_tokens=config.num_media_tokens,
    )
    processor.save_pretrained(tmp_path / "model")
    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    write_sample_video(clips[0], num_frames=16, size=64, color="red")
    write_sample_video(clips[1], num_frames=12, size=64, color="blue", shape="square")

    # --- the lmms-eval sequence, unchanged ---
    path = str(tmp_path / "model")
    loaded_config = AutoConfig.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, config=loaded_config).eval()
    loaded = AutoProcessor.from_pretrained(path)
    prompts = [
        loaded.apply_chat_template(
            [{"role": "user", "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": question}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for clip, question in zip(clips, ["What colour is it?", "Describe the shape moving in the video please."])
    ]
    inputs = loaded(text=prompts, videos=[str(c) for c in clips], return_tensors="pt")
    generated = model.generate(**inputs, do_sample=False, max_new_tokens=6, min_new_tokens=6)
    answers = loaded.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    assert type(loaded) is InternVideo2ChatProcessor and type(model) is InternVideo2ChatForConditionalGeneration
    assert inputs["pixel_values_videos"].shape == (2, 8, 3, 56, 56)
    assert inputs["attention_mask"][0, 0] == 0  # the shorter prompt is left padded
    # each row answers as if generated alone
    for row, clip in enumerate(clips):
        alone = loaded(text=prompts[row], videos=[str(clip)], return_tensors="pt")
        single = model.generate(**alone, do_sample=False, max_new_tokens=6, min_new_tokens=6)
        assert loaded.batch_decode(single[:, alone["input_ids"].shape[1]:], skip_special_tokens=True)[0] == answers[row]
        torch.testing.assert_close(generated[row, inputs["input_ids"].shape[1]:], single[0, alone["input_ids"].shape[1]:])


def test_images_and_videos_mix_in_one_call_like_separate_calls(tmp_path):
    """A video prompt, an image prompt and an image-then-video prompt in one call: every row's ids, pixels and
    Q-Former rows are those of the row processed alone, and the model answers each row as it does alone."""
    tokenizer = llm_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<VID_PLH>", "<IMG_PLH>"]})
    video_processor = InternVideo2VideoProcessor(
        preset="chat", crop_size={"height": 56, "width": 56}, size={"shortest_edge": 56}
    )
    processor = InternVideo2ChatProcessor(
        video_processor, tokenizer, qformer_tokenizer(), num_media_tokens=8, image_media_token="<IMG_PLH>"
    )
    processor.save_pretrained(tmp_path)
    processor = InternVideo2ChatProcessor.from_pretrained(tmp_path)
    assert (processor.media_token_id, processor.image_media_token_id) == (MEDIA_TOKEN_ID, MEDIA_TOKEN_ID + 1)
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 255, (8, 40, 48, 3), np.uint8) for _ in range(2)]
    images = [rng.integers(0, 255, (48, 40, 3), np.uint8) for _ in range(2)]
    contents = [[{"type": "video"}], [{"type": "image"}], [{"type": "image"}, {"type": "video"}]]
    questions = ["What colour is it?", "Which shape?", "Does it move?"]
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [*media, {"type": "text", "text": question}]}], tokenize=False
        )
        for media, question in zip(contents, questions)
    ]
    mixed = processor(text=prompts, videos=videos, images=images, qformer_text=questions)
    alone = [
        processor(text=prompts[0], videos=videos[:1], qformer_text=questions[0]),
        processor(text=prompts[1], images=images[:1], qformer_text=questions[1]),
        processor(text=prompts[2], videos=videos[1:], images=images[1:], qformer_text=questions[2]),
    ]
    torch.testing.assert_close(mixed["pixel_values_videos"], torch.cat([alone[0]["pixel_values_videos"],
                                                                        alone[2]["pixel_values_videos"]]))
    torch.testing.assert_close(mixed["pixel_values"], torch.cat([alone[1]["pixel_values"], alone[2]["pixel_values"]]))
    qformer_rows = [row for single in alone for row in single["qformer_input_ids"]]
    for row, single in enumerate(alone):
        ids = single["input_ids"][0]
        assert mixed["input_ids"][row, -len(ids):].tolist() == ids.tolist()
        assert (mixed["attention_mask"][row, : -len(ids)] == 0).all()
    for mixed_row, single_row in zip(mixed["qformer_input_ids"], qformer_rows):
        assert mixed_row[mixed_row != 0].tolist() == single_row[single_row != 0].tolist()
    # placeholder ids in order: image rows use the image token, video rows the media token
    third = alone[2]["input_ids"][0].tolist()
    assert third.index(MEDIA_TOKEN_ID + 1) < third.index(MEDIA_TOKEN_ID)

    torch.manual_seed(0)
    model = InternVideo2ChatForConditionalGeneration(
        tiny_chat_config(vision_width=32, qformer_layers=1, image_token_id=MEDIA_TOKEN_ID + 1)
    ).eval()
    generation = dict(do_sample=False, max_new_tokens=5, min_new_tokens=5)
    answers = model.generate(**mixed, **generation)[:, mixed["input_ids"].shape[1]:]
    assert len({tuple(row.tolist()) for row in answers}) == 3  # the rows answer differently
    for row, single in enumerate(alone):
        generated = model.generate(**single, **generation)[:, single["input_ids"].shape[1]:]
        torch.testing.assert_close(generated[0], answers[row], rtol=0, atol=0)
