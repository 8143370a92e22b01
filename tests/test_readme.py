"""Everything README.md shows runs here.

Python blocks: each ```python block is read from README.md at test time and executed verbatim in a fresh namespace,
in a folder holding tiny stand-ins for the names it uses (converted from the official-format fixtures with the real
converter), and its results are checked against a computation done separately in the test. A block is matched to
its stand-ins by a keyword it contains (its model folder); a block without a known keyword fails.

Bash blocks: every command line that runs an `internvideo2` module (`python -m`, `python3 -m`, `torchrun ... -m`) is
parsed by that entry point's real argument parser, without running the work, so a renamed or misspelled flag fails.
"""

import importlib
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.distributed.run import parse_args as parse_torchrun_args
from transformers import PreTrainedTokenizerFast
from transformers.utils import is_flash_attn_2_available

from internvideo2 import InternVideo2VisionModel  # also registers the Auto classes
from internvideo2.convert.__main__ import main as convert_main
from internvideo2.convert.vision import convert_vision_checkpoint
from internvideo2.data import write_sample_video
from internvideo2.processing import InternVideo2VideoProcessor
from internvideo2.zero_shot import build_class_prompts

from .conftest import FIXTURES
from .test_modeling_chat import fixture_model

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.usefixtures("one_thread")


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)


# ------------------------------------------------------------------------------------------------ python blocks
# Each setup writes the block's inputs into the current folder and returns a check of the block's namespace.


def setup_vision_block(folder: Path):
    """`internvideo2-1b-k400`: a released classifier converted like the README's `convert vision` line (here the
    official-format tiny classifier, with its position table interpolated to the 8 frames of the `f8` checkpoint)."""
    state = load_file(FIXTURES / "vision_single_modality" / "state_dict.safetensors")
    torch.save({"module": state}, folder / "1B_ft_k710_ft_k400_f8.pth")
    heads = dict(num_attention_heads=4, attention_pool_num_heads=4)  # tiny widths are no released preset
    assert convert_main(["vision", "1B_ft_k710_ft_k400_f8.pth", "internvideo2-1b-k400", "--num-frames", "8",
                         "--source-image-size", "56", "--num-attention-heads", "4",
                         "--attention-pool-num-heads", "4"]) == 0
    write_sample_video(folder / "my_clip.mp4", num_frames=24, size=72, motion="orbit", shape="triangle")

    def check(namespace):
        # the model built in memory from the same state dict, fed by a processor configured by hand
        reference, _ = convert_vision_checkpoint(state, source_image_size=56, num_frames=8, **heads)
        reference.eval()
        pixels = InternVideo2VideoProcessor(num_frames=8, size=56)(str(folder / "my_clip.mp4"), return_tensors="pt")
        pixels = pixels["pixel_values_videos"]
        assert pixels.shape == (1, 8, 3, 56, 56)  # the README's (1, 8, 3, 224, 224) at the tiny size
        torch.testing.assert_close(namespace["inputs"]["pixel_values_videos"], pixels, rtol=0, atol=0)
        with torch.no_grad():
            expected = reference.internvideo2(pixel_values_videos=pixels).pooler_output
        model = namespace["model"]
        assert type(model) is InternVideo2VisionModel  # AutoModel gives the classifier's backbone
        if "embedding" in namespace:  # the GPU block: bf16 weights, flash-attention-2 when installed, else sdpa
            assert model.dtype == torch.bfloat16
            assert model.config._attn_implementation == ("flash_attention_2" if is_flash_attn_2_available() else "sdpa")
            embedding = namespace["embedding"].float().cpu()
            assert namespace["embedding"].dtype == torch.bfloat16 and embedding.shape == expected.shape
            assert F.cosine_similarity(embedding, expected).min() > 0.99  # bf16 rounding, not a different model
        else:
            torch.testing.assert_close(namespace["output"].pooler_output, expected, rtol=1e-5, atol=1e-5)

    return check


STAGE2 = FIXTURES / "stage2_model"


