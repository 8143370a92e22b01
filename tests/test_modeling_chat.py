import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file
from transformers import MistralConfig

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.convert.chat import convert_chat_checkpoint
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration

from .conftest import FIXTURES

FOLDER = FIXTURES / "chat_full"
ATOL = dict(rtol=1e-5, atol=1e-5)
MEDIA_TOKEN_ID = 200  # one past the tiny LLM vocabulary, as `<VID_PLH>` added to its tokenizer


def tiny_chat_config(**overrides) -> InternVideo2ChatConfig:
    """The chat_full geometry: chat_vision tower, chat_qformer Q-Former with 32 + 64 queries, tiny Mistral."""
    bert = json.loads((FOLDER / "bert_config.json").read_text())
    llm = json.loads((FOLDER / "llm_config.json").read_text())
    llm = {k: v for k, v in llm.items() if k not in ("architectures", "model_type", "torch_dtype")}
    fields = dict(
        vision_config=dict(
            hidden_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=279,
            image_size=56,
            num_frames=4,
            use_attention_pool=False,
            use_post_layernorm=True,
            use_separate_image_position_embeddings=True,
            layer_scale_force_fp32=False,
        ),
        qformer_config=dict(
            vocab_size=bert["vocab_size"] + 1,
            hidden_size=bert["hidden_size"],
            num_hidden_layers=bert["num_hidden_layers"],
            num_attention_heads=bert["num_attention_heads"],
            intermediate_size=bert["intermediate_size"],
            max_position_embeddings=bert["max_position_embeddings"],
        ),
        text_config=MistralConfig(**llm).to_dict(),
        media_token_id=MEDIA_TOKEN_ID,
    )
    return InternVideo2ChatConfig(**{**fields, **overrides})


def fixture_model(lora: str = "merge", with_lora: bool = True):
    state = load_file(FOLDER / "state_dict.safetensors")
    if not with_lora:
        state = {
            k.replace("lm.base_model.model.", "lm."): v for k, v in state.items() if ".lora_" not in k
        }
    model, report = convert_chat_checkpoint(state, tiny_chat_config(), lora=lora, source="chat_full")
    return model.float().eval(), report


def call_ids(name: str) -> torch.Tensor:
    inputs = load_file(FOLDER / "inputs.safetensors")
    ids = inputs[f"{name}.input_ids"].clone()
    ids[inputs[f"{name}.index"]] = MEDIA_TOKEN_ID
    return ids[None]


@pytest.fixture(scope="module")
def lora_model():
    return fixture_model()[0]


@pytest.fixture(scope="module")
def data():
    return load_file(FOLDER / "inputs.safetensors"), load_file(FOLDER / "outputs.safetensors")


def test_forward_matches_official_intermediates_logits_and_loss(lora_model, data):
    inputs, outputs = data
    ids = call_ids("A_video_one_turn")
    video = inputs["media.video"][None]
    with torch.no_grad():
        out = lora_model(input_ids=ids, pixel_values_videos=video, labels=inputs["forward_A.labels"],
                         output_hidden_states=True)
        tokens = lora_model.vision_model(pixel_values_videos=video).last_hidden_state
    prefix = "forward_A.lora.no_instruction."
    torch.testing.assert_close(tokens, outputs[prefix + "vision_tokens_ln"], **ATOL)
    torch.testing.assert_close(out.media_hidden_states, outputs[prefix + "project_up_out"], **ATOL)
    torch.testing.assert_close(out.hidden_states[-1], outputs[prefix + "last_hidden_state"], **ATOL)
    torch.testing.assert_close(out.logits, outputs[prefix + "logits"], **ATOL)
    torch.testing.assert_close(out.loss.reshape(1), outputs[prefix + "loss"], **ATOL)


def test_qformer_instruction_changes_the_queries_as_officially(lora_model, data):
    inputs, outputs = data
    qformer_ids = outputs["forward_A.qformer_instruction_input_ids"]
    with torch.no_grad():
        out = lora_model(
            input_ids=call_ids("A_video_one_turn"),
            pixel_values_videos=inputs["media.video"][None],
            qformer_input_ids=qformer_ids,
            qformer_attention_mask=torch.ones_like(qformer_ids),
        )
    torch.testing.assert_close(out.logits, outputs["forward_A.lora.with_instruction.logits"], **ATOL)


