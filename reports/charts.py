"""The report's figures, in order: one registry entry per figure (key, title, what it shows
when drawn), the function that draws it from the marts, and the modules by family:

* rates.py         rate vs size, over training, per family, vs duplication
* prediction.py    smaller models / checkpoints predicting the largest model, the grid
* distribution.py  score distributions (final checkpoints, over training)
* agreement.py     Jaccard and Pearson heatmaps
* charts_controlled.py  insertion dose-response, mitigation (STUDIES §5, §7)
* membership.py    membership ROC and AUC, memorization forecast (STUDIES §1-3)
* charts_profiles.py   memorisation profiles and transitions (STUDIES §4)
* tables.py        units and build settings
* style.py         Section, the shared colours, the print theme, helpers

A figure's key is the file stem of its chart files: keys sort in report order.

A figure function returns `Drawn` (chart + caption computed from the data) or `Absent` (why
it cannot be drawn for this warehouse, e.g. one model only): never an exception, so a study
with one model still gets a report. `build_sections` turns either into a `Section`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from memwh.reports import (
    agreement,
    charts_controlled,
    charts_profiles,
    distribution,
    membership,
    prediction,
    rates,
    tables,
)
from memwh.reports.data import Marts
from memwh.reports.style import (
    Absent,
    Drawn,
    Section,
    Style,
    model_colors,
    print_theme,
    spans_decades,
)

__all__ = ["ALL_FIGURES", "Figure", "Section", "Style", "build_sections", "model_colors"]
_spans_decades = spans_decades  # the name the report tests import


@dataclass(frozen=True)
class Figure:
    key: str  # file stem of the chart files and DOM id
    title: str  # the report heading and the caption file's title (never inside the chart)
    what: str  # shown as the caption when the figure cannot be drawn
    draw: Callable[[Marts, Style], Drawn | Absent]


ALL_FIGURES: tuple[Figure, ...] = (
    Figure(
        "01_rate_vs_params",
        "Memorization rate vs model size",
        "Fraction of scored sequences each model memorizes, against its size.",
        rates.rate_vs_params,
    ),
    Figure(
        "01b_rate_over_training",
        "Memorization rate over training",
        "Memorization rate of each model at each checkpoint.",
        rates.rate_over_training,
    ),
    Figure(
        "01c_rate_by_family",
        "Standard vs deduplicated training",
        "Memorization rate against size for each model family side by side (e.g. Pythia "
        "standard and deduplicated).",
        rates.rate_by_family,
    ),
    Figure(
        "02_precision_recall_vs_params",
        "Smaller models predicting what the largest model memorizes",
        "Precision and recall of each smaller model's memorized set as a prediction of the "
        "largest model's (the paper's Fig. 2).",
        prediction.precision_recall_vs_params,
    ),
    Figure(
        "03_checkpoint_precision_recall",
        "Earlier checkpoints predicting the final checkpoint",
        "Precision and recall of an intermediate checkpoint's memorized set as a prediction "
        "of the final checkpoint's (the paper's Table 2).",
        prediction.checkpoint_precision_recall,
    ),
    Figure(
        "03b_prediction_grid",
        "Precision and recall over predictor size × checkpoint",
        "Every (model size, checkpoint) predicting the final largest model, as heatmaps.",
        prediction.prediction_grid,
    ),
    Figure(
        "04_recall_vs_compute",
        "Recall vs predictor compute",
        "Recall of each predictor of the final target against its training compute as a "
        "fraction of the target's (the paper's Fig. 4).",
        prediction.recall_vs_compute,
    ),
    Figure(
        "05_score_distribution",
        "Distribution of per-sequence scores",
        "Share of sequences at each score.",
        distribution.score_distribution,
    ),
    Figure(
        "05b_distribution_over_training",
        "Score distributions over training",
        "Distribution of the matched-prefix length at each checkpoint of each model.",
        distribution.distribution_over_training,
    ),
    Figure(
        "06_agreement_heatmap",
        "Cross-scale agreement of memorized sets (Jaccard)",
        "Overlap of the memorized sets of every pair of units.",
        agreement.agreement_heatmap,
    ),
    Figure(
        "06b_prefix_match_correlation",
        "Correlation of matched-prefix length across sizes and checkpoints",
        "Pearson correlation of per-sequence matched-prefix lengths between units.",
        agreement.prefix_match_correlation,
    ),
    Figure(
        "07_rate_vs_duplication",
        "Memorization rate vs duplication in the training data",
        "Memorization rate by the number of copies of a sequence in the training data.",
        rates.rate_vs_duplication,
    ),
    Figure(
        "07b_insertion_dose_response",
        "Insertion dose-response: perturbed model vs its standard control",
        "Memorization rate by copies inserted, for a perturbed model and its standard control.",
        charts_controlled.dose_response,
    ),
    Figure(
        "07c_mitigation",
        "Mitigation: memorized sequences removed vs perplexity cost",
        "Share of the base model's memorized sequences an edited model no longer memorizes, "
        "against the perplexity cost.",
        charts_controlled.mitigation,
    ),
    Figure(
        "08_membership_roc",
        "Membership inference: ROC per signal",
        "ROC curves of members against held-out non-members, per signal.",
        membership.membership_roc,
    ),
    Figure(
        "08b_membership_auc",
        "Membership inference: AUC per signal (final checkpoints)",
        "ROC AUC of each signal per unit.",
        membership.membership_auc_table,
    ),
    Figure(
        "08c_forecast_pr",
        "Forecasting memorization: precision-recall of each predictor's signal",
        "Precision-recall of smaller models' and earlier checkpoints' signals for the final "
        "target.",
        membership.forecast_pr,
    ),
    Figure(
        "09_profile_heatmap",
        "Memorisation profile: ATT(cohort, checkpoint)",
        "Difference-in-differences estimate of memorisation per cohort and checkpoint.",
        charts_profiles.profile_heatmap,
    ),
    Figure(
        "09b_profile_lines",
        "Memorisation profile per model size",
        "Instantaneous, persistent and residual memorisation per model.",
        charts_profiles.profile_lines,
    ),
    Figure(
        "09c_memorization_transitions",
        "Memorized, newly memorized and forgotten over training",
        "Memorized, newly memorized and forgotten sequences per checkpoint.",
        charts_profiles.transitions_chart,
    ),
    Figure(
        "10_units",
        "Scored units and their provenance",
        "One row per scored unit.",
        tables.units_table,
    ),
    Figure(
        "11_build_settings",
        "Build settings",
        "The warehouse vars the marts were built with.",
        tables.settings_table,
    ),
)


def build_sections(m: Marts) -> list[Section]:
    """Every figure of the report, in order, with the shared model colours and print theme."""
    st = Style.for_models(m.model_order)
    sections = []
    for f in ALL_FIGURES:
        r = f.draw(m, st)
        if isinstance(r, Absent):
            sections.append(Section(f.key, f.title, f.what, note=r.note))
            continue
        chart = print_theme(r.chart) if r.chart is not None else None
        note = r.note
        if chart is not None and m.notes.get(f.key):  # what the data layer capped
            extra = m.notes[f.key][0].upper() + m.notes[f.key][1:] + "."
            note = f"{note} {extra}" if note else extra
        sections.append(Section(f.key, f.title, r.caption, chart, note, r.table_html))
    return sections
