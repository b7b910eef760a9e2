"""Read the marts the report draws from (and nothing else) into small polars frames.

The report must stay small at any warehouse scale, so every query here is bounded: per-unit
marts are capped, pair marts are filtered to the units a chart shows, and per-sequence data
is never read (only the binned `score_distribution` and `memorization_by_duplication`).
The connection is read-only and closed before any chart is drawn: DuckDB allows no other
connection while `memwh build` (dbt) writes the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from memwh.core.config import resolve_db
from memwh.core.db import connect, last_build_warning
from memwh.core.errors import MemwhError
from memwh.reports.data_controlled import ControlledData, load_controlled
from memwh.reports.data_membership import MembershipData, load_membership
from memwh.reports.data_profiles import ProfileData, load_profiles
from memwh.reports.sql import query, table_names

# The columns of the mart contract (docs/warehouse.md) that the report reads.
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "units": (
        "model", "family", "revision", "step", "n_params", "source", "mode", "dtype",
        "device", "prompt_len", "cont_len", "n_shards", "n_scored", "first_started_at",
        "last_finished_at", "hosts",
    ),
    "memorization_rates": (
        "model", "family", "ladder", "revision", "step", "n_params", "tokens_seen", "train_flops",
        "n_scored", "n_memorized", "memorization_rate", "mean_prefix_match_len",
        "is_final_revision",
    ),
    "cross_scale_agreement": (
        "model_a", "revision_a", "model_b", "revision_b", "n_common", "n_a", "n_b", "n_both",
        "jaccard", "cohen_kappa", "pearson_prefix_match_len", "n_pearson",
    ),
    "prediction_precision_recall": (
        "predictor_model", "predictor_revision", "predictor_step", "target_model",
        "target_revision", "target_step", "predictor_kind", "n_population", "tp", "fp", "fn",
        "precision", "recall", "precision_lo", "precision_hi", "recall_lo", "recall_hi",
        "predictor_params", "target_params", "compute_fraction", "training_fraction",
        "is_final_target",
    ),
    "scaling_curves": (
        "family", "ladder", "revision", "step", "model", "n_params", "memorization_rate",
        "slope_vs_params",
    ),
    "score_distribution": (
        "model", "revision", "metric", "bin_lower", "bin_upper", "n_sequences", "fraction",
    ),
    "memorization_by_duplication": (
        "model", "revision", "step", "n_params", "duplicates", "n_scored", "n_memorized",
        "memorization_rate",
    ),
}  # fmt: skip

# Caps that keep the HTML far below 5 MB whatever the warehouse holds.
MAX_UNITS_TABLE = 400  # rows of the unit summary table
MAX_RATE_UNITS = 3000  # units drawn in the rate charts
MAX_REVISION_LINES = 12  # revisions drawn as lines in the rate-vs-parameters chart
MAX_HEATMAP_UNITS = 24  # units in the agreement heatmap (24^2 cells)
MAX_DIST_UNITS = 12  # units drawn in the score distribution
MAX_DUP_POINTS = 40  # duplication values per model before log2 binning
MAX_PR_ROWS = 2000
MAX_LINE_MODELS = 12  # models drawn as lines (evenly spread by size, largest always in)
MAX_CHECKPOINTS = 24  # checkpoints per model in the checkpoint -> final chart
MAX_GRID_CHECKPOINTS = 12  # checkpoints per model in the predictor grid and Pearson heatmaps
MAX_DIST_CHECKPOINTS = 8  # checkpoints per model in the distributions over training

# The label vars of the build (build_settings); used when the table is missing (older build).
LABEL_VARS = ("label_definition", "memorized_min_tokens", "score_threshold")


@dataclass
class Marts:
    """Everything the report draws, already bounded in size."""

    db: Path
    units: pl.DataFrame
    n_units: int  # units in the warehouse (the table may show fewer)
    rates: pl.DataFrame  # memorization_rates, capped
    scaling: pl.DataFrame  # scaling_curves, revisions thinned to MAX_REVISION_LINES
    n_revisions: int  # distinct revisions in scaling_curves
    agreement: pl.DataFrame  # symmetric pairs among heatmap_units (diagonal excluded)
    heatmap_units: list[str]  # unit labels "model@revision" (or model) in display order
    pr_smaller: pl.DataFrame  # smaller models predicting the final target(s)
    pr_checkpoints: pl.DataFrame  # earlier checkpoints predicting a model's final revision
    distribution: pl.DataFrame
    duplication: pl.DataFrame
    duplication_binned: bool
    model_order: list[str]  # models ordered by parameter count (the colour domain)
    line_models: list[str]  # the models drawn in per-model line charts (<= MAX_LINE_MODELS)
    notes: dict[str, str] = field(default_factory=dict)
    controlled: ControlledData = field(default_factory=lambda: ControlledData())
    # set when the last `memwh build` did not complete: the marts may disagree
    build_warning: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # build_settings (name -> value)
    lengths: list[tuple[int, int]] = field(default_factory=list)  # distinct (prompt, cont) lens
    datasets: list[tuple[str, str, int]] = field(default_factory=list)  # source, fingerprint, units
    # a warehouse of several datasets: the one drawn, and the others (`memwh report --dataset`)
    shown_dataset: str | None = None
    other_datasets: list[str] = field(default_factory=list)
    pearson_sizes: pl.DataFrame | None = None  # symmetric pairs of final revisions
    pearson_checkpoints: pl.DataFrame | None = None  # symmetric pairs of the headline's checkpoints
    grid: pl.DataFrame | None = None  # every unit predicting the headline target
    dist_training: pl.DataFrame | None = None  # prefix_match_len bins over checkpoints

    @property
    def label(self) -> str:
        """The memorization label the marts were built with, in words."""
        conts = sorted({c for _, c in self.lengths if c is not None})
        cont = "/".join(map(str, conts)) or "?"
        definition = self.settings.get("label_definition")
        if definition == "score":
            t = self.settings.get("score_threshold", "?")
            return f"memorization score ≥ {t} (fraction of the {cont} continuation tokens matched)"
        k = self.settings.get("memorized_min_tokens")
        if k is None:
            return "the label of the last build (its settings are not recorded: rebuild)"
        if conts and all(int(k) == c for c in conts):
            return f"the greedy continuation reproduces all {cont} continuation tokens exactly"
        return (
            f"the greedy continuation matches at least the first {k} of {cont} continuation tokens"
        )

    @property
    def dataset(self) -> str:
        """The scored dataset(s), named by file and fingerprint."""
        if not self.datasets:
            return "the scored dataset (not recorded)"
        parts = [
            f"{Path(src).name if src else 'imported rows'} ({fp or 'no fingerprint'})"
            for src, fp, _ in self.datasets[:3]
        ]
        more = f" and {len(self.datasets) - 3} more" if len(self.datasets) > 3 else ""
        if self.other_datasets:
            more += (
                f" (this report; the warehouse also holds {', '.join(self.other_datasets)}: "
                "memwh report --dataset KEY)"
            )
        return ", ".join(parts) + more

    @property
    def prompt_text(self) -> str:
        prompts = sorted({p for p, _ in self.lengths if p is not None})
        return "/".join(map(str, prompts)) or "?"

    membership: MembershipData | None = (
        None  # membership / forecast figures (reports/membership.py)
    )
    profiles: ProfileData | None = None  # memorisation profiles (reports/data_profiles.py)

    @property
    def n_models(self) -> int:
        return len(self.model_order)


def _check_marts(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    rows = con.sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
    ).fetchall()
    have: dict[str, set[str]] = {}
    for table, column in rows:
        have.setdefault(table, set()).add(column)
    missing = [t for t in MART_COLUMNS if t not in have]
    if missing:
        raise MemwhError(
            f"{db}: mart {', '.join(missing)} missing (warehouse not built); "
            "run `memwh build` first"
        )
    for table, cols in MART_COLUMNS.items():
        lacking = [c for c in cols if c not in have[table]]
        if lacking:
            raise MemwhError(
                f"{db}: mart {table} has no column {', '.join(lacking)} (built by an older "
                "memwh?); run `memwh build` again"
            )


def _thin(items: list, keep: int) -> list:
    """At most `keep` items evenly spread over the list, always the first and the last."""
    if len(items) <= keep:
        return list(items)
    idx = sorted({round(i * (len(items) - 1) / (keep - 1)) for i in range(keep)})
    return [items[i] for i in idx]


def _pairs(con: duckdb.DuckDBPyConnection, keys: list[str]) -> pl.DataFrame:
    """Both orientations of the cross_scale_agreement pairs among `keys` (model\x1frevision)."""
    return query(
        con,
        """WITH pairs AS (
               SELECT model_a, revision_a, model_b, revision_b, n_common, n_a, n_b, n_both,
                      jaccard, cohen_kappa, pearson_prefix_match_len, n_pearson
               FROM cross_scale_agreement
               UNION ALL
               SELECT model_b, revision_b, model_a, revision_a, n_common, n_b, n_a, n_both,
                      jaccard, cohen_kappa, pearson_prefix_match_len, n_pearson
               FROM cross_scale_agreement
           )
           SELECT DISTINCT ON (model_a, revision_a, model_b, revision_b) *
           FROM pairs
           WHERE model_a || chr(31) || revision_a IN (SELECT unnest($keys))
             AND model_b || chr(31) || revision_b IN (SELECT unnest($keys))
             AND (model_a, revision_a) <> (model_b, revision_b)""",
        keys=keys,
    )


def _restrict_to_dataset(
    con: duckdb.DuckDBPyConnection, dataset: str | None
) -> tuple[str | None, list[str]]:
    """Several datasets in one warehouse (a unit is model x revision x dataset): the report
    draws one, `dataset` or else the one with the most units, so no chart sets rates of two
    datasets side by side as if they were one. Every main relation with a dataset column is
    shadowed for this read-only connection by a temporary view of that dataset's rows.
    Returns (the dataset shown, the others); (None, []) when there is nothing to choose."""
    cols = {
        r[0]
        for r in con.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = 'units'"
        ).fetchall()
    }
    if "dataset" not in cols:  # built before datasets were part of the unit
        if dataset is not None:
            raise MemwhError("--dataset: this warehouse was built by an older memwh; rebuild it")
        return None, []
    known = [
        r[0]
        for r in con.sql(
            "SELECT dataset FROM units GROUP BY dataset ORDER BY count(*) DESC, dataset"
        ).fetchall()
    ]
    if dataset is not None and dataset not in known:
        raise MemwhError(
            f"--dataset {dataset!r}: no unit scored it; the warehouse holds "
            f"{', '.join(known) or 'no units'}"
        )
    if dataset is None and len(known) <= 1:
        return None, []
    shown = dataset or known[0]
    catalog = con.sql("SELECT current_database()").fetchall()[0][0]
    literal = "'" + shown.replace("'", "''") + "'"
    for (name,) in con.sql(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_catalog = current_database() AND column_name = 'dataset'"
    ).fetchall():
        con.execute(
            f'CREATE TEMP VIEW "{name}" AS SELECT * FROM "{catalog}".main."{name}" '
            f"WHERE dataset = {literal}"
        )
    return shown, [d for d in known if d != shown]


def load_marts(db: str | os.PathLike | None = None, *, dataset: str | None = None) -> Marts:
    """Open the warehouse read-only and read the bounded slices the charts need (of one
    dataset when the warehouse holds several: `dataset`, else the one with the most units)."""
    path = resolve_db(db)
    con = connect(path, read_only=True, hint="run `memwh ingest ROOT` and then `memwh build` first")
    try:
        _check_marts(con, path)
        shown, others = _restrict_to_dataset(con, dataset)
        marts = _load(con, path)
        marts.shown_dataset, marts.other_datasets = shown, others
        marts.build_warning = last_build_warning(con)
        return marts
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, path: Path) -> Marts:
    notes: dict[str, str] = {}
    rate_cols = {
        r[0]
        for r in con.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'memorization_rates'"
        ).fetchall()
    }
    # rates over what each checkpoint had seen (exposure); NULL in warehouses without them
    seen = ", ".join(
        c if c in rate_cols else f"NULL::{t} AS {c}"
        for c, t in (
            ("n_seen", "BIGINT"),
            ("n_memorized_seen", "BIGINT"),
            ("memorization_rate_seen", "DOUBLE"),
            ("memorization_rate_seen_lo", "DOUBLE"),
            ("memorization_rate_seen_hi", "DOUBLE"),
        )
    )
    rates = query(
        con,
        f"""SELECT model, family, ladder, revision, step, n_params, tokens_seen, train_flops,
                   n_scored, n_memorized, memorization_rate, mean_prefix_match_len,
                   is_final_revision, {seen}
            FROM memorization_rates
            ORDER BY n_params NULLS LAST, model, step NULLS LAST, revision
            LIMIT {MAX_RATE_UNITS}""",
    )
    if rates.is_empty():
        raise MemwhError(
            f"{path}: mart memorization_rates is empty (no scored units); run `memwh ingest "
            "ROOT` and `memwh build` first"
        )
    n_rate_units = con.sql("SELECT count(*) FROM memorization_rates").fetchall()[0][0]
    if n_rate_units > MAX_RATE_UNITS:
        notes["01b_rate_over_training"] = (
            f"showing the first {MAX_RATE_UNITS} of {n_rate_units} units"
        )

    order = (
        rates.group_by("model")
        .agg(pl.col("n_params").max())
        .sort(["n_params", "model"], nulls_last=True)
    )
    model_order = order["model"].to_list()
    line_models = _thin(model_order, MAX_LINE_MODELS)
    if len(line_models) < len(model_order):
        shown = f"showing {len(line_models)} of {len(model_order)} models, evenly spread by size"
        for key in (
            "01b_rate_over_training",
            "03_checkpoint_precision_recall",
            "05_score_distribution",
            "07_rate_vs_duplication",
        ):
            notes[key] = shown

    units = query(
        con,
        f"""SELECT u.model, u.family, u.revision, u.step, u.n_params, u.n_scored,
                   r.n_memorized, r.memorization_rate, u.source, u.mode, u.dtype, u.device,
                   u.prompt_len, u.cont_len, u.n_shards, u.first_started_at,
                   u.last_finished_at, u.hosts
            FROM units u LEFT JOIN memorization_rates r USING (model, revision)
            ORDER BY u.n_params NULLS LAST, u.model, u.step NULLS LAST, u.revision
            LIMIT {MAX_UNITS_TABLE}""",
    )
    n_units = con.sql("SELECT count(*) FROM units").fetchall()[0][0]

    # Chart 1: lines per revision; many checkpoints -> an even sample incl. the last one.
    revisions = con.sql(
        "SELECT revision, max(step) AS s FROM scaling_curves "
        "GROUP BY revision ORDER BY s NULLS LAST, revision"
    ).fetchall()
    keep_revs = _thin([r[0] for r in revisions], MAX_REVISION_LINES)
    scaling = query(
        con,
        # one line per scaling ladder (family and role class): a standard, edited or shadow
        # model of the family is not a size of its perturbed ladder (see docs/warehouse.md)
        """SELECT ladder AS family, revision, step, model, n_params, memorization_rate,
                  slope_vs_params
           FROM scaling_curves WHERE ladder IS NOT NULL AND revision IN (SELECT unnest($revs))
           ORDER BY family, step NULLS LAST, n_params NULLS LAST""",
        revs=keep_revs,
    )

    final = rates.filter(pl.col("is_final_revision"))
    # Heatmap: the final revision of each model; with one model, its checkpoints.
    if final.height >= 2:
        hm = final.select("model", "revision")
    else:
        hm = rates.select("model", "revision")
    hm_rows = _thin(hm.rows(), MAX_HEATMAP_UNITS)
    if len(hm_rows) < hm.height:
        notes["06_agreement_heatmap"] = (
            f"showing {len(hm_rows)} of {hm.height} units, evenly spread"
        )
    by_model = final.height >= 2 and len({m for m, _ in hm_rows}) == len(hm_rows)
    labels = [m if by_model else f"{m}@{r}" for m, r in hm_rows]
    keys = [f"{m}\x1f{r}" for m, r in hm_rows]
    agreement = _pairs(con, keys)
    label_of = {k: lab for k, lab in zip(keys, labels, strict=True)}
    agreement = agreement.with_columns(
        unit_a=pl.concat_str("model_a", "revision_a", separator="\x1f").replace_strict(label_of),
        unit_b=pl.concat_str("model_b", "revision_b", separator="\x1f").replace_strict(label_of),
    )

    pr_cols = ", ".join(MART_COLUMNS["prediction_precision_recall"])
    pr_smaller = query(
        con,
        f"""SELECT {pr_cols} FROM prediction_precision_recall
            WHERE predictor_kind = 'smaller_model' AND is_final_target
            ORDER BY target_model, predictor_params NULLS LAST, predictor_model
            LIMIT {MAX_PR_ROWS}""",
    )
    # Checkpoints -> final: the line models' final targets (and the headline target), each
    # thinned in SQL to MAX_CHECKPOINTS evenly spread checkpoints.
    k = MAX_CHECKPOINTS - 1
    pr_checkpoints = query(
        con,
        f"""WITH c AS (
                SELECT {pr_cols},
                       row_number() OVER w - 1 AS i,
                       count(*) OVER (PARTITION BY target_model, target_revision) AS n
                FROM prediction_precision_recall p
                WHERE predictor_kind = 'earlier_checkpoint'
                  AND (is_final_target OR (
                       target_model IN (SELECT unnest($models)) AND EXISTS (
                       SELECT 1 FROM memorization_rates r WHERE r.is_final_revision
                       AND r.model = p.target_model AND r.revision = p.target_revision)))
                WINDOW w AS (PARTITION BY target_model, target_revision
                             ORDER BY predictor_step NULLS LAST, predictor_revision)
            )
            SELECT {pr_cols} FROM c
            WHERE n <= {MAX_CHECKPOINTS}
               OR i = round(round(i * {k} / (n - 1)) * (n - 1) / {k})
            ORDER BY target_params NULLS LAST, target_model, predictor_step NULLS LAST
            LIMIT {MAX_PR_ROWS}""",
        models=line_models,
    )

    # Distribution: final revision per model; with one model, its checkpoints (thinned).
    if final.height >= 2:
        dist_units = final.filter(pl.col("model").is_in(line_models)).select("model", "revision")
        dist_units = _thin(dist_units.rows(), MAX_DIST_UNITS)
    else:
        dist_units = _thin(rates.select("model", "revision").rows(), MAX_DIST_UNITS)
    dist_keys = [f"{m}\x1f{r}" for m, r in dist_units]
    distribution = query(
        con,
        """SELECT d.model, d.revision, r.step, r.n_params, d.metric, d.bin_lower, d.bin_upper,
                  d.n_sequences, d.fraction
           FROM score_distribution d
           LEFT JOIN memorization_rates r USING (model, revision)
           WHERE d.model || chr(31) || d.revision IN (SELECT unnest($keys))
             AND d.n_sequences > 0
           ORDER BY r.n_params NULLS LAST, d.model, r.step, d.metric, d.bin_lower""",
        keys=dist_keys,
    )

    # Duplication: final revision per model.
    dup_where = (
        "EXISTS (SELECT 1 FROM memorization_rates r WHERE r.is_final_revision "
        "AND r.model = m.model AND r.revision = m.revision)"
    )
    n_dup_values = con.sql(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(DISTINCT duplicates) AS n "
        "FROM memorization_by_duplication GROUP BY model, revision)"
    ).fetchall()[0][0]
    binned = n_dup_values > MAX_DUP_POINTS
    dup_key = "CAST(power(2, floor(log2(duplicates))) AS BIGINT)" if binned else "duplicates"
    duplication = query(
        con,
        f"""WITH d AS (
                SELECT * FROM memorization_by_duplication m
                WHERE duplicates >= 1 AND n_scored > 0 AND {dup_where}
            )
            SELECT model, revision, any_value(step) AS step, any_value(n_params) AS n_params,
                   {dup_key} AS duplicates, sum(n_scored) AS n_scored,
                   sum(n_memorized) AS n_memorized,
                   sum(n_memorized) / sum(n_scored) AS memorization_rate
            FROM d WHERE model IN (SELECT unnest($models)) GROUP BY ALL
            ORDER BY any_value(n_params) NULLS LAST, model, duplicates""",
        models=line_models,
    )
    extra = _load_extra(con, rates, line_models)
    return Marts(
        controlled=load_controlled(con),
        db=path,
        units=units,
        n_units=n_units,
        rates=rates,
        scaling=scaling,
        n_revisions=len(revisions),
        agreement=agreement,
        heatmap_units=labels,
        pr_smaller=pr_smaller,
        pr_checkpoints=pr_checkpoints,
        distribution=distribution,
        duplication=duplication,
        duplication_binned=binned,
        model_order=model_order,
        line_models=line_models,
        notes=notes,
        **extra,
        membership=load_membership(con, model_order),
        profiles=load_profiles(con, line_models),
    )


def _load_extra(
    con: duckdb.DuckDBPyConnection, rates: pl.DataFrame, line_models: list[str]
) -> dict:
    """What captions quote (settings, lengths, datasets) and the data of the figures added
    for issue 18 (Pearson heatmaps, predictor grid, distributions over training)."""
    have = table_names(con)
    settings = (
        dict(con.sql("SELECT name, value FROM build_settings").fetchall())
        if "build_settings" in have
        else {}
    )
    lengths = con.sql("SELECT DISTINCT prompt_len, cont_len FROM units ORDER BY ALL").fetchall()
    datasets: list[tuple[str, str, int]] = []
    if "stg_memwh__runs" in have:
        datasets = con.sql(
            "SELECT data_source, data_fingerprint, count(*) AS n FROM (SELECT DISTINCT model, "
            "revision, data_source, data_fingerprint FROM stg_memwh__runs) GROUP BY ALL "
            "ORDER BY n DESC, data_source LIMIT 10"
        ).fetchall()

    final = rates.filter(pl.col("is_final_revision") & pl.col("model").is_in(line_models))
    size_keys = [f"{m}\x1f{r}" for m, r in final.select("model", "revision").rows()]
    pearson_sizes = _pairs(con, size_keys) if len(size_keys) >= 2 else None

    # the headline model: the largest one (last in size order) with several checkpoints
    with_steps = rates.filter(pl.col("step").is_not_null())
    multi = with_steps.group_by("model").len().filter(pl.col("len") >= 2)["model"].to_list()
    headline = next((m for m in reversed(line_models) if m in multi), None)
    pearson_checkpoints = None
    if headline:
        revs = with_steps.filter(pl.col("model") == headline).sort("step")["revision"].to_list()
        keep = _thin(revs, MAX_GRID_CHECKPOINTS)
        pearson_checkpoints = _pairs(con, [f"{headline}\x1f{r}" for r in keep])

    # every unit (line models, thinned checkpoints) predicting the final largest model
    grid = None
    target = rates.filter(pl.col("is_final_revision")).sort("n_params", nulls_last=True).tail(1)
    if target.height and with_steps["model"].n_unique() >= 1:
        t_model, t_rev = target["model"][0], target["revision"][0]
        keys = [f"{t_model}\x1f{t_rev}"]
        for model in line_models:
            revs = with_steps.filter(pl.col("model") == model).sort("step")["revision"].to_list()
            keys += [f"{model}\x1f{r}" for r in _thin(revs, MAX_GRID_CHECKPOINTS)]
        pairs = _pairs(con, sorted(set(keys)))
        grid = (
            pairs.filter((pl.col("model_b") == t_model) & (pl.col("revision_b") == t_rev))
            .join(
                rates.select(
                    pl.col("model").alias("model_a"),
                    pl.col("revision").alias("revision_a"),
                    pl.col("step").alias("step_a"),
                    pl.col("n_params").alias("params_a"),
                ),
                on=["model_a", "revision_a"],
                how="left",
            )
            .with_columns(
                precision=pl.when(pl.col("n_a") > 0).then(pl.col("n_both") / pl.col("n_a")),
                recall=pl.when(pl.col("n_b") > 0).then(pl.col("n_both") / pl.col("n_b")),
            )
        )

    dist_rows = []
    for model in line_models:
        revs = with_steps.filter(pl.col("model") == model).sort("step")["revision"].to_list()
        dist_rows += [f"{model}\x1f{r}" for r in _thin(revs, MAX_DIST_CHECKPOINTS)]
    dist_training = query(
        con,
        """SELECT d.model, d.revision, r.step, r.n_params, d.bin_lower, d.bin_upper,
                  d.n_sequences, d.fraction
           FROM score_distribution d JOIN memorization_rates r USING (model, revision)
           WHERE d.metric = 'prefix_match_len' AND d.n_sequences > 0
             AND d.model || chr(31) || d.revision IN (SELECT unnest($keys))
           ORDER BY r.n_params NULLS LAST, d.model, r.step, d.bin_lower""",
        keys=dist_rows,
    )
    return {
        "settings": settings,
        "lengths": lengths,
        "datasets": datasets,
        "pearson_sizes": pearson_sizes,
        "pearson_checkpoints": pearson_checkpoints,
        "grid": grid,
        "dist_training": dist_training,
    }
