"""`ingest_root`: load every completed, valid, new-or-changed shard under ROOT into raw.*.

Decisions (also in ingest/README.md):

* **Complete** = the manifest exists (the contract's completion marker). A part file without
  manifest is a running or killed job: listed as *incomplete*, not loaded, not an error
  (ingesting while an array job runs is normal) unless ``strict``.
* **Unchanged** files are recognised without reading them: raw.ingested_files is keyed by
  the Parquet path and stores size, mtime, sha256 and run_id. Same run_id + same
  size/mtime -> skipped (one stat and one small JSON read per file). Same run_id but other
  size/mtime -> re-hashed: same bytes -> only the mtime is updated; other bytes -> bad (the
  file changed behind its manifest). A new run_id at the same path (a ``--force`` rerun)
  -> the old run's rows and raw.runs row are deleted and the new file loaded, in one
  transaction. So time grows with new data, not with what is stored.
* **Validation** happens before loading (validate.py). A bad file is one line (file,
  problem, what to do) and is skipped while good files load; ``strict`` loads nothing
  when any file is bad or incomplete.
* **Setting**: every shard of a unit must have one extraction setting (dataset fingerprint,
  prompt lengths, cont_len, label class exact/fractional, EOS rule; validate.shard_setting).
  A shard contradicting the unit's other shards (already loaded, or earlier in path order) is
  bad, with one line naming the differing fields and the other file: rows of different
  settings never mix in a unit (STUDIES.md section 8). Score it under another --name instead.
* **Overlap**: two different shard files of one unit whose manifest ranges
  ``[seq_start, seq_end)`` intersect would duplicate seq_idx (e.g. a unit re-sharded with
  a different --num-shards while the old parts are still there). The file already in the
  database (or, within one batch, the first in path order) wins; the other is reported
  as bad. Rows are validated to lie inside their manifest range, so disjoint ranges
  guarantee no duplicate (model, revision, seq_idx).
* **Deleted shards**: rows of an ingested file that vanished from ROOT stay, reported as
  *gone*; ``prune=True`` removes them (in the first load transaction).
* **Transactions**: good files are loaded in batches (``batch_rows`` rows, all at once
  with ``strict``); each batch is one transaction: delete superseded runs, insert
  raw.runs rows, one ``INSERT INTO raw.score_rows SELECT ... FROM read_parquet([...])``
  per schema group, upsert raw.ingested_files, COMMIT. On an unexpected error the batch
  is rolled back and its files retried one per transaction, so one bad file cannot keep
  the others out and no file is ever half loaded.
* ``ROOT/sequences/<data_fingerprint>.parquet`` (per-sequence metadata) is loaded into
  raw.sequences once per file version; a changed file replaces that fingerprint's rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.store import (
    delete_runs,
    file_stat,
    insert_runs,
    next_run_keys,
    open_raw,
    record_files,
    run_record,
    scalar,
    transaction,
)
from memwh.ingest.validate import (
    RERUN,
    FileProblem,
    Invalid,
    Shard,
    check_checksum,
    check_contents,
    check_manifest,
    check_parquet,
    describe_setting_difference,
    ranges_overlap,
    schema_groups,
    shard_setting,
    sql_list,
)


@dataclass
class IngestReport:
    """What one `ingest_root` call did; `ok` is False when any file was bad."""

    root: Path
    db: Path
    files_loaded: int = 0
    files_replaced: int = 0
    files_unchanged: int = 0
    rows: int = 0
    rows_deleted: int = 0
    runs_pruned: int = 0
    sequence_files: int = 0
    sequence_rows: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind == "bad"]

    @property
    def incomplete(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind == "incomplete"]

    @property
    def gone(self) -> list[FileProblem]:
        return [p for p in self.problems if p.kind == "gone"]

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self) -> str:
        rate = (
            f" ({self.rows / self.seconds / 1e6:.1f}M rows/s)" if self.rows and self.seconds else ""
        )
        parts = [
            f"{self.files_loaded} file(s) loaded ({self.files_replaced} replaced)",
            f"{self.rows:,} rows",
            f"{self.files_unchanged} unchanged",
            f"{len(self.bad)} bad",
            f"{len(self.incomplete)} incomplete",
        ]
        if self.gone or self.runs_pruned:
            parts.append(f"{len(self.gone)} gone, {self.runs_pruned} pruned")
        if self.sequence_files:
            parts.append(f"{self.sequence_files} sequence file(s) ({self.sequence_rows:,} rows)")
        return (
            f"ingest {self.root} -> {self.db}: "
            + ", ".join(parts)
            + f" in {self.seconds:.1f}s{rate}"
        )


class IngestError(MemwhError):
    """`strict` ingest found bad or incomplete files; nothing was loaded. `.report` lists them."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


