"""Issue 14, mixed settings end to end: one checkpoint scored at two prompt lengths (one
multi-prompt run) and on two datasets goes through ingest and `memwh build`, and no mart pairs
or pools rows of different datasets or prompt lengths. Counts are recomputed with polars from
the shard files themselves."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from ingest_helpers import score_table, write_shard

from memwh.ingest import ingest_root

pytestmark = pytest.mark.slow

N = 400
SIZES = {"demo-1m": 1_000_000, "demo-4m": 4_000_000}
DATASETS = {"corpus-abc123": "", "jsonl-x": "-jsonl"}  # fingerprint -> unit name suffix


def _multi(seed: int) -> pa.Table:
    """Rows at prompt lengths 16 and 32, sequence-major as memwh's multi-prompt jobs write."""
    parts = []
    for j, k in enumerate((16, 32)):
        t = score_table(0, N, seed=seed * 10 + j)
        parts.append(t.set_column(8, "prompt_len", pa.array(np.full(N, k, np.int16))))
    return pa.concat_tables(parts).sort_by([("seq_idx", "ascending"), ("prompt_len", "ascending")])


def _read(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_two_datasets_two_prompt_lengths_never_mix(tmp_path: Path) -> None:
    from memwh.warehouse.build import build

    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    rows = []
    for i, (model, n_params) in enumerate(SIZES.items()):
        for j, (fp, suffix) in enumerate(DATASETS.items()):
            table = _multi(seed=2 * i + j)
            write_shard(
                root, model + suffix, "step100", num_shards=1, total=N, table=table,
                manifest_overrides={
                    "prompt_lens": [16, 32], "n_params": n_params, "data_fingerprint": fp,
                    "data_source": f"/data/{fp}",
                },
            )  # fmt: skip
            rows.append(
                pl.from_arrow(table).with_columns(
                    pl.lit(model + suffix).alias("model"), pl.lit(fp).alias("dataset")
                )
            )
    # the same checkpoint's second dataset in the first unit's folder: refused with the advice
    # to give it another name, never an overlap error or a rerun
    stray = tmp_path / "stray"
    write_shard(
        stray, "demo-1m", "step100", num_shards=1, total=N, table=_multi(9),
        manifest_overrides={"prompt_lens": [16, 32], "data_fingerprint": "jsonl-x"},
    )  # fmt: skip
    assert ingest_root(root, db, progress=False).ok
    rep = ingest_root(stray, db, progress=False)
    assert len(rep.bad) == 1
    line = rep.bad[0].line()
    assert "data_fingerprint 'jsonl-x' here vs 'corpus-abc123' there" in line
    assert "--name" in line and "overlaps" not in line and "--force" not in line
    build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)

    scored = pl.concat(rows).with_columns((pl.col("prefix_match_len") >= 32).alias("mem"))
    at32 = scored.filter(pl.col("prompt_len") == 32)
    dataset_of = dict(scored.select("model", "dataset").unique().iter_rows())

    units = _read(db, "select model, setting_key from units")
    assert units.height == 4
    assert {k.split("|")[0] for k in units["setting_key"]} == set(DATASETS)

    # rates: one row per unit, from its prompt_len-32 rows only
    rates = _read(db, "select model, n_scored, n_memorized from memorization_rates")
    want = at32.group_by("model").agg(pl.len().alias("n"), pl.col("mem").sum().alias("m"))
    assert sorted(rates.rows()) == sorted((m, n, k) for m, n, k in want.rows())

    # memorization_by_context: every (unit, prompt length), counted apart
    ctx = _read(db, "select model, prompt_len, n_scored, n_memorized from memorization_by_context")
    want = scored.group_by("model", "prompt_len").agg(pl.len(), pl.col("mem").sum())
    assert sorted(ctx.rows()) == sorted(want.rows())

    # pairs: the two sizes within each dataset, never across datasets
    agree = _read(
        db, "select model_a, model_b, n_common, n_a, n_b, n_both from cross_scale_agreement"
    )
    assert agree.height == 4
    for a, b, n_common, n_a, n_b, n_both in agree.rows():
        assert dataset_of[a] == dataset_of[b]
        ma = set(at32.filter((pl.col("model") == a) & pl.col("mem"))["seq_idx"])
        mb = set(at32.filter((pl.col("model") == b) & pl.col("mem"))["seq_idx"])
        assert (n_common, n_a, n_b, n_both) == (N, len(ma), len(mb), len(ma & mb))
    ppr = _read(
        db, "select predictor_model, target_model, tp, fp, fn, tn from prediction_precision_recall"
    )
    assert sorted(ppr.select("predictor_model", "target_model").rows()) == [
        ("demo-1m", "demo-4m"),
        ("demo-1m-jsonl", "demo-4m-jsonl"),
    ]
    for p, t, tp, fp, fn, tn in ppr.rows():
        P = set(at32.filter((pl.col("model") == p) & pl.col("mem"))["seq_idx"])
        T = set(at32.filter((pl.col("model") == t) & pl.col("mem"))["seq_idx"])
        assert (tp, fp, fn, tn) == (len(P & T), len(P - T), len(T - P), N - len(P | T))

    # scaling slopes fitted within one dataset: two points each, numpy's least squares
    sc = _read(db, "select model, setting_key, slope_vs_params from scaling_curves")
    rate = dict(at32.group_by("model").agg(pl.col("mem").mean()).iter_rows())
    for fp, suffix in DATASETS.items():
        x = np.log(list(SIZES.values()))
        y = np.log([rate[m + suffix] for m in SIZES])
        got = sc.filter(pl.col("setting_key").str.starts_with(fp + "|"))["slope_vs_params"]
        assert got.len() == 2 and all(
            g == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9) for g in got
        )
