import json
import re
from pathlib import Path

import pytest
import torch

from internvideo2.data import write_sample_video
from internvideo2.eval.tasks import TASKS
from internvideo2.eval.tasks.chat import MVBENCH_SYSTEM, gold_letter, multiple_choice_question
from internvideo2.eval.tasks.chat import TASKS as CHAT_TASKS


def _stage3_testing():
    """The tiny chat model / processor builders of tests/trainers/test_stage3.py (test folders are not packages)."""
    import importlib.util

    path = Path(__file__).parents[1] / "trainers" / "test_stage3.py"
    spec = importlib.util.spec_from_file_location("_stage3_testing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TESTING = _stage3_testing()
tiny_model, tiny_processor = _TESTING.tiny_model, _TESTING.tiny_processor


def run_task(argv: list[str]) -> dict:
    """`python -m internvideo2.eval` with the chat tasks: the registered ones once they are in `TASKS`, else these."""
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="task", required=True)
    for task in {**{t.name: t for t in CHAT_TASKS}, **TASKS}.values():
        command = commands.add_parser(task.name)
        task.add_arguments(command)
        command.set_defaults(run=task.run)
    args = parser.parse_args(argv)
    return args.run(args)


pytestmark = pytest.mark.usefixtures("one_thread")


LETTERS = "ABCD"


def letter_answering_model():
    """A tiny random chat model whose greedy reply is always one of the tokens A-D, chosen by its hidden state (so it
    varies with the video and the question)."""
    model = tiny_model(seed=1)
    processor = tiny_processor()
    ids = [processor.tokenizer.convert_tokens_to_ids(letter) for letter in LETTERS]
    with torch.no_grad():
        head = model.language_model.lm_head.weight
        kept = head[ids].clone() * 50
        head.zero_()
        head[ids] = kept
    return model, processor


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat_eval")
    model, processor = letter_answering_model()
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    for index, colour in enumerate(colours):
        write_sample_video(root / "media" / f"{index}.mp4", num_frames=8, size=64, color=colour,
                           shape=["circle", "square"][index % 2])
    questions = []
    for index, colour in enumerate(colours):
        for task, question in (("colour", "What colour is the shape?"), ("shape", "Which shape moves?")):
            candidates = ["red", "green", "blue", "yellow"] if task == "colour" else ["circle", "square", "cross"]
            questions.append({"video": f"{index}.mp4", "question": question, "candidates": candidates,
                              "answer": candidates[(index + len(task)) % len(candidates)], "task_type": task})
    (root / "mc.json").write_text(json.dumps(questions))
    return root, model, processor, questions


def independent_reply(model, processor, root, record) -> str:
    """The documented MVBench prompt written out by hand, then greedy generation of one video at a time."""
    options = "".join(f"({letter}) {option}\n" for letter, option in zip(LETTERS, record["candidates"]))
    prompt = (MVBENCH_SYSTEM + "[INST] <Video>[<VID_PLH>]</Video>[/INST] [INST] Question: " + record["question"]
              + "\nOptions:\n" + options + " [/INST]Best option:(")
    inputs = processor(text=prompt, videos=[str(root / "media" / record["video"])], qformer_text=record["question"])
    with torch.no_grad():
        generated = model.eval().generate(**inputs, do_sample=False, max_new_tokens=1)
    return processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]