def _progress(enabled: bool, console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def _incomplete_parts(root: Path) -> list[FileProblem]:
    out = []
    for p in sorted((root / "scores").glob("model=*/revision=*/part-*-of-*.parquet")):
        if not contract.manifest_path_for(p).exists():
            out.append(
                FileProblem(
                    p,
                    "no manifest: the shard is still running or was killed",
                    "wait for it to finish, or rerun it (completed batches resume)",
                    kind="incomplete",
                )
            )
    return out


def _discover(
    root: Path, ingested: dict[str, tuple], runs_by_id: dict[str, int], report: IngestReport
) -> tuple[list[Shard], list[tuple[str, float]]]:
    """Manifests -> new/changed shards; unchanged ones are counted, bad ones reported."""
    candidates: list[Shard] = []
    touched: list[tuple[str, float]] = []
    for man in contract.iter_manifests(root):
        where = man
        try:
            try:
                m = contract.read_manifest(man)
            except contract.ContractError as e:
                raise Invalid(str(e).removeprefix(f"{man}: "), "") from None
            pq_path = check_manifest(man, m)
            where = pq_path
            if not pq_path.is_file():
                raise Invalid(f"the manifest {man.name} names this file, but it does not exist")
            size, mtime = file_stat(pq_path)
            prev = ingested.get(str(pq_path))
            if prev and prev[4] == m["run_id"]:
                if (prev[1], prev[2]) == (size, mtime):
                    report.files_unchanged += 1
                    continue
                if contract.sha256_file(pq_path) == prev[3]:  # touched, same bytes
                    touched.append((str(pq_path), mtime))
                    report.files_unchanged += 1
                    continue
                raise Invalid(
                    "the file changed after it was ingested but its manifest (run_id) did not"
                )
            replaces = None
            if prev and prev[4] in runs_by_id:
                replaces = (runs_by_id[prev[4]], prev[4])
            try:
                run = run_record(m, run_key=0, source="memwh", source_path=str(pq_path))
            except ValueError as e:
                raise Invalid(str(e)) from None
            candidates.append(Shard(man, pq_path, m, size, mtime, replaces, run))
        except Invalid as e:
            report.problems.append(FileProblem(where, e.problem, e.action))
    return candidates, touched


def _check_files(
    shards: list[Shard], verify_checksums: bool, progress: Progress, report: IngestReport
) -> list[Shard]:
    """Checksums (threaded: hashlib releases the GIL) and Parquet footers."""
    task = progress.add_task("checking shards", total=len(shards))

    def one(s: Shard) -> Invalid | None:
        try:
            if verify_checksums:
                s.sha256 = contract.sha256_file(s.parquet_path)
                check_checksum(s)
            else:
                s.sha256 = s.manifest.get("parquet_sha256")
            check_parquet(s)
        except Invalid as e:
            return e
        except OSError as e:
            return Invalid(f"cannot read the file ({e.strerror or e})")
        finally:
            progress.advance(task)
        return None

    good = []
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for s, err in zip(shards, pool.map(one, shards), strict=True):
            if err:
                report.problems.append(FileProblem(s.parquet_path, err.problem, err.action))
            else:
                good.append(s)
    return good


def _check_conflicts(
    shards: list[Shard], existing: list[tuple], dropped_keys: set[int], report: IngestReport
) -> list[Shard]:
    """run_id reuse, extraction setting and seq_idx range overlap within a unit (see module
    docstring)."""
    superseded = {s.replaces[0] for s in shards if s.replaces} | dropped_keys
    taken_ids: dict[str, str] = {}
    ranges: dict[tuple[str, str], list[tuple[tuple[int, int], str]]] = {}
    settings: dict[tuple[str, str], tuple[tuple, str]] = {}
    for run_key, run_id, model, revision, lo, hi, src, *setting in existing:
        if run_key in superseded:
            continue
        taken_ids[run_id] = src or "an earlier load"
        if lo is not None and hi is not None:
            ranges.setdefault((model, revision), []).append(((lo, hi), src or run_id))
        fp, plen, cont, mode, eos, lens = setting
        m = {"data_fingerprint": fp, "prompt_len": plen, "cont_len": cont, "mode": mode,
             "suppress_eos": eos, "prompt_lens": lens}  # fmt: skip
        settings.setdefault((model, revision), (shard_setting(m), src or run_id))
    good = []
    for s in sorted(shards, key=lambda s: str(s.parquet_path)):
        run_id = s.manifest["run_id"]
        rng = (s.manifest["seq_start"], s.manifest["seq_end"])
        if run_id in taken_ids:
            report.problems.append(
                FileProblem(
                    s.parquet_path,
                    f"run_id {run_id} was already loaded from {taken_ids[run_id]} (copied shard?)",
                    "remove the copy, or rerun the shard with --force to get a new run_id",
                )
            )
            continue
        mine = shard_setting(s.manifest)
        have, where = settings.get(s.unit, (mine, ""))
        if have != mine:
            report.problems.append(
                FileProblem(
                    s.parquet_path,
                    f"extraction setting ({describe_setting_difference(have, mine)}) contradicts "
                    f"{where} of the same unit {s.unit[0]}@{s.unit[1]}",
                    "score it into a separate unit (memwh infer --name) or another results "
                    "root, or replace the unit's other shards with --force",
                )
            )
            continue
        clash = next((src for r, src in ranges.get(s.unit, []) if ranges_overlap(r, rng)), None)
        if clash:
            report.problems.append(
                FileProblem(
                    s.parquet_path,
                    f"seq_idx range [{rng[0]}, {rng[1]}) overlaps {clash} of the same unit "
                    "(duplicate seq_idx; unit re-sharded?)",
                    "delete the stale shard files (then ingest with --prune if they were loaded)",
                )
            )
            continue
        taken_ids[run_id] = str(s.parquet_path)
        ranges.setdefault(s.unit, []).append((rng, str(s.parquet_path)))
        settings.setdefault(s.unit, (mine, str(s.parquet_path)))
        good.append(s)
    return good


# Version 1 files have no prompt_len column: their rows take the manifest's (k.prompt_len).
_INSERT_SQL = """
INSERT INTO raw.score_rows
SELECT k.run_key, s.seq_idx::BIGINT, {prompt_len}::SMALLINT, s.prefix_match_len::SMALLINT, s.exact_match,
       s.memorization_score::REAL, s.tf_token_accuracy::REAL, s.loss::REAL,
       s.min_k_logprob::REAL, s.zlib_ratio::REAL
FROM read_parquet({files}) AS s
JOIN _memwh_keys AS k USING (file_index)
"""


def _load_batch(
    con: duckdb.DuckDBPyConnection, batch: Sequence[Shard], drop_keys: Sequence[int]
) -> tuple[int, int]:
    """One transaction: delete superseded runs, insert runs + rows + ingested_files."""
    with transaction(con):
        deleted = delete_runs(con, [s.replaces[0] for s in batch if s.replaces] + list(drop_keys))
        for s, key in zip(batch, next_run_keys(con, len(batch)), strict=True):
            s.run["run_key"] = key
        insert_runs(con, [s.run for s in batch])
        inserted = 0
        for group in schema_groups(batch):
            keys = pa.table(
                {
                    "file_index": pa.array(range(len(group)), pa.int64()),
                    "run_key": pa.array([s.run["run_key"] for s in group], pa.int32()),
                    "prompt_len": pa.array([s.manifest["prompt_len"] for s in group], pa.int32()),
                }
            )
            con.register("_memwh_keys", keys)
            col = "s.prompt_len" if group[0].has_prompt_len_column else "k.prompt_len"
            try:
                n = scalar(
                    con,
                    _INSERT_SQL.format(
                        files=sql_list([s.parquet_path for s in group]), prompt_len=col
                    ),
                )
            finally:
                con.unregister("_memwh_keys")
            expected = sum(s.n_rows for s in group)
            if n != expected:  # the file changed between validation and load
                raise duckdb.InvalidInputException(f"inserted {n} rows, expected {expected}")
            inserted += int(n)
        record_files(
            con,
            [
                {
                    "path": str(s.parquet_path),
                    "kind": "scores",
                    "size": s.size,
                    "mtime": s.mtime,
                    "sha256": s.sha256,
                    "run_id": s.manifest["run_id"],
                    "n_rows": s.n_rows,
                }
                for s in batch
            ],
        )
    return inserted, deleted


def _batches(shards: list[Shard], batch_rows: int | None) -> list[list[Shard]]:
    if not batch_rows:
        return [shards] if shards else []
    out: list[list[Shard]] = []
    rows = 0
    for s in shards:
        if not out or rows + s.n_rows > batch_rows:
            out.append([])
            rows = 0
        out[-1].append(s)
        rows += s.n_rows
    return out


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _load(
    con: duckdb.DuckDBPyConnection,
    shards: list[Shard],
    drop_keys: list[int],
    batch_rows: int | None,
    progress: Progress,
    report: IngestReport,
    strict: bool,
) -> None:
    """Batches in their own transactions; a failed batch is retried file by file."""
    task = progress.add_task("loading rows", total=sum(s.n_rows for s in shards) or None)
    pending_drop = list(drop_keys)
    for batch in _batches(shards, batch_rows):
        try:
            loaded = [(batch, *_load_batch(con, batch, pending_drop))]
        except duckdb.Error as e:
            if strict:
                raise MemwhError(
                    f"loading failed, nothing was loaded (--strict): {_first_line(e)}"
                ) from None
            loaded = []
            retries = [[s] for s in batch] if len(batch) > 1 else []
            if not retries:
                report.problems.append(
                    FileProblem(batch[0].parquet_path, f"load failed ({_first_line(e)})", RERUN)
                )
            for one in retries:
                try:
                    loaded.append((one, *_load_batch(con, one, pending_drop)))
                    pending_drop = []
                except duckdb.Error as e1:
                    report.problems.append(
                        FileProblem(one[0].parquet_path, f"load failed ({_first_line(e1)})", RERUN)
                    )
        if loaded:
            pending_drop = []
        for group, inserted, deleted in loaded:
            report.files_loaded += len(group)
            report.files_replaced += sum(1 for s in group if s.replaces)
            report.rows += inserted
            report.rows_deleted += deleted
        progress.advance(task, sum(s.n_rows for s in batch))
    if pending_drop:  # nothing to load, but --prune still applies
        with transaction(con):
            report.rows_deleted += delete_runs(con, pending_drop)


def _load_sequences(con: duckdb.DuckDBPyConnection, root: Path, report: IngestReport) -> None:
    """ROOT/sequences/<fingerprint>.parquet -> raw.sequences, once per file version."""
    files = sorted((root / "sequences").glob("*.parquet"))
    if not files:
        return
    known = {
        p: (size, mtime)
        for p, size, mtime in con.execute(
            "SELECT path, size, mtime FROM raw.ingested_files WHERE kind = 'sequences'"
        ).fetchall()
    }
    for p in files:
        size, mtime = file_stat(p)
        if known.get(str(p)) == (size, mtime):
            continue
        try:
            try:
                schema = pq.read_schema(p)
            except Exception as e:
                raise Invalid(
                    f"unreadable Parquet ({str(e).splitlines()[0]})", "rewrite it"
                ) from None
            cols = {"seq_idx": "integer", "duplicates": "integer", "is_canary": "boolean"}
            kinds = {"integer": pa.types.is_integer, "boolean": pa.types.is_boolean}
            if "seq_idx" not in schema.names:
                raise Invalid(
                    "missing column seq_idx", "rewrite it with contract.SEQUENCE_META_SCHEMA"
                )
            for c, k in cols.items():
                if c in schema.names and not kinds[k](schema.field(c).type):
                    raise Invalid(
                        f"column {c} has type {schema.field(c).type}, expected {k}", "rewrite it"
                    )
            src = f"read_parquet({sql_list([p])})"
            n, n_seq, n_distinct = con.execute(
                f"SELECT count(*), count(seq_idx), count(DISTINCT seq_idx) FROM {src}"
            ).fetchall()[0]
            if n_seq != n or n_distinct != n:
                raise Invalid(
                    f"seq_idx has {n - n_seq} NULL and {n_seq - n_distinct} duplicate value(s)",
                    "rewrite it",
                )
            dup = "duplicates::INTEGER" if "duplicates" in schema.names else "NULL"
            can = "is_canary" if "is_canary" in schema.names else "NULL"
            with transaction(con):
                con.execute("DELETE FROM raw.sequences WHERE data_fingerprint = ?", [p.stem])
                con.execute(
                    f"INSERT INTO raw.sequences SELECT ?, seq_idx::BIGINT, {dup}, {can} FROM {src}",
                    [p.stem],
                )
                record_files(
                    con,
                    [
                        {
                            "path": str(p),
                            "kind": "sequences",
                            "size": size,
                            "mtime": mtime,
                            "sha256": contract.sha256_file(p),
                            "run_id": None,
                            "n_rows": n,
                        }
                    ],
                )
            report.sequence_files += 1
            report.sequence_rows += n
        except Invalid as e:
            report.problems.append(FileProblem(p, e.problem, e.action))
        except duckdb.Error as e:
            report.problems.append(
                FileProblem(p, f"cannot load ({str(e).splitlines()[0]})", "rewrite it")
            )


def ingest_root(
    root: str | os.PathLike,
    db: str | os.PathLike | None = None,
    *,
    strict: bool = False,
    progress: bool = True,
    prune: bool = False,
    verify_checksums: bool = True,
    batch_rows: int | None = 50_000_000,
    threads: int | None = None,
    memory_limit: str | None = None,
    console: Console | None = None,
) -> IngestReport:
    """Load every completed shard under ROOT not yet in the database (see module docstring).

    Returns a report (bad files listed, `report.ok` False) instead of raising, so one bad
    shard does not block the rest; `strict=True` raises IngestError and loads nothing.
    """
    t0 = time.perf_counter()
    root = Path(root).resolve()
    if not root.is_dir():
        raise MemwhError(f"{root}: no such folder; pass the --out folder of `memwh infer`")
    if not (root / "scores").is_dir() and not (root / "sequences").is_dir():
        raise MemwhError(
            f"{root}: no scores/ folder here (expected scores/model=*/revision=*/part-*.parquet); "
            "pass the --out folder of `memwh infer`"
        )
    report = IngestReport(root=root, db=resolve_db(db).resolve())
    con = open_raw(db, threads=threads, memory_limit=memory_limit)
    try:
        ingested = {
            r[0]: r
            for r in con.execute(
                "SELECT path, size, mtime, sha256, run_id FROM raw.ingested_files WHERE kind = 'scores'"
            ).fetchall()
        }
        existing = con.execute(
            "SELECT run_key, run_id, model, revision, seq_start, seq_end, source_path, "
            "data_fingerprint, prompt_len, cont_len, mode, suppress_eos, "
            "CAST(manifest -> 'prompt_lens' AS VARCHAR) FROM raw.runs"
        ).fetchall()
        runs_by_id = {r[1]: r[0] for r in existing}
        key_by_path = {r[6]: r[0] for r in existing if r[6]}

        report.problems += _incomplete_parts(root)
        candidates, touched = _discover(root, ingested, runs_by_id, report)

        drop_keys: list[int] = []
        prefix = str(root) + os.sep
        for path in sorted(p for p in ingested if p.startswith(prefix)):
            if not Path(path).exists():
                if prune and path in key_by_path:
                    drop_keys.append(key_by_path[path])
                    report.runs_pruned += 1
                else:
                    report.problems.append(
                        FileProblem(
                            Path(path),
                            "was ingested but is gone from disk; its rows stay in the database",
                            "run `memwh ingest ROOT --prune` to drop them",
                            kind="gone",
                        )
                    )

        with _progress(progress, console) as prog:
            good = _check_files(candidates, verify_checksums, prog, report)
            if good:
                task = prog.add_task("validating rows", total=None)
                try:
                    problems = check_contents(con, good)
                except duckdb.Error as e:
                    raise MemwhError(
                        f"{root}: validation query failed ({str(e).splitlines()[0]})"
                    ) from None
                prog.update(task, total=1, completed=1)
                for i, err in problems.items():
                    report.problems.append(
                        FileProblem(good[i].parquet_path, err.problem, err.action)
                    )
                good = [s for i, s in enumerate(good) if i not in problems]
            good = _check_conflicts(good, existing, set(drop_keys), report)

            if strict and (report.bad or report.incomplete):
                report.seconds = time.perf_counter() - t0
                n = len(report.bad) + len(report.incomplete)
                raise IngestError(
                    f"{n} bad or incomplete file(s) under {root}; nothing was loaded (--strict). "
                    f"First: {(report.bad or report.incomplete)[0].line()}",
                    report,
                )
            if touched:
                with transaction(con):
                    con.executemany(
                        "UPDATE raw.ingested_files SET mtime = ? WHERE path = ?",
                        [(mt, p) for p, mt in touched],
                    )
            _load(con, good, drop_keys, None if strict else batch_rows, prog, report, strict)
        _load_sequences(con, root, report)
    finally:
        con.close()
    report.seconds = time.perf_counter() - t0
    return report
