"""Report benchmark: render the report from the 80M-row warehouse benchmark's marts and check
it stays under 5 MB (charts read aggregated marts only, so size follows units, not rows).

Run after `python -m benchmarks.bench_warehouse` (which leaves
benchmarks/work/warehouse_bench.duckdb): `python -m benchmarks.bench_report`.
Results: benchmarks/results/report.json and .md
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from memwh.reports import MAX_REPORT_BYTES, render_report

ROOT = Path(__file__).resolve().parent
DB = ROOT / "work" / "warehouse_bench.duckdb"
RESULTS = ROOT / "results"


def main() -> dict:
    if not DB.is_file():
        raise SystemExit(f"{DB}: run `python -m benchmarks.bench_warehouse` first")
    con = duckdb.connect(str(DB), read_only=True)
    try:
        raw_rows = con.sql("SELECT count(*) FROM raw.scores").fetchall()[0][0]
        units = con.sql("SELECT count(*) FROM units").fetchall()[0][0]
    finally:
        con.close()
    t0 = time.perf_counter()
    r = render_report(DB, ROOT / "work" / "report", png=True)
    seconds = time.perf_counter() - t0
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "raw_rows": raw_rows,
        "units": units,
        "html_bytes": r.html_bytes,
        "limit_bytes": MAX_REPORT_BYTES,
        "charts": len(r.charts),
        "notes": sorted(r.notes),
        "pngs": len(r.pngs),
        "seconds": round(seconds, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    ok = "met" if r.html_bytes < MAX_REPORT_BYTES else "NOT met"
    (RESULTS / "report.md").write_text(
        "# Report benchmark\n\n"
        f"Report rendered from the warehouse benchmark ({raw_rows:,} raw score rows, {units} units), "
        f"{result['when']}: report.html **{r.html_bytes / 1e6:.2f} MB** (limit 5 MB: {ok}), "
        f"{len(r.charts)} charts + {len(r.pngs)} PNGs in {seconds:.1f} s.\n"
    )
    print((RESULTS / "report.md").read_text())
    return result


if __name__ == "__main__":
    main()
