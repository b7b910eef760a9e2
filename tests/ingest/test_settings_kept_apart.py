"""Issue 14, mixed settings end to end: the same checkpoints (one model name per checkpoint)
scored at two prompt lengths (one multi-prompt run) and on two datasets, written to two output
roots as `memwh infer --out A` / `--out B` would, ingested into ONE warehouse and built. The
dataset is part of the unit: ingest stores both (no overlap error), and every mart keeps them
apart. Checks:
* every mart (found generically under warehouse/models/marts) except build_settings has a
  `dataset` column, holds both datasets, and its rows of each dataset equal the same mart built
  from that dataset alone (so no row pairs or pools units of two datasets: a cross-dataset pair
  or a pooled count would be a row or a number the single-dataset build does not have);
* rates, pairs and slopes recomputed with polars/numpy from the shard rows themselves;
* ingest still refuses a shard that contradicts the other shards of its own dataset.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import score_table, write_shard

from memwh.core import contract
from memwh.ingest import declare_exposure_rule, import_exposure, ingest_root

pytestmark = pytest.mark.slow

N = 400
PROMPT_LENS = (16, 32)
DATASETS = ("corpus-abc123", "jsonl-x")  # data_fingerprint of the two roots
SPS, TRAIN_STEPS = 2, 150  # exposure rule: first_step = seq_idx // 2, steps 0..149 trained
# (model, revision): manifest fields. Same names on both datasets.
UNITS: dict[tuple[str, str], dict] = {
    ("demo-1m", "step50"): {"n_params": 1_000_000},
    ("demo-1m", "step100"): {"n_params": 1_000_000},
    ("demo-4m", "step50"): {"n_params": 4_000_000},
    ("demo-4m", "step100"): {"n_params": 4_000_000},
    # edited variant of demo-1m@step100 (mitigation_effect)
    ("demo-1m-ft", "main"): {
        "n_params": 1_000_000, "role": "edited", "variant_of": "demo-1m@step100",
        "method": "fine-tune",
    },
    # perturbed unit and its standard control (controlled marts)
    ("ctl-p", "step100"): {"family": "ctl", "n_params": 2_000_000, "role": "perturbed"},
    ("ctl-s", "step100"): {"family": "ctl", "n_params": 2_000_000, "role": "standard"},
}  # fmt: skip
N_SHADOW = 4
MARTS_WITHOUT_UNITS = {"build_settings"}
MARTS = sorted(
    p.stem
    for p in (Path(__file__).parents[2] / "warehouse" / "models" / "marts").rglob("*.sql")
    if p.stem not in MARTS_WITHOUT_UNITS
)


def _multi(seed: int) -> pa.Table:
    """Rows at prompt lengths 16 and 32, sequence-major as memwh's multi-prompt jobs write."""
    parts = []
    for j, k in enumerate(PROMPT_LENS):
        t = score_table(0, N, seed=seed * 10 + j)
        parts.append(t.set_column(8, "prompt_len", pa.array(np.full(N, k, np.int16))))
    return pa.concat_tables(parts).sort_by([("seq_idx", "ascending"), ("prompt_len", "ascending")])


