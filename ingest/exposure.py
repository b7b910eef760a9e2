"""Exposure: what a model trained on, per model AND the dataset its sequence indices refer to.

Definitions (shared/STUDIES.md §1): ``first_step`` is the 0-based optimizer step whose batch
first contained the sequence (NULL = never trained on); optional ``n_exposures`` (copies seen
by the end of training) and ``last_step``. A unit at step s has seen x iff first_step < s; a
unit without a step (final or fine-tuned model) has seen every x with a first_step.

Why per dataset: seq_idx 17 of Pythia's pre-shuffled Pile was trained at step 0, while row
17 of one's own JSONL was never trained on. An exposure declaration therefore names the
dataset (``dataset`` = the ``data_fingerprint`` the scored runs carry, see ``units``) and
applies only to units that scored that dataset.

Two kinds of declaration, one row each in ``raw.exposure_sets`` (key: model, dataset):

* ``table``: a file with ``seq_idx, first_step`` and optional ``n_exposures, last_step``
  (fine-tuning splits, shadow models, insertion experiments, the demo suite), stored in
  ``raw.exposure``. Validated like every import: one-line errors, one transaction, a
  re-import replaces the earlier one (an identical file is skipped).
* ``rule``: ``first_step = seq_idx div sequences_per_step`` (Pythia's pre-shuffled order;
  with ``train_steps``, indices at or beyond ``train_steps * sequences_per_step`` were never
  trained). Computed in the warehouse, never stored per row.

Either may be declared before or after the model's scores are ingested.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.store import now_utc, open_raw, scalar, transaction
from memwh.ingest.validate import sql_list, stage_checked

REQUIRED = ("seq_idx", "first_step")
OPTIONAL = ("n_exposures", "last_step")
COLUMNS = REQUIRED + OPTIONAL
STAGING = "_memwh_exposure"
_NULL_WORDS = ("", "null", "na", "nan", "none")


@dataclass
class ExposureResult:
    """What an exposure import or rule declaration stored."""

    model: str
    dataset: str
    kind: str  # table | rule
    db: Path
    path: Path | None = None
    n_rows: int = 0
    n_trained: int = 0
    replaced: str | None = None  # kind of the declaration it replaced
    unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        what = (
            f"{self.n_rows:,} rows ({self.n_trained:,} trained, {self.n_rows - self.n_trained:,} "
            f"never trained) from {self.path}"
            if self.kind == "table"
            else "rule first_step = seq_idx div sequences_per_step"
        )
        done = "unchanged, skipped" if self.unchanged else f"in {self.seconds:.1f}s"
        repl = f", replaced the earlier {self.replaced}" if self.replaced else ""
        return f"exposure {self.model} on dataset {self.dataset} -> {self.db}: {what}{repl}, {done}"


def _first(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def resolve_dataset(con: duckdb.DuckDBPyConnection, model: str, dataset: str | None) -> str:
    """The dataset key: as given, else the single data_fingerprint of the model's units."""
    if dataset is not None:
        if not dataset.strip() or "\n" in dataset:
            raise MemwhError(f"--dataset {dataset!r}: give the data_fingerprint of the scored data")
        return dataset
    keys = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT data_fingerprint FROM raw.runs WHERE model = ? ORDER BY 1 NULLS FIRST",
            [model],
        ).fetchall()
    ]
    if not keys:
        raise MemwhError(
            f"{model}: no scores of this model yet, so the dataset its seq_idx refer to is unknown; "
            "pass --dataset KEY (the data_fingerprint its score manifests will carry)"
        )
    if keys == [None]:
        raise MemwhError(
            f"{model}: its units carry no dataset key (imported results); re-import them with "
            "--dataset KEY and pass the same --dataset here"
        )
    if len(keys) > 1:
        shown = ", ".join(str(k) for k in keys)
        raise MemwhError(
            f"{model}: units score several datasets ({shown}); pass --dataset to say which "
            "one the exposure indexes"
        )
    return keys[0]


def _prior(con: duckdb.DuckDBPyConnection, model: str, dataset: str) -> tuple | None:
    rows = con.execute(
        "SELECT kind, sha256, source_path FROM raw.exposure_sets WHERE model = ? AND dataset = ?",
        [model, dataset],
    ).fetchall()
    return rows[0] if rows else None


