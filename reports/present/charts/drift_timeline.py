"""Drift over time: one column per stored drift run (``audits.drift.timeline``), oldest batch
first (its ``--batch-date``, else the run's time).

Three stacked panels sharing the x axis: the embedding MMD², the p-values that decide (MMD
permutation test and the prediction shift, on a log scale, with the alpha line) and the
batch accuracy with its Wilson interval where the batch was labelled. Every marker carries
its drift run's id as ``customdata`` so a click can open that run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from audits.drift.timeline import when as batch_time
from reports.present import fmt
from reports.present.charts.base import empty, esc, finish, num, whiskers
from reports.present.palette import ACCENT, BAD, INK, NEUTRAL, WARN

#: The smallest p drawn (a p of 0 or 1e-200 would squash the axis).
P_FLOOR = 1e-6


def point_label(p: Any) -> str:
    """'1.1.0 · fan_batch · 2026-12-01 21:56 · 3f2a1c' (the x tick of one drift run, escaped:
    the batch date, else the run's time; the run id's tail keeps two runs of the same minute
    apart)."""
    when = str(batch_time(p)).replace("T", " ").rstrip("Z")[:16]
    return esc(f"{p.version} · {p.batch} · {when} · {str(p.run_id).rsplit('-', 1)[-1]}")


def _hover(p: Any) -> str:
    moved = ", ".join(p.drifted) or "none"
    acc = (
        f"<br>accuracy {fmt.pct(p.accuracy)} ({fmt.ci(p.accuracy_low, p.accuracy_high)})"
        if num(p.accuracy) is not None
        else ""
    )
    return (
        f"<b>{esc(p.batch)}</b> · {esc(p.version)} · {'drift' if p.drift else 'no drift'}"
        f"<br>MMD² {fmt.num(p.mmd2, 4)}, {fmt.p_equals(p.mmd_p)}"
        f"<br>prediction shift {fmt.p_equals(p.prediction_p)}"
        f"<br>properties drifted: {esc(moved)}{acc}"
    )


def _p(value: Any) -> float | None:
    v = num(value)
    return None if v is None else max(v, P_FLOOR)


def drift_timeline(
    points: Sequence[Any], alpha: float = 0.05, title: str | None = None
) -> go.Figure:
    """The timeline figure of ``TimelinePoint``s (already ordered)."""
    if not points:
        return empty(title, "No drift run of this model against this held-out set.")
    x = [point_label(p) for p in points]
    ids = [p.run_id for p in points]
    hover = [_hover(p) for p in points]
    labelled = any(num(p.accuracy) is not None for p in points)
    rows = 3 if labelled else 2
    titles = ["Embedding MMD²", "p-value (log scale; below the line = drift)"]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=titles + (["Batch accuracy (95% Wilson interval)"] if labelled else []),
    )
    common = dict(customdata=ids, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>")
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[num(p.mmd2) for p in points],
            mode="lines+markers",
            name="MMD²",
            line=dict(color=NEUTRAL),
            marker=dict(size=11, color=[BAD if p.drift else ACCENT for p in points]),
            **common,
        ),
        row=1,
        col=1,
    )
    for name, key, color, symbol in (
        ("embedding (MMD)", "mmd_p", ACCENT, "circle"),
        ("predictions", "prediction_p", WARN, "diamond"),
    ):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[_p(getattr(p, key)) for p in points],
                mode="lines+markers",
                name=name,
                line=dict(color=color),
                marker=dict(size=10, symbol=symbol, color=color),
                **common,
            ),
            row=2,
            col=1,
        )
    fig.add_hline(y=alpha, line=dict(color=INK, dash="dot", width=1), row=2, col=1)
    ticks = [1, 0.1, 0.01, 0.001, 1e-4, 1e-5, P_FLOOR]
    fig.update_yaxes(
        type="log",
        range=[math.log10(P_FLOOR) - 0.3, 0.1],
        tickvals=ticks,
        ticktext=["1", "0.1", "0.01", "0.001", "0.0001", "0.00001", "≤ 0.000001"],
        row=2,
        col=1,
    )
    if labelled:
        acc = [num(p.accuracy) for p in points]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=acc,
                mode="markers",
                name="accuracy",
                marker=dict(size=11, color=INK),
                error_y=whiskers(
                    acc,
                    [num(p.accuracy_low) for p in points],
                    [num(p.accuracy_high) for p in points],
                ),
                **common,
            ),
            row=3,
            col=1,
        )
        fig.update_yaxes(tickformat=".0%", row=3, col=1)
    fig.update_xaxes(type="category")
    legend = dict(orientation="h", yanchor="bottom", y=1.06, xanchor="left", x=0)
    return finish(fig, title, 190 * rows + 100, showlegend=True, legend=legend)
