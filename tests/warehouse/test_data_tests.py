"""The warehouse's generic data tests catch what they claim to: a broken mart fails `dbt test`
with rows naming the column and rule, and an intact one passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb


def _altered_copy(toy_db: Path, db: Path, *statements: str) -> Path:
    """A copy of the built toy warehouse with `statements` applied to it."""
    shutil.copy(toy_db, db)
    con = duckdb.connect(str(db))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()
    return db


def test_column_checks_and_primary_key_catch_broken_marts(tmp_path: Path, toy_db: Path):
    from memwh.warehouse.build import dbt_args, run_dbt

    db = _altered_copy(
        toy_db,
        tmp_path / "broken.duckdb",
        "update main.memorization_rates set memorization_rate = 1.5 where rowid = 0",
        "update main.memorization_rates set n_memorized = null where rowid = 1",
        "insert into main.units select * from main.units limit 1",  # duplicate key
        "update main.score_distribution set metric = 'bogus' where rowid = 0",
    )

    marts = ["memorization_rates", "units", "score_distribution", "cross_scale_agreement"]
    res = run_dbt(
        db,
        dbt_args(
            "test",
            select=marts,
            quiet=True,
            target_path=tmp_path / "target",
            extra=["--store-failures", "--exclude-resource-type", "unit_test"],
        ),
    )
    status = {r.node.name: str(r.status) for r in res.result}
    failed = {name for name, st in status.items() if st == "fail"}
    assert failed == {
        "memorization_rates__column_checks",  # rate 1.5, NULL n_memorized
        "expression_is_true_memorization_rates_n_memorized_n_scored",  # NULL n_memorized
        "units__primary_key",  # duplicate (model, revision)
        "score_distribution__column_checks",  # metric 'bogus'
    }, status
    assert status["cross_scale_agreement__column_checks"] == "pass"

    con = duckdb.connect(str(db), read_only=True)
    try:
        audit = {
            r[0]
            for r in con.sql(
                "select table_name from information_schema.tables "
                "where table_schema like '%dbt_test__audit'"
            ).fetchall()
        }
        assert {"memorization_rates__column_checks", "units__primary_key"} <= audit
        rows = con.sql(
            "select column_name, rule, n_failing "
            "from main_dbt_test__audit.memorization_rates__column_checks"
        ).fetchall()
        assert set(rows) == {
            ("memorization_rate", "range [0, 1]", 1),
            ("n_memorized", "not_null", 1),
        }
        assert con.sql(
            "select column_name, rule from main_dbt_test__audit.score_distribution__column_checks"
        ).fetchall() == [("metric", "accepted_values")]
        assert con.sql("select n_rows from main_dbt_test__audit.units__primary_key").fetchall() == [
            (2,)
        ]
    finally:
        con.close()


def test_relation_type_switch_is_rebuilt(tmp_path: Path, toy_db: Path):
    """A view left where the project now builds a table (and vice versa) is replaced."""
    from memwh.warehouse.build import build

    db = _altered_copy(
        toy_db,
        tmp_path / "switched.duckdb",
        "drop view main.stg_memwh__sequences",
        "create table main.stg_memwh__sequences as select 1 as stale",
        "drop table main.units",
        "create view main.units as select 1 as stale",
    )
    build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)
    con = duckdb.connect(str(db), read_only=True)
    kinds = dict(
        con.sql(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'main' and table_name in ('stg_memwh__sequences', 'units')"
        ).fetchall()
    )
    assert kinds == {"stg_memwh__sequences": "VIEW", "units": "BASE TABLE"}
    assert "stale" not in [c[0] for c in con.sql("describe main.units").fetchall()]
    con.close()


def test_unit_test_fingerprint_covers_code_vars_and_raw_types():
    from memwh.warehouse.build import project_fingerprint

    base = project_fingerprint({}, "runs:model:VARCHAR")
    assert base == project_fingerprint(None, "runs:model:VARCHAR")
    assert base != project_fingerprint({"memorized_min_tokens": 64}, "runs:model:VARCHAR")
    assert base != project_fingerprint({}, "runs:model:BLOB")
