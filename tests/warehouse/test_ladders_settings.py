"""Who is compared with whom (issues 14 and 17): size comparisons stay on one scaling ladder
(family + role class), every pair stays within one extraction setting (dataset, prompt_len,
cont_len, mode class, EOS rule), and a unit whose cont_len is below memorized_min_tokens is
left out of every mart and counted by `memwh build`. Counts are checked against numpy."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from wh_fixtures import add_run, add_scores, make_db

pytestmark = pytest.mark.slow

N = 60
PARAMS = {"p-s": 1_000_000, "p-l": 8_000_000, "std": 20_000_000, "ed": 8_000_000}


def pml(model_i: int, seq: np.ndarray, cont_len: int = 32) -> np.ndarray:
    """Matched prefixes in 0..cont_len, about a quarter reaching 32, overlapping across units."""
    return (seq * 7 + model_i * 11) % (cont_len + 9) % (cont_len + 1)


def _unit(
    con: duckdb.DuckDBPyConnection,
    model: str,
    i: int,
    *,
    role: str | None = None,
    fingerprint: str = "fp1",
    prompt_len: int = 32,
    cont_len: int = 32,
    n_params: int | None = None,
) -> None:
    seqs = np.arange(N)
    add_run(
        con, model, model, "main", family="lad", n_params=n_params or PARAMS.get(model, 2_000_000),
        seq_start=0, seq_end=N, n_rows=N, data_fingerprint=fingerprint, cont_len=cont_len,
    )  # fmt: skip
    con.execute(
        "update raw.runs set role = ?, prompt_len = ?, suppress_eos = true where run_id = ?",
        [role, prompt_len, model],
    )
    p = pml(i, seqs, cont_len)
    add_scores(
        con, model, [(int(s), int(v), None, 3.0 - v / 20) for s, v in zip(seqs, p, strict=True)]
    )
    if cont_len != 32:  # add_scores labels exact_match at 32
        con.execute(
            "update raw.score_rows set exact_match = prefix_match_len >= ? where run_key = "
            "(select run_key from raw.runs where run_id = ?)",
            [cont_len, model],
        )


def _load(con: duckdb.DuckDBPyConnection) -> None:
    _unit(con, "p-s", 0, role="perturbed")
    _unit(con, "p-l", 1, role="perturbed")
    _unit(con, "std", 2, role="standard")  # larger, but on its own ladder
    _unit(con, "ed", 3, role="edited")  # on no ladder
    _unit(con, "p-other-data", 4, role="perturbed", fingerprint="fp2")  # another dataset
    _unit(con, "p-k16", 5, role="perturbed", prompt_len=16)  # another prompt length
    _unit(con, "p-long", 6, role="perturbed", cont_len=64, n_params=30_000_000)  # cont_len 64


def _read(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    tmp = tmp_path_factory.mktemp("ladders")
    db = make_db(tmp / "w.duckdb", _load)
    res = build(db, quiet=True, target_path=tmp / "target", unit_tests=False)
    assert res.unlabelable is None and "cannot be labelled" not in res.summary()
    return db


def test_size_pairs_only_on_one_ladder_and_setting(built: Path) -> None:
    across = _read(
        built,
        "select model_a, model_b, n_common, n_a, n_b, n_both from cross_scale_agreement "
        "order by model_a, model_b",
    )
    # the only cross-model pair: the two perturbed sizes of one setting (both orders)
    assert across.select("model_a", "model_b").rows() == [("p-l", "p-s"), ("p-s", "p-l")]
    seqs = np.arange(N)
    a, b = pml(1, seqs) >= 32, pml(0, seqs) >= 32  # p-l, p-s
    row = across.row(0, named=True)
    assert (row["n_common"], row["n_a"], row["n_b"], row["n_both"]) == (
        N, int(a.sum()), int(b.sum()), int((a & b).sum()),
    )  # fmt: skip

    ppr = _read(
        built,
        "select predictor_model, target_model, tp, fp, fn, tn, is_final_target "
        "from prediction_precision_recall",
    )
    assert ppr.height == 1
    r = ppr.row(0, named=True)
    assert (r["predictor_model"], r["target_model"]) == ("p-s", "p-l")
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (
        int((b & a).sum()), int((b & ~a).sum()), int((~b & a).sum()), int((~b & ~a).sum()),
    )  # fmt: skip
    # p-l is the largest of the perturbed ladder in its setting, whatever the larger standard
    # model or the 30M perturbed unit of cont_len 64 (another setting) say
    assert r["is_final_target"]
    units = dict(_read(built, "select model, is_largest_in_family from int_units").iter_rows())
    assert units["std"] and units["ed"] and units["p-l"] and not units["p-s"]


def test_scaling_slopes_per_ladder(built: Path) -> None:
    sc = _read(built, "select model, ladder, slope_vs_params from scaling_curves")
    ladders = dict(sc.select("model", "ladder").iter_rows())
    assert ladders["std"] == "lad/standard" and ladders["ed"] is None
    assert ladders["p-s"] == ladders["p-l"] == "lad/perturbed"
    slopes = dict(sc.select("model", "slope_vs_params").iter_rows())
    assert slopes["std"] is None and slopes["ed"] is None  # alone: no size slope
    # one ladder and one setting: the slope is fitted across p-s and p-l only (not the perturbed
    # units of another dataset, prompt_len or cont_len); numpy's least squares on the same points
    assert slopes["p-other-data"] is None and slopes["p-k16"] is None and slopes["p-long"] is None
    seqs = np.arange(N)
    x = np.log([PARAMS["p-s"], PARAMS["p-l"]])
    y = np.log([(pml(0, seqs) >= 32).mean(), (pml(1, seqs) >= 32).mean()])
    want = np.polyfit(x, y, 1)[0]
    assert slopes["p-s"] == pytest.approx(want, rel=1e-9) and slopes["p-l"] == slopes["p-s"]


def test_unlabelable_units_left_out_and_counted(built: Path, tmp_path: Path) -> None:
    import shutil

    from memwh.warehouse.build import build

    db = tmp_path / "w.duckdb"
    shutil.copy(built, db)
    res = build(
        db, quiet=True, target_path=tmp_path / "t", unit_tests=False,
        vars={"memorized_min_tokens": 40},
    )  # fmt: skip
    assert res.unlabelable is not None
    assert len(res.unlabelable.units) == 6 and res.unlabelable.rows == 6 * N
    assert ("p-s", "main", 32) in res.unlabelable.units
    line = res.summary().splitlines()[1]
    assert line.startswith("warning: 6 unit(s) cannot be labelled with memorized_min_tokens 40")
    assert "360 row(s) left out of every mart" in line
    # only the cont_len-64 unit is labelled; nothing of the others reaches any mart
    rates = _read(db, "select model, n_scored, n_memorized from memorization_rates")
    assert rates.rows() == [("p-long", N, int((pml(6, np.arange(N), 64) >= 40).sum()))]
    for mart in ("units", "cross_scale_agreement", "prediction_precision_recall",
                 "memorization_by_context", "scaling_curves"):  # fmt: skip
        models = set(_read(db, f"select * from {mart}").columns) & {"model", "model_a"}
        col = models.pop() if models else None
        if col:
            left = _read(db, f"select distinct {col} from {mart}")[col].to_list()
            assert set(left) <= {"p-long"}, (mart, left)
