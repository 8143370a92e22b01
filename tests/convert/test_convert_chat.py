import math
import re

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, MistralConfig

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.convert.chat import (
    UNUSED_HEAD,
    check_chat_keys_on_meta,
    convert_chat_checkpoint,
    convert_chat_state_dict,
    infer_chat_config,
    load_llm_config,
)
from internvideo2.convert.checkpoint_io import CheckpointConversionError
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration, official_lora_config
from peft import get_peft_model, get_peft_model_state_dict

from ..conftest import FIXTURES
from ..test_modeling_chat import call_ids, tiny_chat_config

# `metadata.total_size` of InternVideo2-Chat-8B's released `model.safetensors.index.json` (public copy:
# eric-ai-lab/Morph4D @ 6cfc11e, internvideo_chat_feature/model.safetensors.index.json).
RELEASED_CHAT_8B_TOTAL_BYTES = 19_389_432_832
# Mistral-7B-Instruct-v0.3 `config.json` (the LLM of Chat-8B and -HD) and v0.2 (vocabulary 32000).
MISTRAL_V03 = dict(
    model_type="mistral", architectures=["MistralForCausalLM"], vocab_size=32768, hidden_size=4096,
    intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
    max_position_embeddings=32768, rope_theta=1e6, sliding_window=None, rms_norm_eps=1e-5, tie_word_embeddings=False,
)
MISTRAL_V02 = {**MISTRAL_V03, "vocab_size": 32000}


def released_chat_8b_keys(lora: bool = True) -> dict[str, tuple[int, ...]]:
    """Key → shape of InternVideo2-Chat-8B as spec §7.2 lists it (1B tower cut to 39 blocks with bare LayerScale,
    BLIP-2 Q-Former on bert-base-uncased + [DEC], 32 + 64 queries, project_up/down, Mistral-7B-v0.3 with LoRA r 16)."""
    d, mlp, q, lm, inter, kv = 1408, 6144, 768, 4096, 14336, 1024
    keys = {
        "vision_encoder.patch_embed.proj.weight": (d, 3, 1, 14, 14), "vision_encoder.patch_embed.proj.bias": (d,),
        "vision_encoder.cls_token": (1, 1, d), "vision_encoder.pos_embed": (1, 1 + 8 * 256, d),
        "vision_encoder.img_pos_embed": (1, 257, d), "vision_layernorm.weight": (d,), "vision_layernorm.bias": (d,),
        "query_tokens": (1, 32, q), "extra_query_tokens": (1, 64, q),
        "qformer.bert.embeddings.word_embeddings.weight": (30523, q),
        "qformer.bert.embeddings.position_embeddings.weight": (512, q),
        "qformer.bert.embeddings.LayerNorm.weight": (q,), "qformer.bert.embeddings.LayerNorm.bias": (q,),
        "qformer.bert.embeddings.position_ids": (1, 512),
        "project_up.weight": (lm, q), "project_up.bias": (lm,), "project_down.weight": (q, lm), "project_down.bias": (q,),
    }
    for i in range(39):
        b = f"vision_encoder.blocks.{i}."
        keys.update({b + "norm1.weight": (d,), b + "norm2.weight": (d,), b + "attn.qkv.weight": (3 * d, d),
                     b + "attn.q_norm.weight": (d,), b + "attn.k_norm.weight": (d,), b + "attn.proj.weight": (d, d),
                     b + "attn.proj.bias": (d,), b + "ls1": (d,), b + "ls2": (d,), b + "mlp.fc1.weight": (mlp, d),
                     b + "mlp.fc1.bias": (mlp,), b + "mlp.fc2.weight": (d, mlp), b + "mlp.fc2.bias": (d,)})
    for i in range(12):
        b = f"qformer.bert.encoder.layer.{i}."
        attentions = ["attention"] + (["crossattention"] if i % 2 == 0 else [])
        for att in attentions:
            width = d if att == "crossattention" else q
            keys.update({f"{b}{att}.self.query.weight": (q, q), f"{b}{att}.self.query.bias": (q,)})
            for name in ("key", "value"):
                keys.update({f"{b}{att}.self.{name}.weight": (q, width), f"{b}{att}.self.{name}.bias": (q,)})
            keys.update({f"{b}{att}.output.dense.weight": (q, q), f"{b}{att}.output.dense.bias": (q,),
                         f"{b}{att}.output.LayerNorm.weight": (q,), f"{b}{att}.output.LayerNorm.bias": (q,)})
        for suffix in ("", "_query"):
            keys.update({f"{b}intermediate{suffix}.dense.weight": (3072, q), f"{b}intermediate{suffix}.dense.bias": (3072,),
                         f"{b}output{suffix}.dense.weight": (q, 3072), f"{b}output{suffix}.dense.bias": (q,),
                         f"{b}output{suffix}.LayerNorm.weight": (q,), f"{b}output{suffix}.LayerNorm.bias": (q,)})
    prefix = "lm.base_model.model." if lora else "lm."
    linears = {"lm_head": (32768, lm)}
    keys[prefix + "model.embed_tokens.weight"] = (32768, lm)
    keys[prefix + "model.norm.weight"] = (lm,)
    for i in range(32):
        b = f"model.layers.{i}."
        keys[prefix + b + "input_layernorm.weight"] = keys[prefix + b + "post_attention_layernorm.weight"] = (lm,)
        linears.update({b + "self_attn.q_proj": (lm, lm), b + "self_attn.k_proj": (kv, lm), b + "self_attn.v_proj": (kv, lm),
                        b + "self_attn.o_proj": (lm, lm), b + "mlp.gate_proj": (inter, lm), b + "mlp.up_proj": (inter, lm),
                        b + "mlp.down_proj": (lm, inter)})
    for name, (out_features, in_features) in linears.items():
        keys[f"{prefix}{name}.weight"] = (out_features, in_features)
        if lora:
            keys[f"{prefix}{name}.lora_A.default.weight"] = (16, in_features)
            keys[f"{prefix}{name}.lora_B.default.weight"] = (out_features, 16)
    return keys


