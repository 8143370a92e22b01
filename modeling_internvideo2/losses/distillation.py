"""Feature distillation by cosine alignment: Stage-1 unmasked-teacher distillation and Stage-2 UTA."""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput


def cosine_distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    normalize_student: bool = True,
    normalize_teacher: bool = True,
) -> torch.Tensor:
    """`mean(2 − 2·⟨s, t⟩)` over every leading dimension (layers, batch, tokens) of `(..., dim)` features.

    With unit vectors this is `2 − 2·cos(s, t)` = `‖s − t‖²`. The official decoders and teachers already
    return unit vectors; normalising again (the default) changes nothing but rounding and keeps the loss a true
    cosine distance for inputs that are not yet normalised. With `normalize_*=False` the raw inner product is
    used: pass already normalised features then.

    Args:
        student: `(..., dim)` student features (e.g. `(layers, batch, visible_tokens, dim)` or `(batch, dim)`).
        teacher: the matching teacher targets, same shape as `student`; no gradient is sent to it.
        normalize_student: L2-normalise the student features over `dim` first.
        normalize_teacher: L2-normalise the teacher features over `dim` first.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must have the same shape")
    teacher = teacher.detach()
    if normalize_student:
        student = F.normalize(student, dim=-1)
    if normalize_teacher:
        teacher = F.normalize(teacher, dim=-1)
    return (2 - 2 * (student * teacher).sum(dim=-1)).mean()


@dataclass
class InternVideo2DistillationLossOutput(ModelOutput):
    """Output of `InternVideo2DistillationLoss`.

    Args:
        loss: `Σ ratio[name] · component_losses[name]`.
        component_losses: the unweighted `cosine_distillation_loss` of each component, for logging.
    """

    loss: torch.FloatTensor | None = None
    component_losses: dict[str, torch.Tensor] | None = None


class InternVideo2DistillationLoss(nn.Module):
    """Weighted sum of cosine alignment losses between named student outputs and teacher targets.

    Stage 1 (`--clip_loss_ratio 1 1 --mae_loss_ratio 1`): components `clip_middle` (student clip decoders vs
    InternVL middle layers, `(layers, batch, visible_tokens, dim)`), `clip_final` (`(batch, dim)`) and `mae`
    (`(layers, batch, visible_patches, dim)`), ratios 1. Stage-2 UTA (`clip_loss_ratio=[1, 1]`, weight 0 in the
    released configs): components `middle` and `final`. Distilled S/B/L: `middle` and `final`.

    Args:
        component_ratios: weight of each component by name; `None` weighs every given component 1. When given, every
            component passed to `forward` must be listed.
        normalize_student: see `cosine_distillation_loss`.
        normalize_teacher: see `cosine_distillation_loss`.
    """

    def __init__(
        self,
        component_ratios: Mapping[str, float] | None = None,
        normalize_student: bool = True,
        normalize_teacher: bool = True,
    ):
        super().__init__()
        self.component_ratios = dict(component_ratios) if component_ratios is not None else None
        self.normalize_student = normalize_student
        self.normalize_teacher = normalize_teacher

    def forward(
        self, student: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor]
    ) -> InternVideo2DistillationLossOutput:
        """Args:
            student: component name → student features `(..., dim)`.
            teacher: component name → teacher targets of the same shape (same names as `student`).

        Returns:
            `InternVideo2DistillationLossOutput`.
        """
        if set(student) != set(teacher):
            raise ValueError(f"student components {sorted(student)} and teacher components {sorted(teacher)} differ")
        if not student:
            raise ValueError("student must contain at least one component")
        if self.component_ratios is not None and not set(student) <= set(self.component_ratios):
            missing = sorted(set(student) - set(self.component_ratios))
            raise ValueError(f"components {missing} have no ratio in component_ratios {self.component_ratios}")
        component_losses = {
            name: cosine_distillation_loss(
                student[name],
                teacher[name],
                normalize_student=self.normalize_student,
                normalize_teacher=self.normalize_teacher,
            )
            for name in student
        }
        ratios = self.component_ratios or {}
        loss = sum(ratios.get(name, 1.0) * value for name, value in component_losses.items())
        return InternVideo2DistillationLossOutput(loss=loss, component_losses=component_losses)
