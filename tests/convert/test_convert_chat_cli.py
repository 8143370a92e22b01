"""`python -m internvideo2.convert chat` on a tiny checkpoint in the released layout (the chat_full fixture's weights
written as safetensors shards + index, or as one file), reloaded with the Auto classes and compared with the
official golden outputs."""

import json
import shutil

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, PreTrainedTokenizerFast

import internvideo2  # noqa: F401 - registers the Auto classes
from internvideo2.convert.__main__ import ADAPTER_FOLDER, main
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration
from internvideo2.processing.processing_chat import InternVideo2ChatProcessor

from ..conftest import FIXTURES
from ..test_modeling_chat import MEDIA_TOKEN_ID, call_ids, tiny_chat_config

FOLDER = FIXTURES / "chat_full"
HEADS = ["--num-attention-heads", "4", "--qformer-num-attention-heads", "4"]  # tiny widths are no released preset
ATOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def official():
    return (
        load_file(FOLDER / "state_dict.safetensors"),
        load_file(FOLDER / "inputs.safetensors"),
        load_file(FOLDER / "outputs.safetensors"),
    )


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """What a user downloads beside the checkpoint: the LLM's config.json folder, its tokenizer folder (saved with
    save_pretrained, as on the Hub) and bert-base-uncased's vocab.txt (here the fixture's tiny ones)."""
    root = tmp_path_factory.mktemp("assets")
    (root / "llm").mkdir()
    shutil.copy(FOLDER / "llm_config.json", root / "llm" / "config.json")
    PreTrainedTokenizerFast(
        tokenizer_file=str(FOLDER / "llm_tokenizer" / "tokenizer.json"),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    ).save_pretrained(root / "tokenizer")
    (root / "bert").mkdir()
    shutil.copy(FOLDER / "qformer_vocab.txt", root / "bert" / "vocab.txt")
    return root


def write_sharded(state: dict, folder, num_shards: int = 3) -> None:
    """`model-0000i-of-0000n.safetensors` shards and `model.safetensors.index.json`, as the released repos hold."""
    folder.mkdir()
    keys = sorted(state)
    weight_map = {}
    for index in range(num_shards):
        name = f"model-{index + 1:05d}-of-{num_shards:05d}.safetensors"
        part = keys[index::num_shards]
        save_file({k: state[k].contiguous() for k in part}, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    index_file = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                  "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_file))


def without_metadata(config: dict) -> dict:
    """A config dict without what saving, loading or the LLM's config.json add (names, dtype, versions)."""
    metadata = {"architectures", "_name_or_path", "dtype", "transformers_version"}
    return {k: without_metadata(v) if isinstance(v, dict) else v for k, v in config.items() if k not in metadata}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_sharded_checkpoint_with_tokenizers_reproduces_the_official_chat(tmp_path, official, assets):
    state, inputs, outputs = official
    write_sharded(state, tmp_path / "InternVideo2-Chat-8B")
    output = tmp_path / "converted"
    assert main(["chat", str(tmp_path / "InternVideo2-Chat-8B"), str(output), "--llm-config", str(assets / "llm"),
                 "--tokenizer", str(assets / "tokenizer"), "--qformer-tokenizer", str(assets / "bert"), *HEADS]) == 0

    config = AutoConfig.from_pretrained(output)
    # the inferred config is the one the fixture was generated with (file metadata aside)
    assert without_metadata(config.to_dict()) == without_metadata(tiny_chat_config().to_dict())

    model = AutoModelForImageTextToText.from_pretrained(output).eval()
    processor = AutoProcessor.from_pretrained(output)
    assert type(model) is InternVideo2ChatForConditionalGeneration and type(processor) is InternVideo2ChatProcessor
    assert model.dtype == torch.float32 and processor.hd_num is None

    # the processor writes the official prompt and ids, with our media token where the 96 visual rows go
    call = json.loads((FOLDER / "config.json").read_text())["chat_calls"]["A_video_one_turn"]
    assert (call["instruction"], call["msg"], call["chat_history"], call["media_type"]) == (None, "", [], "video")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": call["user_prompt"]}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False)
    assert prompt == call["conversation"]
    question = call["user_prompt"]  # the Q-Former instruction of the fixture's forward_A
    encoded = processor(text=prompt, videos=[np.zeros((8, 64, 64, 3), np.uint8)], qformer_text=question)
    ids, qformer = encoded["input_ids"], encoded["qformer_input_ids"]
    assert ids.tolist() == call_ids("A_video_one_turn").tolist()
    assert processor.tokenizer.convert_tokens_to_ids("<VID_PLH>") == model.config.media_token_id == MEDIA_TOKEN_ID
    torch.testing.assert_close(qformer, outputs["forward_A.qformer_instruction_input_ids"], rtol=0, atol=0)
    assert encoded["pixel_values_videos"].shape == (1, 4, 3, 56, 56)  # the chat tower's frames and size

    video = inputs["media.video"][None]
    with torch.no_grad():
        plain = model(input_ids=ids, pixel_values_videos=video).logits
        instructed = model(input_ids=ids, pixel_values_videos=video, qformer_input_ids=qformer).logits
    torch.testing.assert_close(plain, outputs["forward_A.lora.no_instruction.logits"], **ATOL)  # LoRA merged
    torch.testing.assert_close(instructed, outputs["forward_A.lora.with_instruction.logits"], **ATOL)
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=video,
                               do_sample=False, max_new_tokens=5, min_new_tokens=1)
    torch.testing.assert_close(generated[:, ids.shape[1]:], outputs["A_video_one_turn.lora.generated_ids"], rtol=0,
                               atol=0)

    report = json.loads((output / "conversion_report.json").read_text())
    dropped = {k for keys in report["dropped"].values() for k in keys}
    fused_qkv = sum(k.endswith("attn.qkv.weight") for k in state)  # one key in, three out
    assert report["num_mapped"] + len(dropped) == len(state) + 2 * fused_qkv
    assert dropped == {"project_down.weight", "project_down.bias", "qformer.bert.embeddings.position_ids"}
    assert report["lora"] == "merge" and report["adapter_folder"] is None
    assert not list(tmp_path.glob(".converting-*"))  # the staging folder is gone


