"""Warehouse benchmark: `dbt build` on 80M synthetic score rows, then the rebuild after adding
one unit (and after deleting it again).

Synthetic raw layer (generated in DuckDB SQL, cached under benchmarks/work/):
8 models x 10 revisions x 1M sequences, one shard per unit. Memorization is driven by a latent
per-sequence "memorability" shared by every unit plus unit noise, with rates rising from 0.3%
(smallest model, first checkpoint) to 2% (largest, last), so memorized sets overlap across sizes
and checkpoints as in Pythia. The corpus carries duplication counts correlated with the latent.

Timing is like for like. "warm" = in one Python process after a first dbt call has paid the
imports and Jinja compilation (what a notebook/API user or a long-lived service sees); "CLI" =
a fresh `memwh build` process each time (what a shell user sees; both pay the same startup).
Every build runs all data tests; dbt unit tests run when the warehouse code changed since they
last passed (the first, untimed call), as in `memwh build`.

Run: .venv/bin/python -m benchmarks.bench_warehouse [--sequences N] [--regenerate] (the DB stays for bench_report)
Results: benchmarks/results/warehouse.json and .md
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from memwh.ingest.schema import ensure_raw_schema

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work"
RESULTS = ROOT / "results"
N_MODELS = 8
N_REVISIONS = 10


def _unit_rate(mi: int, rj: int) -> float:
    return 0.003 + 0.017 * (mi * N_REVISIONS + rj) / (N_MODELS * N_REVISIONS - 1)


def add_unit(
    con: duckdb.DuckDBPyConnection,
    mi: int,
    step: int,
    rate: float,
    n_seq: int,
    *,
    pml_exponent: float = 6.0,
    model: str | None = None,
    family: str = "synth",
    data_fingerprint: str = "synth-corpus",
) -> None:
    """One unit = one shard run of `n_seq` sequences, generated in SQL.

    Non-memorized rows get prefix_match_len = floor(latent^pml_exponent * 28 + 4 w): with 6,
    ~5% of rows reach 16 tokens (Pythia-like); with 1, about half do (dense memorization at
    memorized_min_tokens 16, as in fine-tuned models)."""
    model, revision = model or f"synth-{mi}", f"step{step}"
    run_id = f"bench-{model}-{revision}"
    n_params = int(70e6 * 2**mi)
    key = con.execute("select nextval('raw.run_key_seq')").fetchall()[0][0]
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "insert into raw.runs (run_id, run_key, source, model, revision, step, family, n_params, "
        "tokens_per_step, sequences_per_step, prompt_len, cont_len, mode, data_fingerprint, shard, "
        "num_shards, seq_start, seq_end, n_rows, population, rows_are_sparse, started_at, "
        "finished_at, host, ingested_at) values (?, ?, 'memwh', ?, ?, ?, ?, ?, 2097152, 1024, "
        "32, 32, 'fast', ?, 0, 1, 0, ?, ?, ?, false, ?, ?, 'bench', ?)",
        [
            run_id,
            key,
            model,
            revision,
            step,
            family,
            n_params,
            data_fingerprint,
            n_seq,
            n_seq,
            n_seq,
            now,
            now,
            now,
        ],
    )
    s = (2 * 0.85 * 0.15 * rate) ** 0.5  # tail of 0.85 u + 0.15 v above 1 - s has mass ~rate
    con.execute(
        f"""
        insert into raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match,
            memorization_score, tf_token_accuracy, loss, min_k_logprob, zlib_ratio)
        with l as (
            select i as seq_idx,
                   0.85 * ((hash(i) % 1000000) / 1e6)
                     + 0.15 * ((hash(i, {key}) % 1000000) / 1e6) as latent,
                   (hash({key}, i, 7) % 1000) / 1e3 as w
            from range({n_seq}) t(i)
        ), m as (
            select *, latent > 1 - {s} as mem,
                   least(31, floor(pow(latent, {pml_exponent}) * 28 + 4 * w))::smallint as pml
            from l
        )
        select {key}, seq_idx,
               case when mem then 32 else pml end::smallint,
               mem,
               case when mem then 1.0 else least(31, pml + floor(w * 3)) / 32 end::real,
               (0.5 + 0.5 * latent)::real, (3.0 - 2.5 * latent + w)::real,
               (-6 + 4 * latent)::real, (0.4 + 0.3 * w)::real
        from m
        """
    )


def generate(db: Path, n_seq: int, pml_exponent: float = 6.0) -> float:
    t0 = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        ensure_raw_schema(con)
        for mi in range(N_MODELS):
            for rj in range(N_REVISIONS):
                add_unit(
                    con, mi, (rj + 1) * 1000, _unit_rate(mi, rj), n_seq, pml_exponent=pml_exponent
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
    return time.perf_counter() - t0


def _raw_ok(db: Path, n_seq: int) -> bool:
    if not db.exists():
        return False
    try:
        con = duckdb.connect(str(db), read_only=True)
        n = con.sql("select count(*) from raw.score_rows").fetchall()[0][0]
        u = con.sql("select count(*) from raw.runs").fetchall()[0][0]
        con.close()
    except duckdb.Error:
        return False
    return n == N_MODELS * N_REVISIONS * n_seq and u == N_MODELS * N_REVISIONS


def _timed_build(db: Path, **kw) -> float:
    from memwh.warehouse.build import build

    t0 = time.perf_counter()
    build(db, quiet=True, **kw)
    return time.perf_counter() - t0


def _cli_build(db: Path, *flags: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "memwh", "build", "-q", "--db", str(db), *flags],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def _extra_unit(db: Path, n_seq: int, add: bool) -> None:
    con = duckdb.connect(str(db))
    try:
        if add:
            add_unit(con, 0, (N_REVISIONS + 1) * 1000, _unit_rate(0, N_REVISIONS - 1), n_seq)
        else:
            con.execute(
                "delete from raw.score_rows where run_key in "
                "(select run_key from raw.runs where run_id = 'bench-synth-0-step11000')"
            )
            con.execute("delete from raw.runs where run_id = 'bench-synth-0-step11000'")
    finally:
        con.close()


def _marts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            "units",
            "memorization_rates",
            "cross_scale_agreement",
            "prediction_precision_recall",
            "scaling_curves",
            "score_distribution",
            "memorization_by_duplication",
        ]
        return {n: con.sql(f"select count(*) from main.{n}").fetchall()[0][0] for n in names}
    finally:
        con.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=1_000_000, help="sequences per unit")
    ap.add_argument("--db", type=Path, default=WORK / "warehouse_bench.duckdb")
    ap.add_argument("--regenerate", action="store_true")
    args = ap.parse_args(argv)
    n_seq = args.sequences
    gen_s = None
    if args.regenerate or not _raw_ok(args.db, n_seq):
        gen_s = generate(args.db, n_seq)
        print(f"generated {N_MODELS * N_REVISIONS * n_seq:,} score rows in {gen_s:.1f}s")
    first_s = _timed_build(args.db)  # untimed in the ratios: imports, Jinja, unit tests
    print(f"first build in this process (startup + unit tests): {first_s:.1f}s")
    full_s = _timed_build(args.db, full_refresh=True)
    print(f"warm full build: {full_s:.1f}s")
    noop_s = _timed_build(args.db)
    print(f"warm rebuild, nothing changed: {noop_s:.1f}s")
    _extra_unit(args.db, n_seq, add=True)
    add_s = _timed_build(args.db)
    print(f"warm rebuild after adding one unit: {add_s:.1f}s ({add_s / full_s:.0%} of full)")
    counts_with = _marts(args.db)
    _extra_unit(args.db, n_seq, add=False)
    del_s = _timed_build(args.db)
    print(f"warm rebuild after deleting that unit: {del_s:.1f}s")
    counts = _marts(args.db)
    cli_full_s = _cli_build(args.db, "--full-refresh")
    print(f"CLI full build: {cli_full_s:.1f}s")
    cli_noop_s = _cli_build(args.db)
    _extra_unit(args.db, n_seq, add=True)
    cli_add_s = _cli_build(args.db)
    print(f"CLI rebuild after adding one unit: {cli_add_s:.1f}s ({cli_add_s / cli_full_s:.0%})")
    _extra_unit(args.db, n_seq, add=False)
    _cli_build(args.db)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}".strip(),
        "score_rows": N_MODELS * N_REVISIONS * n_seq,
        "units": N_MODELS * N_REVISIONS,
        "generate_seconds": gen_s,
        "first_build_in_process_seconds": round(first_s, 2),
        "full_build_seconds": round(full_s, 2),
        "noop_rebuild_seconds": round(noop_s, 2),
        "add_one_unit_seconds": round(add_s, 2),
        "add_one_unit_fraction_of_full": round(add_s / full_s, 3),
        "add_one_unit_marginal_seconds": round(add_s - noop_s, 2),
        "delete_one_unit_seconds": round(del_s, 2),
        "cli_full_build_seconds": round(cli_full_s, 2),
        "cli_noop_rebuild_seconds": round(cli_noop_s, 2),
        "cli_add_one_unit_seconds": round(cli_add_s, 2),
        "cli_add_one_unit_fraction_of_full": round(cli_add_s / cli_full_s, 3),
        "targets": {"full_build_seconds": 60, "add_one_unit_fraction_of_full": 0.2},
        "mart_rows": counts,
        "mart_rows_with_extra_unit": counts_with,
        "threads": 1,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "warehouse.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Warehouse benchmark",
        "",
        f"{result['score_rows']:,} synthetic score rows ({N_MODELS} models x {N_REVISIONS} revisions "
        f"x {n_seq:,} sequences), `dbt build` with all data tests (unit tests only on the first, "
        "untimed call: they rerun when the warehouse code changes), threads=1, "
        f"{result['machine']}, {result['when']}.",
        "",
        "| step | warm (in-process) s | CLI (`memwh build`) s | target |",
        "|---|---:|---:|---|",
        f"| full build (`--full-refresh`) | {full_s:.1f} | {cli_full_s:.1f} | <= 60 |",
        f"| rebuild, nothing changed | {noop_s:.1f} | {cli_noop_s:.1f} | |",
        f"| rebuild after adding one unit (1M rows) | {add_s:.1f} ({add_s / full_s:.0%} of full) "
        f"| {cli_add_s:.1f} ({cli_add_s / cli_full_s:.0%} of full) | <= 20% of full |",
        f"| rebuild after deleting that unit | {del_s:.1f} | | |",
        "",
        f"The new unit's own work (add minus no-op, warm) is {add_s - noop_s:.2f} s "
        f"({(add_s - noop_s) / full_s:.0%} of the warm full build); the rest of an incremental "
        "rebuild is dbt's fixed cost per invocation (parse, one node per model and test). "
        f"The first dbt call in a process took {first_s:.1f} s (imports, Jinja compilation, "
        "unit tests).",
        "",
        "Mart rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
        "",
    ]
    (RESULTS / "warehouse.md").write_text("\n".join(md))
    return result


if __name__ == "__main__":
    main()
