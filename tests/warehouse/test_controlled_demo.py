"""Controlled experiments on the real demo (issue 17): the standard and edited demo models give
the dose-response and mitigation marts meaningful rows, and every number matches an
independent computation from the score rows and the suite's own corpus and exposure files."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import polars as pl
import pytest
from controlled_independent import newcombe_paired, pow2_bin, t_interval
from wh_independent import mart, wilson

pytestmark = pytest.mark.slow


def _scores(db, model: str, revision: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(
            "SELECT seq_idx, prefix_match_len >= 32 AS mem, loss::DOUBLE AS loss FROM raw.scores "
            f"WHERE model = '{model}' AND revision = '{revision}' AND is_run_prompt_len "
            "ORDER BY seq_idx"
        ).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(demo_run):
    from memwh.demo_suite import read_manifest

    m = read_manifest(demo_run.suite_dir)
    std = next(c for c in m["controls"] if c["role"] == "standard")
    ft = next(c for c in m["controls"] if c["role"] == "edited")
    corpus = pl.read_parquet(demo_run.suite_dir / "corpus.parquet").select(
        "seq_idx", "duplicates", "category"
    )
    exposure = pl.read_parquet(demo_run.suite_dir / m["exposure"]["path"])
    return demo_run.db, std, ft, corpus, exposure


def test_dose_response_against_standard_on_demo(demo):
    db, std, _ft, corpus, _ = demo
    base, rev = std["model"].removesuffix("-standard"), std["revision"]
    p = _scores(db, base, rev).join(corpus, on="seq_idx")
    c = _scores(db, std["model"], rev)
    j = p.join(c, on="seq_idx", suffix="_c").with_columns(
        duplicates_bin=pl.Series(pow2_bin(p["duplicates"].to_list()))
    )
    got = mart(db, "insertion_dose_response").filter(model=base, revision=rev)
    assert got.height == j.select("category", "duplicates_bin").n_unique()
    for (cat, b), g in j.group_by(["category", "duplicates_bin"]):
        r = got.filter(category=cat, duplicates_bin=b).row(0, named=True)
        a, s = g["mem"].to_numpy(), g["mem_c"].to_numpy()
        d, lo, hi = newcombe_paired(a, s)
        dl = g["loss"].to_numpy() - g["loss_c"].to_numpy()
        llo, lhi = t_interval(dl)
        wl, wh = wilson(int(a.sum()), len(a))
        assert r["control_model"] == std["model"]
        assert (r["n_scored"], r["n_memorized"], r["control_memorized"]) == (
            len(a), int(a.sum()), int(s.sum())
        )  # fmt: skip
        for k, v in {"memorization_rate": a.mean(), "control_rate": s.mean(), "rate_diff": d,
                     "loss_diff": dl.mean(), "mean_loss": g["loss"].mean()}.items():  # fmt: skip
            assert abs(r[k] - v) <= 1e-12, (cat, b, k, r[k], v)
        for k, v in {"rate_diff_lo": lo, "rate_diff_hi": hi, "loss_diff_lo": llo,
                     "loss_diff_hi": lhi, "memorization_rate_lo": max(wl, 0),
                     "memorization_rate_hi": min(wh, 1)}.items():  # fmt: skip
            assert (r[k] is None and v is None) or abs(r[k] - v) <= 1e-9, (cat, b, k, r[k], v)
    # the acceptance: perturbed minus standard rises with the canaries' copies
    canary = got.filter(category="canary").sort("duplicates_bin")
    diffs = canary["rate_diff"].to_list()
    assert diffs == sorted(diffs) and diffs[-1] > diffs[0] and diffs[-1] > 0.5, diffs
    assert canary["control_memorized"].sum() == 0  # the standard model never saw a canary


def test_mitigation_on_demo(demo):
    db, _std, ft, _corpus, exposure = demo
    base_model, base_rev = ft["variant_of"].split("@")
    b = _scores(db, base_model, base_rev)
    e = _scores(db, ft["model"], ft["revision"])
    j = b.join(e, on="seq_idx", suffix="_e").join(exposure, on="seq_idx", how="left")
    bm, em = j["mem"].to_numpy(), j["mem_e"].to_numpy()
    dl = j["loss_e"].to_numpy() - j["loss"].to_numpy()
    neither, held = ~bm & ~em, j["first_step"].is_null().to_numpy()
    r = mart(db, "mitigation_effect").filter(edited_model=ft["model"]).row(0, named=True)
    removed = int(np.sum(bm & ~em))
    assert (r["base_memorized"], r["n_removed"], r["n_newly_memorized"]) == (
        int(bm.sum()), removed, int(np.sum(em & ~bm))
    )  # fmt: skip
    assert r["n_neither"] == int(neither.sum()) and r["n_held_out"] == int(held.sum()) > 0
    assert abs(r["loss_change_neither"] - dl[neither].mean()) <= 1e-12
    assert abs(r["perplexity_ratio_held_out"] - math.exp(dl[held].mean())) <= 1e-12
    lo, hi = t_interval(dl[neither])
    assert (
        abs(r["loss_change_neither_lo"] - lo) <= 1e-9
        and abs(r["loss_change_neither_hi"] - hi) <= 1e-9
    )
    wl, wh = wilson(removed, int(bm.sum()))
    assert (
        abs(r["removed_share_lo"] - max(wl, 0)) <= 1e-9 and abs(r["removed_share_hi"] - wh) <= 1e-9
    )
    # the acceptance: memorized sequences removed, at a measured perplexity cost
    assert removed > 0 and r["perplexity_ratio_neither"] != 1.0
    assert r["method"] == "fine-tune" and '"steps"' in r["method_params"]