def _write_root(root: Path, fp: int, dataset: str) -> pl.DataFrame:
    """One dataset's output root: every unit, shadow units, sequence metadata and windows."""
    rows = []
    units = dict(UNITS) | {
        (f"shdw-{i}", "main"): {"family": "shdw", "n_params": 100_000, "role": "shadow"}
        for i in range(N_SHADOW)
    }
    for i, ((model, revision), fields) in enumerate(units.items()):
        table = _multi(seed=100 * fp + i)
        write_shard(
            root, model, revision, num_shards=1, total=N, table=table,
            manifest_overrides={
                "prompt_lens": list(PROMPT_LENS), "data_fingerprint": dataset,
                "data_source": f"/data/{dataset}", "family": "demo", **fields,
            },
        )  # fmt: skip
        rows.append(
            pl.from_arrow(table).with_columns(
                pl.lit(model).alias("model"),
                pl.lit(revision).alias("revision"),
                pl.lit(dataset).alias("dataset"),
            )
        )
    rng = np.random.default_rng(fp)
    seq = np.arange(N)
    meta = contract.sequence_meta_table(
        {
            "duplicates": pa.array(rng.integers(1, 20, N)),
            "category": pa.array(np.where(seq < 100, "canary", "background")),
            "insert_first_step": pa.array(np.where(seq < 100, seq % 40, None)),
            "insert_last_step": pa.array(np.where(seq < 100, seq % 40 + 5, None)),
        },
        pa.array(seq),
    )
    path = contract.sequences_meta_path(root, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(meta, path)
    tokens = rng.integers(0, 1000, (N, 64))
    contract.write_windows(contract.windows_path(root, dataset, 64, 0, N), [(seq, tokens)])
    return pl.concat(rows)


def _declare_exposure(db: Path, dataset: str, tmp: Path, fp: int) -> None:
    """The rule for the checkpoints; a random half per shadow model (a table)."""
    for model in {m for m, _ in UNITS}:
        declare_exposure_rule(
            model=model, sequences_per_step=SPS, train_steps=TRAIN_STEPS, dataset=dataset, db=db
        )
    rng = np.random.default_rng(1000 + fp)
    for i in range(N_SHADOW):
        is_in = rng.random(N) < 0.5
        path = tmp / f"exposure-{dataset}-{i}.parquet"
        first = pa.array(np.zeros(N, np.int64), mask=~is_in)
        pq.write_table(
            pa.table({"seq_idx": np.arange(N, dtype=np.int64), "first_step": first}), path
        )
        import_exposure(path, model=f"shdw-{i}", dataset=dataset, db=db)


def _read(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def _normal(v):
    """Comparable value: floats to 9 significant digits (sums in another order), NaN kept."""
    if isinstance(v, float):
        return "nan" if v != v else float(f"{v:.9g}")
    if isinstance(v, list | tuple):
        return tuple(_normal(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _normal(x)) for k, x in v.items()))
    return v


def _mart_rows(db: Path, mart: str, dataset: str | None = None) -> list[tuple]:
    """A mart's rows (of one dataset), comparable across builds: without build/ingest times and
    change-detection fingerprints (they hash the exposure_id, new on every import)."""
    df = _read(db, f"select * from {mart}")
    if dataset is not None:
        df = df.filter(pl.col("dataset") == dataset)
    keep = [
        c
        for c, t in df.schema.items()
        if not t.is_temporal() and not (c.endswith("_fingerprint") and c != "data_fingerprint")
    ]
    return sorted((tuple(_normal(v) for v in r) for r in df.select(keep).rows()), key=repr)


def _ingest_and_build(roots: list[Path], db: Path, tmp: Path) -> None:
    from memwh.warehouse.build import build

    for root in roots:
        rep = ingest_root(root, db, progress=False)
        assert rep.ok, [p.line() for p in rep.bad]
    for root in roots:
        fp = DATASETS.index(root.name)
        _declare_exposure(db, root.name, tmp, fp)
    build(db, quiet=True, target_path=tmp / f"target-{db.stem}", unit_tests=False)


def test_two_datasets_two_prompt_lengths_never_mix(tmp_path: Path) -> None:
    roots = [tmp_path / ds for ds in DATASETS]
    scored = pl.concat([_write_root(r, i, r.name) for i, r in enumerate(roots)])

    db = tmp_path / "both.duckdb"
    _ingest_and_build(roots, db, tmp_path)
    alone = {}
    for root in roots:
        alone[root.name] = tmp_path / f"{root.name}.duckdb"
        _ingest_and_build([root], alone[root.name], tmp_path)

    # both datasets' rows are stored: one checkpoint, two units
    units = _read(db, "select model, revision, dataset, setting_key from units")
    assert units.height == 2 * (len(UNITS) + N_SHADOW)
    assert units.group_by("model", "revision").len()["len"].to_list() == [2] * (
        len(UNITS) + N_SHADOW
    )
    assert all(k.split("|")[0] == d for d, k in units.select("dataset", "setting_key").rows())

    # every mart: a dataset column, both datasets, and each dataset's rows = its build alone
    for mart in MARTS:
        combined = _read(db, f"select * from {mart}")
        assert "dataset" in combined.columns, f"{mart} has no dataset column"
        assert set(combined["dataset"]) == set(DATASETS), (mart, set(combined["dataset"]))
        for ds, single_db in alone.items():
            want = _mart_rows(single_db, mart)
            assert want, f"{mart} is empty on {ds} alone: the check would prove nothing"
            assert _mart_rows(db, mart, ds) == want, (
                f"{mart}: rows of {ds} differ from its build alone"
            )

    # independent numbers from the shard rows (the single builds share the code under test)
    scored = scored.with_columns((pl.col("prefix_match_len") >= 32).alias("mem"))
    at32 = scored.filter(pl.col("prompt_len") == 32)
    key = ["model", "revision", "dataset"]
    rates = _read(
        db, "select model, revision, dataset, n_scored, n_memorized from memorization_rates"
    )
    want = at32.group_by(key).agg(pl.len(), pl.col("mem").sum())
    assert sorted(rates.rows()) == sorted(want.rows())
    ctx = _read(
        db,
        "select model, revision, dataset, prompt_len, n_scored, n_memorized from memorization_by_context",
    )
    want = scored.group_by([*key, "prompt_len"]).agg(pl.len(), pl.col("mem").sum())
    assert sorted(ctx.rows()) == sorted(want.rows())

    def memorized(model: str, revision: str, dataset: str) -> set[int]:
        f = at32.filter(
            (pl.col("model") == model) & (pl.col("revision") == revision)
            & (pl.col("dataset") == dataset) & pl.col("mem")
        )  # fmt: skip
        return set(f["seq_idx"])

    # pairs: two sizes at one revision and two checkpoints of one model, within each dataset
    agree = _read(
        db,
        "select dataset, model_a, revision_a, model_b, revision_b, n_common, n_a, n_b, n_both "
        "from cross_scale_agreement where model_a like 'demo-_m' and model_b like 'demo-_m'",
    )
    assert agree.height == 2 * 2 * 4  # per dataset: 2 size pairs + 2 checkpoint pairs, both orders
    for ds, ma, ra, mb, rb, n_common, n_a, n_b, n_both in agree.rows():
        a, b = memorized(ma, ra, ds), memorized(mb, rb, ds)
        assert (n_common, n_a, n_b, n_both) == (N, len(a), len(b), len(a & b))
    ppr = _read(
        db,
        "select dataset, predictor_model, predictor_revision, target_model, target_revision, "
        "predictor_kind, population_seq_limit, tp, fp, fn, tn from prediction_precision_recall "
        "where target_model like 'demo-_m'",
    )
    assert ppr.height == 2 * 4
    for ds, pm, pr, tm, tr, kind, limit, tp, fp, fn, tn in ppr.rows():
        cut = limit if kind == "earlier_checkpoint" else N
        assert kind != "earlier_checkpoint" or limit == 50 * SPS
        P = {s for s in memorized(pm, pr, ds) if s < cut}
        T = {s for s in memorized(tm, tr, ds) if s < cut}
        assert (tp, fp, fn, tn) == (len(P & T), len(P - T), len(T - P), cut - len(P | T))

    # size slopes fitted within one dataset: two points each, numpy's least squares
    sc = _read(
        db,
        "select dataset, revision, model, slope_vs_params from scaling_curves where model like 'demo-_m'",
    )
    rate = {(m, r, d): v for m, r, d, v in at32.group_by(key).agg(pl.col("mem").mean()).iter_rows()}
    for ds, revision, _model, slope in sc.rows():
        x = np.log([1e6, 4e6])
        y = np.log([rate[("demo-1m", revision, ds)], rate[("demo-4m", revision, ds)]])
        assert slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)

    # the report draws one dataset (the warehouse holds two): its rates are that dataset's
    from memwh.reports import render_report
    from memwh.reports.data import load_marts

    marts = load_marts(db, dataset=DATASETS[1])
    assert marts.shown_dataset == DATASETS[1] and marts.other_datasets == [DATASETS[0]]
    want = rates.filter(pl.col("dataset") == DATASETS[1])
    assert sorted(marts.rates.select("model", "revision", "n_scored", "n_memorized").rows()) == (
        sorted(want.select("model", "revision", "n_scored", "n_memorized").rows())
    )
    res = render_report(db, tmp_path / "report", formats=("html",))
    assert res.html is not None and f"also holds {DATASETS[1]}" in res.html.read_text()


