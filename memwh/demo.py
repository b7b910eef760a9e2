"""`memwh demo`: the whole pipeline on the embedded default (tiny models memwh trains itself).

suite build -> score every model x checkpoint (fast mode; the final checkpoints in generate
mode, which also yields the paper's fractional score) -> ingest (+ the suite's exposure:
which step first trained on each sequence) -> dbt build -> report.
Every stage is cached or incremental, so a second run only re-checks.

`--quick` runs the same stages on a smaller suite (two small models, a shorter corpus, two
checkpoints) in its own subfolder, so its results never mix with the full demo's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memwh.core import contract
from memwh.core.config import data_dir, resolve_db
from memwh.core.errors import MemwhError

# The quick demo's suite: SuiteSettings overrides (only what differs from the defaults). Two
# sizes keep the cross-scale marts non-empty; it runs every stage quickly, while the effects
# (memorization by copies, size, training) are the full demo's. It lives in <home>/quick/, so it
# never replaces the full suite or its scores.
QUICK_SUITE: dict = {
    "sizes": ((32, 1, 2, 2e-2), (64, 2, 4, 1e-2)),
    "n_background": 512,
    "ladder": (1, 16, 128, 256),
    "canaries_per_rung": 2,
    "shared_prefix_lens": (12,),  # one pair per rung sharing 12 tokens (k = 16 tells them apart)
    "n_checkpoints": 2,
}
QUICK_SUBDIR = "quick"


@dataclass
class DemoSummary:
    """What `memwh demo` did and where its results are."""

    suite_dir: Path
    scores_root: Path
    db: Path
    report: Path | None
    seconds: dict[str, float] = field(default_factory=dict)


def _suite_checkpoints(suite_dir: Path) -> list[dict]:
    from memwh.demo_suite import read_manifest

    return read_manifest(suite_dir)["checkpoints"]


def run_demo(
    home: str | os.PathLike | None = None,
    *,
    suite_dir: str | os.PathLike | None = None,
    db: str | os.PathLike | None = None,
    report: bool = True,
    quick: bool = False,
    console: Console | None = None,
) -> DemoSummary:
    """Run (or bring up to date) the demo pipeline under `home` (default: $MEMWH_HOME, else
    ./memwh-data); `quick` runs the small suite (QUICK_SUITE) under `home`/quick instead."""
    from memwh.demo_suite import build_suite
    from memwh.ingest import ingest_root
    from memwh.warehouse.build import build

    console = console or Console()
    home = Path(home) if home else data_dir()
    if quick:
        home = home / QUICK_SUBDIR
        db_path = Path(db) if db else home / "memwh.duckdb"
    else:
        db_path = (
            Path(db) if db else (home / "memwh.duckdb" if home != data_dir() else resolve_db(None))
        )
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    suite_dir = build_suite(
        Path(suite_dir) if suite_dir else home / "demo-suite", **(QUICK_SUITE if quick else {})
    )
    seconds["suite"] = time.perf_counter() - t

    t = time.perf_counter()
    scores_root = home / "runs"
    score_suite(suite_dir, scores_root, console=console)
    seconds["score"] = time.perf_counter() - t

    t = time.perf_counter()
    ingest_root(scores_root, db_path)
    import_suite_exposure(suite_dir, db_path)
    seconds["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    with console.status("dbt build (models, data tests, unit tests)..."):
        built = build(db_path, quiet=True)
    seconds["build"] = time.perf_counter() - t
    for w in built.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(built.summary())

    report_path = None
    if report:
        from memwh.reports import render_report

        t = time.perf_counter()
        report_path = render_report(db_path, home / "report").html
        seconds["report"] = time.perf_counter() - t

    summary = DemoSummary(suite_dir, scores_root, db_path, report_path, seconds)
    print_summary(summary, console)
    return summary


SHADOW_SUBDIR = "shadow"


def run_shadow_study(
    home: str | os.PathLike | None = None,
    *,
    db: str | os.PathLike | None = None,
    console: Console | None = None,
    **suite_overrides,
) -> DemoSummary:
    """`memwh demo --study shadow`: the shadow population (demo_suite.shadow: 16 tiny models on
    random halves + an audited one) trained, scored (fast mode), ingested with one exposure
    table and role per model, built; prints the audited model's membership AUCs (loss, Min-K%,
    LiRA). Kept in `home`/shadow with its own database, apart from the default demo."""
    from memwh.demo_suite.shadow import CORPUS, build_shadow_suite
    from memwh.inference_jobs import score
    from memwh.inference_jobs.data import open_source
    from memwh.ingest import import_exposure, ingest_root
    from memwh.warehouse.build import build

    console = console or Console()
    home = (Path(home) if home else data_dir()) / SHADOW_SUBDIR
    db_path = Path(db) if db else home / "memwh.duckdb"
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    suite = build_shadow_suite(home / "shadow-suite", **suite_overrides)
    seconds["suite"] = time.perf_counter() - t
    from memwh.demo_suite import read_manifest

    manifest = read_manifest(suite)
    data = suite / CORPUS
    t = time.perf_counter()
    runs = home / "runs"
    for c in manifest["checkpoints"]:
        result = score(
            str(suite / c["model"]), str(data), runs, revision=c["revision"], name=c["model"],
            mode="fast", suppress_eos=True, device="cpu", progress=False,
            role=manifest["roles"][c["model"]],
        )  # fmt: skip
        _check_scored(result, c)
    seconds["score"] = time.perf_counter() - t
    t = time.perf_counter()
    ingest_root(runs, db_path)
    dataset = open_source(str(data)).fingerprint
    for model in manifest["models"]:
        path = suite / manifest["exposure_dir"] / f"{model}.parquet"
        import_exposure(path, model=model, dataset=dataset, db=db_path)
    seconds["ingest"] = time.perf_counter() - t
    t = time.perf_counter()
    with console.status("dbt build (models, data tests, unit tests)..."):
        built = build(db_path, quiet=True)
    seconds["build"] = time.perf_counter() - t
    for w in built.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(built.summary())
    summary = DemoSummary(suite, runs, db_path, None, seconds)
    print_shadow_summary(summary, console)
    return summary


def print_shadow_summary(summary: DemoSummary, console: Console) -> None:
    """The audited model's membership AUCs: the raw signals next to their LiRA statistics."""
    from memwh.query import sql

    rows = sql(
        "SELECT model, revision, signal, n_members, n_nonmembers, roc_auc, roc_auc_lo, "
        "roc_auc_hi, tpr_at_fpr_01 FROM membership_inference WHERE signal IN ('loss', "
        "'min_k_logprob', 'zlib_ratio', 'lira_online_loss', 'lira_offline_loss', "
        "'lira_online_min_k_logprob', 'lira_offline_min_k_logprob') AND model NOT IN "
        "(SELECT model FROM shadow_units) ORDER BY roc_auc DESC",
        summary.db,
    )
    if rows.height:
        first = rows.row(0, named=True)
        t = Table(
            "signal", "members", "non-members", "ROC AUC [95%]", "TPR@FPR 10%",
            title=f"Membership of {first['model']} @ {first['revision']} (shadow population)",
        )  # fmt: skip
        for r in rows.iter_rows(named=True):
            t.add_row(
                r["signal"],
                str(r["n_members"]),
                str(r["n_nonmembers"]),
                f"{r['roc_auc']:.3f} [{r['roc_auc_lo']:.3f}, {r['roc_auc_hi']:.3f}]",
                f"{r['tpr_at_fpr_01']:.3f}",
            )
        console.print(t)
    times = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    console.print(f"[bold green]shadow study done[/] ({times}); warehouse: {summary.db}")


