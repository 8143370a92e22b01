import numpy as np
import pytest
import torch
from _losses_reference import naive_video_text_contrastive

from internvideo2.losses import InternVideo2VideoTextContrastiveLoss, multi_positive_targets, video_text_similarity


OFFICIAL_TEMP = torch.tensor(0.07)  # the official model's float32 `temp` parameter


@pytest.mark.parametrize("ids_key, loss_key", [("idx", "loss.vtc"), ("idx_dup", "loss.vtc_dup_idx")])
def test_vtc_matches_official_loss(stage2_inputs, stage2_outputs, ids_key, loss_key):
    loss = InternVideo2VideoTextContrastiveLoss()(
        stage2_outputs["vision_proj"], stage2_outputs["text_proj"], OFFICIAL_TEMP, stage2_inputs[ids_key]
    )
    torch.testing.assert_close(loss, stage2_outputs[loss_key], rtol=1e-5, atol=1e-5)


def test_similarity_matches_official(stage2_outputs):
    vision, text = stage2_outputs["vision_proj"], stage2_outputs["text_proj"]
    torch.testing.assert_close(video_text_similarity(vision, text), stage2_outputs["itc.sim_cosine"])
    over_temp = video_text_similarity(vision, text, OFFICIAL_TEMP)
    torch.testing.assert_close(over_temp, stage2_outputs["itc.sim_v2t_over_temp"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(over_temp.T, stage2_outputs["itc.sim_t2v_over_temp"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", [{}, {"local_loss": True}, {"all_gather": False}, {"gather_with_grad": False}])
def test_vtc_matches_naive_loop_with_repeated_videos(options):
    generator = torch.Generator().manual_seed(0)
    vision = torch.randn(7, 5, generator=generator) * 3
    text = torch.randn(7, 5, generator=generator)
    ids = torch.tensor([4, 1, 4, 9, 1, 1, 2])
    loss = InternVideo2VideoTextContrastiveLoss(**options)(vision, text, 0.3, ids)
    expected = naive_video_text_contrastive(vision.numpy(), text.numpy(), 0.3, ids.numpy())
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


def test_vtc_without_ids_treats_each_pair_as_its_own_positive():
    generator = torch.Generator().manual_seed(1)
    vision, text = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    loss = InternVideo2VideoTextContrastiveLoss()(vision, text, torch.tensor(0.5))
    expected = naive_video_text_contrastive(vision.numpy(), text.numpy(), 0.5, np.arange(5))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


def test_vtc_sends_gradient_to_a_learnable_temperature():
    generator = torch.Generator().manual_seed(2)
    vision, text = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    temperature = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    loss_fn = InternVideo2VideoTextContrastiveLoss()
    loss_fn(vision.double(), text.double(), temperature).backward()
    step = 1e-6
    finite_difference = (
        naive_video_text_contrastive(vision.numpy(), text.numpy(), 0.2 + step, np.arange(4))
        - naive_video_text_contrastive(vision.numpy(), text.numpy(), 0.2 - step, np.arange(4))
    ) / (2 * step)
    np.testing.assert_allclose(temperature.grad.item(), finite_difference, rtol=1e-5)


def test_multi_positive_targets_by_definition():
    targets = multi_positive_targets(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1, 2]))
    expected = torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0.5, 0.5, 0]])
    torch.testing.assert_close(targets, expected)


def test_vtc_errors():
    loss_fn = InternVideo2VideoTextContrastiveLoss()
    vision, text = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        loss_fn(vision, text, 0.0)
    with pytest.raises(ValueError, match="temperature must be a scalar"):
        loss_fn(vision, text, torch.ones(2))
    with pytest.raises(TypeError, match="temperature must be a float or a scalar tensor"):
        loss_fn(vision, text, "0.07")
    with pytest.raises(ValueError, match="must have the same shape"):
        loss_fn(vision, torch.randn(2, 4), 0.1)
    with pytest.raises(ValueError, match=r"must be \(batch, dim\)"):
        loss_fn(vision[None], text[None], 0.1)
    with pytest.raises(ValueError, match=r"sample_ids must have shape \(3,\)"):
        loss_fn(vision, text, 0.1, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="sample_ids must be an integer tensor"):
        loss_fn(vision, text, 0.1, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="local_loss=True needs gather_with_grad=True"):
        InternVideo2VideoTextContrastiveLoss(local_loss=True, gather_with_grad=False)
