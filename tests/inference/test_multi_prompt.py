"""Several prompt lengths from one teacher-forced pass == one generate-mode run per prompt length.

Sequences are 64 tokens whose greedy part starts at 8, 16, 24 or 32 tokens (helpers.build_sequences
with that prompt length): for prompt lengths k >= the start the continuation is the model's own
(exact, or partial where one token was changed), for k below it the window holds random prompt
tokens. So labels really change with k and every branch is compared. All fp32.
"""

from __future__ import annotations

import helpers
import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.core.run_settings import parse_prompt_lens
from memwh.inference_jobs import score
from memwh.inference_jobs.scoring import score_batch

KS = (8, 16, 24, 32)
M = 32


def _sequences(model, n_per_start: int, seed: int) -> np.ndarray:
    parts = [
        helpers.build_sequences(model, n_per_start, seed=seed + p, prompt_len=p, cont_len=64 - p)
        for p in KS
    ]
    return np.concatenate(parts, axis=0)


def _rows(s, i: int) -> dict[str, np.ndarray]:
    """Rows of the i-th prompt length from a multi-prompt BatchScores (sequence-major)."""
    nk = len(KS)
    return {
        k: getattr(s, k)[i::nk]
        for k in ("prefix_match_len", "exact_match", "loss", "min_k_logprob", "tf_token_accuracy")
    }


@pytest.mark.parametrize("rev", ["step1", "step2"])
def test_one_pass_equals_generate_per_prompt_length(tiny_models, rev):
    model = tiny_models[rev]
    seqs = _sequences(model, 12, seed=10)
    tok = helpers.make_tokenizer()
    fast = score_batch(model, seqs, KS, M, mode="fast", suppress_ids=[0], tokenizer=tok)
    multi_gen = score_batch(model, seqs, KS, M, mode="generate", suppress_ids=[0], tokenizer=tok)
    assert len(fast.prefix_match_len) == len(seqs) * len(KS)
    np.testing.assert_array_equal(fast.prompt_len, np.tile(KS, len(seqs)))
    rates = []
    for i, k in enumerate(KS):
        gen = score_batch(model, seqs, k, M, mode="generate", suppress_ids=[0], tokenizer=tok)
        got = _rows(fast, i)
        # labels: identical for 100% of sequences
        np.testing.assert_array_equal(got["prefix_match_len"], gen.prefix_match_len)
        np.testing.assert_array_equal(got["exact_match"], gen.exact_match)
        # teacher-forced metrics: the same positions from a longer pass (float summation order)
        for col in ("loss", "min_k_logprob", "tf_token_accuracy"):
            np.testing.assert_allclose(got[col], getattr(gen, col), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fast.zlib_ratio[i :: len(KS)], gen.zlib_ratio, rtol=1e-5)
        # multi-prompt generate mode: one decode per k, same as separate runs
        np.testing.assert_array_equal(
            multi_gen.prefix_match_len[i :: len(KS)], gen.prefix_match_len
        )
        np.testing.assert_array_equal(
            multi_gen.memorization_score[i :: len(KS)], gen.memorization_score
        )
        rates.append(gen.exact_match.mean())
    assert fast.memorization_score is None
    # the fixture is informative: labels differ between prompt lengths, exact matches everywhere
    assert all(r > 0 for r in rates) and rates == sorted(rates) and rates[0] < rates[-1]
    assert ((fast.prefix_match_len > 0) & (fast.prefix_match_len < M)).any()


@pytest.mark.parametrize(
    ("ks", "m", "rows"),
    [(KS, M, 32 + M - 8), ((8, 48), 8, 16)],  # overlapping windows: their span; apart: 2 x m
)
def test_one_pass_keeps_only_needed_logits(tiny_models, ks, m, rows):
    """One model call over max(k) + m - 1 tokens; the head sees only the windows' union."""
    model = tiny_models["step1"]
    seqs = _sequences(model, 2, seed=3)
    calls, head_rows = [], []
    h1 = model.register_forward_hook(
        lambda mod, a, kw, o: calls.append(kw["input_ids"].shape[1]), with_kwargs=True
    )
    h2 = model.get_output_embeddings().register_forward_hook(
        lambda mod, a, o: head_rows.append(o.shape[1])
    )
    try:
        fast = score_batch(model, seqs, ks, m, mode="fast")
    finally:
        h1.remove()
        h2.remove()
    assert calls == [max(ks) + m - 1] and head_rows == [rows]
    for i, k in enumerate(ks):  # and each window equals a separate run
        one = score_batch(model, seqs, k, m, mode="fast")
        np.testing.assert_array_equal(fast.prefix_match_len[i :: len(ks)], one.prefix_match_len)
        np.testing.assert_allclose(fast.loss[i :: len(ks)], one.loss, rtol=1e-5)


