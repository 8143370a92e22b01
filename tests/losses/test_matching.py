import numpy as np
import pytest
import torch

from internvideo2.losses import (
    InternVideo2VideoTextMatchingLoss,
    matching_negative_weights,
    sample_matching_negatives,
    video_text_similarity,
)


OFFICIAL_TEMP = torch.tensor(0.07)
OFFICIAL_VTM_SEED = 3004  # torch.manual_seed before the official vtm_loss call (fixture config.json "seeds")


def lookup_match_fn(stage2_inputs, stage2_outputs, calls):
    """Scores each pair by looking up the official fusion logits of (video i, text j) after identifying i and j."""
    videos = stage2_outputs["encode_vision.x_vis"]
    texts = stage2_outputs["encode_text.text_embeds"]
    all_pairs = stage2_outputs["itm.logits_all_pairs"]

    def match_fn(vision_states, vision_mask, text_states, text_mask):
        video_index = [int(torch.nonzero((videos == row).all(-1).all(-1))[0]) for row in vision_states]
        text_index = [int(torch.nonzero((texts == row).all(-1).all(-1))[0]) for row in text_states]
        calls.append((video_index, text_index, vision_mask, text_mask))
        return all_pairs[video_index, text_index]

    return match_fn


def run_official_case(stage2_inputs, stage2_outputs, calls, **kwargs):
    return InternVideo2VideoTextMatchingLoss()(
        stage2_outputs["encode_vision.x_vis"],
        stage2_outputs["encode_text.text_embeds"],
        stage2_inputs["attention_mask"],
        stage2_outputs["vision_proj"],
        stage2_outputs["text_proj"],
        OFFICIAL_TEMP,
        lookup_match_fn(stage2_inputs, stage2_outputs, calls),
        sample_ids=stage2_inputs["idx"],
        **kwargs,
    )