@pytest.mark.parametrize("lora", [True, False])
def test_every_released_chat_8b_key_maps_on_the_meta_device(lora):
    shapes = released_chat_8b_keys(lora)
    with torch.device("meta"):
        official = {k: torch.empty(s) for k, s in shapes.items()}
    converted, adapter, report = convert_chat_state_dict(official, InternVideo2ChatConfig(), lora="merge", source="8B")
    check_chat_keys_on_meta(converted, InternVideo2ChatConfig(), "8B")  # raises on missing / extra / mis-shaped keys
    accounted = set(report.mapped) | {k for keys in report.dropped.values() for k in keys}
    split_qkv = {k for k in shapes if k.endswith("attn.qkv.weight")}
    assert set(shapes) - split_qkv <= accounted
    assert sorted(report.dropped[UNUSED_HEAD]) == ["project_down.bias", "project_down.weight"]
    assert adapter == {}
    if lora:
        _, adapter, _ = convert_chat_state_dict(official, InternVideo2ChatConfig(), lora="adapter", source="8B")
        assert len(adapter) == 2 * (32 * 7 + 1)


def test_merged_and_peft_adapter_conversions_agree():
    state = load_file(FIXTURES / "chat_full" / "state_dict.safetensors")
    outputs = load_file(FIXTURES / "chat_full" / "outputs.safetensors")
    video = load_file(FIXTURES / "chat_full" / "inputs.safetensors")["media.video"][None]
    merged, _ = convert_chat_checkpoint(state, tiny_chat_config(), lora="merge")
    adapted, _ = convert_chat_checkpoint(state, tiny_chat_config(), lora="adapter")
    from peft import PeftModel

    assert isinstance(adapted, PeftModel)
    ids = call_ids("A_video_one_turn")
    with torch.no_grad():
        a = merged(input_ids=ids, pixel_values_videos=video).logits
        b = adapted(input_ids=ids, pixel_values_videos=video).logits
    expected = outputs["forward_A.lora.no_instruction.logits"]
    torch.testing.assert_close(a, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b, expected, rtol=1e-5, atol=1e-5)
    # merging the peft model afterwards gives the plain merged weights back
    unloaded = adapted.merge_and_unload()
    for key, value in merged.state_dict().items():
        torch.testing.assert_close(unloaded.state_dict()[key], value, rtol=1e-5, atol=1e-5)


