"""Controlled experiments (issue 17): insertion dose-response against a standard model,
forgetting after insertion, mitigation before/after, and Wilson intervals on existing rates.
Every number is recomputed independently (numpy + mpmath) from the fixture's Python rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from controlled_fixture import UNITS, Controlled
from controlled_fixture import build as load_controlled
from controlled_independent import (
    cornish_fisher_t975,
    newcombe_paired,
    pow2_bin,
    t975,
    t_interval,
)
from wh_fixtures import make_db
from wh_independent import assert_frames_match, mart, wilson


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Controlled]:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-controlled")
    held: dict[str, Controlled] = {}
    db = make_db(d / "ctl.duckdb", lambda con: held.setdefault("x", load_controlled(con)))
    assert build(db, quiet=True, target_path=d / "target", unit_tests=False).success
    return db, held["x"]


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(np.float64)  # raw.score_rows stores loss as REAL


def _unit_frame(x: Controlled, unit: tuple[str, str]) -> pl.DataFrame:
    r = x.rows[unit]
    m = x.meta
    idx = r["seq_idx"]
    return pl.DataFrame(
        {
            "seq_idx": idx,
            "mem": r["mem"],
            "loss": _f32(r["loss"]),
            "duplicates": m["duplicates"][idx],
            "duplicates_bin": pow2_bin(m["duplicates"][idx]),
            "category": m["category"][idx].astype(str),
            "last": m["last"][idx],
        }
    )


def test_dose_response_matches_independent(ctl):
    db, x = ctl
    want = []
    for unit, (role, _step, *_rest) in UNITS.items():
        f = _unit_frame(x, unit)
        ctrl = ("hub-s", "step100") if unit == ("hub-p", "step100") else None
        cf = _unit_frame(x, ctrl) if ctrl else None
        for (cat, b), g in f.group_by(["category", "duplicates_bin"]):
            n, k = g.height, int(g["mem"].sum())
            lo, hi = wilson(k, n)
            mlo, mhi = t_interval(g["loss"].to_numpy())
            row = {
                "model": unit[0], "revision": unit[1], "category": cat, "duplicates_bin": b,
                "role": role, "n_scored": n, "n_memorized": k, "memorization_rate": k / n,
                "memorization_rate_lo": max(lo, 0.0), "memorization_rate_hi": min(hi, 1.0),
                "mean_loss": float(g["loss"].mean()), "mean_loss_lo": mlo, "mean_loss_hi": mhi,
                "control_model": None, "n_paired": None, "control_memorized": None,
                "control_rate": None, "rate_diff": None, "rate_diff_lo": None,
                "rate_diff_hi": None, "loss_diff": None, "loss_diff_lo": None,
                "loss_diff_hi": None, "control_mean_loss": None,
            }  # fmt: skip
            if cf is not None:
                c = cf.filter(pl.col("seq_idx").is_in(g["seq_idx"].implode())).sort("seq_idx")
                a, bm = g.sort("seq_idx")["mem"].to_numpy(), c["mem"].to_numpy()
                dl = g.sort("seq_idx")["loss"].to_numpy() - c["loss"].to_numpy()
                d, dlo, dhi = newcombe_paired(a, bm)
                llo, lhi = t_interval(dl)
                row.update(
                    control_model=ctrl[0], n_paired=n, control_memorized=int(bm.sum()),
                    control_rate=bm.sum() / n, rate_diff=d, rate_diff_lo=dlo, rate_diff_hi=dhi,
                    loss_diff=float(dl.mean()), loss_diff_lo=llo, loss_diff_hi=lhi,
                    control_mean_loss=float(c["loss"].mean()),
                )  # fmt: skip
            want.append(row)
    want = pl.DataFrame(want, infer_schema_length=None)
    got = mart(db, "insertion_dose_response")
    keys = ["model", "revision", "category", "duplicates_bin"]
    assert_frames_match(
        got, want, keys,
        exact=["role", "n_scored", "n_memorized", "control_model", "n_paired", "control_memorized"],
        approx=["memorization_rate", "mean_loss", "control_rate", "rate_diff", "loss_diff",
                "control_mean_loss"],
    )  # fmt: skip
    assert_frames_match(
        got, want, keys, exact=[],
        approx=["memorization_rate_lo", "memorization_rate_hi", "mean_loss_lo", "mean_loss_hi",
                "rate_diff_lo", "rate_diff_hi", "loss_diff_lo", "loss_diff_hi"],
        tol=1e-9,
    )  # fmt: skip
    # the fixture's perturbed unit memorizes more with more copies; its control does not
    p = got.filter(model="hub-p", revision="step100", category="canary").sort("duplicates_bin")
    assert p["rate_diff"].to_list() == sorted(p["rate_diff"].to_list())


def test_other_sequences_or_setting_never_a_control(ctl):
    """hub-s@step50 scored fewer sequences, hub-s64 another cont_len: no difference rows."""
    db, _ = ctl
    got = mart(db, "insertion_dose_response")
    assert set(got.filter(pl.col("control_model").is_not_null())["model"]) == {"hub-p"}
    assert set(got.filter(pl.col("control_model").is_not_null())["revision"]) == {"step100"}
    assert set(got["control_model"].drop_nulls()) == {"hub-s"}
    step50 = got.filter(model="hub-p", revision="step50")
    assert step50.height > 0
    assert step50["rate_diff"].null_count() == step50.height
    assert step50["loss_diff"].null_count() == step50.height
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        pairs = con.sql("select * from int_controlled_pairs").fetchall()
    finally:
        con.close()
    assert pairs == [("hub-p", "step100", "ctl", "hub-s", "step100", 1)]


def test_timing_matches_independent(ctl):
    db, x = ctl
    want = []
    for unit, (_role, step, *_rest) in UNITS.items():
        if step is None:
            continue
        f = _unit_frame(x, unit).filter((pl.col("last") >= 0) & (pl.col("last") < step))
        f = f.with_columns(since=step - 1 - pl.col("last"))
        f = f.with_columns(steps_since_bin=pl.Series(pow2_bin(f["since"].to_list())))
        for (cat, b, sb), g in f.group_by(["category", "duplicates_bin", "steps_since_bin"]):
            n, k = g.height, int(g["mem"].sum())
            lo, hi = wilson(k, n)
            mlo, mhi = t_interval(g["loss"].to_numpy())
            want.append(
                {
                    "model": unit[0], "revision": unit[1], "category": cat, "duplicates_bin": b,
                    "steps_since_bin": sb, "min_steps_since": int(g["since"].min()),
                    "max_steps_since": int(g["since"].max()), "n_scored": n, "n_memorized": k,
                    "memorization_rate": k / n, "memorization_rate_lo": lo,
                    "memorization_rate_hi": hi, "mean_loss": float(g["loss"].mean()),
                    "mean_loss_lo": mlo, "mean_loss_hi": mhi,
                }
            )  # fmt: skip
    want = pl.DataFrame(want)
    got = mart(db, "insertion_timing")
    keys = ["model", "revision", "category", "duplicates_bin", "steps_since_bin"]
    assert_frames_match(
        got, want, keys, exact=["min_steps_since", "max_steps_since", "n_scored", "n_memorized"],
        approx=["memorization_rate", "mean_loss"],
    )  # fmt: skip
    assert_frames_match(
        got, want, keys, exact=[],
        approx=["memorization_rate_lo", "memorization_rate_hi", "mean_loss_lo", "mean_loss_hi"],
        tol=1e-9,
    )  # fmt: skip


def test_mitigation_matches_independent(ctl):
    db, x = ctl
    b = _unit_frame(x, ("hub-p", "step100")).sort("seq_idx")
    e = _unit_frame(x, ("hub-ft", "main")).sort("seq_idx")
    bm, em = b["mem"].to_numpy(), e["mem"].to_numpy()
    dl = e["loss"].to_numpy() - b["loss"].to_numpy()
    removed = int(np.sum(bm & ~em))
    lo, hi = wilson(removed, int(bm.sum()))
    neither = ~bm & ~em
    nlo, nhi = t_interval(dl[neither])
    held = x.exposure_first[b["seq_idx"].to_numpy()] < 0
    hlo, hhi = t_interval(dl[held])
    got = mart(db, "mitigation_effect").row(0, named=True)
    assert mart(db, "mitigation_effect").height == 1
    assert (got["base_model"], got["base_revision"], got["edited_model"]) == (
        "hub-p",
        "step100",
        "hub-ft",
    )
    assert got["method"] == "fine-tune" and '"steps": 20' in got["method_params"]
    assert got["n_common"] == 200
    assert got["base_memorized"] == int(bm.sum())
    assert got["edited_memorized"] == int(em.sum())
    assert got["n_removed"] == removed
    assert got["n_newly_memorized"] == int(np.sum(em & ~bm))
    assert got["n_neither"] == int(neither.sum())
    assert got["n_held_out"] == int(held.sum()) == 30
    for k, v in {
        "removed_share": removed / bm.sum(),
        "loss_change_neither": dl[neither].mean(),
        "perplexity_ratio_neither": math.exp(dl[neither].mean()),
        "loss_change_held_out": dl[held].mean(),
        "perplexity_ratio_held_out": math.exp(dl[held].mean()),
    }.items():
        assert abs(got[k] - v) <= 1e-12, (k, got[k], v)
    for k, v in {
        "removed_share_lo": lo,
        "removed_share_hi": hi,
        "loss_change_neither_lo": nlo,
        "loss_change_neither_hi": nhi,
        "perplexity_ratio_neither_lo": math.exp(nlo),
        "perplexity_ratio_neither_hi": math.exp(nhi),
        "loss_change_held_out_lo": hlo,
        "loss_change_held_out_hi": hhi,
    }.items():
        assert abs(got[k] - v) <= 1e-9, (k, got[k], v)


def test_wilson_on_existing_rates(ctl):
    db, _ = ctl
    for name in ("memorization_rates", "memorization_by_duplication"):
        for r in mart(db, name).iter_rows(named=True):
            if not r["n_scored"]:
                continue
            lo, hi = wilson(r["n_memorized"], r["n_scored"])
            assert abs(r["memorization_rate_lo"] - max(lo, 0)) <= 1e-9, (name, r)
            assert abs(r["memorization_rate_hi"] - min(hi, 1)) <= 1e-9, (name, r)
    agreement = mart(db, "cross_scale_agreement")
    assert agreement.height > 0
    for r in agreement.iter_rows(named=True):
        union = r["n_a"] + r["n_b"] - r["n_both"]
        if union == 0:
            assert r["jaccard_lo"] is None and r["jaccard_hi"] is None
            continue
        lo, hi = wilson(r["n_both"], union)
        assert abs(r["jaccard_lo"] - max(lo, 0)) <= 1e-9
        assert abs(r["jaccard_hi"] - min(hi, 1)) <= 1e-9
        assert r["jaccard_lo"] <= r["jaccard"] <= r["jaccard_hi"]


def test_t_quantile_seed_and_expansion():
    """The seed agrees with an independent mpmath inversion; above df 1000 the SQL expansion
    is within 1e-12 of the exact quantile."""
    seed = pl.read_csv(Path(__file__).parents[2] / "warehouse" / "seeds" / "t_quantiles.csv")
    assert seed["df"].to_list() == list(range(1, 1001))
    for df in (1, 2, 3, 7, 30, 99, 500, 1000):
        assert abs(seed.filter(df=df)["t975"][0] - t975(df)) <= 1e-12
    for df in (1001, 1500, 10_000, 1_000_000):
        assert abs(cornish_fisher_t975(df) - t975(df)) <= 1e-12