def setup_stage2_block(folder: Path):
    """`internvideo2-stage2-1b`: the official-format tiny Stage-2 model converted like the README's `convert stage2`
    line, and the official demo clip `example1.mp4`."""
    shutil.copy(STAGE2 / "state_dict.safetensors", folder / "InternVideo2-stage2_1b-224p-f4.safetensors")
    shutil.copy(STAGE2 / "vocab.txt", folder / "vocab.txt")
    assert convert_main(["stage2", "InternVideo2-stage2_1b-224p-f4.safetensors", "internvideo2-stage2-1b",
                         "--vocab", "vocab.txt", "--max-text-length", "12", "--num-attention-heads", "4",
                         "--attention-pool-num-heads", "4", "--text-num-attention-heads", "4"]) == 0
    shutil.copy(FIXTURES / "media" / "example1.mp4", folder / "example1.mp4")

    def check(namespace):
        model, processor = namespace["model"], namespace["processor"]
        with torch.no_grad():
            video = model.get_video_features(processor(videos=str(folder / "example1.mp4"))["pixel_values_videos"])
            # each caption and each class prompt embedded alone (no batch padding)
            texts = torch.cat([model.get_text_features(**processor(text=[caption]))
                               for caption in namespace["captions"]])
            class_names = ["playing fetch", "shoveling snow"]
            prompts = build_class_prompts(class_names)
            prompt_embeds = torch.cat([F.normalize(model.get_text_features(**processor(text=[prompt])), dim=-1)
                                       for prompt in prompts])
        probabilities = namespace["probabilities"]
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(1), rtol=0, atol=1e-6)
        torch.testing.assert_close(probabilities, (100 * video @ texts.T).softmax(-1), rtol=1e-5, atol=1e-5)
        # the Stage-2 evaluator: softmax over all prompts of all classes, then each class's mean
        per_prompt = (F.normalize(video, dim=-1) @ prompt_embeds.T).softmax(-1)[0]
        per_class = [per_prompt[[i for i, p in enumerate(prompts) if p in set(build_class_prompts([name]))]].mean()
                     for name in class_names]
        torch.testing.assert_close(namespace["classes"], torch.stack(per_class)[None], rtol=1e-5, atol=1e-6)

    return check


CHAT = FIXTURES / "chat_full"


def setup_chat_block(folder: Path):
    """`internvideo2-chat`: the official-format tiny chat checkpoint converted with the README's `convert chat` line
    (its LLM config, LLM tokenizer and Q-Former vocab as the user downloads them), and a generated `clip.mp4`."""
    save_file(load_file(CHAT / "state_dict.safetensors"), folder / "InternVideo2-Chat-8B.safetensors")
    (folder / "llm").mkdir()
    shutil.copy(CHAT / "llm_config.json", folder / "llm" / "config.json")
    PreTrainedTokenizerFast(tokenizer_file=str(CHAT / "llm_tokenizer" / "tokenizer.json"), bos_token="<s>",
                            eos_token="</s>", unk_token="<unk>").save_pretrained(folder / "tokenizer")
    assert convert_main(["chat", "InternVideo2-Chat-8B.safetensors", "internvideo2-chat", "--llm-config", "llm",
                         "--tokenizer", "tokenizer", "--qformer-tokenizer", str(CHAT / "qformer_vocab.txt"),
                         "--num-attention-heads", "4", "--qformer-num-attention-heads", "4"]) == 0
    write_sample_video(folder / "clip.mp4", num_frames=16, size=64, motion="left_to_right", color="blue")

    def check(namespace):
        processor = namespace["processor"]
        inputs = processor(text=[namespace["prompt"]], videos=[str(folder / "clip.mp4")], return_tensors="pt")
        ids = inputs["input_ids"]
        # greedy decoding without a KV cache, one full forward per token, on the model converted in memory
        reference = fixture_model()[0]
        eos = processor.tokenizer.eos_token_id
        with torch.no_grad():
            for _ in range(64):
                logits = reference(input_ids=ids, pixel_values_videos=inputs["pixel_values_videos"],
                                   qformer_input_ids=inputs.get("qformer_input_ids"),
                                   qformer_attention_mask=inputs.get("qformer_attention_mask")).logits
                ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
                if ids[0, -1] == eos:
                    break
        # the block decodes the whole sequence, prompt included; decoding only the new tokens (the recommended README
        # fix, as lmms-eval does) must then give the answer alone, so either is the exact greedy result
        prompt_length = inputs["input_ids"].shape[1]
        assert ids.shape[1] > prompt_length
        assert namespace["answer"] in (processor.batch_decode(ids, skip_special_tokens=True),
                                       processor.batch_decode(ids[:, prompt_length:], skip_special_tokens=True))

    return check


PYTHON_BLOCK_SETUPS = {
    "internvideo2-1b-k400": setup_vision_block,
    "internvideo2-stage2-1b": setup_stage2_block,
    "internvideo2-chat": setup_chat_block,
}
PYTHON_BLOCKS = fenced_blocks("python")


def test_every_python_block_has_exactly_one_setup_and_every_setup_a_block():
    keywords = [[key for key in PYTHON_BLOCK_SETUPS if f'"{key}"' in block] for block in PYTHON_BLOCKS]
    unknown = [block.splitlines()[0] for block, found in zip(PYTHON_BLOCKS, keywords) if len(found) != 1]
    assert not unknown, f"README python blocks without exactly one stand-in setup in tests/test_readme.py: {unknown}"
    assert {k for found in keywords for k in found} == set(PYTHON_BLOCK_SETUPS), "a setup lost its block"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"python-block-{i}" for i in range(len(PYTHON_BLOCKS))])
def test_readme_python_block_runs_and_computes_the_right_values(block, tmp_path, monkeypatch):
    setups = [setup for key, setup in PYTHON_BLOCK_SETUPS.items() if f'"{key}"' in block]
    if len(setups) != 1:
        pytest.fail(f"no stand-in setup for this README python block, add one to PYTHON_BLOCK_SETUPS:\n{block}")
    monkeypatch.chdir(tmp_path)
    check = setups[0](tmp_path)
    namespace = {"__name__": "readme_block"}
    exec(compile(block, "README.md", "exec"), namespace)
    check(namespace)


