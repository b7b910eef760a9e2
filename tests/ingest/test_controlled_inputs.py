"""Roles and sequence metadata of controlled experiments: every path in validates, bad input is
one line naming what to fix, and nothing is stored (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from ingest_helpers import count, snapshot, write_shard

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.ingest import declare_role, import_sequence_meta, ingest_root


def _snap(db: Path) -> dict:
    s = snapshot(db)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        s["unit_roles"] = con.execute("SELECT * FROM raw.unit_roles ORDER BY ALL").fetchall()
    finally:
        con.close()
    return s


@pytest.fixture
def loaded(root: Path, db: Path) -> Path:
    """Base unit demo-1m@step100 ingested (dataset corpus-abc123)."""
    assert ingest_root(root, db, progress=False).ok
    return db


# ------------------------------------------------------------------ roles via manifests


def test_manifest_roles_reach_raw_runs(root: Path, db: Path) -> None:
    write_shard(
        root, "demo-1m-ft", "main", 0, 1,
        manifest_overrides={"role": "edited", "variant_of": "demo-1m@step100",
                            "method": "fine-tune", "method_params": {"steps": 5, "lr": 0.1}},
    )  # fmt: skip
    report = ingest_root(root, db, progress=False)
    assert report.ok, [p.line() for p in report.problems]
    assert count(db, "SELECT role FROM raw.runs WHERE model = 'demo-1m-ft'") == "edited"
    params = count(db, "SELECT method_params FROM raw.runs WHERE model = 'demo-1m-ft'")
    assert json.loads(params) == {"lr": 0.1, "steps": 5}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "control"}, "role 'control' is unknown"),
        ({"role": "edited"}, "role edited needs variant_of"),
        (
            {"role": "edited", "variant_of": "nope@main"},
            "variant_of nope@main names no stored unit",
        ),
        ({"role": "edited", "variant_of": "demo-1m"}, "MODEL@REVISION"),
        ({"role": "edited", "variant_of": "x@main", "method_params": [1]}, "JSON object"),
    ],
)
def test_bad_manifest_roles_are_not_loaded(
    loaded: Path, root: Path, overrides: dict, message: str
) -> None:
    write_shard(root, "demo-1m-ft", "main", 0, 1, manifest_overrides=overrides)
    before = _snap(loaded)
    report = ingest_root(root, loaded, progress=False)
    assert len(report.bad) == 1 and message in report.bad[0].line()
    assert "\n" not in report.bad[0].line()
    assert _snap(loaded) == before


def test_manifest_cycle_is_refused(loaded: Path, root: Path) -> None:
    write_shard(
        root, "a", "main", 0, 1, manifest_overrides={"role": "edited", "variant_of": "b@main"}
    )
    write_shard(
        root, "b", "main", 0, 1, manifest_overrides={"role": "edited", "variant_of": "a@main"}
    )
    before = _snap(loaded)
    report = ingest_root(root, loaded, progress=False)
    assert len(report.bad) == 2 and any(
        "cycle (a@main -> b@main -> a@main)" in p.line() for p in report.bad
    )
    assert _snap(loaded) == before


def test_infer_refuses_bad_role_before_loading_a_model(tmp_path: Path) -> None:
    from memwh.inference_jobs import score

    with pytest.raises(MemwhError, match="role 'ctrl' is unknown"):
        score("/no/such/model", "/no/such/data", tmp_path, role="ctrl")
    with pytest.raises(MemwhError, match="method_params is not valid JSON"):
        score("/no/such/model", "/no/such/data", tmp_path, role="edited", variant_of="a@b",
              method_params="{lr: 1}")  # fmt: skip


def test_check_role_fields_contract() -> None:
    ok = contract.check_role_fields(
        {"role": "edited", "variant_of": "m@main", "method_params": '{"b": 1, "a": 2}'}
    )
    assert ok["method_params"] == '{"a": 2, "b": 1}'
    with pytest.raises(contract.ContractError, match="names the unit itself"):
        contract.check_role_fields({"variant_of": "m@r"}, model="m", revision="r")
    with pytest.raises(contract.ContractError, match="also give variant_of"):
        contract.check_role_fields({"role": "standard", "method": "x"})


# ------------------------------------------------------------------ roles declared later


def test_declare_role_after_the_fact(loaded: Path, root: Path) -> None:
    write_shard(root, "demo-1m-ft", "main", 0, 1)
    assert ingest_root(root, loaded, progress=False).ok
    r = declare_role(model="demo-1m", role="perturbed", db=loaded)
    assert r.revisions == ["step100"]
    declare_role(
        model="demo-1m-ft", revision="main", role="edited", variant_of="demo-1m@step100",
        method="unlearn", method_params={"lr": 1}, db=loaded,
    )  # fmt: skip
    assert count(loaded, "SELECT count(*) FROM raw.unit_roles") == 2
    # a cycle through the declaration is refused, nothing changes
    before = _snap(loaded)
    with pytest.raises(MemwhError, match="cycle"):
        declare_role(model="demo-1m", revision="step100", role="edited",
                     variant_of="demo-1m-ft@main", db=loaded)  # fmt: skip
    assert _snap(loaded) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "demo-1m", "role": "controll"}, "role 'controll' is unknown"),
        (
            {"model": "demo-1m", "role": "edited", "variant_of": "ghost@step1"},
            "names no stored unit",
        ),
        ({"model": "demo-1m", "revision": "step7", "role": "standard"}, "no such unit"),
        ({"model": "ghost", "role": "standard"}, "no scores of this model"),
        (
            {"model": "demo-1m", "role": "edited", "variant_of": "demo-1m@step100"},
            "names the unit itself",
        ),
    ],
)
def test_declare_role_bad_input(loaded: Path, kwargs: dict, message: str) -> None:
    before = _snap(loaded)
    with pytest.raises(MemwhError, match=message) as e:
        declare_role(db=loaded, **kwargs)
    assert "\n" not in str(e.value)
    assert _snap(loaded) == before


# ------------------------------------------------------------------ sequence metadata


def test_sequence_meta_import_layers_over_stored(loaded: Path, tmp_path: Path) -> None:
    f = tmp_path / "meta.csv"
    pl.DataFrame(
        {
            "seq_idx": [0, 1, 2, 5000],
            "category": ["pii", "pii", "", "copyright"],
            "insert_first_step": [3, None, None, 1],
            "insert_last_step": [9, None, None, 1],
            "duplicates": [4, 1, 0, 1],
        }
    ).write_csv(f)
    r = import_sequence_meta(f, dataset="corpus-abc123", db=loaded)
    assert r.n_rows == 4 and r.n_new == 4  # the dataset had no metadata yet
    rows = dict(
        (i, (c, a, b, d))
        for i, c, a, b, d in __import__("duckdb")
        .connect(str(loaded), read_only=True)
        .execute(
            "SELECT seq_idx, category, insert_first_step, insert_last_step, duplicates "
            "FROM raw.sequences WHERE data_fingerprint = 'corpus-abc123'"
        )
        .fetchall()
    )
    assert rows[0] == ("pii", 3, 9, 4) and rows[2] == (None, None, None, 0)
    assert rows[5000] == ("copyright", 1, 1, 1)
    # the same file again is skipped
    assert import_sequence_meta(f, dataset="corpus-abc123", db=loaded).unchanged
    # a second file with only categories keeps the stored windows and counts
    g = tmp_path / "cat.parquet"
    pl.DataFrame({"seq_idx": [0], "category": ["canary"]}).write_parquet(g)
    import_sequence_meta(g, dataset="corpus-abc123", db=loaded)
    assert count(loaded, "SELECT category || insert_last_step || duplicates FROM raw.sequences "
                 "WHERE seq_idx = 0 AND data_fingerprint = 'corpus-abc123'") == "canary94"  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "dataset", "message"),
    [
        ({"seq_idx": [0], "category": ["x"]}, "no-such-data", "no stored run scored this dataset"),
        ({"seq_idx": [0, 0], "category": ["x", "y"]}, None, "duplicate seq_idx"),
        ({"seq_idx": [0]}, None, "no metadata column"),
        (
            {"seq_idx": [0], "duplicates": ["many"]},
            None,
            "column duplicates has 1 value(s) that are not integer",
        ),
        (
            {"seq_idx": [0], "insert_first_step": [5], "insert_last_step": [2]},
            None,
            "insert_last_step < insert_first_step",
        ),
        (
            {"seq_idx": [0], "duplicates": [0], "insert_first_step": [1]},
            None,
            "0 duplicates but an insertion window",
        ),
        ({"seq_idx": [-1], "category": ["x"]}, None, "negative seq_idx"),
    ],
)
def test_sequence_meta_bad_input(
    loaded: Path, tmp_path: Path, frame: dict, dataset: str | None, message: str
) -> None:
    f = tmp_path / "bad.csv"
    pl.DataFrame(frame).write_csv(f)
    before = _snap(loaded)
    with pytest.raises(MemwhError) as e:
        import_sequence_meta(f, dataset=dataset or "corpus-abc123", db=loaded)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert _snap(loaded) == before


def test_cli_import_role_error_is_one_line(loaded: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "memwh", "import", "role", "--model", "demo-1m", "--role", "boss",
         "--db", str(loaded)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2
    assert "role 'boss' is unknown" in r.stderr and r.stderr.strip().count("\n") == 0
