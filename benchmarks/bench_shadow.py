"""Shadow-population benchmark (issue 19): 128 shadow units x 100k sequences (+ one audited
unit), built into counterfactual_memorization, lira_scores and membership_inference.

Synthetic rows through the real ingest path, cached under benchmarks/work/shadow/: one Parquet
shard per unit written with memwh.core.contract's writers (as `memwh infer --role shadow`
writes them; the audited unit has no role), `memwh ingest`, then one exposure table per unit
(`memwh import exposure`, random half trained). Six float32 signals per row: a per-sequence
difficulty and training effect, so the shadow fits carry per-sequence information.

The timed call is one `memwh build --select +counterfactual_memorization +lira_scores
+shadow_units` from a fresh dbt target (unit tests excluded): the population's fits (12.8M rows
x 6 signals), the roster and LiRA of the audited unit (100k sequences x 6 signals). Not timed
here: membership_inference (`--with-membership` adds that build as a second timed call: the
audited unit's rows with its LiRA signals; shadow units get no membership rows). Peak memory: the process's max RSS (dbt and DuckDB run in it), with
MEMWH_DUCKDB_MEMORY_LIMIT (default here 8GB: the machine is shared). The 1-minute load average
before and after is recorded: other jobs on the shared 2-core machine inflate the time.

Run: .venv/bin/python -m benchmarks.bench_shadow [--units 128] [--sequences 100000] [--regenerate]
     [--with-membership]
Results: benchmarks/results/shadow.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memwh.core import contract

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "work" / "shadow"
RESULTS = ROOT / "results"
TARGET_SECONDS = 120.0
DATASET = "sbench-data"
AUDITED = "sbench-target"


def write_unit(root: Path, model: str, role: str | None, sig: dict, n: int) -> None:
    table = pa.table(
        {
            "seq_idx": np.arange(n, dtype=np.int64),
            **sig,
            "prompt_len": np.full(n, 32, np.int16),
            **contract.unknown_certainty(n),
        },
        schema=contract.SCORE_SCHEMA,
    )
    pq_path, man_path = contract.shard_paths(root, model, "main", 0, 1)
    sha = contract.write_scores_parquet(table, pq_path, {"model": model})
    now = datetime.now(UTC).isoformat()
    manifest = {
        "contract_version": contract.CONTRACT_VERSION,
        "run_id": uuid.uuid4().hex,
        "model": model,
        "model_path": f"/bench/{model}",
        "revision": "main",
        "step": None,
        "family": "sbench",
        "n_params": 1_000_000,
        "shard": 0,
        "num_shards": 1,
        "seq_start": 0,
        "seq_end": n,
        "n_rows": n,
        "n_exact": int(np.count_nonzero(sig["exact_match"])),
        "prompt_len": 32,
        "cont_len": 32,
        "mode": "fast",
        "suppress_eos": True,
        "data_source": "/bench/corpus.parquet",
        "data_fingerprint": DATASET,
        "parquet_file": pq_path.name,
        "parquet_sha256": sha,
        "started_at": now,
        "finished_at": now,
    }
    if role:
        manifest["role"] = role
    contract.write_manifest(man_path, manifest)


def signals(rng: np.random.Generator, difficulty, effect, is_in) -> dict:
    n = len(difficulty)
    loss = np.maximum(difficulty - effect * is_in + rng.normal(0, 0.2, n), 0).astype(np.float32)
    acc = np.clip(0.3 + 0.3 * effect * is_in + rng.normal(0, 0.05, n), 0, 1).astype(np.float32)
    pml = np.minimum(rng.geometric(0.3, n) - 1 + (8 * effect * is_in).astype(int), 32)
    return {
        "prefix_match_len": pml.astype(np.int16),
        "exact_match": pml >= 32,
        "memorization_score": pa.nulls(n, pa.float32()),  # fast mode
        "tf_token_accuracy": acc,
        "loss": loss,
        "min_k_logprob": (-2.5 * loss - rng.random(n, dtype=np.float32)).astype(np.float32),
        "zlib_ratio": np.maximum(loss / 3 + rng.normal(0, 0.02, n), 0).astype(np.float32),
    }


def generate(db: Path, units: int, n: int) -> dict:
    """Shards + ingest + exposure imports; returns their timings."""
    from memwh.ingest import import_exposure, ingest_root

    shutil.rmtree(WORK / "data", ignore_errors=True)
    db.unlink(missing_ok=True)
    root, exp_dir = WORK / "data" / "runs", WORK / "data" / "exposure"
    exp_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    difficulty = rng.normal(3.0, 0.6, n)
    effect = rng.gamma(2.0, 0.2, n)
    t0 = time.perf_counter()
    keeps = {}
    for k in range(units + 1):
        model = AUDITED if k == units else f"sbench-{k:03d}"
        keep = np.zeros(n, bool)
        keep[rng.permutation(n)[: n // 2]] = True
        write_unit(
            root, model, None if k == units else "shadow", signals(rng, difficulty, effect, keep), n
        )
        keeps[model] = keep
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = ingest_root(root, db)
    if report.problems:
        raise SystemExit(f"ingest refused {len(report.problems)} file(s): {report.problems[0]}")
    t_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    for model, keep in keeps.items():
        path = exp_dir / f"{model}.parquet"
        first = pa.array(np.zeros(n, np.int64), mask=~keep)
        pq.write_table(
            pa.table({"seq_idx": np.arange(n, dtype=np.int64), "first_step": first}), path
        )
        import_exposure(path, model=model, dataset=DATASET, db=db)
    t_exposure = time.perf_counter() - t0
    return {
        "write_seconds": round(t_write, 1),
        "ingest_seconds": round(t_ingest, 1),
        "exposure_import_seconds": round(t_exposure, 1),
    }


def _auc(s, y) -> float:
    """Mann-Whitney AUC with ties (midranks)."""
    s, y = np.asarray(s, float), np.asarray(y, bool)
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    midrank = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]
    p, n = y.sum(), (~y).sum()
    return float((midrank[y].sum() - p * (p + 1) / 2) / (p * n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--sequences", type=int, default=100_000)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--with-membership", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MEMWH_DUCKDB_MEMORY_LIMIT", "8GB")
    units, n = args.units, args.sequences
    db = WORK / f"shadow-{units}x{n}.duckdb"
    gen = None
    if args.regenerate or not db.exists():
        gen = generate(db, units, n)
    work = WORK / f"shadow-{units}x{n}-run.duckdb"
    shutil.copy(db, work)
    target = WORK / "target"
    shutil.rmtree(target, ignore_errors=True)
    from memwh.warehouse.build import build

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = build(
        work,
        select="+counterfactual_memorization +lira_scores +shadow_units",
        quiet=True,
        target_path=target,
        unit_tests=False,
    )
    seconds = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    mi_seconds = None
    if args.with_membership:
        t0 = time.perf_counter()
        build(
            work,
            select="+membership_inference",
            quiet=True,
            target_path=target,
            unit_tests=False,
        )
        mi_seconds = round(time.perf_counter() - t0, 2)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    con = duckdb.connect(str(work), read_only=True)
    count = lambda t: con.sql(f"select count(*) from {t}").fetchall()[0][0]  # noqa: E731
    n_cf, n_lira = count("counterfactual_memorization"), count("lira_scores")
    n_mi = count("membership_inference") if mi_seconds is not None else None
    # the audited unit's ROC AUC of loss and of its LiRA statistics, from lira_scores
    df = con.sql(
        "select score, lira_online, lira_offline, membership = 'member' as y from lira_scores "
        f"where model = '{AUDITED}' and signal = 'loss'"
    ).pl()
    auc = {
        c: round(_auc(*df.drop_nulls(c).select(c, "y").to_numpy().T), 4)
        for c in ("score", "lira_online", "lira_offline")
    }
    con.close()
    slow = sorted((x for x in res.nodes if x.resource_type == "model"), key=lambda x: -x.seconds)[
        :6
    ]
    out = {
        "shadow_units": units,
        "sequences": n,
        "score_rows": (units + 1) * n,
        "build_seconds": round(seconds, 2),
        "target_seconds": TARGET_SECONDS,
        "met": seconds <= TARGET_SECONDS,
        "peak_rss_mb": round(peak_mb),
        "generate": gen,
        "counterfactual_rows": n_cf,
        "lira_rows": n_lira,
        "membership_rows": n_mi,
        "membership_seconds": mi_seconds,
        "memory_limit": os.environ["MEMWH_DUCKDB_MEMORY_LIMIT"],
        "audited_auc": auc,
        "slowest_models": [(x.name, round(x.seconds, 2)) for x in slow],
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(load_after, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "shadow.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [
        "# Shadow-population benchmark",
        "",
        f"{units} shadow units x {n:,} sequences (+ 1 audited unit; {out['score_rows']:,} score "
        "rows, 6 float32 signals, memorization_score NULL as in fast mode), written as Parquet "
        "shards, `memwh ingest`ed, one exposure table per unit (`memwh import exposure`, random "
        f"half trained). {out['at']}, {os.cpu_count()} cores, 1-minute load average "
        f"{out['load_avg_before']} before / {out['load_avg_after']} after (other agents share the "
        "machine).",
        "",
        "`memwh build --select +counterfactual_memorization +lira_scores +shadow_units` "
        f"(MEMWH_DUCKDB_MEMORY_LIMIT={out['memory_limit']}) from a fresh dbt target: "
        f"**{seconds:.1f} s** (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if out['met'] else 'NOT met'}), peak RSS **{out['peak_rss_mb']:,} MB**; "
        f"{n_cf:,} counterfactual rows, {n_lira:,} LiRA rows; "
        + (
            "then `--select +membership_inference` (the audited unit's membership rows with "
            f"its LiRA signals; shadow units have none): {mi_seconds:.1f} s, {n_mi:,} rows."
            if mi_seconds is not None
            else "membership_inference not built (run with --with-membership)."
        ),
        "",
        "Audited unit's ROC AUC on loss (from lira_scores, members vs held out): "
        + ", ".join(f"{'-loss' if s == 'score' else s} {a}" for s, a in auc.items()),
        "",
        "Slowest models: " + ", ".join(f"{a} {b:.1f} s" for a, b in out["slowest_models"]),
        "",
    ]
    if gen:
        md += [
            f"Generation (not timed against the target): shards {gen['write_seconds']} s, "
            f"ingest {gen['ingest_seconds']} s, {units + 1} exposure imports "
            f"{gen['exposure_import_seconds']} s.",
            "",
        ]
    (RESULTS / "shadow.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
