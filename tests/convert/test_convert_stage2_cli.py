import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoProcessor

from internvideo2 import InternVideo2Model, InternVideo2Processor
from internvideo2.convert.__main__ import main as convert_main
from internvideo2.convert.stage2 import convert_stage2_checkpoint

from ..conftest import FIXTURES

HEADS = ["--num-attention-heads", "4", "--attention-pool-num-heads", "4", "--text-num-attention-heads", "4"]


def test_stage2_cli_writes_model_and_processor_that_auto_classes_load(tmp_path):
    folder = FIXTURES / "stage2_model"
    state = load_file(folder / "state_dict.safetensors")
    checkpoint = tmp_path / "InternVideo2-stage2_1b-224p-f4.pt"
    torch.save({k: v.bfloat16() if v.is_floating_point() else v for k, v in state.items()}, checkpoint)  # bf16 like the release
    output = tmp_path / "stage2"
    assert convert_main(["stage2", str(checkpoint), str(output), "--vocab", str(folder / "vocab.txt"),
                         "--max-text-length", "12", *HEADS]) == 0
    model = AutoModel.from_pretrained(output).eval()
    processor = AutoProcessor.from_pretrained(output)
    assert isinstance(model, InternVideo2Model) and isinstance(processor, InternVideo2Processor)
    assert model.dtype == torch.float32  # --dtype default

    inputs = load_file(folder / "inputs.safetensors")
    captions = ["A man is playing the guitar in a kitchen with a dog and a cat", "two dogs are running on the grass",
                "woman cooking food"]
    text = processor(text=captions)
    assert torch.equal(text["input_ids"], inputs["input_ids"])  # the official token ids of the fixture
    reference, _ = convert_stage2_checkpoint(
        {k: v.bfloat16().float() if v.is_floating_point() else v for k, v in state.items()},
        num_attention_heads=4, attention_pool_num_heads=4, text_num_attention_heads=4,
    )
    args = dict(pixel_values_videos=inputs["video"], **text)
    torch.testing.assert_close(model(**args).logits_per_video, reference(**args).logits_per_video, rtol=0, atol=0)


def test_stage2_cli_without_vocab_still_writes_the_model(tmp_path, capsys):
    state = load_file(FIXTURES / "stage2_model" / "state_dict.safetensors")
    checkpoint = tmp_path / "s2.safetensors"
    from safetensors.torch import save_file

    save_file(state, checkpoint)
    assert convert_main(["stage2", str(checkpoint), str(tmp_path / "out"), *HEADS]) == 0
    assert "no --vocab given" in capsys.readouterr().err
    assert isinstance(AutoModel.from_pretrained(tmp_path / "out"), InternVideo2Model)
    assert convert_main(["stage2", str(checkpoint), str(tmp_path / "out2"), "--num-attention-heads", "4"]) == 1
    assert "pass text_num_attention_heads" in capsys.readouterr().err
