import json

import pytest
import torch
from safetensors.torch import load_file

from internvideo2.hd_tiling import candidate_grids, closest_grid, hd_tiles, hd_transform

from .conftest import FIXTURES

FOLDER = FIXTURES / "chat_hd"
CONFIG = json.loads((FOLDER / "config.json").read_text())
CASES = CONFIG["small_tensor_cases"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_transform_and_tiles_match_the_official_hd_code(name):
    case = CASES[name]
    frames = load_file(FOLDER / "inputs.safetensors")[f"{name}.frames"].float()
    outputs = load_file(FOLDER / "outputs.safetensors")
    options = dict(hd_num=case["hd_num"], image_size=case["image_size"], padding=case["padding"])
    torch.testing.assert_close(hd_transform(frames, **options), outputs[f"{name}.transformed"], rtol=1e-5, atol=1e-4)
    tiles = hd_tiles(frames, **options)  # (N, T, C, ls, ls); the official tensor is (N, C, T, ls, ls)
    torch.testing.assert_close(tiles.permute(0, 2, 1, 3, 4), outputs[f"{name}.tiles"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("record", CONFIG["records"], ids=lambda r: f"{r['W']}x{r['H']}-hd{r['hd_num']}-pad{r['padding']}")
def test_grid_sizes_and_tile_counts_match_every_official_record(record):
    frames = torch.zeros(1, 3, record["H"], record["W"])
    options = dict(hd_num=record["hd_num"], image_size=record["image_size"], padding=record["padding"])
    transformed = hd_transform(frames, **options)
    assert list(transformed.shape[-2:]) == record["transformed_shape"][-2:]
    assert hd_tiles(frames, **options).shape[0] == record["tiles_shape_NCTHW"][0]
    if not record["padding"]:
        assert [list(g) for g in candidate_grids(record["hd_num"])] == record["target_ratios"]
        assert list(closest_grid(record["W"], record["H"], record["hd_num"], record["image_size"])) == record["chosen_c_r"]


def test_tiles_are_row_major_crops_and_the_global_view_is_last():
    frames = torch.arange(2 * 3 * 56 * 84, dtype=torch.float32).reshape(2, 3, 56, 84)
    tiles = hd_tiles(frames, hd_num=6, image_size=28)
    transformed = hd_transform(frames, hd_num=6, image_size=28)
    rows, columns = transformed.shape[-2] // 28, transformed.shape[-1] // 28
    for index in range(rows * columns):
        r, c = divmod(index, columns)
        torch.testing.assert_close(tiles[index], transformed[..., r * 28:(r + 1) * 28, c * 28:(c + 1) * 28])
    assert tiles.shape[0] == rows * columns + 1


def test_bad_arguments_give_one_line_errors():
    with pytest.raises(ValueError, match="hd_num must be a positive int"):
        hd_tiles(torch.zeros(1, 3, 8, 8), hd_num=0)
    with pytest.raises(ValueError, match=r"frames must be a float tensor \(T, C, H, W\)"):
        hd_tiles(torch.zeros(3, 8, 8), hd_num=2)
