"""Multi-prompt runs in the warehouse: memorization_by_context reads every prompt length (checked
against numpy), every other mart reads each run at its own prompt_len only (no duplicate rows)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
from wh_fixtures import add_run, make_db

N = 200
KS = (16, 32)


def _pml(seq: np.ndarray, k: int, rev: int) -> np.ndarray:
    """Longer prompts memorize more: the matched prefix grows with k."""
    return np.minimum((seq * 7 + rev * 3) % 40 + (k - 16) // 2, 40)


def _load(con: duckdb.DuckDBPyConnection) -> None:
    seq = np.arange(N)
    for rev, ks in ((1, KS), (2, (32,))):
        run = f"run{rev}"
        add_run(
            con, run, "ctx", f"step{rev}", family="ctx", step=rev, n_params=10**6,
            seq_start=0, seq_end=N, n_rows=N * len(ks), population=N,
        )  # fmt: skip
        key = con.execute("select run_key from raw.runs where run_id = ?", [run]).fetchone()[0]
        rows = [
            (key, int(i), k if len(ks) > 1 else None, int(p), bool(p >= 32), 1.0)
            for k in ks
            for i, p in zip(seq, _pml(seq, k, rev), strict=True)
        ]
        con.executemany(
            "insert into raw.score_rows (run_key, seq_idx, prompt_len, prefix_match_len, "
            "exact_match, loss) values (?, ?, ?, ?, ?, ?)",
            rows,
        )


def _wilson(x: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = x / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


@pytest.fixture(scope="module")
def ctx_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-ctx")
    db = make_db(d / "ctx.duckdb", _load)
    assert build(db, quiet=True, target_path=d / "target", unit_tests=False).success
    return db


def test_memorization_by_context_matches_numpy(ctx_db: Path) -> None:
    con = duckdb.connect(str(ctx_db), read_only=True)
    got = con.execute(
        "select revision, prompt_len, cont_len, n_scored, n_memorized, memorization_rate, "
        "rate_ci_low, rate_ci_high, log_log_slope from main.memorization_by_context order by all"
    ).fetchall()
    con.close()
    seq = np.arange(N)
    want, rates = [], {}
    for rev, ks in ((1, KS), (2, (32,))):
        for k in ks:
            x = int((_pml(seq, k, rev) >= 32).sum())
            rates[(rev, k)] = x / N
            want.append((f"step{rev}", k, 32, N, x, x / N, *_wilson(x, N)))
    slope = np.polyfit(np.log(KS), np.log([rates[(1, k)] for k in KS]), 1)[0]
    assert rates[(1, 32)] > rates[(1, 16)] > 0
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:5] == w[:5]
        np.testing.assert_allclose(g[5:8], w[5:8], rtol=1e-12)
    np.testing.assert_allclose([got[0][8], got[1][8]], [slope, slope], rtol=1e-9)
    assert got[2][8] is None  # one prompt length: no slope


def test_other_marts_read_each_run_at_its_prompt_len(ctx_db: Path) -> None:
    con = duckdb.connect(str(ctx_db), read_only=True)
    rates = con.execute(
        "select revision, n_scored, n_memorized from main.memorization_rates order by revision"
    ).fetchall()
    units = con.execute("select revision, n_scored from main.units order by revision").fetchall()
    pair = con.execute("select n_common, n_a, n_b, n_both from main.int_unit_pairs").fetchall()
    con.close()
    seq = np.arange(N)
    m1, m2 = int((_pml(seq, 32, 1) >= 32).sum()), int((_pml(seq, 32, 2) >= 32).sum())
    assert rates == [("step1", N, m1), ("step2", N, m2)]
    assert units == [("step1", N), ("step2", N)]
    both = int(((_pml(seq, 32, 1) >= 32) & (_pml(seq, 32, 2) >= 32)).sum())
    assert pair == [(N, m1, m2, both)]


@pytest.mark.slow
def test_demo_context_rows_match_raw(demo_db: Path) -> None:
    """The demo scores its fast checkpoints at k = 8, 16, 24, 32 (one pass): every unit's row
    per prompt length equals the raw rows' counts, and the largest model's latest such
    checkpoint has all four. (Whether the rate rises with k is the data's answer, not asserted:
    on the demo's order-1 Markov corpus it barely moves; see docs.)"""
    from memwh.demo import CONTEXT_PROMPT_LENS

    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        got = con.execute(
            "select model, revision, prompt_len, n_scored, n_memorized from "
            "main.memorization_by_context order by all"
        ).fetchall()
        want = con.execute(
            "select model, revision, prompt_len, count(*), "
            "count(*) filter (where prefix_match_len >= 32) from raw.scores "
            "group by all order by all"
        ).fetchall()
        largest = con.execute(
            "select c.prompt_len from main.memorization_by_context c "
            "join main.units u using (model, revision, dataset) "
            "where u.model = (select max_by(model, n_params) from main.units) "
            "and u.step = (select max(u2.step) from main.memorization_by_context c2 "
            "  join main.units u2 using (model, revision, dataset) "
            "  where c2.model = u.model and c2.prompt_len < 32) "
            "order by c.prompt_len"
        ).fetchall()
    finally:
        con.close()
    assert got == want
    assert [k for (k,) in largest] == list(CONTEXT_PROMPT_LENS)
