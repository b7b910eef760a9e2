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
* **Unit** = (model, revision, dataset), dataset = the manifest's data_fingerprint
  (contract.NO_DATASET when it names none): one checkpoint scored on two datasets (e.g. two
  --out roots ingested into one database) is two units, both stored; the checks below are per
  unit, so they never compare shards of two datasets.
* **Setting**: every shard of a unit must have one extraction setting (prompt lengths,
  cont_len, mode, EOS rule) and the same dtype, weights and model facts
  (validate.UNIT_SETTINGS). A shard contradicting the unit's other shards (already loaded, or
  earlier in path order) is bad, with one line naming the differing fields and the other file:
  rows of different settings never mix in a unit (STUDIES.md section 8). Score it under another
  --name instead.
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
* ``generated_tokens`` (generate-mode shards saved with --save-generations) go to
  raw.generation_rows in the shard's own transaction (replaced and pruned with its run).
* ``ROOT/sequences/<data_fingerprint>/windows-*.parquet`` (the scored token windows) go to
  raw.sequence_windows once per (data_fingerprint, seq_idx), whichever units scored them;
  a wider window replaces a narrower one. ``windows="memorized"`` keeps only the windows of
  sequences some unit of that dataset matched exactly (Pythia scale: ~0.3 GB instead of
  ~15 GB, see docs/ingest.md); it re-checks on every ingest, reading a file only when a
  newly memorized sequence of its range is missing. ``"none"`` loads no windows.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memwh.core import contract
