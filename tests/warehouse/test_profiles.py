"""Memorisation profiles and transitions (STUDIES §4, §6) against independent computations:
a hand-made warehouse with a known training order, the real PR #161 import, the demo warehouse,
and the PyPI package `differences` (the estimator the paper used)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from profile_fixtures import PROFILE_MODEL, add_profile_unit, load_profiles
from profile_independent import (
    expected_cells,
    expected_history,
    expected_summary,
    expected_transitions,
    load_panel,
)
from wh_fixtures import PR161, make_db
from wh_independent import assert_frames_match, mart

pytestmark = pytest.mark.slow

TOL = 1e-9
CELL_KEYS = ["model", "cohort_index", "checkpoint_step"]
CELL_EXACT = ["cohort_first_step", "cohort_last_step", "event_time", "base_step", "n_treated", "n_control"]  # fmt: skip
CELL_APPROX = ["att", "att_se", "att_lo", "att_hi"]
TRANSITION_COUNTS = ["n_both_scored", "n_newly_memorized", "n_kept", "n_forgotten", "n_never"]
HISTORY_EXACT = [
    "first_step", "first_memorized_step", "last_memorized_step", "n_checkpoints_memorized",
    "n_checkpoints_scored", "first_forgotten_step", "ever_forgotten",
    "memorized_at_last_checkpoint",
]  # fmt: skip


def _ints(df: pl.DataFrame) -> pl.DataFrame:
    """Integer columns as Int64 (DuckDB gives int32/int128 where polars' loops give int64)."""
    return df.with_columns(pl.col(c).cast(pl.Int64) for c, t in df.schema.items() if t.is_integer())


def check_profiles(
    db: Path, *, models: set[str] | None = None, outcome: str = "loss"
) -> pl.DataFrame:
    """Every profile mart of `db` equals the independent computation; returns the cells."""
    panel = load_panel(db, outcome=outcome)
    if models is not None:
        panel = panel.filter(pl.col("model").is_in(list(models)))

    def got(name: str) -> pl.DataFrame:
        df = _ints(mart(db, name))
        if "outcome" in df.columns:
            df = df.filter(pl.col("outcome") == outcome)
        return df if models is None else df.filter(pl.col("model").is_in(list(models)))

    cells = _ints(expected_cells(panel))
    prof = got("memorization_profiles")
    assert_frames_match(prof, cells, CELL_KEYS, exact=CELL_EXACT, approx=CELL_APPROX, tol=TOL)

    def keyed(df: pl.DataFrame) -> pl.DataFrame:  # residual rows have no event time
        return df.with_columns(pl.col("event_time").fill_null(-(10**9)))

    summary = keyed(_ints(expected_summary(panel, cells)))
    assert_frames_match(
        keyed(got("memorization_profile_summary")),
        summary,
        ["model", "kind", "event_time"],
        exact=["n_cohorts", "n_treated", "n_control"],
        approx=["estimate", "se", "lo", "hi"],
        tol=TOL,
    )
    assert_frames_match(
        got("memorization_transitions"),
        _ints(expected_transitions(panel)),
        ["model", "from_step"],
        exact=["to_step", *TRANSITION_COUNTS],
        approx=[],
    )
    assert_frames_match(
        got("sequence_memorization_history"),
        _ints(expected_history(panel)),
        ["model", "seq_idx"],
        exact=HISTORY_EXACT,
        approx=[],
    )
    return cells


@pytest.fixture(scope="module")
def profile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-profiles")
    db = make_db(d / "profiles.duckdb", load_profiles)
    assert build(db, quiet=True, target_path=d / "target", unit_tests=False).success
    return db


def test_profiles_match_independent(profile_db: Path) -> None:
    cells = check_profiles(profile_db)
    # the fixture's design: 4 cohorts x 4 checkpoints each, seq 5 / 25 / 47 (seen 3 times) out
    assert cells.filter(pl.col("model") == PROFILE_MODEL).height == 16
    assert cells.filter(pl.col("cohort_index") == 1)["n_treated"].unique().to_list() == [19]
    inst = mart(profile_db, "memorization_profile_summary").filter(
        pl.col("kind") == "instantaneous"
    )
    assert inst.height == 1 and inst["hi"][0] < 0, "the fixture's training lowers the loss"


def test_bad_inputs_give_no_rows(profile_db: Path) -> None:
    """No step / no controls / one checkpoint: no rows in the profile marts, no NaN anywhere."""
    for name in ("memorization_profiles", "memorization_profile_summary"):
        df = mart(profile_db, name)
        assert set(df["model"].unique()) == {PROFILE_MODEL}, name
        for c, t in df.schema.items():
            if t.is_float():
                assert df[c].is_nan().sum() == 0 and df[c].null_count() == 0, (name, c)
    cells = mart(profile_db, "int_profile_cells")
    noctrl = cells.filter(pl.col("model") == "pt-noctrl")
    assert noctrl.height == 16 and (noctrl["n_control"] == 0).all()
    assert noctrl["att"].null_count() == noctrl.height
    assert cells.filter(pl.col("model").is_in(["pt-nostep", "pt-one"])).is_empty()
    # transitions need a step and two checkpoints, not controls
    tr = mart(profile_db, "memorization_transitions")
    assert set(tr["model"].unique()) == {PROFILE_MODEL, "pt-noctrl"}


def _differences_attgt(panel: pl.DataFrame) -> pl.DataFrame:
    """ATT(g, t) and its standard error from the PyPI package `differences` (never-treated
    controls, no covariates, universal base period), on checkpoint indices."""
    from differences import ATTgt  # a dev dependency: a missing package fails, never skips

    steps = sorted(set(panel["step"].to_list()))
    bounds = list(itertools.pairwise(steps))

    def cohort(fs: int | None, ne: int | None) -> float | None:
        if fs is None:
            return None  # never treated
        if ne is not None and ne > 1:
            return -1.0  # seen more than once: left out, as the mart does by default
        g = next((g for g, (a, b) in enumerate(bounds, 1) if a <= fs < b), None)
        return -1.0 if g is None else float(g)

    p = panel.with_columns(
        pl.struct("first_step", "n_exposures")
        .map_elements(lambda r: cohort(r["first_step"], r["n_exposures"]), return_dtype=pl.Float64)
        .alias("cohort"),
        pl.col("step").replace_strict({s: i for i, s in enumerate(steps)}).alias("time"),
    ).filter(pl.col("cohort").is_null() | (pl.col("cohort") >= 1))
    df = p.select("seq_idx", "time", "value", "cohort").to_pandas().set_index(["seq_idx", "time"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ATTgt(df, cohort_column="cohort", base_period="universal").fit(
            "value", control_group="never_treated", progress_bar=False
        )
    r = res.to_pandas()
    r.columns = [c[-1] if isinstance(c, tuple) else c for c in r.columns]
    out = pl.from_pandas(r.reset_index()).select(
        pl.col("cohort").cast(pl.Int64).alias("cohort_index"),
        pl.col("time")
        .cast(pl.Int64)
        .replace_strict(dict(enumerate(steps)))
        .alias("checkpoint_step"),
        pl.col("ATT").alias("att_pkg"),
        pl.col("std_error").alias("se_pkg"),
    )
    return out


def check_against_differences(db: Path, model: str) -> int:
    """`differences`' ATTgt equals our att (to 1e-9) for every cell. Its analytic standard error
    is the influence-function one, whose variances have n (not n - 1) denominators:
    se_pkg^2 = var_t (n_t - 1) / n_t^2 + var_c (n_c - 1) / n_c^2 in terms of our sample
    variances, so our att_se (STUDIES §4: sample variances) is checked through that identity.
    The package's own base-period rows (ATT 0 at c = c_{g-1}) are not cells of the mart."""
    panel = load_panel(db).filter(pl.col("model") == model)
    pkg = _differences_attgt(panel)
    cells = _ints(mart(db, "int_profile_cells")).filter(
        (pl.col("model") == model) & pl.col("att").is_not_null()
    )
    prof = _ints(mart(db, "memorization_profiles")).filter(pl.col("model") == model)
    j = prof.join(
        cells.select("base_step", "checkpoint_step", "var_treated", "var_control"),
        on=["base_step", "checkpoint_step"],
    ).join(pkg, on=["cohort_index", "checkpoint_step"], how="left")
    assert j.height == prof.height and j["att_pkg"].null_count() == 0
    assert np.allclose(j["att"], j["att_pkg"], rtol=0, atol=TOL)
    nt, nc = j["n_treated"].to_numpy(), j["n_control"].to_numpy()
    plug_in = np.sqrt(
        j["var_treated"].to_numpy() * (nt - 1) / nt**2
        + j["var_control"].to_numpy() * (nc - 1) / nc**2
    )
    assert np.allclose(j["se_pkg"], plug_in, rtol=0, atol=TOL)
    assert np.allclose(j["att_se"] ** 2, j["var_treated"] / nt + j["var_control"] / nc, atol=TOL)
    # everything else the package reports is either our cell or its zero base period
    extra = pkg.join(prof, on=["cohort_index", "checkpoint_step"], how="anti")
    assert (extra["att_pkg"].abs() < 1e-12).all()
    return j.height


def test_att_equals_differences_package(profile_db: Path) -> None:
    assert check_against_differences(profile_db, PROFILE_MODEL) == 16


def _cell_times(db: Path) -> dict[tuple, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.sql(
            "select model, outcome, base_step, next_step, checkpoint_step, computed_at, att, "
            "att_se from main.int_profile_cells"
        ).fetchall()
    finally:
        con.close()
    return {r[:5]: r[5:] for r in rows}


def test_adding_a_checkpoint_recomputes_only_its_cells(tmp_path: Path) -> None:
    """A new last checkpoint (step 40) and then one inserted inside a cohort (step 25): only the
    cells whose base, cohort boundary or checkpoint is the new step are (re)computed; every
    other cell keeps its row (computed_at, att, att_se); the marts stay equal to the independent
    computation and to a full refresh."""
    from memwh.warehouse.build import build

    target = tmp_path / "target"
    PROFILES = "+path:models/marts/profiles"  # the profile marts and what they read: 5 builds
    db = make_db(tmp_path / "inc.duckdb", lambda con: load_profiles(con, steps=(0, 10, 20, 30)))
    build(db, quiet=True, select=PROFILES, target_path=target)
    check_profiles(db)
    before = _cell_times(db)
    assert len(before) == 9 + 16  # pt: 3 cohorts x 3 checkpoints; pt-noctrl: 4 x 4

    for new in (40, 25):
        con = duckdb.connect(str(db))
        add_profile_unit(con, PROFILE_MODEL, f"step{new}", new, list(range(100)))
        con.close()
        build(db, quiet=True, select=PROFILES, target_path=target)
        after = _cell_times(db)
        involved = {k for k in after if k[0] == PROFILE_MODEL and new in k[2:5]}
        assert involved and all(k not in before for k in involved)
        kept = {k: v for k, v in after.items() if k not in involved}
        assert kept == {k: before[k] for k in kept}, "cells without the new checkpoint changed"
        gone = set(before) - set(after)
        if new == 25:  # the split cohort [20, 30) is replaced by [20, 25) and [25, 30)
            assert {k[2:4] for k in gone} == {(20, 30)}
        else:
            assert not gone
        check_profiles(db)
        before = after

    incremental = {
        n: mart(db, n) for n in ("memorization_profiles", "memorization_profile_summary")
    }
    build(db, quiet=True, select=PROFILES, full_refresh=True, target_path=target)
    for n, frame in incremental.items():
        full = mart(db, n)
        keys = full.columns[:7]  # model, dataset, outcome, ... up to checkpoint_step
        assert_frame_equal(frame.sort(keys), full.sort(keys), check_exact=False, rel_tol=1e-9)

    # any STUDIES §2 signal by var: the loss cells are kept, min_k_logprob ones are added
    build(
        db,
        quiet=True,
        select=PROFILES,
        target_path=target,
        vars={"profile_outcomes": ["loss", "min_k_logprob"]},
    )
    assert set(mart(db, "memorization_profiles")["outcome"].unique()) == {"loss", "min_k_logprob"}
    check_profiles(db, outcome="loss")
    check_profiles(db, outcome="min_k_logprob")


def test_pr161_transitions(pr161_db: Path) -> None:
    """Real Pythia rows (nine checkpoints): transitions and histories equal the independent
    count; no profile (every sequence was trained before step1000, and none is held out)."""
    check_profiles(pr161_db)
    src = pl.read_parquet(PR161).with_columns((pl.col("longest_match") >= 32).alias("m"))
    ever = src.filter((pl.col("checkpoint") < 9000) & pl.col("m"))["index"].unique()
    at_9000 = src.filter((pl.col("checkpoint") == 9000) & pl.col("m"))["index"]
    forgotten = set(ever.to_list()) - set(at_9000.to_list())
    hist = mart(pr161_db, "sequence_memorization_history")
    got = hist.filter(
        (pl.col("first_memorized_step") < 9000) & ~pl.col("memorized_at_last_checkpoint")
    )
    assert set(got["seq_idx"].to_list()) == forgotten
    assert len(forgotten) == PR161_FORGOTTEN_BY_9000
    tr = mart(pr161_db, "memorization_transitions")
    assert tr.height == 8
    assert tr.filter(pl.col("from_step") == 8000)["n_forgotten"].to_list() == [49]
    assert mart(pr161_db, "memorization_profiles").is_empty()


# Sequences memorized at some checkpoint step1000..step8000 of the PR #161 import and not at
# step9000 (the independent count above; stated in docs/profiles.md).
PR161_FORGOTTEN_BY_9000 = 101


def test_demo_profiles(demo_db: Path) -> None:
    """The demo warehouse: every profile mart equals the independent computation and
    `differences`; the largest model memorises (instantaneous ATT on loss < 0, interval below 0)
    and the placebo cells are small."""
    cells = check_profiles(demo_db)
    models = mart(demo_db, "units").sort("n_params")["model"].unique(maintain_order=True)
    largest = models[-1]
    assert (
        check_against_differences(demo_db, largest)
        == cells.filter(pl.col("model") == largest).height
    )
    s = mart(demo_db, "memorization_profile_summary").filter(pl.col("model") == largest)
    inst = s.filter(pl.col("kind") == "instantaneous").row(0, named=True)
    assert inst["estimate"] < 0 and inst["hi"] < 0, inst
    placebo = s.filter(pl.col("kind") == "placebo")
    assert placebo.height > 0
    assert (placebo["estimate"].abs() < 0.25 * abs(inst["estimate"])).all(), placebo
