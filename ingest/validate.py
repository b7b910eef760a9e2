"""Checks a score shard must pass before any of its rows reach the database.

Cheap checks run first and per file (manifest fields, file present, checksum, Parquet
footer: columns, types, row count); the row-level checks then run as ONE DuckDB aggregate
query over all candidate files (``read_parquet([...], file_row_number=true)`` grouped by
``file_index``, no join), so validating 500 files costs one parallel scan, not 500 Python
loops; each file's aggregates are then compared with its manifest in Python.

Row-level rules (per file; ``m`` = its manifest):

* no NULLs in the contract's non-nullable columns;
* ``m.seq_start <= seq_idx < m.seq_end`` and (seq_idx, prompt_len) unique. Fast path: a
  single-prompt file whose rows are exactly ``seq_start + row_number`` (how memwh jobs write)
  is unique by construction; only other files pay for a GROUP BY duplicate search;
* contract version 2: ``prompt_len`` is one of the manifest's ``prompt_lens`` (version 1 files
  have no such column: every row was scored with the manifest's ``prompt_len``);
* ``0 <= prefix_match_len <= m.cont_len`` and ``exact_match == (prefix_match_len >= cont_len)``;
* ``memorization_score`` (NULL allowed in fast mode, required in generate mode) and
  ``tf_token_accuracy`` in [0, 1], not NaN; ``memorization_score >= prefix_match_len /
  cont_len`` (the matched prefix is part of the greedy continuation);
* ``loss >= 0``, ``min_k_logprob <= 0`` (a mean of log-probabilities) and ``zlib_ratio >= 0``
  (NULL allowed), all finite: a NaN or inf would make every mean over the unit NaN/inf;
* ``m.n_exact`` (when present) equals the number of exact matches.

Type rule: the file may use a narrower or wider type of the same kind than the contract
(any integer type for the integer columns, float16/32/64 for float columns) because the
value checks above bound what is stored; a different kind (e.g. strings) is rejected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from memwh.core import contract
from memwh.core.errors import MemwhError

RERUN = "rerun the shard with --force"


@dataclass
class FileProblem:
    """One line for the user: which file, what is wrong, what to do."""

    path: Path
    problem: str
    action: str
    kind: str = "bad"  # bad | incomplete | gone

    def line(self) -> str:
        return f"{self.path}: {self.problem}" + (f"; {self.action}" if self.action else "")


class Invalid(Exception):
    """Raised by a check; carries the problem and the advice."""

    def __init__(self, problem: str, action: str = RERUN) -> None:
        super().__init__(problem)
        self.problem = problem
        self.action = action


@dataclass
class Shard:
    """A completed shard that is new or changed since the last ingest."""

    manifest_path: Path
    parquet_path: Path
    manifest: dict[str, Any]
    size: int
    mtime: float
    replaces: tuple[int, str] | None = None  # (run_key, run_id) of the run it supersedes
    run: dict[str, Any] = field(default_factory=dict)  # raw.runs row (run_key set at load)
    sha256: str | None = None
    arrow_schema: pa.Schema | None = None

    @property
    def unit(self) -> tuple[str, str, str]:
        """(model, revision, dataset): one checkpoint scored on two datasets is two units."""
        return self.manifest["model"], self.manifest["revision"], self.dataset

    @property
    def checkpoint(self) -> tuple[str, str]:
        """(model, revision): what roles and variant_of name."""
        return self.manifest["model"], self.manifest["revision"]

    @property
    def dataset(self) -> str:
        return dataset_of(self.manifest.get("data_fingerprint"))

    @property
    def n_rows(self) -> int:
        return int(self.manifest["n_rows"])

    @property
    def prompt_lens(self) -> list[int]:
        """Prompt lengths the file's rows were scored with (version 1: the manifest's one)."""
        return list(self.manifest.get("prompt_lens") or [self.manifest["prompt_len"]])

    @property
    def has_prompt_len_column(self) -> bool:
        return self.arrow_schema is not None and "prompt_len" in self.arrow_schema.names

    @property
    def has_certainty_columns(self) -> bool:
        """Contract version 3: label_margin, label_certain, label_verified."""
        names = self.arrow_schema.names if self.arrow_schema is not None else ()
        return all(f.name in names for f in contract.LABEL_CERTAINTY_FIELDS)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_HEX64 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9A-Za-z_.:-]{1,128}")
MODES = ("fast", "generate", "imported")


def _text(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _iso_time(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _eos(v: Any) -> bool:
    return (_is_int(v) and v >= 0) or (
        isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v)
    )


# Every manifest field memwh reads: (what it must be, test). Required fields may not be
# null; optional ones are checked when present and not null. Ranges that relate two fields
# (seq range, n_rows, shard) are checked after these.
_FIELD_RULES: dict[str, tuple[str, Any]] = {
    "contract_version": (f"an integer in 1..{contract.CONTRACT_VERSION}", None),  # below
    "run_id": (
        "a non-empty id of letters, digits, _ . : -",
        lambda v: isinstance(v, str) and _RUN_ID.fullmatch(v),
    ),
    "model": ("a non-empty string", _text),
    "model_path": ("a non-empty string", _text),
    "revision": ("a non-empty string", _text),
    "shard": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "num_shards": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "seq_start": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "seq_end": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "n_rows": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "prompt_len": ("an integer in 1..32767", lambda v: _is_int(v) and 1 <= v <= 32767),
    "cont_len": ("an integer in 1..32767", lambda v: _is_int(v) and 1 <= v <= 32767),
    "mode": (" or ".join(MODES), lambda v: v in MODES),
    "suppress_eos": ("true or false", lambda v: isinstance(v, bool)),
    "parquet_file": ("a file name", _text),
    "parquet_sha256": (
        "the file's sha256 (64 lowercase hex digits)",
        lambda v: isinstance(v, str) and _HEX64.fullmatch(v),
    ),
    "started_at": ("an ISO-8601 time", _iso_time),
    "finished_at": ("an ISO-8601 time", _iso_time),
    # optional
    "step": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "commit_hash": ("a string", _text),
    "n_params": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "non_embedding_params": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "family": ("a non-empty string", _text),
    "tokens_per_step": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "sequences_per_step": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "tokens_seen": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "train_flops": ("a finite number >= 0", lambda v: _number(v) and v >= 0),
    "dtype": ("a string", _text),
    "device": ("a string", _text),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "eos_token_id": ("a token id or a list of them", _eos),
    "min_k_fraction": ("a number in (0, 1]", lambda v: _number(v) and 0 < v <= 1),
    "data_source": ("a string", _text),
    "data_fingerprint": ("a non-empty string", _text),
    "n_exact": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "host": ("a string", lambda v: isinstance(v, str)),
    "slurm_job_id": ("a job id", lambda v: isinstance(v, str) or _is_int(v)),
    "slurm_array_job_id": ("a job id", lambda v: isinstance(v, str) or _is_int(v)),
    "slurm_array_task_id": ("a task id", lambda v: isinstance(v, str) or _is_int(v)),
    "versions": ("an object", lambda v: isinstance(v, dict)),
    "git_sha": ("a string", lambda v: isinstance(v, str)),
    "wall_seconds": ("a finite number >= 0", lambda v: _number(v) and v >= 0),
}


def dataset_of(fingerprint: Any) -> str:
    """A run's dataset key: its data_fingerprint, or contract.NO_DATASET when it names none."""
    return str(fingerprint) if fingerprint is not None else contract.NO_DATASET


