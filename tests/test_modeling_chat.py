import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import MistralConfig

from internvideo2.configuration_chat import InternVideo2ChatConfig
from internvideo2.convert.chat import convert_chat_checkpoint
from internvideo2.modeling_chat import InternVideo2ChatForConditionalGeneration

from .conftest import FIXTURES

FOLDER = FIXTURES / "chat_full"
ATOL = dict(rtol=1e-5, atol=1e-5)
MEDIA_TOKEN_ID = 200  # one past the tiny LLM vocabulary, as `<VID_PLH>` added to its tokenizer


pytestmark = pytest.mark.usefixtures("one_thread")


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


def fixture_model(lora: str = "merge", with_lora: bool = True, **config_overrides):
    state = load_file(FOLDER / "state_dict.safetensors")
    if not with_lora:
        state = {
            k.replace("lm.base_model.model.", "lm."): v for k, v in state.items() if ".lora_" not in k
        }
    config = tiny_chat_config(**config_overrides)
    model, report = convert_chat_checkpoint(state, config, lora=lora, source="chat_full")
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
    with pytest.raises(ValueError, match=r"^input_ids hold 96 media placeholder tokens \(id 200\) but no pixel_values"):
        lora_model(input_ids=ids)
    text_only = ids[:, ids[0] != MEDIA_TOKEN_ID]
    with pytest.raises(ValueError, match=r"hold 0 media placeholder tokens \(id 200\) but 1 videos and 0 images"):
        lora_model(input_ids=text_only, pixel_values_videos=video)
    with pytest.raises(ValueError, match="qformer_input_ids has 2 rows but there are 1 media items"):
        lora_model(input_ids=ids, pixel_values_videos=video, qformer_input_ids=torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="pixel_values_videos and pixel_values in one call need image_token_id"):
        lora_model(input_ids=ids, pixel_values_videos=video, pixel_values=inputs["media.image"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(text_config=dict(model_type="vit")), r"text_config.model_type 'vit' is not a causal language model"),
        (dict(text_config=dict(model_type="no_such_model")), r"text_config.model_type 'no_such_model' is not a model"),
        (dict(num_query_tokens=0), r"num_query_tokens must be >= 1, got 0"),
        (dict(num_extra_query_tokens=-1), r"num_extra_query_tokens must be >= 0, got -1"),
        (dict(media_token_id=-1), r"media_token_id must be >= 0, got -1"),
        (dict(image_token_id=MEDIA_TOKEN_ID), r"image_token_id must be None or a non-negative id other than"),
        (dict(vision_config=dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
                                 attention_pool_num_heads=4)), r"vision_config must be the chat tower"),
        (dict(qformer_config=dict(hidden_size=30, num_attention_heads=4)),
         r"qformer_config.hidden_size \(30\) must be a multiple of qformer_config.num_attention_heads \(4\)"),
    ],
)
def test_invalid_configs_raise_one_line_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        tiny_chat_config(**overrides)
    assert type(error.value) is ValueError and "\n" not in str(error.value)


