"""Tables of the report: the scored units with their provenance, and the build settings."""

from __future__ import annotations

from memwh.reports.data import Marts
from memwh.reports.style import Absent, Drawn, Style, fmt_count, fmt_pct, table


def units_table(m: Marts, st: Style) -> Drawn:
    u = m.units

    def ts(v: object) -> str:
        return "–" if v is None else str(v)[:16]

    rows = [
        (
            r["model"],
            r["revision"],
            "–" if r["step"] is None else f"{r['step']:,}",
            fmt_count(r["n_params"]),
            f"{r['n_scored']:,}" if r["n_scored"] is not None else "–",
            f"{r['n_memorized']:,}" if r["n_memorized"] is not None else "–",
            fmt_pct(r["memorization_rate"]),
            r["dtype"],
            r["device"],
            r["mode"],
            r["source"],
            f"{r['prompt_len']}+{r['cont_len']}",
            r["n_shards"],
            ts(r["first_started_at"]),
            ts(r["last_finished_at"]),
            r["hosts"],
        )
        for r in u.iter_rows(named=True)
    ]
    table_html = table(
        [
            "model",
            "revision",
            "step",
            "params",
            "scored",
            "memorized",
            "rate",
            "dtype",
            "device",
            "mode",
            "source",
            "prompt+cont",
            "shards",
            "first started",
            "last finished",
            "hosts",
        ],
        rows,
        numeric={2, 3, 4, 5, 6, 12},
    )
    note = f"Showing {u.height} of {m.n_units} units." if m.n_units > u.height else None
    caption = (
        "One row per scored unit (model × revision): sequences scored, memorized "
        f"({m.label}), the rate, and how it was scored (precision, device, decoding mode, "
        "source of the rows, prompt/continuation lengths, shards, dates, hosts). Dataset: "
        f"{m.dataset}."
    )
    return Drawn(None, caption, note=note, table_html=table_html)


def settings_table(m: Marts, st: Style) -> Drawn | Absent:
    """The vars the marts were built with (build_settings), so a reader knows the label."""
    if not m.settings:
        return Absent(
            "This warehouse does not record its build settings (built by an older memwh): "
            "run `memwh build` again."
        )
    rows = [(k, v) for k, v in m.settings.items()]
    caption = (
        f"The warehouse vars of the build every figure above comes from. Memorized means {m.label}."
    )
    return Drawn(None, caption, table_html=table(["var", "value"], rows, numeric=set()))
