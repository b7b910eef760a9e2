"""Fixture warehouses for the report tests: the seven marts built with DuckDB SQL, following
the mart column contract in docs/warehouse.md, with plausible Pythia-like values.

Two shapes matter to the report: (a) a suite of several model sizes x several checkpoints
(every chart can draw) and (b) one model with several checkpoints and no duplication data
(the charts that compare model sizes must say so instead of failing). The values are
generated from the paper's headline numbers (Biderman et al. 2023) so the charts look like
the paper's figures; they are fixture data, not results.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

# (model, n_params) of the Pythia suite; the paper's precision/recall predicting 12B.
PYTHIA = [
    ("pythia-70m", 70_426_624, 0.956, 0.197),
    ("pythia-160m", 162_322_944, 0.948, 0.289),
    ("pythia-410m", 405_334_016, 0.940, 0.401),
    ("pythia-1b", 1_011_781_632, 0.931, 0.512),
    ("pythia-1.4b", 1_414_647_808, 0.926, 0.554),
    ("pythia-2.8b", 2_775_208_960, 0.909, 0.658),
    ("pythia-6.9b", 6_857_302_016, 0.884, 0.795),
    ("pythia-12b", 11_846_072_320, 1.0, 1.0),
]
PYTHIA_STEPS = [23_000, 44_000, 64_000, 84_000, 104_000, 123_000, 143_000]
TOKENS_PER_STEP = 2_097_152


def build_marts(
    path: Path,
    models: list[tuple[str, int, float, float]],
    steps: list[int],
    *,
    family: str = "pythia",
    n_scored: int = 1_000_000,
    with_duplication: bool = True,
) -> Path:
    """Write a DuckDB file holding the seven marts (schema main) for models x steps."""
    con = duckdb.connect(str(path))
    model_rows = ", ".join(
        f"('{m}', {p}, {prec}, {rec}, {i})" for i, (m, p, prec, rec) in enumerate(models)
    )
    step_rows = ", ".join(f"({s})" for s in steps)
    max_step = max(steps)
    p_min, p_max = models[0][1], models[-1][1]
    # Rate of the smallest model 0.32%, of the largest 1.6% at the end of training (paper).
    slope = math.log(1.6 / 0.32) / math.log(p_max / p_min) if p_max > p_min else 0.0
    con.execute(f"""
        CREATE TEMP TABLE spec AS
        SELECT m.model, m.n_params, m.prec, m.rec, m.size_rank, s.step,
               'step' || s.step AS revision,
               s.step::BIGINT * {TOKENS_PER_STEP} AS tokens_seen,
               6.0::DOUBLE * m.n_params * s.step * {TOKENS_PER_STEP} AS train_flops,
               s.step = {max_step} AS is_final_revision,
               {n_scored}::BIGINT AS n_scored,
               round({n_scored} * 0.0032 * power(m.n_params / {p_min}, {slope})
                     * power(s.step / {max_step}, 0.9))::BIGINT AS n_memorized
        FROM (VALUES {model_rows}) m(model, n_params, prec, rec, size_rank)
        CROSS JOIN (VALUES {step_rows}) s(step)
    """)
    con.execute(f"""
        CREATE TABLE units AS SELECT
            model, '{family}' AS family, revision, step, n_params, tokens_seen, train_flops,
            'memwh' AS source, 'fast' AS mode, 'float16' AS dtype, 'cuda:0' AS device,
            true AS suppress_eos, 32 AS prompt_len, 32 AS cont_len, 16 AS n_shards, n_scored,
            'fp-0123456789ab' AS data_fingerprint,
            TIMESTAMP '2024-05-01 08:00:00' + INTERVAL (size_rank * 3 + step // 20000) HOUR
                AS first_started_at,
            TIMESTAMP '2024-05-01 09:30:00' + INTERVAL (size_rank * 3 + step // 20000) HOUR
                AS last_finished_at,
            'gpu-node-0' || (size_rank % 4) AS hosts, '0.1.0' AS memwh_version
        FROM spec
    """)
    con.execute(
        """
        CREATE TABLE memorization_rates AS SELECT
            model, '{family}' AS family, '{family}' AS ladder, revision, step, n_params, tokens_seen, train_flops,
            n_scored, n_memorized, n_memorized / n_scored AS memorization_rate,
            0.22 + 0.05 * ln(n_params / 7e7) + n_memorized / n_scored AS mean_score,
            3.1 + 0.4 * ln(n_params / 7e7) AS mean_prefix_match_len,
            2.9 - 0.15 * ln(n_params / 7e7) AS mean_loss,
            is_final_revision
        FROM spec
    """.replace("{family}", family)
    )
    con.execute("""
        CREATE TABLE scaling_curves AS
        WITH r AS (SELECT * FROM memorization_rates)
        SELECT family, family AS ladder, revision, step, model, n_params, tokens_seen,
               train_flops, memorization_rate,
               regr_slope(ln(memorization_rate), ln(n_params))
                   OVER (PARTITION BY family, revision) AS slope_vs_params,
               regr_slope(ln(memorization_rate), ln(tokens_seen))
                   OVER (PARTITION BY family, model) AS slope_vs_tokens,
               regr_slope(ln(memorization_rate), ln(train_flops))
                   OVER (PARTITION BY family, revision) AS slope_vs_flops
        FROM r
    """)
    con.execute("""
        CREATE TABLE cross_scale_agreement AS
        SELECT a.model AS model_a, a.revision AS revision_a,
               b.model AS model_b, b.revision AS revision_b,
               a.n_scored AS n_common, a.n_memorized AS n_a, b.n_memorized AS n_b,
               round(least(a.n_memorized, b.n_memorized)
                     * (0.95 - 0.04 * abs(a.size_rank - b.size_rank)
                        - abs(a.step - b.step) / 400000.0))::BIGINT AS n_both,
               n_both / (n_a + n_b - n_both) AS jaccard,
               0.9 * jaccard AS cohen_kappa,
               0.95 - 0.05 * abs(a.size_rank - b.size_rank) AS pearson_prefix_match_len,
               a.n_scored AS n_pearson
        FROM spec a JOIN spec b ON (a.model, a.revision) < (b.model, b.revision)
    """)
    # Predictors of each model's final checkpoint: smaller models (final revisions) for the
    # largest model, and earlier checkpoints for every model (the paper's Table 2).
    con.execute("""
        CREATE TABLE pr_base AS
        WITH targets AS (SELECT * FROM spec WHERE is_final_revision),
        smaller AS (
            SELECT p.model AS predictor_model, p.revision AS predictor_revision,
                   p.step AS predictor_step, t.model AS target_model,
                   t.revision AS target_revision, t.step AS target_step,
                   'smaller_model' AS predictor_kind, t.n_scored AS n_population,
                   p.prec, p.rec, t.n_memorized AS n_true,
                   p.n_params AS predictor_params, t.n_params AS target_params,
                   p.train_flops AS predictor_flops, t.train_flops AS target_flops
            FROM spec p JOIN targets t
              ON p.is_final_revision AND p.size_rank < t.size_rank
             AND t.size_rank = (SELECT max(size_rank) FROM spec)
        ),
        earlier AS (
            SELECT p.model, p.revision, p.step, t.model, t.revision, t.step,
                   'earlier_checkpoint', t.n_scored,
                   0.90 + 0.005 * p.size_rank + 0.025 * p.step / t.step,
                   0.22 + 0.02 * p.size_rank + 0.62 * power(p.step / t.step, 1.3), t.n_memorized,
                   p.n_params, t.n_params, p.train_flops, t.train_flops
            FROM spec p JOIN targets t ON p.model = t.model AND p.step < t.step
        )
        SELECT * FROM smaller UNION ALL SELECT * FROM earlier
    """)
    con.execute("""
        CREATE TABLE prediction_precision_recall AS
        WITH c AS (
            SELECT *, round(rec * n_true)::BIGINT AS tp FROM pr_base
        ), c2 AS (
            SELECT *, round(tp / prec)::BIGINT - tp AS fp, n_true - tp AS fn FROM c
        ), w AS (
            SELECT *, n_population - tp - fp - fn AS tn,
                   tp / (tp + fp) AS precision, tp / (tp + fn) AS recall,
                   1.959964 AS z
            FROM c2
        )
        SELECT predictor_model, predictor_revision, predictor_step, target_model,
               target_revision, target_step, predictor_kind, n_population, tp, fp, fn, tn,
               precision, recall, 2 * precision * recall / (precision + recall) AS f1,
               (precision + z*z/(2*(tp+fp)) - z*sqrt(precision*(1-precision)/(tp+fp)
                 + z*z/(4*(tp+fp)*(tp+fp)))) / (1 + z*z/(tp+fp)) AS precision_lo,
               (precision + z*z/(2*(tp+fp)) + z*sqrt(precision*(1-precision)/(tp+fp)
                 + z*z/(4*(tp+fp)*(tp+fp)))) / (1 + z*z/(tp+fp)) AS precision_hi,
               (recall + z*z/(2*(tp+fn)) - z*sqrt(recall*(1-recall)/(tp+fn)
                 + z*z/(4*(tp+fn)*(tp+fn)))) / (1 + z*z/(tp+fn)) AS recall_lo,
               (recall + z*z/(2*(tp+fn)) + z*sqrt(recall*(1-recall)/(tp+fn)
                 + z*z/(4*(tp+fn)*(tp+fn)))) / (1 + z*z/(tp+fn)) AS recall_hi,
               predictor_params, target_params, predictor_flops, target_flops,
               predictor_flops / target_flops AS compute_fraction,
               predictor_step / target_step AS training_fraction,
               target_params = (SELECT max(n_params) FROM spec) AS is_final_target
        FROM w
    """)
    con.execute("DROP TABLE pr_base")
    # Thick-tailed distribution with a spike at the maximum (the memorized sequences).
    con.execute("""
        CREATE TABLE score_distribution AS
        WITH bins AS (SELECT range AS k FROM range(0, 33)),
        pm AS (
            SELECT s.model, s.revision, 'prefix_match_len' AS metric,
                   k::DOUBLE AS bin_lower, (k + 1)::DOUBLE AS bin_upper,
                   CASE WHEN k = 32 THEN s.n_memorized
                        ELSE round((s.n_scored - s.n_memorized) * 0.45
                                   * power(0.55 + 0.02 * s.size_rank, k) * 0.98)::BIGINT
                   END AS n_sequences, s.n_scored
            FROM spec s CROSS JOIN bins
        ),
        ms AS (
            SELECT model, revision, 'memorization_score', bin_lower / 32, bin_upper / 32,
                   CASE WHEN bin_lower = 32 THEN n_sequences
                        ELSE round(n_sequences * (0.7 + 0.3 * bin_lower / 32))::BIGINT END,
                   n_scored
            FROM pm
        )
        SELECT model, revision, metric, bin_lower, bin_upper, n_sequences,
               n_sequences / n_scored AS fraction
        FROM (SELECT * FROM pm UNION ALL SELECT * FROM ms)
    """)
    dup_filter = "" if with_duplication else "WHERE false"
    con.execute(f"""
        CREATE TABLE memorization_by_duplication AS
        SELECT model, revision, step, n_params, duplicates, n_dup AS n_scored,
               n_mem AS n_memorized, n_mem / n_dup AS memorization_rate
        FROM (
        WITH d AS (SELECT power(2, range)::INTEGER AS duplicates FROM range(0, 11))
        SELECT s.model, s.revision, s.step, s.n_params, d.duplicates,
               (s.n_scored // (d.duplicates + 1))::BIGINT AS n_dup,
               least(round(n_dup * s.n_memorized / s.n_scored
                     * power(d.duplicates, 0.8)), n_dup)::BIGINT AS n_mem
        FROM spec s CROSS JOIN d {dup_filter}
        )
    """)
    con.execute("""
        CREATE TABLE build_settings AS
        SELECT name, value, TIMESTAMP '2024-05-02 10:00:00' AS built_at
        FROM (VALUES ('label_definition', 'prefix_match'), ('memorized_min_tokens', '32'),
                     ('score_threshold', '1.0'), ('restrict_checkpoint_population', 'True'),
                     ('pearson_max_sequences', '10000'), ('score_bins', '32')) v(name, value)
    """)
    _membership_marts(con)
    con.close()
    return path


SIGNALS = ("loss", "min_k_logprob", "zlib_ratio", "tf_token_accuracy", "prefix_match_len",
           "memorization_score")  # fmt: skip


def _membership_marts(con: duckdb.DuckDBPyConnection) -> None:
    """membership_inference (final revisions, both kinds), memorization_forecast (every pair of
    prediction_precision_recall) and signal_curves: binormal ROC curves whose AUC rises with
    model size, 60 points each, the binary predictor flagged at the pair's (FPR, recall)."""
    sig = ", ".join(f"('{x}', {i})" for i, x in enumerate(SIGNALS))
    con.execute(f"""
        CREATE TABLE membership_inference AS
        SELECT s.model, s.revision, s.step, g.signal, k.kind AS nonmember_kind,
               (s.n_scored // 2)::BIGINT AS n_members, (s.n_scored // 4)::BIGINT AS n_nonmembers,
               0.52 + 0.03 * s.size_rank + 0.01 * g.i AS roc_auc,
               0.51 + 0.03 * s.size_rank + 0.01 * g.i AS roc_auc_lo,
               0.53 + 0.03 * s.size_rank + 0.01 * g.i AS roc_auc_hi,
               0.002 AS tpr_at_fpr_0001, 0.02 AS tpr_at_fpr_001, 0.15 AS tpr_at_fpr_01,
               0.7 AS average_precision, 'fp-0123456789ab' AS dataset, 'rule' AS exposure_kind,
               'rule' AS exposure_source
        FROM spec s CROSS JOIN (VALUES {sig}) g(signal, i)
        CROSS JOIN (VALUES ('held_out'), ('not_yet_seen')) k(kind)
        WHERE s.is_final_revision
    """)
    con.execute(f"""
        CREATE TABLE memorization_forecast AS
        SELECT p.predictor_model, p.predictor_revision, p.predictor_step, p.target_model,
               p.target_revision, p.target_step, p.predictor_kind, g.signal, p.n_population,
               p.tp + p.fn AS n_positive, 0.8 + 0.1 * p.recall AS roc_auc,
               0.79 + 0.1 * p.recall AS roc_auc_lo, 0.81 + 0.1 * p.recall AS roc_auc_hi,
               0.05 AS tpr_at_fpr_0001, p.recall * 0.9 AS tpr_at_fpr_001,
               least(1, p.recall * 1.1) AS tpr_at_fpr_01, 0.3 + 0.4 * p.recall AS average_precision,
               (p.tp + p.fn) / p.n_population AS base_rate, p.compute_fraction,
               p.training_fraction, p.is_final_target
        FROM prediction_precision_recall p CROSS JOIN (VALUES {sig}) g(signal, i)
    """)
    # binormal ROC: tpr = Phi(a + Phi^-1(fpr)); approximated with a logistic link
    con.execute("""
        CREATE TABLE signal_curves AS
        WITH pts AS (SELECT range AS point_index FROM range(0, 60)),
        mem AS (
            SELECT 'membership' AS study, model, revision, NULL::VARCHAR AS target_model,
                   NULL::VARCHAR AS target_revision, nonmember_kind, signal,
                   2.0 * (roc_auc - 0.5) * 4 AS a, NULL::DOUBLE AS bfpr, NULL::DOUBLE AS brec,
                   n_members AS p, n_nonmembers AS n
            FROM membership_inference
        ),
        fc AS (
            SELECT 'forecast', f.predictor_model, f.predictor_revision, f.target_model,
                   f.target_revision, NULL, f.signal, 2.0 * (f.roc_auc - 0.5) * 4,
                   CASE WHEN f.signal = 'prefix_match_len' THEN p.fp / (p.fp + p.tn) END,
                   CASE WHEN f.signal = 'prefix_match_len' THEN p.recall END,
                   f.n_positive, f.n_population - f.n_positive
            FROM memorization_forecast f JOIN prediction_precision_recall p
              USING (predictor_model, predictor_revision, target_model, target_revision)
        ),
        c AS (SELECT * FROM mem UNION ALL SELECT * FROM fc),
        raw AS (
            SELECT c.*, x.point_index,
                   CASE WHEN x.point_index = 0 THEN 0.0
                        ELSE power(10, -4 + 4 * x.point_index / 59.0) END AS fpr
            FROM c CROSS JOIN pts x
        ),
        r AS (
            SELECT *, CASE WHEN fpr = 0 THEN 0.0 WHEN fpr = 1 THEN 1.0
                           ELSE 1 / (1 + exp(-(a + ln(fpr / (1 - fpr))))) END AS tpr
            FROM raw
        )
        SELECT study, model, revision, target_model, target_revision, nonmember_kind, signal,
               point_index, CASE WHEN point_index > 0 THEN 60 - point_index END::DOUBLE AS threshold,
               round(fpr * n)::BIGINT AS fp, round(tpr * p)::BIGINT AS tp,
               fpr, tpr,
               CASE WHEN point_index > 0 THEN tpr * p / (tpr * p + fpr * n) END AS precision,
               tpr AS recall,
               bfpr IS NOT NULL AND point_index = 30 AS is_binary_predictor
        FROM r
    """)