def import_suite_exposure(suite_dir: Path, db: Path) -> None:
    """The suite's exposure table, declared for every model on the dataset it scored (the
    distinct-row corpus; its seq_idx are corpus positions). Skipped when unchanged."""
    from memwh.demo_suite import read_manifest, unique_sequences
    from memwh.inference_jobs.data import open_source
    from memwh.ingest import import_exposure

    manifest = read_manifest(suite_dir)
    path = suite_dir / manifest.get("exposure", {}).get("path", "exposure.parquet")
    if not path.is_file():
        raise MemwhError(
            f"{path}: the demo suite has no exposure file; rebuild it (`memwh suite build`)"
        )
    dataset = open_source(str(unique_sequences(suite_dir))).fingerprint  # what score_suite scores
    for model in manifest["models"]:
        import_exposure(path, model=model, dataset=dataset, db=db)
    for c in manifest.get("controls") or []:  # standard: never saw a canary; edited: its base's
        import_exposure(
            suite_dir / c.get("exposure", path.name), model=c["model"], dataset=dataset, db=db
        )


# Prompt lengths of the fast-mode checkpoints: one teacher-forced pass over the 64-token windows
# gives all four (the k = 32 pass's FLOPs), so memorization_by_context has a curve per unit; every
# other mart reads each run at its longest prompt length, 32, as the paper does.
CONTEXT_PROMPT_LENS = (8, 16, 24, 32)