def test_broken_checkpoints_are_rejected_with_the_key_named():
    state = load_file(FIXTURES / "chat_full" / "state_dict.safetensors")
    with pytest.raises(CheckpointConversionError, match=r"1 unknown keys: qformer\.bert\.encoder\.layer\.0\.extra"):
        convert_chat_state_dict({**state, "qformer.bert.encoder.layer.0.extra": torch.zeros(1)}, tiny_chat_config())
    lonely = {k: v for k, v in state.items() if not k.endswith("lm_head.lora_B.default.weight")}
    with pytest.raises(CheckpointConversionError, match=r"LoRA pair of lm_head\.weight is incomplete"):
        convert_chat_state_dict(lonely, tiny_chat_config())
    with pytest.raises(ValueError, match="lora must be one of"):
        convert_chat_state_dict(state, tiny_chat_config(), lora="drop")
    no_queries = {k: v for k, v in state.items() if k != "query_tokens"}
    with pytest.raises(CheckpointConversionError, match="no query_tokens"):
        convert_chat_state_dict(no_queries, tiny_chat_config())


def _meta(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return {k: torch.empty(s, dtype=torch.long if k.endswith("position_ids") else torch.float32)
                for k, s in shapes.items()}


def _pattern(key: str) -> str:
    return re.sub(r"\.\d+\.", ".N.", key)


def test_released_chat_8b_layout_is_the_released_one():
    """The shape table above is the release's: its byte count (LLM base weights bf16, the rest float32, position_ids
    int64) is the released index's total_size, and its key patterns are those of the chat_full fixture, which the
    fixture generator checked equal to the released index."""
    shapes = released_chat_8b_keys(lora=True)
    size = {torch.float32: 4, torch.bfloat16: 2, torch.int64: 8}
    total = 0
    for key, shape in shapes.items():
        dtype = torch.int64 if key.endswith("position_ids") else (
            torch.bfloat16 if key.startswith("lm.") and ".lora_" not in key else torch.float32)
        total += math.prod(shape) * size[dtype]
    assert total == RELEASED_CHAT_8B_TOTAL_BYTES
    fixture_keys = load_file(FIXTURES / "chat_full" / "state_dict.safetensors").keys()
    assert {_pattern(k) for k in shapes} == {_pattern(k) for k in fixture_keys}


@pytest.mark.parametrize("frames", [8, 16])
def test_config_inferred_from_8b_shapes_maps_every_key_on_meta(frames):
    shapes = released_chat_8b_keys(lora=True)
    shapes["vision_encoder.pos_embed"] = (1, 1 + frames * 256, 1408)  # the HD-F16 variant has a 16-frame table
    official = _meta(shapes)
    config = infer_chat_config(official, MistralConfig(**MISTRAL_V03), source="8B")
    expected = InternVideo2ChatConfig()  # defaults: the 8B geometry, spec §5.1
    expected.vision_config.num_frames = frames
    inferred = config.to_dict()
    assert inferred["text_config"]["architectures"] == ["MistralForCausalLM"]  # from the LLM's config.json
    inferred["text_config"]["architectures"] = None
    assert inferred == expected.to_dict()
    assert (config.vision_config.num_hidden_layers, config.vision_config.num_attention_heads) == (39, 16)
    assert (config.qformer_config.num_hidden_layers, config.qformer_config.cross_attention_frequency) == (12, 2)
    assert (config.num_query_tokens, config.num_extra_query_tokens, config.media_token_id) == (32, 64, 32768)

    converted, adapter, report = convert_chat_state_dict(official, config, lora="adapter", source="8B")
    check_chat_keys_on_meta(converted, config, "8B")  # every model key present with its shape, nothing else
    with torch.device("meta"):
        lora_model = get_peft_model(InternVideo2ChatForConditionalGeneration(config), official_lora_config())
    expected_adapter = get_peft_model_state_dict(lora_model, save_embedding_layers=False)
    assert {k: tuple(v.shape) for k, v in adapter.items()} == {k: tuple(v.shape) for k, v in expected_adapter.items()}


def test_inferred_config_is_the_one_the_fixture_was_generated_with():
    state = load_file(FIXTURES / "chat_full" / "state_dict.safetensors")
    llm = load_llm_config(FIXTURES / "chat_full" / "llm_config.json")
    config = infer_chat_config(state, llm, vision_num_attention_heads=4, qformer_num_attention_heads=4,
                               media_token_id=200)
    inferred, expected = config.to_dict(), tiny_chat_config().to_dict()
    # the file's own metadata, which tiny_chat_config leaves out
    assert (inferred["text_config"]["architectures"], inferred["text_config"]["dtype"]) == (
        ["MistralForCausalLM"], "bfloat16")
    inferred["text_config"].update(architectures=None, dtype=None)
    assert inferred == expected
    no_lora = {k.replace("lm.base_model.model.", "lm."): v for k, v in state.items() if ".lora_" not in k}
    assert infer_chat_config(no_lora, llm, vision_num_attention_heads=4, qformer_num_attention_heads=4,
                             media_token_id=200).to_dict() == config.to_dict()


def test_infer_chat_config_rejects_what_the_weights_contradict(tmp_path):
    official = _meta(released_chat_8b_keys(lora=True))
    with pytest.raises(ValueError, match=r"^llm_config disagrees with the checkpoint's LLM weights .*: "
                                         r"vocab_size 32000 != 32768$"):
        infer_chat_config(official, MistralConfig(**MISTRAL_V02))
    with pytest.raises(ValueError, match=r"hidden_size 5120 != 4096; num_hidden_layers 40 != 32$"):
        infer_chat_config(official, MistralConfig(**{**MISTRAL_V03, "hidden_size": 5120, "num_hidden_layers": 40}))
    stage2 = load_file(FIXTURES / "stage2_model" / "state_dict.safetensors")
    with pytest.raises(CheckpointConversionError,
                       match=r"^s2 is not an InternVideo2-Chat checkpoint: no vision_layernorm.weight, query_tokens"):
        infer_chat_config(stage2, MistralConfig(**MISTRAL_V03), source="s2")
    tiny = load_file(FIXTURES / "chat_full" / "state_dict.safetensors")
    llm = load_llm_config(FIXTURES / "chat_full" / "llm_config.json")
    with pytest.raises(ValueError, match=r"Q-Former width 32 is not a released width \(\[768\]\): pass "
                                         r"qformer_num_attention_heads"):
        infer_chat_config(tiny, llm, vision_num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden size 64 is not a released size: pass num_attention_heads"):
        infer_chat_config(tiny, llm, qformer_num_attention_heads=4)
    odd = {k: v for k, v in tiny.items() if not k.startswith("qformer.bert.encoder.layer.0.crossattention.")}
    with pytest.raises(CheckpointConversionError, match=r"Q-Former cross-attention in layers \[2\] of 4, not every"):
        infer_chat_config(odd, llm, vision_num_attention_heads=4, qformer_num_attention_heads=4)
    t5 = AutoConfig.for_model("t5", vocab_size=200, d_model=64, num_layers=2)  # right sizes, not a causal LM
    with pytest.raises(ValueError, match=r"^checkpoint: inferred chat config is invalid: "):
        infer_chat_config(tiny, t5, vision_num_attention_heads=4, qformer_num_attention_heads=4)
    with pytest.raises(FileNotFoundError, match="llm_config .*nowhere is neither a config.json file nor a folder"):
        load_llm_config(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text('{"model_type": "InternVideo2_VideoChat2"}')
    with pytest.raises(ValueError, match=r"^llm_config .*config.json is not a transformers model config \(.*\): pass"):
        load_llm_config(tmp_path)
