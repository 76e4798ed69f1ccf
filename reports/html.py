"""The HTML export: one self-contained file (CSS, images, plotly.js inline) that opens offline.

The same template as the PDF; interactive plotly charts replace the static SVG ones.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from reports import charts_interactive
from reports.content import ReportContent
from reports.render import render_report


def html_document(content: ReportContent) -> str:
    charts = {}
    for chart in content.charts():
        div = charts_interactive.render(chart)
        if div is not None:
            charts[chart.id] = Markup(div)  # plotly's own markup; its JSON escapes "<" itself
    return render_report(
        content, charts, interactive=True, plotly_js=charts_interactive.plotly_js()
    )


def write_html(content: ReportContent, path: Path) -> Path:
    path.write_text(html_document(content), encoding="utf-8")
    return path
