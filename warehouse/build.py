"""Run `dbt build` on the warehouse project in-process, with readable errors.

dbt's own output is kept (users know it); the failures users actually hit (nothing ingested,
database held by another process) become one-line MemwhErrors instead of dbt stack dumps.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from memwh.core.config import dbt_target_dir, resolve_db
from memwh.core.db import BUILDS_DDL, BUILDS_TABLE, connect, is_lock_error, lock_message
from memwh.core.errors import MemwhError

WAREHOUSE_DIR = Path(__file__).resolve().parent
NOTHING_INGESTED = "no scores ingested yet: run `memwh ingest ROOT` first"
# Where builds record the project fingerprints their unit tests passed with.
UNIT_TESTS_STAMP = "memwh_unit_tests_passed.json"
# What unit-test outcomes can depend on besides versions and the raw layer's column types:
# the project's code and fixtures. Stamps of the last few passing fingerprints are kept, so
# switching between warehouses (or vars) back and forth does not rerun them every time.
_PROJECT_CODE = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests")
_STAMPS_KEPT = 32


@dataclass
class NodeResult:
    name: str
    resource_type: str  # model | test | seed | unit_test
    status: str
    seconds: float
    message: str = ""


@dataclass
class Unlabelable:
    """Units whose continuation is shorter than memorized_min_tokens: no row can reach the
    prefix_match rule, so the warehouse leaves them out of every model rather than label all
    their rows "not memorized" (macros/labels.sql can_label)."""

    min_tokens: int
    units: list[tuple[str, str, int]]  # (model, revision, cont_len)
    rows: int

    def line(self) -> str:
        shown = ", ".join(f"{m}@{r} (cont_len {c})" for m, r, c in self.units[:5])
        more = f" and {len(self.units) - 5} more" if len(self.units) > 5 else ""
        return (
            f"{len(self.units)} unit(s) cannot be labelled with memorized_min_tokens "
            f"{self.min_tokens} > their cont_len, {self.rows:,} row(s) left out of every mart: "
            f"{shown}{more}; lower memorized_min_tokens or score with --cont-len >= "
            f"{self.min_tokens}"
        )


@dataclass
class BuildResult:
    db: Path
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    unit_tests_skipped: bool = False
    # a plain build changed vars the previous build had set (see settings_changes)
    warnings: list[str] = field(default_factory=list)
    # model -> ("family", "size"): facts no manifest or seed gave, guessed from the label
    guessed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # units left out because their cont_len is below the label rule (see unlabelable_units)
    unlabelable: Unlabelable | None = None

    @property
    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail")]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for n in self.nodes:
            kinds[n.resource_type] = kinds.get(n.resource_type, 0) + 1
        parts = ", ".join(f"{v} {k}s" for k, v in sorted(kinds.items()))
        state = "ok" if self.success else f"{len(self.failures)} failed"
        skipped = " (unit tests passed before on this code)" if self.unit_tests_skipped else ""
        line = f"dbt build {state}: {parts}{skipped} in {self.seconds:.1f}s -> {self.db}"
        if self.unlabelable:
            line += f"\nwarning: {self.unlabelable.line()}"
        return line + (f"\n{self.guessed_note()}" if self.guessed else "")

    def guessed_note(self) -> str:
        """One line naming the models whose family or size came from their label."""
        shown = [f"{m} ({'+'.join(w)})" for m, w in list(self.guessed.items())[:12]]
        more = f" and {len(self.guessed) - 12} more" if len(self.guessed) > 12 else ""
        return (
            f"guessed from the label for {len(self.guessed)} model(s): {', '.join(shown)}{more}; "
            "record them with memwh infer --family/--n-params (or sweep keys family/n_params)"
        )


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_raw_layer(db: Path, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """Fail early and readably when there is nothing to build from or another process holds
    the file (any connection: dbt needs the write lock).

    Returns the raw layer's column signature (dbt types unit-test fixtures from the real
    upstream relations, so their outcome can depend on it). Uses `con` when given."""
    if not db.exists():
        raise MemwhError(f"{db}: {NOTHING_INGESTED}")
    own = con is None
    # Read-write, as dbt will open it: a process holding even a read-only connection (a
    # notebook) blocks dbt, which would print its whole traceback before our one-line message.
    con = con or connect(db)
    try:
        tables = {
            r[0]
            for r in con.sql(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        }
        if not {"scores", "runs"} <= tables:
            raise MemwhError(f"{db}: {NOTHING_INGESTED}")
        n_runs = con.sql("select count(*) from raw.runs").fetchall()[0][0]
        if n_runs == 0:
            raise MemwhError(f"{db}: {NOTHING_INGESTED}")
        columns = con.sql(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' order by all"
        ).fetchall()
        return ";".join(":".join(map(str, c)) for c in columns)
    finally:
        if own:
            con.close()


# Ranges of the project's vars (dbt_project.yml); a value outside them would build marts
# that look fine and mean nothing (e.g. memorized_min_tokens: -1 labels every sequence).
_VAR_RULES: dict[str, tuple[str, object]] = {
    "memorized_min_tokens": ("an integer in 1..32767", lambda v: _int_in(v, 1, 32767)),
    "label_definition": ("prefix_match or score", lambda v: v in ("prefix_match", "score")),
    "score_threshold": (
        "a number in (0, 1]",
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1,
    ),
    "restrict_checkpoint_population": ("true or false", lambda v: isinstance(v, bool)),
    "pearson_max_sequences": ("an integer >= 2", lambda v: _int_in(v, 2, 2**62)),
    "score_bins": ("an integer in 1..10000", lambda v: _int_in(v, 1, 10_000)),
    "shadow_min_models": ("an integer >= 1", lambda v: _int_in(v, 1, 2**31)),
    "lira_variance": ("global or per_sequence", lambda v: v in ("global", "per_sequence")),
    "lira_min_sd": (
        "a number > 0",
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
    ),
}


def _int_in(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def project_vars() -> dict:
    """The vars dbt_project.yml declares, with their defaults."""
    import yaml

    with open(WAREHOUSE_DIR / "dbt_project.yml") as f:
        return dict((yaml.safe_load(f) or {}).get("vars") or {})


def check_vars(vars: dict | None) -> None:
    """Unknown names (typos dbt would silently ignore) and out-of-range values -> MemwhError."""
    known = project_vars()
    for name, value in (vars or {}).items():
        if name not in known:
            raise MemwhError(
                f"--vars: unknown var {name!r}; the warehouse's vars are "
                f"{', '.join(sorted(known))} (see docs/warehouse.md)"
            )
        rule = _VAR_RULES.get(name)
        if rule and not rule[1](value):
            raise MemwhError(f"--vars: {name} = {value!r} must be {rule[0]}")


def guessed_facts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """Models whose family or parameter count int_units had to guess (empty if not built).
    `con`: the build's own connection (a second one with other settings cannot open the file)."""
    try:
        rows = con.sql(
            "select model, bool_or(family_is_guessed), bool_or(n_params_is_guessed) "
            "from main.int_units group by model "
            "having bool_or(family_is_guessed) or bool_or(n_params_is_guessed) order by model"
        ).fetchall()
    except duckdb.Error:  # int_units not built (e.g. --select elsewhere) or an older warehouse
        return {}
    return {m: tuple(w for w, g in (("family", f), ("size", n)) if g) for m, f, n in rows}


