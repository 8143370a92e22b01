import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection, VideoMAEConfig, VideoMAEModel

from internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel
from internvideo2.teachers import (
    InternVideo2EncoderTeacher,
    InternVideo2ImageTeacher,
    InternVideo2VideoTeacher,
    stage2_teacher_layers,
)

ATOL = dict(rtol=1e-5, atol=1e-5)


def tiny_clip(with_projection=True, layers=3):
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
                              image_size=28, patch_size=14, projection_dim=16)
    model_class = CLIPVisionModelWithProjection if with_projection else CLIPVisionModel
    return model_class(config)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def test_image_teacher_targets_follow_the_official_layout():
    """Per-frame teacher: cls averaged over frames then patches frame by frame; final embedding averaged over
    frames; all unit-norm (spec §2.1)."""
    model = tiny_clip()
    teacher = InternVideo2ImageTeacher(model, layers=[0, 2])
    video = torch.randn(2, 3, 3, 28, 28)
    out = teacher(video)
    with torch.no_grad():
        for b in range(2):
            per_frame = [model(pixel_values=video[b, t : t + 1], output_hidden_states=True) for t in range(3)]
            for k, layer in enumerate((0, 2)):
                states = [o.hidden_states[layer + 1][0] for o in per_frame]  # (1 + 4, 32) each
                cls = torch.stack([s[0] for s in states]).mean(0, keepdim=True)
                expected = unit(torch.cat([cls] + [s[1:] for s in states]))
                torch.testing.assert_close(out.hidden_states[k, b], expected, **ATOL)
            final = torch.stack([o.image_embeds[0] for o in per_frame]).mean(0)
            torch.testing.assert_close(out.final_embeds[b], unit(final), **ATOL)


def test_image_teacher_attention_is_the_last_layers_cls_attention():
    """Recomputed by hand from the input of the last layer: LayerNorm, q / k projections, softmax per head, the cls
    row over the patches, averaged over heads."""
    model = tiny_clip(with_projection=False)
    teacher = InternVideo2ImageTeacher(model, layers=[1])
    assert model.config._attn_implementation == "eager"  # the only backend that returns attention maps
    video = torch.randn(2, 2, 3, 28, 28)
    out = teacher(video)
    last = model.encoder.layers[-1]
    with torch.no_grad():
        states = model(pixel_values=video.flatten(0, 1), output_hidden_states=True).hidden_states[-2]
        x = last.layer_norm1(states)
        q, k = last.self_attn.q_proj(x), last.self_attn.k_proj(x)
        expected = torch.zeros(4, 4)
        for i in range(4):
            for h in range(4):
                qh, kh = q[i, :, h * 8 : (h + 1) * 8], k[i, :, h * 8 : (h + 1) * 8]
                probabilities = torch.softmax(qh[0] @ kh.T / 8**0.5, dim=-1)
                expected[i] += probabilities[1:] / 4
    assert out.attention.shape == (2, 2, 4)  # (batch, frames, patches per frame)
    torch.testing.assert_close(out.attention, expected.view(2, 2, 4), **ATOL)
    torch.testing.assert_close(out.final_embeds, unit(model(pixel_values=video.flatten(0, 1)).pooler_output.view(2, 2, -1).mean(1)), **ATOL)


def test_image_teacher_renormalises_pixels_for_its_own_mean_and_std():
    model = tiny_clip()
    clip_mean, clip_std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    teacher = InternVideo2ImageTeacher(model, layers=[2], return_attention=False, image_mean=clip_mean, image_std=clip_std)
    video = torch.randn(1, 2, 3, 28, 28)
    imagenet_mean, imagenet_std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    raw = video * imagenet_std.view(3, 1, 1) + imagenet_mean.view(3, 1, 1)
    clip_input = (raw - torch.tensor(clip_mean).view(3, 1, 1)) / torch.tensor(clip_std).view(3, 1, 1)
    with torch.no_grad():
        expected = unit(model(pixel_values=clip_input[0]).image_embeds.mean(0))
    torch.testing.assert_close(teacher(video).final_embeds[0], expected, **ATOL)
    assert teacher(video).attention is None


