"""Fast mode (one teacher-forced pass) == generate mode (KV cache) == a plain greedy loop.

All fp32 on random-initialised GPT-NeoX models. Sequences are built from each model's own greedy
continuation (exact matches), the same with one token changed (partial prefixes), and random
tokens (mostly prefix 0), so every branch of the comparison is exercised. Argmax ties resolve to
the lowest id in every path (torch.argmax); with fp32 and a wide init no near-ties occurred.
"""

from __future__ import annotations

import helpers
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from memwh.inference_jobs.scoring import score_batch


def _check(
    model, seqs: np.ndarray, p: int, c: int, suppress: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    fast = score_batch(model, seqs, p, c, mode="fast", suppress_ids=suppress)
    gen = score_batch(
        model, seqs, p, c, mode="generate", suppress_ids=suppress, save_generations=True
    )
    ref = helpers.plain_greedy(model, torch.as_tensor(seqs[:, :p]), c, suppress).numpy()
    truth = seqs[:, p : p + c]
    ref_match = ref == truth
    ref_prefix = np.cumprod(ref_match, axis=1).sum(axis=1)
    # generate mode == plain greedy loop, token for token
    np.testing.assert_array_equal(gen.generated, ref)
    np.testing.assert_array_equal(gen.prefix_match_len, ref_prefix)
    np.testing.assert_array_equal(gen.memorization_score, ref_match.mean(axis=1).astype(np.float32))
    # fast mode == generate mode on the labels, for every sequence
    np.testing.assert_array_equal(fast.prefix_match_len, gen.prefix_match_len)
    np.testing.assert_array_equal(fast.exact_match, gen.exact_match)
    assert fast.memorization_score is None
    # teacher-forced metrics are shared and identical
    np.testing.assert_array_equal(fast.loss, gen.loss)
    np.testing.assert_array_equal(fast.tf_token_accuracy, gen.tf_token_accuracy)
    if suppress:
        assert not (gen.generated == suppress[0]).any()
    return fast.prefix_match_len, gen.memorization_score


@pytest.mark.parametrize("suppress_eos", [True, False])
@pytest.mark.parametrize("rev", ["step1", "step2"])
def test_fast_equals_generate_equals_plain_loop(tiny_models, rev, suppress_eos):
    model = tiny_models[rev]
    seqs = helpers.build_sequences(model, 30, seed=1, suppress_eos=suppress_eos)
    plen, mem = _check(model, seqs, 32, 32, [0] if suppress_eos else [])
    assert (plen == 32).sum() >= 10, "the model's own greedy continuations must be exact matches"
    assert ((plen > 0) & (plen < 32)).any(), "corrupted continuations give partial prefixes"
    assert (mem > plen / 32).any(), "some scores keep matching after the first mismatch"


# no shrinking phase: a failing example is reported as drawn (shrinking models is slow)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    seed=st.integers(0, 10_000),
    p=st.integers(1, 24),
    c=st.integers(1, 24),
    hidden=st.sampled_from([32, 64]),
    suppress_eos=st.booleans(),
)
def test_equivalence_random_models(seed, p, c, hidden, suppress_eos):
    model = helpers.make_model(seed, hidden=hidden, layers=2, heads=4)
    seqs = helpers.build_sequences(
        model, 24, seed=seed, prompt_len=p, cont_len=c, suppress_eos=suppress_eos
    )
    plen, _ = _check(model, seqs, p, c, [0] if suppress_eos else [])
    assert (plen == c).sum() >= 8


def test_fast_mode_is_one_forward_pass_with_few_logits(tiny_models):
    """One call of the model, and the head only sees cont_len positions (logits_to_keep)."""
    model = tiny_models["step1"]
    seqs = helpers.build_sequences(model, 6, seed=2)
    calls, head_rows = [], []
    h1 = model.register_forward_hook(lambda m, a, o: calls.append(1))
    h2 = model.get_output_embeddings().register_forward_hook(
        lambda m, a, o: head_rows.append(o.shape[1])
    )
    try:
        score_batch(model, seqs, 32, 32, mode="fast")
    finally:
        h1.remove()
        h2.remove()
    assert calls == [1]
    assert head_rows == [32]


def test_suppression_changes_labels_when_eos_is_the_argmax(tiny_models):
    """A model whose argmax is EOS: without suppression it predicts 0, with it never."""
    model = helpers.make_model(3)
    bonus = torch.zeros(helpers.VOCAB)
    bonus[0] = 100.0  # EOS wins everywhere
    model.get_output_embeddings().register_forward_hook(lambda m, a, o: o + bonus)
    seqs = np.full((4, 16), 5, dtype=np.int64)
    seqs[:, 8:] = 0  # truth continuation is all EOS
    no = score_batch(model, seqs, 8, 8, mode="generate", suppress_ids=[])
    yes = score_batch(model, seqs, 8, 8, mode="generate", suppress_ids=[0])
    assert (no.prefix_match_len == 8).all() and (no.memorization_score == 1).all()
    assert (yes.prefix_match_len == 0).all() and (yes.memorization_score == 0).all()
    fast_yes = score_batch(model, seqs, 8, 8, mode="fast", suppress_ids=[0])
    assert (fast_yes.prefix_match_len == 0).all() and (fast_yes.tf_token_accuracy == 0).all()
    # loss comes from the raw distribution, not the processed one: finite even though EOS is blocked
    assert np.isfinite(fast_yes.loss).all()