def test_adapter_mode_keeps_lora_as_a_peft_adapter_that_loads_onto_the_model(tmp_path, official, assets, capsys):
    state, inputs, outputs = official
    save_file(state, tmp_path / "model.safetensors")
    output = tmp_path / "converted"
    assert main(["chat", str(tmp_path / "model.safetensors"), str(output), "--llm-config",
                 str(assets / "llm" / "config.json"), "--lora", "adapter", *HEADS]) == 0
    assert "only the model is written" in capsys.readouterr().err
    assert not (output / "processor_config.json").exists() and not (output / "adapter_config.json").exists()

    base = AutoModelForImageTextToText.from_pretrained(output).eval()
    assert base.config.media_token_id == MEDIA_TOKEN_ID  # one past the LLM vocabulary without a tokenizer
    # the base weights are the released ones, untouched by the LoRA
    q_proj = base.language_model.model.layers[0].self_attn.q_proj.weight
    torch.testing.assert_close(q_proj, state["lm.base_model.model.model.layers.0.self_attn.q_proj.weight"], rtol=0,
                               atol=0)
    adapter_file = load_file(output / ADAPTER_FOLDER / "adapter_model.safetensors")
    assert all(".lora_A." in k or ".lora_B." in k for k in adapter_file)
    assert len(adapter_file) == 2 * (2 * 7 + 1)  # 2 layers x 7 projections + lm_head, A and B each
    adapter_config = json.loads((output / ADAPTER_FOLDER / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (16, 32)
    assert adapter_config["base_model_name_or_path"] == str(output.resolve())

    ids, video = call_ids("A_video_one_turn"), inputs["media.video"][None]
    with torch.no_grad():
        without_lora = base(input_ids=ids, pixel_values_videos=video).logits
        lora = PeftModel.from_pretrained(base, output / ADAPTER_FOLDER).eval()
        with_lora = lora(input_ids=ids, pixel_values_videos=video).logits
    torch.testing.assert_close(without_lora, outputs["forward_A.nolora.no_instruction.logits"], **ATOL)
    torch.testing.assert_close(with_lora, outputs["forward_A.lora.no_instruction.logits"], **ATOL)


def test_bfloat16_pickle_merges_lora_in_float32(tmp_path, official, assets):
    """A `.pt` file with bf16 base weights and float32 LoRA (the released dtypes) saved as bf16: each merged weight is
    W + (alpha / r) B A computed in float32 and rounded once."""
    state, _, _ = official
    released = {k: v.bfloat16() if v.is_floating_point() and ".lora_" not in k else v for k, v in state.items()}
    torch.save({"model": released}, tmp_path / "chat.pt")
    output = tmp_path / "converted"
    assert main(["chat", str(tmp_path / "chat.pt"), str(output), "--llm-config", str(assets / "llm"),
                 "--dtype", "bfloat16", *HEADS]) == 0
    model = AutoModelForImageTextToText.from_pretrained(output)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    stem = "lm.base_model.model.model.layers.1.mlp.down_proj"
    a, b = state[f"{stem}.lora_A.default.weight"], state[f"{stem}.lora_B.default.weight"]
    merged = (released[f"{stem}.weight"].float() + 32 / 16 * (b @ a)).bfloat16()
    torch.testing.assert_close(model.language_model.model.layers[1].mlp.down_proj.weight, merged, rtol=0, atol=0)
    torch.testing.assert_close(model.vision_model.post_layernorm.weight, released["vision_layernorm.weight"], rtol=0,
                               atol=0)


def test_hd_processor_tiles_like_the_official_hd_code(tmp_path, official, assets):
    state, _, _ = official
    write_sharded(state, tmp_path / "ckpt", num_shards=2)
    index = str(tmp_path / "ckpt" / "model.safetensors.index.json")  # the index file names the checkpoint too
    tokenizers = ["--tokenizer", str(assets / "tokenizer"), "--qformer-tokenizer", str(assets / "bert" / "vocab.txt")]
    output = tmp_path / "hd"
    # 28-pixel tiles to match the fixture's cases (the released HD model tiles at its 224 image size)
    assert main(["chat", index, str(output), "--llm-config", str(assets / "llm"), *tokenizers, "--hd",
                 "--hd-local-size", "28", *HEADS]) == 0
    processor = AutoProcessor.from_pretrained(output)
    assert (processor.hd_num, processor.hd_padding, processor.hd_add_global) == (6, False, True)  # spec §5.3

    hd_inputs = load_file(FIXTURES / "chat_hd" / "inputs.safetensors")
    hd_outputs = load_file(FIXTURES / "chat_hd" / "outputs.safetensors")
    frames = hd_inputs["nopad_T2_50x90_ls28.frames"].permute(0, 2, 3, 1).numpy()  # (T, H, W, C) uint8
    encoded = processor(text="[INST] <Video>[<VID_PLH>]</Video>[/INST]", videos=[frames],
                        videos_kwargs={"do_sample_frames": False})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    tiles = hd_outputs["nopad_T2_50x90_ls28.tiles"].permute(0, 2, 1, 3, 4)  # official (N, C, T, H, W)
    torch.testing.assert_close(encoded["pixel_values_videos"], (tiles / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    assert int((encoded["input_ids"] == MEDIA_TOKEN_ID).sum()) == len(tiles) * 96  # one block per sub-video

    assert main(["chat", str(tmp_path / "ckpt"), str(output), "--llm-config", str(assets / "llm"), *tokenizers,
                 "--hd", "--hd-num", "4", "--hd-padding", "--overwrite", *HEADS]) == 0
    processor = AutoProcessor.from_pretrained(output)
    assert (processor.hd_num, processor.hd_padding, processor.hd_local_size) == (4, True, 56)


def test_bad_input_gives_one_line_errors(tmp_path, official, assets, capsys):
    state, _, _ = official
    save_file(state, tmp_path / "chat.safetensors")
    checkpoint, output, llm = str(tmp_path / "chat.safetensors"), str(tmp_path / "out"), str(assets / "llm")

    with pytest.raises(SystemExit) as exit_info:
        main(["chat", checkpoint, output, *HEADS])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --llm-config" in capsys.readouterr().err

    v02 = tmp_path / "mistral-v0.2"
    v02.mkdir()
    (v02 / "config.json").write_text(json.dumps({**json.loads((FOLDER / "llm_config.json").read_text()),
                                                 "vocab_size": 32000, "num_hidden_layers": 32}))
    assert main(["chat", checkpoint, output, "--llm-config", str(v02), *HEADS]) == 1
    assert one_line_error(capsys).endswith("disagrees with the checkpoint's LLM weights "
                                           "(lm.base_model.model.model.embed_tokens.weight (200, 64), 2 layers): "
                                           "vocab_size 32000 != 200; num_hidden_layers 32 != 2")

    stage2 = tmp_path / "stage2.safetensors"
    save_file(load_file(FIXTURES / "stage2_model" / "state_dict.safetensors"), stage2)
    assert main(["chat", str(stage2), output, "--llm-config", llm, *HEADS]) == 1
    assert "stage2.safetensors is not an InternVideo2-Chat checkpoint: no vision_layernorm.weight" in one_line_error(
        capsys)

    assert main(["chat", checkpoint, output, "--llm-config", llm, "--num-attention-heads", "4"]) == 1
    assert one_line_error(capsys).endswith("pass qformer_num_attention_heads")
    assert main(["chat", checkpoint, output, "--llm-config", llm, "--tokenizer", str(assets / "tokenizer"),
                 *HEADS]) == 1
    assert "--tokenizer and --qformer-tokenizer go together" in one_line_error(capsys)
    assert main(["chat", checkpoint, output, "--llm-config", llm, "--hd-num", "4", *HEADS]) == 1
    assert "only apply with --hd" in one_line_error(capsys)
    assert main(["chat", checkpoint, output, "--llm-config", llm, "--hd", *HEADS]) == 1
    assert "--hd needs --tokenizer and --qformer-tokenizer" in one_line_error(capsys)
    assert main(["chat", checkpoint, output, "--llm-config", str(tmp_path / "missing"), *HEADS]) == 1
    assert "missing is neither a config.json file nor a folder holding one" in one_line_error(capsys)

    small_vocab = tmp_path / "vocab.txt"
    small_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    assert main(["chat", checkpoint, output, "--llm-config", llm, "--tokenizer", str(assets / "tokenizer"),
                 "--qformer-tokenizer", str(small_vocab), *HEADS]) == 1
    assert "has 7 tokens with [DEC] but the checkpoint's Q-Former embeds 58" in one_line_error(capsys)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".converting-*"))

    (tmp_path / "out").mkdir()
    assert main(["chat", checkpoint, output, "--llm-config", llm, *HEADS]) == 1
    assert "exists; pass --overwrite to replace it" in one_line_error(capsys)
