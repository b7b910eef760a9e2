"""Reading what a model memorized (issue 18): the demo's token windows are in the warehouse
once, `memwh show` prints the memorized canaries as text and marks the first mismatch of
near misses, and `memwh sql -f csv` writes list columns."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from memwh.texts import MISMATCH_MARK, scored_texts

pytestmark = pytest.mark.slow


def memwh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from memwh.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _largest(db: Path) -> tuple[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(
            "SELECT model, revision FROM memorization_rates WHERE is_final_revision "
            "ORDER BY n_params DESC LIMIT 1"
        ).fetchall()[0]
    finally:
        con.close()


def test_the_corpus_windows_are_stored_once(demo_run) -> None:
    """Every scored sequence of the demo corpus once, with exactly its first 64 tokens."""
    con = duckdb.connect(str(demo_run.db), read_only=True)
    try:
        n, n_keys, n_fp = con.sql(
            "SELECT count(*), count(DISTINCT (data_fingerprint, seq_idx)), "
            "count(DISTINCT data_fingerprint) FROM raw.sequence_windows"
        ).fetchall()[0]
        runs_fp = con.sql("SELECT DISTINCT data_fingerprint FROM raw.runs").fetchall()
        n_units = con.sql("SELECT count(*) FROM units").fetchall()[0][0]
        stored = dict(con.sql("SELECT seq_idx, tokens FROM raw.sequence_windows").fetchall())
        n_gen_units = con.sql(
            "SELECT count(DISTINCT (model, revision)) FROM raw.generations"
        ).fetchall()[0][0]
    finally:
        con.close()
    data = pq.read_table(Path(demo_run.suite_dir) / "corpus_unique.parquet")
    if not data.num_rows:  # pragma: no cover
        pytest.fail("demo corpus is empty")
    truth = dict(zip(data["seq_idx"].to_pylist(), data["tokens"].to_pylist(), strict=True))
    assert n == n_keys == len(truth) and n_fp == 1 == len(runs_fp) and n_units > 1
    assert all(list(stored[i]) == truth[i][:64] for i in truth)
    # the final checkpoints were scored in generate mode with --save-generations
    assert n_gen_units >= 4


def test_show_prints_the_memorized_canaries_as_text(demo_run) -> None:
    model, revision = _largest(demo_run.db)
    r = memwh("show", "--db", str(demo_run.db), "--model", model, "--memorized", "--limit", "3")
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.strip().split("\n\n")
    assert len(blocks) == 3
    for b in blocks:
        assert f"{model}@{revision}" in b and "· memorized ·" in b and "canary" in b
        assert "prompt:" in b and "continuation:" in b and "generation:" in b
        assert "no mismatch: all 32 continuation tokens match" in b
    # text, decoded by the demo's own tokenizer (word-level: t<id>), equal to the stored ids
    texts = scored_texts(model, revision, memorized=True, limit=3, db=demo_run.db)
    for t in texts:
        assert t.prompt == " ".join(f"t{i}" for i in t.prompt_tokens)
        assert t.generated_tokens == t.continuation_tokens
        assert t.prompt in r.stdout


def test_show_marks_the_first_mismatch(demo_run) -> None:
    model, revision = _largest(demo_run.db)
    r = memwh("show", "--db", str(demo_run.db), "--model", model, "--near-misses", "-n", "2")
    assert r.returncode == 0, r.stderr
    assert "not memorized" in r.stdout and MISMATCH_MARK in r.stdout
    for t in scored_texts(model, revision, near_misses=True, limit=5, db=demo_run.db):
        k = t.first_mismatch
        assert k is not None and k == t.prefix_match_len < t.cont_len
        before, after = t.continuation.split(f" {MISMATCH_MARK} ")
        assert before.split() == [f"t{i}" for i in t.continuation_tokens[:k]]
        assert after.split() == [f"t{i}" for i in t.continuation_tokens[k:]]
        if t.generated_tokens is not None:  # greedy decoding departs exactly there
            assert t.generated_tokens[:k] == t.continuation_tokens[:k]
            assert t.generated_tokens[k] != t.continuation_tokens[k]


def test_show_without_tokenizer_prints_ids_and_bad_unit_is_one_line(demo_run) -> None:
    model, _ = _largest(demo_run.db)
    r = memwh("show", "--db", str(demo_run.db), "--model", model, "--memorized", "--ids", "-n", "1")
    assert r.returncode == 0 and "token ids shown" in r.stdout
    bad = memwh("show", "--db", str(demo_run.db), "--model", "no-such-model")
    assert bad.returncode == 2 and "no unit no-such-model" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sql_csv_of_the_cookbook_first_memorized_query(demo_run) -> None:
    cookbook = (Path(__file__).resolve().parent.parent / "docs" / "cookbook.md").read_text()
    section = cookbook.split("### When each sequence was first memorized")[1]
    query = section.split("```sql\n")[1].split("```")[0]
    r = memwh("sql", "--db", str(demo_run.db), "-f", "csv", query)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows
    for row in rows:
        steps = json.loads(row["memorized_at_steps"])
        assert isinstance(steps, list) and int(row["first_memorized_step"]) == min(steps)
        assert int(row["n_checkpoints_memorized"]) == len(steps)


def test_every_table_the_cookbook_uses_is_described(demo_run) -> None:
    import re

    from memwh.query import tables

    cookbook = (Path(__file__).resolve().parent.parent / "docs" / "cookbook.md").read_text()
    sql_blocks = "\n".join(re.findall(r"```sql\n(.*?)```", cookbook, re.S))
    used = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", sql_blocks, re.I))
    described = {r["name"]: r["description"] for r in tables(demo_run.db).iter_rows(named=True)}
    known = used & set(described)
    assert {"scored_windows", "int_memorized_sequences", "stg_memwh__runs"} <= known
    assert [t for t in sorted(known) if not described[t].strip()] == []


def test_tables_wraps_instead_of_cutting_and_shows_build_settings(demo_run) -> None:
    import os

    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from memwh.cli import main; main()",
            "tables",
            "--db",
            str(demo_run.db),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout  # nothing cut
    # the longest name folds onto two lines of its cell: both pieces are there, in order
    cells = "".join(
        line.split("│")[2].strip() for line in r.stdout.splitlines() if line.count("│") >= 5
    )
    assert "int_memorized_population_membership" in cells
    assert "build settings" in r.stdout and "memorized_min_tokens" in r.stdout
