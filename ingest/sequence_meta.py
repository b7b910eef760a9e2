"""Per-sequence metadata imported after the fact: `memwh import sequence-meta FILE --dataset KEY`.

The scored dataset usually carries its metadata (contract.SEQUENCE_META_SCHEMA columns of the
token Parquet, written by `memwh infer` to ROOT/sequences/<data_fingerprint>.parquet). When it
does not (Hubble's perturbation records, TinyMem's noise tables, a Pythia duplication-count
file), this importer adds it, keyed like exposure by the dataset (the data_fingerprint the
scored runs carry).

File: Parquet or CSV with ``seq_idx`` and at least one of ``duplicates``, ``is_canary``,
``category``, ``insert_first_step``, ``insert_last_step``. A column in the file sets that field
for the file's sequences; fields the file lacks, and sequences it does not list, keep their
stored values (so a category file can be layered over the dataset's duplication counts); the
columns kept at scoring (``extra``, `memwh infer --keep-columns`) stay as stored.
Validated like every import: one-line errors, one transaction, an identical file skipped.
Note: re-ingesting a *changed* ROOT/sequences file of the same dataset replaces the dataset's
rows (import again afterwards).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.store import file_stat, open_raw, record_files, scalar, transaction
from memwh.ingest.validate import sql_list, stage_checked

STAGING = "_memwh_sequence_meta"
_NULL_WORDS = ("", "null", "na", "nan", "none")
KINDS = {
    "seq_idx": "integer",
    "duplicates": "integer",
    "is_canary": "boolean",
    "category": "text",
    "insert_first_step": "integer",
    "insert_last_step": "integer",
}
_SQL_TYPES = {"integer": "BIGINT", "boolean": "BOOLEAN", "text": "VARCHAR"}
_PATTERNS = {
    "integer": r"[+-]?[0-9]+(\.0*)?",
    "boolean": "(true|false|t|f|1|0|yes|no)",
    "text": ".*",
}


@dataclass
class SequenceMetaResult:
    """What a sequence-metadata import stored."""

    dataset: str
    path: Path
    db: Path
    columns: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_new: int = 0
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        done = "unchanged, skipped" if self.unchanged else f"in {self.seconds:.1f}s"
        return (
            f"sequence metadata of dataset {self.dataset} -> {self.db}: {self.n_rows:,} rows "
            f"({', '.join(self.columns)}; {self.n_new:,} new sequences) from {self.path}, {done}"
        )


def _stage(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """File -> typed temp table (seq_idx + the metadata columns it has); returns those."""
    if path.suffix.lower() in (".parquet", ".pq"):
        src = f"read_parquet({sql_list([path])})"
    else:
        src = f"read_csv({sql_list([path])}, header = true, all_varchar = true)"
    try:
        names = [d[0] for d in con.execute(f"SELECT * FROM {src} LIMIT 0").description]
    except duckdb.Error as e:
        raise MemwhError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    norm = {n.strip().lower(): n for n in names}
    if "seq_idx" not in norm:
        raise MemwhError(f"{path}: missing column seq_idx (found {', '.join(names) or 'none'})")
    cols = [c for c in contract.SEQUENCE_META_COLUMNS if c in norm]
    if not cols:
        raise MemwhError(
            f"{path}: no metadata column; give at least one of "
            f"{', '.join(contract.SEQUENCE_META_COLUMNS)}"
        )
    nulls = ", ".join(f"'{w}'" for w in _NULL_WORDS)
    exprs, checks = [], []
    for c in ["seq_idx", *cols]:
        kind = KINDS[c]
        v = f"nullif(trim(\"{norm[c]}\"::VARCHAR), '')"
        v = f"(CASE WHEN lower({v}) IN ({nulls}) THEN NULL ELSE {v} END)"
        if kind == "integer":
            exprs.append(f"TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT) AS {c}")
        elif kind == "boolean":
            exprs.append(f"TRY_CAST({v} AS BOOLEAN) AS {c}")
        else:
            exprs.append(f"{v} AS {c}")
        checks.append(
            f"SELECT '{c}' AS col, {v} AS val FROM {src} WHERE {v} IS NOT NULL AND NOT "
            f"regexp_full_match(lower({v}), '{_PATTERNS[kind]}')"
        )
    stage_checked(
        con,
        path,
        checks,
        f"CREATE OR REPLACE TEMP TABLE {STAGING} AS SELECT {', '.join(exprs)} FROM {src}",
        lambda c: KINDS[c],
        "cannot read",
    )
    return cols


def _validate(con: duckdb.DuckDBPyConnection, path: Path, cols: list[str]) -> int:
    has = set(cols)
    first = "insert_first_step" if "insert_first_step" in has else "NULL::BIGINT"
    last = "insert_last_step" if "insert_last_step" in has else "NULL::BIGINT"
    dup = "duplicates" if "duplicates" in has else "NULL::BIGINT"
    n, n_bad_idx, n_dup, example, n_neg, n_order, n_window_zero = con.execute(
        f"""
        SELECT count(*),
               count_if(seq_idx IS NULL OR seq_idx < 0),
               count(seq_idx) - count(DISTINCT seq_idx),
               (SELECT seq_idx FROM {STAGING} GROUP BY seq_idx HAVING count(*) > 1 ORDER BY 1 LIMIT 1),
               count_if({dup} < 0 OR {first} < 0 OR {last} < 0),
               count_if({last} < {first}),
               count_if({dup} = 0 AND ({first} IS NOT NULL OR {last} IS NOT NULL))
        FROM {STAGING}
        """
    ).fetchall()[0]
    if n == 0:
        raise MemwhError(f"{path}: the file holds no rows")
    if n_bad_idx:
        raise MemwhError(f"{path}: {n_bad_idx} row(s) with an empty or negative seq_idx")
    if n_dup:
        raise MemwhError(
            f"{path}: {n_dup} duplicate seq_idx value(s) (e.g. {example}); give one row per sequence"
        )
    if n_neg:
        raise MemwhError(
            f"{path}: {n_neg} row(s) with a negative duplicates, insert_first_step or insert_last_step"
        )
    if n_order:
        raise MemwhError(f"{path}: {n_order} row(s) with insert_last_step < insert_first_step")
    if n_window_zero:
        raise MemwhError(
            f"{path}: {n_window_zero} row(s) with 0 duplicates but an insertion window; leave "
            "insert_first_step/insert_last_step empty for sequences that were not inserted"
        )
    return int(n)


def import_sequence_meta(
    file: str | os.PathLike, *, dataset: str, db: str | os.PathLike | None = None
) -> SequenceMetaResult:
    """Layer per-sequence metadata (category, insertion window, duplicates, is_canary) over
    dataset `dataset` (a data_fingerprint some stored run carries)."""
    t0 = time.perf_counter()
    path = Path(file).resolve()
    if not path.is_file():
        raise MemwhError(f"{path}: no such file; pass a Parquet or CSV file with seq_idx")
    if not dataset or not dataset.strip() or "\n" in dataset:
        raise MemwhError(f"--dataset {dataset!r}: give the data_fingerprint of the scored data")
    sha = contract.sha256_file(path)
    con = open_raw(db)
    try:
        known = scalar(
            con,
            "SELECT count(*) FROM (SELECT data_fingerprint FROM raw.runs UNION ALL "
            "SELECT data_fingerprint FROM raw.sequences) WHERE data_fingerprint = ?",
            [dataset],
        )
        if not known:
            shown = ", ".join(
                str(r[0])
                for r in con.execute(
                    "SELECT DISTINCT data_fingerprint FROM raw.runs WHERE data_fingerprint "
                    "IS NOT NULL ORDER BY 1 LIMIT 5"
                ).fetchall()
            )
            raise MemwhError(
                f"--dataset {dataset}: no stored run scored this dataset (known: {shown or 'none'}); "
                "ingest the scores first or pass their data_fingerprint"
            )
        result = SequenceMetaResult(dataset, path, resolve_db(db).resolve())
        key = f"{path}#{dataset}"
        prev = con.execute(
            "SELECT sha256, n_rows FROM raw.ingested_files WHERE path = ? AND kind = 'sequence-meta'",
            [key],
        ).fetchall()
        if prev and prev[0][0] == sha:
            result.n_rows, result.unchanged = int(prev[0][1]), True
            return result
        result.columns = _stage(con, path)
        result.n_rows = _validate(con, path, result.columns)
        meta = list(contract.SEQUENCE_META_COLUMNS)
        picks = ", ".join(
            f"CASE WHEN f.seq_idx IS NOT NULL THEN f.{c} ELSE s.{c} END AS {c}"
            if c in result.columns
            else f"s.{c}"
            for c in meta
        )
        result.n_new = int(
            scalar(
                con,
                f"SELECT count(*) FROM {STAGING} f WHERE seq_idx NOT IN "
                "(SELECT seq_idx FROM raw.sequences WHERE data_fingerprint = ?)",
                [dataset],
            )
        )
        size, mtime = file_stat(path)
        with transaction(con):
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {STAGING}_merged AS
                SELECT coalesce(f.seq_idx, s.seq_idx) AS seq_idx, {picks}, s.extra AS extra
                FROM (SELECT * FROM raw.sequences WHERE data_fingerprint = ?) AS s
                FULL JOIN {STAGING} AS f ON f.seq_idx = s.seq_idx""",
                [dataset],
            )
            con.execute("DELETE FROM raw.sequences WHERE data_fingerprint = ?", [dataset])
            con.execute(
                f"INSERT INTO raw.sequences (data_fingerprint, seq_idx, {', '.join(meta)}, extra) "
                f"SELECT ?, seq_idx, {', '.join(meta)}, extra FROM {STAGING}_merged",
                [dataset],
            )
            record_files(
                con,
                [
                    {
                        "path": key,
                        "kind": "sequence-meta",
                        "size": size,
                        "mtime": mtime,
                        "sha256": sha,
                        "run_id": None,
                        "n_rows": result.n_rows,
                    }
                ],
            )
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result
