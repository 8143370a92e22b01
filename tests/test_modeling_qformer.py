import json

import torch
from safetensors.torch import load_file

from internvideo2.configuration_chat import InternVideo2QFormerConfig
from internvideo2.convert.chat import qformer_rename_rules
from internvideo2.convert.checkpoint_io import rename_strict
from internvideo2.modeling_qformer import InternVideo2QFormerModel

from .conftest import FIXTURES

FOLDER = FIXTURES / "chat_qformer"
ATOL = dict(rtol=1e-5, atol=1e-5)


def tiny_qformer_config(**overrides) -> InternVideo2QFormerConfig:
    bert = json.loads((FOLDER / "bert_config.json").read_text())
    fields = dict(
        vocab_size=bert["vocab_size"] + 1,  # + [DEC]
        hidden_size=bert["hidden_size"],
        num_hidden_layers=bert["num_hidden_layers"],
        num_attention_heads=bert["num_attention_heads"],
        intermediate_size=bert["intermediate_size"],
        max_position_embeddings=bert["max_position_embeddings"],
        encoder_hidden_size=64,
        drop_path_rate=0.2,
    )
    return InternVideo2QFormerConfig(**{**fields, **overrides})


def load_fixture_qformer():
    state = load_file(FOLDER / "state_dict.safetensors")
    queries = torch.cat([state.pop("query_tokens"), state.pop("extra_query_tokens")], dim=1)
    converted, _ = rename_strict(state, qformer_rename_rules(target_prefix=""))
    model = InternVideo2QFormerModel(tiny_qformer_config())
    missing, unexpected = model.load_state_dict(converted, strict=True)
    return model.eval(), queries


def test_query_and_text_rows_match_the_official_qformer():
    model, queries = load_fixture_qformer()
    inputs, outputs = load_file(FOLDER / "inputs.safetensors"), load_file(FOLDER / "outputs.safetensors")
    vision = inputs["vision_tokens"]
    batch = vision.shape[0]
    with torch.no_grad():
        with_text = model(
            queries.expand(batch, -1, -1),
            vision,
            input_ids=inputs["instruction_input_ids"],
            attention_mask=inputs["instruction_attention_mask"],
        ).last_hidden_state
        without_text = model(queries.expand(batch, -1, -1), vision).last_hidden_state
    torch.testing.assert_close(with_text, outputs["last_hidden_state_full.with_instruction"], **ATOL)
    torch.testing.assert_close(with_text[:, :6], outputs["query_output.with_instruction"], **ATOL)
    torch.testing.assert_close(without_text, outputs["last_hidden_state_full.no_instruction"], **ATOL)


def test_drop_path_rates_rise_linearly_and_only_act_in_training():
    model, queries = load_fixture_qformer()
    rates = [
        [m.drop_prob for m in layer.modules() if type(m).__name__ == "InternVideo2DropPath"]
        for layer in model.encoder.layer
    ]
    # layer 0 has rate 0 (no module); cross-attention layers (0, 2) carry 4 drop paths, the others 3
    assert [len(r) for r in rates] == [0, 3, 4, 3]
    expected = torch.linspace(0, 0.2, 4)
    for index in (1, 2, 3):
        assert all(abs(rate - float(expected[index])) < 1e-6 for rate in rates[index])
    vision = torch.randn(2, 65, 64)
    model.train()
    torch.manual_seed(0)
    a = model(queries.expand(2, -1, -1), vision).last_hidden_state
    model.eval()
    b = model(queries.expand(2, -1, -1), vision).last_hidden_state
    c = model(queries.expand(2, -1, -1), vision).last_hidden_state
    assert not torch.allclose(a, b)
    torch.testing.assert_close(b, c, rtol=0, atol=0)
