"""Altair report from the warehouse marts: one offline HTML page plus a PNG per chart.

Reads only the aggregated marts (never per-sequence rows), so the report stays small at any
scale. Never imports torch or inference_jobs.
"""

from memwh.reports.render import MAX_REPORT_BYTES, ReportResult, render_report, report_size

__all__ = ["MAX_REPORT_BYTES", "ReportResult", "render_report", "report_size"]
