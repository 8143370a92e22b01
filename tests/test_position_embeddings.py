import pytest
import torch
from safetensors.torch import load_file

from internvideo2.position_embeddings import (
    image_position_embeddings_from_video,
    interpolate_position_embeddings,
    sincos_1d,
    sincos_2d,
    sincos_3d,
)

from .conftest import FIXTURES

INPUTS = load_file(FIXTURES / "pos_embed" / "inputs.safetensors")
OUTPUTS = load_file(FIXTURES / "pos_embed" / "outputs.safetensors")


def test_sincos_tables_match_official():
    # numpy float32 sin/cos in the official code differs from float64 by ~1 ulp.
    cases = {
        "sincos3d_D64_g4_t4_cls": sincos_3d(64, 4, 4),
        "sincos3d_D64_g4_t1_cls": sincos_3d(64, 4, 1),
        "sincos3d_D64_g4_t4_nocls": sincos_3d(64, 4, 4, cls_token=False),
        "sincos2d_D48_g4_nocls": sincos_2d(48, 4),
        "sincos1d_D16_t4_nocls": sincos_1d(16, torch.arange(4)),
    }
    for name, table in cases.items():
        torch.testing.assert_close(table, OUTPUTS[f"sincos.{name}"].double(), rtol=0, atol=1e-6, msg=name)


def test_temporal_part_comes_first_and_cls_row_is_zero():
    table = sincos_3d(64, 4, 4)
    assert torch.all(table[0] == 0)
    # Tokens of the same frame share the temporal quarter; tokens at the same (h, w) share the spatial part.
    frame0, frame1 = table[1:17], table[17:33]
    assert torch.all(frame0[:, :16] == frame0[0, :16])
    torch.testing.assert_close(frame0[:, 16:], frame1[:, 16:])
    assert not torch.allclose(frame0[:, :16], frame1[:, :16])


@pytest.mark.parametrize(
    "case, source, source_frames, target_frames, grid",
    [
        ("t4to8_g4", "src_t4", 4, 8, 4),
        ("t4_g4to6", "src_t4", 4, 4, 6),
        ("t4to8_g4to6", "src_t4", 4, 8, 6),
        ("t8to4_g4", "src_t8", 8, 4, 4),
    ],
)
@pytest.mark.parametrize("key", ["pos_embed", "clip_pos_embed"])
def test_interpolation_matches_official(case, source, source_frames, target_frames, grid, key):
    result = interpolate_position_embeddings(INPUTS[f"{source}.{key}"], source_frames, target_frames, grid)
    torch.testing.assert_close(result, OUTPUTS[f"interp.new.{case}.{key}"], rtol=0, atol=1e-6)


def test_interpolation_identity_and_dtype():
    table = INPUTS["src_t4.pos_embed"]
    assert interpolate_position_embeddings(table, 4, 4, 4) is table
    bf16 = interpolate_position_embeddings(table.bfloat16(), 4, 8, 6)
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), OUTPUTS["interp.new.t4to8_g4to6.pos_embed"], rtol=0.02, atol=0.05)


def test_image_rule_is_time_mean():
    table = INPUTS["src_t4.pos_embed"]
    image = image_position_embeddings_from_video(table, 4)
    expected = torch.stack([table[0, 1 + 16 * t : 17 + 16 * t] for t in range(4)]).mean(0)
    torch.testing.assert_close(image[0, 1:], expected)
    torch.testing.assert_close(image[0, 0], table[0, 0])


def test_bad_tables_raise():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_3d(66, 4, 4)
    with pytest.raises(ValueError, match="shape"):
        interpolate_position_embeddings(torch.zeros(65, 32), 4, 8, 4)
    with pytest.raises(ValueError, match="cannot hold 3 frames"):
        interpolate_position_embeddings(torch.zeros(1, 65, 32), 3, 8, 4)
