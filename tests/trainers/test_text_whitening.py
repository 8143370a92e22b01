"""`whiten_text_projection` on a tiny Stage-2 model: the projected caption features are white (zero mean, identity
covariance over the kept components, zero elsewhere; checked in numpy), the returned variances are numpy's
eigenvalues of the features' covariance, and bad input fails before anything changes."""

import itertools

import numpy as np
import pytest
import torch
from _stage2_testing import NO_DROPOUT, model_arguments

from internvideo2 import InternVideo2VisionModel
from internvideo2.data import COLORS
from internvideo2.trainers.arguments import InternVideo2DataArguments
from internvideo2.trainers.stage2 import build_model, build_tokenizer
from internvideo2.trainers.text_whitening import whiten_text_projection


pytestmark = pytest.mark.usefixtures("one_thread")

CAPTIONS = [
    f"a {color} {shape} {motion}"
    for color, shape, motion in itertools.product(
        COLORS, ("circle", "square", "triangle"), ("moves up", "moves down", "gets bigger", "moves to the left")
    )
]


@pytest.fixture
def model_and_tokenizer():
    torch.manual_seed(0)
    data = InternVideo2DataArguments(num_frames=4, image_size=56, max_text_length=16)
    model = build_model(model_arguments(text=NO_DROPOUT), data).eval()
    return model, build_tokenizer(model_arguments())


def cls_features_and_projection(model, tokenizer, captions):
    tokens = tokenizer(captions, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        encoding = model.encode_text(tokens["input_ids"], tokens["attention_mask"])
    return encoding.last_hidden_state[:, 0].double().numpy(), encoding.projected.double().numpy()


def test_projected_caption_features_are_white(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    variances = whiten_text_projection(model, tokenizer, CAPTIONS, 16, max_length=16, batch_size=10)
    features, projected = cls_features_and_projection(model, tokenizer, CAPTIONS)

    expected_variances = np.linalg.eigvalsh(np.cov(features, rowvar=False))[::-1][:16]
    np.testing.assert_allclose(variances.numpy(), expected_variances, rtol=1e-4)
    np.testing.assert_allclose(projected[:, :16].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(projected[:, :16], rowvar=False), np.eye(16), atol=2e-3)
    assert np.all(projected[:, 16:] == 0.0)
    assert model.training is False


def test_whitening_keeps_the_training_mode_and_device(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    model.train()
    whiten_text_projection(model, tokenizer, CAPTIONS, 4, max_length=16)
    assert model.training and model.text_projection.weight.dtype == torch.float32


def test_bad_input_fails_and_leaves_the_projection_alone(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    weight, bias = model.text_projection.weight.clone(), model.text_projection.bias.clone()
    with pytest.raises(ValueError, match=r"num_components must be an int in \[1, 64\] .* got 65"):
        whiten_text_projection(model, tokenizer, CAPTIONS, 65)
    with pytest.raises(ValueError, match=r"num_components must be an int in \[1, 2\] .*3 captions\), got 3"):
        whiten_text_projection(model, tokenizer, CAPTIONS[:3], 3)
    with pytest.raises(ValueError, match="num_components must be an int"):
        whiten_text_projection(model, tokenizer, CAPTIONS, 0)
    with pytest.raises(TypeError, match="captions must be a sequence of strings"):
        whiten_text_projection(model, tokenizer, "a red circle moves up", 2)
    with pytest.raises(ValueError, match="span fewer than num_components=4 directions"):
        whiten_text_projection(model, tokenizer, ["a red circle moves up", "a blue circle moves up"] * 5, 4)
    with pytest.raises(TypeError, match="model must be an InternVideo2Model, got InternVideo2VisionModel"):
        whiten_text_projection(InternVideo2VisionModel(model.config.vision_config), tokenizer, CAPTIONS, 4)
    assert torch.equal(model.text_projection.weight, weight) and torch.equal(model.text_projection.bias, bias)
