"""Comparison charts from comparison.json's per_class rows: recall of A and B per class, and
the difference B − A with its stored interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from reports.present import fmt
from reports.present.charts.base import empty, esc, finish, interval_dots, names, num
from reports.present.palette import ACCENT, BAD, GOOD, INK, LIGHT, NEUTRAL, WARN, signed_color
from reports.present.rows import Row, stored_rows

#: Ring colour of a class's B dot by its stored status.
STATUS_COLORS = {"regression": BAD, "large drop": BAD, "watch": WARN, "improved": GOOD}


def _change_hover(r: Mapping[str, Any], version_b: str) -> str:
    status = r.get("status") or "no significant change"
    return (
        f"<b>{esc(r['class'])}</b><br>{esc(version_b)}: {fmt.pct(r['recall_b'])} "
        f"({fmt.pts(r.get('diff'))}, {esc(status)})<br>{fmt.count(r.get('support'))} images"
    )


def _joins(labels: list[str], a: list[float], b: list[float]) -> go.Scatter:
    """One line per class from A's recall to B's (None breaks the line between classes)."""
    xs: list[float | None] = []
    ys: list[str | None] = []
    for name, ya, yb in zip(labels, a, b, strict=True):
        xs += [ya, yb, None]
        ys += [name, name, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color=LIGHT, width=3),
        hoverinfo="skip",
        showlegend=False,
    )


def compare_per_class(
    rows: Sequence[Row],
    colors: Mapping[str, str],
    version_a: str,
    version_b: str,
    top: int = 30,
) -> go.Figure:
    """Per-class recall of A (grey) and B (class colour) joined by a line, largest changes first.

    Rows are comparison.json's per_class entries (recall_a, recall_b, diff, status).
    """
    title = f"Per-class accuracy: {esc(version_a)} → {esc(version_b)}, largest changes first"
    data = [
        r
        for r in stored_rows(rows)
        if num(r.get("recall_a")) is not None and num(r.get("recall_b")) is not None
    ]
    if not data:
        return empty(title, "No per-class comparison stored.")
    data = sorted(data, key=lambda r: -abs(num(r.get("diff")) or 0.0))[:top]  # the stored B − A
    labels = names(r["class"] for r in data)
    a, b = [num(r["recall_a"]) for r in data], [num(r["recall_b"]) for r in data]
    status = [str(r.get("status") or "") for r in data]
    fig = go.Figure(_joins(labels, a, b))
    fig.add_trace(
        go.Scatter(
            x=a,
            y=labels,
            mode="markers",
            name=esc(version_a),
            marker=dict(color=NEUTRAL, size=9),
            customdata=[
                f"<b>{n}</b><br>{esc(version_a)}: {fmt.pct(v)}"
                for n, v in zip(labels, a, strict=True)
            ],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=b,
            y=labels,
            mode="markers",
            name=esc(version_b),
            customdata=[_change_hover(r, version_b) for r in data],
            hovertemplate="%{customdata}<extra></extra>",
            marker=dict(
                color=ACCENT,  # the legend names the version: one colour, not the class's
                size=11,
                line=dict(
                    color=[STATUS_COLORS.get(s, INK) for s in status],
                    width=[2.5 if s else 1 for s in status],
                ),
            ),
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%", title="accuracy (recall)", range=[0, 1.02])
    return finish(fig, title, max(280, 120 + 24 * len(labels)))


def compare_diff(rows: Sequence[Row], title: str | None = None) -> go.Figure:
    """The change in recall B − A per class, a dot on its stored interval (ci_low, ci_high)."""
    rows = stored_rows(rows)
    if not rows:
        return empty(title, "No per-class comparison stored.")
    d = [num(r.get("diff")) for r in rows]
    low, high = [num(r.get("ci_low")) for r in rows], [num(r.get("ci_high")) for r in rows]
    hovers = [
        f"<b>{esc(r.get('class'))}</b><br>B − A {fmt.pts(v)} (95% CI {fmt.pts_ci(lo, hi)})"
        for r, v, lo, hi in zip(rows, d, low, high, strict=True)
    ]
    labels = names(r.get("class") for r in rows)
    fig = go.Figure(interval_dots(labels, d, (low, high), [signed_color(v) for v in d], hovers))
    fig.update_xaxes(tickformat="+.0%", title="change in recall, B − A")
    fig.update_yaxes(autorange="reversed", type="category")
    return finish(fig, title, 120 + 22 * min(len(rows), 40), showlegend=False)
