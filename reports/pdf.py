"""The PDF export: the report template with static SVG charts, laid out by weasyprint on A4.

Text stays text (selectable, searchable, extractable); charts are vector SVG. The PDF's
creation and modification dates are the audit run's own time (``dcterms.created`` in the
template), not the export time, so exporting the same run twice gives the same PDF.
"""

from __future__ import annotations

import logging
from pathlib import Path

from reports import charts_static
from reports.content import ReportContent
from reports.render import render_report


def static_charts(content: ReportContent) -> dict[str, list[charts_static.Figure]]:
    return {chart.id: charts_static.render(chart) for chart in content.charts()}


def pdf_html(content: ReportContent) -> str:
    """The HTML that weasyprint lays out (useful to debug the PDF in a browser)."""
    return render_report(content, static_charts(content), interactive=False)


def write_pdf(content: ReportContent, path: Path) -> Path:
    from weasyprint import HTML

    # weasyprint logs every unsupported CSS property it meets (the screen rules); keep quiet.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=pdf_html(content), base_url=str(Path.cwd())).render()
    document.write_pdf(path)
    return path