def test_chat_multiple_choice_accuracy_equals_an_independent_recount(chat_folder, tmp_path):
    root, model, processor, questions = chat_folder
    results = run_task([
        "chat-multiple-choice", "--model", str(root / "model"), "--annotations", str(root / "mc.json"),
        "--media-root", str(root / "media"), "--output-dir", str(tmp_path), "--device", "cpu", "--batch-size", "3",
        "--max-new-tokens", "1",
    ])
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    correct = {"colour": [], "shape": []}
    for record, prediction in zip(questions, predictions):
        reply = independent_reply(model, processor, root, record)
        assert prediction["reply"] == reply  # batched, left-padded generation == one at a time
        letter = re.match(r"\s*([A-Z])", reply)
        chosen = letter.group(1) if letter else None
        correct[record["task_type"]].append(chosen == LETTERS[record["candidates"].index(record["answer"])])
    metrics = results["metrics"]
    for task, values in correct.items():
        assert metrics["per_task"][task]["accuracy"] == pytest.approx(sum(values) / len(values))
    everything = correct["colour"] + correct["shape"]
    assert metrics["overall"]["accuracy"] == pytest.approx(sum(everything) / len(everything))
    assert 0 < sum(everything) < len(everything)  # a non-trivial mix of right and wrong answers
    assert metrics["overall"]["mean_over_tasks"] == pytest.approx(
        (sum(correct["colour"]) / 6 + sum(correct["shape"]) / 6) / 2
    )
    assert (tmp_path / "accuracy_per_task.png").stat().st_size > 0
    assert "| colour |" in (tmp_path / "results.md").read_text()


def test_chat_open_ended_exports_every_answer(chat_folder, tmp_path):
    root, model, processor, questions = chat_folder
    records = [{"video": q["video"], "question": q["question"], "answer": q["answer"]} for q in questions[:3]]
    (tmp_path / "open.json").write_text(json.dumps(records))
    run_task([
        "chat-open-ended", "--model", str(root / "model"), "--annotations", str(tmp_path / "open.json"),
        "--media-root", str(root / "media"), "--output-dir", str(tmp_path / "out"), "--device", "cpu",
        "--max-new-tokens", "4", "--batch-size", "1",
    ])
    exported = json.loads((tmp_path / "out" / "predictions.json").read_text())
    for record, row in zip(records, exported):
        prompt = "[INST] <Video>[<VID_PLH>]</Video>[/INST] [INST] " + record["question"] + " [/INST]"
        inputs = processor(text=prompt, videos=[str(root / "media" / record["video"])], qformer_text=record["question"])
        with torch.no_grad():
            generated = model.eval().generate(**inputs, do_sample=False, max_new_tokens=4)
        reply = processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
        assert row == {"video": str(root / "media" / record["video"]), "question": record["question"],
                       "prediction": reply.strip(), "answer": record["answer"]}


def test_prompt_and_gold_letter_helpers_and_errors(chat_folder, tmp_path):
    assert multiple_choice_question("Why?", ["a", "b"]) == "Question: Why?\nOptions:\n(A) a\n(B) b\n"
    assert gold_letter({"answer": "b", "candidates": ["a", "b"]}) == "B"
    assert gold_letter({"answer": "(A)", "candidates": ["x", "y"]}) == "A"
    assert gold_letter({"answer": "z", "candidates": ["x", "y"]}) is None
    root = chat_folder[0]
    (tmp_path / "bad.json").write_text(json.dumps([{"video": "0.mp4", "question": "q", "candidates": ["x", "y"],
                                                    "answer": "z"}]))
    with pytest.raises(ValueError, match="record 0 has answer 'z', which is not one of its options"):
        run_task(["chat-multiple-choice", "--model", str(root / "model"), "--annotations", str(tmp_path / "bad.json"),
                  "--media-root", str(root / "media"), "--strict", "--output-dir", str(tmp_path / "o"),
                  "--device", "cpu"])
    with pytest.raises(FileNotFoundError, match="is not a saved chat model folder"):
        run_task(["chat-open-ended", "--model", str(tmp_path / "missing"), "--annotations", str(root / "mc.json"),
                  "--media-root", str(root / "media"), "--output-dir", str(tmp_path / "p"), "--device", "cpu"])
    with pytest.raises(ValueError, match="--max-new-tokens must be a positive integer"):
        run_task(["chat-open-ended", "--model", str(root / "model"), "--annotations", str(root / "mc.json"),
                  "--media-root", str(root / "media"), "--output-dir", str(tmp_path / "q"), "--device", "cpu",
                  "--max-new-tokens", "0"])
