"""Checkpoint and resume through the command line: a run stopped by `max_steps` and resumed from its last checkpoint
logs exactly the losses of an uninterrupted run (all Stage-2 losses, dropout, random masks, random augmentation)."""

import pytest
import torch
from _stage2_testing import cli_arguments, finish, make_color_clips, stage2_command, start, training_losses

from internvideo2 import InternVideo2Model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    # 8 clips in batches of 4: 2 steps per epoch, so the resumed run restarts mid-epoch and then crosses epochs
    clips = make_color_clips(root / "data", num_train=8)
    common = dict(per_device_train_batch_size=4, save_strategy="steps", save_steps=3)
    text = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
    full, stopped = root / "full", root / "stopped"
    first = {  # the uninterrupted run and the one stopped at step 3 run side by side
        "full": stage2_command(*cli_arguments(clips, full, text=text, max_steps=6, **common)),
        "stopped": stage2_command(*cli_arguments(clips, stopped, text=text, max_steps=3, **common)),
    }
    processes = {name: start(command, root / f"{name}.log") for name, command in first.items()}
    for name, process in processes.items():
        finish(process, root / f"{name}.log", timeout=180)
    checkpoint = stopped / "checkpoint-3"
    resumed = stage2_command(
        *cli_arguments(clips, stopped, text=text, max_steps=6, resume_from_checkpoint=checkpoint, **common)
    )
    finish(start(resumed, root / "resumed.log"), root / "resumed.log", timeout=180)
    return full, stopped


def test_resumed_run_logs_the_uninterrupted_losses(runs):
    full, resumed = runs
    uninterrupted, continued = training_losses(full), training_losses(resumed)
    assert sorted(uninterrupted) == list(range(1, 7)) and sorted(continued) == list(range(1, 7))
    print("\nstep: uninterrupted loss / resumed loss")
    for step in range(4, 7):
        print(f"{step}: {uninterrupted[step]['loss']:.6f} / {continued[step]['loss']:.6f}")
        assert set(continued[step]) == {"loss", "loss_vtc", "loss_vtm", "loss_mlm"}
        for name, value in uninterrupted[step].items():
            assert continued[step][name] == pytest.approx(value, rel=1e-6, abs=1e-7), (step, name)
    assert uninterrupted[4]["loss"] != uninterrupted[5]["loss"]  # the steps differ: equal logs are not trivial


def test_resumed_run_saves_the_same_model(runs):
    full, resumed = runs
    first = InternVideo2Model.from_pretrained(full)
    second = InternVideo2Model.from_pretrained(resumed)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
