"""Importers: results made by other tools, loaded into the same raw tables as memwh shards.

Common rules

* Each import is ONE transaction: it stages the input in a temporary table, validates it,
  then deletes the rows of earlier imports of the same source for the same unit(s)
  (model, revision, dataset) and inserts the new ones. Re-importing is therefore idempotent.
* An import refuses to mix with rows a *different* source already holds for the unit
  (e.g. memwh shards for ``pythia-70m@step143000``): pick another ``--model`` label.
* ``raw.runs``: one row per imported unit, ``source`` = the importer name, ``mode`` =
  ``imported``, ``source_path`` = the input, ``manifest`` = the import parameters.
  ``raw.ingested_files``: one row per unit, path ``<input>#<model>@<revision>``, kind ``import``.
* Metrics the tool did not measure (loss, min-k, zlib, tf accuracy) are NULL.
* ``dataset`` (``--dataset``) is stored as the runs' data_fingerprint: the key exposure
  declarations (ingest/exposure.py) are matched on.

Mappings

``pythia-csv`` (Pythia's eval script: one ``idx,score`` line per sequence, no header, one
file per rank; ``*.csv`` in DIR). Ranks may overlap, so rows are deduplicated by idx; if
copies disagree the larger score is kept and the count is reported.
    seq_idx = idx; memorization_score = score; exact_match = (score == 1);
    prefix_match_len = cont_len when score == 1, 0 when score == 0 (the first generated
    token already differs), otherwise NULL (a fractional score does not tell where the
    first mismatch is; the warehouse then labels with memorization_score >= threshold).
    seq range = [min idx, max idx + 1), population = n_rows (dense).

``memorized-index`` (lists of memorized indices, as in EleutherAI's memorized-evals
datasets: a Parquet column ``index``/``seq_idx``/``idx`` or the only column, or a CSV/TXT
with one index per line, optional header). Only memorized sequences are known:
    one row per distinct index: exact_match = true, memorization_score = 1.0,
    prefix_match_len = cont_len. raw.runs: rows_are_sparse = true, population = N,
    seq range = [seq_start, seq_start + N) (every index must lie inside).

``pythia-analysis`` (EleutherAI/pythia PR #161 ``analysis.parquet``: ``index``,
``checkpoint``, ``longest_match`` and ``overlap`` of a 256-token greedy continuation after a
32-token prompt). One run per checkpoint, revision = ``step<checkpoint>``:
    seq_idx = index; memorization_score = overlap / 256;
    prefix_match_len = longest_match, except rows with overlap == 256, where the file
    stores longest_match = 0 (122 rows in the PR #161 file: the original code takes the
    argmax of "token differs", which is 0 when no token differs); those are stored as 256.
    Pass ``fix_full_match=False`` to keep the file's values.
    exact_match = prefix_match_len >= 256 (the full 256-token continuation matched).
    Memorized under the paper's 32-token definition is derived downstream from
    prefix_match_len >= 32 (dbt var memorized_min_tokens); counts per checkpoint with the
    fix: 15 at step1000 ... 241 at step9000 (11 ... 226 without it).
    family, sequences_per_step (1024) and tokens_per_step (2,097,152 = 1024 x 2048) default
    to Pythia's training setup; data_fingerprint = ``dataset`` (default
    ``pythia-pile-preshuffled``; give the deduped order its own key) and, unless one exists,
    the exposure rule first_step = seq_idx div sequences_per_step is declared for it; tokens_seen = step x tokens_per_step; train_flops =
    6 x n_params x tokens_seen when ``n_params`` is given.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.exposure import check_rule, declare_rule
from memwh.ingest.store import (
    delete_runs,
    file_stat,
    insert_runs,
    next_run_keys,
    open_raw,
    record_files,
    run_record,
    transaction,
)
from memwh.ingest.validate import dataset_of, sql_list

# Dataset key (data_fingerprint) of Pythia's pre-shuffled Pile indices, and its training length.
PYTHIA_DATASET = "pythia-pile-preshuffled"
PYTHIA_TRAIN_STEPS = 143_000

STAGING = "_memwh_import"  # temp table: revision, seq_idx, prefix_match_len, exact_match, memorization_score


@dataclass
class ImportResult:
    """What an import stored: rows per revision, rows it replaced, and notes for the user."""

    source: str
    model: str
    path: Path
    db: Path
    rows_by_revision: dict[str, int] = field(default_factory=dict)
    rows_replaced: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.rows_by_revision.values())

    def summary(self) -> str:
        revs = (
            ", ".join(self.rows_by_revision)
            if len(self.rows_by_revision) <= 4
            else (f"{len(self.rows_by_revision)} revisions")
        )
        return (
            f"import {self.source} {self.path} -> {self.db}: {self.rows:,} rows for "
            f"{self.model} ({revs}), {self.rows_replaced:,} replaced, in {self.seconds:.1f}s"
        )


def _first(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def _commit(
    con: duckdb.DuckDBPyConnection,
    result: ImportResult,
    units: dict[str, dict[str, Any]],
    *,
    population: dict[str, int] | None = None,
    sparse: bool = False,
    sha256: str | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> None:
    """One transaction: drop this source's earlier import of the units, insert the staged rows
    (and run `also`, e.g. an exposure declaration, in the same transaction)."""
    source, model = result.source, result.model
    # a unit is (model, revision, dataset): an import replaces (or refuses to mix with) only the
    # rows of its own dataset
    dataset = dataset_of(next(iter(units.values()), {}).get("data_fingerprint"))
    size, mtime = _path_stat(result.path)
    with transaction(con):
        con.register("_memwh_units", pa.table({"revision": list(units)}))
        try:
            prior = _rows(
                con,
                "SELECT run_key, run_id, source, revision, source_path FROM raw.runs "
                "WHERE model = ? AND revision IN (SELECT revision FROM _memwh_units) "
                "AND coalesce(data_fingerprint, ?) = ?",
                [model, contract.NO_DATASET, dataset],
            )
        finally:
            con.unregister("_memwh_units")
        foreign = [r for r in prior if r[2] != source]
        if foreign:
            r = foreign[0]
            raise MemwhError(
                f"{model}@{r[3]} already holds rows from {r[2]} ({r[4]}); import under another "
                "--model label so the two sources stay apart"
            )
        result.rows_replaced = delete_runs(con, [r[0] for r in prior])
        if prior:
            con.executemany(
                "DELETE FROM raw.ingested_files WHERE run_id = ?", [(r[1],) for r in prior]
            )
        runs, files, keys = [], [], []
        for (rev, fields), key in zip(units.items(), next_run_keys(con, len(units)), strict=True):
            run_id = uuid.uuid4().hex
            manifest = {
                "source": source,
                "path": str(result.path),
                "model": model,
                "revision": rev,
                "run_id": run_id,
                "mode": "imported",
                **fields,
            }
            pop = population.get(rev) if population else None
            runs.append(
                run_record(
                    manifest,
                    run_key=key,
                    source=source,
                    source_path=str(result.path),
                    population=pop,
                    rows_are_sparse=sparse,
                )
            )
            files.append(
                {
                    "path": f"{result.path}#{model}@{rev}",
                    "kind": "import",
                    "size": size,
                    "mtime": mtime,
                    "sha256": sha256,
                    "run_id": run_id,
                    "n_rows": fields["n_rows"],
                }
            )
            keys.append((rev, key))
        insert_runs(con, runs)
        con.register(
            "_memwh_keys",
            pa.table(
                {
                    "revision": [k[0] for k in keys],
                    "run_key": pa.array([k[1] for k in keys], pa.int32()),
                }
            ),
        )
        try:
            con.execute(
                f"INSERT INTO raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match, "
                f"memorization_score) SELECT k.run_key, i.seq_idx, i.prefix_match_len, "
                f"i.exact_match, i.memorization_score FROM {STAGING} AS i JOIN _memwh_keys AS k "
                f"USING (revision)"
            )
        finally:
            con.unregister("_memwh_keys")
        record_files(con, files)
        if also is not None:
            also(con)
    result.rows_by_revision = {rev: int(f["n_rows"]) for rev, f in units.items()}


def _path_stat(path: Path) -> tuple[int, float]:
    if path.is_dir():
        stats = [file_stat(p) for p in path.iterdir() if p.is_file()]
        return sum(s for s, _ in stats), max((m for _, m in stats), default=0.0)
    return file_stat(path)


def _unit_fields(
    model: str,
    revision: str,
    *,
    n_rows: int,
    seq_start: int,
    seq_end: int,
    prompt_len: int,
    cont_len: int,
    family: str | None,
    n_params: int | None,
    step: int | None = None,
    sequences_per_step: int | None = None,
    tokens_per_step: int | None = None,
    data_source: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    contract._safe_component(model, "model name")
    contract._safe_component(revision, "revision")
    step = step if step is not None else contract.parse_step(revision)
    tokens_seen = step * tokens_per_step if step is not None and tokens_per_step else None
    return {
        "step": step,
        "family": family,
        "n_params": n_params,
        "sequences_per_step": sequences_per_step,
        "tokens_per_step": tokens_per_step,
        "tokens_seen": tokens_seen,
        "train_flops": 6.0 * n_params * tokens_seen if n_params and tokens_seen else None,
        "prompt_len": prompt_len,
        "cont_len": cont_len,
        "seq_start": seq_start,
        "seq_end": seq_end,
        "n_rows": n_rows,
        "data_source": data_source,
        "data_fingerprint": dataset,
        "finished_at": None,
    }


def _check_lengths(prompt_len: int, cont_len: int) -> None:
    if not (0 < cont_len <= 32767) or prompt_len < 0:
        raise MemwhError(
            f"--cont-len {cont_len} / --prompt-len {prompt_len}: use positive token counts"
        )


def import_pythia_csv(
    directory: str | os.PathLike,
    *,
    model: str,
    revision: str,
    db: str | os.PathLike | None = None,
    prompt_len: int = 32,
    cont_len: int = 32,
    family: str | None = None,
    n_params: int | None = None,
    dataset: str | None = None,
) -> ImportResult:
    """Pythia eval CSVs (``idx,score`` per line, one file per rank) -> one unit."""
    t0 = time.perf_counter()
    path = Path(directory).resolve()
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        raise MemwhError(f"{path}: no *.csv files here; pass the folder of Pythia's eval CSVs")
    _check_lengths(prompt_len, cont_len)
    result = ImportResult("pythia-csv", model, path, resolve_db(db).resolve())
    con = open_raw(db)
    try:
        src = (
            f"read_csv({sql_list(files)}, header = false, delim = ',', "
            "columns = {'idx': 'BIGINT', 'score': 'DOUBLE'})"
        )
        try:
            con.execute(
                f"CREATE TEMP TABLE {STAGING} AS SELECT ?::VARCHAR AS revision, idx AS seq_idx, "
                "max(score) AS memorization_score, count(DISTINCT score) > 1 AS conflict, "
                f"count(*) AS copies FROM {src} GROUP BY idx",
                [revision],
            )
        except duckdb.Error as e:
            raise MemwhError(
                f"{path}: not a Pythia eval CSV (expected `idx,score` lines without header): "
                f"{_first(e)}"
            ) from None
        n, n_null_idx, n_neg, n_bad, n_conflict, n_dup, lo, hi = _rows(
            con,
            f"SELECT count(*), count_if(seq_idx IS NULL), count_if(seq_idx < 0), "
            f"count_if(memorization_score IS NULL OR memorization_score < 0 OR memorization_score > 1 "
            f"OR isnan(memorization_score)), count_if(conflict), coalesce(sum(copies - 1), 0), "
            f"min(seq_idx), max(seq_idx) FROM {STAGING}",
        )[0]
        if n == 0:
            raise MemwhError(f"{path}: the CSV files hold no rows")
        if n_null_idx or n_neg:
            raise MemwhError(
                f"{path}: {n_null_idx + n_neg} row(s) with an empty or negative idx; fix the CSVs"
            )
        if n_bad:
            raise MemwhError(f"{path}: {n_bad} score(s) outside [0, 1] or empty; fix the CSVs")
        if n_dup:
            result.notes.append(f"{n_dup:,} duplicate idx row(s) across ranks were merged")
        if n_conflict:
            result.notes.append(
                f"{n_conflict:,} idx value(s) had different scores across ranks; kept the larger"
            )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {STAGING} AS SELECT revision, seq_idx, "
            f"(CASE WHEN memorization_score >= 1 THEN {cont_len} WHEN memorization_score = 0 THEN 0 END)"
            f"::SMALLINT AS prefix_match_len, memorization_score >= 1 AS exact_match, "
            f"memorization_score::REAL AS memorization_score FROM {STAGING}"
        )
        fields = _unit_fields(
            model,
            revision,
            n_rows=n,
            seq_start=lo,
            seq_end=hi + 1,
            prompt_len=prompt_len,
            cont_len=cont_len,
            family=family,
            n_params=n_params,
            data_source=str(path),
            dataset=dataset,
        )
        fields["num_shards"] = len(files)
        _commit(con, result, {revision: fields})
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result


_INDEX_NAMES = ("seq_idx", "index", "idx")


def _index_source(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """SQL yielding one BIGINT column `seq_idx` from a Parquet, CSV or TXT list of indices."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            schema = pq.read_schema(path)
        except Exception as e:
            raise MemwhError(f"{path}: unreadable Parquet ({_first(e)})") from None
        names = [n for n in _INDEX_NAMES if n in schema.names]
        ints = [f.name for f in schema if pa.types.is_integer(f.type)]
        col = names[0] if names else (ints[0] if len(ints) == 1 else None)
        if col is None or not pa.types.is_integer(schema.field(col).type):
            raise MemwhError(
                f"{path}: no integer index column (looked for {', '.join(_INDEX_NAMES)}); "
                "rename the column holding the memorized indices to seq_idx"
            )
        return f'SELECT "{col}"::BIGINT AS seq_idx FROM read_parquet({sql_list([path])})'
    raw = f"read_csv({sql_list([path])}, header = false, all_varchar = true, auto_detect = true)"
    try:
        first = _rows(con, f"SELECT * FROM {raw} LIMIT 1")
        cols = [d[0] for d in con.execute(f"SELECT * FROM {raw} LIMIT 0").description]
    except duckdb.Error as e:
        raise MemwhError(f"{path}: cannot read as CSV/TXT ({_first(e)})") from None
    if not first:
        raise MemwhError(f"{path}: the file is empty")
    header = [str(v).strip().lower() if v is not None else "" for v in first[0]]
    has_header = not header[0].lstrip("-").isdigit()
    pick = cols[0]
    if has_header:
        for name in _INDEX_NAMES:
            if name in header:
                pick = cols[header.index(name)]
                break
    offset = "OFFSET 1" if has_header else ""
    return (
        f'SELECT TRY_CAST(trim("{pick}") AS BIGINT) AS seq_idx, "{pick}" AS raw_value '
        f"FROM (SELECT * FROM {raw} {offset})"
    )