def test_video_teacher_reads_the_last_layer_after_the_final_norm():
    torch.manual_seed(0)
    config = VideoMAEConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                            image_size=28, patch_size=14, num_frames=4, tubelet_size=2, use_mean_pooling=False)
    model = VideoMAEModel(config)
    teacher = InternVideo2VideoTeacher(model, layers=[1, 2])
    assert teacher.frames_per_token == 2 and teacher.hidden_size == 24
    video = torch.randn(2, 4, 3, 28, 28)
    out = teacher(video)
    with torch.no_grad():
        states = model(pixel_values=video, output_hidden_states=True).hidden_states
        final = F.layer_norm(states[3], (24,), model.layernorm.weight, model.layernorm.bias, eps=config.layer_norm_eps)
    assert out.hidden_states.shape == (2, 2, 8, 24)  # (layers, batch, 2 tubelets x 4 patches, width)
    torch.testing.assert_close(out.hidden_states[0], unit(states[2]), **ATOL)
    torch.testing.assert_close(out.hidden_states[1], unit(final), **ATOL)
    assert out.final_embeds is None and out.attention is None


def test_encoder_teacher_is_the_official_distillation_teacher():
    """S/B/L distillation (spec §2.5): layers 39 - int(k * 3.34), pool output, pool attention over all patches."""
    assert stage2_teacher_layers() == (23, 26, 29, 33, 36, 39)
    torch.manual_seed(0)
    config = InternVideo2VisionConfig(hidden_size=32, num_hidden_layers=6, num_attention_heads=4, intermediate_size=64,
                                      image_size=28, num_frames=2, attention_pool_num_heads=4,
                                      attention_pool_output_size=16)
    model = InternVideo2VisionModel(config)
    teacher = InternVideo2EncoderTeacher(model, num_layers=2, interval=2)
    assert teacher.layers == (3, 5)
    video = torch.randn(2, 2, 3, 28, 28)
    out = teacher(video)
    pool = model.pooler
    with torch.no_grad():
        states = model(pixel_values_videos=video, output_hidden_states=True).hidden_states
        x = states[-1]
        query = pool.q_proj(pool.norm_q(x.mean(1, keepdim=True)))
        keys = pool.k_proj(pool.norm_k(x))
        attention = torch.zeros(2, 9)
        for h in range(4):
            scores = query[:, :, h * 8 : (h + 1) * 8] @ keys[:, :, h * 8 : (h + 1) * 8].transpose(1, 2) / 8**0.5
            attention += scores.softmax(-1)[:, 0] / 4
    torch.testing.assert_close(out.hidden_states, unit(torch.stack([states[4], states[6]])), **ATOL)
    torch.testing.assert_close(out.final_embeds, unit(model(pixel_values_videos=video).pooler_output), **ATOL)
    torch.testing.assert_close(out.attention, attention[:, 1:], **ATOL)  # (batch, all 2 x 4 patches): one joint draw


def test_teachers_are_frozen_and_stay_in_eval_mode():
    teacher = InternVideo2ImageTeacher(tiny_clip(), layers=[-1])
    assert teacher.layers == (2,)
    teacher.train()
    assert not teacher.training and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_bad_teacher_layers_give_one_line_errors():
    with pytest.raises(ValueError, match=r"teacher layers \[3\] do not exist: CLIPVisionModelWithProjection has 3 layers"):
        InternVideo2ImageTeacher(tiny_clip(), layers=[1, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        InternVideo2ImageTeacher(tiny_clip(), layers=[2, 1])
    with pytest.raises(TypeError, match="non-empty sequence of ints"):
        InternVideo2ImageTeacher(tiny_clip(), layers=2)
    with pytest.raises(TypeError, match="must be an InternVideo2VisionModel"):
        InternVideo2EncoderTeacher(tiny_clip(), layers=[1])
    with pytest.raises(ValueError, match="pass both image_mean and image_std"):
        InternVideo2ImageTeacher(tiny_clip(), layers=[1], image_mean=(0.5, 0.5, 0.5))
