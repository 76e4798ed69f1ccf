"""The confusion matrix as a heatmap, from the stored counts and the stored row shares."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from reports.present import fmt
from reports.present.charts.base import MAX_LABELLED, empty, finish, names
from reports.present.palette import SEQUENTIAL

_HOVER = "true <b>%{y}</b><br>predicted <b>%{x}</b><br>%{customdata}<extra></extra>"
_TICKS = [0.0, 0.1, 0.25, 0.5, 1.0]


def _hovers(counts: np.ndarray, rates: np.ndarray) -> list[list[str]]:
    return [
        [
            f"{fmt.count(n)} images ({fmt.pct(r)} of the true class)"
            for n, r in zip(cr, rr, strict=True)
        ]
        for cr, rr in zip(counts.tolist(), rates.tolist(), strict=True)
    ]


def _cell_texts(value: np.ndarray, share: bool, hide_diagonal: bool) -> list[list[str]]:
    """The numbers printed in the cells of a small matrix (empty for zero)."""
    show = fmt.pct_whole if share else fmt.count
    text = [[show(v) if v > 0 else "" for v in row] for row in value.tolist()]
    if hide_diagonal:
        for i, row in enumerate(text):
            row[i] = ""
    return text


def _click_layer(labels: list[str], hovers: list[list[str]]) -> go.Scatter:
    """An invisible marker on each cell: Streamlit's plotly selection reports points, not cells."""
    n = len(labels)
    return go.Scatter(
        x=[labels[j] for _ in range(n) for j in range(n)],
        y=[labels[i] for i in range(n) for _ in range(n)],
        mode="markers",
        marker=dict(
            size=max(6, min(28, 600 // max(n, 1))),
            symbol="square",
            color="rgba(0,0,0,0)",
            opacity=0.01,
        ),
        customdata=[h for row in hovers for h in row],
        hovertemplate=_HOVER,
        showlegend=False,
        selected=dict(marker=dict(opacity=0.01)),
        unselected=dict(marker=dict(opacity=0.01)),
    )


def confusion(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float]] | np.ndarray,
    normalized: Sequence[Sequence[float]] | np.ndarray,
    index: Sequence[int] | None = None,
    share: bool = False,
    hide_diagonal: bool = False,
    clickable: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of the stored confusion matrix (rows true, columns predicted), cut to ``index``.

    ``matrix`` holds the counts and ``normalized`` the stored share of each true class
    (``metrics.confusion.normalized``); ``share`` colours and prints the shares instead of the
    counts. Colour runs on the square root of the value so that rare confusions stay visible
    next to a heavy diagonal; hover shows the count and the share of the true class. With
    ``clickable`` an invisible marker sits on each cell so a click selects it. ``title``: None
    for the default title, "" for none (an export's heading names the chart).
    """
    cm = np.asarray(matrix, dtype=np.float64)
    n_all = len(cm)
    if n_all == 0:
        return empty(title or "Confusion matrix", "No confusion matrix stored in this run.")
    rate_all = np.asarray(normalized, dtype=np.float64)
    if rate_all.shape != cm.shape:
        raise ValueError("the stored normalised confusion matrix does not match the counts")
    idx = list(range(n_all)) if index is None else [int(i) for i in index]
    counts, rates = cm[np.ix_(idx, idx)], np.nan_to_num(rate_all[np.ix_(idx, idx)])
    value = rates if share else counts
    shown = value.copy()
    if hide_diagonal:
        np.fill_diagonal(shown, np.nan)
    axis = names(labels[i] for i in idx)
    n = len(idx)
    hovers = _hovers(counts, rates)
    heat = _heatmap(shown, axis, hovers, share, clickable)
    if n <= 20:
        heat.text = _cell_texts(value, share, hide_diagonal)
        heat.texttemplate = "%{text}"
        heat.textfont = dict(size=11)
    fig = go.Figure(heat)
    if clickable:
        fig.add_trace(_click_layer(axis, hovers))
    _axes(fig, n)
    labelled = n <= MAX_LABELLED
    # Enough pixels per row that every class name shows (plotly skips labels that would overlap).
    side = min(900, max(380, 160 + (26 if n <= 30 else 16 if labelled else 4) * n))
    if title is None:
        title = default_title(n, n_all, share, hide_diagonal)
    return finish(fig, title, side, dragmode=False, clickmode="event+select")


def _heatmap(
    shown: np.ndarray, axis: list[str], hovers: list[list[str]], share: bool, clickable: bool
) -> go.Heatmap:
    """The cells coloured by the square root of their value (NaN: hidden), with a colour bar
    that names values, not roots."""
    vmax = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    gap = 1 if len(axis) <= 80 else 0
    return go.Heatmap(
        z=np.round(np.sqrt(np.clip(shown, 0, None) / vmax), 4),
        x=axis,
        y=axis,
        customdata=hovers,
        colorscale=SEQUENTIAL,
        zmin=0,
        zmax=1,
        hovertemplate=_HOVER,
        hoverinfo="skip" if clickable else None,
        xgap=gap,
        ygap=gap,
        colorbar=dict(
            title=dict(text="share of row" if share else "images", side="right"),
            thickness=12,
            len=0.8,
            tickvals=[math.sqrt(t) for t in _TICKS],
            ticktext=[
                fmt.pct_whole(t * vmax) if share else fmt.count(round(t * vmax)) for t in _TICKS
            ],
        ),
    )


def _axes(fig: go.Figure, n: int) -> None:
    labelled = n <= MAX_LABELLED
    fig.update_xaxes(
        title="predicted class",
        type="category",
        showticklabels=labelled,
        tickangle=-45 if n > 8 else 0,
        showgrid=False,
        side="bottom",
    )
    fig.update_yaxes(
        title="true class",
        type="category",
        showticklabels=labelled,
        autorange="reversed",
        showgrid=False,
    )


def default_title(n: int, n_all: int, share: bool, hide_diagonal: bool) -> str:
    """'Confusion matrix (image counts) — 20 of 250 classes, diagonal hidden'."""
    return (
        f"Confusion matrix{' (share of each true class)' if share else ' (image counts)'}"
        f" — {fmt.count(n)} of {fmt.count(n_all)} classes"
        + (", diagonal hidden" if hide_diagonal else "")
    )
