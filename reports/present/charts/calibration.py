"""Confidence charts: the reliability diagram of the stored calibration bins, and the
confidence of right and wrong predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.present import fmt
from reports.present.charts.base import empty, finish, num
from reports.present.palette import ACCENT, BAD, GOOD, INK, LIGHT, MUTED
from reports.present.rows import Row, stored_row

RELIABILITY_TITLE = "Is the model's confidence honest? Accuracy per confidence bin"


def _bins(calibration: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The stored bins that hold images and have an accuracy."""
    bins = (calibration or {}).get("bins") or []
    return [b for b in bins if b.get("count") and num(b.get("accuracy")) is not None]


def _bin_hover(b: Mapping[str, Any]) -> str:
    return (
        f"confidence {fmt.pct(b.get('low'), 0)}–{fmt.pct(b.get('high'), 0)} "
        f"(mean {fmt.pct(b.get('confidence'))})<br>accuracy {fmt.pct(b.get('accuracy'))}<br>"
        f"{fmt.count(b.get('count'))} images"
    )


def reliability(
    calibration: Row | None,
    points: bool = False,
    title: str | None = RELIABILITY_TITLE,
) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Bars per bin with the bin counts in a panel below; ``points`` draws one point per bin at
    its mean confidence instead, sized by its images (the exports' chart).
    """
    calibration = stored_row(calibration)
    bins = _bins(calibration)
    if not bins:
        return empty(title, "No calibration bins stored in this run.")
    if points:
        return _reliability_points(bins, title)
    fig = _reliability_bars(bins)
    ece = num(calibration.get("ece"))
    if ece is not None:
        _add_ece(fig, ece)
    _reliability_axes(fig)
    return finish(fig, title, 430, showlegend=False, bargap=0)


def _reliability_bars(bins: list[Mapping[str, Any]]) -> go.Figure:
    """Accuracy bars against the diagonal above, the bins' image counts below."""
    mid = [(num(b["low"]) + num(b["high"])) / 2 for b in bins]
    width = [num(b["high"]) - num(b["low"]) for b in bins]
    hovers = [_bin_hover(b) for b in bins]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.06
    )
    accuracy = [num(b["accuracy"]) for b in bins]
    marker = dict(color=ACCENT, opacity=0.85, line=dict(color="white", width=1))
    fig.add_trace(_bin_bars(mid, accuracy, width, "accuracy", marker, hovers), row=1, col=1)
    fig.add_trace(_diagonal("perfectly calibrated", MUTED, "dot"), row=1, col=1)
    counts = [int(b["count"]) for b in bins]
    marker = dict(color=LIGHT, line=dict(color="white", width=1))
    fig.add_trace(_bin_bars(mid, counts, width, "images", marker, hovers), row=2, col=1)
    return fig


def _bin_bars(
    mid: list[float],
    y: Sequence[float],
    width: list[float],
    name: str,
    marker: dict[str, Any],
    hovers: list[str],
) -> go.Bar:
    """One bar per bin at its middle, as wide as the bin, with the bin's hover text."""
    return go.Bar(
        x=mid,
        y=y,
        width=width,
        name=name,
        marker=marker,
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )


def _add_ece(fig: go.Figure, ece: float) -> None:
    """The expected calibration error as a note in the accuracy panel's top left."""
    fig.add_annotation(
        text=f"ECE {fmt.pct(ece)}",
        x=0.02,
        y=0.95,
        xref="x",
        yref="y",
        showarrow=False,
        xanchor="left",
        font=dict(color=INK, size=12),
        bgcolor="rgba(255,255,255,0.8)",
    )


def _reliability_axes(fig: go.Figure) -> None:
    """Percent axes: confidence along the bottom, accuracy and image counts up the panels."""
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title="confidence", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title="accuracy", row=1, col=1)
    fig.update_yaxes(title="images", row=2, col=1)


def _diagonal(name: str, color: str, dash: str) -> go.Scatter:
    return go.Scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name=name,
        hoverinfo="skip",
        line=dict(color=color, dash=dash, width=1),
    )


def _reliability_points(bins: list[Mapping[str, Any]], title: str | None) -> go.Figure:
    top = max(int(b["count"]) for b in bins)
    fig = go.Figure(_diagonal("perfect calibration", MUTED, "dash"))
    fig.add_scatter(
        x=[num(b.get("confidence")) for b in bins],
        y=[num(b.get("accuracy")) for b in bins],
        mode="lines+markers",
        name="groups of images",
        line={"color": ACCENT},
        marker={"size": [8 + 24 * int(b["count"]) / top for b in bins], "color": ACCENT},
        customdata=[_bin_hover(b) for b in bins],
        hovertemplate="%{customdata}<extra></extra>",
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="model's stated confidence")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title="actual accuracy")
    return finish(fig, title, 380, legend={"y": 1.1})


#: Above this many values a histogram trace is sent as its 40 bar heights, not the values
#: (a 1M-prediction run would otherwise ship megabytes of JSON to the browser per rerun).
RAW_VALUES_MAX = 50_000
_BIN = 0.025


def _histogram_trace(name: str, values: np.ndarray, color: str) -> go.BaseTraceType:
    """One group's confidence as a share per 2.5-point bin: plotly bins it when the values are
    few, otherwise the same bins are counted here and drawn as bars."""
    hover = f"{name}: %{{y:.1f}}% at %{{x}}<extra></extra>"
    if len(values) <= RAW_VALUES_MAX:
        return go.Histogram(
            x=values,
            name=name,
            marker_color=color,
            opacity=0.65,
            xbins=dict(start=0, end=1, size=_BIN),
            histnorm="percent",
            hovertemplate=hover,
        )
    counts, edges = np.histogram(values, bins=round(1 / _BIN), range=(0.0, 1.0))
    return go.Bar(
        x=(edges[:-1] + _BIN / 2).round(4),
        y=100.0 * counts / max(len(values), 1),
        width=_BIN,
        name=name,
        marker_color=color,
        opacity=0.65,
        hovertemplate=hover,
    )


def confidence_histogram(correct_conf: Sequence[float], wrong_conf: Sequence[float]) -> go.Figure:
    """Confidence of right and wrong predictions, overlaid, each as a share of its group."""
    fig = go.Figure()
    for name, data, color in (("correct", correct_conf, GOOD), ("wrong", wrong_conf, BAD)):
        fig.add_trace(_histogram_trace(name, np.asarray(data, dtype=float), color))
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence")
    fig.update_yaxes(title="% of the group")
    title = "Confidence of correct and wrong predictions"
    return finish(fig, title, 250, barmode="overlay")
