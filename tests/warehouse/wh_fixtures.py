"""Raw-layer fixtures for warehouse tests: hand-made units and the real Pythia PR #161 data.

PR #161 data: EleutherAI/pythia (Apache-2.0), data file added in PR #161 (commit c3369da).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import duckdb

from memwh.ingest.schema import ensure_raw_schema

PR161 = Path(__file__).resolve().parents[1] / "fixtures" / "pythia_pr161.parquet"  # real rows
RUN_COLUMNS = (
    "run_id, run_key, source, model, revision, step, family, n_params, tokens_per_step, "
    "sequences_per_step, prompt_len, cont_len, mode, seq_start, seq_end, n_rows, population, "
    "rows_are_sparse, data_fingerprint, host, started_at, finished_at, ingested_at"
)


def add_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    model: str,
    revision: str,
    *,
    family: str | None = None,
    step: int | None = None,
    n_params: int | None = None,
    seq_start: int | None = None,
    seq_end: int | None = None,
    n_rows: int,
    population: int | None = None,
    sparse: bool = False,
    source: str = "memwh",
    sequences_per_step: int | None = None,
    tokens_per_step: int | None = None,
    cont_len: int = 32,
    data_fingerprint: str | None = None,
) -> None:
    now = datetime(2026, 1, 1)
    con.execute(
        f"insert into raw.runs ({RUN_COLUMNS}) values "
        "(?, nextval('raw.run_key_seq'), ?, ?, ?, ?, ?, ?, ?, ?, 32, ?, 'fast', ?, ?, ?, ?, ?, ?, 'host1', ?, ?, ?)",
        [
            run_id,
            source,
            model,
            revision,
            step,
            family,
            n_params,
            tokens_per_step,
            sequences_per_step,
            cont_len,
            seq_start,
            seq_end,
            n_rows,
            population if population is not None else n_rows,
            sparse,
            data_fingerprint,
            now,
            now,
            now,
        ],
    )


def add_scores(con: duckdb.DuckDBPyConnection, run_id: str, rows: list[tuple]) -> None:
    """rows: (seq_idx, prefix_match_len, memorization_score, loss) into raw.score_rows."""
    (key,) = con.execute("select run_key from raw.runs where run_id = ?", [run_id]).fetchall()[0]
    con.executemany(
        "insert into raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match, "
        "memorization_score, loss) values (?, ?, ?, ?, ?, ?)",
        [(key, i, p, None if p is None else p >= 32, s, loss) for (i, p, s, loss) in rows],
    )


def load_pr161(db: Path, path: Path = PR161) -> None:
    """The real PR #161 rows through ingest's importer: one unit per checkpoint of model
    'pythia-pr161'. fix_full_match=False keeps prefix_match_len = longest_match, the brief's
    definition (memorized@32 = longest_match >= 32)."""
    from memwh.ingest.importers import import_pythia_analysis

    import_pythia_analysis(path, model="pythia-pr161", db=db, fix_full_match=False)


def make_db(path: Path, loader: Callable[[duckdb.DuckDBPyConnection], None]) -> Path:
    """A fresh raw layer at `path` filled by loader(con)."""
    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        loader(con)
    finally:
        con.close()
    return path


TOY_MODELS = {"toy-s": 1_000_000, "toy-m": 4_000_000, "toy-l": 16_000_000}


def toy_pml(seq: int, model_i: int, rev: int) -> int:
    """Deterministic matched-prefix lengths in 0..39: about a fifth >= 32, overlapping across units."""
    return (seq * 7 + model_i * 3 + rev * 5) % 40


def add_toy_unit(
    con: duckdb.DuckDBPyConnection,
    model: str,
    rev: int,
    lo: int,
    hi: int,
    shards: int = 1,
    run_tag: str = "",
    shift: int = 0,
) -> None:
    mi = list(TOY_MODELS).index(model) + shift
    bounds = [lo + (hi - lo) * k // shards for k in range(shards + 1)]
    for k in range(shards):
        run_id = f"{model}-step{rev}-{k}{run_tag}"
        add_run(
            con,
            run_id,
            model,
            f"step{rev}",
            family="toy",
            step=rev,
            n_params=TOY_MODELS[model],
            seq_start=bounds[k],
            seq_end=bounds[k + 1],
            n_rows=bounds[k + 1] - bounds[k],
            sequences_per_step=10,
            tokens_per_step=1000,
            data_fingerprint="fp1",
        )
        add_scores(
            con,
            run_id,
            [
                (
                    i,
                    toy_pml(i, mi, rev),
                    1.0 if toy_pml(i, mi, rev) >= 32 else toy_pml(i, mi, rev) / 40,
                    3.0 - toy_pml(i, mi, rev) / 20,
                )
                for i in range(bounds[k], bounds[k + 1])
            ],
        )


def load_toy(con: duckdb.DuckDBPyConnection) -> None:
    """Hand-made units covering the cases the marts must handle:
    - family 'toy': 3 sizes x steps 1, 2 over seq 0..39 (toy-l step2 in 2 shards);
      sequences_per_step 10, so step1 has seen seq < 10 and step2 seq < 20;
    - toy-m step3 over a different population (seq 10..49);
    - a memorized-index (sparse) unit over [0, 100) with 3 stored rows, no prefix_match_len;
    - a score-only unit (pythia-csv style: prefix_match_len NULL, label falls back to score >= 1),
      in family 'other' at the same revision as the sparse unit, so the two form a pair;
    - duplication counts for the toy dataset."""
    for model in TOY_MODELS:
        for rev in (1, 2):
            add_toy_unit(con, model, rev, 0, 40, shards=2 if (model, rev) == ("toy-l", 2) else 1)
    add_toy_unit(con, "toy-m", 3, 10, 50)
    add_run(
        con,
        "idx-run",
        "idx-model",
        "main",
        family="other",
        seq_start=0,
        seq_end=100,
        n_rows=3,
        population=100,
        sparse=True,
        source="memorized-index",
    )
    add_scores(con, "idx-run", [(3, None, 1.0, None), (5, None, 1.0, None), (7, None, 1.0, None)])
    add_run(
        con,
        "csv-run",
        "csv-model",
        "main",
        family="other",
        seq_start=0,
        seq_end=20,
        n_rows=20,
        source="pythia-csv",
    )
    add_scores(con, "csv-run", [(i, None, 1.0 if i % 3 == 0 else 0.5, None) for i in range(20)])
    con.execute(
        "insert into raw.sequences (data_fingerprint, seq_idx, duplicates, is_canary) "
        "select 'fp1', i, 1 + i % 4, false from range(60) t(i)"
    )


class Built(NamedTuple):
    db: Path
    target: Path  # dbt's target (its unit-test stamp says which fingerprints passed)
    result: object  # the BuildResult of the first build


def copy_built(built: Built, dst: Path) -> tuple[Path, Path]:
    """A private copy (db, target) of a built warehouse under dst, for a test that mutates it:
    copying the file is seconds cheaper than building it again."""
    dst.mkdir(parents=True, exist_ok=True)
    db = dst / built.db.name
    shutil.copy(built.db, db)
    target = dst / "target"
    shutil.copytree(built.target, target, ignore=shutil.ignore_patterns("logs"))
    return db, target