@pytest.mark.parametrize(
    ("text", "want"),
    [("32", (32,)), ("32,64,128", (32, 64, 128)), ("25:100:25", (25, 50, 75, 100)),
     ("64,32,64", (32, 64)), (16, (16,)), ([8, 4], (4, 8))],
)  # fmt: skip
def test_parse_prompt_lens(text, want):
    assert parse_prompt_lens(text) == want


@pytest.mark.parametrize("text", ["", "a,b", "0,8", "8:4:0", "1:2"])
def test_parse_prompt_lens_rejects(text):
    with pytest.raises(ValueError, match="--prompt-len"):
        parse_prompt_lens(text)


def test_runner_writes_one_row_per_sequence_and_prompt_length(tiny_suite, token_table, tmp_path):
    res = score(
        str(tiny_suite), str(token_table), tmp_path, revision="step2", prompt_len="8:32:8",
        cont_len=M, batch_size=16, progress=False,
    )  # fmt: skip
    t = pq.read_table(res.parquet)
    assert t.schema.remove_metadata().equals(contract.SCORE_SCHEMA)
    assert t.num_rows == 60 * 4
    assert t.column("prompt_len").to_pylist()[:4] == list(KS)
    man = contract.read_manifest(res.manifest)
    assert man["contract_version"] == contract.CONTRACT_VERSION
    assert man["prompt_len"] == 32 and man["prompt_lens"] == list(KS)
    assert man["settings"]["prompt_lens"] == list(KS)
    # a rerun with the same list is complete; another list is a conflict naming prompt_lens
    again = score(
        str(tiny_suite), str(token_table), tmp_path, revision="step2", prompt_len="8,16,24,32",
        cont_len=M, batch_size=16, progress=False,
    )  # fmt: skip
    assert again.status == "skipped"
    # the 32-token rows equal a single-prompt run of the same shard
    single = score(
        str(tiny_suite), str(token_table), tmp_path / "single", revision="step2", prompt_len=32,
        cont_len=M, batch_size=16, progress=False,
    )  # fmt: skip
    one = pq.read_table(single.parquet)
    rows32 = t.filter(t.column("prompt_len").to_numpy() == 32)
    for col in ("seq_idx", "prefix_match_len", "exact_match"):
        assert rows32.column(col).to_pylist() == one.column(col).to_pylist()


def test_bad_prompt_len_is_one_line_error(tiny_suite, token_table, tmp_path):
    with pytest.raises(MemwhError, match="--prompt-len"):
        score(
            str(tiny_suite), str(token_table), tmp_path, revision="step2", prompt_len="8,x",
            progress=False,
        )  # fmt: skip


def test_console_count_uses_the_warehouse_rule(tiny_suite, token_table, tmp_path, capsys):
    """The default of the warehouse's var and the console's rule are one number."""
    import re
    from pathlib import Path

    import yaml

    from memwh.core.config import MEMORIZED_MIN_TOKENS
    from memwh.inference_jobs.runner import _memorized_summary

    proj = Path(__file__).resolve().parents[2] / "warehouse" / "dbt_project.yml"
    assert yaml.safe_load(proj.read_text())["vars"]["memorized_min_tokens"] == MEMORIZED_MIN_TOKENS
    res = score(
        str(tiny_suite), str(token_table), tmp_path, revision="step2", prompt_len="16,32",
        cont_len=40, batch_size=32, progress=False,
    )  # fmt: skip
    t = pq.read_table(res.parquet)
    line = _memorized_summary(t, 40)
    pml, plen = t.column("prefix_match_len").to_numpy(), t.column("prompt_len").to_numpy()
    for k in (16, 32):  # >= 32 of 40 tokens, not only exact 40-token matches
        n = int((pml[plen == k] >= MEMORIZED_MIN_TOKENS).sum())
        assert re.search(rf"k={k}: {n}\b", line)
    assert "0 memorized: --cont-len 16 < memorized_min_tokens 32" in _memorized_summary(t, 16)