def import_memorized_index(
    file: str | os.PathLike,
    *,
    model: str,
    revision: str,
    population: int,
    db: str | os.PathLike | None = None,
    seq_start: int = 0,
    prompt_len: int = 32,
    cont_len: int = 32,
    family: str | None = None,
    n_params: int | None = None,
    dataset: str | None = None,
) -> ImportResult:
    """A list of memorized indices out of a stated population -> one sparse unit."""
    t0 = time.perf_counter()
    path = Path(file).resolve()
    if not path.is_file():
        raise MemwhError(f"{path}: no such file; pass a .parquet, .csv or .txt list of indices")
    if population <= 0 or seq_start < 0:
        raise MemwhError(
            f"--population {population} / --seq-start {seq_start}: the scored population must be non-empty"
        )
    _check_lengths(prompt_len, cont_len)
    result = ImportResult("memorized-index", model, path, resolve_db(db).resolve())
    con = open_raw(db)
    try:
        src = _index_source(con, path)
        try:
            con.execute(f"CREATE TEMP TABLE _memwh_idx AS {src}")
        except duckdb.Error as e:
            raise MemwhError(f"{path}: cannot read the indices ({_first(e)})") from None
        has_raw = "raw_value" in [
            d[0] for d in con.execute("SELECT * FROM _memwh_idx LIMIT 0").description
        ]
        if has_raw:
            bad = _rows(
                con, "SELECT count(*), any_value(raw_value) FROM _memwh_idx WHERE seq_idx IS NULL"
            )[0]
            if bad[0]:
                raise MemwhError(
                    f"{path}: {bad[0]} line(s) are not integers (e.g. {bad[1]!r}); fix the file"
                )
        end = seq_start + population
        n_all, n_null, n_out, n, example = _rows(
            con,
            "SELECT count(*), count_if(seq_idx IS NULL), count_if(seq_idx < ? OR seq_idx >= ?), "
            "count(DISTINCT seq_idx), min(seq_idx) FILTER (WHERE seq_idx < ? OR seq_idx >= ?) FROM _memwh_idx",
            [seq_start, end, seq_start, end],
        )[0]
        if n_null:
            raise MemwhError(f"{path}: {n_null} empty index value(s); fix the file")
        if n_out:
            raise MemwhError(
                f"{path}: {n_out} index(es) outside the population [{seq_start}, {end}) "
                f"(e.g. {example}); pass the right --population / --seq-start"
            )
        if n_all > n:
            result.notes.append(f"{n_all - n:,} repeated index(es) were merged")
        con.execute(
            f"CREATE TEMP TABLE {STAGING} AS SELECT DISTINCT ?::VARCHAR AS revision, seq_idx, "
            f"{cont_len}::SMALLINT AS prefix_match_len, true AS exact_match, 1.0::REAL AS "
            "memorization_score FROM _memwh_idx",
            [revision],
        )
        fields = _unit_fields(
            model,
            revision,
            n_rows=n,
            seq_start=seq_start,
            seq_end=end,
            prompt_len=prompt_len,
            cont_len=cont_len,
            family=family,
            n_params=n_params,
            data_source=str(path),
            dataset=dataset,
        )
        _commit(
            con,
            result,
            {revision: fields},
            population={revision: population},
            sparse=True,
            sha256=contract.sha256_file(path),
        )
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result


