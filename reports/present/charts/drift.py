"""Drift charts: the stored property tests, one property's two distributions, the class mix."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from reports.present import fmt
from reports.present.charts.base import empty, esc, finish, names, num
from reports.present.palette import ACCENT, BAD, INK, MUTED, NEUTRAL, WARN
from reports.present.rows import Row, stored_rows


def _property_hover(p: Mapping[str, Any], key: str) -> str:
    which = "adjusted " if key == "p_adjusted" else ""
    verdict = "drifted" if p.get("drift") else "no drift"
    return (
        f"<b>{esc(_label(p))}</b><br>{which}{fmt.p_equals(p.get(key))}<br>"
        f"{verdict} · {esc(p.get('test') or '')}"
    )


def _label(p: Mapping[str, Any]) -> str:
    return str(p.get("name", "?")).replace("_", " ")


def drift_pvalues(properties: Sequence[Row], alpha: float = 0.05) -> go.Figure:
    """Per-property drift tests as −log10(p); bars past the line are drifts.

    Uses ``p_adjusted`` (Holm over the properties, the value that decides) when stored.
    """
    title = "Image properties that moved (drift tests)"
    properties = stored_rows(properties)
    adjusted = any(num(p.get("p_adjusted")) is not None for p in properties)
    key = "p_adjusted" if adjusted else "p_value"
    rows = sorted((p for p in properties if num(p.get(key)) is not None), key=lambda p: num(p[key]))
    if not rows:
        return empty(title, "No property tests stored in this drift run.")
    score = [-math.log10(max(num(p[key]), 1e-300)) for p in rows]
    drift = [bool(p.get("drift")) for p in rows]
    fig = go.Figure(
        go.Bar(
            x=score,
            y=names(_label(p) for p in rows),
            orientation="h",
            marker_color=[BAD if d else NEUTRAL for d in drift],
            customdata=[_property_hover(p, key) for p in rows],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    line = -math.log10(alpha)
    fig.add_vline(
        x=line,
        line=dict(color=INK, dash="dot", width=1),
        annotation_text=fmt.p_equals(alpha),
        annotation_position="top",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    if not any(drift) and max(score) < line:
        fig.add_annotation(
            text="no property shows evidence of drift",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
            font=dict(color=MUTED, size=13),
            bgcolor="rgba(255,255,255,0.85)",
        )
    label = "−log10(adjusted p)" if adjusted else "−log10(p)"
    fig.update_xaxes(title=f"{label}: longer bar = stronger evidence of drift", rangemode="tozero")
    return finish(fig, title, max(240, 110 + 26 * len(rows)), showlegend=False)


def distribution(reference: Sequence[float], current: Sequence[float], name: str) -> go.Figure:
    """Overlaid histograms of one image property, held-out (reference) against production."""
    fig = go.Figure()
    for label, data, color in (
        ("held-out (reference)", reference, ACCENT),
        ("production (current)", current, WARN),
    ):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(data, dtype=float),
                name=label,
                marker_color=color,
                opacity=0.6,
                histnorm="percent",
                nbinsx=40,
                hovertemplate=f"{label}: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_xaxes(title=esc(name))
    fig.update_yaxes(title="% of images")
    title = f"Distribution of {esc(name)}: reference vs current"
    return finish(fig, title, 300, barmode="overlay")


def class_shift(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    colors: Mapping[str, str],
    top: int = 15,
) -> go.Figure:
    """Stored share of predictions per class, reference vs current, the largest shifts first."""
    title = "Predicted class mix: held-out set vs production (largest shifts)"
    order = sorted(
        set(reference) | set(current),
        key=lambda c: -abs(float(current.get(c, 0)) - float(reference.get(c, 0))),
    )[:top]
    if not order:
        return empty(title, "No predicted class shares stored in this drift run.")
    fig = go.Figure()
    for side, shares, color in (
        ("held-out", reference, NEUTRAL),
        # One colour per side: the legend names the side, so the bars cannot be class-coloured.
        ("production", current, ACCENT),
    ):
        fig.add_trace(
            go.Bar(
                y=names(order),
                x=[shares.get(c, 0) for c in order],
                orientation="h",
                name=side,
                marker_color=color,
                customdata=[
                    f"<b>{esc(c)}</b><br>{side}: {fmt.pct(shares.get(c, 0))}" for c in order
                ],
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%", title="share of predictions")
    return finish(fig, title, max(260, 110 + 30 * len(order)), barmode="group")
