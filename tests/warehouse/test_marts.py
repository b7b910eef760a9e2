"""The marts against an independent polars/Python-set computation on hand-made units and on the
real Pythia PR #161 data (EleutherAI/pythia, Apache-2.0)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from wh_fixtures import PR161
from wh_independent import (
    assert_frames_match,
    expected_agreement,
    expected_precision_recall,
    expected_rates,
    load_units,
    mart,
    pearson,
    wilson,
)

pytestmark = pytest.mark.slow

PR_KEYS = ["predictor_model", "predictor_revision", "target_model", "target_revision"]
AG_KEYS = ["model_a", "revision_a", "model_b", "revision_b"]


def check_against_independent(db) -> dict:
    """Compare rates, agreement and precision/recall of any built DB with the naive computation."""
    units = load_units(db)
    assert_frames_match(
        mart(db, "memorization_rates"),
        expected_rates(units),
        ["model", "revision"],
        exact=["n_scored", "n_memorized"],
        approx=["memorization_rate"],
    )
    assert_frames_match(
        mart(db, "cross_scale_agreement"),
        expected_agreement(units),
        AG_KEYS,
        exact=["n_common", "n_a", "n_b", "n_both"],
        approx=["jaccard", "cohen_kappa"],
    )
    want_pr = expected_precision_recall(units)
    assert_frames_match(
        mart(db, "prediction_precision_recall"),
        want_pr,
        PR_KEYS,
        exact=["predictor_kind", "n_population", "tp", "fp", "fn", "tn"],
        approx=["precision", "recall"],
    )
    return units


def test_toy_marts_match_independent(toy_db):
    units = check_against_independent(toy_db)
    # the fixture exercises both kinds, the seen-restriction and different populations
    pr = mart(toy_db, "prediction_precision_recall")
    assert set(pr["predictor_kind"]) == {"smaller_model", "earlier_checkpoint"}
    ck = pr.filter(
        (pl.col("predictor_model") == "toy-m")
        & (pl.col("predictor_revision") == "step1")
        & (pl.col("target_revision") == "step3")
    )
    assert ck["n_population"].item() == 0  # step1 saw seq < 10, step3 scored 10..49
    ag = mart(toy_db, "cross_scale_agreement")
    # Pearson is exact on small data: compare every pair with the naive formula
    for r in ag.iter_rows(named=True):
        want = pearson(
            units[(r["model_a"], r["revision_a"])], units[(r["model_b"], r["revision_b"])]
        )
        got = r["pearson_prefix_match_len"]
        assert (want is None) == (got is None), r
        if want is not None:
            assert abs(want - got) < 1e-9


def test_sparse_and_score_only_units(toy_db):
    rates = mart(toy_db, "memorization_rates")
    idx = rates.filter(pl.col("model") == "idx-model").row(0, named=True)
    assert (idx["n_scored"], idx["n_memorized"], idx["mean_score"]) == (100, 3, None)
    csv = rates.filter(pl.col("model") == "csv-model").row(0, named=True)
    assert csv["n_memorized"] == 7  # score >= 1 at i % 3 == 0 for i < 20


def test_wilson_intervals_and_f1(toy_db):
    pr = mart(toy_db, "prediction_precision_recall")
    for r in pr.iter_rows(named=True):
        tp, fp, fn = r["tp"], r["fp"], r["fn"]
        if tp + fp:
            lo, hi = wilson(tp, tp + fp)
            assert abs(r["precision_lo"] - lo) < 1e-12 and abs(r["precision_hi"] - hi) < 1e-12
        if tp + fn:
            lo, hi = wilson(tp, tp + fn)
            assert abs(r["recall_lo"] - lo) < 1e-12 and abs(r["recall_hi"] - hi) < 1e-12
        if 2 * tp + fp + fn:
            assert abs(r["f1"] - 2 * tp / (2 * tp + fp + fn)) < 1e-12
        assert abs(r["compute_fraction"] - r["predictor_flops"] / r["target_flops"]) < 1e-12


def test_score_distribution_and_duplication(toy_db):
    dist = mart(toy_db, "score_distribution")
    sums = dist.group_by(["model", "revision", "metric"]).agg(pl.col("fraction").sum())
    assert all(abs(f - 1) < 1e-9 for f in sums["fraction"])
    pml = dist.filter(
        (pl.col("model") == "toy-s")
        & (pl.col("revision") == "step1")
        & (pl.col("metric") == "prefix_match_len")
    )
    assert pml["n_sequences"].sum() == 40
    dup = mart(toy_db, "memorization_by_duplication")
    con = duckdb.connect(str(toy_db), read_only=True)
    want = con.sql(
        """select s.model, s.revision, q.duplicates, count(*) as n_scored,
                  count(*) filter (where s.prefix_match_len >= 32) as n_memorized
           from raw.scores s join raw.runs r using (run_id)
           join raw.sequences q on q.data_fingerprint = r.data_fingerprint and q.seq_idx = s.seq_idx
           group by all"""
    ).pl()
    con.close()
    assert_frames_match(
        dup, want, ["model", "revision", "duplicates"], exact=["n_scored", "n_memorized"], approx=[]
    )


def test_scaling_slopes(toy_db):
    sc = mart(toy_db, "scaling_curves").filter(
        (pl.col("family") == "toy") & (pl.col("revision") == "step1")
    )
    x = [float(v) for v in sc["n_params"].log()]
    y = [float(v) for v in sc["memorization_rate"].log()]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum(
        (a - mx) ** 2 for a in x
    )
    assert all(abs(s - slope) < 1e-9 for s in sc["slope_vs_params"])


def test_pr161_each_checkpoint_predicts_step9000(pr161_db):
    """Real Pythia data: memorized@32 = longest_match >= 32, every checkpoint -> step9000."""
    src = pl.read_parquet(PR161)
    mem = src.with_columns((pl.col("longest_match") >= 32).alias("m"))
    assert mem.filter(pl.col("checkpoint") == 1000)["m"].sum() == 11
    assert mem.filter(pl.col("checkpoint") == 9000)["m"].sum() == 226
    truth = mem.filter(pl.col("checkpoint") == 9000).select("index", pl.col("m").alias("t"))
    got = mart(pr161_db, "prediction_precision_recall").filter(
        pl.col("target_revision") == "step9000"
    )
    assert got.height == 8
    for ckpt in range(1000, 9000, 1000):
        # all 51,200 indices are < ckpt * 1024, so the seen-restriction keeps everything
        j = mem.filter(pl.col("checkpoint") == ckpt).join(truth, on="index")
        tp = j.filter(pl.col("m") & pl.col("t")).height
        fp = j.filter(pl.col("m") & ~pl.col("t")).height
        fn = j.filter(~pl.col("m") & pl.col("t")).height
        r = got.filter(pl.col("predictor_revision") == f"step{ckpt}").row(0, named=True)
        assert (r["tp"], r["fp"], r["fn"], r["n_population"]) == (tp, fp, fn, 51_200)
        assert r["predictor_kind"] == "earlier_checkpoint"
        assert abs(r["precision"] - tp / (tp + fp)) <= 1e-12
        assert abs(r["recall"] - tp / (tp + fn)) <= 1e-12
    check_against_independent(pr161_db)


def test_demo_marts_match_independent(demo_db):
    """The real demo pipeline's warehouse (lead's session fixture) against the naive computation."""
    check_against_independent(demo_db)
