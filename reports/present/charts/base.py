"""What every chart builder shares: the plotly template, sizes, the empty chart, safe reading.

Builders turn stored values (audit.json, drift.json, comparison.json blocks) into plotly
figures and never compute a metric. Hover texts are written with ``reports.present.fmt`` so a
chart says a number the same way as the page or the document around it, and class names are
HTML-escaped (plotly renders a few tags inside labels and decodes entities, so an escaped name
reads as the same characters and is never interpreted).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from reports.present.palette import BASE_PALETTE, GRID, INK, LIGHT, MUTED

#: Above this many classes an axis shows no tick labels (hover instead).
MAX_LABELLED = 60
TEMPLATE = "audit"

pio.templates[TEMPLATE] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, 'Source Sans Pro', 'Segoe UI', sans-serif", size=12, color=INK),
        title=dict(font=dict(size=15, color=INK), x=0, xanchor="left", y=0.98, yanchor="top"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=BASE_PALETTE,
        margin=dict(l=10, r=10, t=56, b=10),
        xaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID, ticks="", automargin=True),
        yaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID, ticks="", automargin=True),
        hoverlabel=dict(bgcolor="white", bordercolor=GRID, font=dict(color=INK)),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
    )
)


def finish(fig: go.Figure, title: str | None, height: int, **layout: Any) -> go.Figure:
    """The template, the title (none in an export: its heading says it) and the height."""
    fig.update_layout(template=TEMPLATE, title=title or None, height=height, **layout)
    if not title:
        fig.update_layout(margin=dict(t=30))
    return fig


def empty(title: str | None, message: str, height: int = 260) -> go.Figure:
    """A figure that says what is missing instead of drawing empty axes."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(color=MUTED, size=13))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, title, height)


def num(x: Any) -> float | None:
    """A finite float or None (stored JSON has nulls for undefined values)."""
    if isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def esc(name: Any) -> str:
    """A stored name as plotly label text (see the module docstring)."""
    return html.escape(str(name), quote=False)


def names(values: Iterable[Any]) -> list[str]:
    return [esc(v) for v in values]


def bounds(value: float | None, low: Any, high: Any) -> tuple[float | None, float | None]:
    """An interval's ends, each falling back to the value itself when not stored."""
    lo, hi = num(low), num(high)
    return (value if lo is None else lo), (value if hi is None else hi)


def whiskers(
    values: list[float | None], lows: list[float | None], highs: list[float | None]
) -> dict[str, Any]:
    """Plotly error-bar arrays (distance above, distance below) for stored interval ends."""
    plus = [None if v is None or h is None else h - v for v, h in zip(values, highs, strict=True)]
    minus = [
        None if v is None or lo is None else v - lo for v, lo in zip(values, lows, strict=True)
    ]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}


def interval_dots(
    labels: list[str],
    values: list[float | None],
    ci: tuple[list[float | None], list[float | None]],
    colors: list[str],
    hovers: list[str],
) -> go.Scatter:
    """A dot per row on its stored interval, drawn as a thick light bar (the exports' style)."""
    return go.Scatter(
        x=values,
        y=labels,
        mode="markers",
        marker={"color": colors, "size": 8},
        error_x=whiskers(values, *ci) | {"color": LIGHT, "thickness": 4, "width": 0},
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )
