import pytest
import torch
from safetensors.torch import load_file

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.convert.chat import UNUSED_HEAD, check_chat_keys_on_meta, convert_chat_checkpoint, convert_chat_state_dict
from internvideo2.convert.checkpoint_io import CheckpointConversionError

from ..conftest import FIXTURES
from ..test_modeling_chat import call_ids, tiny_chat_config


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
