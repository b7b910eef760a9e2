"""Every SQL block in docs/cookbook.md (and the recipes of docs/controlled.md) runs against the
demo warehouse and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook.md"
CONTROLLED = COOKBOOK.with_name("controlled.md")
QUERIES = [
    q
    for page in (COOKBOOK, CONTROLLED)
    for q in re.findall(r"^### (.+?)\n.*?```sql\n(.*?)```", page.read_text(), re.S | re.M)
]


def test_cookbook_has_the_promised_recipes() -> None:
    titles = " ".join(t.lower() for t, _ in QUERIES)
    for must in ("top memorized", "small model memorizes", "first memorized"):
        assert must in titles
    assert len(QUERIES) >= 8


@pytest.mark.slow
@pytest.mark.parametrize(("title", "query"), QUERIES, ids=[t for t, _ in QUERIES])
def test_cookbook_query_runs_on_demo(demo_db: Path, title: str, query: str) -> None:
    from memwh.query import sql

    df = sql(query, demo_db)
    # Recipes marked "-- may be empty" ask about events the demo does not have (forgetting,
    # non-nested memorized sets); they must still run.
    if "-- may be empty" not in query:
        assert df.height > 0, f"{title!r} returned no rows on the demo warehouse"