# Manifest settings that define what a unit's rows mean: every shard of one unit (model,
# revision, dataset) must carry the same values, or the unit would mix runs (a different dtype,
# mode, prompt/continuation length, EOS rule or model weights) into one set of rows.
# (data_fingerprint is part of the unit's key, so shards of another dataset form another unit.)
UNIT_SETTINGS: tuple[str, ...] = (
    "mode",
    "prompt_len",
    "prompt_lens",
    "cont_len",
    "suppress_eos",
    "eos_token_id",
    "dtype",
    "data_fingerprint",
    "commit_hash",
    "min_k_fraction",
    "family",
    "n_params",
)


def unit_settings(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m.get(k) for k in UNIT_SETTINGS}
    # a version-1 manifest (no prompt_lens) scored its one prompt_len
    out["prompt_lens"] = list(m.get("prompt_lens") or [m.get("prompt_len")])
    return out


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """'dtype 'float16' here vs 'float32' there, ...' ('' when equal)."""
    a, b = unit_settings(a), unit_settings(b)
    return ", ".join(
        f"{k} {a.get(k)!r} here vs {b.get(k)!r} there"
        for k in UNIT_SETTINGS
        if a.get(k) != b.get(k)
    )


def check_manifest(man_path: Path, m: dict[str, Any]) -> Path:
    """Every field's type and range (manifest already parsed by contract.read_manifest);
    returns its Parquet path."""
    version = m["contract_version"]
    if _is_int(version) and version > contract.CONTRACT_VERSION:
        raise Invalid(
            f"contract_version {version!r} is newer than this memwh understands "
            f"({contract.CONTRACT_VERSION})",
            "upgrade memwh before ingesting these results",
        )
    if not _is_int(version) or version < 1:
        raise Invalid(
            f"manifest field 'contract_version' = {version!r} is not a memwh contract version "
            f"(1..{contract.CONTRACT_VERSION})"
        )
    for key, (what, ok) in _FIELD_RULES.items():
        if key == "contract_version":
            continue
        value = m.get(key)
        if value is None:
            if key in contract.MANIFEST_REQUIRED:
                raise Invalid(f"manifest field {key!r} is null; it must be {what}")
            continue
        if not ok(value):
            raise Invalid(f"manifest field {key!r} = {value!r} is not {what}")
    if not (m["seq_start"] <= m["seq_end"]):
        raise Invalid(f"manifest range [{m['seq_start']}, {m['seq_end']}) is empty or negative")
    lens = m.get("prompt_lens", [m["prompt_len"]])
    if (
        not isinstance(lens, list)
        or not lens
        or not all(_is_int(k) and k >= 0 for k in lens)
        or max(lens) != m["prompt_len"]
        or len(set(lens)) != len(lens)
    ):
        raise Invalid(
            f"manifest prompt_lens {lens!r} is not a list of distinct prompt lengths ending "
            f"with prompt_len {m['prompt_len']}"
        )
    if len(lens) > 1 and version < 2:
        raise Invalid(f"manifest lists prompt_lens {lens} but contract_version {version} < 2")
    if not (0 <= m["n_rows"] <= (m["seq_end"] - m["seq_start"]) * len(lens)):
        raise Invalid(
            f"manifest n_rows {m['n_rows']} does not fit its range "
            f"[{m['seq_start']}, {m['seq_end']})"
        )
    if _is_int(m.get("n_exact")) and m["n_exact"] > m["n_rows"]:
        raise Invalid(f"manifest n_exact {m['n_exact']} is larger than n_rows {m['n_rows']}")
    folder = man_path.parent
    for key, part in (("model", folder.parent.name), ("revision", folder.name)):
        expected = part.split("=", 1)[1] if "=" in part else None
        if str(m[key]) != expected:
            raise Invalid(
                f"manifest says {key} {m[key]!r} but the folder says {expected!r}",
                "move the shard to the folder of its unit or rerun it there",
            )
    try:
        contract.check_role_fields(m, model=str(m["model"]), revision=str(m["revision"]))
    except contract.ContractError as e:
        raise Invalid(
            f"manifest {e}",
            "rerun the shard with valid --role/--variant-of/--method-params, or fix the manifest",
        ) from None
    pq_name = man_path.name.removesuffix(".manifest.json") + ".parquet"
    if m["parquet_file"] != pq_name:
        raise Invalid(
            f"manifest names Parquet file {m['parquet_file']!r}, expected {pq_name!r}",
            "each manifest must describe its own part file: " + RERUN,
        )
    try:
        stem = contract.part_stem(m["shard"], m["num_shards"])
    except contract.ContractError as e:
        raise Invalid(str(e)) from None
    if not man_path.name.startswith(stem + "."):
        raise Invalid(f"manifest shard {m['shard']}/{m['num_shards']} does not match its file name")
    return folder / pq_name