def score_suite(suite_dir: Path, out: Path, *, console: Console | None = None) -> None:
    """Score every checkpoint on the corpus's distinct sequences: fast mode at every prompt length
    of CONTEXT_PROMPT_LENS, final ones in generate mode at 32 (which also yields the paper's
    fractional score; one decode per prompt length would cost 4x); then the controlled-experiment
    models (standard, edited) in fast mode, with their roles. Finished shards are skipped."""
    from memwh.demo_suite import read_manifest, unique_sequences
    from memwh.inference_jobs import score
    from memwh.inference_jobs.plan import plan_shard

    data = unique_sequences(suite_dir)
    checkpoints = _suite_checkpoints(suite_dir)
    final_step = {}
    for c in checkpoints:
        final_step[c["model"]] = max(final_step.get(c["model"], -1), int(c["step"]))

    def options(c: dict) -> dict:
        final = int(c["step"]) == final_step[c["model"]]
        return {
            "revision": c["revision"],
            "name": c["model"],
            "mode": "generate" if final else "fast",
            "prompt_len": 32 if final else list(CONTEXT_PROMPT_LENS),
            "suppress_eos": True,
            "save_generations": final,
        }

    # Same reuse rule as `memwh infer`; the demo owns its runs folder, so shards made with
    # other settings (an older suite or corpus) are rescored rather than refused.
    todo, sources = [], {}
    for c in checkpoints:
        plan = plan_shard(
            str(suite_dir / c["model"]), str(data), out, sources=sources, **options(c)
        )
        if (state := plan.completion().state) != "done":
            todo.append((c, state))
    if console is not None:
        console.print(
            f"scoring {len(todo)} of {len(checkpoints)} checkpoints on {data.name} "
            f"({len(checkpoints) - len(todo)} already scored)"
        )
    for c, state in todo:
        result = score(
            str(suite_dir / c["model"]),
            str(data),
            out,
            device="cpu",
            force=state == "conflict",
            role="perturbed",  # every size trained with the inserted canaries
            **options(c),
        )
        _check_scored(result, c)
    # Controlled experiments: the standard and edited models, fast mode only (same labels).
    for c in read_manifest(suite_dir).get("controls") or []:
        if contract.is_complete(out, c["model"], c["revision"], 0, 1):
            continue
        roles = {k: c.get(k) for k in ("role", "variant_of", "method", "method_params")}
        result = score(
            str(suite_dir / c["model"]),
            str(data),
            out,
            revision=c["revision"],
            name=c["model"],
            mode="fast",
            suppress_eos=True,
            device="cpu",
            **roles,
        )
        _check_scored(result, c)


def _check_scored(result, c: dict) -> None:
    if result.status == "preempted":
        raise MemwhError(
            f"scoring {c['model']}@{c['revision']} was interrupted; rerun `memwh demo` to resume"
        )


