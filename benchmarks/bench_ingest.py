"""Ingest benchmark: memwh ingest (DuckDB over Parquet) vs the peers' pandas read_csv + concat.

    python -m benchmarks.bench_ingest [--rows 50000000] [--files 500] [--pandas-files 50]

1. Generates ``--rows`` synthetic score rows in ``--files`` shards with memwh.core.contract's
   writers (Parquet + manifest, as `memwh infer` writes them) and the same rows of the
   first ``--pandas-files`` shards as per-rank CSVs (header + the 8 score columns), cached
   under benchmarks/work/ingest/ (gitignored; reused when the parameters match).
2. Runs each contender in its own subprocess and reads its peak RSS and CPU time from
   ``os.wait4`` (ru_maxrss), so neither pollutes the other's memory figure:
   * ``memwh``: ``ingest_root`` into a fresh database: checksums, footer and row-level
     validation, transactional load; then a no-op re-ingest, then an incremental ingest of
     10 new shards (shows time grows with new data, not stored data);
   * ``pandas``: ``pd.concat([pd.read_csv(f) for f in files])`` over the CSV subset. When the
     subset is smaller than the whole, its rows/s is extrapolated (stated in the results).
3. Writes benchmarks/results/ingest.json and ingest.md.

Machine note: the 2-core machine is shared; load average before/after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from memwh.core import contract

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "ingest"
RESULTS = HERE / "results"
CONT_LEN = 32
TARGET_ROWS_PER_S = 3_000_000
TARGET_SPEEDUP = 10.0


def _table(lo: int, hi: int, rng: np.random.Generator) -> pa.Table:
    """Realistic fast-mode rows: geometric prefix matches with a spike at 32, NULL score."""
    n = hi - lo
    pml = np.minimum(rng.geometric(0.25, n) - 1, CONT_LEN).astype(np.int16)
    pml[rng.random(n) < 0.01] = CONT_LEN
    acc = np.minimum(pml + rng.binomial(CONT_LEN, 0.3, n), CONT_LEN).astype(np.float32) / CONT_LEN
    loss = rng.gamma(2.0, 1.2, n).astype(np.float32)
    return pa.table(
        {
            "seq_idx": pa.array(np.arange(lo, hi, dtype=np.int64)),
            "prefix_match_len": pml,
            "exact_match": pml >= CONT_LEN,
            "memorization_score": pa.nulls(n, pa.float32()),
            "tf_token_accuracy": acc,
            "loss": loss,
            "min_k_logprob": -loss * 2.5 - rng.random(n, dtype=np.float32),
            "zlib_ratio": (loss * 100 / rng.uniform(80, 120, n)).astype(np.float32),
            "prompt_len": np.full(n, 32, np.int16),
            **contract.unknown_certainty(n),
        },
        schema=contract.SCORE_SCHEMA,
    )


def write_unit(
    root: Path,
    model: str,
    revision: str,
    total: int,
    files: int,
    seed: int,
    csv_dir: Path | None = None,
    csv_files: int = 0,
) -> None:
    rng = np.random.default_rng(seed)
    for shard in range(files):
        lo, hi = contract.shard_bounds(0, total, shard, files)
        t = _table(lo, hi, rng)
        pq_path, man_path = contract.shard_paths(root, model, revision, shard, files)
        started = datetime.now(UTC).isoformat()
        sha = contract.write_scores_parquet(t, pq_path)
        contract.write_manifest(
            man_path,
            {
                "contract_version": contract.CONTRACT_VERSION,
                "run_id": uuid.uuid4().hex,
                "model": model,
                "model_path": f"/bench/{model}",
                "revision": revision,
                "step": contract.parse_step(revision),
                "family": "bench",
                "shard": shard,
                "num_shards": files,
                "seq_start": lo,
                "seq_end": hi,
                "n_rows": t.num_rows,
                "n_exact": int(np.count_nonzero(t["exact_match"].to_numpy())),
                "prompt_len": 32,
                "cont_len": CONT_LEN,
                "mode": "fast",
                "suppress_eos": True,
                "parquet_file": pq_path.name,
                "parquet_sha256": sha,
                "started_at": started,
                "finished_at": datetime.now(UTC).isoformat(),
            },
        )
        if csv_dir is not None and shard < csv_files:
            csv_dir.mkdir(parents=True, exist_ok=True)
            pacsv.write_csv(t, csv_dir / f"rank-{shard:05d}.csv")


def generate(rows: int, files: int, pandas_files: int) -> tuple[Path, Path]:
    params = {"rows": rows, "files": files, "pandas_files": pandas_files, "v": 2}
    root, csv_dir, stamp = WORK / "root", WORK / "csv", WORK / "params.json"
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        print(f"reusing {root}", flush=True)
        return root, csv_dir
    shutil.rmtree(WORK, ignore_errors=True)
    t = time.perf_counter()
    write_unit(
        root, "bench-6m", "step1000", rows, files, seed=0, csv_dir=csv_dir, csv_files=pandas_files
    )
    stamp.write_text(json.dumps(params))
    print(
        f"generated {rows:,} rows in {files} shards in {time.perf_counter() - t:.0f}s", flush=True
    )
    return root, csv_dir


# ---------------------------------------------------------------- workers (subprocesses)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime + r.ru_stime


def worker_memwh(root: Path, db: Path) -> dict:
    from memwh.ingest import ingest_root

    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    t, c = time.perf_counter(), _cpu()
    rep = ingest_root(root, db, progress=False)
    full, full_cpu = time.perf_counter() - t, _cpu() - c
    assert rep.ok and rep.rows > 0, rep.summary()
    t = time.perf_counter()
    again = ingest_root(root, db, progress=False)
    noop = time.perf_counter() - t
    assert again.rows == 0 and again.files_unchanged == rep.files_loaded
    rows_per_file = rep.rows // max(rep.files_loaded, 1)
    write_unit(root, "bench-6m", "step2000", rows_per_file * 10, 10, seed=1)
    try:
        t = time.perf_counter()
        inc = ingest_root(root, db, progress=False)
        incremental = time.perf_counter() - t
    finally:
        shutil.rmtree(contract.unit_dir(root, "bench-6m", "step2000"))
    return {
        "rows": rep.rows,
        "files": rep.files_loaded,
        "seconds": full,
        "work_cpu_seconds": full_cpu,
        "noop_reingest_seconds": noop,
        "incremental_rows": inc.rows,
        "incremental_files": inc.files_loaded,
        "incremental_seconds": incremental,
        "db_bytes": db.stat().st_size,
    }


def worker_pandas(csv_dir: Path) -> dict:
    import pandas as pd

    files = sorted(csv_dir.glob("*.csv"))
    t, c = time.perf_counter(), _cpu()
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    seconds, cpu = time.perf_counter() - t, _cpu() - c
    return {"rows": len(df), "files": len(files), "seconds": seconds, "work_cpu_seconds": cpu}


def worker_bare(root: Path, db: Path) -> dict:
    """The floor: one unvalidated CREATE TABLE AS over all Parquet files, same settings."""
    import duckdb

    from memwh.ingest.store import duckdb_settings

    db.unlink(missing_ok=True)
    files = sorted(str(p) for p in root.rglob("*.parquet"))
    con = duckdb.connect(str(db), config=duckdb_settings())
    con.execute("SET enable_progress_bar = false")
    t, c = time.perf_counter(), _cpu()
    con.execute("CREATE TABLE t AS SELECT 1::INTEGER AS run_key, * FROM read_parquet(?)", [files])
    con.execute("CHECKPOINT")
    seconds, cpu = time.perf_counter() - t, _cpu() - c
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    con.close()
    db.unlink(missing_ok=True)
    return {"rows": rows, "files": len(files), "seconds": seconds, "work_cpu_seconds": cpu}


def run_worker(args: list[str]) -> dict:
    """Run a worker subprocess; returns its JSON result plus peak RSS and CPU seconds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_ingest", "--worker", *args],
        stdout=subprocess.PIPE,
        cwd=HERE.parent,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"worker {args[0]} failed with exit code {proc.returncode}")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    res["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return res


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument(
        "--pandas-files",
        type=int,
        default=50,
        help="CSV shards pandas reads (the rest is extrapolated); = --files for all",
    )
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        kind, *rest = a.worker
        workers = {
            "memwh": lambda: worker_memwh(Path(rest[0]), Path(rest[1])),
            "bare": lambda: worker_bare(Path(rest[0]), Path(rest[1])),
            "pandas": lambda: worker_pandas(Path(rest[0])),
        }
        res = workers[kind]()
        print(json.dumps(res))
        return

    from memwh.ingest.store import duckdb_settings

    root, csv_dir = generate(a.rows, a.files, min(a.pandas_files, a.files))
    load_before = _load()
    db = WORK / "bench.duckdb"
    print("memwh ingest ...", flush=True)
    m = run_worker(["memwh", str(root), str(db)])
    print(
        f"  {m['rows']:,} rows in {m['seconds']:.1f}s, peak {m['peak_rss_mb']:.0f} MB", flush=True
    )
    print("bare DuckDB CREATE TABLE AS read_parquet (no validation) ...", flush=True)
    b = run_worker(["bare", str(root), str(WORK / "bare.duckdb")])
    print(
        f"  {b['rows']:,} rows in {b['seconds']:.1f}s, peak {b['peak_rss_mb']:.0f} MB", flush=True
    )
    print("pandas read_csv + concat ...", flush=True)
    p = run_worker(["pandas", str(csv_dir)])
    print(
        f"  {p['rows']:,} rows in {p['seconds']:.1f}s, peak {p['peak_rss_mb']:.0f} MB", flush=True
    )
    load_after = _load()
    db.unlink(missing_ok=True)

    m_rate = m["rows"] / m["seconds"]
    p_rate = p["rows"] / p["seconds"]
    scale = m["rows"] / p["rows"]
    extrapolated = p["rows"] < m["rows"]
    result = {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "duckdb": __import__("duckdb").__version__,
            "pandas": __import__("pandas").__version__,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "data": {
            "rows": a.rows,
            "files": a.files,
            "columns": len(contract.SCORE_SCHEMA),
            "parquet_bytes": sum(f.stat().st_size for f in root.rglob("*.parquet")),
        },
        "duckdb_settings": duckdb_settings(),
        "memwh": {**m, "rows_per_s": m_rate, "rows_per_cpu_s": m["rows"] / m["work_cpu_seconds"]},
        "duckdb_bare_copy": {
            **b,
            "rows_per_s": b["rows"] / b["seconds"],
            "rows_per_cpu_s": b["rows"] / b["work_cpu_seconds"],
        },
        "pandas": {
            **p,
            "rows_per_s": p_rate,
            "rows_per_cpu_s": p["rows"] / p["work_cpu_seconds"],
            "extrapolated": extrapolated,
            "extrapolated_seconds_all_rows": p["seconds"] * scale,
            "extrapolated_peak_rss_mb_all_rows": p["peak_rss_mb"] * scale
            if extrapolated
            else p["peak_rss_mb"],
        },
        "speedup": m_rate / p_rate,
        "targets": {
            "rows_per_s": TARGET_ROWS_PER_S,
            "speedup": TARGET_SPEEDUP,
            "met": bool(m_rate >= TARGET_ROWS_PER_S and m_rate / p_rate >= TARGET_SPEEDUP),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")

    def row(
        name: str,
        r: dict,
        rows: int | None = None,
        seconds: float | None = None,
        rss: float | None = None,
        note: str = "",
    ) -> str:
        rows = rows or r["rows"]
        seconds = seconds or r["seconds"]
        return (
            f"| {name} | {rows:,} | {seconds:.1f} | {rows / seconds / 1e6:.2f} M | "
            f"{r['rows'] / r['work_cpu_seconds'] / 1e6:.2f} M | {note}{rss or r['peak_rss_mb']:,.0f} MB |"
        )

    lines = [
        row("memwh ingest (checksums + validation + transactional load)", m),
        row("bare DuckDB CREATE TABLE AS read_parquet (no checks; the floor)", b),
        row("pandas read_csv + concat" + (" (subset, measured)" if extrapolated else ""), p),
    ]
    if extrapolated:
        lines.append(
            row(
                f"pandas, extrapolated to {m['rows']:,} rows",
                p,
                m["rows"],
                p["seconds"] * scale,
                p["peak_rss_mb"] * scale,
                "~",
            )
        )
    table = "\n".join(lines)
    md = f"""# Ingest benchmark

`python -m benchmarks.bench_ingest` — {a.rows:,} synthetic score rows ({len(contract.SCORE_SCHEMA)}
columns, fast-mode shape) in {a.files} Parquet shards with manifests, written by memwh.core.contract.
{result["date"]}, {os.cpu_count()} CPUs, {result["machine"]["ram_gb"]} GB RAM, DuckDB
{result["machine"]["duckdb"]}, pandas {result["machine"]["pandas"]}. Load average before/after:
{load_before} / {load_after} — the machine is shared with other jobs, so wall-clock rates
are lower than on an idle machine; rows per CPU-second do not depend on the sharing.

| approach | rows | seconds | rows/s | rows per CPU-s | peak RSS |
|---|---:|---:|---:|---:|---:|
{table}

- memwh: **{m_rate / 1e6:.2f} M rows/s**, **{m_rate / p_rate:.1f}x** pandas. Targets (>= {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s
  and >= {TARGET_SPEEDUP:.0f}x pandas): {"met" if result["targets"]["met"] else "**not met**"}.
- memwh costs {m["work_cpu_seconds"] / b["work_cpu_seconds"]:.2f}x the CPU of the bare DuckDB copy (sha256 of every
  file, footer checks, one validation scan, transactions, bookkeeping).
- No-op re-ingest of all {m["files"]} files: {m["noop_reingest_seconds"]:.2f}s; incremental ingest of
  {m["incremental_files"]} new files ({m["incremental_rows"]:,} rows): {m["incremental_seconds"]:.2f}s.
- pandas only parses into memory (no validation, no persistence);
  {"it read the first " + str(p["files"]) + " shards; time and memory are extrapolated linearly." if extrapolated else "it read every shard."}
- Peak RSS from `os.wait4` of each worker process. DuckDB settings: {result["duckdb_settings"]}.
  Database size: {m["db_bytes"] / 2**20:,.0f} MB (Parquet input {result["data"]["parquet_bytes"] / 2**20:,.0f} MB).
"""
    (RESULTS / "ingest.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
