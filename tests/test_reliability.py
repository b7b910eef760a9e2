"""Every fault of the adversarial run (issue 13), one row each, plus issue 12's validation
points: what was done, and what memwh must answer (docs/guarantees.md states the promises).

Each test drives the real command line (or the real writer) against real files and a real
DuckDB file, and asserts the one-line message, the exit code, and that the database or the
outputs are unchanged (or correct). Read FAULTS for the list at a glance.

Permission faults need a user the file modes apply to: as root, the CLI runs under
`setpriv` without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (root then obeys file modes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "ingest"))
from ingest_helpers import score_table, snapshot, write_shard

from memwh.core import contract

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def cli(
    *args: str, as_user: bool = False, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`memwh ARGS` in a fresh process; as_user: subject to file modes even when run as root."""
    cmd = [sys.executable, "-c", "from memwh.cli import main; main()", *args]
    if as_user and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root: need setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def one_line_error(r: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """The command failed with `code`, no traceback, and its error line holds every fragment."""
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())  # the console may wrap long lines
    for f in fragments:
        assert f in text, f"{f!r} not in: {r.stderr}"
    return text


def ingest(root: Path, db: Path, *extra: str, as_user: bool = False) -> subprocess.CompletedProcess:
    return cli("ingest", str(root), "--db", str(db), "-q", *extra, as_user=as_user)


def rows_of(db: Path, model: str, revision: str = "step100") -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT seq_idx, prefix_match_len, loss FROM raw.scores "
            "WHERE model = ? AND revision = ? ORDER BY seq_idx",
            [model, revision],
        ).fetchall()
    finally:
        con.close()


def file_rows(path: Path) -> list[tuple]:
    t = pq.read_table(path, columns=["seq_idx", "prefix_match_len", "loss"])
    return sorted(
        zip(
            t["seq_idx"].to_pylist(),
            t["prefix_match_len"].to_pylist(),
            [float(np.float32(x)) for x in t["loss"].to_pylist()],
            strict=True,
        )
    )


def with_values(lo: int, hi: int, **cols: object) -> pa.Table:
    """A valid shard table with some cells of some columns replaced (first row)."""
    t = score_table(lo, hi)
    for name, value in cols.items():
        values = t[name].to_pylist()
        values[0] = value
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, t[name].type))
    return t


def rewrite_manifest(man: Path, **fields: object) -> None:
    m = json.loads(man.read_text())
    m.update(fields)
    man.write_text(json.dumps(m))


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    """A results root with one complete good unit (demo-1m@step100, 2 shards) and a db path."""
    root = tmp_path / "runs"
    write_shard(root, shard=0)
    write_shard(root, shard=1)
    return root, tmp_path / "wh.duckdb"


