from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertTokenizer, PreTrainedTokenizerFast

from internvideo2.hd_tiling import closest_grid, hd_tiles
from internvideo2.processing.processing_chat import InternVideo2ChatProcessor
from internvideo2.processing.video_processing_internvideo2 import InternVideo2VideoProcessor

FOLDER = Path(__file__).parents[1] / "fixtures" / "chat_full"
MEDIA_TOKEN_ID = 200
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def hd_processor(**hd) -> InternVideo2ChatProcessor:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FOLDER / "llm_tokenizer" / "tokenizer.json"),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<VID_PLH>"]})
    qformer_tokenizer = BertTokenizer(str(FOLDER / "qformer_vocab.txt"))
    qformer_tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    video_processor = InternVideo2VideoProcessor(preset="chat", num_frames=4)
    return InternVideo2ChatProcessor(video_processor, tokenizer, qformer_tokenizer, num_media_tokens=4, **hd)


def clip(height: int, width: int, seed: int = 0) -> np.ndarray:
    """8 equal frames (so that which 4 the sampler keeps does not matter here)."""
    frame = np.random.default_rng(seed).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    return np.repeat(frame, 8, axis=0)


def expected_tiles(video: np.ndarray, hd_num: int, size: int, padding: bool, add_global: bool = True) -> torch.Tensor:
    frames = torch.from_numpy(video[:4]).permute(0, 3, 1, 2).double()
    tiles = hd_tiles(frames, hd_num, size, padding, add_global).numpy()
    normalised = (tiles / 255.0 - MEAN[None, None, :, None, None]) / STD[None, None, :, None, None]
    return torch.from_numpy(normalised).float()


@pytest.mark.parametrize(("height", "width", "hd_num", "size", "padding"), [
    (60, 130, 6, 56, False),   # landscape, no padding: a 2x1 grid
    (130, 60, 4, 56, False),   # portrait
    (70, 150, 6, 224, True),   # padding rule with 224 tiles
])
def test_hd_sub_videos_match_hd_tiling_and_prompt_repeats_one_block_per_sub_video(height, width, hd_num, size, padding):
    processor = hd_processor(hd_num=hd_num, hd_local_size=size, hd_padding=padding)
    videos = [clip(height, width, 0), clip(height, width, 1)]
    prompt = "[INST] <Video>[<VID_PLH>]</Video>[/INST] [INST] What happens? [/INST]"
    out = processor(text=[prompt, prompt], videos=videos, qformer_text=["what happens", "what happens"])
    expected = [expected_tiles(video, hd_num, size, padding) for video in videos]
    torch.testing.assert_close(out["pixel_values_videos"], torch.cat(expected), rtol=1e-5, atol=1e-4)
    per_video = len(expected[0])
    if not padding:
        columns, rows = closest_grid(width, height, hd_num, size)
        assert per_video == columns * rows + 1
    # one block per sub-video: text written out by hand, tokenized by the plain processor
    plain = hd_processor()
    blocks = "<Video>[<VID_PLH>]</Video>" * per_video
    manual = plain(text=f"[INST] {blocks}[/INST] [INST] What happens? [/INST]",
                   videos=[np.zeros((8, 32, 32, 3), np.uint8)] * per_video)
    assert out["input_ids"][0].tolist() == manual["input_ids"][0].tolist()
    assert int((out["input_ids"] == MEDIA_TOKEN_ID).sum()) == 2 * per_video * 4
    assert out["qformer_input_ids"].shape[0] == 2 * per_video


def test_hd_without_global_view_and_errors():
    processor = hd_processor(hd_num=2, hd_local_size=56, hd_add_global=False)
    video = clip(60, 130)
    out = processor(text="<Video>[<VID_PLH>]</Video>", videos=[video])
    torch.testing.assert_close(out["pixel_values_videos"], expected_tiles(video, 2, 56, False, add_global=False),
                               rtol=1e-5, atol=1e-4)
    # the padding rule pads to whole multiples of 224 rows, so a 56-pixel tile gives a taller grid than hd_num allows
    padded = hd_processor(hd_num=2, hd_local_size=56, hd_padding=True)
    with pytest.raises(ValueError, match="more tiles than hd_num=2"):
        padded(text="<Video>[<VID_PLH>]</Video>", videos=[clip(60, 130)])
    with pytest.raises(ValueError, match="hd_num must be a positive int or None"):
        hd_processor(hd_num=0)
    with pytest.raises(ValueError, match="hd_local_size must be a positive int"):
        hd_processor(hd_num=2, hd_local_size=0)