def unlabelable_units(con: duckdb.DuckDBPyConnection, vars: dict | None) -> Unlabelable | None:
    """The units the build left out because cont_len < memorized_min_tokens (prefix_match
    rule), with their stored rows, read from raw.runs like the models' can_label() filter."""
    effective = {**project_vars(), **(vars or {})}
    if effective.get("label_definition", "prefix_match") != "prefix_match":
        return None
    need = int(effective.get("memorized_min_tokens", 32))
    rows = con.execute(
        "select model, revision, min(cont_len), sum(n_rows) from raw.runs "
        "where cont_len < ? group by model, revision order by model, revision",
        [need],
    ).fetchall()
    if not rows:
        return None
    return Unlabelable(need, [(m, r, int(c)) for m, r, c, _ in rows], sum(int(n) for *_, n in rows))


def shadow_exclusions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """One warning per shadow unit left out of its population (no exposure, sparse rows):
    its role says it should count, so silence would quietly shrink the population."""
    try:
        rows = con.sql(
            "select model, revision, dataset, exclusion_reason from main.shadow_units "
            "where not is_included order by model, revision, dataset"
        ).fetchall()
    except duckdb.Error:  # shadow_units not built (--select elsewhere) or an older warehouse
        return []
    return [
        f"shadow unit {m}@{r} (dataset {d}) left out of its population: {why} "
        "(see the shadow_units mart)"
        for m, r, d, why in rows
    ]