def print_context(db: Path, console: Console) -> None:
    """Memorized per prompt length at each model's latest checkpoint scored at several (the
    memorization_by_context mart: counts and the log-log slope of the rate in prompt length)."""
    from memwh.query import sql

    ctx = sql(
        "WITH multi AS (SELECT model, revision, dataset FROM memorization_by_context "
        "  GROUP BY ALL HAVING count(DISTINCT prompt_len) > 1), "
        "latest AS (SELECT model, dataset, max_by(revision, step) AS revision "
        "  FROM multi JOIN units USING (model, revision, dataset) GROUP BY ALL) "
        "SELECT c.model, c.revision, c.prompt_len, c.n_memorized, c.log_log_slope "
        "FROM memorization_by_context c JOIN latest USING (model, revision, dataset) "
        "JOIN units u USING (model, revision, dataset) ORDER BY u.n_params, c.prompt_len",
        db,
    )
    if not ctx.height:
        return
    lens = sorted(set(ctx["prompt_len"].to_list()))
    t = Table(
        "model", "revision", *[f"k={k}" for k in lens], "slope",
        title="Memorized by prompt length k (continuation 32)",
    )  # fmt: skip
    for (model, revision), g in ctx.group_by(["model", "revision"], maintain_order=True):
        by_k = dict(zip(g["prompt_len"].to_list(), g["n_memorized"].to_list(), strict=True))
        slope = g["log_log_slope"].drop_nulls()
        t.add_row(
            model, revision, *[str(by_k.get(k, "")) for k in lens],
            f"{slope[0]:.2f}" if len(slope) else "n/a",
        )  # fmt: skip
    console.print(t)


def print_summary(summary: DemoSummary, console: Console) -> None:
    """Units, memorized counts, and each model predicting the largest one."""
    from memwh.query import sql

    rates = sql(
        "SELECT model, revision, n_scored, n_memorized, memorization_rate "
        "FROM memorization_rates ORDER BY n_params, step",
        summary.db,
    )
    t = Table("model", "revision", "scored", "memorized", "rate", title="Memorization per unit")
    for r in rates.iter_rows(named=True):
        t.add_row(
            r["model"],
            r["revision"],
            f"{r['n_scored']:,}",
            f"{r['n_memorized']:,}",
            f"{r['memorization_rate']:.2%}",
        )
    console.print(t)
    pr = sql(
        "SELECT predictor_model, predictor_revision, target_model, target_revision, tp, fp, fn, "
        "precision, recall FROM prediction_precision_recall "
        "WHERE is_final_target AND predictor_kind = 'smaller_model' ORDER BY predictor_params",
        summary.db,
    )
    if pr.height:
        first = pr.row(0, named=True)
        t = Table(
            "predictor",
            "tp",
            "fp",
            "fn",
            "precision",
            "recall",
            title=f"Predicting {first['target_model']} @ {first['target_revision']}",
        )
        for r in pr.iter_rows(named=True):
            prec = "n/a" if r["precision"] is None else f"{r['precision']:.3f}"
            rec = "n/a" if r["recall"] is None else f"{r['recall']:.3f}"
            t.add_row(r["predictor_model"], str(r["tp"]), str(r["fp"]), str(r["fn"]), prec, rec)
        console.print(t)
    dose = sql(
        "SELECT model, revision, control_model, duplicates_bin, n_scored, n_memorized, "
        "control_memorized, rate_diff, rate_diff_lo, rate_diff_hi FROM insertion_dose_response "
        "WHERE control_model IS NOT NULL AND category = 'canary' ORDER BY model, duplicates_bin",
        summary.db,
    )
    if dose.height:
        first = dose.row(0, named=True)
        t = Table(
            "copies", "canaries", "perturbed", "standard", "difference [95%]",
            title=f"Canaries memorized: {first['model']} vs {first['control_model']} "
            f"@ {first['revision']}",
        )  # fmt: skip
        for r in dose.filter(model=first["model"]).iter_rows(named=True):
            t.add_row(
                str(r["duplicates_bin"]),
                str(r["n_scored"]),
                str(r["n_memorized"]),
                str(r["control_memorized"]),
                f"{r['rate_diff']:+.2f} [{r['rate_diff_lo']:+.2f}, {r['rate_diff_hi']:+.2f}]",
            )
        console.print(t)
    print_context(summary.db, console)
    times = ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items())
    console.print(f"[bold green]demo done[/] ({times}); warehouse: {summary.db}")
    if summary.report:
        console.print(
            f"report: [bold]{summary.report}[/]  (open it in a browser: file://{summary.report})"
        )
