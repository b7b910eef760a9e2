"""A researcher rebuilding the same shadow population gets the same LiRA numbers, to the bit:
the population of shadow_fixture built twice, once ingested from one output root and once
with every unit in its own root ingested in reverse order (the same rows stored in another
order, so DuckDB adds them in another order). The shadow fits, counterfactual_memorization,
lira_scores and the LiRA rows of membership_inference are identical. With DOUBLE avg /
stddev_samp the fits differed in their last bits, and near-tied LiRA scores then ranked
differently (an AUC moved by ~2e-4 between two builds of the same data)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from membership_independent import read
from polars.testing import assert_frame_equal
from shadow_fixture import NO_EXPOSURE, TARGET, build_population

pytestmark = pytest.mark.slow

# relation -> its key; every other column (but times and change-detection fingerprints) compared
RELATIONS = {
    "int_shadow_fits": "family, dataset, seq_idx, signal",
    "counterfactual_memorization": "family, dataset, seq_idx, signal",
    "lira_scores": "model, revision, shadow_family, dataset, seq_idx, signal",
    "membership_inference": "model, revision, dataset, signal, nonmember_kind",
}


def _rows(db: Path, relation: str) -> pl.DataFrame:
    where = " WHERE signal LIKE 'lira_%'" if relation == "membership_inference" else ""
    df = read(db, f"SELECT * FROM {relation}{where} ORDER BY {RELATIONS[relation]}")
    assert df.height, f"{relation} is empty: the comparison would prove nothing"
    return df.select(
        c
        for c, t in df.schema.items()
        if not t.is_temporal() and not (c.endswith("_fingerprint") and c != "data_fingerprint")
    )


def test_rebuild_in_another_ingest_order_gives_identical_lira(tmp_path: Path) -> None:
    from memwh.warehouse.build import build

    dbs = []
    for reverse in (False, True):
        d = tmp_path / ("reversed" if reverse else "forward")
        d.mkdir()
        db = d / "shadow.duckdb"
        build_population(d, db, reverse_ingest=reverse)
        build(db, quiet=True, target_path=d / "target", unit_tests=False)
        dbs.append(db)

    # the premise: the two warehouses store the units' rows in other orders
    order = (
        "SELECT r.model FROM raw.score_rows AS s JOIN raw.runs AS r USING (run_key) "
        "GROUP BY r.model ORDER BY min(s.rowid)"
    )
    forward, backward = (read(db, order)["model"].to_list() for db in dbs)
    assert backward[:2] == [TARGET, NO_EXPOSURE] and backward[2:] == sorted(backward[2:])[::-1]
    assert forward != backward and sorted(forward) == sorted(backward)

    for relation in RELATIONS:
        a, b = (_rows(db, relation) for db in dbs)
        # average_precision is a DOUBLE sum over the ROC points (macros/separation.sql, the same
        # for every signal): its order is not LiRA's, so it is held to 1e-12, all else exact
        approx = ["average_precision"] if relation == "membership_inference" else []
        assert_frame_equal(a.drop(approx), b.drop(approx), check_exact=True)
        assert_frame_equal(a.select(approx), b.select(approx), rel_tol=1e-12, abs_tol=0)
    lira = _rows(dbs[0], "membership_inference")
    assert lira["signal"].n_unique() == 12  # online and offline of the six signals
