"""Incremental per unit: adding, re-running (--force: new run_id) and deleting a unit recompute
only that unit, and the marts stay equal to the naive computation and to a full refresh."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from wh_fixtures import add_toy_unit, load_toy, make_db
from wh_independent import (
    assert_frames_match,
    expected_agreement,
    expected_precision_recall,
    expected_rates,
    load_units,
    mart,
)

pytestmark = pytest.mark.slow


def computed_at(db: Path) -> dict[tuple[str, str], object]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.sql(
            "select model, revision, max(computed_at) from main.int_unit_score_cells group by all"
        ).fetchall()
    finally:
        con.close()
    return {(m, r): t for m, r, t in rows}


def check(db: Path) -> None:
    units = load_units(db)
    assert_frames_match(
        mart(db, "memorization_rates"),
        expected_rates(units),
        ["model", "revision"],
        exact=["n_scored", "n_memorized"],
        approx=[],
    )
    assert_frames_match(
        mart(db, "cross_scale_agreement"),
        expected_agreement(units),
        ["model_a", "revision_a", "model_b", "revision_b"],
        exact=["n_common", "n_a", "n_b", "n_both"],
        approx=["cohen_kappa"],
    )
    assert_frames_match(
        mart(db, "prediction_precision_recall"),
        expected_precision_recall(units),
        ["predictor_model", "predictor_revision", "target_model", "target_revision"],
        exact=["tp", "fp", "fn", "tn"],
        approx=["precision", "recall"],
    )


def test_add_rerun_delete_unit(tmp_path: Path):
    from memwh.warehouse.build import build

    db = make_db(tmp_path / "inc.duckdb", load_toy)
    target = tmp_path / "target"
    first = build(db, quiet=True, target_path=target)
    before = computed_at(db)
    # dbt unit tests run on the first build of this code, then only when code/vars change
    assert sum(n.resource_type == "unit_test" for n in first.nodes) >= 4
    assert not first.unit_tests_skipped

    con = duckdb.connect(str(db))
    add_toy_unit(con, "toy-s", 3, 0, 40)
    con.close()
    second = build(db, quiet=True, target_path=target)
    assert second.unit_tests_skipped and "unit tests passed before" in second.summary()
    assert not any(n.resource_type == "unit_test" for n in second.nodes)
    assert any(n.resource_type == "test" for n in second.nodes), "data tests always run"
    after_add = computed_at(db)
    assert ("toy-s", "step3") in after_add
    assert all(after_add[k] == v for k, v in before.items()), "other units were recomputed"
    check(db)

    # --force rerun of toy-m step1: the old run (and rows) replaced by a new run_id
    con = duckdb.connect(str(db))
    con.execute(
        "delete from raw.score_rows where run_key in "
        "(select run_key from raw.runs where run_id = 'toy-m-step1-0')"
    )
    con.execute("delete from raw.runs where run_id = 'toy-m-step1-0'")
    add_toy_unit(con, "toy-m", 1, 0, 40, run_tag="-rerun", shift=5)
    con.close()
    build(db, quiet=True, target_path=target)
    after_rerun = computed_at(db)
    assert after_rerun[("toy-m", "step1")] != after_add[("toy-m", "step1")]
    assert after_rerun[("toy-l", "step2")] == after_add[("toy-l", "step2")]
    check(db)

    # deleting a unit makes it disappear everywhere
    con = duckdb.connect(str(db))
    con.execute(
        "delete from raw.score_rows where run_key in "
        "(select run_key from raw.runs where model = 'toy-l' and revision = 'step1')"
    )
    con.execute("delete from raw.runs where model = 'toy-l' and revision = 'step1'")
    con.close()
    build(db, quiet=True, target_path=target)
    for name, cols in [
        ("units", ["model", "revision"]),
        ("cross_scale_agreement", ["model_a", "revision_a"]),
        ("prediction_precision_recall", ["target_model", "target_revision"]),
        ("int_unit_score_cells", ["model", "revision"]),
    ]:
        t = mart(db, name)
        assert t.filter((pl.col(cols[0]) == "toy-l") & (pl.col(cols[1]) == "step1")).is_empty(), (
            name
        )
    check(db)

    # a full refresh gives the same marts as the incremental history
    incremental = {
        n: mart(db, n)
        for n in (
            "memorization_rates",
            "cross_scale_agreement",
            "prediction_precision_recall",
            "score_distribution",
            "memorization_by_duplication",
        )
    }
    build(db, quiet=True, full_refresh=True, target_path=target)
    for n, frame in incremental.items():
        full = mart(db, n)
        assert_frame_equal(
            frame.sort(full.columns), full.sort(full.columns), check_exact=False, rel_tol=1e-9
        )

    # changing a label var recomputes every unit and pair on the next incremental build
    relabeled = build(db, quiet=True, target_path=target, vars={"memorized_min_tokens": 20})
    assert not relabeled.unit_tests_skipped, "new vars: unit tests run again"
    units = load_units(db, min_tokens=20)
    assert_frames_match(
        mart(db, "memorization_rates"),
        expected_rates(units),
        ["model", "revision"],
        exact=["n_scored", "n_memorized"],
        approx=[],
    )
    assert_frames_match(
        mart(db, "prediction_precision_recall"),
        expected_precision_recall(units),
        ["predictor_model", "predictor_revision", "target_model", "target_revision"],
        exact=["tp", "fp", "fn", "tn"],
        approx=["precision", "recall"],
    )
