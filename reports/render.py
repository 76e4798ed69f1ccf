"""The shared Jinja2 environment: one template (``templates/report.html.j2``) for PDF and HTML.

Autoescape is on for every template, so each string read from a run (class names, paths,
metadata) is HTML-escaped once, here, for both outputs. Only markup produced by this package
is marked safe: the stylesheet, plotly.js, the chart markup, and base64 data URIs.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from audits.version import __version__
from reports.content import ReportContent
from reports.present.palette import confusion_cell

TEMPLATES = Path(__file__).parent / "templates"
_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


def heat(shade: float | None, tone: str = "") -> Markup:
    """Inline style of a confusion-matrix cell: the dashboard's colours (green diagonal, white
    to dark blue elsewhere)."""
    if shade is None:
        return Markup("")
    bg, ink = confusion_cell(shade, diagonal=tone == "diag")
    return Markup(f"background-color: {bg}; color: {ink};")


def fig_uri(figure: tuple[str, bytes]) -> Markup:
    """A rendered chart figure, (MIME type, bytes), as a data URI."""
    mime, data = figure
    return Markup(f"data:{mime};base64," + base64.b64encode(data).decode("ascii"))


def img_uri(path: str) -> Markup:
    """A run's image file inlined as a data URI (the export is one self-contained file)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        return Markup("data:,")
    mime = _MIME.get(p.suffix.lower(), "application/octet-stream")
    return Markup(f"data:{mime};base64," + base64.b64encode(data).decode("ascii"))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(heat=heat, fig_uri=fig_uri, img_uri=img_uri)
    return env


def render_report(
    content: ReportContent, charts: dict[str, Any], interactive: bool, plotly_js: str = ""
) -> str:
    """The report as one HTML document: for weasyprint when static, for browsers when
    interactive."""
    env = environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html.j2").render(
        c=content,
        charts=charts,
        interactive=interactive,
        plotly_js=Markup(plotly_js),
        css=Markup(css),
        exporter_version=__version__,
    )