def _replace(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    dataset: str,
    kind: str,
    source: str,
    source_path: str | None,
    sha256: str | None,
    n_rows: int,
    n_trained: int | None,
    sequences_per_step: int | None = None,
    train_steps: int | None = None,
) -> None:
    """Delete the (model, dataset) declaration and its rows, insert the new one (and the
    staged rows for a table). Call inside a transaction."""
    con.execute("DELETE FROM raw.exposure WHERE model = ? AND dataset = ?", [model, dataset])
    con.execute("DELETE FROM raw.exposure_sets WHERE model = ? AND dataset = ?", [model, dataset])
    con.execute(
        "INSERT INTO raw.exposure_sets (model, dataset, kind, sequences_per_step, train_steps, "
        "exposure_id, source, source_path, sha256, n_rows, n_trained, imported_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            model,
            dataset,
            kind,
            sequences_per_step,
            train_steps,
            uuid.uuid4().hex,
            source,
            source_path,
            sha256,
            n_rows,
            n_trained,
            now_utc(),
        ],
    )
    if kind == "table":
        con.execute(
            "INSERT INTO raw.exposure SELECT ?, ?, seq_idx, first_step, n_exposures, last_step "
            f"FROM {STAGING}",
            [model, dataset],
        )


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise MemwhError(f"{path}: unreadable Parquet ({_first(e)})") from None
    present = [c for c in COLUMNS if c in schema.names]
    missing = [c for c in REQUIRED if c not in present]
    if missing:
        raise MemwhError(
            f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(schema.names)}); "
            "the file needs seq_idx, first_step"
        )
    notes = []
    exprs = []
    for c in COLUMNS:
        if c not in present:
            exprs.append(f"NULL::BIGINT AS {c}")
            continue
        t = schema.field(c).type
        if pa.types.is_integer(t) or pa.types.is_null(t):
            exprs.append(f'"{c}"::BIGINT AS {c}')
        elif pa.types.is_floating(t):
            # pandas writes an integer column with missing values as float64 (NaN = missing)
            bad = scalar(
                con,
                f'SELECT count(*) FROM read_parquet({sql_list([path])}) WHERE "{c}" IS NOT NULL '
                f'AND NOT isnan("{c}") AND ("{c}" <> round("{c}") OR isinf("{c}"))',
            )
            if bad:
                raise MemwhError(
                    f"{path}: column {c} has {bad} non-integer value(s); steps and counts are integers"
                )
            exprs.append(f'(CASE WHEN isnan("{c}") THEN NULL ELSE "{c}" END)::BIGINT AS {c}')
            notes.append(f"column {c} is {t} (read as integers, NaN as missing)")
        else:
            raise MemwhError(f"{path}: column {c} has type {t}, expected an integer type")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {STAGING} AS SELECT {', '.join(exprs)} "
        f"FROM read_parquet({sql_list([path])})"
    )
    return notes


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    raw = f"read_csv({sql_list([path])}, header = true, all_varchar = true, auto_detect = true)"
    try:
        names = [d[0] for d in con.execute(f"SELECT * FROM {raw} LIMIT 0").description]
    except duckdb.Error as e:
        raise MemwhError(f"{path}: cannot read as CSV ({_first(e)})") from None
    norm = {n.strip().lower(): n for n in names}
    missing = [c for c in REQUIRED if c not in norm]
    if missing:
        raise MemwhError(
            f"{path}: missing column(s) {', '.join(missing)} in the header (found "
            f"{', '.join(names) or 'none'}); the file needs seq_idx, first_step"
        )
    vals = {c: f"nullif(trim(\"{norm[c]}\"), '')" for c in COLUMNS if c in norm}
    nulls = ", ".join(f"'{w}'" for w in _NULL_WORDS)
    exprs, checks = [], []
    for c in COLUMNS:
        if c not in vals:
            exprs.append(f"NULL::BIGINT AS {c}")
            continue
        v = vals[c]
        exprs.append(
            f"(CASE WHEN lower({v}) IN ({nulls}) THEN NULL ELSE TRY_CAST({v} AS BIGINT) END) AS {c}"
        )
        checks.append(
            f"SELECT '{c}' AS col, {v} AS val FROM {raw} WHERE {v} IS NOT NULL AND lower({v}) NOT IN "
            f"({nulls}) AND (NOT regexp_full_match({v}, '[+-]?[0-9]+') OR TRY_CAST({v} AS BIGINT) IS NULL)"
        )
    stage_checked(
        con,
        path,
        checks,
        f"CREATE OR REPLACE TEMP TABLE {STAGING} AS SELECT {', '.join(exprs)} FROM {raw}",
        lambda _c: "integers",
        "cannot read as CSV",
    )


def _validate(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, int]:
    """Row rules; returns (rows, rows with a first_step)."""
    (
        n,
        n_null_idx,
        n_neg_idx,
        n_dup,
        dup_example,
        n_neg,
        n_order,
        n_never_bad,
        n_zero,
        n_one_bad,
        n_trained,
    ) = con.execute(
        f"""
        SELECT count(*),
               count_if(seq_idx IS NULL),
               count_if(seq_idx < 0),
               count(seq_idx) - count(DISTINCT seq_idx),
               (SELECT seq_idx FROM {STAGING} GROUP BY seq_idx HAVING count(*) > 1 ORDER BY 1 LIMIT 1),
               count_if(first_step < 0 OR last_step < 0 OR n_exposures < 0),
               count_if(last_step < first_step),
               count_if(first_step IS NULL AND (last_step IS NOT NULL OR n_exposures > 0)),
               count_if(first_step IS NOT NULL AND n_exposures = 0),
               count_if(n_exposures = 1 AND last_step <> first_step),
               count(first_step)
        FROM {STAGING}
        """
    ).fetchall()[0]
    if n == 0:
        raise MemwhError(f"{path}: the file holds no rows")
    if n_null_idx or n_neg_idx:
        raise MemwhError(
            f"{path}: {n_null_idx + n_neg_idx} row(s) with an empty or negative seq_idx"
        )
    if n_dup:
        raise MemwhError(
            f"{path}: {n_dup} duplicate seq_idx value(s) (e.g. {dup_example}); give one row per sequence"
        )
    if n_neg:
        raise MemwhError(
            f"{path}: {n_neg} row(s) with a negative first_step, last_step or n_exposures"
        )
    if n_order:
        raise MemwhError(f"{path}: {n_order} row(s) with last_step < first_step")
    if n_never_bad:
        raise MemwhError(
            f"{path}: {n_never_bad} row(s) without first_step (never trained) but with a last_step "
            "or n_exposures > 0; leave them empty for never-trained sequences"
        )
    if n_zero:
        raise MemwhError(
            f"{path}: {n_zero} row(s) with a first_step but n_exposures = 0; leave first_step "
            "empty for never-trained sequences"
        )
    if n_one_bad:
        raise MemwhError(
            f"{path}: {n_one_bad} row(s) with n_exposures = 1 but last_step <> first_step"
        )
    return int(n), int(n_trained)


