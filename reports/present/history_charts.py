"""The history of a model family as figures: the headline metric over versions with its stored
interval as a band, and per-class recall as a classes × versions heatmap.

Stored values only (``audits.history``); names are HTML-escaped as in every builder
(``reports.present.charts.base``). Above ``WEBGL_POINTS`` versions the line is drawn with
WebGL (``Scattergl``), which keeps hundreds of versions smooth to pan and hover.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from audits.history import History, recall_matrix
from reports.present import fmt
from reports.present.charts.base import MAX_LABELLED, empty, esc, finish
from reports.present.palette import ACCENT, ACCENT_SOFT, BAD_TEXT, GOOD_TEXT, WARN_BG

WEBGL_POINTS = 200
#: Low recall red, middling pale, high green.
RECALL_SCALE = [[0.0, BAD_TEXT], [0.5, WARN_BG], [1.0, GOOD_TEXT]]
ClassOrder = Literal["variance", "worst", "name"]


def row_labels(history: History) -> list[str]:
    """One x label per row: the version, with its set when the history spans several."""
    several = len({r.set_label for r in history.rows}) > 1
    return [f"{r.version} ({r.set_label})" if several else r.version for r in history.rows]


def metric_over_versions(history: History, title: str | None = None) -> go.Figure:
    """The headline metric per row with its stored 95% interval as a band (when stored)."""
    rows = history.rows
    if not rows:
        return empty(title, "No audited versions")
    x = [esc(v) for v in row_labels(history)]
    y = [r.value for r in rows]
    scatter = go.Scattergl if len(rows) > WEBGL_POINTS else go.Scatter
    fig = go.Figure()
    if any(r.ci_low is not None for r in rows):
        # The band is two SVG paths whatever the number of versions: a Scattergl fill between
        # two traces did not draw in Chromium here. Only the line goes to WebGL.
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r.ci_high for r in rows],
                mode="lines",
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
            )  # fmt: skip
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r.ci_low for r in rows],
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor="rgba(148,179,214,0.45)",
                hoverinfo="skip",
                name="95% interval (stored)",
            )  # fmt: skip
        )
    hover = [
        f"{esc(r.version)} · set {esc(r.set_label)} · {esc(r.created[:10])}<br>"
        f"{esc(history.metric)} {_value(r.value, history.metric)}"
        + (f" (95% CI {fmt.pct(r.ci_low)}–{fmt.pct(r.ci_high)})" if r.ci_low is not None else "")
        + f"<br>{fmt.count(r.n_images)} images"
        for r in rows
    ]
    fig.add_trace(
        scatter(
            x=x,
            y=y,
            mode="lines+markers" if len(rows) <= WEBGL_POINTS else "lines",
            line=dict(color=ACCENT, width=2),
            marker=dict(size=6, color=ACCENT),
            name=history.metric.replace("_", " "),
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_xaxes(type="category", title=None, showticklabels=len(rows) <= MAX_LABELLED * 2)
    fig.update_yaxes(title=history.metric.replace("_", " "),
                     tickformat=".0%" if history.metric != "ece" else ".2f")  # fmt: skip
    return finish(fig, title, 340, hovermode="closest")


def _value(v: float | None, metric: str) -> str:
    if v is None:
        return "n/a"
    return fmt.num(v, 3) if metric == "ece" else fmt.pct(v)


def pick_classes(
    classes: Sequence[str], matrix: Sequence[Sequence[float | None]], by: ClassOrder, limit: int
) -> tuple[list[str], np.ndarray]:
    """The ``limit`` classes to show first: most variable across versions, worst lowest recall,
    or by name; returns them with their recall rows (NaN where a version has no such class)."""
    z = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    if not len(classes):
        return [], z
    # An all-NaN row (a class no version has) warns; nan_to_num handles it.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if by == "variance":
            key = -np.nan_to_num(np.nanvar(z, axis=1), nan=-1.0)
        elif by == "worst":
            key = np.nan_to_num(np.nanmin(z, axis=1), nan=2.0)
        else:
            key = np.zeros(len(classes))
    idx = np.lexsort((np.asarray(classes, dtype=object).astype(str), key))[:limit]
    return [classes[i] for i in idx], z[idx]


def recall_heatmap(
    history: History, by: ClassOrder = "variance", limit: int = 40, title: str | None = None
) -> go.Figure:
    """Per-class recall, classes (rows, ``limit`` of them, ordered ``by``) × versions."""
    classes, matrix = recall_matrix(history)
    if not classes or not history.rows:
        return empty(title, "No per-class recall stored")
    shown, z = pick_classes(classes, matrix, by, limit)
    x = [esc(v) for v in row_labels(history)]
    y = [esc(c) for c in shown]
    text = np.where(
        np.isnan(z), "not in this version", np.char.mod("%.1f%%", np.nan_to_num(z) * 100)
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            zmin=0,
            zmax=1,
            colorscale=RECALL_SCALE,
            colorbar=dict(title="recall", tickformat=".0%", thickness=12),
            customdata=text,
            hovertemplate="%{y} · %{x}<br>recall %{customdata}<extra></extra>",
            hoverongaps=False,
            xgap=0 if len(x) > 100 else 1,
            ygap=0 if len(y) > 100 else 1,
        )
    )
    fig.update_xaxes(type="category", showticklabels=len(x) <= MAX_LABELLED * 2)
    fig.update_yaxes(type="category", autorange="reversed", showticklabels=len(y) <= MAX_LABELLED,
                     gridcolor=ACCENT_SOFT)  # fmt: skip
    return finish(fig, title, max(260, min(1400, 22 * len(y) + 90)))
