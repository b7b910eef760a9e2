"""Assemble one self-contained HTML page: the Vega/Vega-Lite/vega-embed JavaScript (bundled by
vl-convert, no CDN) inlined once, each chart's Vega-Lite spec inlined as JSON, tables and
notes as plain HTML. It opens from file:// with no network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from functools import cache

import altair as alt
import vl_convert as vlc

from memwh.reports.charts import Section


def vl_version() -> str:
    """The Vega-Lite minor version Altair writes specs for (e.g. '6.4'), for vl-convert."""
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return (
        major_minor
        if major_minor in vlc.get_vegalite_versions()
        else vlc.get_vegalite_versions()[-1]
    )


@cache
def javascript_bundle() -> str:
    """vega + vega-lite + vega-embed as one classic script defining window.vegaEmbed."""
    return vlc.javascript_bundle(vl_version=vl_version())


def _script_json(obj: object) -> str:
    """JSON safe inside <script>: no '</' can close the tag, no '<!--' opens a comment."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.6rem;margin:0 0 4px} h2{font-size:1.2rem;margin:0 0 6px}
.meta{color:#555;font-size:.9rem;margin:0 0 16px}
nav ol{columns:2;font-size:.92rem;color:#333} nav a{color:#0b5cad;text-decoration:none}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:18px 20px;margin:18px 0}
.caption{color:#444;font-size:.92rem;max-width:980px;margin:0 0 12px;line-height:1.45}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:10px 14px;margin:8px 0;font-size:.95rem}
.chart{overflow-x:auto;min-height:40px}
.chart[data-state=error]{color:#b00020}
.table-wrap{overflow-x:auto;max-height:640px;overflow-y:auto;margin-top:10px}
table{border-collapse:collapse;font-size:.84rem}
th,td{border-bottom:1px solid #eee;padding:4px 9px;white-space:nowrap;text-align:left}
th{position:sticky;top:0;background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.summary{display:flex;gap:28px;flex-wrap:wrap;margin:8px 0 4px}
.summary div{font-size:.9rem;color:#555} .summary b{display:block;font-size:1.25rem;color:#111}
footer{color:#777;font-size:.8rem;margin-top:24px}
"""

# Render every chart; record the outcome on the element and on <body> so a reader (or a
# headless browser test) can tell a failed chart from a slow one.
_RUNNER = """
(function(){
  const charts = Array.from(document.querySelectorAll('.chart[data-spec]'));
  const jobs = charts.map(function(el){
    const spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
    return vegaEmbed(el, spec, {renderer: 'svg', actions: false})
      .then(function(){ el.dataset.state = 'ok'; })
      .catch(function(err){
        el.dataset.state = 'error';
        el.textContent = 'This chart failed to render: ' + err;
        console.error('memwh report: chart ' + el.id + ' failed:', err);
      });
  });
  Promise.all(jobs).then(function(){ document.body.dataset.rendered = String(charts.length); });
})();
"""


def build_page(
    sections: Sequence[Section],
    *,
    title: str,
    meta_html: str,
    summary: dict[str, str],
    footer: str = "",
) -> str:
    """The whole report as one HTML string."""
    specs: list[str] = []
    body: list[str] = []
    toc = []
    for s in sections:
        sid = f"sec-{s.key}"
        toc.append(f'<li><a href="#{sid}">{html.escape(s.title)}</a></li>')
        parts = [
            f'<section id="{sid}"><h2>{html.escape(s.title)}</h2>',
            f'<p class="caption">{html.escape(s.caption)}</p>',
        ]
        if s.chart is not None:
            spec_id = f"spec-{s.key}"
            specs.append(
                f'<script type="application/json" id="{spec_id}">{_script_json(s.chart.to_dict())}</script>'
            )
            parts.append(f'<div class="chart" id="chart-{s.key}" data-spec="{spec_id}"></div>')
        if s.note:
            parts.append(f'<p class="note" data-note="{s.key}">{html.escape(s.note)}</p>')
        if s.table_html:
            parts.append(f'<div class="table-wrap">{s.table_html}</div>')
        parts.append("</section>")
        body.append("".join(parts))
    stats = "".join(
        f"<div><b>{html.escape(v)}</b>{html.escape(k)}</div>" for k, v in summary.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
<script>{javascript_bundle()}</script>
</head><body><main>
<h1>{html.escape(title)}</h1>
<p class="meta">{meta_html}</p>
<div class="summary">{stats}</div>
<nav><ol>{"".join(toc)}</ol></nav>
{"".join(body)}
<footer>{html.escape(footer)} Generated by memwh.</footer>
</main>
{"".join(specs)}
<script>{_RUNNER}</script>
</body></html>
"""
