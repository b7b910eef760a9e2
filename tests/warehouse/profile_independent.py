"""Independent (polars + numpy, explicit loops) computation of the memorisation-profile marts
from the raw layer: per model the checkpoints, cohorts, controls, cells, summaries, transitions
and per-sequence histories, written from STUDIES §4 and §6, never from the dbt SQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

Z95 = 1.96
_I, _F = pl.Int64, pl.Float64
CELL_SCHEMA = {
    "model": pl.String, "cohort_index": _I, "cohort_first_step": _I, "cohort_last_step": _I,
    "checkpoint_step": _I, "event_time": _I, "base_step": _I, "n_treated": _I, "n_control": _I,
    "att": _F, "att_se": _F, "att_lo": _F, "att_hi": _F, "var_treated": _F,
}  # fmt: skip
SUMMARY_SCHEMA = {
    "model": pl.String, "kind": pl.String, "event_time": _I, "n_cohorts": _I, "n_treated": _I,
    "n_control": _I, "estimate": _F, "se": _F, "lo": _F, "hi": _F,
}  # fmt: skip


def load_panel(db: Path, outcome: str = "loss", min_tokens: int = 32) -> pl.DataFrame:
    """One row per dense unit with a step x stored sequence: model, revision, step, seq_idx,
    value (the outcome), mem (label), first_step, n_exposures, known (exposure declared and
    covering the sequence), read straight from raw.*."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.sql(
            "select model, revision, max(step) as step, bool_or(rows_are_sparse) as sparse, "
            "string_agg(distinct data_fingerprint, ',') as dataset from raw.runs group by all"
        ).pl()
        scores = con.sql(
            f"select model, revision, seq_idx, prefix_match_len, memorization_score, "
            f"{outcome}::double as value from raw.scores where is_run_prompt_len"
        ).pl()
        sets = con.sql(
            "select model, dataset, kind, sequences_per_step, train_steps from raw.exposure_sets"
        ).pl()
        table = con.sql(
            "select model, dataset, seq_idx, first_step, n_exposures from raw.exposure"
        ).pl()
    finally:
        con.close()
    runs = runs.with_columns(
        pl.when(pl.col("step").is_null() & pl.col("revision").str.contains(r"^step\d+$"))
        .then(pl.col("revision").str.slice(4).cast(pl.Int64))
        .otherwise(pl.col("step"))
        .alias("step")
    ).filter(pl.col("step").is_not_null() & ~pl.col("sparse").fill_null(False))
    df = scores.join(runs, on=["model", "revision"]).join(sets, on=["model", "dataset"], how="left")
    df = df.join(table, on=["model", "dataset", "seq_idx"], how="left")
    rule_fs = pl.col("seq_idx") // pl.col("sequences_per_step")
    df = df.with_columns(
        pl.when(pl.col("kind") == "rule")
        .then(
            pl.when(pl.col("train_steps").is_null() | (rule_fs < pl.col("train_steps"))).then(
                rule_fs
            )
        )
        .otherwise(pl.col("first_step"))
        .alias("first_step"),
        pl.when(pl.col("prefix_match_len").is_not_null())
        .then(pl.col("prefix_match_len") >= min_tokens)
        .otherwise(pl.col("memorization_score").fill_null(0) >= 1.0)
        .alias("mem"),
    )
    return df.select("model", "revision", "step", "seq_idx", "value", "mem", "first_step",
                     "n_exposures", "kind")  # fmt: skip


def expected_cells(panel: pl.DataFrame, exclude_repeated: bool = True) -> pl.DataFrame:
    """ATT(g, c) for every model, cohort g and checkpoint c != c_{g-1} with >= 2 treated and
    >= 2 controls, as STUDIES §4 defines it (only units with a declared exposure)."""
    out = []
    for (model,), p in panel.filter(pl.col("kind").is_not_null()).group_by(["model"]):
        steps = sorted(set(p["step"].to_list()))
        wide: dict[int, dict[int, float]] = {}
        for s in steps:
            q = p.filter((pl.col("step") == s) & pl.col("value").is_not_null())
            wide[s] = dict(zip(q["seq_idx"].to_list(), q["value"].to_list(), strict=True))
        info = p.unique("seq_idx").select("seq_idx", "first_step", "n_exposures")
        fs = dict(zip(info["seq_idx"].to_list(), info["first_step"].to_list(), strict=True))
        ne = dict(zip(info["seq_idx"].to_list(), info["n_exposures"].to_list(), strict=True))
        controls = [x for x, f in fs.items() if f is None]
        for g in range(1, len(steps)):
            base, nxt = steps[g - 1], steps[g]
            cohort = [
                x for x, f in fs.items()
                if f is not None and base <= f < nxt
                and (not exclude_repeated or ne[x] is None or ne[x] <= 1)
            ]  # fmt: skip
            for j, c in enumerate(steps):
                if j == g - 1:
                    continue
                dt = np.array(
                    [wide[c][x] - wide[base][x] for x in cohort if x in wide[c] and x in wide[base]]
                )
                dc = np.array(
                    [
                        wide[c][x] - wide[base][x]
                        for x in controls
                        if x in wide[c] and x in wide[base]
                    ]
                )
                if len(dt) < 2 or len(dc) < 2:
                    continue
                att = dt.mean() - dc.mean()
                se = np.sqrt(dt.var(ddof=1) / len(dt) + dc.var(ddof=1) / len(dc))
                out.append({
                    "model": model, "cohort_index": g, "cohort_first_step": base,
                    "cohort_last_step": nxt - 1, "checkpoint_step": c, "event_time": j - g,
                    "base_step": base, "n_treated": len(dt), "n_control": len(dc),
                    "att": float(att), "att_se": float(se),
                    "att_lo": float(att - Z95 * se), "att_hi": float(att + Z95 * se),
                    "var_treated": float(dt.var(ddof=1)),
                })  # fmt: skip
    return pl.DataFrame(out, schema=CELL_SCHEMA)


