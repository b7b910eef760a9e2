"""Raw-layer fixtures for the memorisation-profile marts: one model with five checkpoints, a
known training order and never-trained controls, plus the three inputs that must give no rows
(checkpoints without a step, no controls, one checkpoint)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import numpy as np
from wh_fixtures import add_run

PROFILE_MODEL = "pt"
PROFILE_STEPS = (0, 10, 20, 30, 40)
DATASET = "pt-data"
N_TRAINED, N_HELD_OUT = 80, 20  # seq 0..79 trained at step seq // 2; 80..99 never
REPEATED = {5, 25, 47}  # seen three times: left out of the cohorts by default


def first_step(seq: int) -> int | None:
    return seq // 2 if seq < N_TRAINED else None


def profile_rows(model: str, step: int, seqs: Iterable[int], seed: int) -> list[tuple]:
    """(seq_idx, prefix_match_len, memorization_score, loss, min_k_logprob) for one checkpoint:
    loss drifts down with training for every sequence and drops further (then partly recovers)
    once the sequence was trained on; the label follows a matched prefix that can be lost."""
    rng = np.random.default_rng([seed, step])
    out = []
    for s in seqs:
        fs = first_step(s)
        since = None if fs is None or fs >= step else step - fs
        effect = 0.0 if since is None else 0.8 * np.exp(-since / 25.0) + 0.2
        loss = 4.0 - 0.01 * step + 0.3 * rng.standard_normal() - effect
        pml = int(min(40, max(0, round(16 + 30 * effect + 8 * rng.standard_normal()))))
        out.append((s, pml, 1.0 if pml >= 32 else pml / 40, float(loss), float(-loss - 1)))
    return out


def add_profile_unit(
    con: duckdb.DuckDBPyConnection,
    model: str,
    revision: str,
    step: int | None,
    seqs: list[int],
    *,
    seed: int = 0,
    tag: str = "",
) -> None:
    run_id = f"{model}-{revision}{tag}"
    add_run(
        con,
        run_id,
        model,
        revision,
        family="pt",
        step=step,
        n_params=1000,
        seq_start=min(seqs),
        seq_end=max(seqs) + 1,
        n_rows=len(seqs),
        data_fingerprint=DATASET,
    )
    (key,) = con.execute("select run_key from raw.runs where run_id = ?", [run_id]).fetchall()[0]
    con.executemany(
        "insert into raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match, "
        "memorization_score, loss, min_k_logprob) values (?, ?, ?, ?, ?, ?, ?)",
        [
            (key, s, p, p >= 32, sc, loss, mk)
            for s, p, sc, loss, mk in profile_rows(model, step or 0, seqs, seed)
        ],
    )


def declare_table(con: duckdb.DuckDBPyConnection, model: str, seqs: list[int]) -> None:
    con.execute(
        "insert into raw.exposure_sets values (?, ?, 'table', null, null, ?, 'file', null, null, "
        "?, ?, ?)",
        [model, DATASET, f"x-{model}", len(seqs), sum(first_step(s) is not None for s in seqs),
         datetime(2026, 1, 1)],
    )  # fmt: skip
    con.executemany(
        "insert into raw.exposure values (?, ?, ?, ?, ?, ?)",
        [
            (model, DATASET, s, first_step(s), 3 if s in REPEATED else (None if s % 7 else 1), None)
            for s in seqs
        ],
    )


ALL_SEQS = list(range(N_TRAINED + N_HELD_OUT))
TRAINED_SEQS = list(range(N_TRAINED))


def load_profiles(con: duckdb.DuckDBPyConnection, steps: Iterable[int] = PROFILE_STEPS) -> None:
    """'pt' at `steps` over every sequence; 'pt-nostep' (two units without a step), 'pt-noctrl'
    (no never-trained sequence scored) and 'pt-one' (a single checkpoint), each declared."""
    for step in steps:
        add_profile_unit(con, PROFILE_MODEL, f"step{step}", step, ALL_SEQS)
    declare_table(con, PROFILE_MODEL, ALL_SEQS)
    for rev in ("main", "ft"):
        add_profile_unit(con, "pt-nostep", rev, None, ALL_SEQS, seed=1)
    declare_table(con, "pt-nostep", ALL_SEQS)
    for step in PROFILE_STEPS:
        add_profile_unit(con, "pt-noctrl", f"step{step}", step, TRAINED_SEQS, seed=2)
    declare_table(con, "pt-noctrl", TRAINED_SEQS)
    add_profile_unit(con, "pt-one", "step20", 20, ALL_SEQS, seed=3)
    declare_table(con, "pt-one", ALL_SEQS)
