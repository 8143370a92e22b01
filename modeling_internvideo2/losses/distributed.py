"""Batch gathering across data-parallel ranks for the contrastive losses.

Gradient convention (the reason this file exists): when a rank computes a loss over features gathered from every
rank, the backward pass of the gather must *sum* the gradients that all ranks send to a rank's own slice. torch's
autograd-aware all-gathers do exactly that (an all-to-all / reduce-scatter with a sum), so combined with DDP's
gradient *averaging* the update equals the single-process update of the global batch. See
`InternVideo2VideoTextContrastiveLoss` for what each rank's loss means.
"""

import torch
import torch.distributed as dist


try:  # recent torch: the autograd-aware functional collective that torch recommends
    from torch.distributed._functional_collectives import all_gather_single as _all_gather_single
except ImportError:  # older torch: `torch.distributed.nn.functional.all_gather` (deprecated since)
    _all_gather_single = None


def distributed_rank_and_world_size() -> tuple[int, int]:
    """Returns `(rank, world_size)` of the default process group, or `(0, 1)` when torch.distributed is not in use."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_batch(tensor: torch.Tensor, *, with_grad: bool) -> torch.Tensor:
    """Concatenates `tensor` from every rank along dim 0 (rank order); identity outside a distributed run.

    Every rank must pass a tensor of the same shape.

    Args:
        tensor: the local batch, `(local_batch, ...)`.
        with_grad: `True` gathers with autograd: the backward sums, over all ranks, the gradients that reach this
            rank's slice. `False` gathers detached copies and puts the local, gradient-carrying `tensor` back in its
            own slot, so only this rank's loss sends gradient to this rank's features (the official InternVideo2
            gather behaves like this). Integer tensors are always gathered without autograd.
    """
    rank, world_size = distributed_rank_and_world_size()
    if world_size == 1:
        return tensor
    if with_grad and tensor.is_floating_point():
        if _all_gather_single is not None:
            return _all_gather_single(tensor.contiguous(), 0, dist.group.WORLD)
        return torch.cat(torch.distributed.nn.functional.all_gather(tensor), dim=0)
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor.detach().contiguous())
    gathered[rank] = tensor
    return torch.cat(gathered, dim=0)
