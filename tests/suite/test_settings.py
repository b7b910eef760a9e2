from __future__ import annotations

import itertools

import pytest

from memwh.core.errors import MemwhError
from memwh.demo_suite.models import make_tokenizer, model_name, neox_config, param_counts
from memwh.demo_suite.settings import DEFAULT_SIZES, ModelSize, SuiteSettings
from memwh.demo_suite.train import lr_factor


@pytest.mark.parametrize("size", [*DEFAULT_SIZES, ModelSize(48, 3, 3, 1e-3)])
def test_param_formula_matches_real_module(size):
    from transformers import GPTNeoXForCausalLM

    s = SuiteSettings()
    model = GPTNeoXForCausalLM(neox_config(size, s))
    total, non_emb = param_counts(size, s.vocab_size)
    assert total == sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    assert non_emb == total - emb
    assert not model.config.tie_word_embeddings


def test_default_sizes_span_the_required_range():
    counts = [param_counts(s, 2048)[0] for s in DEFAULT_SIZES]
    assert len(counts) >= 4 and counts == sorted(counts)
    assert counts[-1] >= 4_000_000 and counts[-1] / counts[0] >= 30
    assert len({model_name(c) for c in counts}) == len(counts)


def test_default_schedule_is_step0_and_six_even_checkpoints_ending_at_final_step():
    s = SuiteSettings()
    steps = s.checkpoint_steps
    assert steps[0] == 0 and len(steps) == 7 and steps[-1] == s.n_steps
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    assert max(gaps) - min(gaps) <= 1  # evenly spaced (up to rounding)
    assert SuiteSettings(save_initial=False).checkpoint_steps == steps[1:]


def test_model_names():
    assert model_name(143_840) == "demo-144k"
    assert model_name(4_208_128) == "demo-4.2m"
    assert model_name(2_000_000) == "demo-2m"


def test_lr_schedule_warms_up_then_decays():
    f = [lr_factor(s, 100, 0.1, 0.1) for s in range(100)]
    assert f[0] < f[5] < f[9] <= 1.0
    assert f[10] == pytest.approx(1.0) and f[99] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


def test_unknown_or_bad_settings_are_user_errors():
    with pytest.raises(MemwhError, match="unknown setting"):
        SuiteSettings.from_overrides(n_layers=3)
    with pytest.raises(MemwhError, match="heads"):
        SuiteSettings(sizes=[(30, 1, 4, 1e-3)])
    with pytest.raises(MemwhError, match="steps"):
        SuiteSettings(n_background=10, canaries_per_rung=0, batch_size=8)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"canaries_per_rung": 6}, "4 pairs need 2 x 4 canaries per rung"),
        ({"shared_prefix_lens": (4, 64)}, "1 .. seq_len - 1 = 63"),
        ({"shared_prefix_lens": (0,)}, "1 .. seq_len - 1"),
        ({"branching": 1}, "branching >= 2"),
    ],
)
def test_bad_shared_prefixes_are_user_errors(overrides, why):
    with pytest.raises(MemwhError, match=f"shared_prefix_lens: .*{why}"):
        SuiteSettings(**overrides)


def test_shared_prefixes_need_no_canaries_when_there_are_none():
    # the shadow suite trains without canaries: nothing to pair, whatever the default says
    assert SuiteSettings(canaries_per_rung=0, branching=1).shared_prefix_lens == (4, 12, 20, 28)
    assert SuiteSettings(canaries_per_rung=6, shared_prefix_lens=[4, 12]).shared_prefix_lens == (
        4,
        12,
    )


def test_config_hash_tracks_settings():
    assert SuiteSettings().config_hash() == SuiteSettings().config_hash()
    assert SuiteSettings(seed=1).config_hash() != SuiteSettings().config_hash()
    assert SuiteSettings(batch_size=32).config_hash() != SuiteSettings().config_hash()
    assert SuiteSettings(shared_prefix_lens=()).config_hash() != SuiteSettings().config_hash()


def test_tokenizer_round_trips_ids():
    tok = make_tokenizer(2048)
    assert tok("t5 t17 t2047").input_ids == [5, 17, 2047]
    assert tok.eos_token_id == 0 and len(tok) == 2048
    assert tok.decode([5, 17]) == "t5 t17"