def import_exposure(
    file: str | os.PathLike,
    *,
    model: str,
    dataset: str | None = None,
    db: str | os.PathLike | None = None,
) -> ExposureResult:
    """Exposure table (Parquet or CSV: seq_idx, first_step[, n_exposures, last_step]) of
    `model` on `dataset` (default: the one dataset the model's units scored)."""
    t0 = time.perf_counter()
    path = Path(file).resolve()
    if not path.is_file():
        raise MemwhError(
            f"{path}: no such file; pass a Parquet or CSV file with seq_idx, first_step"
        )
    try:
        contract._safe_component(model, "model name")
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    sha = contract.sha256_file(path)
    con = open_raw(db)
    try:
        key = resolve_dataset(con, model, dataset)
        result = ExposureResult(model, key, "table", resolve_db(db).resolve(), path)
        prior = _prior(con, model, key)
        if prior is not None and prior[0] == "table" and prior[1] == sha:
            n, n_trained = con.execute(
                "SELECT n_rows, n_trained FROM raw.exposure_sets WHERE model = ? AND dataset = ?",
                [model, key],
            ).fetchall()[0]
            result.n_rows, result.n_trained, result.unchanged = int(n), int(n_trained or 0), True
            return result
        if path.suffix.lower() in (".parquet", ".pq"):
            result.notes += _stage_parquet(con, path)
        else:
            _stage_csv(con, path)
        result.n_rows, result.n_trained = _validate(con, path)
        with transaction(con):
            _replace(
                con,
                model=model,
                dataset=key,
                kind="table",
                source="file",
                source_path=str(path),
                sha256=sha,
                n_rows=result.n_rows,
                n_trained=result.n_trained,
            )
        result.replaced = prior[0] if prior else None
        if not scalar(con, "SELECT count(*) FROM raw.runs WHERE model = ?", [model]):
            result.notes.append(
                f"no scores of {model} yet: the exposure applies once they are ingested"
            )
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result


def check_rule(sequences_per_step: int, train_steps: int | None) -> None:
    if sequences_per_step is None or sequences_per_step <= 0:
        raise MemwhError(f"--sequences-per-step {sequences_per_step}: must be a positive integer")
    if train_steps is not None and train_steps <= 0:
        raise MemwhError(f"--train-steps {train_steps}: must be a positive integer")


def declare_rule(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    dataset: str,
    sequences_per_step: int,
    train_steps: int | None,
    source: str,
    replace: bool = True,
) -> str | None:
    """Write a rule declaration on an open connection (inside the caller's transaction).
    With replace=False an existing declaration wins. Returns the kind it replaced."""
    prior = _prior(con, model, dataset)
    if prior is not None and not replace:
        return None
    _replace(
        con,
        model=model,
        dataset=dataset,
        kind="rule",
        source=source,
        source_path=None,
        sha256=None,
        n_rows=0,
        n_trained=None,
        sequences_per_step=sequences_per_step,
        train_steps=train_steps,
    )
    return prior[0] if prior else None


def declare_exposure_rule(
    *,
    model: str,
    sequences_per_step: int = 1024,
    train_steps: int | None = None,
    dataset: str | None = None,
    db: str | os.PathLike | None = None,
) -> ExposureResult:
    """Declare that `dataset` is `model`'s training order: first_step = seq_idx div
    sequences_per_step (Pythia: 1024 sequences per step, 143,000 steps)."""
    t0 = time.perf_counter()
    check_rule(sequences_per_step, train_steps)
    try:
        contract._safe_component(model, "model name")
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    con = open_raw(db)
    try:
        key = resolve_dataset(con, model, dataset)
        result = ExposureResult(model, key, "rule", resolve_db(db).resolve())
        with transaction(con):
            result.replaced = declare_rule(
                con,
                model=model,
                dataset=key,
                sequences_per_step=sequences_per_step,
                train_steps=train_steps,
                source="rule",
            )
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result