def expected_summary(panel: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    """Cohort-size weighted means of the cells per kind and event time; se from the treated
    variances plus the variance of the per-control weighted sum Z (shared controls)."""
    out = []
    for (model,), p in panel.filter(pl.col("kind").is_not_null()).group_by(["model"]):
        cm = cells.filter(pl.col("model") == model)
        if cm.is_empty():
            continue
        last = max(p["step"].to_list())
        ctrl = p.filter(pl.col("first_step").is_null() & pl.col("value").is_not_null())
        cval = {(s, x): v for s, x, v in ctrl.select("step", "seq_idx", "value").iter_rows()}
        cseq = sorted(set(ctrl["seq_idx"].to_list()))
        groups: dict[tuple[str, int | None], list[dict]] = {}
        for r in cm.iter_rows(named=True):
            k = r["event_time"]
            kind = "placebo" if k < 0 else "instantaneous" if k == 0 else "persistent"
            groups.setdefault((kind, k), []).append(r)
            if r["checkpoint_step"] == last and k > 0:
                groups.setdefault(("residual", None), []).append(r)
        for (kind, k), rows in groups.items():
            n = np.array([r["n_treated"] for r in rows], dtype=float)
            w = n / n.sum()
            est = float(sum(wi * r["att"] for wi, r in zip(w, rows, strict=True)))
            var_t = float(
                sum(
                    wi**2 * r["var_treated"] / r["n_treated"] for wi, r in zip(w, rows, strict=True)
                )
            )
            zs = []
            for x in cseq:
                parts = [
                    (cval.get((r["checkpoint_step"], x)), cval.get((r["base_step"], x)))
                    for r in rows
                ]
                if all(a is not None and b is not None for a, b in parts):
                    zs.append(sum(wi * (a - b) for wi, (a, b) in zip(w, parts, strict=True)))
            if len(zs) < 2:
                continue
            se = float(np.sqrt(var_t + np.var(zs, ddof=1) / len(zs)))
            out.append({
                "model": model, "kind": kind, "event_time": k, "n_cohorts": len(rows),
                "n_treated": int(n.sum()), "n_control": len(zs), "estimate": est, "se": se,
                "lo": est - Z95 * se, "hi": est + Z95 * se,
            })  # fmt: skip
    return pl.DataFrame(out, schema=SUMMARY_SCHEMA)


def expected_transitions(panel: pl.DataFrame) -> pl.DataFrame:
    """Per model and consecutive checkpoints: newly / kept / forgotten / never over sequences
    stored at both (dense units: every scored sequence is stored)."""
    out = []
    for (model,), p in panel.group_by(["model"]):
        steps = sorted(set(p["step"].to_list()))
        lab = {s: dict(zip(q["seq_idx"].to_list(), q["mem"].to_list(), strict=True))
               for s in steps for q in [p.filter(pl.col("step") == s)]}  # fmt: skip
        for a, b in itertools.pairwise(steps):
            common = lab[a].keys() & lab[b].keys()
            pairs = [(lab[a][x], lab[b][x]) for x in common]
            out.append({
                "model": model, "from_step": a, "to_step": b, "n_both_scored": len(common),
                "n_newly_memorized": sum(not u and v for u, v in pairs),
                "n_kept": sum(u and v for u, v in pairs),
                "n_forgotten": sum(u and not v for u, v in pairs),
                "n_never": sum(not u and not v for u, v in pairs),
            })  # fmt: skip
    return pl.DataFrame(out)


def expected_history(panel: pl.DataFrame) -> pl.DataFrame:
    """Per model and sequence memorized at least once: first/last memorized step, counts,
    first later step where it is not memorized, memorized at the model's last checkpoint."""
    out = []
    for (model,), p in panel.group_by(["model"]):
        last = max(p["step"].to_list())
        by_seq: dict[int, list[tuple[int, bool]]] = {}
        fs = {}
        for s, x, m, f in p.select("step", "seq_idx", "mem", "first_step").iter_rows():
            by_seq.setdefault(x, []).append((s, m))
            fs[x] = f
        for x, hist in by_seq.items():
            hist.sort()
            mem_steps = [s for s, m in hist if m]
            if not mem_steps:
                continue
            first = mem_steps[0]
            forgot = [s for s, m in hist if not m and s > first]
            out.append({
                "model": model, "seq_idx": x, "first_step": fs[x],
                "first_memorized_step": first, "last_memorized_step": mem_steps[-1],
                "n_checkpoints_memorized": len(mem_steps), "n_checkpoints_scored": len(hist),
                "first_forgotten_step": forgot[0] if forgot else None,
                "ever_forgotten": bool(forgot), "memorized_at_last_checkpoint": last in mem_steps,
            })  # fmt: skip
    return pl.DataFrame(out)
