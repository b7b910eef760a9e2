"""The layout tells the architecture: data flows jobs -> Parquet -> ingest -> dbt -> reports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _imports(pkg: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / pkg).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("pkg", ["ingest", "reports", "warehouse"])
def test_loading_results_needs_no_gpu_stack(pkg: str) -> None:
    forbidden = {"torch", "transformers", "inference_jobs", "demo_suite"}
    assert not (_imports(pkg) & forbidden), f"{pkg}/ imports {_imports(pkg) & forbidden}"


def test_jobs_never_touch_the_database() -> None:
    assert not ({"duckdb", "ingest", "warehouse", "reports"} & _imports("inference_jobs"))


def test_contract_is_small_and_neutral() -> None:
    src = (REPO / "memwh" / "contract.py").read_text()
    for mod in ("torch", "duckdb", "transformers", "polars"):
        assert f"import {mod}" not in src


def test_importing_ingest_and_reports_does_not_load_torch() -> None:
    code = (
        "import sys, ingest, reports, memwh.cli, memwh.query;"
        "bad=[m for m in ('torch','transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
