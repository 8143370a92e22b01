"""Runs the VTC loss under DDP on 2 CPU processes (gloo) and saves each rank's loss and averaged gradients.

Usage: python _vtc_ddp_worker.py OUTPUT_DIR. Launched by test_contrastive_distributed.py. The ranks are spawned (a
fork after importing transformers can deadlock on a thread some library started) and rendezvous through a file in
OUTPUT_DIR, so no TCP port can be taken by another process in between.
"""

import sys
import warnings
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import internvideo2.losses.distributed as distributed_gather
from internvideo2.losses import InternVideo2VideoTextContrastiveLoss


WORLD_SIZE = 2
MODES = {
    "global": {"local_loss": False, "gather_with_grad": True},
    "local": {"local_loss": True, "gather_with_grad": True},
    "no_grad_gather": {"local_loss": False, "gather_with_grad": False},
}


class TwoTowers(nn.Module):
    """Small linear projections feeding the loss, plus a learnable temperature."""

    def __init__(self):
        super().__init__()
        self.vision = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        generator = torch.Generator().manual_seed(1)  # same weights everywhere, global RNG untouched
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
        self.temperature = nn.Parameter(torch.tensor(0.3))

    def forward(self, vision_inputs, text_inputs):
        return self.vision(vision_inputs), self.text(text_inputs), self.temperature


def global_batch():
    generator = torch.Generator().manual_seed(0)
    vision_inputs = torch.randn(8, 6, generator=generator)
    text_inputs = torch.randn(8, 5, generator=generator)
    # ids 1 and 3 appear on both ranks: multi-positive targets across ranks
    sample_ids = torch.tensor([0, 1, 2, 3, 4, 1, 5, 3])
    return vision_inputs, text_inputs, sample_ids


def run(rank, output_dir):
    torch.set_num_threads(1)
    # the fallback pass calls the deprecated torch.distributed.nn gather on purpose
    warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_gather", category=FutureWarning)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{Path(output_dir).resolve() / 'rendezvous'}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=60),
    )
    vision_inputs, text_inputs, sample_ids = global_batch()
    local = slice(rank * 4, rank * 4 + 4)
    autograd_gather = distributed_gather._all_gather_single
    results = {}
    for implementation in ("functional_collectives", "distributed_nn"):
        # the second pass exercises the fallback gather of older torch versions
        distributed_gather._all_gather_single = autograd_gather if implementation == "functional_collectives" else None
        for mode, options in MODES.items():
            model = DistributedDataParallel(TwoTowers())
            vision, text, temperature = model(vision_inputs[local], text_inputs[local])
            loss = InternVideo2VideoTextContrastiveLoss(**options)(vision, text, temperature, sample_ids[local])
            loss.backward()
            results[f"{implementation}.{mode}"] = {
                "loss": loss.detach(),
                "grads": {name: parameter.grad.clone() for name, parameter in model.module.named_parameters()},
            }
    # written under a temporary name, then renamed: the test reads a file as soon as it appears
    partial = Path(output_dir) / f"rank{rank}.pt.partial"
    torch.save(results, partial)
    partial.rename(Path(output_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.start_processes(run, args=(sys.argv[1],), nprocs=WORLD_SIZE, start_method="spawn")