def project_fingerprint(vars: dict | None = None, raw_columns: str = "") -> str:
    """Hash of everything a dbt unit test's outcome depends on: the project's SQL/YAML/seeds,
    the vars passed on the command line, dbt-core/dbt-duckdb/duckdb versions and the raw
    layer's column types (never the rows: unit tests read only their fixtures)."""
    import hashlib
    import json
    from importlib.metadata import version

    h = hashlib.sha256()
    for name in _PROJECT_CODE:
        root = WAREHOUSE_DIR / name
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(WAREHOUSE_DIR)).encode() + b"\0" + f.read_bytes())
    h.update(
        json.dumps(
            [
                vars or {},
                version("dbt-core"),
                version("dbt-duckdb"),
                version("duckdb"),
                raw_columns,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    )
    return h.hexdigest()


def _unit_tests_stamp(target_path: str | os.PathLike) -> Path:
    return Path(target_path) / UNIT_TESTS_STAMP


def _passed_fingerprints(stamp: Path) -> list[str]:
    import json

    try:
        passed = json.loads(stamp.read_text()).get("passed", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [p for p in passed if isinstance(p, str)]


def _record_passed(stamp: Path, fingerprint: str) -> None:
    import json
    import tempfile

    passed = [p for p in _passed_fingerprints(stamp) if p != fingerprint]
    passed = [fingerprint, *passed][:_STAMPS_KEPT]
    stamp.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=stamp.parent, prefix=stamp.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"passed": passed}, f)
    os.replace(tmp, stamp)


def model_descriptions() -> dict[str, str]:
    """name -> description of every model and raw source in the project's YAML, so tools can
    describe views dbt does not comment (only marts get persisted DuckDB comments)."""
    import yaml

    out: dict[str, str] = {}
    for path in sorted((WAREHOUSE_DIR / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for m in doc.get("models") or []:
            out[m["name"]] = " ".join(str(m.get("description", "")).split())
        for src in doc.get("sources") or []:
            for t in src.get("tables") or []:
                out[f"{src['name']}.{t['name']}"] = " ".join(str(t.get("description", "")).split())
    return out


def last_build_settings(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """name -> value (text) of the vars the last build used; {} before the first build."""
    exists = con.sql(
        "select count(*) from information_schema.tables where table_name = 'build_settings'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    return dict(con.sql("select name, value from build_settings").fetchall())


DATASET_UPGRADE = (
    "the warehouse was built by a memwh whose units had no dataset key; this build was a full "
    "refresh (a unit is now model x revision x dataset)"
)


def built_before_datasets(con: duckdb.DuckDBPyConnection) -> bool:
    """int_units exists without a dataset column: the incremental tables key units on (model,
    revision) only and cannot be matched by the new keys, so the build must refresh them all."""
    cols = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'main' and table_name = 'int_units'"
        ).fetchall()
    }
    return bool(cols) and "dataset" not in cols


def settings_changes(previous: dict[str, str], vars: dict | None) -> list[str]:
    """One line per var the last build set that this build, not naming it, would change.

    Values compare as dbt renders them ('{{ var(x) }}' is Python's str of the YAML value)."""
    given = vars or {}
    effective = {**project_vars(), **given}
    out = []
    for name, old in sorted(previous.items()):
        if name in given or name not in effective or str(effective[name]) == old:
            continue
        out.append(
            f"{name} was {old} in the last build; this build uses the default "
            f"{effective[name]}, so the marts change (keep it: --vars '{{{name}: {old}}}')"
        )
    return out


def dbt_args(
    command: str,
    *,
    select: str | Sequence[str] | None = None,
    full_refresh: bool = False,
    threads: int = 1,
    quiet: bool = False,
    target_path: str | os.PathLike | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    args = [command, "--project-dir", str(WAREHOUSE_DIR), "--profiles-dir", str(WAREHOUSE_DIR)]
    if target_path is not None:
        # separate compiled/ + logs, so concurrent builds of different files don't collide
        args += ["--target-path", str(target_path), "--log-path", str(Path(target_path) / "logs")]
    if command in ("build", "run", "test", "seed"):
        args += ["--threads", str(threads)]
    if select:
        args += ["--select", *([select] if isinstance(select, str) else list(select))]
    if full_refresh:
        args.append("--full-refresh")
    if quiet:
        args = ["--quiet", *args]
    return [*args, *extra]


def _release_duckdb() -> None:
    """dbt-duckdb caches its DuckDB instance per process; close it so the file is unlocked
    for other processes (and for other connections of ours) as soon as dbt returns."""
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as manager

    with manager._LOCK:
        if manager._ENV is not None:
            with contextlib.suppress(Exception):
                manager._ENV.close()
            manager._ENV = None
    gc.collect()


def run_dbt(db: Path, args: list[str]) -> object:
    """Invoke dbt in this process with MEMWH_DB pointing at `db`; returns dbt's result object.

    The file is opened for writing (and closed) first: another process holding it, even a
    read-only notebook connection, is then one line (MemwhError) instead of dbt's log of
    every node failing on the lock."""
    from dbt.cli.main import dbtRunner

    connect(db).close()

    with _env(MEMWH_DB=str(db), DBT_SEND_ANONYMOUS_USAGE_STATS="false"):
        try:
            res = dbtRunner().invoke(args)
        finally:
            _release_duckdb()
    if res.exception is not None:
        if is_lock_error(res.exception):
            raise MemwhError(lock_message(db, res.exception))
        raise MemwhError(f"dbt failed: {_one_line(res.exception)}")
    return res


def _one_line(err: object) -> str:
    """dbt's errors say where on the first line and why on the last ('Compilation Error in
    model X (path)' ... 'var ... must be ...'): keep both, on one line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return str(type(err).__name__)
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


def build(
    db: str | os.PathLike | None = None,
    *,
    select: str | Sequence[str] | None = None,
    full_refresh: bool = False,
    threads: int = 1,
    quiet: bool = False,
    vars: dict | None = None,
    target_path: str | os.PathLike | None = None,
    unit_tests: bool | None = None,
) -> BuildResult:
    """`dbt build` (seeds, models, data tests, unit tests) into the warehouse file `db`.

    unit_tests: None runs dbt's unit tests only when project_fingerprint() (code, vars,
    versions, raw column types: all their outcome depends on) has not passed before, since they
    are ~0.4 s of every rebuild; True always, False never. Data tests always run.
    Raises MemwhError when nothing was ingested, the file is locked, or a node fails.
    """
    import json

    path = resolve_db(db).resolve()
    check_vars(vars)
    if not path.exists():
        raise MemwhError(f"{path}: {NOTHING_INGESTED}")
    # Held for the whole build: other processes get the one-line lock message at once (a
    # `memwh sql` can never read marts half-rebuilt, nor grab the file between dbt's nodes and
    # make the next node fail), and a read-only file or folder fails here, before dbt runs.
    # dbt-duckdb's own connect() (same file, same empty config) shares this DuckDB instance.
    holder = connect(path)
    try:
        raw_columns = check_raw_layer(path, holder)
        upgrade = not full_refresh and built_before_datasets(holder)
        full_refresh = full_refresh or upgrade
        build_id = _mark_started(holder, select)
        try:
            result = _run_build(
                path, select, full_refresh, threads, quiet, vars, target_path, unit_tests,
                raw_columns, json.dumps(vars) if vars else None, last_build_settings(holder),
            )  # fmt: skip
        except NothingSelected:
            _forget(holder, build_id)  # nothing ran: the marts are as the last build left them
            raise
        except BaseException as e:
            _mark_finished(holder, build_id, "failed", str(e).splitlines()[0] if str(e) else "")
            raise
        result.guessed = guessed_facts(holder)
        result.unlabelable = unlabelable_units(holder, vars)
        result.warnings += shadow_exclusions(holder)
        if upgrade:
            result.warnings.insert(0, DATASET_UPGRADE)
        _mark_finished(holder, build_id, "ok", result.summary())
    finally:
        holder.close()
    return result


def _mark_started(con: duckdb.DuckDBPyConnection, select: str | Sequence[str] | None) -> str:
    """The completion marker's 'running' row (see memwh.core.db.last_build_warning)."""
    build_id = str(uuid.uuid4())
    selection = None if not select else select if isinstance(select, str) else " ".join(select)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS memwh_meta")
        con.execute(BUILDS_DDL)
        con.execute(
            f"INSERT INTO {BUILDS_TABLE} VALUES (?, ?, NULL, 'running', ?, ?, ?, NULL)",
            [build_id, _utc_now(), os.getpid(), socket.gethostname(), selection],
        )
    except duckdb.Error as e:
        raise MemwhError(
            f"{con_path(con)}: cannot write to the database ({str(e).splitlines()[0]}); "
            "check its permissions and free disk space"
        ) from None
    return build_id


class NothingSelected(MemwhError):
    """--select matched no node: nothing was built."""


def _forget(con: duckdb.DuckDBPyConnection, build_id: str) -> None:
    with contextlib.suppress(duckdb.Error):
        con.execute(f"DELETE FROM {BUILDS_TABLE} WHERE build_id = ?", [build_id])


def _mark_finished(con: duckdb.DuckDBPyConnection, build_id: str, status: str, msg: str) -> None:
    with contextlib.suppress(duckdb.Error):  # never hide the build's own error
        con.execute(
            f"UPDATE {BUILDS_TABLE} SET finished_at = ?, status = ?, message = ? WHERE build_id = ?",
            [_utc_now(), status, msg[:500], build_id],
        )


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def con_path(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE NOT internal LIMIT 1").fetchall()
    return str(rows[0][0]) if rows else "database"


def _run_build(
    path: Path,
    select: str | Sequence[str] | None,
    full_refresh: bool,
    threads: int,
    quiet: bool,
    vars: dict | None,
    target_path: str | os.PathLike | None,
    unit_tests: bool | None,
    raw_columns: str,
    vars_json: str | None,
    previous_settings: dict[str, str],
) -> BuildResult:
    target_path = target_path or dbt_target_dir(path)
    # dbt's JSON artifacts (manifest/run_results, ~0.3 s) are not written: the result object
    # below carries the same, and `memwh docs` / plain `dbt` write them when wanted.
    extra: list[str] = ["--no-write-json"]
    if vars_json:
        extra += ["--vars", vars_json]
    changes = settings_changes(previous_settings, vars)
    fingerprint = project_fingerprint(vars, raw_columns)
    stamp = _unit_tests_stamp(target_path)
    if unit_tests is None:
        unit_tests = fingerprint not in _passed_fingerprints(stamp)
    if not unit_tests:
        extra += ["--exclude-resource-type", "unit_test"]
    t0 = time.perf_counter()
    res = run_dbt(
        path,
        dbt_args(
            "build",
            select=select,
            full_refresh=full_refresh,
            threads=threads,
            quiet=quiet,
            target_path=target_path,
            extra=extra,
        ),
    )
    nodes = []
    for r in getattr(res, "result", None) or []:
        node = r.node
        nodes.append(
            NodeResult(
                name=node.name,
                resource_type=str(node.resource_type),
                status=str(r.status),
                seconds=float(r.execution_time or 0.0),
                message=str(r.message or ""),
            )
        )
    result = BuildResult(
        db=path,
        success=bool(res.success),
        seconds=time.perf_counter() - t0,
        nodes=nodes,
        unit_tests_skipped=not unit_tests,
        warnings=changes,
    )
    if select and not nodes:
        sel = select if isinstance(select, str) else " ".join(select)
        raise NothingSelected(
            f"--select {sel}: matches no model, test or seed, nothing was built; "
            "`memwh dbt ls` lists the nodes (e.g. --select marts, --select memorization_rates+)"
        )
    ran_all_unit_tests = unit_tests and not select
    # the code must not have changed while dbt ran (it parsed whatever was there then)
    if (
        result.success
        and ran_all_unit_tests
        and project_fingerprint(vars, raw_columns) == fingerprint
    ):
        _record_passed(stamp, fingerprint)
    if not result.success:
        for n in result.failures:
            if is_lock_error(Exception(n.message)):
                raise MemwhError(lock_message(path, Exception(n.message)))
        first = result.failures[0] if result.failures else None
        what = (
            f"{first.resource_type} {first.name}: {first.message.splitlines()[0] if first.message else first.status}"
            if first
            else "see dbt output above"
        )
        raise MemwhError(f"dbt build failed ({len(result.failures)} nodes), first: {what}")
    return result


def docs(
    db: str | os.PathLike | None = None, *, target_path: str | os.PathLike | None = None
) -> Path:
    """`dbt docs generate --static` against `db` (build it first); returns the static page."""
    path = resolve_db(db).resolve()
    check_raw_layer(path)
    target_path = target_path or dbt_target_dir(path)
    args = ["--quiet", "docs"]
    args += dbt_args("generate", target_path=target_path, extra=["--static"])
    run_dbt(path, args)
    return Path(target_path) / "static_index.html"


def dbt(args: Sequence[str], db: str | os.PathLike | None = None) -> bool:
    """Any dbt command (`docs serve`, `run --select X`, `test`, `show`...) against the packaged
    project and the warehouse file `db`; returns dbt's success flag.

    memwh appends --project-dir/--profiles-dir and, unless given, --target-path/--log-path
    beside the database (options may follow dbt's positional words); the rest passes through."""
    args = list(args)
    if not [a for a in args if not a.startswith("-")]:
        raise MemwhError("memwh dbt: give a dbt command, e.g. `memwh dbt run --select marts`")
    path = resolve_db(db).resolve()
    own = ["--project-dir", str(WAREHOUSE_DIR), "--profiles-dir", str(WAREHOUSE_DIR)]
    if not {"--target-path", "--log-path"} & set(args):
        target = dbt_target_dir(path)
        own += ["--target-path", str(target), "--log-path", str(target / "logs")]
    res = run_dbt(path, [*args, *own])
    return bool(getattr(res, "success", False))
