from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh.demo_suite.corpus import (
    CORPUS_SCHEMA,
    MarkovLanguage,
    build_corpus,
    exposure_table,
    write_corpus,
)
from memwh.demo_suite.settings import EOS_ID, SuiteSettings

SMALL = {
    "n_background": 300,
    "canaries_per_rung": 3,
    "shared_prefix_lens": (12,),  # one pair and one lone canary per rung
    "ladder": (1, 2, 4, 8, 16),
    "batch_size": 16,
}


def test_same_seed_gives_byte_identical_parquet(tmp_path):
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    write_corpus(build_corpus(SuiteSettings(seed=7, **SMALL)), a)
    write_corpus(build_corpus(SuiteSettings(seed=7, **SMALL)), b)
    write_corpus(build_corpus(SuiteSettings(seed=8, **SMALL)), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_declared_duplicates_are_true_and_follow_the_ladder():
    s = SuiteSettings(seed=1, **SMALL)
    t = build_corpus(s)
    assert t.schema.equals(CORPUS_SCHEMA)
    rows = t.to_pylist()
    counts = Counter(tuple(r["tokens"]) for r in rows)
    for r in rows[: s.n_sequences]:  # copies in the training order
        assert r["duplicates"] == counts[tuple(r["tokens"])]
    assert [r["seq_idx"] for r in rows] == list(range(len(rows)))
    assert len(rows) == s.n_corpus_rows == s.n_sequences + s.n_held_out
    canary_copies = Counter(counts[tuple(r["tokens"])] for r in rows if r["is_canary"])
    # each rung c contributes canaries_per_rung distinct sequences, c rows each
    assert canary_copies == {c: c * s.canaries_per_rung for c in s.ladder}
    training, held = rows[: s.n_sequences], rows[s.n_sequences :]
    assert all(r["duplicates"] == 1 for r in training if not r["is_canary"])
    # held-out rows: distinct from every other row, never trained, so 0 copies in training
    assert len(held) == 512 and all(r["duplicates"] == 0 and not r["is_canary"] for r in held)
    assert all(counts[tuple(r["tokens"])] == 1 for r in held)


def test_exposure_table_matches_the_training_order():
    """Independent check: walk the training order batch by batch (step s trains rows
    [s * B, (s + 1) * B)) and record, per token sequence, first/last step and copies."""
    s = SuiteSettings(seed=4, **SMALL)
    t = build_corpus(s)
    tokens = np.array(t.column("tokens").to_pylist())
    got = exposure_table(tokens, s.n_steps, s.batch_size).to_pylist()
    seen: dict[tuple, list[int]] = {}
    for step in range(s.n_steps):
        for i in range(step * s.batch_size, (step + 1) * s.batch_size):
            e = seen.setdefault(tuple(tokens[i]), [step, step, 0])
            e[1], e[2] = step, e[2] + 1
    for i, r in enumerate(got):
        e = seen.get(tuple(tokens[i]))
        want = (None, None, None) if e is None else (e[0], e[2], e[1])
        assert r["seq_idx"] == i and (r["first_step"], r["n_exposures"], r["last_step"]) == want
    never = [r["seq_idx"] for r in got if r["first_step"] is None]
    # the held-out rows, plus rows of the dropped partial last batch that have no trained copy
    assert set(range(s.n_sequences, s.n_corpus_rows)) <= set(never)
    assert all(i >= s.n_steps * s.batch_size for i in never)


def test_tokens_are_content_ids_without_eos():
    s = SuiteSettings(seed=2, **SMALL)
    tok = np.array(build_corpus(s).column("tokens").to_pylist())
    assert tok.shape == (s.n_corpus_rows, 64)
    assert tok.min() >= 3 and tok.max() < s.vocab_size
    assert not (tok == EOS_ID).any()


def test_canaries_are_shuffled_through_training_order():
    t = build_corpus(SuiteSettings(seed=0, **SMALL))
    pos = np.flatnonzero(t.column("is_canary").to_numpy())
    n = SuiteSettings(seed=0, **SMALL).n_sequences  # the training order (held-out rows follow)
    # not bunched at either end: both halves of the order hold canary copies
    assert (pos < n // 2).sum() > 0.3 * len(pos) and (pos >= n // 2).sum() > 0.3 * len(pos)


def test_background_language_is_learnable():
    """Bigram statistics should explain the text far better than a uniform model."""
    tok = np.array(
        build_corpus(SuiteSettings(seed=0, n_background=2000, canaries_per_rung=0))
        .column("tokens")
        .to_pylist()
    )
    pairs = Counter(zip(tok[:, :-1].ravel().tolist(), tok[:, 1:].ravel().tolist(), strict=True))
    firsts = Counter(tok[:, :-1].ravel().tolist())
    nll = -np.mean([np.log(c / firsts[a]) for (a, _), c in pairs.items() for _ in range(c)])
    assert nll < 0.5 * np.log(2048)


def test_corpus_loads_with_hf_datasets(tiny_suite):
    import datasets

    ds = datasets.load_dataset(
        "parquet", data_files=str(tiny_suite / "corpus.parquet"), split="train"
    )
    assert set(ds.column_names) >= {"seq_idx", "tokens", "duplicates", "is_canary"}
    assert len(ds[0]["tokens"]) == 64
    assert ds.num_rows == pq.read_metadata(tiny_suite / "corpus.parquet").num_rows


def _distinct_canaries(t) -> dict[int, np.ndarray]:
    """Distinct canary rows per copy count (the rung), in first-occurrence order."""
    tok = np.array(t.column("tokens").to_pylist())
    canary, dups = t.column("is_canary").to_numpy(), t.column("duplicates").to_numpy()
    _, first = np.unique(tok, axis=0, return_index=True)
    first = np.sort(first)
    return {
        int(c): tok[[i for i in first if canary[i] and dups[i] == c]] for c in set(dups[canary])
    }


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    differ = np.flatnonzero(a != b)
    return int(differ[0]) if len(differ) else len(a)


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the demo's: 8 canaries per rung, pairs sharing 4, 12, 20, 28 tokens
        dict(SMALL, seed=5),  # one pair and one lone canary per rung
        {"canaries_per_rung": 6, "shared_prefix_lens": (1, 40, 63), "seed": 9},  # extremes
    ],
)
def test_canary_pairs_share_exactly_their_prefix(overrides):
    """In every rung, each prefix length P pairs two canaries that agree on tokens [0, P) and
    differ at token P (a prompt of k <= P tokens cannot tell them apart); every canary is in
    at most one pair, every other two canaries of the rung share fewer tokens than the
    shortest P, every row stays a walk of the chain, and rows are distinct."""
    s = SuiteSettings(**overrides)
    t = build_corpus(s)
    rungs = _distinct_canaries(t)
    assert sorted(rungs) == sorted(s.ladder)
    for copies, rows in rungs.items():
        assert len(rows) == s.canaries_per_rung, copies
        n = len(rows)
        lcp = np.array(
            [
                [_common_prefix(rows[i], rows[j]) if i != j else -1 for j in range(n)]
                for i in range(n)
            ]
        )
        partner = lcp.argmax(axis=1)
        paired = [i for i in range(n) if lcp[i, partner[i]] >= min(s.shared_prefix_lens)]
        assert all(partner[partner[i]] == i for i in paired), copies  # mutual: pairs, not chains
        shared = sorted(int(lcp[i, partner[i]]) for i in paired if i < partner[i])
        assert shared == sorted(s.shared_prefix_lens), copies
        assert len(paired) == 2 * len(s.shared_prefix_lens), copies
    # the corpus is one language: every transition of every row is a successor in the chain
    lang = MarkovLanguage(
        s.vocab_size, s.branching, s.zipf_exponent, s.successor_exponent,
        np.random.default_rng([s.seed, 0xC0]),  # build_corpus's first draws
    )  # fmt: skip
    tok = np.array(t.column("tokens").to_pylist()) - 3
    ok = (lang.successors[tok[:, :-1]] == tok[:, 1:, None]).any(axis=2)
    assert ok.all()
    # distinct rows: the canaries' copies are the only repeats
    n_rows = s.n_background + s.n_held_out + s.canaries_per_rung * len(s.ladder)
    assert len(np.unique(tok, axis=0)) == n_rows


def test_sharing_rewrites_only_the_second_members():
    """The pairs are drawn from their own RNG stream: background, held-out rows and the
    training order are the same as without sharing, and only one canary per pair changes."""
    s = SuiteSettings(seed=2)
    t, t0 = build_corpus(s), build_corpus(SuiteSettings(seed=2, shared_prefix_lens=()))
    tok, tok0 = np.array(t.column("tokens").to_pylist()), np.array(t0.column("tokens").to_pylist())
    canary = t.column("is_canary").to_numpy()
    assert (canary == t0.column("is_canary").to_numpy()).all()
    assert (tok[~canary] == tok0[~canary]).all()
    changed = {r.tobytes() for r in tok0[canary & (tok != tok0).any(axis=1)]}
    assert len(changed) == len(s.shared_prefix_lens) * len(s.ladder)
