import numpy as np
import pytest
import torch
from transformers import BertTokenizer, DataCollatorForLanguageModeling

from internvideo2.losses import InternVideo2MaskedLanguageModelingLoss, InternVideo2MLMDraws, InternVideo2TextMasker


OFFICIAL_MLM_SEED = 3005  # torch.manual_seed before the official mlm_loss call (fixture config.json "seeds")
PAD, CLS, SEP, MASK, VOCAB = 0, 2, 3, 4, 83  # fixture tokenizer_ids and vocab size


def official_masker():
    return InternVideo2TextMasker(mask_token_id=MASK, vocab_size=VOCAB, special_token_ids=(PAD, CLS))


def test_masking_replays_the_official_draws(stage2_inputs, stage2_outputs):
    draws = InternVideo2MLMDraws(
        selected=stage2_outputs["random.mlm.0.bernoulli"].bool(),
        replace_with_mask=stage2_outputs["random.mlm.1.bernoulli"].bool(),
        replace_with_random=stage2_outputs["random.mlm.2.bernoulli"].bool(),
        random_token_ids=stage2_outputs["random.mlm.3.randint"],
    )
    masked, labels = official_masker()(stage2_inputs["input_ids"], draws=draws)
    assert torch.equal(masked, stage2_outputs["mlm.input_ids_masked"])
    assert torch.equal(labels, stage2_outputs["mlm.labels"])


def test_masking_with_the_official_seed_reproduces_the_official_draws(stage2_inputs, stage2_outputs):
    input_ids = stage2_inputs["input_ids"]
    original = input_ids.clone()
    masked, labels = official_masker()(input_ids, generator=torch.Generator().manual_seed(OFFICIAL_MLM_SEED))
    assert torch.equal(masked, stage2_outputs["mlm.input_ids_masked"])
    assert torch.equal(labels, stage2_outputs["mlm.labels"])
    assert torch.equal(input_ids, original)


def test_masking_equals_transformers_data_collator(stage2_inputs, stage2_vocab_file):
    tokenizer = BertTokenizer(vocab=str(stage2_vocab_file))
    assert (tokenizer.mask_token_id, len(tokenizer)) == (MASK, VOCAB)
    masker = InternVideo2TextMasker.from_tokenizer(tokenizer)
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=0.5, mask_replace_prob=0.8, random_replace_prob=0.1, return_tensors="pt"
    )
    input_ids = stage2_inputs["input_ids"]
    for seed in range(20):
        collator.generator = torch.Generator().manual_seed(seed)
        special_tokens_mask = torch.isin(input_ids, torch.tensor([PAD, CLS]))
        expected = collator.torch_mask_tokens(input_ids.clone(), special_tokens_mask=special_tokens_mask)
        actual = masker(input_ids, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(actual[0], expected[0]) and torch.equal(actual[1], expected[1])


def test_special_tokens_are_never_masked_and_labels_mark_exactly_the_selected_tokens():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, VOCAB, (16, 20), generator=generator)
    input_ids[:, 0], input_ids[:, 9], input_ids[:, 15:] = CLS, SEP, PAD
    masker = InternVideo2TextMasker(MASK, VOCAB, special_token_ids=(PAD, CLS, SEP), mlm_probability=0.9)
    for seed in range(20):
        masked, labels = masker(input_ids, generator=torch.Generator().manual_seed(seed))
        special = (input_ids == PAD) | (input_ids == CLS) | (input_ids == SEP)
        assert torch.equal(masked[special], input_ids[special])
        assert (labels[special] == -100).all()
        changed = masked != input_ids
        assert (labels[changed] == input_ids[changed]).all()  # every changed token is a prediction target
        selected = labels != -100
        assert torch.equal(labels[selected], input_ids[selected])


@pytest.mark.parametrize("probabilities", [(0.5, 0.8, 0.1), (0.3, 0.6, 0.3)])
def test_masking_proportions(probabilities):
    mlm_probability, mask_replace_prob, random_replace_prob = probabilities
    vocab = 1000
    input_ids = torch.randint(10, vocab, (400, 100), generator=torch.Generator().manual_seed(1))
    masker = InternVideo2TextMasker(5, vocab, special_token_ids=(0, 1), mlm_probability=mlm_probability,
                                    mask_replace_prob=mask_replace_prob, random_replace_prob=random_replace_prob)
    masked, labels = masker(input_ids, generator=torch.Generator().manual_seed(2))
    selected = labels != -100
    num_selected = selected.sum().item()
    assert abs(num_selected / input_ids.numel() - mlm_probability) < 0.01
    became_mask = (masked == 5) & selected
    unchanged = (masked == input_ids) & selected
    random_token = selected & ~became_mask & ~unchanged
    assert abs(became_mask.sum().item() / num_selected - mask_replace_prob) < 0.015
    # a random replacement equal to the original token (1/vocab) counts as unchanged
    assert abs(random_token.sum().item() / num_selected - random_replace_prob) < 0.015
    assert abs(unchanged.sum().item() / num_selected - (1 - mask_replace_prob - random_replace_prob)) < 0.015
    assert ((masked != input_ids) <= selected).all()


def test_mlm_loss_matches_official(stage2_outputs):
    scores, labels = stage2_outputs["mlm.prediction_scores"], stage2_outputs["mlm.labels"]
    loss = InternVideo2MaskedLanguageModelingLoss()(scores, labels)
    torch.testing.assert_close(loss, stage2_outputs["loss.mlm"], rtol=1e-5, atol=5e-5)


def test_mlm_loss_matches_naive_loop():
    generator = torch.Generator().manual_seed(4)
    scores = torch.randn(3, 6, 11, generator=generator) * 3
    labels = torch.full((3, 6), -100)
    labels[0, 2], labels[1, 0], labels[1, 5], labels[2, 3] = 7, 0, 10, 4
    loss = InternVideo2MaskedLanguageModelingLoss()(scores, labels)
    s = scores.double().numpy()
    terms = [
        np.log(np.exp(s[b, t]).sum()) - s[b, t, labels[b, t]]
        for b in range(3) for t in range(6) if labels[b, t] != -100
    ]
    np.testing.assert_allclose(loss.item(), np.mean(terms), rtol=1e-5)


def test_mlm_loss_is_a_connected_zero_when_nothing_is_masked():
    scores = torch.randn(2, 4, 7, requires_grad=True)
    loss = InternVideo2MaskedLanguageModelingLoss()(scores, torch.full((2, 4), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(scores.grad, torch.zeros_like(scores))


def test_masking_and_loss_errors():
    with pytest.raises(ValueError, match=r"mlm_probability must be in \[0, 1\]"):
        InternVideo2TextMasker(MASK, VOCAB, (PAD,), mlm_probability=1.5)
    with pytest.raises(ValueError, match="mask_replace_prob \\+ random_replace_prob must be <= 1"):
        InternVideo2TextMasker(MASK, VOCAB, (PAD,), mask_replace_prob=0.8, random_replace_prob=0.3)
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        InternVideo2TextMasker(MASK, 0, (PAD,))
    masker = official_masker()
    with pytest.raises(ValueError, match=r"input_ids must be a \(batch, text_len\) integer tensor"):
        masker(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="draws have shape"):
        masker(torch.zeros(3, 4, dtype=torch.long), draws=masker.draw((2, 4)))
    with pytest.raises(ValueError, match="must be labels"):
        InternVideo2MaskedLanguageModelingLoss()(torch.randn(2, 4, 7), torch.zeros(2, 5, dtype=torch.long))
