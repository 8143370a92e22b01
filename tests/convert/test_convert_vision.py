import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForVideoClassification
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from internvideo2.convert.__main__ import main as convert_main
from internvideo2.convert.checkpoint_io import CheckpointConversionError, check_against_model, load_checkpoint
from internvideo2.convert.vision import OTHER_TOWER, TRAINING_ONLY, convert_vision_checkpoint, convert_vision_state_dict
from internvideo2.modeling_vision import InternVideo2ForVideoClassification, InternVideo2VisionModel
from internvideo2.processing import InternVideo2VideoProcessor

from ..conftest import FIXTURES

KEYS = json.loads((FIXTURES / "full_size_keys" / "keys.json").read_text())["models"]
HEADS = dict(num_attention_heads=4, attention_pool_num_heads=4)


def meta_state_dict(shapes: dict) -> dict:
    return {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}


def chat_tower_keys() -> dict:
    """The chat checkpoint's vision tower (spec §7.2): the 1B Stage-2 tower cut to 39 blocks, bare `ls1`/`ls2`,
    no attention pool or decoders, plus `vision_layernorm`."""
    shapes = {}
    for key, shape in KEYS["multi_modality.InternVideo2_Stage2_visual_1B"]["keys"].items():
        if not key.startswith("vision_encoder.") or any(
            part in key for part in ("clip_decoder", "clip_projector", "clip_pos", "clip_img", "final_clip", "blocks.39.")
        ):
            continue
        shapes[key.replace(".gamma", "")] = shape
    shapes["vision_layernorm.weight"] = shapes["vision_layernorm.bias"] = [1408]
    return shapes


@pytest.mark.parametrize("name", sorted(KEYS) + ["chat.InternVideo2_Chat_8B.vision"])
def test_every_released_architecture_converts_completely_on_meta(name):
    shapes = chat_tower_keys() if name.startswith("chat.") else KEYS[name]["keys"]
    converted, config, report = convert_vision_state_dict(meta_state_dict(shapes), source=name)
    model_class = InternVideo2ForVideoClassification if "head.weight" in shapes else InternVideo2VisionModel
    with torch.device("meta"):
        model = model_class(config)
    check_against_model(converted, model, name)  # raises on any missing, unexpected or mis-shaped key
    accounted = set(report.mapped) | {key for keys in report.dropped.values() for key in keys}
    for key in shapes:  # the fused qkv is accounted for by its three split halves
        split = [key.replace("qkv.weight", f"{p}_proj.weight") for p in "qkv"] if key.endswith("qkv.weight") else [key]
        assert set(split) <= accounted, key
    assert set(report.dropped) <= {TRAINING_ONLY, OTHER_TOWER}
    if name.startswith("multi_modality"):
        assert all(not k.startswith("vision_encoder.") or "decoder" in k or "clip_" in k for k in report.dropped.get(OTHER_TOWER, []))
        assert config.num_frames == 4
    if name.split(".")[1].endswith("_1B") or name.startswith("chat."):
        assert (config.hidden_size, config.num_attention_heads, config.intermediate_size) == (1408, 16, 6144)
    if name.startswith("chat."):
        assert config.num_hidden_layers == 39 and config.use_post_layernorm and not config.use_attention_pool
        assert not config.layer_scale_force_fp32


def test_official_nestings_and_prefixes_are_unwrapped():
    state = load_file(FIXTURES / "vision_single_modality" / "state_dict.safetensors")
    reference, _ = convert_vision_checkpoint(state, source_image_size=56, **HEADS)
    wrapped = [
        {"model": state},
        {"module": state},
        {"module": {f"backbone.{k}": v for k, v in state.items()}},
        {f"encoder.{k}": v for k, v in state.items()},
        {f"module.{k}": v for k, v in state.items()},
    ]
    x = torch.randn(1, 4, 3, 56, 56)
    for checkpoint in wrapped:
        model, _ = convert_vision_checkpoint(checkpoint, source_image_size=56, **HEADS)
        torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=0, atol=0)


def test_unknown_missing_and_misshaped_keys_are_listed():
    state = load_file(FIXTURES / "vision_single_modality" / "state_dict.safetensors")
    with pytest.raises(CheckpointConversionError, match=r"1 unknown keys: blocks\.0\.attn\.extra_bias"):
        convert_vision_checkpoint({**state, "blocks.0.attn.extra_bias": torch.zeros(3)}, source_image_size=56, **HEADS)
    missing = {k: v for k, v in state.items() if k != "blocks.1.norm2.weight"}
    with pytest.raises(CheckpointConversionError, match=r"1 missing keys: internvideo2\.encoder\.layers\.1\.layernorm_after"):
        convert_vision_checkpoint(missing, source_image_size=56, **HEADS)
    bad = {**state, "blocks.2.ls1.gamma": torch.zeros(7)}
    with pytest.raises(CheckpointConversionError, match=r"shape mismatch: internvideo2\.encoder\.layers\.2\.lambda_1 \(7,\)"):
        convert_vision_checkpoint(bad, source_image_size=56, **HEADS)
    with pytest.raises(ValueError, match="pass num_attention_heads"):
        convert_vision_checkpoint(state, source_image_size=56)


