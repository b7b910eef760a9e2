"""Docs that are generated from code stay current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_warehouse_tables_doc_is_current() -> None:
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_warehouse_docs.py"), "--check"])
    assert r.returncode == 0, "docs/warehouse.md is stale: run python scripts/gen_warehouse_docs.py"


def test_every_mart_and_column_is_documented() -> None:
    import yaml

    for path in (REPO / "warehouse" / "models" / "marts").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text())["models"]:
            assert model.get("description"), model["name"]
            for col in model.get("columns", []):
                assert col.get("description"), f"{model['name']}.{col['name']}"


def test_readme_starts_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in block.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")