def test_fresh_extra_queries_get_gradients_like_the_other_queries():
    """The official zero init of the extra queries gives them ~1e6 gradients through the Q-Former's embedding
    LayerNorm (eps 1e-12), which would take the whole clipped update; a fresh model draws them like the others."""
    torch.manual_seed(0)
    model = InternVideo2ChatForConditionalGeneration(tiny_chat_config()).eval()
    num_first = model.config.num_query_tokens
    assert model.config.num_extra_query_tokens > 0
    extra = model.query_tokens.detach()[0, num_first:]
    assert abs(float(extra.std()) - model.config.initializer_range) < 0.1 * model.config.initializer_range
    ids = call_ids("A_video_one_turn")
    video = torch.randn(1, 4, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    labels = ids.masked_fill(ids == MEDIA_TOKEN_ID, -100)

    def query_gradients():
        model.zero_grad()
        model(input_ids=ids, pixel_values_videos=video, labels=labels).loss.backward()
        total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
        rows = model.query_tokens.grad[0].norm(dim=-1)
        return rows[:num_first].mean(), rows[num_first:].mean(), model.query_tokens.grad.norm() / total

    first, extra_rows, share = query_gradients()
    assert extra_rows < 10 * first and share < 0.5
    with torch.no_grad():  # the official init: the extra rows' gradients explode and hold the whole norm
        model.query_tokens[0, num_first:] = 0
    first, extra_rows, share = query_gradients()
    assert extra_rows > 1e4 * first and share > 0.99


def test_text_embeddings_are_detached_as_officially_and_media_rows_train():
    """Official `pad_text_embeds` detaches the LLM's text embeddings: with the whole model trainable, the input
    embedding table (untied from lm_head here) gets no gradient, everything on the media path and in the LLM does."""
    torch.manual_seed(0)
    model = InternVideo2ChatForConditionalGeneration(tiny_chat_config()).eval()
    assert not model.config.text_config.tie_word_embeddings
    ids = call_ids("A_video_one_turn")
    labels = ids.masked_fill(ids == MEDIA_TOKEN_ID, -100)
    model(input_ids=ids, pixel_values_videos=torch.randn(1, 4, 3, 56, 56), labels=labels).loss.backward()
    assert model.get_input_embeddings().weight.grad is None
    for trained in (model.get_output_embeddings().weight, model.language_projection.weight, model.query_tokens,
                    model.vision_model.embeddings.patch_embedding.weight):
        assert trained.grad is not None and trained.grad.abs().sum() > 0
    # a caller's own inputs_embeds are left alone
    model.zero_grad()
    embeds = model.get_input_embeddings()(torch.tensor([[1, 5, 9]]))
    model(inputs_embeds=embeds, labels=torch.tensor([[1, 5, 9]])).loss.backward()
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0


IMAGE_TOKEN_ID = MEDIA_TOKEN_ID + 1


def test_images_and_videos_mix_in_one_batch_like_separate_calls(data):
    """Rows holding a video, an image, and an image then a video (their own placeholder ids), left padded in one
    batch: each row's logits and greedy answer equal those of the row run alone, and every media slot carries the
    features of its own item read with its own Q-Former instruction."""
    inputs, outputs = data
    model = fixture_model(image_token_id=IMAGE_TOKEN_ID)[0]
    video_ids = call_ids("A_video_one_turn")
    image_ids = call_ids("C_image_one_turn")
    image_ids[image_ids == MEDIA_TOKEN_ID] = IMAGE_TOKEN_ID
    both_ids = torch.cat([image_ids[:, :-5], video_ids[:, 1:]], dim=1)  # image block first, then video block
    video, image = inputs["media.video"][None], inputs["media.image"]
    other_video, other_image = video.flip(-1), image.flip(-2)
    instruction = outputs["forward_A.qformer_instruction_input_ids"]
    other_instruction = instruction.flip(-1)
    rows = [
        (video_ids, dict(pixel_values_videos=video), [instruction]),
        (image_ids, dict(pixel_values=image), [other_instruction]),
        (both_ids, dict(pixel_values=other_image, pixel_values_videos=other_video), [instruction, other_instruction]),
    ]
    width = max(ids.shape[1] for ids, _, _ in rows)
    left_pad = lambda ids: torch.cat([torch.zeros(1, width - ids.shape[1], dtype=torch.long), ids], 1)  # noqa: E731
    batch = dict(
        input_ids=torch.cat([left_pad(ids) for ids, _, _ in rows]),
        attention_mask=torch.cat([left_pad(torch.ones_like(ids)) for ids, _, _ in rows]),
        pixel_values_videos=torch.cat([video, other_video]),
        pixel_values=torch.cat([image, other_image]),
        qformer_input_ids=torch.cat([instruction, other_instruction, instruction, other_instruction]),
    )
    with torch.no_grad():
        mixed = model(**batch)
        slots = [
            model.get_media_features(pixel_values_videos=video, qformer_input_ids=instruction),
            model.get_media_features(pixel_values=image, qformer_input_ids=other_instruction),
            model.get_media_features(pixel_values=other_image, qformer_input_ids=instruction),
            model.get_media_features(pixel_values_videos=other_video, qformer_input_ids=other_instruction),
        ]
        torch.testing.assert_close(mixed.media_hidden_states, torch.cat(slots), **ATOL)
        for row, (ids, media, instructions) in enumerate(rows):
            alone = model(input_ids=ids, qformer_input_ids=torch.cat(instructions), **media)
            torch.testing.assert_close(mixed.logits[row, width - ids.shape[1]:], alone.logits[0], **ATOL)
    generation = dict(do_sample=False, max_new_tokens=4, min_new_tokens=4)
    generated = model.generate(**batch, **generation)[:, width:]
    for row, (ids, media, instructions) in enumerate(rows):
        alone = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                               qformer_input_ids=torch.cat(instructions), **media, **generation)[:, ids.shape[1]:]
        torch.testing.assert_close(generated[row:row + 1], alone, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"hold \(192, 192\) video and image placeholder tokens \(ids 200 and 201\) "
                                         r"but 2 videos and 1 images need 96 each"):
        model(input_ids=batch["input_ids"], pixel_values_videos=batch["pixel_values_videos"], pixel_values=image)


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