@pytest.mark.parametrize("with_lora", [True, False])
def test_greedy_generation_matches_official_chat(with_lora, data):
    inputs, outputs = data
    model = fixture_model(with_lora=with_lora)[0]
    tag = "lora" if with_lora else "nolora"
    for call, media in [("A_video_one_turn", "video"), ("B_video_system_msg_history", "video"), ("C_image_one_turn", "image")]:
        ids = call_ids(call)
        pixels = {"pixel_values_videos": inputs["media.video"][None]} if media == "video" else {
            "pixel_values": inputs["media.image"]}
        generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                   max_new_tokens=5, min_new_tokens=1, **pixels)
        torch.testing.assert_close(generated[:, ids.shape[1]:], outputs[f"{call}.{tag}.generated_ids"], rtol=0, atol=0)
    if not with_lora:
        with torch.no_grad():
            logits = model(input_ids=call_ids("A_video_one_turn"), pixel_values_videos=inputs["media.video"][None]).logits
        torch.testing.assert_close(logits, outputs["forward_A.nolora.no_instruction.logits"], **ATOL)


def test_batched_left_padded_generation_with_cache_equals_single_runs(lora_model, data):
    inputs, _ = data
    a = call_ids("A_video_one_turn")
    b = call_ids("B_video_system_msg_history")
    width = b.shape[1]
    pad = lambda ids: torch.cat([torch.zeros(1, width - ids.shape[1], dtype=torch.long), ids], 1)
    mask = lambda ids: torch.cat([torch.zeros(1, width - ids.shape[1], dtype=torch.long), torch.ones_like(ids)], 1)
    video = inputs["media.video"][None]
    batch_ids, batch_mask = torch.cat([pad(a), b]), torch.cat([mask(a), mask(b)])
    generation = dict(do_sample=False, max_new_tokens=4, min_new_tokens=1)
    batched = lora_model.generate(input_ids=batch_ids, attention_mask=batch_mask,
                                  pixel_values_videos=torch.cat([video, video]), **generation)[:, width:]
    for row, ids in enumerate([a, b]):
        single = lora_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=video,
                                     **generation)[:, ids.shape[1]:]
        uncached = lora_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=video,
                                       use_cache=False, **generation)[:, ids.shape[1]:]
        torch.testing.assert_close(batched[row:row + 1], single, rtol=0, atol=0)
        torch.testing.assert_close(uncached, single, rtol=0, atol=0)


def test_media_embeddings_replace_placeholder_rows_in_order(lora_model, data):
    inputs, _ = data
    ids = call_ids("A_video_one_turn")
    video = inputs["media.video"][None]
    two = torch.cat([video, video.flip(-1)])
    with torch.no_grad():
        features = lora_model.get_media_features(two)
        embeds = {}

        def keep_inputs_embeds(module, args, kwargs, output):
            embeds["x"] = kwargs["inputs_embeds"]

        hook = lora_model.language_model.register_forward_hook(keep_inputs_embeds, with_kwargs=True)
        lora_model(input_ids=torch.cat([ids, ids]), pixel_values_videos=two)
        hook.remove()
    rows = ids[0] == MEDIA_TOKEN_ID
    torch.testing.assert_close(embeds["x"][0, rows], features[0], rtol=0, atol=0)
    torch.testing.assert_close(embeds["x"][1, rows], features[1], rtol=0, atol=0)
    text = lora_model.get_input_embeddings().weight[ids[0, ~rows]]
    torch.testing.assert_close(embeds["x"][0, ~rows], text, rtol=0, atol=0)


def test_bad_inputs_give_one_line_errors(lora_model, data):
    inputs, _ = data
    ids = call_ids("A_video_one_turn")
    video = inputs["media.video"][None]
    with pytest.raises(ValueError, match=r"96 media placeholder tokens .* but no pixel_values"):
        lora_model(input_ids=ids)
    text_only = ids[:, ids[0] != MEDIA_TOKEN_ID]
    with pytest.raises(ValueError, match=r"hold 0 media placeholder tokens .* but 1 media items need 96 each"):
        lora_model(input_ids=text_only, pixel_values_videos=video)
    with pytest.raises(ValueError, match="qformer_input_ids has 2 rows but there are 1 media items"):
        lora_model(input_ids=ids, pixel_values_videos=video, qformer_input_ids=torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(StrictDataclassClassValidationError, match="'vit' is not a causal language model"):
        tiny_chat_config(text_config=dict(model_type="vit"))
    with pytest.raises(StrictDataclassClassValidationError, match="must be the chat tower"):
        tiny_chat_config(vision_config=dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                            intermediate_size=32, attention_pool_num_heads=4))


def test_save_and_reload_round_trip(lora_model, data, tmp_path):
    from transformers import AutoConfig, AutoModelForImageTextToText

    from internvideo2.configuration_chat import InternVideo2ChatConfig as Config

    AutoConfig.register("internvideo2_chat", Config, exist_ok=True)
    AutoModelForImageTextToText.register(Config, InternVideo2ChatForConditionalGeneration, exist_ok=True)
    lora_model.save_pretrained(tmp_path)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    inputs, _ = data
    ids = call_ids("C_image_one_turn")
    with torch.no_grad():
        a = lora_model(input_ids=ids, pixel_values=inputs["media.image"]).logits
        b = reloaded(input_ids=ids, pixel_values=inputs["media.image"]).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)