def test_vtm_reproduces_official_draws_logits_and_loss(stage2_inputs, stage2_outputs):
    calls = []
    output = run_official_case(
        stage2_inputs, stage2_outputs, calls, generator=torch.Generator().manual_seed(OFFICIAL_VTM_SEED)
    )
    torch.testing.assert_close(output.vision_negative_indices, stage2_outputs["vtm.vision_neg_indices"][:, 0])
    torch.testing.assert_close(output.text_negative_indices, stage2_outputs["vtm.txt_neg_indices"][:, 0])
    torch.testing.assert_close(output.logits, stage2_outputs["vtm.logits"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output.loss, stage2_outputs["loss.vtm"], rtol=1e-5, atol=1e-5)
    assert output.labels.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    (video_index, text_index, vision_mask, text_mask), = calls
    vision_negatives = stage2_outputs["vtm.vision_neg_indices"][:, 0].tolist()
    text_negatives = stage2_outputs["vtm.txt_neg_indices"][:, 0].tolist()
    assert video_index == [0, 1, 2] + vision_negatives + [0, 1, 2]
    assert text_index == [0, 1, 2] + [0, 1, 2] + text_negatives
    assert vision_mask.dtype == torch.long and bool((vision_mask == 1).all()) and vision_mask.shape == (9, 65)
    torch.testing.assert_close(text_mask, stage2_inputs["attention_mask"][text_index])


def test_vtm_replays_recorded_draws_without_touching_the_rng(stage2_inputs, stage2_outputs):
    recorded = (stage2_outputs["random.vtm.0.multinomial"][:, 0], stage2_outputs["random.vtm.1.multinomial"][:, 0])
    rng_state = torch.get_rng_state()
    output = run_official_case(stage2_inputs, stage2_outputs, [], negative_indices=recorded)
    assert torch.equal(torch.get_rng_state(), rng_state)
    torch.testing.assert_close(output.loss, stage2_outputs["loss.vtm"], rtol=1e-5, atol=1e-5)


def test_negative_weights_match_naive_softmax_with_positives_zeroed():
    generator = torch.Generator().manual_seed(0)
    similarity = torch.randn(5, 5, generator=generator) * 4
    ids = [3, 1, 3, 0, 1]
    weights_v2t, weights_t2v = matching_negative_weights(similarity, torch.tensor(ids))
    s = similarity.double().numpy()
    for weights, logits in ((weights_v2t, s), (weights_t2v, s.T)):
        expected = np.zeros((5, 5))
        for i in range(5):
            normaliser = sum(np.exp(logits[i, k] + 1e-4) for k in range(5))
            for j in range(5):
                expected[i, j] = 0.0 if ids[i] == ids[j] else np.exp(logits[i, j] + 1e-4) / normaliser
        np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_negative_weights_replace_nan_by_one_hundredth():
    similarity = torch.zeros(3, 3)
    similarity[1, 0] = float("nan")
    weights_v2t, weights_t2v = matching_negative_weights(similarity)
    torch.testing.assert_close(weights_v2t[1], torch.tensor([0.01, 0.0, 0.01]))
    torch.testing.assert_close(weights_t2v[0], torch.tensor([0.0, 0.01, 0.01]))
    torch.testing.assert_close(weights_v2t[0], torch.tensor([0.0, 1 / 3, 1 / 3]))  # normalised before zeroing


@pytest.fixture
def single_thread():
    """Thousands of tiny ops: one thread avoids the OpenMP hand-off cost on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("hard_negatives", [True, False])
def test_negative_draw_frequencies(hard_negatives, single_thread):
    similarity = torch.tensor(
        [[2.0, 0.0, -1.0, 1.0], [0.5, 2.0, 1.5, -2.0], [0.0, 1.0, 2.0, 0.0], [1.0, -1.0, 0.0, 2.0]]
    )
    ids = torch.tensor([0, 1, 1, 2])  # videos 1 and 2 are the same clip: never negatives of each other
    generator = torch.Generator().manual_seed(0)
    calls = [
        sample_matching_negatives(similarity, ids, hard_negatives=hard_negatives, generator=generator)
        for _ in range(4000)
    ]
    positives = (ids[:, None] == ids[None, :]).numpy()
    for which, logits in ((0, similarity.T.numpy()), (1, similarity.numpy())):  # 0: video per text, 1: text per video
        samples = torch.stack([call[which] for call in calls]).numpy()  # (draws, batch)
        for row in range(4):
            frequencies = np.bincount(samples[:, row], minlength=4) / len(samples)
            expected = np.where(positives[row], 0.0, np.exp(logits[row]) if hard_negatives else 1.0)
            expected = expected / expected.sum()
            assert frequencies[positives[row]].sum() == 0
            np.testing.assert_allclose(frequencies, expected, atol=0.03)  # > 3.5 standard deviations


def test_underflowing_weights_fall_back_to_uniform_non_positives():
    similarity = torch.full((3, 3), -1e4).fill_diagonal_(1e4)  # official weights: all exactly zero
    generator = torch.Generator().manual_seed(0)
    vision_negatives, text_negatives = sample_matching_negatives(similarity, generator=generator)
    assert (vision_negatives != torch.arange(3)).all() and (text_negatives != torch.arange(3)).all()


def test_hard_negatives_come_from_the_similarity_at_the_given_temperature():
    generator = torch.Generator().manual_seed(3)
    vision, text = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    states_v, states_t = torch.randn(6, 2, 3), torch.randn(6, 5, 3)
    output = InternVideo2VideoTextMatchingLoss()(
        states_v, states_t, torch.ones(6, 5), vision, text, 0.05,
        lambda v, vm, t, tm: torch.zeros(len(v), 2), generator=torch.Generator().manual_seed(7),
    )
    expected = sample_matching_negatives(
        video_text_similarity(vision, text, 0.05), generator=torch.Generator().manual_seed(7)
    )
    assert torch.equal(output.vision_negative_indices, expected[0])
    assert torch.equal(output.text_negative_indices, expected[1])
    torch.testing.assert_close(output.loss, torch.log(torch.tensor(2.0)))  # constant logits: CE = log 2


def test_vtm_gradient_reaches_the_match_function_inputs():
    states_v = torch.randn(3, 2, 4, requires_grad=True)
    weight = torch.randn(4, 2)
    output = InternVideo2VideoTextMatchingLoss()(
        states_v, torch.randn(3, 5, 4), torch.ones(3, 5), torch.randn(3, 4), torch.randn(3, 4), 0.07,
        lambda v, vm, t, tm: v.mean(1) @ weight + t.mean(1) @ weight,
    )
    output.loss.backward()
    assert states_v.grad.abs().sum() > 0


def test_vtm_errors():
    loss_fn = InternVideo2VideoTextMatchingLoss()
    args = (torch.randn(3, 2, 4), torch.randn(3, 5, 4), torch.ones(3, 5), torch.randn(3, 4), torch.randn(3, 4), 0.07)
    constant = lambda v, vm, t, tm: torch.zeros(len(v), 2)  # noqa: E731
    with pytest.raises(ValueError, match="without any negative"):
        loss_fn(*args, constant, sample_ids=torch.tensor([5, 5, 5]))
    with pytest.raises(ValueError, match=r"match_fn must return logits of shape \(9, 2\)"):
        loss_fn(*args, lambda v, vm, t, tm: torch.zeros(len(v), 3))
    with pytest.raises(ValueError, match="negative_indices must be two"):
        column = torch.zeros(3, 1, dtype=torch.long)
        loss_fn(*args, constant, negative_indices=(column, column[:, 0]))
    with pytest.raises(ValueError, match=r"vision_attention_mask must have shape \(3, 2\)"):
        loss_fn(*args, constant, vision_attention_mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="text_hidden_states must have batch size 3"):
        loss_fn(args[0], torch.randn(2, 5, 4), *args[2:], constant)
    with pytest.raises(ValueError, match="similarity must be a square"):
        sample_matching_negatives(torch.zeros(2, 3))