def check_checksum(shard: Shard) -> None:
    """sha256 of the bytes vs the manifest: catches truncation and overwrites after completion.
    (check_manifest already refused a missing or empty parquet_sha256.)"""
    want = shard.manifest.get("parquet_sha256")
    if not want:
        raise Invalid("manifest has no parquet_sha256, so the file cannot be verified")
    if shard.sha256 != want:
        raise Invalid(
            f"sha256 {str(shard.sha256)[:12]}… differs from the manifest's {str(want)[:12]}… "
            "(truncated, overwritten or copied incompletely)"
        )


def one_line(text: str) -> str:
    """First line of an error text, control characters (from corrupt bytes) made visible."""
    first = text.splitlines()[0] if text else ""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in first)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "boolean"
    return str(t)


def check_parquet(shard: Shard) -> None:
    """Footer-only checks: readable, required columns with compatible types, row count."""
    try:
        f = pq.ParquetFile(shard.parquet_path)
        schema = f.schema_arrow
        num_rows = f.metadata.num_rows
    except PermissionError:
        raise  # not corrupt: the caller says to fix permissions
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise Invalid(f"unreadable Parquet ({one_line(str(e)) or type(e).__name__})") from None
    want = contract.score_schema(int(shard.manifest["contract_version"]))
    missing = [c for c in want.names if c not in schema.names]
    if missing:
        raise Invalid(
            f"missing column(s) {', '.join(missing)}", "rewrite it with a memwh job: " + RERUN
        )
    for fld in want:
        have = schema.field(fld.name).type
        if _kind(have) != _kind(fld.type):
            raise Invalid(
                f"column {fld.name} has type {have}, the contract needs {fld.type}",
                "rewrite it with a memwh job: " + RERUN,
            )
    if num_rows != shard.n_rows:
        raise Invalid(f"file has {num_rows} rows but the manifest says n_rows={shard.n_rows}")
    shard.arrow_schema = pa.schema([schema.field(n) for n in want.names])