def test_contradicting_shard_of_the_same_dataset_is_refused(tmp_path: Path) -> None:
    """A second dataset of a stored checkpoint loads; a shard contradicting its own dataset's
    shards is still one line naming both, never a silent mix."""
    db = tmp_path / "wh.duckdb"
    overrides = {"prompt_lens": list(PROMPT_LENS), "data_fingerprint": DATASETS[0]}
    write_shard(tmp_path / "a", "demo-1m", "step100", num_shards=1, total=N, table=_multi(1),
                manifest_overrides=overrides)  # fmt: skip
    write_shard(tmp_path / "b", "demo-1m", "step100", num_shards=1, total=N, table=_multi(2),
                manifest_overrides={**overrides, "data_fingerprint": DATASETS[1]})  # fmt: skip
    write_shard(tmp_path / "c", "demo-1m", "step100", num_shards=1, total=N, table=_multi(3),
                manifest_overrides={**overrides, "dtype": "bfloat16"})  # fmt: skip
    assert ingest_root(tmp_path / "a", db, progress=False).ok
    assert ingest_root(tmp_path / "b", db, progress=False).ok
    rep = ingest_root(tmp_path / "c", db, progress=False)
    assert len(rep.bad) == 1
    line = rep.bad[0].line()
    assert "dtype 'bfloat16' here vs 'float32' there" in line and "\n" not in line
    assert str(tmp_path / "a") in line and "overlaps" not in line
    got = _read(db, "select data_fingerprint, count(*) from raw.scores group by all order by 1")
    assert got.rows() == [(DATASETS[0], 2 * N), (DATASETS[1], 2 * N)]
