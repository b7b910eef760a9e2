"""Membership / forecast benchmark: `membership_inference` and `memorization_forecast` (and
what they need) built on units of 10M rows x 6 signals.

Synthetic raw layer (generated in DuckDB SQL, cached under benchmarks/work/): family
'mbench', two models ('mbench-s', 'mbench-l') at step 1000, each one unit of N sequences
(default 10M) with all six signals as float32 (millions of distinct values: the exact AUC
cannot lean on few distinct scores) and ~1.5% memorized. Exposure: Pythia's rule with
sequences_per_step = N / 2000 and train_steps 1500, so each unit has N/2 members, N/4
not-yet-seen and N/4 held-out sequences. The timed call is one `memwh build` (all models
upstream of the two marts, their data tests; unit tests excluded) from a fresh dbt target: the
membership mart of both units (2 x N rows, 2 kinds x 6 signals) and the forecast of the one
smaller -> larger pair (N rows x 6 signals). Peak memory: the process's max RSS (dbt and
DuckDB run in it); CPU seconds: the process's user + system time over the build (DuckDB's
threads included), so that a wall time taken while other jobs load the machine can be read.
MEMWH_DUCKDB_MEMORY_LIMIT caps DuckDB (default here 6GB: the machine is shared).

Run: .venv/bin/python -m benchmarks.bench_membership [--sequences N] [--regenerate]
Results: benchmarks/results/membership.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from memwh.ingest.schema import ensure_raw_schema

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
TARGET_SECONDS = 60.0


def add_unit(
    con: duckdb.DuckDBPyConnection, model: str, n_params: int, shift: float, n: int
) -> None:
    key = con.execute("select nextval('raw.run_key_seq')").fetchall()[0][0]
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "insert into raw.runs (run_id, run_key, source, model, revision, step, family, n_params, "
        "tokens_per_step, sequences_per_step, prompt_len, cont_len, mode, data_fingerprint, shard, "
        "num_shards, seq_start, seq_end, n_rows, population, rows_are_sparse, started_at, "
        "finished_at, host, ingested_at) values (?, ?, 'memwh', ?, 'step1000', 1000, 'mbench', ?, "
        "NULL, NULL, 32, 32, 'generate', 'mbench-data', 0, 1, 0, ?, ?, ?, false, ?, ?, 'bench', ?)",
        [f"mbench-{model}", key, model, n_params, n, n, n, now, now, now],
    )
    half = n // 2
    con.execute(
        f"""
        insert into raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match,
            memorization_score, tf_token_accuracy, loss, min_k_logprob, zlib_ratio)
        with l as (
            select i as seq_idx,
                   (hash(i) % 1000003) / 1000003.0 as latent,            -- shared by both models
                   (hash(i, {key}) % 1000003) / 1000003.0 as noise,
                   (i < {half})::int as member
            from range({n}) t(i)
        ), m as (
            select *, 0.7 * latent + 0.3 * noise + {shift} * member * 0.05 as u from l
        )
        select {key}, seq_idx,
               least(32, floor(pow(u, 8) * 40))::smallint,
               u > 0.985,
               least(1.0, floor(pow(u, 6) * 33) / 32)::real,
               least(1.0, u + 0.1 * noise)::real,
               (4.0 - 3.0 * u + 0.2 * noise)::real,
               (-8.0 + 6.0 * u - 0.5 * noise)::real,
               (0.9 - 0.5 * u + 0.05 * noise)::real
        from m
        """
    )


def generate(final: Path, n: int) -> float:
    """Into a temporary file renamed at the end: an interrupted generation is never reused."""
    t0 = time.perf_counter()
    final.parent.mkdir(parents=True, exist_ok=True)
    db = final.with_name(final.name + ".partial")
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        ensure_raw_schema(con)
        add_unit(con, "mbench-s", 1_000_000, 1.0, n)
        add_unit(con, "mbench-l", 8_000_000, 2.0, n)
        con.execute("checkpoint")
    finally:
        con.close()
    from memwh.ingest import declare_exposure_rule

    for model in ("mbench-s", "mbench-l"):
        declare_exposure_rule(
            model=model,
            sequences_per_step=n // 2000,
            train_steps=1500,
            dataset="mbench-data",
            db=db,
        )
    db.rename(final)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=10_000_000)
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args()
    n = args.sequences
    db = WORK / f"membership-{n}.duckdb"
    gen = None
    if args.regenerate or not db.exists():
        gen = generate(db, n)
    work = WORK / f"membership-{n}-run.duckdb"
    # a WAL left by an interrupted earlier run would be replayed onto the fresh copy (IO error)
    work.with_name(work.name + ".wal").unlink(missing_ok=True)
    shutil.copy(db, work)
    target = WORK / "membership-target"
    shutil.rmtree(target, ignore_errors=True)
    from memwh.warehouse.build import build

    os.environ.setdefault("MEMWH_DUCKDB_MEMORY_LIMIT", "6GB")
    load = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    res = build(
        work,
        select="+membership_inference +memorization_forecast",
        quiet=True,
        target_path=target,
        unit_tests=False,
    )
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    con = duckdb.connect(str(work), read_only=True)
    n_mi = con.sql("select count(*) from membership_inference").fetchall()[0][0]
    n_fc = con.sql("select count(*) from memorization_forecast").fetchall()[0][0]
    auc = con.sql(
        "select model, nonmember_kind, round(roc_auc, 4) from membership_inference "
        "where signal = 'loss' order by all"
    ).fetchall()
    con.close()
    slow = sorted((x for x in res.nodes if x.resource_type == "model"), key=lambda x: -x.seconds)[
        :6
    ]
    out = {
        "sequences_per_unit": n,
        "units": 2,
        "signals": 6,
        "build_seconds": round(seconds, 2),
        "dbt_reported_seconds": round(res.seconds, 2),
        "target_seconds": TARGET_SECONDS,
        "met": seconds <= TARGET_SECONDS,
        "cpu_seconds": round(cpu, 1),
        "peak_rss_mb": round(peak_mb),
        "memory_limit": os.environ["MEMWH_DUCKDB_MEMORY_LIMIT"],
        "generate_seconds": round(gen, 1) if gen else None,
        "membership_rows": n_mi,
        "forecast_rows": n_fc,
        "loss_auc": auc,
        "slowest_models": [(x.name, round(x.seconds, 2)) for x in slow],
        "load_avg_before": round(load, 2),
        "load_avg_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "membership.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [
        "# Membership / forecast benchmark",
        "",
        f"Two units of {n:,} sequences x 6 float32 signals (family mbench, step1000, Pythia rule "
        f"exposure: {n // 2:,} members, {n // 4:,} not yet seen, {n // 4:,} held out per unit), "
        f"{out['at']}, {os.cpu_count()} cores, 1-minute load average {out['load_avg_before']} "
        f"before / {out['load_avg_after']} after (other jobs on the machine inflate the time).",
        "",
        f"`memwh build --select +membership_inference +memorization_forecast` from a fresh dbt "
        f"target: **{seconds:.1f} s** (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if out['met'] else 'NOT met'}), {cpu:.0f} CPU s, peak RSS "
        f"**{out['peak_rss_mb']:,} MB** (MEMWH_DUCKDB_MEMORY_LIMIT={out['memory_limit']}); "
        f"{n_mi} membership rows (2 units x 6 signals x 2 kinds), {n_fc} forecast rows "
        "(1 pair x 6 signals).",
        "",
        "Slowest models: " + ", ".join(f"{a} {b:.1f} s" for a, b in out["slowest_models"]),
        "",
    ]
    (RESULTS / "membership.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