def literal_path(path: str | Path) -> str:
    """`path` as a DuckDB file pattern that matches exactly that file: read_parquet/read_csv
    glob `*`, `?` and `[...]`, so `v[1]/x.parquet` would read `v1/x.parquet`. Each of those
    characters becomes a one-character class (`[` -> `[[]`), which matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", str(path))


def sql_list(paths: Sequence[Path]) -> str:
    """A SQL list of exact file paths for read_parquet/read_csv (never globbed)."""
    return "[" + ", ".join("'" + literal_path(p).replace("'", "''") + "'" for p in paths) + "]"


def schema_groups(shards: Sequence[Shard]) -> list[list[Shard]]:
    """Files with identical column types, so one read_parquet call can scan them together."""
    groups: dict[str, list[Shard]] = {}
    for s in shards:
        groups.setdefault(str(s.arrow_schema), []).append(s)
    return list(groups.values())


# Aggregates that need no per-file parameters, so the scan needs no join: range checks
# against each manifest happen in Python on one row per file.
_CHECKS_SQL = """
SELECT
    file_index,
    {prompt_lens}                                                                AS prompt_lens,
    count(*) - count(seq_idx) + count(*) - count(prefix_match_len) + count(*) - count(exact_match)
      + count(*) - count(tf_token_accuracy) + count(*) - count(loss)
      + count(*) - count(min_k_logprob)                                           AS n_null,
    count(*)                                                                     AS n_rows,
    min(seq_idx)                                                                 AS min_seq,
    max(seq_idx)                                                                 AS max_seq,
    min(seq_idx - file_row_number)                                               AS min_offset,
    max(seq_idx - file_row_number)                                               AS max_offset,
    min(prefix_match_len)                                                        AS min_pml,
    max(prefix_match_len)                                                        AS max_pml,
    count_if(exact_match)                                                        AS n_exact,
    min(prefix_match_len) FILTER (WHERE exact_match)                             AS min_pml_exact,
    max(prefix_match_len) FILTER (WHERE NOT exact_match)                         AS max_pml_inexact,
    count_if(memorization_score < 0 OR memorization_score > 1
             OR isnan(memorization_score))                                        AS n_bad_score,
    count_if(tf_token_accuracy < 0 OR tf_token_accuracy > 1
             OR isnan(tf_token_accuracy))                                         AS n_bad_acc,
    count(memorization_score)                                                    AS n_score,
    count_if(memorization_score::DOUBLE
             < prefix_match_len / {cont_lens}[file_index::BIGINT + 1] - 1e-6)     AS n_below_bound,
    count_if(NOT isfinite(loss) OR loss < 0)                                     AS n_bad_loss,
    count_if(NOT isfinite(min_k_logprob) OR min_k_logprob > 0)                   AS n_bad_mink,
    count_if(NOT isfinite(zlib_ratio) OR zlib_ratio < 0)                         AS n_bad_zlib