_ANALYSIS_COLUMNS = ("index", "checkpoint", "longest_match", "overlap")


def import_pythia_analysis(
    file: str | os.PathLike,
    *,
    model: str,
    db: str | os.PathLike | None = None,
    family: str | None = "pythia",
    n_params: int | None = None,
    prompt_len: int = 32,
    cont_len: int = 256,
    sequences_per_step: int | None = 1024,
    tokens_per_step: int | None = 1024 * 2048,
    fix_full_match: bool = True,
    dataset: str = PYTHIA_DATASET,
    train_steps: int | None = PYTHIA_TRAIN_STEPS,
) -> ImportResult:
    """EleutherAI/pythia PR #161 analysis Parquet -> one unit per checkpoint (``step<N>``).

    Its indices are the model's pre-shuffled training order, so unless an exposure is already
    declared for (model, dataset), the import declares the rule first_step = seq_idx div
    sequences_per_step (see ingest/exposure.py) in the same transaction."""
    t0 = time.perf_counter()
    path = Path(file).resolve()
    if not path.is_file():
        raise MemwhError(f"{path}: no such file; pass the PR #161 analysis Parquet")
    _check_lengths(prompt_len, cont_len)
    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise MemwhError(f"{path}: unreadable Parquet ({_first(e)})") from None
    missing = [c for c in _ANALYSIS_COLUMNS if c not in schema.names]
    if missing:
        raise MemwhError(
            f"{path}: missing column(s) {', '.join(missing)}; is this the PR #161 analysis file?"
        )
    for c in _ANALYSIS_COLUMNS:
        if not pa.types.is_integer(schema.field(c).type):
            raise MemwhError(
                f"{path}: column {c} has type {schema.field(c).type}, expected an integer type"
            )
    if sequences_per_step:
        check_rule(sequences_per_step, train_steps)
    result = ImportResult("pythia-analysis", model, path, resolve_db(db).resolve())
    con = open_raw(db)
    try:
        src = f"read_parquet({sql_list([path])})"
        pml = (
            f"CASE WHEN overlap = {cont_len} THEN {cont_len} ELSE longest_match END"
            if fix_full_match
            else "longest_match"
        )
        con.execute(
            f"CREATE TEMP TABLE {STAGING} AS SELECT 'step' || checkpoint AS revision, "
            f"checkpoint::BIGINT AS step, index::BIGINT AS seq_idx, longest_match, overlap, "
            f"({pml})::SMALLINT AS prefix_match_len, ({pml}) >= {cont_len} AS exact_match, "
            f"(overlap / {cont_len})::REAL AS memorization_score FROM {src}"
        )
        n_null, n_bad, n_fixed = _rows(
            con,
            f"SELECT count_if(seq_idx IS NULL OR step IS NULL OR longest_match IS NULL OR overlap IS NULL), "
            f"count_if(longest_match < 0 OR longest_match > {cont_len} OR overlap < 0 "
            f"OR overlap > {cont_len} OR seq_idx < 0 OR step < 0), "
            f"count_if(overlap = {cont_len} AND longest_match < {cont_len}) FROM {STAGING}",
        )[0]
        if n_null:
            raise MemwhError(
                f"{path}: {n_null} row(s) with NULL index/checkpoint/longest_match/overlap"
            )
        if n_bad:
            raise MemwhError(
                f"{path}: {n_bad} row(s) with negative values or longest_match/overlap > "
                f"--cont-len {cont_len}; check --cont-len"
            )
        dups = _rows(
            con,
            f"SELECT count(*), any_value(seq_idx), any_value(revision) FROM (SELECT seq_idx, revision "
            f"FROM {STAGING} GROUP BY ALL HAVING count(*) > 1)",
        )[0]
        if dups[0]:
            raise MemwhError(
                f"{path}: {dups[0]} (index, checkpoint) pair(s) repeat (e.g. {dups[1]} at {dups[2]})"
            )
        if n_fixed:
            result.notes.append(
                f"{n_fixed:,} row(s) with overlap == {cont_len} but longest_match < {cont_len} "
                + (
                    f"stored as prefix_match_len = {cont_len} (the source's argmax-of-mismatch "
                    "gives 0 when nothing mismatches)"
                    if fix_full_match
                    else "kept as in the file (fix_full_match=False)"
                )
            )
        units = {}
        for rev, step, n, lo, hi in _rows(
            con,
            f"SELECT revision, any_value(step), count(*), min(seq_idx), max(seq_idx) FROM {STAGING} "
            "GROUP BY revision ORDER BY any_value(step)",
        ):
            units[rev] = _unit_fields(
                model,
                rev,
                n_rows=n,
                seq_start=lo,
                seq_end=hi + 1,
                prompt_len=prompt_len,
                cont_len=cont_len,
                family=family,
                n_params=n_params,
                step=step,
                sequences_per_step=sequences_per_step,
                tokens_per_step=tokens_per_step,
                data_source=str(path),
                dataset=dataset,
            )
        if not units:
            raise MemwhError(f"{path}: the file holds no rows")

        def rule(c: duckdb.DuckDBPyConnection) -> None:
            if sequences_per_step:
                declare_rule(
                    c,
                    model=model,
                    dataset=dataset,
                    sequences_per_step=sequences_per_step,
                    train_steps=train_steps,
                    source="pythia-analysis",
                    replace=False,
                )

        _commit(con, result, units, sha256=contract.sha256_file(path), also=rule)
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result