# -------------------------------------------------------------------------------------------------- bash blocks


def readme_commands() -> list[list[str]]:
    """The argv of every `internvideo2` command in README's bash blocks (continuations joined, comments dropped,
    `a && b` split, leading VAR=value assignments dropped); `bash .ci/install` is tests/test_packaging.py's."""
    commands = []
    for block in fenced_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                    argv = argv[1:]
                if any("internvideo2" in word for word in argv):
                    commands.append(argv)
    return commands


class CommandRejected(Exception):
    pass


def parse_training_arguments(module: str, argv: list[str], monkeypatch):
    """A training command's `parse_args` (HfArgumentParser + TrainingArguments). TrainingArguments refuses `--bf16` on
    a machine without a bf16 GPU unless `--use_cpu` is given: a hardware probe, not an argument check (the README's
    commands are for GPUs). The probe is made to answer yes; every other validation, the DeepSpeed config file
    included, runs as on a GPU machine."""
    from transformers import training_args
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    with monkeypatch.context() as patch:
        patch.setattr(training_args, "is_torch_bf16_gpu_available", lambda: True)
        try:
            parsed = importlib.import_module(module).parse_args(argv)
        finally:
            unset_hf_deepspeed_config()  # TrainingArguments(deepspeed=...) registers its config globally
    assert parsed[-1].bf16 == ("--bf16" in argv)
    return parsed


def check_command(argv: list[str], monkeypatch) -> None:
    """Parse one README command with its entry point's real parser; CommandRejected names what it refused."""
    if argv[0] == "torchrun":
        launch = parse_torchrun_args(argv[1:])
        if not launch.module:
            raise CommandRejected(f"torchrun runs {launch.training_script} as a script, not with -m: {argv}")
        module, args = launch.training_script, launch.training_script_args
    elif argv[0] in ("python", "python3") and argv[1] == "-m":
        module, args = argv[2], argv[3:]
    else:
        raise CommandRejected(f"not a python -m / torchrun -m command, teach tests/test_readme.py to check it: {argv}")
    monkeypatch.chdir(ROOT)  # relative paths in the README (examples/deepspeed/...) are repository paths
    try:
        if module in ("internvideo2", "internvideo2.convert", "internvideo2.eval"):
            importlib.import_module(f"{module}.__main__").build_parser().parse_args(args)
        elif module.startswith("internvideo2.trainers."):
            parse_training_arguments(module, args, monkeypatch)
        else:
            raise CommandRejected(f"no argument check for module {module}, add one to tests/test_readme.py: {argv}")
    except SystemExit as error:  # argparse: unknown flag, bad value, missing argument (its message is on stderr)
        raise CommandRejected(f"{module} exits with {error.code} on {args}") from error
    except ValueError as error:  # HfArgumentParser: "Some specified arguments are not used ..."; TrainingArguments
        raise CommandRejected(f"{module}: {error}") from error


README_COMMANDS = readme_commands()


def module_of(argv: list[str]) -> str:
    return argv[argv.index("-m") + 1]


def test_readme_shows_the_commands_this_file_expects():
    modules = {module_of(argv) for argv in README_COMMANDS}
    assert {"internvideo2", "internvideo2.convert", "internvideo2.eval", "internvideo2.trainers.stage2"} <= modules
    assert len(README_COMMANDS) >= 18


@pytest.mark.parametrize(
    "argv", README_COMMANDS, ids=[f"{i}:{module_of(argv)} {argv[argv.index('-m') + 2]}" for i, argv in
                                 enumerate(README_COMMANDS)]
)
def test_readme_command_is_accepted_by_its_parser(argv, monkeypatch):
    check_command(argv, monkeypatch)


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["python3", "-m", "internvideo2", "demo", "--preset", "B/14"], "exits with 2"),
        (["python", "-m", "internvideo2.convert", "vision", "in.pth", "out", "--dtype", "bfloat16"], "exits with 2"),
        (["python", "-m", "internvideo2.eval", "retrieval", "--model", "m", "--annotations", "a.json",
          "--media-root", "v"], "exits with 2"),
        (["torchrun", "--nproc_per_node", "2", "-m", "internvideo2.trainers.stage2", "--train_files", "t.json",
          "--output_dir", "out", "--bf16", "--deepspeed", "examples/deepspeed/zero1.json"],
         r"not used by the HfArgumentParser: \['--no-such-flag', '1'\]"),
    ],
    ids=["internvideo2", "convert", "eval", "torchrun-stage2"],
)
def test_checker_rejects_an_unknown_flag(argv, refusal, monkeypatch, capsys):
    """A valid command of each entry-point kind is accepted, and refused once a flag no parser knows is added."""
    check_command(argv, monkeypatch)
    with pytest.raises(CommandRejected, match=refusal):
        check_command([*argv, "--no-such-flag", "1"], monkeypatch)
    if refusal == "exits with 2":
        assert "unrecognized arguments: --no-such-flag 1" in capsys.readouterr().err
