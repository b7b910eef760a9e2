"""The layout tells the architecture: data flows jobs -> Parquet -> ingest -> dbt -> reports.

Allowed directions between memwh's subpackages (every module-level import, `import X` and
`from X import`, relative ones resolved): the ground (memwh.core) imports no stage; stages import
the ground and never each other except where listed; the face (memwh.cli, memwh.demo,
memwh.query) sits on top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# subpackage -> folder in the repo (mirrors pyproject's package-dir)
FOLDERS = {
    "core": REPO / "memwh" / "core",
    "ingest": REPO / "ingest",
    "inference_jobs": REPO / "inference_jobs",
    "warehouse": REPO / "warehouse",
    "reports": REPO / "reports",
    "demo_suite": REPO / "demo_suite",
    "cli": REPO / "memwh" / "cli",
}
FACE = {"cli", "demo", "query", "texts"}
# what each layer may import of memwh (besides itself)
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "inference_jobs": {"core"},
    "warehouse": {"core"},
    "reports": {"core"},
    "demo_suite": {"core", "inference_jobs"},
    "cli": {"core", "ingest", "inference_jobs", "warehouse", "reports", "demo_suite", *FACE},
}
GPU_STACK = {"torch", "transformers"}


def _module_files(sub: str) -> list[Path]:
    return sorted(FOLDERS[sub].rglob("*.py"))


def _imports(path: Path, package: str) -> set[str]:
    """Absolute dotted names of every import in the file (module level and inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def _memwh_layers(names: set[str]) -> set[str]:
    out = set()
    for n in names:
        parts = n.split(".")
        if parts[0] == "memwh" and len(parts) > 1 and (parts[1] in ALLOWED or parts[1] in FACE):
            out.add(parts[1])
    return out


def _package_of(sub: str, path: Path) -> str:
    rel = path.relative_to(FOLDERS[sub]).with_suffix("")
    # a module's relative imports start from its package (for __init__, the package itself)
    return ".".join(["memwh", sub, *rel.parts][:-1])


@pytest.mark.parametrize("sub", sorted(FOLDERS))
def test_imports_follow_the_allowed_directions(sub: str) -> None:
    bad = []
    for path in _module_files(sub):
        names = _imports(path, _package_of(sub, path))
        for layer in _memwh_layers(names) - ALLOWED[sub] - {sub}:
            bad.append(f"{path.relative_to(REPO)} imports memwh.{layer}")
        # the old top-level names must not come back
        for n in names:
            if n.split(".")[0] in set(FOLDERS) - {"core", "cli"}:
                bad.append(f"{path.relative_to(REPO)} imports top-level {n}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("sub", ["core", "ingest", "reports", "warehouse"])
def test_loading_results_needs_no_gpu_stack(sub: str) -> None:
    for path in _module_files(sub):
        tops = {n.split(".")[0] for n in _imports(path, _package_of(sub, path))}
        assert not tops & GPU_STACK, f"{path} imports {tops & GPU_STACK}"


def test_jobs_never_touch_the_database() -> None:
    for path in _module_files("inference_jobs"):
        names = _imports(path, _package_of("inference_jobs", path))
        assert "duckdb" not in {n.split(".")[0] for n in names}, path
        assert not any(n.startswith("memwh.core.db") for n in names), path


def test_contract_is_small_and_neutral() -> None:
    names = _imports(REPO / "memwh" / "core" / "contract.py", "memwh.core")
    tops = {n.split(".")[0] for n in names}
    assert not tops & {"torch", "duckdb", "transformers", "polars"}, tops


def test_the_face_modules_are_only_imported_by_the_face() -> None:
    for sub in set(FOLDERS) - {"cli"}:
        for path in _module_files(sub):
            layers = _memwh_layers(_imports(path, _package_of(sub, path)))
            assert not layers & FACE, f"{path} imports the face {layers & FACE}"


def test_importing_ingest_and_reports_does_not_load_torch() -> None:
    code = (
        "import sys, memwh.ingest, memwh.reports, memwh.cli, memwh.query;"
        "bad=[m for m in ('torch','transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