from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError
from memwh.ingest.roles import check_graph, stored_units, variant_edges
from memwh.ingest.store import (
    delete_runs,
    file_stat,
    insert_runs,
    next_run_keys,
    open_raw,
    record_files,
    registered,
    run_record,
    scalar,
    transaction,
)
from memwh.ingest.validate import (
    RERUN,
    UNIT_SETTINGS,
    FileProblem,
    Invalid,
    Shard,
    check_checksum,
    check_contents,
    check_manifest,
    check_parquet,
    dataset_of,
    one_line,
    ranges_overlap,
    schema_groups,
    settings_diff,
    sql_list,
    unit_settings,
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
    window_rows: int = 0
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
        if self.window_rows:
            parts.append(f"{self.window_rows:,} token windows")
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


UNREADABLE = "fix its permissions (e.g. chmod -R g+rX) or ingest as a user who can read it"


def _scan(folder: Path, report: IngestReport) -> list[os.DirEntry]:
    """Entries of `folder`, sorted; an unreadable folder is a bad-file problem, never skipped
    in silence (its shards would be missing from the warehouse without a word)."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as e:
        report.problems.append(
            FileProblem(folder, f"cannot read this folder ({e.strerror or e})", UNREADABLE)
        )
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walk(root: Path, report: IngestReport) -> list[Path]:
    """Manifests under ROOT/scores/model=*/revision=*/ in path order; part files without a
    manifest are reported as incomplete, unreadable folders as bad."""
    manifests: list[Path] = []
    for model in _scan(root / "scores", report):
        if not (model.name.startswith("model=") and _is_dir(model)):
            continue
        for rev in _scan(Path(model.path), report):
            if not (rev.name.startswith("revision=") and _is_dir(rev)):
                continue
            entries = _scan(Path(rev.path), report)
            names = {e.name for e in entries}
            for e in entries:
                if fnmatchcase(e.name, "part-*-of-*.manifest.json"):
                    manifests.append(Path(e.path))
                elif (
                    fnmatchcase(e.name, "part-*-of-*.parquet")
                    and e.name.removesuffix(".parquet") + ".manifest.json" not in names
                ):
                    report.problems.append(
                        FileProblem(
                            Path(e.path),
                            "no manifest: the shard is still running or was killed",
                            "wait for it to finish, or rerun it (completed batches resume)",
                            kind="incomplete",
                        )
                    )
    return manifests


def _gone(path: str) -> bool | None:
    """True when an ingested file no longer exists, None when it cannot be checked (its
    folder is unreadable: reported by the walk, its rows stay)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return None
    return False


def _discover(
    root: Path, ingested: dict[str, tuple], runs_by_id: dict[str, int], report: IngestReport
) -> tuple[list[Shard], list[tuple[str, float]]]:
    """Manifests -> new/changed shards; unchanged ones are counted, bad ones reported."""
    candidates: list[Shard] = []
    touched: list[tuple[str, float]] = []
    for man in _walk(root, report):
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
            run.update(contract.check_role_fields(m))  # canonical method_params JSON
            candidates.append(Shard(man, pq_path, m, size, mtime, replaces, run))
        except Invalid as e:
            report.problems.append(FileProblem(where, e.problem, e.action))
        except OSError as e:  # e.g. a folder that can be listed but not entered
            report.problems.append(
                FileProblem(where, f"cannot read ({e.strerror or e})", UNREADABLE)
            )
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
            return Invalid(f"cannot read the file ({e.strerror or e})", UNREADABLE)
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


def _existing_settings(
    con: duckdb.DuckDBPyConnection, units: set[tuple[str, str, str]], skip: set[int]
) -> dict[tuple[str, str, str], tuple[dict, str]]:
    """UNIT_SETTINGS of one stored run per unit in `units` (not in `skip`): what new shards
    of that unit must match. Reads only those units' manifests."""
    if not units:
        return {}
    keys = pa.table(
        {
            "model": [u[0] for u in units],
            "revision": [u[1] for u in units],
            "dataset": [u[2] for u in units],
        }
    )
    cols = ", ".join(f"r.manifest->'$.{k}' AS {k}" for k in UNIT_SETTINGS)
    with registered(con, "_memwh_units", keys):
        rows = con.execute(
            f"SELECT r.run_key, r.model, r.revision, u.dataset, "
            f"coalesce(r.source_path, r.run_id), {cols} "
            "FROM raw.runs AS r JOIN _memwh_units AS u ON u.model = r.model "
            "AND u.revision = r.revision AND u.dataset = coalesce(r.data_fingerprint, ?) "
            "ORDER BY r.run_key",
            [contract.NO_DATASET],
        ).fetchall()
    out: dict[tuple[str, str, str], tuple[dict, str]] = {}
    for run_key, model, revision, dataset, src, *values in rows:
        if run_key in skip or (model, revision, dataset) in out:
            continue
        settings = {
            k: (json.loads(v) if v is not None else None)
            for k, v in zip(UNIT_SETTINGS, values, strict=True)
        }
        out[(model, revision, dataset)] = (settings, src)
    return out


def _check_conflicts(
    shards: list[Shard],
    existing: list[tuple],
    dropped_keys: set[int],
    report: IngestReport,
    stored_settings: dict[tuple[str, str, str], tuple[dict, str]] | None = None,
) -> list[Shard]:
    """run_id reuse, seq_idx range overlap, and settings that differ within a unit, the
    extraction setting among them (see module docstring). `stored_settings`:
    _existing_settings() of the units in `shards`."""
    superseded = {s.replaces[0] for s in shards if s.replaces} | dropped_keys
    taken_ids: dict[str, str] = {}
    ranges: dict[tuple[str, str, str], list[tuple[tuple[int, int], str]]] = {}
    for run_key, run_id, model, revision, lo, hi, src, fingerprint, *_ in existing:
        if run_key in superseded:
            continue
        taken_ids[run_id] = src or "an earlier load"
        if lo is not None and hi is not None:
            unit = (model, revision, dataset_of(fingerprint))
            ranges.setdefault(unit, []).append(((lo, hi), src or run_id))
    settings = dict(stored_settings or {})
    good = []
    for s in sorted(shards, key=lambda s: str(s.parquet_path)):
        mine = unit_settings(s.manifest)
        if s.unit in settings and (diff := settings_diff(mine, settings[s.unit][0])):
            report.problems.append(
                FileProblem(
                    s.parquet_path,
                    f"settings differ from {settings[s.unit][1]} of the same unit ({diff}); "
                    "one unit holds one run's settings",
                    "rerun this shard with the unit's settings (--force), or score it into "
                    "another unit with --name",
                )
            )
            continue
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


_GENERATIONS_SQL = """
INSERT INTO raw.generation_rows
SELECT k.run_key, s.seq_idx::BIGINT, s.generated_tokens::INTEGER[]
FROM read_parquet({files}) AS s
JOIN _memwh_keys AS k USING (file_index)
"""


def _check_variants(
    con: duckdb.DuckDBPyConnection, shards: list[Shard], report: IngestReport
) -> list[Shard]:
    """variant_of must name a unit stored or loaded now, without a cycle (ingest/roles.py)."""
    if not any(s.run.get("variant_of") for s in shards):
        return shards
    known = stored_units(con) | {s.checkpoint for s in shards}
    edges = variant_edges(con)
    declared = {
        (m, r) for m, r in con.execute("SELECT model, revision FROM raw.unit_roles").fetchall()
    }
    new = {
        s.checkpoint: contract.parse_unit_ref(s.run["variant_of"])
        for s in shards
        if s.run.get("variant_of") and s.checkpoint not in declared
    }
    refused: dict[tuple[str, str], str] = {}
    while (problem := check_graph(new, known, edges)) is not None:
        refused[problem[0]] = problem[1]  # then its variants lose their base too
        new.pop(problem[0])
        known.discard(problem[0])
    good = []
    for s in shards:
        if s.checkpoint in refused:
            report.problems.append(
                FileProblem(
                    s.parquet_path,
                    refused[s.checkpoint],
                    "ingest the base unit first, or fix --variant-of and rerun the shard",
                )
            )
        else:
            good.append(s)
    return good


# Version 1 files have no prompt_len column: their rows take the manifest's (k.prompt_len).
# Versions 1 and 2 have no label certainty columns: NULL (unknown).
_INSERT_SQL = """
INSERT INTO raw.score_rows
SELECT k.run_key, s.seq_idx::BIGINT, {prompt_len}::SMALLINT, s.prefix_match_len::SMALLINT, s.exact_match,
       s.memorization_score::REAL, s.tf_token_accuracy::REAL, s.loss::REAL,
       s.min_k_logprob::REAL, s.zlib_ratio::REAL, {certainty}
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
            col = "s.prompt_len" if group[0].has_prompt_len_column else "k.prompt_len"
            certainty = (
                "s.label_margin::REAL, s.label_certain, s.label_verified"
                if group[0].has_certainty_columns
                else "NULL::REAL, NULL::BOOLEAN, NULL::BOOLEAN"
            )
            with registered(con, "_memwh_keys", keys):
                n = scalar(
                    con,
                    _INSERT_SQL.format(
                        files=sql_list([s.parquet_path for s in group]),
                        prompt_len=col,
                        certainty=certainty,
                    ),
                )
            expected = sum(s.n_rows for s in group)
            if n != expected:  # the file changed between validation and load
                raise duckdb.InvalidInputException(f"inserted {n} rows, expected {expected}")
            inserted += int(n)
            gens = [
                s
                for s in group
                if contract.GENERATIONS_FIELD.name in pq.read_schema(s.parquet_path).names
            ]
            if gens:
                keys = pa.table(
                    {
                        "file_index": pa.array(range(len(gens)), pa.int64()),
                        "run_key": pa.array([s.run["run_key"] for s in gens], pa.int32()),
                    }
                )
                con.register("_memwh_keys", keys)
                try:
                    con.execute(
                        _GENERATIONS_SQL.format(files=sql_list([s.parquet_path for s in gens]))
                    )
                finally:
                    con.unregister("_memwh_keys")
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
    return one_line(str(e)) or type(e).__name__


def _file_error(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Read every column of `path` outside any transaction: the file's own error, or None
    when it reads fine (a load of it that failed is then the database's fault)."""
    try:
        con.execute(
            f"SELECT count(*), max(COLUMNS(*)) FROM read_parquet({sql_list([path])})"
        ).fetchall()
    except duckdb.Error as e:
        return _first_line(e)
    return None


def _database_error(db: Path, e: BaseException, strict: bool) -> MemwhError:
    done = "nothing was loaded" if strict else "the files reported loaded above are committed"
    return MemwhError(
        f"{db}: writing to the database failed ({_first_line(e)}); {done}, the rest was not; "
        "check free disk space and the file's permissions, then rerun `memwh ingest`"
    )


def _load(
    con: duckdb.DuckDBPyConnection,
    shards: list[Shard],
    drop_keys: list[int],
    batch_rows: int | None,
    progress: Progress,
    report: IngestReport,
    strict: bool,
) -> None:
    """Batches in their own transactions; a failed batch is retried file by file. A file
    that fails is re-read on its own: unreadable -> reported bad (the others still load);
    readable -> the database is at fault and ingest stops with one line."""
    task = progress.add_task("loading rows", total=sum(s.n_rows for s in shards) or None)
    pending_drop = list(drop_keys)
    for batch in _batches(shards, batch_rows):
        try:
            loaded = [(batch, *_load_batch(con, batch, pending_drop))]
        except duckdb.Error as e:
            if strict:
                bad = next(
                    ((s, err) for s in batch if (err := _file_error(con, s.parquet_path))), None
                )
                if bad is None:
                    raise _database_error(report.db, e, strict) from None
                raise MemwhError(
                    f"loading failed, nothing was loaded (--strict): {bad[0].parquet_path}: "
                    f"unreadable Parquet ({bad[1]}); {RERUN}"
                ) from None
            loaded = []
            for one in [[s] for s in batch] if len(batch) > 1 else [batch]:
                try:
                    loaded.append((one, *_load_batch(con, one, pending_drop)))
                    pending_drop = []
                except duckdb.Error as e1:
                    err = _file_error(con, one[0].parquet_path)
                    if err is None:
                        raise _database_error(report.db, e1, strict) from None
                    report.problems.append(
                        FileProblem(one[0].parquet_path, f"unreadable Parquet ({err})", RERUN)
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


@dataclass
class _SeqFile:
    path: Path
    size: int
    mtime: float
    n_rows: int
    select: str  # after the fingerprint: seq_idx, SEQUENCE_META_COLUMNS, extra


def _check_sequences(
    con: duckdb.DuckDBPyConnection, root: Path, report: IngestReport
) -> list[_SeqFile]:
    """New or changed ROOT/sequences/<fingerprint>.parquet files that pass validation (run
    before anything loads, so --strict can refuse the whole batch for a bad one)."""
    files = [Path(e.path) for e in _scan(root / "sequences", report) if e.name.endswith(".parquet")]
    if not files:
        return []
    known = {
        p: (size, mtime)
        for p, size, mtime in con.execute(
            "SELECT path, size, mtime FROM raw.ingested_files WHERE kind = 'sequences'"
        ).fetchall()
    }
    good = []
    for p in files:
        try:
            size, mtime = file_stat(p)
            if known.get(str(p)) == (size, mtime):
                continue
            try:
                schema = pq.read_schema(p)
            except PermissionError:
                raise
            except Exception as e:
                raise Invalid(f"unreadable Parquet ({one_line(str(e))})", "rewrite it") from None
            cols = {
                "seq_idx": "integer",
                "duplicates": "integer",
                "is_canary": "boolean",
                "category": "string",
                "insert_first_step": "integer",
                "insert_last_step": "integer",
                contract.SEQUENCE_EXTRA_FIELD.name: "string",  # JSON of --keep-columns
            }
            kinds = {
                "integer": pa.types.is_integer,
                "boolean": pa.types.is_boolean,
                "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
            }
            if "seq_idx" not in schema.names:
                raise Invalid(
                    "missing column seq_idx", "rewrite it with contract.SEQUENCE_META_SCHEMA"
                )
            for c, k in cols.items():
                if c in schema.names and not kinds[k](schema.field(c).type):
                    raise Invalid(
                        f"column {c} has type {schema.field(c).type}, expected {k}", "rewrite it"
                    )
            has_dup = "duplicates" in schema.names
            n, n_seq, n_distinct, n_neg = con.execute(
                f"SELECT count(*), count(seq_idx), count(DISTINCT seq_idx), "
                f"count_if(seq_idx < 0{' OR duplicates < 0' if has_dup else ''}) "
                f"FROM read_parquet({sql_list([p])})"
            ).fetchall()[0]
            if n_seq != n or n_distinct != n:
                raise Invalid(
                    f"seq_idx has {n - n_seq} NULL and {n_seq - n_distinct} duplicate value(s)",
                    "rewrite it",
                )
            if n_neg:
                raise Invalid(f"{n_neg} row(s) with a negative seq_idx or duplicates", "rewrite it")
            types = {"integer": "BIGINT", "boolean": "BOOLEAN", "string": "VARCHAR"}
            exprs = ", ".join(
                f"{c}::{types[cols[c]]}" if c in schema.names else "NULL"
                for c in contract.SEQUENCE_META_COLUMNS
            )
            extra = contract.SEQUENCE_EXTRA_FIELD.name
            exprs += f", {extra}::JSON" if extra in schema.names else ", NULL"
            good.append(_SeqFile(p, size, mtime, n, f"seq_idx::BIGINT, {exprs}"))
        except Invalid as e:
            report.problems.append(FileProblem(p, e.problem, e.action))
        except OSError as e:
            report.problems.append(FileProblem(p, f"cannot read ({e.strerror or e})", UNREADABLE))
        except duckdb.Error as e:
            report.problems.append(
                FileProblem(p, f"unreadable Parquet ({_first_line(e)})", "rewrite it")
            )
    return good


def _load_sequences(
    con: duckdb.DuckDBPyConnection, files: list[_SeqFile], report: IngestReport, strict: bool
) -> None:
    """Checked sequence files -> raw.sequences (a changed file replaces its fingerprint's rows)."""
    for f in files:
        try:
            with transaction(con):
                con.execute("DELETE FROM raw.sequences WHERE data_fingerprint = ?", [f.path.stem])
                con.execute(
                    "INSERT INTO raw.sequences (data_fingerprint, seq_idx, "
                    f"{', '.join(contract.SEQUENCE_META_COLUMNS)}, "
                    f"{contract.SEQUENCE_EXTRA_FIELD.name}) SELECT ?, {f.select} "
                    f"FROM read_parquet({sql_list([f.path])})",
                    [f.path.stem],
                )
                record_files(
                    con,
                    [
                        {
                            "path": str(f.path),
                            "kind": "sequences",
                            "size": f.size,
                            "mtime": f.mtime,
                            "sha256": contract.sha256_file(f.path),
                            "run_id": None,
                            "n_rows": f.n_rows,
                        }
                    ],
                )
        except duckdb.Error as e:
            err = _file_error(con, f.path)
            if err is None:
                raise _database_error(report.db, e, strict) from None
            report.problems.append(FileProblem(f.path, f"unreadable Parquet ({err})", "rewrite it"))
            continue
        report.sequence_files += 1
        report.sequence_rows += f.n_rows


WINDOW_MODES = ("all", "memorized", "none")

# A sequence counts as memorized for windows="memorized" when any unit of the dataset matched
# its whole continuation (imports without prefix_match_len: score 1).
_MEMORIZED_IN_RANGE = """
SELECT DISTINCT s.seq_idx FROM raw.score_rows s JOIN raw.runs r USING (run_key)
WHERE r.data_fingerprint = $fp AND s.seq_idx >= $lo AND s.seq_idx < $hi
  AND coalesce(s.exact_match, s.memorization_score >= 1, false)
"""


def _window_files(root: Path) -> list[tuple[Path, tuple[int, int, int]]]:
    out = []
    for p in sorted((root / "sequences").glob("*/windows-*.parquet")):
        parsed = contract.parse_windows_name(p.name)
        if parsed:
            out.append((p, parsed))
    return out


def _load_windows(
    con: duckdb.DuckDBPyConnection, root: Path, report: IngestReport, keep: str
) -> None:
    """ROOT/sequences/<fp>/windows-*.parquet -> raw.sequence_windows (see module docstring)."""
    if keep == "none":
        return
    known = {
        p: (size, mtime)
        for p, size, mtime in con.execute(
            "SELECT path, size, mtime FROM raw.ingested_files WHERE kind = 'windows'"
        ).fetchall()
    }
    for p, (width, lo, hi) in _window_files(root):
        size, mtime = file_stat(p)
        fp = p.parent.name
        params: dict = {"fp": fp, "lo": lo, "hi": hi}
        if keep == "all":
            if known.get(str(p)) == (size, mtime):
                continue
            wanted = "TRUE"
            params = {"fp": fp}
        else:
            missing = con.execute(
                f"SELECT count(*) FROM ({_MEMORIZED_IN_RANGE}) m ANTI JOIN "
                "(SELECT seq_idx FROM raw.sequence_windows WHERE data_fingerprint = $fp "
                f"AND len(tokens) >= {width}) w USING (seq_idx)",
                params,
            ).fetchall()[0][0]
            if not missing:
                continue
            wanted = f"f.seq_idx IN ({_MEMORIZED_IN_RANGE})"
        try:
            try:
                schema = pq.read_schema(p)
            except Exception as e:
                raise Invalid(
                    f"unreadable Parquet ({str(e).splitlines()[0]})", "delete it; rerun a shard"
                ) from None
            ok = (
                "seq_idx" in schema.names
                and pa.types.is_integer(schema.field("seq_idx").type)
                and "tokens" in schema.names
                and pa.types.is_list(schema.field("tokens").type)
                and pa.types.is_integer(schema.field("tokens").type.value_type)
            )
            if not ok:
                raise Invalid(
                    "not a windows file (needs seq_idx integer, tokens list<integer>)",
                    "delete it; a memwh job rewrites it (contract.WINDOW_SCHEMA)",
                )
            src = f"(SELECT seq_idx::BIGINT AS seq_idx, tokens::INTEGER[] AS tokens FROM read_parquet({sql_list([p])}))"
            with transaction(con):
                con.execute(
                    f"DELETE FROM raw.sequence_windows w USING {src} f WHERE "
                    f"w.data_fingerprint = $fp AND w.seq_idx = f.seq_idx "
                    f"AND len(w.tokens) < len(f.tokens) AND {wanted}",
                    params,
                )
                n = scalar(
                    con,
                    f"INSERT INTO raw.sequence_windows SELECT $fp, f.seq_idx, f.tokens FROM {src} f "
                    f"WHERE {wanted} AND f.seq_idx NOT IN (SELECT seq_idx FROM raw.sequence_windows "
                    "WHERE data_fingerprint = $fp)",
                    params,
                )
                record_files(
                    con,
                    [
                        {
                            "path": str(p),
                            "kind": "windows",
                            "size": size,
                            "mtime": mtime,
                            "sha256": None,
                            "run_id": None,
                            "n_rows": int(n or 0),
                        }
                    ],
                )
            report.window_rows += int(n or 0)
        except Invalid as e:
            report.problems.append(FileProblem(p, e.problem, e.action))
        except duckdb.Error as e:
            report.problems.append(
                FileProblem(
                    p, f"cannot load ({str(e).splitlines()[0]})", "delete it; rerun a shard"
                )
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
    windows: str = "all",
) -> IngestReport:
    """Load every completed shard under ROOT not yet in the database (see module docstring).

    Returns a report (bad files listed, `report.ok` False) instead of raising, so one bad
    shard does not block the rest; `strict=True` raises IngestError and loads nothing.
    """
    t0 = time.perf_counter()
    if windows not in WINDOW_MODES:
        raise MemwhError(f"--windows {windows!r}: use one of {', '.join(WINDOW_MODES)}")
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

        candidates, touched = _discover(root, ingested, runs_by_id, report)

        drop_keys: list[int] = []
        prefix = str(root) + os.sep
        for path in sorted(p for p in ingested if p.startswith(prefix)):
            if _gone(path):
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
            superseded = {s.replaces[0] for s in good if s.replaces} | set(drop_keys)
            stored = _existing_settings(con, {s.unit for s in good}, superseded)
            good = _check_conflicts(good, existing, set(drop_keys), report, stored)
            good = _check_variants(con, good, report)

            seq_files = _check_sequences(con, root, report)
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
            _load_sequences(con, seq_files, report, strict)
            _load_windows(con, root, report, windows)
    finally:
        con.close()
    report.seconds = time.perf_counter() - t0
    return report
