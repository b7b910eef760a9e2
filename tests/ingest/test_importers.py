"""memwh import: other tools' results land in the same raw tables, one transaction each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import count, snapshot, write_shard

from memwh.core.errors import MemwhError
from memwh.ingest import (
    import_memorized_index,
    import_pythia_analysis,
    import_pythia_csv,
    ingest_root,
)

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "fixtures" / "pythia_pr161_sample.parquet"
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "pythia_pr161.parquet"  # all real rows
REPO = HERE.parents[1]


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def expected_from_sample(min_tokens: int = 32, fix: bool = True) -> dict[str, tuple[int, int, int]]:
    """Per revision: rows, memorized@min_tokens, exact@256, computed from the file with pyarrow."""
    t = pq.read_table(SAMPLE).to_pylist()
    out: dict[str, list[int]] = {}
    for r in t:
        pml = 256 if fix and r["overlap"] == 256 else r["longest_match"]
        e = out.setdefault(f"step{r['checkpoint']}", [0, 0, 0])
        e[0] += 1
        e[1] += pml >= min_tokens
        e[2] += pml >= 256
    return {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------- pythia-analysis


def test_pythia_analysis_sample_mapping(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    res = import_pythia_analysis(SAMPLE, model="pr161", db=db)
    want = expected_from_sample()
    assert res.rows_by_revision == {k: v[0] for k, v in want.items()}
    got = rows(
        db,
        "SELECT revision, count(*), count_if(prefix_match_len >= 32), count_if(exact_match) "
        "FROM raw.scores WHERE model = 'pr161' GROUP BY revision",
    )
    assert {r[0]: r[1:] for r in got} == want
    # memorization_score = overlap / 256, exactly.
    src = {
        (r["index"], f"step{r['checkpoint']}"): r["overlap"]
        for r in pq.read_table(SAMPLE).to_pylist()
    }
    for seq, rev, score in rows(db, "SELECT seq_idx, revision, memorization_score FROM raw.scores"):
        assert score == pytest.approx(src[(seq, rev)] / 256)
    runs = rows(
        db,
        "SELECT source, revision, step, cont_len, prompt_len, family, tokens_seen, population, "
        "rows_are_sparse, mode FROM raw.runs ORDER BY step",
    )
    assert len(runs) == 9
    assert runs[0] == (
        "pythia-analysis",
        "step1000",
        1000,
        256,
        32,
        "pythia",
        1000 * 2048 * 1024,
        want["step1000"][0],
        False,
        "imported",
    )
    assert any("argmax" in n for n in res.notes)


def test_pythia_analysis_raw_longest_match_and_reimport(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    import_pythia_analysis(SAMPLE, model="pr161", db=db, fix_full_match=False)
    want = expected_from_sample(fix=False)
    got = rows(
        db,
        "SELECT revision, count(*), count_if(prefix_match_len >= 32), count_if(exact_match) "
        "FROM raw.scores GROUP BY revision",
    )
    assert {r[0]: r[1:] for r in got} == want
    before_runs = rows(db, "SELECT run_id FROM raw.runs")
    res = import_pythia_analysis(SAMPLE, model="pr161", db=db)  # re-import replaces
    assert res.rows_replaced == sum(v[0] for v in want.values())
    assert count(db, "SELECT count(*) FROM raw.scores") == res.rows
    assert count(db, "SELECT count(*) FROM raw.runs") == 9
    assert count(db, "SELECT count(*) FROM raw.ingested_files WHERE kind = 'import'") == 9
    assert not set(before_runs) & set(rows(db, "SELECT run_id FROM raw.runs"))


def test_pythia_analysis_real_file_via_cli(tmp_path: Path) -> None:
    """Acceptance: `memwh import pythia-analysis <PR161 file> --model pythia-pr161` -> 460,800 rows."""
    db = tmp_path / "X.duckdb"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from memwh.cli import main; main()",
            "import",
            "pythia-analysis",
            str(REAL),
            "--model",
            "pythia-pr161",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "460,800 rows" in r.stderr
    assert count(db, "SELECT count(*) FROM raw.scores WHERE model = 'pythia-pr161'") == 460_800
    per_step = dict(
        rows(db, "SELECT revision, count_if(prefix_match_len >= 32) FROM raw.scores GROUP BY 1")
    )
    # The brief's counts (longest_match >= 32: 11 at step1000, 226 at step9000) plus the rows
    # whose full 256-token continuation matched but which the file records as longest_match 0.
    fully = dict(
        rows(
            db,
            "SELECT revision, count_if(memorization_score = 1 AND prefix_match_len = 256) "
            "FROM raw.scores GROUP BY 1",
        )
    )
    assert per_step["step1000"] == 15 and per_step["step9000"] == 241
    assert fully["step1000"] == 4 and fully["step9000"] == 15


# --------------------------------------------------------------------------- pythia-csv


def _write_ranks(d: Path) -> None:
    d.mkdir()
    (d / "memorization_rank0.csv").write_text("0,1.0\n1,0.5\n2,0.0\n3,0.03125\n")
    (d / "memorization_rank1.csv").write_text("3,0.03125\n4,1.0\n5,0.25\n")  # 3 overlaps rank 0
    (d / "memorization_rank2.csv").write_text("5,0.3125\n6,0.0\n")  # 5 disagrees with rank 1


def test_pythia_csv_dedupes_ranks_and_maps_scores(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    _write_ranks(tmp_path / "evals")
    res = import_pythia_csv(tmp_path / "evals", model="pythia-70m", revision="step143000", db=db)
    assert res.rows == 7
    assert any("2 duplicate idx" in n for n in res.notes)
    assert any("1 idx value(s) had different scores" in n for n in res.notes)
    got = rows(
        db,
        "SELECT seq_idx, prefix_match_len, exact_match, memorization_score, loss "
        "FROM raw.scores ORDER BY seq_idx",
    )
    assert got == [
        (0, 32, True, 1.0, None),
        (1, None, False, 0.5, None),
        (2, 0, False, 0.0, None),
        (3, None, False, 0.03125, None),
        (4, 32, True, 1.0, None),
        (5, None, False, 0.3125, None),
        (6, 0, False, 0.0, None),
    ]
    run = rows(
        db, "SELECT source, step, seq_start, seq_end, n_rows, population, num_shards FROM raw.runs"
    )
    assert run == [("pythia-csv", 143000, 0, 7, 7, 7, 3)]
    before = snapshot(db)
    import_pythia_csv(tmp_path / "evals", model="pythia-70m", revision="step143000", db=db)
    after = snapshot(db)
    assert after["score_rows"] != [] and len(after["score_rows"]) == len(before["score_rows"])


def test_pythia_csv_rejects_garbage_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    _write_ranks(tmp_path / "evals")
    import_pythia_csv(tmp_path / "evals", model="m", revision="step1", db=db)
    before = snapshot(db)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "r0.csv").write_text("0,1.0\n1,2.5\n")
    with pytest.raises(MemwhError, match=r"1 score\(s\) outside \[0, 1\]"):
        import_pythia_csv(bad, model="m", revision="step1", db=db)
    (bad / "r0.csv").write_text("idx,score,extra\nfoo,bar,baz\n")
    with pytest.raises(MemwhError, match="not a Pythia eval CSV"):
        import_pythia_csv(bad, model="m", revision="step1", db=db)
    assert snapshot(db) == before


# --------------------------------------------------------------------------- memorized-index


@pytest.mark.parametrize("fmt", ["txt", "csv-header", "parquet"])
def test_memorized_index_formats(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "x.duckdb"
    idx = [5, 17, 17, 99, 4000]
    if fmt == "txt":
        f = tmp_path / "mem.txt"
        f.write_text("\n".join(map(str, idx)) + "\n")
    elif fmt == "csv-header":
        f = tmp_path / "mem.csv"
        f.write_text("tokens,index\n" + "".join(f"x,{i}\n" for i in idx))
    else:
        f = tmp_path / "mem.parquet"
        pq.write_table(pa.table({"index": pa.array(idx, pa.int64()), "tokens": [[1, 2]] * 5}), f)
    res = import_memorized_index(
        f, model="pythia-12b", revision="step143000", population=5000, db=db
    )
    assert res.rows == 4 and any("1 repeated" in n for n in res.notes)
    assert rows(
        db,
        "SELECT seq_idx, prefix_match_len, exact_match, memorization_score FROM raw.scores "
        "ORDER BY 1",
    ) == [(i, 32, True, 1.0) for i in (5, 17, 99, 4000)]
    assert rows(
        db, "SELECT source, n_rows, population, rows_are_sparse, seq_start, seq_end FROM raw.runs"
    ) == [("memorized-index", 4, 5000, True, 0, 5000)]


def test_memorized_index_outside_population(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    f = tmp_path / "mem.txt"
    f.write_text("1\n2\n7000\n")
    with pytest.raises(
        MemwhError, match=r"1 index\(es\) outside the population \[0, 5000\) \(e.g. 7000\)"
    ):
        import_memorized_index(f, model="m", revision="step1", population=5000, db=db)
    f.write_text("1\nabc\n")
    with pytest.raises(MemwhError, match="not integers"):
        import_memorized_index(f, model="m", revision="step1", population=5000, db=db)
    assert count(db, "SELECT count(*) FROM raw.score_rows") == 0


def test_import_refuses_to_mix_with_another_source(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    root = tmp_path / "runs"
    write_shard(root, model="demo-1m", revision="step100", num_shards=1)
    ingest_root(root, db, progress=False)
    before = snapshot(db)
    f = tmp_path / "mem.txt"
    f.write_text("1\n")
    with pytest.raises(MemwhError, match="already holds rows from memwh"):
        import_memorized_index(
            f, model="demo-1m", revision="step100", population=1000, db=db,
            dataset="corpus-abc123",
        )  # fmt: skip
    assert snapshot(db) == before
    # the same checkpoint on another dataset is another unit: stored beside the shard's rows
    import_memorized_index(
        f, model="demo-1m", revision="step100", population=1000, db=db, dataset="other-data"
    )
    assert count(db, "select count(distinct coalesce(data_fingerprint, '')) from raw.runs") == 2


def test_import_into_locked_database(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    import_pythia_analysis(SAMPLE, model="pr161", db=db)
    before = snapshot(db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(db)!r}); print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(
            MemwhError, match=f"locked by another process \\(held by PID {holder.pid}"
        ):
            import_pythia_analysis(SAMPLE, model="pr161", db=db)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert snapshot(db) == before
