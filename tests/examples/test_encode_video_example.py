import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_conversion_example_encodes_a_real_mp4(tmp_path):
    """The README's "convert, load with the Auto classes, encode an mp4" path, on an official-format state dict."""
    result = subprocess.run(
        [
            sys.executable, str(ROOT / "examples" / "encode_video.py"),
            str(ROOT / "tests" / "fixtures" / "vision_stage2" / "state_dict_sep.safetensors"),
            str(ROOT / "tests" / "fixtures" / "media" / "example1.mp4"),
            "--output-dir", str(tmp_path / "converted"),
            "--num-attention-heads", "4", "--attention-pool-num-heads", "4",
        ],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    # example1.mp4 has 40 frames; 4 middle-sampled frames (the checkpoint's table) are [4, 14, 24, 34].
    assert "frames [4, 14, 24, 34] of 40 at 5.0 fps" in result.stdout
    assert "tokens (1, 65, 64), embedding (1, 32)" in result.stdout