def good_loaded(db: Path) -> None:
    """The good unit of `good` is in the database, complete."""
    assert len(rows_of(db, "demo-1m")) == 1000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with 2 models x 2 checkpoints ingested and built (the real dbt build)."""
    base = tmp_path_factory.mktemp("built")
    root = base / "runs"
    for m in ("demo-1m", "demo-4m"):
        for rev in ("step100", "step200"):
            for s in range(2):
                write_shard(root, m, rev, s, 2, total=2000, seed=len(m) + len(rev))
    db = base / "wh.duckdb"
    assert ingest(root, db).returncode == 0
    r = cli("build", "--db", str(db), "-q")
    assert r.returncode == 0, r.stderr
    return db


def wait_until_holding(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    """Until `proc` has `path` open (read from /proc: opening the file ourselves to find out
    would take DuckDB's lock and could make the process fail)."""
    deadline = time.time() + timeout
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    while time.time() < deadline and proc.poll() is None:
        try:
            if any(os.path.realpath(fd) == str(path) for fd in fd_dir.iterdir()):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {proc.pid} never opened {path}")


def copy_db(db: Path, dest: Path) -> Path:
    """A copy of `db` with its dbt target (the built warehouse's unit-test stamp comes along:
    a build of the copy on the same code runs its unit tests only when told to)."""
    from memwh.core.config import dbt_target_dir

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / db.name
    shutil.copy(db, out)
    if dbt_target_dir(db).is_dir():
        shutil.copytree(
            dbt_target_dir(db), dbt_target_dir(out), ignore=shutil.ignore_patterns("logs")
        )
    return out


# --------------------------------------------------------------------------- the faults


def f01_glob_characters_in_paths(tmp_path: Path) -> None:
    """A unit v[1] next to v1 (likewise v? and v*), and roots run[1] / run? next to run1 /
    runX: each unit keeps its own rows (read_parquet used to glob `v[1]` to `v1`)."""
    cases = [
        ("out-a", ("v1", "v[1]")),
        ("out-b", ("v1", "v?")),
        ("out-c", ("v1", "v*")),
        ("run1", ("v1",)),
        ("run[1]", ("v1",)),
        ("runX", ("v1",)),
        ("run?", ("v1",)),
    ]
    for i, (folder, models) in enumerate(cases):
        root = tmp_path / folder
        for j, model in enumerate(models):
            write_shard(root, model, num_shards=1, total=300 + 100 * i + 400 * j, seed=i + j)
        db = tmp_path / f"wh{i}.duckdb"
        r = ingest(root, db)
        assert r.returncode == 0, r.stderr
        for j, model in enumerate(models):
            pq_path, _ = contract.shard_paths(root, model, "step100", 0, 1)
            assert len(rows_of(db, model)) == 300 + 100 * i + 400 * j
            assert rows_of(db, model) == file_rows(pq_path)


def f02_non_finite_or_negative_metrics(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    cases = {
        "nan-loss": ("loss", float("nan"), "loss value(s) NaN, infinite or not >= 0"),
        "inf-loss": ("loss", float("inf"), "loss value(s) NaN, infinite or not >= 0"),
        "neg-loss": ("loss", -0.5, "loss value(s) NaN, infinite or not >= 0"),
        "ninf-mink": ("min_k_logprob", float("-inf"), "min_k_logprob value(s) NaN, infinite"),
        "pos-mink": ("min_k_logprob", 0.7, "min_k_logprob value(s) NaN, infinite or not <= 0"),
        "nan-zlib": ("zlib_ratio", float("nan"), "zlib_ratio value(s) NaN, infinite or not >= 0"),
        "neg-zlib": ("zlib_ratio", -1.0, "zlib_ratio value(s) NaN, infinite or not >= 0"),
    }
    for model, (col, value, _) in cases.items():
        write_shard(root, model, num_shards=1, table=with_values(0, 1000, **{col: value}))
    r = ingest(root, db)
    text = one_line_error(r, 1, *(msg for _, _, msg in cases.values()))
    for model in cases:
        assert f"model={model}/" in text and rows_of(db, model) == []
    good_loaded(db)


def f03_run_id_not_a_string(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    _, m1 = write_shard(root, "int-id", num_shards=1)
    _, m2 = write_shard(root, "null-id", num_shards=1)
    rewrite_manifest(m1, run_id=12345)
    rewrite_manifest(m2, run_id=None)
    for _ in range(2):  # the good unit loads, and a rerun is not blocked either
        r = ingest(root, db)
        one_line_error(
            r, 1, "manifest field 'run_id' = 12345 is not", "manifest field 'run_id' is null"
        )
        good_loaded(db)
        assert rows_of(db, "int-id") == rows_of(db, "null-id") == []


def f04_missing_checksum(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    _, m1 = write_shard(root, "empty-sha", num_shards=1)
    _, m2 = write_shard(root, "null-sha", num_shards=1)
    rewrite_manifest(m1, parquet_sha256="")
    rewrite_manifest(m2, parquet_sha256=None)
    r = ingest(root, db)
    one_line_error(
        r, 1, "manifest field 'parquet_sha256' = '' is not the file's sha256",
        "manifest field 'parquet_sha256' is null",
    )  # fmt: skip
    good_loaded(db)
    assert rows_of(db, "empty-sha") == rows_of(db, "null-sha") == []


def f05_bad_manifest_values_and_mixed_settings(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    for model, fields in {
        "bogus-mode": {"mode": "bogus"},
        "neg-prompt": {"prompt_len": -7},
        "v0": {"contract_version": 0},
    }.items():
        write_shard(root, model, num_shards=1, manifest_overrides=fields)
    # one unit, two shards with different dtype; another with different data
    write_shard(root, "mixed-dtype", shard=0)
    write_shard(root, "mixed-dtype", shard=1, manifest_overrides={"dtype": "float16"})
    write_shard(root, "mixed-mode", shard=0)
    write_shard(root, "mixed-mode", shard=1, manifest_overrides={"mode": "generate"})
    r = ingest(root, db)
    one_line_error(
        r,
        1,
        "manifest field 'mode' = 'bogus' is not fast or generate or imported",
        "manifest field 'prompt_len' = -7 is not an integer in 1..32767",
        "manifest field 'contract_version' = 0 is not a memwh contract version",
        "dtype 'float16' here vs 'float32' there",
        "mode 'generate' here vs 'fast' there",
        "one unit holds one run's settings",
    )
    for model in ("bogus-mode", "neg-prompt", "v0"):
        assert rows_of(db, model) == []
    assert len(rows_of(db, "mixed-dtype")) == 500  # shard 0 only: the first one defines the unit
    good_loaded(db)
    # Across ingests too: a later shard of the unit with another dtype is refused (another
    # data_fingerprint would be another dataset's unit: tests/ingest/test_settings_kept_apart.py).
    before = snapshot(db)
    write_shard(root, revision="step200", shard=0)
    assert ingest(root, db).returncode == 1
    write_shard(root, revision="step200", shard=1, manifest_overrides={"dtype": "float16"})
    r = ingest(root, db)
    one_line_error(r, 1, "dtype 'float16' here vs 'float32' there")
    assert len(rows_of(db, "demo-1m", "step200")) == 500
    assert snapshot(db)["score_rows"] != before["score_rows"]  # shard 0 of step200 did load


def f06_unreadable_unit_folder(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    write_shard(root, "locked", num_shards=1)
    locked = contract.unit_dir(root, "locked", "step100")
    locked.chmod(0)
    try:
        r = ingest(root, db, as_user=True)
        one_line_error(r, 1, f"{locked}: cannot read this folder (Permission denied)", "chmod")
        good_loaded(db)
        before = snapshot(db)
        r = ingest(root, db, "--strict", as_user=True)
        one_line_error(r, 2, "nothing was loaded (--strict)", "cannot read this folder")
        assert snapshot(db) == before
        # An ingested unit whose folder became unreadable: reported, its rows stay.
        unit = contract.unit_dir(root, "demo-1m", "step100")
        unit.chmod(0)
        r = ingest(root, db, as_user=True)
        one_line_error(r, 1, f"{unit}: cannot read this folder")
        assert snapshot(db) == before
    finally:
        locked.chmod(0o755)
        contract.unit_dir(root, "demo-1m", "step100").chmod(0o755)


def f07_written_files_follow_the_umask(tmp_path: Path) -> None:
    """The writers `memwh infer` uses (score Parquet, manifest, sequence metadata)."""
    old = os.umask(0o002)
    try:
        pq_path, man_path = contract.shard_paths(tmp_path, "m", "step1", 0, 1)
        sha = contract.write_scores_parquet(score_table(0, 10), pq_path)
        contract.write_manifest(man_path, dict.fromkeys(contract.MANIFEST_REQUIRED, sha))
        meta = contract.sequences_meta_path(tmp_path, "fp")
        contract.atomic_write_bytes(meta, b"x")
        os.umask(0o027)
        other = tmp_path / "other.parquet"
        contract.write_scores_parquet(score_table(0, 10), other)
    finally:
        os.umask(old)
    for p in (pq_path, man_path, meta):
        assert p.stat().st_mode & 0o777 == 0o664, (p, oct(p.stat().st_mode))
    assert other.stat().st_mode & 0o777 == 0o640


def _tiny_model(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "inference"))
    from helpers import make_model, make_tokenizer

    make_model(0).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


def _sparse_tokens(path: Path) -> Path:
    idx = [0, 1, 2, 3, 10, 11]
    pq.write_table(
        pa.table(
            {
                "seq_idx": pa.array(idx, pa.int64()),
                "tokens": pa.array([[5] * 64 for _ in idx], pa.list_(pa.int32())),
            }
        ),
        path,
    )
    return path


def f08_zero_row_unit_refused_at_scoring(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "tiny")
    data = _sparse_tokens(tmp_path / "tokens.parquet")
    out = tmp_path / "out"
    r = cli("infer", "--model", str(model), "--data", str(data), "--out", str(out),
            "--seq-range", "4:9", "-q")  # fmt: skip
    one_line_error(r, 2, "--seq-range 4:9", "has no sequence in that range", "pick a range")
    assert not list(out.rglob("*.manifest.json")) and "done:" not in r.stderr


def f09_corrupt_page_behind_matching_checksum(
    tmp_path: Path, good: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, db = good
    p, man = write_shard(root, "corrupt", num_shards=1, total=20000)
    col = pq.ParquetFile(p).metadata.row_group(0).column(7)  # zlib_ratio's data page
    data = bytearray(p.read_bytes())
    for i in range(col.data_page_offset + 40, col.data_page_offset + 240):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    rewrite_manifest(man, parquet_sha256=contract.sha256_file(p))
    r = ingest(root, db)
    one_line_error(r, 1, f"{p}: unreadable Parquet (", "rerun the shard with --force")
    assert "transaction is aborted" not in r.stderr.lower()
    good_loaded(db)
    assert rows_of(db, "corrupt") == []
    # The same file failing at load time (validation bypassed) gets the same verdict.
    import memwh.ingest.loader as loader
    from memwh.ingest import ingest_root

    monkeypatch.setattr(loader, "check_contents", lambda con, shards: {})
    db2 = tmp_path / "wh2.duckdb"
    rep = ingest_root(root, db2, progress=False)
    assert [b.path for b in rep.bad] == [p]
    assert "unreadable Parquet (" in rep.bad[0].problem
    assert "aborted" not in rep.bad[0].problem
    assert len(rows_of(db2, "demo-1m")) == 1000


def f10_database_in_read_only_folder(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    assert ingest(root, db).returncode == 0
    write_shard(root, revision="step200", num_shards=1)
    before = snapshot(db)
    db.parent.chmod(0o555)
    try:
        r = ingest(root, db, as_user=True)
    finally:
        db.parent.chmod(0o755)
    one_line_error(r, 2, f"{db.parent}: the database folder is read-only", "nothing was changed")
    assert "--force" not in r.stderr and "bad:" not in r.stderr
    assert snapshot(db) == before


def f11_build_on_read_only_database(built: Path, tmp_path: Path) -> None:
    db = copy_db(built, tmp_path / "ro")
    before = db.read_bytes()
    db.chmod(0o444)
    r = cli("build", "--db", str(db), as_user=True)
    one_line_error(r, 2, f"{db}: the database file is read-only", "nothing was changed")
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""
    assert db.read_bytes() == before


def f12_empty_query(built: Path) -> None:
    for q in ("", ";", "  ;  "):
        r = cli("sql", q, "--db", str(built))
        one_line_error(r, 2, "QUERY is empty")


def f13_table_output_is_capped(built: Path, tmp_path: Path) -> None:
    q = "select range as i from range(3000000)"
    r = cli("sql", q, "--db", str(built))
    assert r.returncode == 0, r.stderr
    assert "│ 999 " in r.stdout and "│ 1000 " not in r.stdout
    one_line = " ".join(r.stderr.split())
    assert "showing the first 1,000 rows" in one_line and "--format csv" in one_line
    out = tmp_path / "all.parquet"
    r = cli("sql", q, "--db", str(built), "--format", "parquet", "--out", str(out))
    assert r.returncode == 0 and pq.read_metadata(out).num_rows == 3_000_000
    r = cli("sql", "select 1 as x", "--db", str(built))
    assert r.returncode == 0 and "showing the first" not in r.stderr


def f14_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "results.txt"
    out.write_text("not a folder")
    r = cli("infer", "--model", str(tmp_path / "nomodel"), "--data", str(tmp_path / "d.parquet"),
            "--out", str(out))  # fmt: skip
    one_line_error(r, 2, f"--out {out}: is a file; pass a folder")
    assert out.read_text() == "not a folder"


def _sweep(tmp_path: Path, body: str) -> Path:
    write_tokens(tmp_path / "tokens.parquet", 100, 64)
    spec = tmp_path / "s.toml"
    spec.write_text(f'out = "out"\ndata = "tokens.parquet"\n{body}')
    return spec


def write_tokens(path: Path, n: int, length: int) -> None:
    pq.write_table(
        pa.table(
            {
                "seq_idx": pa.array(range(n), pa.int64()),
                "tokens": pa.array([[7] * length] * n, pa.list_(pa.int32())),
            }
        ),
        path,
    )


def f15_huge_revision_range_and_linear_duplicate_check(tmp_path: Path) -> None:
    spec = _sweep(
        tmp_path,
        '[[models]]\nlabel = "m"\nsource = "EleutherAI/pythia-70m"\n'
        "revisions = {start = 0, stop = 100000000, step = 1}\n",
    )
    r = cli("submit", str(spec), "--executor", "local", "--dry-run")
    one_line_error(r, 2, "models[0].revisions: expands to 100,000,001 revisions", "step")
    # 60,000 listed revisions with a duplicate at the end: found by a linear check.
    revs = [f"step{i}" for i in range(60_000)] + ["step59999"]
    spec = _sweep(
        tmp_path,
        '[[models]]\nlabel = "m"\nsource = "EleutherAI/pythia-70m"\n'
        f"revisions = {json.dumps(revs)}\n",
    )
    r = cli("submit", str(spec), "--executor", "local", "--dry-run", timeout=60)
    one_line_error(r, 2, "models[0].revisions: lists 'step59999' twice")
    assert not (tmp_path / "out").exists()


def f16_sweep_ranges_checked_against_the_data(tmp_path: Path) -> None:
    model = '[[models]]\nlabel = "m"\nsource = "EleutherAI/pythia-70m"\nrevisions = ["main"]\n'
    spec = _sweep(tmp_path, f"seq_range = [50, 500]\n{model}")
    r = cli("submit", str(spec), "--executor", "local", "--dry-run")
    one_line_error(r, 2, "seq_range: [50, 500] is outside the data", "indices 0:100")
    spec = _sweep(tmp_path, f"[scoring]\nprompt_len = 32\ncont_len = 64\n{model}")
    r = cli("submit", str(spec), "--executor", "local", "--dry-run")
    one_line_error(r, 2, "prompt_len + cont_len = 96 does not fit", "has 64 tokens")
    assert not (tmp_path / "out").exists()


def f17_brackets_in_error_text(tmp_path: Path) -> None:
    missing = tmp_path / "results[old]"
    r = cli("ingest", str(missing), "--db", str(tmp_path / "wh.duckdb"))
    one_line_error(r, 2, f"{missing}: no such folder")
    assert not (tmp_path / "wh.duckdb").exists()
    # Problems of a real ingest keep their brackets too.
    root = tmp_path / "results[old]"
    write_shard(root, num_shards=1, manifest_overrides={"mode": "[bold]x"})
    r = ingest(root, tmp_path / "wh.duckdb")
    one_line_error(r, 1, "results[old]/scores/", "manifest field 'mode' = '[bold]x' is not")


def f18_wrong_reason_or_silent_success(built: Path, tmp_path: Path) -> None:
    r = cli("infer", "--model", "x", "--data", "y", "--out", str(tmp_path / "o"),
            "--seq-range", "5:2")  # fmt: skip
    one_line_error(r, 2, "--seq-range 5:2: START must be >= 0 and smaller than END")
    assert "outside the data" not in r.stderr
    db = copy_db(built, tmp_path / "b")
    before = snapshot(db)
    r = cli("build", "--db", str(db), "--select", "nosuchmodel")
    one_line_error(r, 2, "--select nosuchmodel: matches no model, test or seed", "memwh dbt ls")
    assert "build ok" not in r.stderr
    for vars_, msg in {
        "{memorized_min_tokens: -1}": "--vars: memorized_min_tokens = -1 must be an integer in 1..32767",
        "{label_definition: exact}": "--vars: label_definition = 'exact' must be prefix_match or score",
        "{memorised_min_tokens: 16}": "--vars: unknown var 'memorised_min_tokens'",
    }.items():  # fmt: skip
        r = cli("build", "--db", str(db), "--vars", vars_)
        one_line_error(r, 2, msg)
    assert snapshot(db) == before
    r = cli("sql", "select count(*) from memwh_meta.builds", "--db", str(db), "-f", "csv")
    assert r.stdout.split() == ["count_star()", "1"]  # only the fixture's build ran


def f19_sql_during_a_build_never_waits(built: Path, tmp_path: Path) -> None:
    db = copy_db(built, tmp_path / "c")
    build = subprocess.Popen(
        [sys.executable, "-c", "from memwh.cli import main; main()", "build", "--db", str(db),
         "-q", "--full-refresh"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until_holding(build, db)
    answers: list[tuple[int, float, str]] = []
    while build.poll() is None:
        t0 = time.perf_counter()
        r = cli("sql", "select count(*) from memorization_rates", "--db", str(db), "-f", "csv",
                timeout=60)  # fmt: skip
        answers.append((r.returncode, time.perf_counter() - t0, r.stderr))
    _, err = build.communicate()
    assert build.returncode == 0, err  # queries never broke the build
    locked = [a for a in answers if a[0] != 0]
    assert locked, "no query ran while the build held the database"
    for code, _, stderr in locked:
        assert code == 2 and "database is locked by another process (held by PID" in stderr
        assert "Traceback" not in stderr
    r = cli("sql", "--help")
    assert "never blocks" not in r.stdout and "Never waits" in " ".join(r.stdout.split())


def f20_killed_build_leaves_a_marker(built: Path, tmp_path: Path) -> None:
    db = copy_db(built, tmp_path / "k")
    build = subprocess.Popen(
        [sys.executable, "-c", "from memwh.cli import main; main()", "build", "--db", str(db),
         "-q", "--full-refresh", "--unit-tests"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Once the build holds the file its marker row is written; kill -9 inside dbt's work.
    wait_until_holding(build, db)
    time.sleep(2.0)
    assert build.poll() is None, "the build ended before it could be killed"
    build.send_signal(signal.SIGKILL)
    build.wait()
    r = cli("sql", "select count(*) as n from raw.runs", "--db", str(db), "-f", "csv")
    assert r.returncode == 0 and r.stdout.split() == ["n", "8"]
    text = " ".join(r.stderr.split())
    assert "warning: the last `memwh build` was interrupted" in text
    assert f"PID {build.pid}" in text and "rerun `memwh build`" in text
    r = cli("report", "--db", str(db), "--out", str(tmp_path / "rep"), "--no-png")
    assert r.returncode == 0, r.stderr
    assert "the last `memwh build` was interrupted" in " ".join(r.stderr.split())
    assert "was interrupted" in (tmp_path / "rep" / "report.html").read_text()
    r = cli("build", "--db", str(db), "-q")
    assert r.returncode == 0, r.stderr
    r = cli("sql", "select 1", "--db", str(db))
    assert r.returncode == 0 and "warning" not in r.stderr


# --------------------------------------------------------------------------- issue 12, item 4


def i12_score_below_prefix_bound(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    assert ingest(root, db).returncode == 0
    before = snapshot(db)
    t = score_table(0, 1000)
    pml = t["prefix_match_len"].to_numpy().copy()
    i = int(np.flatnonzero((pml > 4) & (pml < 32))[0])
    score = t["memorization_score"].to_numpy(zero_copy_only=False).copy()
    score[i] = (pml[i] - 1) / 32  # below the matched prefix
    t = t.set_column(3, "memorization_score", pa.array(score, pa.float32()))
    p, _ = write_shard(root, "below", num_shards=1, table=t)
    r = ingest(root, db)
    one_line_error(r, 1, f"{p}: 1 memorization_score value(s) below prefix_match_len / cont_len")
    assert snapshot(db) == before


def i12_generate_row_without_score(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    assert ingest(root, db).returncode == 0
    before = snapshot(db)
    t = with_values(0, 1000, memorization_score=None)
    p, _ = write_shard(root, "gen", num_shards=1, table=t, manifest_overrides={"mode": "generate"})
    r = ingest(root, db)
    one_line_error(r, 1, f"{p}: 1 row(s) without memorization_score in a generate-mode shard")
    assert snapshot(db) == before
    # The same NULL in a fast-mode shard is the contract's normal case.
    write_shard(root, "fast", num_shards=1, table=t)
    assert ingest(root, db).returncode == 1 and len(rows_of(db, "fast")) == 1000


def i12_strict_covers_sequence_metadata(tmp_path: Path, good: tuple[Path, Path]) -> None:
    root, db = good
    seq = root / "sequences" / "corpus-abc123.parquet"
    seq.parent.mkdir(parents=True)
    pq.write_table(pa.table({"seq_idx": [0, 1, 1], "duplicates": [1, 2, 3]}), seq)
    r = ingest(root, db, "--strict")
    one_line_error(
        r, 2, "nothing was loaded (--strict)", f"{seq}: seq_idx has 0 NULL and 1 duplicate"
    )
    # nothing stored: no file, or every raw table empty
    assert all(rows == [] for rows in snapshot(db).values())
    r = ingest(root, db)  # without --strict the good shards load, the bad file is reported
    one_line_error(r, 1, f"{seq}: seq_idx has 0 NULL and 1 duplicate")
    good_loaded(db)


@dataclass(frozen=True)
class Fault:
    row: str  # issue 13's row number, or "12.4" for issue 12's validation item
    done: str  # what was done
    check: Callable[..., None]


FAULTS = [
    Fault("1", "unit v[1] next to v1; [ * ? in the output root", f01_glob_characters_in_paths),
    Fault("2", "NaN / inf / negative loss, min_k_logprob, zlib_ratio", f02_non_finite_or_negative_metrics),
    Fault("3", "manifest run_id an integer or null", f03_run_id_not_a_string),
    Fault("4", "parquet_sha256 empty or null", f04_missing_checksum),
    Fault("5", "bogus mode / prompt_len / contract_version; shards disagree", f05_bad_manifest_values_and_mixed_settings),
    Fault("6", "a unit folder the user cannot read", f06_unreadable_unit_folder),
    Fault("7", "output files ignore the umask", f07_written_files_follow_the_umask),
    Fault("8", "a 0-row unit (--seq-range over missing indices)", f08_zero_row_unit_refused_at_scoring),
    Fault("9", "corrupt data page behind a matching checksum", f09_corrupt_page_behind_matching_checksum),
    Fault("10", "database in a read-only folder", f10_database_in_read_only_folder),
    Fault("11", "memwh build on a read-only database file", f11_build_on_read_only_database),
    Fault("12", 'memwh sql "" / ";"', f12_empty_query),
    Fault("13", "memwh sql table output of 3M rows", f13_table_output_is_capped),
    Fault("14", "memwh infer --out pointing at a file", f14_out_is_a_file),
    Fault("15", "sweep revision range of 100M; quadratic duplicate check", f15_huge_revision_range_and_linear_duplicate_check),
    Fault("16", "sweep seq_range outside the data; prompt + cont too long", f16_sweep_ranges_checked_against_the_data),
    Fault("17", "brackets in an error text", f17_brackets_in_error_text),
    Fault("18", "--seq-range 5:2; --select nosuchmodel; --vars out of range", f18_wrong_reason_or_silent_success),
    Fault("19", "memwh sql while a build runs", f19_sql_during_a_build_never_waits),
    Fault("20", "kill -9 of memwh build", f20_killed_build_leaves_a_marker),
    Fault("12.4a", "a score below its prefix bound", i12_score_below_prefix_bound),
    Fault("12.4b", "a generate row without score", i12_generate_row_without_score),
    Fault("12.4c", "--strict and a bad sequence-metadata file", i12_strict_covers_sequence_metadata),
]  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS, ids=[f"row{f.row}" for f in FAULTS])
def test_fault(fault: Fault, request: pytest.FixtureRequest) -> None:
    import inspect

    wanted = inspect.signature(fault.check).parameters
    fault.check(**{name: request.getfixturevalue(name) for name in wanted})


def test_every_row_of_issue_13_has_a_test() -> None:
    rows = [f.row for f in FAULTS if "." not in f.row]
    assert rows == [str(i) for i in range(1, 21)]


def test_guarantees_page_lists_every_fault() -> None:
    """docs/guarantees.md (linked from the README) states a promise for every row."""
    page = (REPO / "docs" / "guarantees.md").read_text()
    rows = [line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| ")]
    assert rows[1:] == [f.row for f in FAULTS if "." not in f.row]
    assert "(docs/guarantees.md)" in (REPO / "README.md").read_text()


def test_real_scoring_output_passes_every_check(tmp_path: Path) -> None:
    """The stricter validation must never refuse what `memwh infer` writes: a tiny model
    scored in fast and generate mode (with sequence metadata) ingests with no problem."""
    sys.path.insert(0, str(REPO / "tests" / "inference"))
    from helpers import build_sequences, save_suite, write_token_table
    from transformers import AutoModelForCausalLM

    from memwh.inference_jobs import score
    from memwh.ingest import ingest_root

    suite = save_suite(tmp_path / "suite", {"step1": 11})
    model = AutoModelForCausalLM.from_pretrained(suite / "step1").eval()
    data = write_token_table(tmp_path / "tokens.parquet", build_sequences(model, 30, seed=5))
    out = tmp_path / "out"
    for mode in ("fast", "generate"):
        for shard in range(2):
            res = score(str(suite), str(data), out, revision="step1", name=f"tiny-{mode}",
                        mode=mode, suppress_eos=True, shard=shard, num_shards=2, progress=False)  # fmt: skip
            assert res.status == "done"
    rep = ingest_root(out, tmp_path / "wh.duckdb", strict=True, progress=False)
    assert rep.ok and not rep.problems, [p.line() for p in rep.problems]
    assert rep.files_loaded == 4 and rep.rows == 60 and rep.sequence_files == 1
    for p in out.rglob("*.parquet"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
