"""Incremental per unit: adding, re-running (--force: new run_id) and deleting a unit recompute
only that unit, and the marts stay equal to the naive computation and to a full refresh."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from wh_fixtures import Built, add_toy_unit, copy_built, load_toy, make_db
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


def test_add_rerun_delete_unit(tmp_path: Path, toy_build: Built):
    """Starts from a copy of the session's toy warehouse and its dbt target: its build was
    this code's first (on a fresh target), the build the others are incremental to."""
    from memwh.warehouse.build import build

    db, target = copy_built(toy_build, tmp_path)
    first = toy_build.result
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


def pair_keys(db: Path) -> set[tuple[str, str, str, str]]:
    return set(mart(db, "int_unit_pairs").select(*PAIR_KEY).iter_rows())


PAIR_KEY = ["model_a", "revision_a", "model_b", "revision_b"]


# the pair marts and what they read (the test builds four times on a copy of the toy warehouse)
PAIRS = "+cross_scale_agreement +prediction_precision_recall +memorization_rates"


def test_pair_scope_final_only_and_count(tmp_path: Path, toy_build: Built):
    """Only the pairs the marts use are formed (sizes within a family at one revision,
    checkpoints of one model), the checkpoint var switches incrementally both ways, and a new
    final checkpoint moves the final_only pairs to it."""
    from memwh.warehouse.build import build

    db, target = copy_built(toy_build, tmp_path)  # the toy built at the default vars
    # toy: sizes s, m, l at step1 and step2 (3 + 3 pairs), toy-m step1..3 (3 pairs),
    # toy-s and toy-l step1 -> step2 (1 + 1); idx-model x csv-model at 'main' (1): 12 of 36.
    assert len(pair_keys(db)) == 12
    check(db)

    final_only = {"checkpoint_pairs": "final_only"}
    build(db, quiet=True, select=PAIRS, target_path=target, vars=final_only)
    units = load_units(db)
    keys = pair_keys(db)
    assert len(keys) == 11  # toy-m step1 -> step2 is dropped (neither is final)
    assert ("toy-m", "step1", "toy-m", "step2") not in keys
    assert_frames_match(
        mart(db, "cross_scale_agreement"),
        expected_agreement(units, checkpoint_pairs="final_only"),
        PAIR_KEY,
        exact=["n_common", "n_a", "n_b", "n_both"],
        approx=["cohen_kappa"],
    )
    pr = mart(db, "prediction_precision_recall")
    assert_frames_match(
        pr,
        expected_precision_recall(units, checkpoint_pairs="final_only"),
        ["predictor_model", "predictor_revision", "target_model", "target_revision"],
        exact=["tp", "fp", "fn", "tn"],
        approx=["precision", "recall"],
    )
    ck = pr.filter(pl.col("predictor_kind") == "earlier_checkpoint")
    assert set(ck.select("target_model", "target_revision").iter_rows()) == {
        ("toy-s", "step2"),
        ("toy-m", "step3"),
        ("toy-l", "step2"),
    }

    # a new final checkpoint of toy-s: its pairs now end there, the old final's are dropped
    con = duckdb.connect(str(db))
    add_toy_unit(con, "toy-s", 3, 0, 40)
    con.close()
    build(db, quiet=True, select=PAIRS, target_path=target, vars=final_only)
    keys = pair_keys(db)
    assert ("toy-s", "step1", "toy-s", "step2") not in keys
    assert {("toy-s", "step1", "toy-s", "step3"), ("toy-s", "step2", "toy-s", "step3")} <= keys
    assert ("toy-m", "step3", "toy-s", "step3") in keys  # a new size pair at step3
    units = load_units(db)
    assert_frames_match(
        mart(db, "prediction_precision_recall"),
        expected_precision_recall(units, checkpoint_pairs="final_only"),
        ["predictor_model", "predictor_revision", "target_model", "target_revision"],
        exact=["tp", "fp", "fn", "tn"],
        approx=["precision", "recall"],
    )

    # back to all_later: the missing pairs are formed incrementally, equal to a full refresh
    build(db, quiet=True, select=PAIRS, target_path=target)
    check(db)
    incremental = mart(db, "int_unit_pairs").drop("pair_config")
    build(db, quiet=True, select=PAIRS, target_path=target, full_refresh=True)
    full = mart(db, "int_unit_pairs").drop("pair_config")
    assert_frame_equal(incremental.sort(PAIR_KEY), full.sort(PAIR_KEY))


def test_checkpoint_pairs_var_is_checked(tmp_path: Path):
    from memwh.core.errors import MemwhError
    from memwh.warehouse.build import build

    db = make_db(tmp_path / "bad.duckdb", load_toy)
    with pytest.raises(MemwhError, match="checkpoint_pairs must be 'all_later' or 'final_only'"):
        build(db, quiet=True, target_path=tmp_path / "t", vars={"checkpoint_pairs": "all"})


def test_warehouse_without_dataset_keys_is_refreshed(tmp_path: Path, toy_db: Path):
    """A warehouse built before the dataset joined the unit's key (int_units and the incremental
    tables without a dataset column): the next plain build refreshes everything, says so, and
    the marts are right again."""
    import shutil

    from memwh.warehouse.build import DATASET_UPGRADE, build

    db = tmp_path / "old.duckdb"
    shutil.copy(toy_db, db)
    con = duckdb.connect(str(db))
    for table in ("int_units", "int_unit_score_cells", "int_memorized_sequences", "int_unit_pairs"):
        con.execute(f"alter table main.{table} drop column dataset")
    con.close()
    result = build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)
    assert result.warnings[0] == DATASET_UPGRADE
    check(db)
    again = build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)
    assert DATASET_UPGRADE not in again.warnings
