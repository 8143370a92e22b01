import math

import numpy as np
import pytest
import torch

from internvideo2.losses import InternVideo2DistillationLoss, cosine_distillation_loss


def naive_cosine_distance(student, teacher, normalize_student=True, normalize_teacher=True):
    """Mean over every (layer, sample, token) vector of 2 − 2·⟨s, t⟩ (loops, float64)."""
    s = np.asarray(student, dtype=np.float64).reshape(-1, student.shape[-1])
    t = np.asarray(teacher, dtype=np.float64).reshape(-1, teacher.shape[-1])
    total = 0.0
    for a, b in zip(s, t):
        if normalize_student:
            a = a / math.sqrt(sum(x * x for x in a))
        if normalize_teacher:
            b = b / math.sqrt(sum(x * x for x in b))
        total += 2 - 2 * sum(x * y for x, y in zip(a, b))
    return total / len(s)


def random_pair(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * 2, torch.randn(*shape, generator=generator) + 0.5


@pytest.mark.parametrize("shape", [(3, 2, 5, 8), (4, 6)])
@pytest.mark.parametrize("normalize", [(True, True), (False, False), (True, False)])
def test_cosine_distillation_matches_naive_loop(shape, normalize):
    student, teacher = random_pair(*shape)
    loss = cosine_distillation_loss(student, teacher, normalize_student=normalize[0], normalize_teacher=normalize[1])
    expected = naive_cosine_distance(student.numpy(), teacher.numpy(), *normalize)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5, atol=1e-5)


def test_unit_features_give_the_same_loss_with_or_without_normalisation_and_equal_squared_distance():
    student, teacher = random_pair(2, 3, 4)
    student, teacher = student / student.norm(dim=-1, keepdim=True), teacher / teacher.norm(dim=-1, keepdim=True)
    normalised = cosine_distillation_loss(student, teacher)
    raw = cosine_distillation_loss(student, teacher, normalize_student=False, normalize_teacher=False)
    torch.testing.assert_close(normalised, raw)
    torch.testing.assert_close(raw, ((student - teacher) ** 2).sum(-1).mean())


def test_gradient_flows_to_the_student_only():
    student, teacher = random_pair(3, 4)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    cosine_distillation_loss(student, teacher).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None


def test_stage1_weighted_sum_of_components():
    middle = random_pair(2, 2, 5, 8, seed=1)
    final = random_pair(2, 6, seed=2)
    mae = random_pair(3, 2, 4, 7, seed=3)
    ratios = {"clip_middle": 1.0, "clip_final": 0.5, "mae": 2.0}
    output = InternVideo2DistillationLoss(ratios)(
        {"clip_middle": middle[0], "clip_final": final[0], "mae": mae[0]},
        {"clip_middle": middle[1], "clip_final": final[1], "mae": mae[1]},
    )
    expected_parts = {
        name: naive_cosine_distance(pair[0].numpy(), pair[1].numpy())
        for name, pair in (("clip_middle", middle), ("clip_final", final), ("mae", mae))
    }
    for name, value in expected_parts.items():
        np.testing.assert_allclose(output.component_losses[name].item(), value, rtol=1e-5)
    np.testing.assert_allclose(output.loss.item(), sum(ratios[n] * v for n, v in expected_parts.items()), rtol=1e-5)


def test_default_ratios_are_one():
    middle, final = random_pair(2, 3, 4, seed=4), random_pair(3, 4, seed=5)
    output = InternVideo2DistillationLoss()(
        {"middle": middle[0], "final": final[0]}, {"middle": middle[1], "final": final[1]}
    )
    expected = naive_cosine_distance(middle[0].numpy(), middle[1].numpy()) + naive_cosine_distance(
        final[0].numpy(), final[1].numpy()
    )
    np.testing.assert_allclose(output.loss.item(), expected, rtol=1e-5)


def test_distillation_learning_signal():
    torch.manual_seed(0)
    inputs = torch.randn(64, 6)
    targets = inputs @ torch.randn(6, 5)  # reachable by a linear student, up to scale
    student = torch.nn.Linear(6, 5)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    losses = []
    for _ in range(100):
        loss = cosine_distillation_loss(student(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 < losses[0]


def test_distillation_errors():
    a, b = torch.randn(2, 3), torch.randn(2, 4)
    with pytest.raises(ValueError, match="must have the same shape"):
        cosine_distillation_loss(a, b)
    loss_fn = InternVideo2DistillationLoss({"middle": 1.0})
    with pytest.raises(ValueError, match="differ"):
        loss_fn({"middle": a}, {"final": a})
    with pytest.raises(ValueError, match=r"components \['final'\] have no ratio"):
        loss_fn({"middle": a, "final": a}, {"middle": a, "final": a})
    with pytest.raises(ValueError, match="at least one component"):
        loss_fn({}, {})