def test_stage2_checkpoint_drops_decoders_and_other_towers_with_reasons():
    state = load_file(FIXTURES / "vision_stage2" / "state_dict_sep.safetensors")
    full = {f"vision_encoder.{k}": v.bfloat16() for k, v in state.items()}  # the released 1B file is bf16
    full.update({"temp": torch.tensor(0.07), "text_proj.weight": torch.zeros(16, 32), "vision_proj.weight": torch.zeros(16, 32)})
    model, report = convert_vision_checkpoint(full, **HEADS)
    assert model.dtype == torch.bfloat16
    assert sorted(report.dropped[OTHER_TOWER]) == ["temp", "text_proj.weight", "vision_proj.weight"]
    assert "vision_encoder.clip_decoder.0.head.weight" in report.dropped[TRAINING_ONLY]
    assert "vision_encoder.clip_img_pos_embed" in report.dropped[TRAINING_ONLY]


def _write_easydict_pickle(tmp_path, payload_expr: str) -> str:
    """Pickle a checkpoint with a config of class utils.easydict.EasyDict, made in a separate process so this one
    never imports that class."""
    module_dir = tmp_path / "pkg" / "utils"
    module_dir.mkdir(parents=True)
    (module_dir / "__init__.py").write_text("")
    (module_dir / "easydict.py").write_text(
        textwrap.dedent(
            """
            class EasyDict(dict):
                def __init__(self, d=None, **kw):
                    d = dict(d or {}, **kw)
                    for k, v in d.items():
                        setattr(self, k, v)
                def __setattr__(self, name, value):
                    super().__setattr__(name, value)
                    super().__setitem__(name, value)
            """
        )
    )
    path = tmp_path / "checkpoint.pt"
    code = f"import torch; from utils.easydict import EasyDict; torch.save({payload_expr}, {str(path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path / "pkg", env={**os.environ, "PYTHONPATH": str(tmp_path / "pkg")})
    return str(path)


def test_easydict_checkpoint_loads_without_importing_its_class(tmp_path):
    path = _write_easydict_pickle(tmp_path, "{'model': {'w': torch.ones(2)}, 'config': EasyDict(model=EasyDict(embed_dim=768))}")
    checkpoint = load_checkpoint(path)
    assert "utils.easydict" not in sys.modules
    torch.testing.assert_close(checkpoint["model"]["w"], torch.ones(2))
    assert checkpoint["config"]["model"]["embed_dim"] == 768
    with pytest.raises(CheckpointConversionError, match="weights_only=True.*EasyDict"):
        load_checkpoint(path, allow_easydict=False)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/internvideo2_pwned",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model": {"w": torch.ones(1)}, "x": _RunsCode()}, handle)
    if os.path.exists("/tmp/internvideo2_pwned"):
        os.remove("/tmp/internvideo2_pwned")
    with pytest.raises(CheckpointConversionError, match=r"cannot read checkpoint .*evil\.pth with weights_only=True"):
        load_checkpoint(path)
    assert not os.path.exists("/tmp/internvideo2_pwned")


def test_cli_converts_a_pth_file_that_auto_classes_load(tmp_path):
    state = load_file(FIXTURES / "vision_single_modality" / "state_dict.safetensors")
    checkpoint = tmp_path / "1B_ft_k710_ft_k400_f8.pth"
    torch.save({"module": state}, checkpoint)
    output = tmp_path / "converted"
    args = [str(checkpoint), str(output), "--source-image-size", "56", "--num-attention-heads", "4", "--attention-pool-num-heads", "4"]
    assert convert_main(["vision", *args]) == 0
    assert {"config.json", "model.safetensors", "conversion_report.json"} <= set(os.listdir(output))
    model = AutoModelForVideoClassification.from_pretrained(output).eval()
    reference, _ = convert_vision_checkpoint(state, source_image_size=56, **HEADS)
    x = torch.randn(2, 4, 3, 56, 56)
    torch.testing.assert_close(model(x).logits, reference(x).logits, rtol=0, atol=0)
    assert isinstance(AutoModel.from_pretrained(output), InternVideo2VisionModel)  # the backbone alone
    processor = AutoVideoProcessor.from_pretrained(output)
    assert isinstance(processor, InternVideo2VideoProcessor)
    assert processor.num_frames == 4 and processor.size == {"height": 56, "width": 56}

    assert convert_main(["vision", *args]) == 1  # refuses to overwrite
    assert convert_main(["vision", *args, "--overwrite", "--num-frames", "8"]) == 0
    assert AutoModelForVideoClassification.from_pretrained(output).config.num_frames == 8


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    assert convert_main(["vision", str(corrupt), str(tmp_path / "out")]) == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: cannot read checkpoint") and "corrupt.pt" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    assert convert_main(["vision", str(tmp_path / "missing.pt"), str(tmp_path / "out")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
