"""The official Stage-2 training forward (`model(video, text, idx)`: masked video, VTC + VTM + MLM) rebuilt from the
package's model and loss modules, replaying the official random draws recorded in the fixture."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from internvideo2 import InternVideo2TextConfig
from internvideo2.convert.stage2 import convert_stage2_checkpoint
from internvideo2.losses import (
    InternVideo2MaskedLanguageModelingLoss,
    InternVideo2MLMDraws,
    InternVideo2TextMasker,
    InternVideo2VideoTextContrastiveLoss,
    InternVideo2VideoTextMatchingLoss,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stage2_model"


@pytest.fixture(scope="module")
def official():
    bert = json.loads((FIXTURE / "bert_config.json").read_text())
    text_config = InternVideo2TextConfig(
        **{k: bert[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size", "max_position_embeddings", "fusion_layer", "encoder_width")}
    )
    model, _ = convert_stage2_checkpoint(
        load_file(FIXTURE / "state_dict.safetensors"), text_config=text_config, num_attention_heads=4,
        attention_pool_num_heads=4,
    )
    return model, load_file(FIXTURE / "inputs.safetensors"), load_file(FIXTURE / "outputs.safetensors")


def test_stage2_training_forward_losses_match_official(official):
    model, inputs, outputs = official
    ids = json.loads((FIXTURE / "config.json").read_text())["tokenizer_ids"]
    draws = {k.split(".", 2)[2]: v for k, v in outputs.items() if k.startswith("random.forward.")}
    video_mask = draws["0.RandomMaskingGenerator"]  # (B, T*HW) True = masked, ratio 0.8
    sample_ids = inputs["idx"]

    with torch.no_grad():
        vision = model.encode_vision(inputs["video"], bool_masked_pos=video_mask)
        text = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
        torch.testing.assert_close(vision.last_hidden_state, outputs["forward.x_vis_masked"], rtol=1e-5, atol=1e-5)
        temperature = model.temperature

        vtc = InternVideo2VideoTextContrastiveLoss(all_gather=False)(
            vision.projected, text.projected, temperature, sample_ids
        )

        def match_fn(vision_states, vision_attention_mask, text_states, text_attention_mask):
            return model.match_logits(vision_states, text_states, text_attention_mask, vision_attention_mask)

        vtm = InternVideo2VideoTextMatchingLoss(hard_negatives=True)(
            vision.memory, text.last_hidden_state, text.attention_mask, vision.projected, text.projected,
            temperature, match_fn, sample_ids=sample_ids,
            negative_indices=(draws["1.multinomial"].squeeze(1), draws["2.multinomial"].squeeze(1)),
        )

        masker = InternVideo2TextMasker(
            mask_token_id=ids["mask"], vocab_size=model.config.text_config.vocab_size,
            special_token_ids=[ids["pad"], ids["cls"]],
        )
        masked_ids, labels = masker(
            inputs["input_ids"],
            draws=InternVideo2MLMDraws(
                draws["3.bernoulli"].bool(), draws["4.bernoulli"].bool(), draws["5.bernoulli"].bool(), draws["6.randint"]
            ),
        )
        scores = model.masked_language_modeling(masked_ids, inputs["attention_mask"], vision.memory).logits
        mlm = InternVideo2MaskedLanguageModelingLoss()(scores, labels)

    torch.testing.assert_close(vtc, outputs["forward.loss_vtc"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vtm.loss, outputs["forward.loss_vtm"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mlm, outputs["forward.loss_mlm"], rtol=1e-5, atol=5e-5)
    assert outputs["forward.loss_uta"] == 0  # UTA is off in every released configuration
