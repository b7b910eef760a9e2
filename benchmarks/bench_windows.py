"""Storage cost of the scored token windows (raw.sequence_windows) at Pythia scale.

    python -m benchmarks.bench_windows [--rows 2000000] [--width 64]

Writes ``--rows`` windows of ``--width`` tokens with memwh.core.contract.write_windows (as
`memwh infer` does), loads them with `ingest_root` into a fresh DuckDB file, and measures
the bytes per window of the Parquet file and of the database (file size after CHECKPOINT,
minus the same database without windows). Extrapolates linearly to Pythia's 146,432,000
training sequences (all windows) and to the ~1.6% that Pythia-12B memorizes (--windows
memorized). Token ids follow a Zipf law over a 50,277-token vocabulary (text-like
frequencies; uniform ids would compress worse, real text with repeats better).
Writes benchmarks/results/windows.json and windows.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from memwh.core import contract

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "windows"
RESULTS = HERE / "results"
PYTHIA_SEQUENCES = 146_432_000
PYTHIA_12B_MEMORIZED = 0.016
VOCAB = 50_277


def _tokens(n: int, width: int, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.zipf(1.1, size=(n, width))
    return np.minimum(ranks - 1, VOCAB - 1).astype(np.int32)


def _db_bytes(db: Path) -> int:
    con = duckdb.connect(str(db))
    con.execute("CHECKPOINT")
    con.close()
    return db.stat().st_size + sum(
        p.stat().st_size for p in db.parent.glob(db.name + ".wal") if p.exists()
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--width", type=int, default=64)
    args = ap.parse_args()
    from memwh.ingest import ingest_root
    from memwh.ingest.store import open_raw

    shutil.rmtree(WORK, ignore_errors=True)
    root = WORK / "runs"
    rng = np.random.default_rng(0)
    fp = "bench-windows"
    chunk = 1 << 16
    path = contract.windows_path(root, fp, args.width, 0, args.rows)
    t0 = time.perf_counter()
    contract.write_windows(
        path,
        (
            (
                np.arange(i, min(i + chunk, args.rows)),
                _tokens(min(chunk, args.rows - i), args.width, rng),
            )
            for i in range(0, args.rows, chunk)
        ),
    )
    write_s = time.perf_counter() - t0
    parquet_bytes = path.stat().st_size

    empty = WORK / "empty.duckdb"
    open_raw(empty).close()
    base = _db_bytes(empty)
    db = WORK / "windows.duckdb"
    t0 = time.perf_counter()
    rep = ingest_root(root, db, progress=False)
    load_s = time.perf_counter() - t0
    assert rep.window_rows == args.rows, rep.summary()
    db_bytes = _db_bytes(db) - base

    per_pq = parquet_bytes / args.rows
    per_db = db_bytes / args.rows
    res = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "duckdb": duckdb.__version__,
        "rows": args.rows,
        "width": args.width,
        "write_seconds": round(write_s, 2),
        "ingest_seconds": round(load_s, 2),
        "parquet_bytes_per_window": round(per_pq, 1),
        "duckdb_bytes_per_window": round(per_db, 1),
        "raw_int16_bytes_per_window": 2 * args.width,
        "pythia_all_parquet_gb": round(per_pq * PYTHIA_SEQUENCES / 1e9, 1),
        "pythia_all_duckdb_gb": round(per_db * PYTHIA_SEQUENCES / 1e9, 1),
        "pythia_12b_memorized_duckdb_gb": round(
            per_db * PYTHIA_SEQUENCES * PYTHIA_12B_MEMORIZED / 1e9, 2
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "windows.json").write_text(json.dumps(res, indent=2) + "\n")
    md = f"""# Token window storage

`python -m benchmarks.bench_windows --rows {args.rows} --width {args.width}` — {res["when"]},
{res["machine"]}, DuckDB {res["duckdb"]}. Zipf-distributed token ids over a {VOCAB:,}-token
vocabulary; {args.width} tokens per window (prompt 32 + continuation 32).

| | bytes per window | Pythia's {PYTHIA_SEQUENCES:,} sequences |
|---|---:|---:|
| uint16 memmap (the Pile's own format, for scale) | {2 * args.width} | {2 * args.width * PYTHIA_SEQUENCES / 1e9:.1f} GB |
| Parquet windows file (zstd), written once per dataset range | {per_pq:.1f} | {res["pythia_all_parquet_gb"]} GB |
| DuckDB raw.sequence_windows (`memwh ingest`, default `--windows all`) | {per_db:.1f} | {res["pythia_all_duckdb_gb"]} GB |
| DuckDB, `--windows memorized` (Pythia-12B memorizes ~1.6%) | {per_db:.1f} | {res["pythia_12b_memorized_duckdb_gb"]} GB |

Write {write_s:.1f} s, ingest {load_s:.1f} s for {args.rows:,} windows.
"""
    (RESULTS / "windows.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
