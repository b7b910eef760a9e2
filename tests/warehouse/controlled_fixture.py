"""A synthetic controlled experiment in the raw layer (Hubble/TinyMem-shaped), with the exact
rows kept in Python so tests can recompute every mart number independently.

Dataset 'ctl' (seq 0..199): 120 canaries in four copy rungs (1, 4, 16, 64; category 'canary',
insertion windows), 50 background sequences (1 copy, 'background', no window), 30 held-out
(0 copies, 'held_out'). Units (family 'hub', n_params 1000 unless said):
- hub-p @ step100, step50: perturbed (manifest role);
- hub-s @ step100: standard, same sequences and setting -> the control of hub-p@step100;
- hub-s @ step50: standard but scored only seq 0..149 -> never a control;
- hub-s64 @ step100: standard, cont_len 64 (another setting) -> never a control;
- hub-ft @ main: edited variant of hub-p@step100 (declared with raw.unit_roles), fine-tune;
- hub-p has an exposure table (held-out rows never trained).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
from wh_fixtures import add_run

N = 200
UNITS = {
    # (model, revision): (role, step, seq range, cont_len, memorization boost)
    ("hub-p", "step100"): ("perturbed", 100, (0, N), 32, 1.0),
    ("hub-p", "step50"): ("perturbed", 50, (0, N), 32, 0.7),
    ("hub-s", "step100"): ("standard", 100, (0, N), 32, 0.0),
    ("hub-s", "step50"): ("standard", 50, (0, 150), 32, 0.0),
    ("hub-s64", "step100"): ("standard", 100, (0, N), 64, 0.0),
    ("hub-ft", "main"): ("edited", None, (0, N), 32, 0.4),
}


@dataclass
class Controlled:
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    rows: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    exposure_first: np.ndarray | None = None


def sequence_meta() -> dict[str, np.ndarray]:
    seq = np.arange(N)
    dup = np.ones(N, np.int64)
    cat = np.array(["background"] * N, dtype=object)
    first = np.full(N, -1)
    last = np.full(N, -1)
    rungs = (1, 4, 16, 64)
    for i in range(120):
        dup[i] = rungs[i % 4]
        cat[i] = "canary"
        first[i] = (i * 7) % 60
        last[i] = first[i] + (i % 4) * 10 + (i % 5)
    for i in range(170, N):
        dup[i] = 0
        cat[i] = "held_out"
    return {"seq_idx": seq, "duplicates": dup, "category": cat, "first": first, "last": last}


def build(con: duckdb.DuckDBPyConnection) -> Controlled:
    rng = np.random.default_rng(17)
    out = Controlled(meta=sequence_meta())
    m = out.meta
    for (model, rev), (role, step, (lo, hi), cont_len, boost) in UNITS.items():
        run_id = f"{model}-{rev}"
        add_run(
            con, run_id, model, rev, family="hub", step=step, n_params=1000, seq_start=lo,
            seq_end=hi, n_rows=hi - lo, cont_len=cont_len, data_fingerprint="ctl",
        )  # fmt: skip
        if role != "edited":
            con.execute("UPDATE raw.runs SET role = ? WHERE run_id = ?", [role, run_id])
        seq = np.arange(lo, hi)
        d = m["duplicates"][lo:hi]
        p = np.clip(0.04 + boost * np.log2(d + 1) / 7.0, 0, 0.97)
        mem = rng.random(hi - lo) < p
        loss = np.round(3.0 - 1.5 * mem - 0.1 * np.log2(d + 1) + rng.normal(0, 0.3, hi - lo), 6)
        pml = np.where(mem, cont_len, rng.integers(0, 32, hi - lo))  # label: pml >= 32
        out.rows[(model, rev)] = {"seq_idx": seq, "mem": mem, "loss": loss}
        (key,) = con.execute("select run_key from raw.runs where run_id = ?", [run_id]).fetchall()[
            0
        ]
        con.executemany(
            "insert into raw.score_rows (run_key, seq_idx, prefix_match_len, exact_match, loss) "
            "values (?, ?, ?, ?, ?)",
            [
                (key, int(s), int(q), bool(x), float(v))
                for s, q, x, v in zip(seq, pml, mem, loss, strict=True)
            ],
        )
    con.execute(
        "INSERT INTO raw.unit_roles VALUES ('hub-ft', 'main', 'edited', 'hub-p@step100', "
        "'fine-tune', ?, ?)",
        [json.dumps({"lr": 0.001, "steps": 20}), datetime(2026, 1, 1)],
    )
    con.executemany(
        "insert into raw.sequences (data_fingerprint, seq_idx, duplicates, is_canary, category, "
        "insert_first_step, insert_last_step) values ('ctl', ?, ?, ?, ?, ?, ?)",
        [
            (i, int(m["duplicates"][i]), m["category"][i] == "canary", m["category"][i],
             None if m["first"][i] < 0 else int(m["first"][i]),
             None if m["last"][i] < 0 else int(m["last"][i]))
            for i in range(N)
        ],
    )  # fmt: skip
    # exposure of hub-p: trained sequences first at their window / a step < 50; held-out never
    first = np.where(m["first"] >= 0, m["first"], np.arange(N) % 50)
    first = np.where(m["duplicates"] == 0, -1, first)
    out.exposure_first = first
    con.execute(
        "INSERT INTO raw.exposure_sets (model, dataset, kind, exposure_id, source, n_rows, "
        "n_trained, imported_at) VALUES ('hub-p', 'ctl', 'table', 'x1', 'file', ?, ?, ?)",
        [N, int((first >= 0).sum()), datetime(2026, 1, 1)],
    )
    con.executemany(
        "INSERT INTO raw.exposure (model, dataset, seq_idx, first_step) VALUES ('hub-p', 'ctl', ?, ?)",
        [(i, None if first[i] < 0 else int(first[i])) for i in range(N)],
    )
    return out
