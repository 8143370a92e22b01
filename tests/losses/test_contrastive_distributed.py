"""VTC across 2 CPU ranks (gloo, DDP) versus the single-process loss of the same global batch.

Per-rank loss meaning: `local_loss=False` → every rank's loss is the global-batch loss; `local_loss=True` → the
ranks' losses average to it. DDP averages gradients over ranks; with the autograd gather (which sums the gradients
all ranks send to a rank's slice) the averaged gradients equal the single-process gradients. With
`gather_with_grad=False` (official semantics) projection gradients are 1/world_size of them, the temperature's not.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _vtc_ddp_worker import WORLD_SIZE, TwoTowers, global_batch


def naive_global_loss(vision, text, temperature, sample_ids):
    """Row-by-row soft-target cross-entropy, both directions (independent of the package)."""
    vision = vision / vision.norm(dim=1, keepdim=True)
    text = text / text.norm(dim=1, keepdim=True)
    n = len(sample_ids)
    terms = []
    for queries, keys in ((vision, text), (text, vision)):
        for i in range(n):
            log_probs = torch.log_softmax(torch.stack([queries[i] @ keys[j] for j in range(n)]) / temperature, dim=0)
            positives = [j for j in range(n) if sample_ids[j] == sample_ids[i]]
            terms.append(-sum(log_probs[j] for j in positives) / len(positives))
    return torch.stack(terms).sum() / (2 * n)


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("vtc_ddp")
    worker = Path(__file__).with_name("_vtc_ddp_worker.py")
    process = subprocess.Popen([sys.executable, str(worker), str(output_dir)], start_new_session=True)
    results = [output_dir / f"rank{rank}.pt" for rank in range(WORLD_SIZE)]
    try:
        # Wait for the results rather than for the exit: gloo's teardown at exit has hung now and then under load,
        # after every rank had written its results.
        deadline = time.monotonic() + 120
        while not all(path.exists() for path in results):
            assert process.poll() in (None, 0), "the 2-rank worker failed"
            assert time.monotonic() < deadline, "the 2-rank worker produced no results in 120 s"
            time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a rank writes its file only after a clean run
            process.wait(timeout=15)
    finally:
        if process.poll() is None:  # never leave ranks behind
            os.killpg(process.pid, signal.SIGKILL)
    return [torch.load(path, weights_only=True) for path in results]


@pytest.fixture(scope="module")
def single_process():
    model = TwoTowers()
    vision_inputs, text_inputs, sample_ids = global_batch()
    loss = naive_global_loss(model.vision(vision_inputs), model.text(text_inputs), model.temperature, sample_ids)
    loss.backward()
    return loss.detach(), {name: parameter.grad.clone() for name, parameter in model.named_parameters()}


@pytest.mark.parametrize("implementation", ["functional_collectives", "distributed_nn"])
@pytest.mark.parametrize("mode", ["global", "local"])
def test_ddp_gradients_equal_single_process_global_batch(rank_results, single_process, implementation, mode):
    expected_loss, expected_grads = single_process
    key = f"{implementation}.{mode}"
    losses = torch.stack([result[key]["loss"] for result in rank_results])
    if mode == "global":
        torch.testing.assert_close(losses, expected_loss.expand(WORLD_SIZE), rtol=1e-5, atol=1e-6)
    else:
        torch.testing.assert_close(losses.mean(), expected_loss, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(losses[0], losses[1])  # each rank really computed only its own rows
    for result in rank_results:
        for name, grad in expected_grads.items():
            torch.testing.assert_close(result[key]["grads"][name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("implementation", ["functional_collectives", "distributed_nn"])
def test_no_grad_gather_reproduces_official_gradient_scaling(rank_results, single_process, implementation):
    expected_loss, expected_grads = single_process
    key = f"{implementation}.no_grad_gather"
    for result in rank_results:
        torch.testing.assert_close(result[key]["loss"], expected_loss, rtol=1e-5, atol=1e-6)
        for name, grad in expected_grads.items():
            scale = 1.0 if name == "temperature" else 1.0 / WORLD_SIZE
            torch.testing.assert_close(result[key]["grads"][name], grad * scale, rtol=1e-5, atol=1e-6, msg=name)
