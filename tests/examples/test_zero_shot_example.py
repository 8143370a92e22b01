import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoProcessor

from internvideo2.convert.__main__ import main as convert_main
from internvideo2.zero_shot import zero_shot_classification_scores

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "stage2_model"
VIDEO = ROOT / "tests" / "fixtures" / "media" / "example1.mp4"
CAPTIONS = ["a man is playing the guitar", "two dogs are running on the grass", "woman cooking food"]
CLASSES = ["playing guitar", "running dog"]


def test_readme_zero_shot_example_prints_the_model_probabilities(tmp_path):
    model_dir = tmp_path / "stage2"
    assert convert_main([
        "stage2", str(FIXTURE / "state_dict.safetensors"), str(model_dir), "--vocab", str(FIXTURE / "vocab.txt"),
        "--max-text-length", "12", "--num-attention-heads", "4", "--attention-pool-num-heads", "4",
        "--text-num-attention-heads", "4",
    ]) == 0
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "zero_shot.py"), str(model_dir), str(VIDEO),
         "--captions", *CAPTIONS, "--classes", *CLASSES],
        capture_output=True, text=True, check=True,
    )
    lines = result.stdout.strip().splitlines()

    # Independent computation of the same numbers (each caption embedded alone).
    model = AutoModel.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        video = model.get_video_features(processor(videos=str(VIDEO))["pixel_values_videos"])
        texts = torch.cat([model.get_text_features(**processor(text=[caption])) for caption in CAPTIONS])
        probabilities = (100 * video @ texts.T).softmax(-1)[0]
        predicted = CLASSES[int(zero_shot_classification_scores(model, video, CLASSES, processor.tokenizer).argmax())]
    expected = [f"{p:.4f}  {c}" for c, p in sorted(zip(CAPTIONS, probabilities.tolist()), key=lambda pair: -pair[1])]
    assert lines[:3] == expected
    assert lines[3] == f"predicted class: {predicted}"
