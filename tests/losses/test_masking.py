"""Tests of internvideo2.masking (the token-mask generators used by the Stage-1/Stage-2 training losses)."""

import numpy as np
import pytest
import torch

from internvideo2.masking import (
    attention_guided_token_mask,
    prepend_cls_to_mask,
    random_token_mask,
    select_visible_tokens,
    tube_token_mask,
)


@pytest.mark.parametrize("num_tokens, ratio", [(64, 0.8), (16, 0.5), (1024, 0.8), (10, 0.0), (10, 1.0), (7, 0.33)])
def test_random_mask_masks_exactly_int_ratio_tokens(num_tokens, ratio):
    mask = random_token_mask(6, num_tokens, ratio, generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (6, num_tokens)
    assert mask.sum(dim=1).tolist() == [int(ratio * num_tokens)] * 6


def test_random_mask_count_equals_the_official_recorded_mask(stage2_outputs):
    official = stage2_outputs["random.forward.0.RandomMaskingGenerator"]  # (3, 4 frames · 16 patches), ratio 0.8
    mask = random_token_mask(3, 64, 0.8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask.sum(dim=1), official.sum(dim=1))


def test_random_mask_is_uniform_over_positions_and_reproducible():
    mask = random_token_mask(4000, 10, 0.3, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(mask.float().mean(dim=0).numpy(), np.full(10, 0.3), atol=0.03)
    # every one of the C(10, 3) = 120 masked subsets is about equally likely (chi-square, 119 dof, mean 119)
    subset_counts = np.unique(mask.numpy(), axis=0, return_counts=True)[1]
    assert len(subset_counts) == 120
    assert ((subset_counts - 4000 / 120) ** 2 / (4000 / 120)).sum() < 200
    again = random_token_mask(4000, 10, 0.3, generator=torch.Generator().manual_seed(1))
    other = random_token_mask(4000, 10, 0.3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(mask, again) and not torch.equal(mask, other)


def test_tube_mask_repeats_one_spatial_mask_over_frames():
    mask = tube_token_mask(5, 4, 16, 0.75, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (5, 64)
    frames = mask.view(5, 4, 16)
    for t in range(1, 4):
        assert torch.equal(frames[:, t], frames[:, 0])
    assert frames.sum(dim=2).unique().tolist() == [12]


def test_attention_mask_per_frame_keeps_n_minus_int_ratio_n_tokens_per_frame():
    attention = torch.rand(3, 8, 256, generator=torch.Generator().manual_seed(0))
    mask = attention_guided_token_mask(attention, 0.8, generator=torch.Generator().manual_seed(1))
    assert mask.shape == (3, 2048)
    assert (~mask).view(3, 8, 256).sum(dim=2).unique().tolist() == [52]  # 256 − int(256·0.8), spec §2.2


def test_attention_mask_joint_keeps_n_minus_int_ratio_n_tokens_overall():
    attention = torch.rand(2, 2048, generator=torch.Generator().manual_seed(0))
    mask = attention_guided_token_mask(attention, 0.8, generator=torch.Generator().manual_seed(1))
    assert (~mask).sum(dim=1).tolist() == [410, 410]  # spec §2.5
    assert (~mask).view(2, 8, 256).sum(dim=2).unique().numel() > 1  # not balanced per frame


def test_attention_mask_keeps_high_attention_tokens_more_often():
    attention = torch.ones(2000, 2, 16)
    attention[:, :, :4] = 10.0  # tokens 0-3 of each frame get 10x the attention
    mask = attention_guided_token_mask(attention, 0.75, generator=torch.Generator().manual_seed(0))
    kept = (~mask).view(2000, 2, 16).float().mean(dim=(0, 1))
    assert kept[:4].min() > 2 * kept[4:].max()


def test_attention_mask_single_visible_token_follows_attention_distribution():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    mask = attention_guided_token_mask(weights.expand(5000, 1, 4), 0.75, generator=torch.Generator().manual_seed(0))
    frequencies = (~mask).float().mean(dim=0).numpy()
    np.testing.assert_allclose(frequencies, (weights / weights.sum()).numpy(), atol=0.02)


def test_attention_mask_matches_official_full_order_draw():
    attention = torch.rand(4, 3, 16, generator=torch.Generator().manual_seed(0))
    mask = attention_guided_token_mask(attention, 0.8, generator=torch.Generator().manual_seed(5))
    # official: draw the full importance order of every frame, keep its first n − int(0.8 n) tokens
    order = torch.multinomial(attention.reshape(12, 16), 16, generator=torch.Generator().manual_seed(5))
    expected = torch.ones(12, 16, dtype=torch.bool)
    for row in range(12):
        expected[row, order[row, : 16 - int(0.8 * 16)]] = False
    assert torch.equal(mask, expected.view(4, 48))


def test_prepend_cls_and_select_visible_tokens():
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    with_cls = prepend_cls_to_mask(mask)
    assert with_cls.tolist() == [[False, True, False, True, False], [False, False, False, True, True]]
    hidden = torch.randn(3, 2, 5, 6)  # (layers, batch, 1 + patches, dim)
    visible = select_visible_tokens(hidden, with_cls)
    for layer in range(3):
        for b in range(2):
            kept = [hidden[layer, b, n] for n in range(5) if not with_cls[b, n]]
            assert torch.equal(visible[layer, b], torch.stack(kept))


def test_masking_errors():
    with pytest.raises(ValueError, match=r"mask_ratio must be in \[0, 1\]"):
        random_token_mask(2, 10, 1.2)
    with pytest.raises(ValueError, match="attention must be a float"):
        attention_guided_token_mask(torch.ones(2, 3, 4, 5), 0.5)
    with pytest.raises(ValueError, match="finite and non-negative"):
        attention_guided_token_mask(-torch.ones(2, 4), 0.5)
    with pytest.raises(ValueError, match="at least 2 positive entries"):
        attention_guided_token_mask(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), 0.5)
    with pytest.raises(ValueError, match="bool tensor"):
        prepend_cls_to_mask(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="same number of tokens"):
        select_visible_tokens(torch.randn(2, 3, 4), torch.tensor([[True, False, False], [True, True, False]]))
    with pytest.raises(ValueError, match="mask must be a bool"):
        select_visible_tokens(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.bool))
