"""Warehouse and ingest at the real shapes of the memorization literature.

    python -m benchmarks.bench_scale lesci  [--work DIR]   # 8 models x 144 checkpoints x 16,384
    python -m benchmarks.bench_scale pythia [--work DIR]   # 3 units x 146,432,000 rows
    python -m benchmarks.bench_scale dense  [--work DIR]   # 80M rows, memorized_min_tokens 16

* lesci: Lesci et al. (2024)'s grid, 1,152 units, 18.9M score rows, generated in SQL with the
  warehouse benchmark's generator (memorization 0.3%..2%, shared latent so sets overlap).
  Full `memwh build`, no-op rebuild, + one checkpoint (a new final revision of one model),
  each a fresh `memwh build` process (the shell user's view), peak RSS, and the pair count.
* pythia: three units of the full pre-shuffled Pile of one checkpoint (146,432,000 sequences
  each: pythia-70m/160m/410m-like sizes of one family at step143000) written as Parquet shards
  by `memwh infer`'s contract writers, then `memwh ingest` and a full `memwh build` with
  MEMWH_DUCKDB_MEMORY_LIMIT set; peak RSS of each process.
* dense: the 80M-row warehouse benchmark (8 x 10 x 1M) with prefix_match_len spread so about
  half the rows reach 16 tokens; full build at memorized_min_tokens 32 (sparse) and 16 (dense),
  and the incremental build after 8 units changed against a full refresh.

Peak RSS is the build/ingest process's ru_maxrss (os.wait4). Results: benchmarks/results/
scale.json (one key per shape) and scale.md. The data is generated under --work (default
/tmp/memwh-bench-scale; tens of GB for pythia) and reused when its parameters match.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from benchmarks.bench_warehouse import add_unit
from memwh.ingest.schema import ensure_raw_schema

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LESCI = {"models": 8, "checkpoints": 144, "sequences": 16_384}
PYTHIA_ROWS = 146_432_000  # sequences of the pre-shuffled Pile one Pythia checkpoint scores
PYTHIA_MODELS = ("pythia-70m", "pythia-160m", "pythia-410m")
PYTHIA_FILES = 143  # ~1M rows per shard
TARGETS = {
    "lesci_full_build_seconds": 180,
    "lesci_add_checkpoint_seconds": 15,
    "pythia_ingest_rows_per_second": 3_000_000,
    "pythia_build_seconds": 300,
    "pythia_peak_rss_gb": 8,
    "dense_over_sparse": 3,
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(cmd: list[str], env: dict | None = None) -> dict:
    """A fresh process; wall seconds, peak RSS (ru_maxrss), CPU seconds and the load around it."""
    load_before = _load()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed with exit code {code}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "load_before": load_before,
        "load_after": _load(),
    }


# dbt selectors left out of every build (--exclude), e.g. the forecast models, to time the rest
EXCLUDE: list[str] = []


def memwh_build(db: Path, *flags: str, env: dict | None = None) -> dict:
    if not EXCLUDE:
        return run([sys.executable, "-m", "memwh", "build", "-q", "--db", str(db), *flags], env)
    # `memwh build` has no --exclude: the same dbt build through `memwh dbt`, unit tests excluded
    cmd = [sys.executable, "-m", "memwh", "dbt", "--db", str(db), "--quiet", "build"]
    cmd += [*flags, "--exclude", *EXCLUDE, "--exclude-resource-type", "unit_test"]
    return run(cmd, env)


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


def _stamp_ok(stamp: Path, params: dict) -> bool:
    return stamp.exists() and json.loads(stamp.read_text()) == params


def _rate(mi: int, j: int, n_models: int, n_ckpt: int) -> float:
    return 0.003 + 0.017 * (mi * n_ckpt + j) / (n_models * n_ckpt - 1)


def generate_grid(db: Path, n_models: int, n_ckpt: int, n_seq: int, pml_exponent: float) -> None:
    """n_models x n_ckpt units of n_seq rows (one shard each) straight into the raw layer."""
    db.parent.mkdir(parents=True, exist_ok=True)
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        ensure_raw_schema(con)
        for mi in range(n_models):
            for j in range(n_ckpt):
                add_unit(
                    con,
                    mi,
                    (j + 1) * 1000,
                    _rate(mi, j, n_models, n_ckpt),
                    n_seq,
                    pml_exponent=pml_exponent,
                )
        con.execute(
            f"""insert into raw.sequences (data_fingerprint, seq_idx, duplicates, is_canary)
            select 'synth-corpus', i,
                   greatest(1, floor(exp(3.0 * (hash(i) % 1000000) / 1e6)))::integer, false
            from range({n_seq}) t(i)"""
        )
        con.execute("checkpoint")
    finally:
        con.close()


def _cached_grid(work: Path, name: str, **params) -> tuple[Path, Path]:
    """A generated grid DB (cached) and a fresh working copy of it."""
    src, stamp = work / f"{name}.raw.duckdb", work / f"{name}.params.json"
    if not _stamp_ok(stamp, params):
        t = time.perf_counter()
        generate_grid(src, **params)
        stamp.write_text(json.dumps(params))
        print(f"{name}: generated in {time.perf_counter() - t:.0f}s", flush=True)
    db = work / f"{name}.duckdb"
    db.with_name(db.name + ".wal").unlink(missing_ok=True)  # of an interrupted earlier run
    shutil.copy(src, db)
    shutil.rmtree(work / f".{db.name}.dbt", ignore_errors=True)
    return src, db


def bench_lesci(work: Path) -> dict:
    n_models, n_ckpt, n_seq = LESCI["models"], LESCI["checkpoints"], LESCI["sequences"]
    _, db = _cached_grid(
        work, "lesci", n_models=n_models, n_ckpt=n_ckpt, n_seq=n_seq, pml_exponent=6.0
    )
    first = memwh_build(db)  # untimed: unit tests, dbt's first parse of this project
    print(f"lesci first build (unit tests, parse): {first['seconds']}s", flush=True)
    full = memwh_build(db, "--full-refresh")
    print(f"lesci full build: {full}", flush=True)
    noop = memwh_build(db)
    print(f"lesci no-op: {noop}", flush=True)
    pairs = _count(db, "select count(*) from main.int_unit_pairs")
    con = duckdb.connect(str(db))
    try:
        add_unit(con, 0, (n_ckpt + 1) * 1000, _rate(0, n_ckpt - 1, n_models, n_ckpt), n_seq)
    finally:
        con.close()
    add = memwh_build(db)
    print(f"lesci + one checkpoint: {add}", flush=True)
    pairs_after = _count(db, "select count(*) from main.int_unit_pairs")
    final_only = memwh_build(db, "--vars", "{checkpoint_pairs: final_only}")
    pairs_final_only = _count(db, "select count(*) from main.int_unit_pairs")
    units = n_models * n_ckpt
    return {
        "units": units,
        "score_rows": units * n_seq,
        "full_build": full,
        "noop_rebuild": noop,
        "add_one_checkpoint": add,
        "pairs": pairs,
        "pairs_if_every_pair": units * (units - 1) // 2,
        "pairs_after_add": pairs_after,
        "switch_to_final_only": final_only,
        "pairs_final_only": pairs_final_only,
    }


def generate_pythia(root: Path) -> float:
    from benchmarks.bench_ingest import write_unit

    t = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    for i, model in enumerate(PYTHIA_MODELS):
        write_unit(root, model, "step143000", PYTHIA_ROWS, PYTHIA_FILES, seed=i)
        print(f"pythia: wrote {model} ({time.perf_counter() - t:.0f}s)", flush=True)
    return time.perf_counter() - t


def bench_pythia(work: Path, memory_limit: str) -> dict:
    root, stamp = work / "pythia-root", work / "pythia.params.json"
    params = {"rows": PYTHIA_ROWS, "files": PYTHIA_FILES, "models": list(PYTHIA_MODELS)}
    gen_s = None
    if not _stamp_ok(stamp, params):
        gen_s = generate_pythia(root)
        stamp.write_text(json.dumps(params))
    db = work / "pythia.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(work / f".{db.name}.dbt", ignore_errors=True)
    env = {"MEMWH_DUCKDB_MEMORY_LIMIT": memory_limit}
    ingest = run([sys.executable, "-m", "memwh", "ingest", str(root), "--db", str(db), "-q"], env)
    rows = _count(db, "select count(*) from raw.score_rows")
    ingest["rows_per_second"] = round(rows / ingest["seconds"])
    print(f"pythia ingest: {ingest}", flush=True)
    # bench_ingest's generator has no family/size metadata: one family, sizes from the names
    con = duckdb.connect(str(db))
    try:
        for model, n in zip(PYTHIA_MODELS, (70e6, 160e6, 410e6), strict=True):
            con.execute(
                "update raw.runs set family = 'pythia', n_params = ?, sequences_per_step = 1024 "
                "where model = ?",
                [int(n), model],
            )
    finally:
        con.close()
    build = memwh_build(db, env=env)
    print(f"pythia build: {build}", flush=True)
    noop = memwh_build(db, env=env)
    return {
        "units": len(PYTHIA_MODELS),
        "rows_per_unit": PYTHIA_ROWS,
        "score_rows": rows,
        "shards_per_unit": PYTHIA_FILES,
        "generate_seconds": gen_s,
        "memory_limit": memory_limit,
        "ingest": ingest,
        "full_build": build,
        "noop_rebuild": noop,
        "db_gb": round(db.stat().st_size / 1e9, 2),
        "pairs": _count(db, "select count(*) from main.int_unit_pairs"),
    }


def bench_dense(work: Path, n_seq: int) -> dict:
    _, db = _cached_grid(work, "dense", n_models=8, n_ckpt=10, n_seq=n_seq, pml_exponent=1.0)
    dense_vars = ("--vars", "{memorized_min_tokens: 16}")
    if not EXCLUDE:  # with --exclude, unit tests are left out: no warm-up build needed
        memwh_build(db)  # untimed: unit tests, parse
    sparse = memwh_build(db, "--full-refresh")
    print(f"dense bench, sparse labels (32 tokens): {sparse}", flush=True)
    if not EXCLUDE:
        memwh_build(db, *dense_vars)  # untimed: unit tests rerun for the new vars
    dense = memwh_build(db, *dense_vars, "--full-refresh")
    print(f"dense labels (16 tokens): {dense}", flush=True)
    rate = _count(
        db,
        "select sum(n_memorized)::double / sum(n_scored) from main.memorization_rates",
    )
    # 8 units change (new run ids, one per model), then incremental vs full refresh
    con = duckdb.connect(str(db))
    try:
        for mi in range(8):
            run_id = f"bench-synth-{mi}-step10000"
            con.execute(
                "delete from raw.score_rows where run_key in "
                f"(select run_key from raw.runs where run_id = '{run_id}')"
            )
            con.execute(f"delete from raw.runs where run_id = '{run_id}'")
            add_unit(con, mi, 10_000, _rate(mi, 9, 8, 10), n_seq, pml_exponent=1.0)
    finally:
        con.close()
    incremental = memwh_build(db, *dense_vars)
    print(f"dense, 8 changed units, incremental: {incremental}", flush=True)
    full_after = memwh_build(db, *dense_vars, "--full-refresh")
    print(f"dense, full refresh: {full_after}", flush=True)
    return {
        "score_rows": 80 * n_seq,
        "memorized_fraction_at_16": round(rate, 3),
        "sparse_full_build": sparse,
        "dense_full_build": dense,
        "dense_over_sparse": round(dense["seconds"] / sparse["seconds"], 2),
        "dense_8_changed_incremental": incremental,
        "dense_full_refresh": full_after,
    }


def write_results(key: str, result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "scale.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = result
    data["targets"] = TARGETS
    path.write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "scale.md").write_text(render_md(data))


def _s(r: dict | None) -> str:
    if not r:
        return "n/a"
    cpu = f" ({r['cpu_seconds']:.1f} CPU s)" if "cpu_seconds" in r else ""
    load = f", load {r['load_before'][0]} -> {r['load_after'][0]}" if "load_before" in r else ""
    return f"{r['seconds']:.1f} s{cpu}, peak RSS {r['peak_rss_mb'] / 1024:.2f} GB{load}"


def render_md(d: dict) -> str:
    md = ["# Warehouse at the real shapes", ""]
    md.append(
        "Each step is a fresh process (`memwh build` / `memwh ingest`, as from a shell); peak RSS "
        "is that process's ru_maxrss. The machine (2 cores, 24 GB) was shared with other jobs: "
        "load averages are recorded per run, and timings on an idle machine are lower."
    )
    if "lesci" in d:
        r = d["lesci"]
        md += [
            "",
            f"## Lesci et al. shape: {r['units']:,} units, {r['score_rows']:,} rows "
            f"({r['when']}, load {r['load_before']} -> {r['load_after']})",
            "",
            *(
                [f"Left out of every build: `{' '.join(r['excluded'])}` (timed apart).", ""]
                if r.get("excluded")
                else []
            ),
            "| step | result | target |",
            "|---|---|---|",
            f"| full build | {_s(r['full_build'])} | <= 180 s |",
            f"| no-op rebuild | {_s(r['noop_rebuild'])} | |",
            f"| + one checkpoint (a new final revision) | {_s(r['add_one_checkpoint'])} | <= 15 s |",
            f"| switch to `checkpoint_pairs: final_only` | {_s(r['switch_to_final_only'])} | |",
            "",
            f"Pairs formed: **{r['pairs']:,}** (all_later; every pair of units would be "
            f"{r['pairs_if_every_pair']:,}); {r['pairs_after_add']:,} after the new checkpoint; "
            f"{r['pairs_final_only']:,} with final_only.",
        ]
    if "pythia" in d:
        r = d["pythia"]
        md += [
            "",
            f"## Pythia unit shape: {r['units']} units x {r['rows_per_unit']:,} rows "
            f"({r['when']}, load {r['load_before']} -> {r['load_after']})",
            "",
            f"MEMWH_DUCKDB_MEMORY_LIMIT={r['memory_limit']} for both steps; "
            f"{r['shards_per_unit']} Parquet shards per unit; database {r['db_gb']} GB.",
            *(
                ["", f"Left out of the builds: `{' '.join(r['excluded'])}` (timed apart)."]
                if r.get("excluded")
                else []
            ),
            "",
            "| step | result | target |",
            "|---|---|---|",
            f"| ingest ({r['score_rows']:,} rows) | {_s(r['ingest'])}, "
            f"**{r['ingest']['rows_per_second'] / 1e6:.2f} M rows/s** | >= 3 M rows/s |",
            f"| full build | {_s(r['full_build'])} | <= 300 s, <= 8 GB |",
            *(
                [
                    f"| full build, before the history fix | {_s(r['full_build_before_history_fix'])} | |"
                ]
                if "full_build_before_history_fix" in r
                else []
            ),
            f"| no-op rebuild | {_s(r['noop_rebuild'])} | |",
        ]
    if "dense" in d:
        r = d["dense"]
        md += [
            "",
            f"## Dense memorization: {r['score_rows']:,} rows, "
            f"{r['memorized_fraction_at_16']:.0%} memorized at 16 tokens "
            f"({r['when']}, load {r['load_before']} -> {r['load_after']})",
            "",
            *(
                [f"Left out of every build: `{' '.join(r['excluded'])}` (timed apart).", ""]
                if r.get("excluded")
                else []
            ),
            "| step | result | target |",
            "|---|---|---|",
            f"| full build, default labels (32 tokens, sparse) | {_s(r['sparse_full_build'])} | |",
            f"| full build, memorized_min_tokens 16 (dense) | {_s(r['dense_full_build'])} "
            f"(**{r['dense_over_sparse']}x** sparse) | <= 3x |",
            f"| dense, 8 changed units, incremental | {_s(r['dense_8_changed_incremental'])} | "
            "<= full refresh |",
            f"| dense, full refresh | {_s(r['dense_full_refresh'])} | |",
        ]
        if "rerun" in r:  # the two full builds again, after a later change
            q = r["rerun"]
            md += [
                "",
                f"Rerun of the two full builds ({q['why']}):",
                "",
                "| step | result | target |",
                "|---|---|---|",
                f"| full build, sparse | {_s(q['sparse_full_build'])} | |",
                f"| full build, dense | {_s(q['dense_full_build'])} "
                f"(**{q['dense_over_sparse']}x** sparse) | <= 3x |",
            ]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=["lesci", "pythia", "dense"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/memwh-bench-scale"))
    ap.add_argument("--memory-limit", default="6GB", help="pythia: DuckDB memory_limit")
    ap.add_argument("--sequences", type=int, default=1_000_000, help="dense: sequences per unit")
    ap.add_argument("--exclude", nargs="*", default=[], help="dbt selectors left out of builds")
    args = ap.parse_args(argv)
    EXCLUDE[:] = args.exclude
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = _load()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    if args.shape == "lesci":
        result = bench_lesci(args.work)
    elif args.shape == "pythia":
        result = bench_pythia(args.work, args.memory_limit)
    else:
        result = bench_dense(args.work, args.sequences)
    result.update(
        excluded=args.exclude,
        when=when,
        load_before=load_before,
        load_after=_load(),
        machine=f"{platform.machine()} cores={os.cpu_count()}",
    )
    write_results(args.shape, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
