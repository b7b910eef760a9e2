"""Independent computation of the shadow marts (numpy + scipy) from the raw tables: roles from
raw.runs / raw.unit_roles, membership from raw.exposure (STUDIES §1), signals oriented as
STUDIES §2; LiRA with scipy.stats.norm.logpdf and scipy.special.log_ndtr (Carlini et al. 2022)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from membership_independent import ORIENTED, membership_rows, read


def shadow_units(db: Path) -> set[tuple[str, str]]:
    roles = read(
        db,
        "SELECT r.model, r.revision, coalesce(d.role, max(r.role)) AS role FROM raw.runs AS r "
        "LEFT JOIN raw.unit_roles AS d USING (model, revision) GROUP BY r.model, r.revision, d.role",
    )
    return {(m, r) for m, r, role in roles.iter_rows() if role == "shadow"}


def long_rows(db: Path) -> pl.DataFrame:
    """model, revision, seq_idx, membership, signal, s (oriented; NULLs dropped)."""
    df = membership_rows(db)
    return (
        df.select(
            "model", "revision", "seq_idx", "membership", *[e.alias(k) for k, e in ORIENTED.items()]
        )
        .unpivot(
            index=["model", "revision", "seq_idx", "membership"],
            variable_name="signal",
            value_name="s",
        )
        .drop_nulls("s")
        .with_columns(pl.col("s").cast(pl.Float64))
    )


def expected_fits(db: Path, min_models: int, variance: str, floor: float) -> dict[tuple, dict]:
    """(seq_idx, signal) -> n_in, n_out, mean_in, mean_out, sd_in, sd_out, lira_sd_in/out,
    counterfactual, for the usable shadow units (those with exposure)."""
    shadows = shadow_units(db)
    rows = long_rows(db).filter(pl.col("membership") != "unknown")
    rows = rows.filter(
        pl.struct("model", "revision").map_elements(
            lambda r: (r["model"], r["revision"]) in shadows, return_dtype=pl.Boolean
        )
    )
    fits: dict[tuple, dict] = {}
    for (seq, signal), g in rows.group_by(["seq_idx", "signal"]):
        vin = g.filter(pl.col("membership") == "member")["s"].to_numpy()
        vout = g.filter(pl.col("membership") != "member")["s"].to_numpy()
        fits[(seq, signal)] = {
            "n_in": len(vin),
            "n_out": len(vout),
            "mean_in": vin.mean() if len(vin) else None,
            "mean_out": vout.mean() if len(vout) else None,
            "sd_in": vin.std(ddof=1) if len(vin) >= 2 else None,
            "sd_out": vout.std(ddof=1) if len(vout) >= 2 else None,
            "vin": vin,
            "vout": vout,
        }
    for side in ("in", "out"):
        for signal in {k[1] for k in fits}:
            groups = [f[f"v{side}"] for k, f in fits.items() if k[1] == signal]
            ss = sum(((v - v.mean()) ** 2).sum() for v in groups if len(v) >= 2)
            dof = sum(len(v) - 1 for v in groups if len(v) >= 2)
            pooled = np.sqrt(ss / dof) if dof else None
            for k, f in fits.items():
                if k[1] != signal:
                    continue
                sd = pooled if variance == "global" else f[f"sd_{side}"]
                f[f"lira_sd_{side}"] = None if sd is None else max(sd, floor)
    for f in fits.values():
        ok = f["n_in"] >= min_models and f["n_out"] >= min_models
        f["counterfactual"] = f["mean_in"] - f["mean_out"] if ok else None
    return fits


def expected_lira(
    db: Path, model: str, fits: dict[tuple, dict], min_models: int
) -> dict[tuple, dict]:
    """(seq_idx, signal) -> score, membership, lira_online, lira_offline of the audited unit."""
    from scipy.special import log_ndtr
    from scipy.stats import norm

    out = {}
    rows = long_rows(db).filter(pl.col("model") == model)
    for seq, signal, s, membership in rows.select(
        "seq_idx", "signal", "s", "membership"
    ).iter_rows():
        f = fits.get((seq, signal))
        if f is None:
            continue
        online = offline = None
        if f["n_in"] >= min_models and f["n_out"] >= min_models and f["lira_sd_in"] is not None:
            online = norm.logpdf(s, f["mean_in"], f["lira_sd_in"]) - norm.logpdf(
                s, f["mean_out"], f["lira_sd_out"]
            )
        if f["n_out"] >= min_models and f["lira_sd_out"] is not None:
            offline = -log_ndtr(-(s - f["mean_out"]) / f["lira_sd_out"])
        out[(seq, signal)] = {
            "score": s,
            "membership": membership,
            "lira_online": online,
            "lira_offline": offline,
        }
    return out