FROM read_parquet({files}, file_row_number = true)
GROUP BY file_index
"""

_DUPS_SQL = """
SELECT file_index, count(*) AS n_dup_values, min(seq_idx) AS example, max(c) AS max_copies
FROM (
    SELECT file_index, seq_idx, {prompt_len} AS prompt_len, count(*) AS c
    FROM read_parquet({files})
    GROUP BY ALL
    HAVING count(*) > 1
)
GROUP BY file_index
"""


def _problem_from_stats(shard: Shard, st: dict[str, Any]) -> Invalid | None:
    m = shard.manifest
    lo, hi, cont = m["seq_start"], m["seq_end"], m["cont_len"]
    if st["n_null"]:
        return Invalid(f"{st['n_null']} NULL value(s) in columns the contract declares non-null")
    if st["min_seq"] < lo or st["max_seq"] >= hi:
        return Invalid(
            f"seq_idx values outside the manifest range [{lo}, {hi}) (seen {st['min_seq']}..{st['max_seq']})"
        )
    if st["min_pml"] < 0 or st["max_pml"] > cont:
        return Invalid(
            f"prefix_match_len outside [0, cont_len={cont}] (seen {st['min_pml']}..{st['max_pml']})"
        )
    if (st["n_exact"] and st["min_pml_exact"] != cont) or (
        st["max_pml_inexact"] is not None and st["max_pml_inexact"] >= cont
    ):
        return Invalid(
            f"exact_match disagrees with prefix_match_len >= cont_len ({cont}) in some rows"
        )
    if st["n_bad_score"]:
        return Invalid(f"{st['n_bad_score']} memorization_score value(s) outside [0, 1] or NaN")
    if st["n_bad_acc"]:
        return Invalid(f"{st['n_bad_acc']} tf_token_accuracy value(s) outside [0, 1] or NaN")
    if m["mode"] == "generate" and st["n_score"] < st["n_rows"]:
        return Invalid(
            f"{st['n_rows'] - st['n_score']} row(s) without memorization_score in a generate-mode "
            "shard (generate mode scores every row)"
        )
    if st["n_below_bound"]:
        return Invalid(
            f"{st['n_below_bound']} memorization_score value(s) below prefix_match_len / cont_len "
            f"(cont_len={cont}): the matched prefix is part of the greedy continuation"
        )
    for stat, col, rule in (
        ("n_bad_loss", "loss", ">= 0"),
        ("n_bad_mink", "min_k_logprob", "<= 0 (a mean of log-probabilities)"),
        ("n_bad_zlib", "zlib_ratio", ">= 0"),
    ):
        if st[stat]:
            return Invalid(f"{st[stat]} {col} value(s) NaN, infinite or not {rule}")
    if shard.has_prompt_len_column and not set(st["prompt_lens"]) <= set(shard.prompt_lens):
        return Invalid(
            f"prompt_len values {sorted(st['prompt_lens'])} are not all in the manifest's "
            f"prompt_lens {shard.prompt_lens}"
        )
    n_exact = m.get("n_exact")
    if _is_int(n_exact) and n_exact != st["n_exact"]:
        return Invalid(f"manifest n_exact={n_exact} but the file has {st['n_exact']} exact matches")
    return None


def _canonical(shard: Shard, st: dict[str, Any]) -> bool:
    """Rows are exactly seq_start, seq_start+1, ... in file order, one prompt length: unique by
    construction."""
    return (
        len(shard.prompt_lens) == 1
        and st["min_offset"] == st["max_offset"] == shard.manifest["seq_start"]
    )


def check_contents(con: duckdb.DuckDBPyConnection, shards: Sequence[Shard]) -> dict[int, Invalid]:
    """Row-level checks for many files in one scan; returns {index in `shards`: problem}."""
    problems: dict[int, Invalid] = {}
    position = {id(s): i for i, s in enumerate(shards)}
    for group in schema_groups(shards):
        try:
            cur = con.execute(
                _CHECKS_SQL.format(
                    files=sql_list([s.parquet_path for s in group]),
                    cont_lens="["
                    + ", ".join(str(int(s.manifest["cont_len"])) for s in group)
                    + "]",
                    prompt_lens="list_distinct(list(prompt_len))"
                    if group[0].has_prompt_len_column
                    else "[]",
                )
            )
        except duckdb.Error as e:
            if len(group) == 1:
                problems[position[id(group[0])]] = Invalid(
                    f"unreadable Parquet ({one_line(str(e))})"
                )
                continue
            # One unreadable file fails the whole scan: find it file by file.
            for s in group:
                try:
                    sub = check_contents(con, [s])
                except duckdb.Error as e:
                    sub = {0: Invalid(f"unreadable Parquet ({one_line(str(e))})")}
                if 0 in sub:
                    problems[position[id(s)]] = sub[0]
            continue
        cols = [d[0] for d in cur.description]
        stats = {row[0]: dict(zip(cols, row, strict=True)) for row in cur.fetchall()}
        needs_dup_check = []
        for i, s in enumerate(group):
            st = stats.get(i)
            if st is None:  # zero-row file: nothing to check row-wise
                continue
            bad = _problem_from_stats(s, st)
            if bad:
                problems[position[id(s)]] = bad
            elif not _canonical(s, st):
                needs_dup_check.append(s)
        if needs_dup_check:
            rows = con.execute(
                _DUPS_SQL.format(
                    files=sql_list([s.parquet_path for s in needs_dup_check]),
                    prompt_len="prompt_len" if group[0].has_prompt_len_column else "NULL",
                )
            ).fetchall()
            for file_index, n_values, example, copies in rows:
                s = needs_dup_check[file_index]
                problems[position[id(s)]] = Invalid(
                    f"duplicate seq_idx: {n_values} value(s) appear more than once "
                    f"(e.g. {example}, up to {copies} times)"
                )
    return problems


def ranges_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[0] < a[1] and b[0] < b[1]


def stage_checked(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    checks: Sequence[str],
    create_sql: str,
    kind_of: Callable[[str], str],
    read_error: str,
) -> None:
    """Run the per-column type checks (each a `SELECT col, val` of the offending values); the
    first column with bad values is one error naming the file, the column, how many and an
    example; otherwise run `create_sql` (the typed staging table). DuckDB errors become one
    line: f"{path}: {read_error} (...)"."""
    try:
        bad = con.execute(
            f"SELECT col, count(*), any_value(val) FROM ({' UNION ALL '.join(checks)}) "
            "GROUP BY col ORDER BY col LIMIT 1"
        ).fetchall()
        if bad:
            c, n, example = bad[0]
            raise MemwhError(
                f"{path}: column {c} has {n} value(s) that are not {kind_of(c)} (e.g. {example!r})"
            )
        con.execute(create_sql)
    except duckdb.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MemwhError(f"{path}: {read_error} ({first})") from None
