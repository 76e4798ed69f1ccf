"""Interactive charts for the HTML export: plotly figures as ``<div>``s.

plotly.js is inlined once per file by the HTML renderer (``plotly_js()``), so the report opens
offline. Each figure gets a fixed element id (the chart's id), which keeps the HTML output
deterministic. Class names are HTML-escaped before they reach plotly: plotly renders a small
set of tags inside labels and decodes entities, so escaped names display as the same
characters and are never interpreted; the figure JSON itself is escaped by plotly
(``<`` becomes ``\\u003c``), so a name cannot close the ``<script>`` that holds it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from reports.content import Chart

ACCENT = "#2a6f97"
LIGHT = "#a9c8de"
BAD = "#b03a2e"
WARN = "#c77c0e"
GOOD = "#2e7d4f"
INK = "#1d2b3a"
HEAT = [
    [0.0, "#ffffff"],
    [1e-9, "#fff5f0"],
    [0.25, "#fcbba1"],
    [0.5, "#ef6548"],
    [0.75, "#b30000"],
    [1.0, "#5c0000"],
]

_LAYOUT = {
    "template": "simple_white",
    "font": {
        "family": "DejaVu Sans, Segoe UI, Helvetica, Arial, sans-serif",
        "size": 12,
        "color": INK,
    },
    "margin": {"l": 10, "r": 10, "t": 30, "b": 40},
}
_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


def plotly_js() -> str:
    """The plotly.js bundle, for one inline ``<script>`` per HTML file."""
    return get_plotlyjs()


def esc(names: Sequence[Any]) -> list[str]:
    return [html.escape(str(x), quote=False) for x in names]


def _na(values: Sequence[Any]) -> list[float | None]:
    return [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values
    ]


def recall_ci(data: dict[str, Any]) -> go.Figure:
    names = esc(data["classes"])
    rec = _na(data["recall"])
    lo, hi = _na(data["low"]), _na(data["high"])
    plus = [None if r is None or h is None else h - r for r, h in zip(rec, hi, strict=True)]
    minus = [None if r is None or lo_ is None else r - lo_ for r, lo_ in zip(rec, lo, strict=True)]
    colors = [ACCENT if r is None or r >= 0.8 else WARN if r >= 0.5 else BAD for r in rec]
    fig = go.Figure(
        go.Scatter(
            x=rec, y=names, mode="markers",
            marker={"color": colors, "size": 8},
            error_x={"type": "data", "array": plus, "arrayminus": minus, "color": LIGHT, "thickness": 4, "width": 0},
            customdata=[[s, lo_, h] for s, lo_, h in zip(data["support"], lo, hi, strict=True)],
            hovertemplate="<b>%{y}</b><br>recall %{x:.1%}<br>95% CI %{customdata[1]:.1%} – %{customdata[2]:.1%}"
            "<br>%{customdata[0]} images<extra></extra>",
        )
    )  # fmt: skip
    shown = int(data.get("shown") or len(names))
    height = 120 + 22 * min(len(names), 40)
    fig.update_layout(
        **_LAYOUT,
        height=height,
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "recall, with 95% interval"},
    )
    # Weakest first at the top; with many classes the view opens on the weakest and pans down.
    fig.update_yaxes(
        autorange=None, range=[min(len(names), max(shown, 40)) - 0.5, -0.5], type="category"
    )
    return fig


def imbalance(data: dict[str, Any]) -> go.Figure:
    names = esc(data["classes"])
    test = data["test"]
    total = sum(test) or 1
    fig = go.Figure(
        go.Bar(x=names, y=[t / total for t in test], name="held-out", marker_color=ACCENT, customdata=test,
               hovertemplate="<b>%{x}</b><br>%{customdata} held-out images (%{y:.1%})<extra></extra>")
    )  # fmt: skip
    if data.get("train"):
        train = data["train"]
        ttotal = sum(train) or 1
        fig.add_bar(x=names, y=[t / ttotal for t in train], name="training", marker_color=LIGHT, customdata=train,
                    hovertemplate="<b>%{x}</b><br>%{customdata} training images (%{y:.1%})<extra></extra>")  # fmt: skip
    many = len(names) > 40
    fig.update_layout(**_LAYOUT, height=360, barmode="group", bargap=0.05 if many else 0.2,
                      yaxis={"tickformat": ".1%", "title": "share of images"},
                      xaxis={"showticklabels": not many, "title": f"{len(names)} classes, largest first"},
                      legend={"orientation": "h", "y": 1.08})  # fmt: skip
    return fig


def calibration(data: dict[str, Any]) -> go.Figure:
    bins = [b for b in data["bins"] if (b.get("count") or 0) > 0]
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                               line={"dash": "dash", "color": "#6b7785"}, hoverinfo="skip"))  # fmt: skip
    if bins:
        top = max(b["count"] for b in bins)
        fig.add_scatter(
            x=[b.get("confidence") for b in bins], y=[b.get("accuracy") for b in bins], mode="lines+markers",
            name="groups of images", line={"color": ACCENT},
            marker={"size": [8 + 24 * b["count"] / top for b in bins], "color": ACCENT},
            customdata=[[b["count"], b.get("low"), b.get("high")] for b in bins],
            hovertemplate="confidence %{customdata[1]:.0%}–%{customdata[2]:.0%}: %{customdata[0]} images<br>"
            "mean confidence %{x:.1%}, accuracy %{y:.1%}<extra></extra>",
        )  # fmt: skip
    fig.update_layout(**_LAYOUT, height=380, width=None,
                      xaxis={"range": [0, 1], "tickformat": ".0%", "title": "model's stated confidence"},
                      yaxis={"range": [0, 1], "tickformat": ".0%", "title": "actual accuracy"},
                      legend={"orientation": "h", "y": 1.1})  # fmt: skip
    return fig


def confusion(data: dict[str, Any]) -> go.Figure:
    labels = esc(data["labels"])
    matrix = data["matrix"]
    rate = data.get("normalized") or matrix
    fig = go.Figure(
        go.Heatmap(
            z=rate, x=labels, y=labels, customdata=matrix, colorscale=HEAT, zmin=0, zmax=1,
            colorbar={"title": "share of<br>true class", "tickformat": ".0%"},
            hovertemplate="true <b>%{y}</b><br>predicted <b>%{x}</b><br>%{customdata} images (%{z:.1%} of the class)<extra></extra>",
        )
    )  # fmt: skip
    n = len(labels)
    fig.update_layout(**_LAYOUT, height=min(900, 260 + 6 * n))
    fig.update_xaxes(title="predicted class", showticklabels=n <= 60, type="category")
    fig.update_yaxes(
        title="true class", autorange="reversed", showticklabels=n <= 60, type="category"
    )
    return fig


def compare_diff(data: dict[str, Any]) -> go.Figure:
    names = esc(data["classes"])
    d, lo, hi = _na(data["diff"]), _na(data["low"]), _na(data["high"])
    fig = go.Figure(
        go.Scatter(
            x=d, y=names, mode="markers",
            marker={"color": [BAD if (v or 0) < 0 else GOOD for v in d], "size": 8},
            error_x={"type": "data", "symmetric": False,
                     "array": [None if v is None or h is None else h - v for v, h in zip(d, hi, strict=True)],
                     "arrayminus": [None if v is None or lo_ is None else v - lo_ for v, lo_ in zip(d, lo, strict=True)],
                     "color": LIGHT, "thickness": 4, "width": 0},
            hovertemplate="<b>%{y}</b><br>B − A %{x:+.1%}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        **_LAYOUT,
        height=120 + 22 * min(len(names), 40),
        xaxis={"tickformat": "+.0%", "title": "change in recall, B − A"},
    )
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


BUILDERS: dict[str, Callable[[dict[str, Any]], go.Figure]] = {
    "recall_ci": recall_ci,
    "imbalance": imbalance,
    "calibration": calibration,
    "confusion": confusion,
    "compare_diff": compare_diff,
}


def render(chart: Chart) -> str | None:
    """The chart as a ``<div>`` plus the script that draws it (plotly.js must be loaded first)."""
    fn = BUILDERS.get(chart.kind)
    if fn is None:
        return None
    try:
        fig = fn(chart.data)
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=chart.id, config=_CONFIG)
