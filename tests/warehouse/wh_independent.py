"""An independent (polars + Python sets) computation of the warehouse's core numbers from the raw
layer of any DB, to compare with the dbt marts. Deliberately naive: explicit sequence sets."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl


@dataclass
class Unit:
    model: str
    revision: str
    family: str
    step: int | None
    n_params: int | None
    sequences_per_step: int | None
    population: set[int]
    memorized: set[int]
    pml: dict[int, int]
    sparse: bool
    # scaling ladder (family; family/standard, family/perturbed; None for other roles) and the
    # extraction setting (dataset, prompt_len, cont_len, exact labels?, EOS suppressed?)
    ladder: str | None = None
    setting: tuple = ()


def load_units(db: Path, min_tokens: int = 32) -> dict[tuple[str, str], Unit]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        scores = con.sql(
            "select model, revision, seq_idx, prefix_match_len, memorization_score from raw.scores "
            "where is_run_prompt_len"  # the marts read each run at its own prompt length
        ).pl()
        runs = con.sql("select * from raw.runs").pl()
        declared = dict(
            con.sql("select model || '@' || revision, role from raw.unit_roles").fetchall()
        )
    finally:
        con.close()
    scores = scores.with_columns(
        pl.when(pl.col("prefix_match_len").is_not_null())
        .then(pl.col("prefix_match_len") >= min_tokens)
        .otherwise(pl.col("memorization_score").fill_null(0) >= 1.0)
        .alias("mem")
    )
    units: dict[tuple[str, str], Unit] = {}
    for (model, revision), r in runs.group_by(["model", "revision"]):
        s = scores.filter((pl.col("model") == model) & (pl.col("revision") == revision))
        sparse = bool(r["rows_are_sparse"].fill_null(False).any())
        if sparse:
            pop: set[int] = set()
            for a, b in zip(r["seq_start"], r["seq_end"], strict=True):
                pop |= set(range(a, b))
        else:
            pop = set(s["seq_idx"].to_list())
        step = r["step"].drop_nulls()
        if step.is_empty() and revision.startswith("step") and revision[4:].isdigit():
            step_v: int | None = int(revision[4:])
        else:
            step_v = int(step.max()) if not step.is_empty() else None
        fam = r["family"].drop_nulls()
        npar = r["n_params"].drop_nulls()
        sps = r["sequences_per_step"].drop_nulls()
        family = fam[0] if not fam.is_empty() else model
        key = f"{model}@{revision}"
        roles = r["role"].drop_nulls()
        role = declared[key] if key in declared else (roles.max() if not roles.is_empty() else None)
        ladder = (
            family if role is None
            else f"{family}/{role}" if role in ("standard", "perturbed") else None
        )  # fmt: skip
        eos = r["suppress_eos"].drop_nulls()
        setting = (
            r["data_fingerprint"].max(), r["prompt_len"].max(), r["cont_len"].max(),
            set(r["mode"].to_list()) <= {"fast", "generate"},
            None if eos.is_empty() else bool(eos.any()),
        )  # fmt: skip
        units[(model, revision)] = Unit(
            model,
            revision,
            fam[0] if not fam.is_empty() else model,
            step_v,
            int(npar.max()) if not npar.is_empty() else None,
            int(sps.max()) if not sps.is_empty() else None,
            pop,
            set(s.filter(pl.col("mem"))["seq_idx"].to_list()),
            dict(zip(s["seq_idx"].to_list(), s["prefix_match_len"].to_list(), strict=True)),
            sparse,
            ladder,
            setting,
        )
    return units


def expected_rates(units: dict) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "model": u.model,
                "revision": u.revision,
                "n_scored": len(u.population),
                "n_memorized": len(u.memorized),
                "memorization_rate": len(u.memorized) / len(u.population) if u.population else None,
            }
            for u in units.values()
        ]
    )


def final_revisions(units: dict) -> set[tuple[str, str]]:
    """A model's unit with its largest step (or its only unit)."""
    by_model: dict[str, list[Unit]] = {}
    for u in units.values():
        by_model.setdefault(u.model, []).append(u)
    final = set()
    for model, us in by_model.items():
        steps = [u.step for u in us if u.step is not None]
        for u in us:
            if len(us) == 1 or (u.step is not None and u.step == max(steps)):
                final.add((model, u.revision))
    return final


def in_scope(a: Unit, b: Unit, final: set, checkpoint_pairs: str = "all_later") -> bool:
    """The pairs the marts compare, always within one setting: sizes of one scaling ladder at
    one revision; checkpoints of one model (all, or only with the final revision)."""
    if a.setting != b.setting:
        return False
    if a.model == b.model:
        return checkpoint_pairs == "all_later" or bool(
            {(a.model, a.revision), (b.model, b.revision)} & final
        )
    return a.ladder is not None and a.ladder == b.ladder and a.revision == b.revision


def expected_agreement(units: dict, checkpoint_pairs: str = "all_later") -> pl.DataFrame:
    rows = []
    final = final_revisions(units)
    for a, b in itertools.permutations(units.values(), 2):
        if not in_scope(a, b, final, checkpoint_pairs):
            continue
        common = a.population & b.population
        ma, mb = a.memorized & common, b.memorized & common
        n, na, nb, nab = len(common), len(ma), len(mb), len(ma & mb)
        union = na + nb - nab
        kappa = None
        if n:
            po = (nab + n - na - nb + nab) / n
            pe = (na * nb + (n - na) * (n - nb)) / (n * n)
            kappa = (po - pe) / (1 - pe) if pe != 1 else None
        rows.append(
            {
                "model_a": a.model,
                "revision_a": a.revision,
                "model_b": b.model,
                "revision_b": b.revision,
                "n_common": n,
                "n_a": na,
                "n_b": nb,
                "n_both": nab,
                "jaccard": nab / union if union else None,
                "cohen_kappa": kappa,
            }
        )
    return pl.DataFrame(rows)


def pearson(a: Unit, b: Unit) -> float | None:
    keys = [k for k in a.pml.keys() & b.pml.keys() if a.pml[k] is not None and b.pml[k] is not None]
    if len(keys) < 2 or a.sparse or b.sparse:
        return None
    x = [a.pml[k] for k in keys]
    y = [b.pml[k] for k in keys]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((p - mx) * (q - my) for p, q in zip(x, y, strict=True))
    sxx = sum((p - mx) ** 2 for p in x)
    syy = sum((q - my) ** 2 for q in y)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else None


def expected_precision_recall(
    units: dict, restrict: bool = True, checkpoint_pairs: str = "all_later"
) -> pl.DataFrame:
    rows = []
    final = final_revisions(units)
    for p, t in itertools.permutations(units.values(), 2):
        if p.model == t.model:
            if p.step is None or t.step is None or p.step >= t.step:
                continue
            if not in_scope(p, t, final, checkpoint_pairs):
                continue
            kind = "earlier_checkpoint"
        else:
            if not (
                in_scope(p, t, final, checkpoint_pairs)
                and p.revision == t.revision
                and p.n_params is not None
                and t.n_params is not None
                and p.n_params < t.n_params
            ):
                continue
            kind = "smaller_model"
        pop = p.population & t.population
        if kind == "earlier_checkpoint" and restrict and p.sequences_per_step:
            limit = p.step * p.sequences_per_step
            pop = {i for i in pop if i < limit}
        P, T = p.memorized & pop, t.memorized & pop
        tp, fp, fn = len(P & T), len(P - T), len(T - P)
        rows.append(
            {
                "predictor_model": p.model,
                "predictor_revision": p.revision,
                "target_model": t.model,
                "target_revision": t.revision,
                "predictor_kind": kind,
                "n_population": len(pop),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "tn": len(pop) - tp - fp - fn,
                "precision": tp / (tp + fp) if tp + fp else None,
                "recall": tp / (tp + fn) if tp + fn else None,
            }
        )
    return pl.DataFrame(rows)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return center - half, center + half


def mart(db: Path, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(f"select * from main.{name}").pl()
    finally:
        con.close()


def assert_frames_match(
    got: pl.DataFrame,
    want: pl.DataFrame,
    keys: list[str],
    exact: list[str],
    approx: list[str],
    tol: float = 1e-12,
) -> None:
    """Same key set; `exact` columns equal; `approx` columns within tol (None == None)."""
    assert got.height == want.height, (got.height, want.height)
    j = want.join(got, on=keys, how="left", suffix="_got")
    for c in exact:
        bad = j.filter(pl.col(c).ne_missing(pl.col(f"{c}_got")))
        assert bad.is_empty(), f"{c} differs:\n{bad.select([*keys, c, f'{c}_got']).head(5)}"
    for c in approx:
        for w, g in zip(j[c].to_list(), j[f"{c}_got"].to_list(), strict=True):
            if w is None or g is None:
                assert w is None and g is None, (c, w, g)
            else:
                assert abs(w - g) <= tol, (c, w, g)
