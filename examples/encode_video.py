"""Convert an official InternVideo2 vision checkpoint, load it with the Auto classes and encode an mp4.

    python examples/encode_video.py CHECKPOINT VIDEO [--output-dir converted] [conversion options...]

e.g. with a released file:  python examples/encode_video.py 1B_ft_k710_ft_k400_f8.pth my_clip.mp4
The conversion options (--num-attention-heads, --source-image-size, ...) are those of `python -m internvideo2.convert
vision`; released checkpoints need none.
"""

import argparse
import subprocess
import sys

import torch
from transformers import AutoModel
from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # works with or without torchvision

import internvideo2  # noqa: F401  (registers the InternVideo2 classes with the Auto classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("video")
    parser.add_argument("--output-dir", default="converted")
    args, conversion_options = parser.parse_known_args()

    subprocess.run(
        [sys.executable, "-m", "internvideo2.convert", "vision", args.checkpoint, args.output_dir, "--overwrite",
         *conversion_options],
        check=True,
    )
    model = AutoModel.from_pretrained(args.output_dir).eval()  # the encoder (a classifier's backbone too)
    processor = AutoVideoProcessor.from_pretrained(args.output_dir)

    inputs = processor(args.video, return_tensors="pt", return_metadata=True)
    with torch.inference_mode():
        output = model(pixel_values_videos=inputs["pixel_values_videos"])
    metadata = inputs["video_metadata"][0]
    print(f"frames {list(metadata.frames_indices)} of {metadata.total_num_frames} at {metadata.fps:.1f} fps")
    print(f"tokens {tuple(output.last_hidden_state.shape)}, embedding {tuple(output.pooler_output.shape)}")
    print("embedding[:4]", [round(v, 4) for v in output.pooler_output[0, :4].tolist()])


if __name__ == "__main__":
    main()
