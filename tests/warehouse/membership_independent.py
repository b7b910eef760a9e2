"""Independent computations for the membership / forecast marts (polars + numpy + scikit-learn).

Membership is recomputed from the raw tables (runs, scores, exposure), not from the dbt views;
the metrics come from scikit-learn, DeLong's interval from the midrank algorithm of Sun & Xu
(2014), a different route than the warehouse's grouped placement values.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl

Z95 = 1.959963984540054

# oriented so that higher = "more likely member / memorized" (STUDIES §2)
ORIENTED = {
    "loss": -pl.col("loss"),
    "min_k_logprob": pl.col("min_k_logprob"),
    "zlib_ratio": -pl.col("zlib_ratio"),
    "tf_token_accuracy": pl.col("tf_token_accuracy"),
    "prefix_match_len": pl.col("prefix_match_len"),
    "memorization_score": pl.col("memorization_score"),
}


def read(db: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the mean of their positions."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j < len(x) and xs[j] == xs[i]:
            j += 1
        ranks[order[i:j]] = 0.5 * (i + j - 1) + 1
        i = j
    return ranks


def delong(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float | None, float | None]:
    """AUC and its 95% DeLong interval (Sun & Xu 2014 fast algorithm), clipped to [0, 1]."""
    m, n = len(pos), len(neg)
    tz = midranks(np.concatenate([pos, neg]))
    tx, ty = midranks(pos), midranks(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    if m < 2 or n < 2:
        return auc, None, None
    se = np.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)


def sk_metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    out = {
        "roc_auc": roc_auc_score(y, s),
        "average_precision": average_precision_score(y, s),
    }
    for a, name in ((0.001, "tpr_at_fpr_0001"), (0.01, "tpr_at_fpr_001"), (0.1, "tpr_at_fpr_01")):
        out[name] = float(tpr[fpr <= a].max())
    return out


def membership_rows(db: Path) -> pl.DataFrame:
    """Per stored score row: membership from raw.runs (step, dataset), raw.exposure_sets and
    raw.exposure, following STUDIES §1."""
    units = read(
        db,
        "SELECT model, revision, max(coalesce(step, try_cast(regexp_extract(revision, "
        "'^step(\\d+)$', 1) AS BIGINT))) AS step, string_agg(DISTINCT data_fingerprint, ',') AS dataset "
        "FROM raw.runs GROUP BY ALL",
    )
    sets = read(
        db, "SELECT model, dataset, kind, sequences_per_step, train_steps FROM raw.exposure_sets"
    )
    table = read(db, "SELECT model, dataset, seq_idx, first_step FROM raw.exposure")
    scores = read(db, "SELECT * FROM raw.scores WHERE is_run_prompt_len")
    df = scores.join(units, on=["model", "revision"]).join(
        sets, on=["model", "dataset"], how="left"
    )
    df = df.join(
        table.rename({"first_step": "table_first_step"}).with_columns(has_row=pl.lit(True)),
        on=["model", "dataset", "seq_idx"],
        how="left",
    )
    rule_first = pl.col("seq_idx") // pl.col("sequences_per_step")
    df = df.with_columns(
        first_step=pl.when(pl.col("kind") == "rule")
        .then(
            pl.when(pl.col("train_steps").is_null() | (rule_first < pl.col("train_steps"))).then(
                rule_first
            )
        )
        .otherwise(pl.col("table_first_step"))
    )
    unknown = pl.col("kind").is_null() | ((pl.col("kind") == "table") & pl.col("has_row").is_null())
    return df.with_columns(
        membership=pl.when(unknown)
        .then(pl.lit("unknown"))
        .when(pl.col("first_step").is_null())
        .then(pl.lit("held_out"))
        .when(pl.col("step").is_null() | (pl.col("first_step") < pl.col("step")))
        .then(pl.lit("member"))
        .otherwise(pl.lit("not_yet_seen"))
    )


def expected_membership(db: Path) -> dict[tuple, dict]:
    """(model, revision, signal, nonmember_kind) -> counts, scikit-learn metrics, DeLong."""
    df = membership_rows(db).filter(pl.col("membership") != "unknown")
    out = {}
    for (model, rev), g in df.group_by(["model", "revision"]):
        for signal, expr in ORIENTED.items():
            v = g.select(pl.col("membership"), expr.alias("s")).drop_nulls("s")
            pos = v.filter(pl.col("membership") == "member")["s"].to_numpy().astype(float)
            for kind in ("held_out", "not_yet_seen"):
                neg = v.filter(pl.col("membership") == kind)["s"].to_numpy().astype(float)
                if len(pos) == 0 or len(neg) == 0:
                    continue
                y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
                s = np.r_[pos, neg]
                auc, lo, hi = delong(pos, neg)
                out[(model, rev, signal, kind)] = {
                    "n_members": len(pos),
                    "n_nonmembers": len(neg),
                    **sk_metrics(y, s),
                    "delong_auc": auc,
                    "roc_auc_lo": lo,
                    "roc_auc_hi": hi,
                }
    return out


def is_memorized(df: pl.DataFrame, min_tokens: int = 32) -> pl.Expr:
    """The default label: prefix_match_len >= min_tokens, else memorization_score >= 1."""
    return (
        pl.when(pl.col("prefix_match_len").is_not_null())
        .then(pl.col("prefix_match_len") >= min_tokens)
        .otherwise(pl.col("memorization_score").fill_null(0) >= 1.0)
    )


def expected_forecast(db: Path) -> dict[tuple, dict]:
    """(predictor_model, predictor_revision, target_model, target_revision, signal) -> metrics,
    over the pairs and population limits of prediction_precision_recall (dense units only)."""
    pairs = read(
        db,
        "SELECT p.predictor_model, p.predictor_revision, p.target_model, p.target_revision, "
        "p.population_seq_limit FROM prediction_precision_recall AS p "
        "JOIN units AS a ON a.model = p.predictor_model AND a.revision = p.predictor_revision "
        "JOIN units AS b ON b.model = p.target_model AND b.revision = p.target_revision "
        "WHERE NOT a.is_sparse AND NOT b.is_sparse",
    )
    scores = read(db, "SELECT * FROM raw.scores WHERE is_run_prompt_len")
    scores = scores.with_columns(label=is_memorized(scores))
    by_unit = {k: g for k, g in scores.group_by(["model", "revision"])}
    out = {}
    for p in pairs.iter_rows(named=True):
        a = by_unit[(p["predictor_model"], p["predictor_revision"])].drop("label")
        b = by_unit[(p["target_model"], p["target_revision"])].select("seq_idx", "label")
        j = a.join(b, on="seq_idx")
        if p["population_seq_limit"] is not None:
            j = j.filter(pl.col("seq_idx") < p["population_seq_limit"])
        for signal, expr in ORIENTED.items():
            v = j.select(pl.col("label"), expr.alias("s")).drop_nulls("s")
            y = v["label"].to_numpy().astype(int)
            if y.sum() == 0 or y.sum() == len(y):
                continue
            s = v["s"].to_numpy().astype(float)
            auc, lo, hi = delong(s[y == 1], s[y == 0])
            key = (
                p["predictor_model"],
                p["predictor_revision"],
                p["target_model"],
                p["target_revision"],
                signal,
            )
            out[key] = {
                "n_population": len(y),
                "n_positive": int(y.sum()),
                **sk_metrics(y, s),
                "delong_auc": auc,
                "roc_auc_lo": lo,
                "roc_auc_hi": hi,
            }
    return out
