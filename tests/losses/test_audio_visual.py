import numpy as np
import pytest
import torch
from _losses_reference import naive_video_text_contrastive

from internvideo2.losses import (
    InternVideo2AudioVisualTextContrastiveLoss,
    InternVideo2AudioVisualTextMatchingLoss,
    InternVideo2VideoTextMatchingLoss,
    concat_audio_vision_tokens,
    fuse_audio_vision_embeds,
    sample_matching_negatives,
    video_text_similarity,
)


@pytest.fixture(scope="module")
def official_av_fusion(audiovisual_state_dict):
    fusion = torch.nn.Linear(32, 16)
    fusion.load_state_dict(
        {"weight": audiovisual_state_dict["av_fusion.weight"], "bias": audiovisual_state_dict["av_fusion.bias"]}
    )
    return fusion


def test_fusion_puts_audio_first_like_the_official_model(audiovisual_outputs, official_av_fusion):
    audio, vision = audiovisual_outputs["audio_proj"], audiovisual_outputs["vision_proj"]
    with torch.no_grad():
        fused = fuse_audio_vision_embeds(audio, vision, official_av_fusion)
        swapped = fuse_audio_vision_embeds(vision, audio, official_av_fusion)
    torch.testing.assert_close(fused, audiovisual_outputs["av_fusion"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(swapped, audiovisual_outputs["av_fusion"], atol=1e-3)
    text = audiovisual_outputs["text_proj"]
    torch.testing.assert_close(video_text_similarity(fused, text), audiovisual_outputs["itc.sim_cosine_avt"])
    torch.testing.assert_close(video_text_similarity(vision, text), audiovisual_outputs["itc.sim_cosine_vt"])


def test_avtc_is_vtc_on_the_fused_embeddings(audiovisual_outputs, official_av_fusion):
    audio, vision, text = (audiovisual_outputs[key] for key in ("audio_proj", "vision_proj", "text_proj"))
    with torch.no_grad():
        loss = InternVideo2AudioVisualTextContrastiveLoss()(audio, vision, text, official_av_fusion, 0.07)
    expected = naive_video_text_contrastive(audiovisual_outputs["av_fusion"].numpy(), text.numpy(), 0.07, [0, 1])
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


def test_avtm_matches_against_audio_then_vision_memory(audiovisual_outputs):
    audio_tokens = audiovisual_outputs["encode_audio.audio_embeds"]  # (2, 40, 20)
    vision_tokens = audiovisual_outputs["encode_vision.vision_embeds"]  # (2, 9, 20)
    text_states = audiovisual_outputs["encode_text.text_embeds"]
    text_mask = torch.ones(2, 10, dtype=torch.long)
    fused, text = audiovisual_outputs["av_fusion"], audiovisual_outputs["text_proj"]
    all_pairs = audiovisual_outputs["avtm.logits_all_pairs"]  # official fusion over cat(audio, vision) memory
    official_memory = [torch.cat([audio_tokens[i], vision_tokens[i]]) for i in range(2)]
    received = []

    def match_fn(memory, memory_mask, states, mask):
        received.append(memory_mask)
        video_index = [next(i for i in range(2) if torch.equal(row, official_memory[i])) for row in memory]
        text_index = [next(j for j in range(2) if torch.equal(row, text_states[j])) for row in states]
        return all_pairs[video_index, text_index]

    output = InternVideo2AudioVisualTextMatchingLoss()(
        audio_tokens, vision_tokens, text_states, text_mask, fused, text, 0.07, match_fn,
        generator=torch.Generator().manual_seed(0),
    )
    negatives = sample_matching_negatives(video_text_similarity(fused, text, 0.07),
                                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(output.vision_negative_indices, negatives[0])
    assert torch.equal(output.text_negative_indices, negatives[1])
    assert received[0].shape == (6, 49) and bool((received[0] == 1).all())
    # with two distinct clips the only negative is the other one: logits are fully determined
    expected_logits = torch.cat([all_pairs[[0, 1], [0, 1]], all_pairs[[1, 0], [0, 1]], all_pairs[[0, 1], [1, 0]]])
    torch.testing.assert_close(output.logits, expected_logits)
    labels = torch.tensor([1, 1, 0, 0, 0, 0])
    expected_loss = -torch.log_softmax(expected_logits, dim=1)[torch.arange(6), labels].mean()
    torch.testing.assert_close(output.loss, expected_loss)


def test_avtm_passes_given_masks_in_memory_order():
    audio_mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    vision_mask = torch.tensor([[1, 0], [1, 1]])
    memory, mask = concat_audio_vision_tokens(torch.zeros(2, 3, 4), torch.ones(2, 2, 4), audio_mask, vision_mask)
    assert torch.equal(mask, torch.tensor([[1, 1, 0, 1, 0], [1, 0, 0, 1, 1]]))
    assert torch.equal(memory[:, :3], torch.zeros(2, 3, 4)) and torch.equal(memory[:, 3:], torch.ones(2, 2, 4))
    received = []
    InternVideo2AudioVisualTextMatchingLoss(InternVideo2VideoTextMatchingLoss(hard_negatives=False))(
        torch.zeros(2, 3, 4), torch.ones(2, 2, 4), torch.randn(2, 5, 4), torch.ones(2, 5), torch.randn(2, 4),
        torch.randn(2, 4), 0.07, lambda v, vm, t, tm: received.append(vm) or torch.zeros(6, 2),
        audio_attention_mask=audio_mask, vision_attention_mask=vision_mask,
    )
    assert torch.equal(received[0], torch.cat([mask, mask[[1, 0]], mask]))


def test_audio_visual_errors():
    with pytest.raises(ValueError, match="same batch size"):
        fuse_audio_vision_embeds(torch.zeros(2, 4), torch.zeros(3, 4), torch.nn.Identity())
    with pytest.raises(ValueError, match=r"must be \(batch, tokens, dim\)"):
        concat_audio_vision_tokens(torch.zeros(2, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="must share batch size and width"):
        concat_audio_vision_tokens(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
