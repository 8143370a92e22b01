"""Zero-shot video→text ranking and action classification with a converted Stage-2 model (the official demo's
computation: softmax(100 · video·text) over candidate captions; classification averages the 16 official prompts).

    python examples/zero_shot.py MODEL_DIR VIDEO --captions "a dog runs in the snow" "a man cooks" \
        --classes "playing fetch" "shoveling snow"

MODEL_DIR is the output of `python -m internvideo2.convert stage2 ... --vocab vocab.txt`.
"""

import argparse

import torch
from transformers import AutoModel, AutoProcessor

import internvideo2  # noqa: F401  (registers the InternVideo2 classes with the Auto classes)
from internvideo2.zero_shot import zero_shot_classification_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("video")
    parser.add_argument("--captions", nargs="+", required=True)
    parser.add_argument("--classes", nargs="+", required=True)
    args = parser.parse_args()

    model = AutoModel.from_pretrained(args.model).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    inputs = processor(text=args.captions, videos=args.video)
    with torch.inference_mode():
        output = model(**inputs)
        probabilities = (100 * output.video_embeds @ output.text_embeds.T).softmax(dim=-1)[0]
        class_scores = zero_shot_classification_scores(model, output.video_embeds, args.classes, processor.tokenizer)[0]
    for caption, probability in sorted(zip(args.captions, probabilities.tolist()), key=lambda pair: -pair[1]):
        print(f"{probability:.4f}  {caption}")
    print(f"predicted class: {args.classes[int(class_scores.argmax())]}")


if __name__ == "__main__":
    main()
