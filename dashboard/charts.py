"""Plotly figure builders: pure functions from stored numbers to figures (no Streamlit).

One colour per class everywhere (``class_colors`` keyed by the model's class order), a muted
template, titles that say what the chart shows. Nothing here computes a metric: inputs are
the stored blocks of audit.json / drift.json / comparison.json.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

# Tableau-10, slightly desaturated: distinct, calm, colour-blind friendlier than defaults.
BASE_PALETTE = [
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
]  # fmt: skip
INK = "#1F2933"
MUTED = "#8A94A6"
GRID = "#E6E9EF"
ACCENT = "#2F5D8A"
GOOD = "#3C8D6E"
BAD = "#C0504D"
WARN = "#D9932B"
SEQUENTIAL = [
    [0.0, "#F7F9FC"],
    [0.08, "#DCE6F2"],
    [0.35, "#94B3D6"],
    [0.7, "#4A7DB3"],
    [1.0, "#1D3F66"],
]
MAX_LABELLED = 60  # above this many classes an axis shows no tick labels (hover instead)

pio.templates["audit"] = go.layout.Template(
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
TEMPLATE = "audit"


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    """A stable colour per class in model order: the base palette, then golden-angle hues."""
    out = {}
    for i, name in enumerate(classes):
        if i < len(BASE_PALETTE):
            out[name] = BASE_PALETTE[i]
            continue
        hue = (i * 0.381966) % 1.0  # golden angle: neighbours in class order differ strongly
        light = (0.46, 0.58, 0.68)[i % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.42)
        out[name] = f"#{int(r * 255):02X}{int(g * 255):02X}{int(b * 255):02X}"
    return out


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _empty(title: str, message: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(color=MUTED, size=13))
    fig.update_layout(template=TEMPLATE, title=title, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _num(x: Any) -> float | None:
    """A finite float or None (stored JSON has nulls for undefined values)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------- per-class accuracy


def per_class_accuracy(
    rows: Sequence[Mapping[str, Any]],
    colors: Mapping[str, str],
    overall: float | None = None,
    title: str = "Per-class accuracy with 95% Wilson intervals",
) -> go.Figure:
    """Bars of recall (per-class accuracy) with Wilson interval error bars, in the given order.

    Horizontal (readable names, worst on top) up to 60 classes; vertical beyond that.
    """
    rows = [r for r in rows if _num(r.get("recall")) is not None]
    if not rows:
        return _empty(title, "No class has test images.")
    names = [str(r["class"]) for r in rows]
    rec = np.array([_num(r["recall"]) for r in rows])
    low = np.array(
        [
            _num(r.get("ci_low")) if _num(r.get("ci_low")) is not None else v
            for r, v in zip(rows, rec, strict=True)
        ]
    )
    high = np.array(
        [
            _num(r.get("ci_high")) if _num(r.get("ci_high")) is not None else v
            for r, v in zip(rows, rec, strict=True)
        ]
    )
    custom = np.array(
        [
            [_pct(lo), _pct(hi), int(r.get("support") or 0), int(r.get("correct") or 0)]
            for r, lo, hi in zip(rows, low, high, strict=True)
        ],
        dtype=object,
    )
    horizontal = len(rows) <= MAX_LABELLED
    bar = go.Bar(
        x=rec if horizontal else names,
        y=names if horizontal else rec,
        orientation="h" if horizontal else "v",
        marker=dict(color=[colors.get(n, ACCENT) for n in names], line=dict(width=0)),
        customdata=custom,
        hovertemplate=(
            "<b>%{"
            + ("y" if horizontal else "x")
            + "}</b><br>accuracy %{"
            + ("x" if horizontal else "y")
            + ":.1%}<br>95% CI %{customdata[0]} – %{customdata[1]}<br>%{customdata[3]} of %{customdata[2]} correct<extra></extra>"
        ),
    )
    err = dict(
        type="data",
        symmetric=False,
        array=high - rec,
        arrayminus=rec - low,
        color="#5B6577",
        thickness=1.2,
        width=3,
    )
    if horizontal:
        bar.error_x = err
    else:
        bar.error_y = err
    fig = go.Figure(bar)
    value_axis = dict(range=[0, 1.02], tickformat=".0%", title="accuracy (recall)")
    if horizontal:
        fig.update_xaxes(**value_axis)
        fig.update_yaxes(autorange="reversed", title=None, type="category")
        height = max(260, 110 + 22 * len(rows))
    else:
        fig.update_yaxes(**value_axis)
        fig.update_xaxes(showticklabels=len(rows) <= 120, title="class", type="category")
        height = 460
    if overall is not None:
        line = dict(color=INK, width=1, dash="dot")
        if horizontal:
            fig.add_vline(
                x=overall,
                line=line,
                annotation_text=f"overall {_pct(overall)}",
                annotation_position="top",
            )
        else:
            fig.add_hline(
                y=overall,
                line=line,
                annotation_text=f"overall {_pct(overall)}",
                annotation_position="right",
            )
    fig.update_layout(template=TEMPLATE, title=title, height=height, showlegend=False, bargap=0.25)
    return fig


# ---------------------------------------------------------------- imbalance


def imbalance(
    block: Mapping[str, Any] | None, colors: Mapping[str, str], limit: int | None = None
) -> go.Figure:
    """Test (and training) images per class, largest first; training below when stored."""
    title = "Images per class in the held-out (test) set" + (
        " and the training set" if block and block.get("train_counts") else ""
    )
    test = (block or {}).get("test_counts") or {}
    if not test:
        return _empty(title, "No class counts stored in this run.")
    train = (block or {}).get("train_counts") or None
    order = sorted(test, key=lambda c: (-int(test[c] or 0), c))
    if limit:
        order = order[:limit]
    labelled = len(order) <= MAX_LABELLED * 2
    rows = 2 if train else 1
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.14,
        subplot_titles=["held-out (test) images"] + (["training images"] if train else []),
    )  # fmt: skip
    bar_colors = [colors.get(c, ACCENT) for c in order]
    fig.add_trace(
        go.Bar(x=order, y=[test[c] for c in order], marker_color=bar_colors, name="test",
               hovertemplate="<b>%{x}</b><br>%{y:,} test images<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
    min_support = (block or {}).get("min_support")
    if min_support:
        fig.add_hline(y=min_support, line=dict(color=BAD, width=1, dash="dot"), row=1, col=1,
                      annotation_text=f"minimum to judge a class ({min_support})", annotation_position="top left",
                      annotation=dict(bgcolor="rgba(255,255,255,0.85)", font=dict(color=BAD, size=11)))  # fmt: skip
    if train:
        fig.add_trace(
            go.Bar(x=order, y=[train.get(c, 0) for c in order], marker_color=bar_colors, opacity=0.55,
                   name="training", hovertemplate="<b>%{x}</b><br>%{y:,} training images<extra></extra>"),
            row=2, col=1,
        )  # fmt: skip
    fig.update_xaxes(type="category", showticklabels=False)
    fig.update_xaxes(
        showticklabels=labelled, tickangle=-45 if len(order) > 12 else 0, row=rows, col=1
    )
    fig.update_yaxes(title="images", rangemode="tozero")
    fig.update_annotations(font=dict(size=12, color=MUTED))
    gap = 0.15 if len(order) > 12 else 0.45  # a handful of classes should not give slabs
    fig.update_layout(
        template=TEMPLATE, title=title, height=300 + 220 * (rows - 1), showlegend=False, bargap=gap
    )
    return fig


# ---------------------------------------------------------------- confusion


def top_confused(matrix: np.ndarray, k: int) -> list[int]:
    """Indices of up to k classes taken from the largest off-diagonal cells, pairs kept adjacent."""
    cm = np.asarray(matrix, dtype=np.float64)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")
    chosen: list[int] = []
    n = len(cm)
    for f in flat:
        if len(chosen) >= k or off.flat[f] <= 0:
            break
        for c in (int(f // n), int(f % n)):
            if c not in chosen and len(chosen) < k:
                chosen.append(c)
    if len(chosen) < min(k, n):  # few errors: fill with the worst-recall classes
        chosen += [c for c in order_classes(cm, "worst") if c not in chosen][
            : min(k, n) - len(chosen)
        ]
    return chosen


def order_classes(matrix: np.ndarray, how: str) -> list[int]:
    """Class order for the matrix: model | worst (recall asc) | errors (most errors first)."""
    cm = np.asarray(matrix, dtype=np.float64)
    support = cm.sum(axis=1)
    if how == "worst":
        recall = np.divide(np.diag(cm), support, out=np.full(len(cm), np.inf), where=support > 0)
        return [int(i) for i in np.argsort(recall, kind="stable")]
    if how == "errors":
        errors = support - np.diag(cm)
        return [int(i) for i in np.argsort(-errors, kind="stable")]
    if how == "groups":
        return top_confused(cm, len(cm))
    return list(range(len(cm)))


def confusion(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    index: Sequence[int] | None = None,
    normalize: bool = False,
    hide_diagonal: bool = False,
    clickable: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of the confusion matrix (rows true, columns predicted) restricted to ``index``.

    Colour runs on the square root of the value so that rare confusions stay visible next to a
    heavy diagonal; hover shows the exact count and the share of the true class. With
    ``clickable`` an invisible marker sits on each cell so a click selects it (Streamlit's
    plotly selection does not report heatmap cells).
    """
    cm = np.asarray(matrix, dtype=np.float64)
    n_all = len(cm)
    if n_all == 0:
        return _empty(title or "Confusion matrix", "No confusion matrix stored in this run.")
    idx = list(range(n_all)) if index is None else [int(i) for i in index]
    sub = cm[np.ix_(idx, idx)]
    support = cm.sum(axis=1)[idx]
    rate = np.divide(sub, support[:, None], out=np.zeros_like(sub), where=support[:, None] > 0)
    value = rate if normalize else sub
    shown = value.copy()
    if hide_diagonal:
        np.fill_diagonal(shown, np.nan)
    vmax = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    color = np.sqrt(np.clip(shown, 0, None) / vmax)
    names = [str(labels[i]) for i in idx]
    n = len(idx)
    custom = np.dstack([sub, rate * 100]).astype(object)
    hover = "true <b>%{y}</b><br>predicted <b>%{x}</b><br>%{customdata[0]:,.0f} images (%{customdata[1]:.1f}% of the true class)<extra></extra>"
    ticks = [0.0, 0.1, 0.25, 0.5, 1.0]
    heat = go.Heatmap(
        z=color, x=names, y=names, customdata=custom, colorscale=SEQUENTIAL, zmin=0, zmax=1,
        hovertemplate=hover, hoverinfo="skip" if clickable else None, xgap=1 if n <= 80 else 0, ygap=1 if n <= 80 else 0,
        colorbar=dict(
            title=dict(text="share of row" if normalize else "images", side="right"), thickness=12, len=0.8,
            tickvals=[math.sqrt(t) for t in ticks],
            ticktext=[_pct(t * vmax, 0) if normalize else f"{t * vmax:,.0f}" for t in ticks],
        ),
    )  # fmt: skip
    if n <= 20:
        text = np.where(
            value > 0, np.vectorize(lambda v: f"{v:.0%}" if normalize else f"{v:,.0f}")(value), ""
        )
        if hide_diagonal:
            np.fill_diagonal(text, "")
        heat.text = text
        heat.texttemplate = "%{text}"
        heat.textfont = dict(size=11)
    fig = go.Figure(heat)
    if clickable:
        xs, ys = np.meshgrid(np.arange(n), np.arange(n))
        fig.add_trace(
            go.Scatter(
                x=[names[i] for i in xs.ravel()], y=[names[j] for j in ys.ravel()], mode="markers",
                marker=dict(size=max(6, min(28, 600 // max(n, 1))), symbol="square", color="rgba(0,0,0,0)", opacity=0.01),
                customdata=np.stack([sub.ravel(), rate.ravel() * 100], axis=1), hovertemplate=hover,
                showlegend=False, selected=dict(marker=dict(opacity=0.01)), unselected=dict(marker=dict(opacity=0.01)),
            )
        )  # fmt: skip
    labelled = n <= MAX_LABELLED
    # Enough pixels per row that every class name shows (plotly skips labels that would overlap).
    side = min(900, max(380, 160 + (26 if n <= 30 else 16 if labelled else 4) * n))
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
    default_title = (
        f"Confusion matrix{' (share of each true class)' if normalize else ' (image counts)'}"
        f" — {n} of {n_all} classes" + (", diagonal hidden" if hide_diagonal else "")
    )
    fig.update_layout(
        template=TEMPLATE,
        title=title or default_title,
        height=side,
        dragmode=False,
        clickmode="event+select",
    )
    return fig


# ---------------------------------------------------------------- calibration


def reliability(calibration: Mapping[str, Any] | None) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, bin counts below."""
    title = "Is the model's confidence honest? Accuracy per confidence bin"
    bins = [
        b
        for b in (calibration or {}).get("bins") or []
        if b.get("count") and _num(b.get("accuracy")) is not None
    ]
    if not bins:
        return _empty(title, "No calibration bins stored in this run.")
    mid = [(_num(b["low"]) + _num(b["high"])) / 2 for b in bins]
    width = [_num(b["high"]) - _num(b["low"]) for b in bins]
    acc = [_num(b["accuracy"]) for b in bins]
    conf = [_num(b.get("confidence")) for b in bins]
    counts = [int(b["count"]) for b in bins]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.06
    )
    fig.add_trace(
        go.Bar(x=mid, y=acc, width=width, marker=dict(color=ACCENT, opacity=0.85, line=dict(color="white", width=1)),
               name="accuracy", customdata=np.stack([conf, counts], axis=1),
               hovertemplate="confidence %{customdata[0]:.1%} (mean)<br>accuracy %{y:.1%}<br>%{customdata[1]:,} images<extra></extra>"),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color=MUTED, dash="dot", width=1), name="perfectly calibrated", hoverinfo="skip"),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Bar(x=mid, y=counts, width=width, marker=dict(color="#C9D3E0", line=dict(color="white", width=1)),
               name="images", hovertemplate="%{y:,} images<extra></extra>"),
        row=2, col=1,
    )  # fmt: skip
    ece = _num((calibration or {}).get("ece"))
    if ece is not None:
        fig.add_annotation(text=f"ECE {_pct(ece)}", x=0.02, y=0.95, xref="x", yref="y", showarrow=False, xanchor="left",
                           font=dict(color=INK, size=12), bgcolor="rgba(255,255,255,0.8)")  # fmt: skip
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title="confidence", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title="accuracy", row=1, col=1)
    fig.update_yaxes(title="images", row=2, col=1)
    fig.update_layout(template=TEMPLATE, title=title, height=430, showlegend=False, bargap=0)
    return fig


# ---------------------------------------------------------------- failures


def confidence_histogram(correct_conf: Sequence[float], wrong_conf: Sequence[float]) -> go.Figure:
    """Confidence of right and wrong predictions, overlaid."""
    title = "Confidence of correct and wrong predictions"
    fig = go.Figure()
    for name, data, color in (("correct", correct_conf, GOOD), ("wrong", wrong_conf, BAD)):
        fig.add_trace(go.Histogram(x=np.asarray(data, dtype=float), name=name, marker_color=color, opacity=0.65,
                                   xbins=dict(start=0, end=1, size=0.025), histnorm="percent",
                                   hovertemplate=f"{name}: %{{y:.1f}}% at %{{x}}<extra></extra>"))  # fmt: skip
    fig.update_layout(template=TEMPLATE, title=title, barmode="overlay", height=250)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence")
    fig.update_yaxes(title="% of the group")
    return fig


# ---------------------------------------------------------------- drift


def drift_pvalues(properties: Sequence[Mapping[str, Any]], alpha: float = 0.05) -> go.Figure:
    """Per-property drift tests as −log10(p); bars past the line are drifts.

    Uses ``p_adjusted`` (Holm over the properties, the value that decides) when stored.
    """
    title = "Image properties that moved (drift tests)"
    key = (
        "p_adjusted"
        if any(_num(p.get("p_adjusted")) is not None for p in properties)
        else "p_value"
    )
    rows = [p for p in properties if _num(p.get(key)) is not None]
    if not rows:
        return _empty(title, "No property tests stored in this drift run.")
    rows.sort(key=lambda p: _num(p[key]))
    score = [-math.log10(max(_num(p[key]), 1e-300)) for p in rows]
    drift = [bool(p.get("drift")) for p in rows]
    fig = go.Figure(
        go.Bar(
            x=score, y=[str(p.get("name", "?")).replace("_", " ") for p in rows], orientation="h",
            marker_color=[BAD if d else "#A7B4C6" for d in drift],
            customdata=[[f"{_num(p[key]):.2g}", "drifted" if d else "no drift", str(p.get("test") or "")] for p, d in zip(rows, drift, strict=True)],
            hovertemplate="<b>%{y}</b><br>" + ("adjusted " if key == "p_adjusted" else "") + "p = %{customdata[0]}<br>%{customdata[1]} · %{customdata[2]}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_vline(
        x=-math.log10(alpha),
        line=dict(color=INK, dash="dot", width=1),
        annotation_text=f"p = {alpha}",
        annotation_position="top",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    if not any(drift) and max(score) < -math.log10(alpha):
        fig.add_annotation(text="no property shows evidence of drift", x=0.5, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font=dict(color=MUTED, size=13), bgcolor="rgba(255,255,255,0.85)")  # fmt: skip
    label = "−log10(adjusted p)" if key == "p_adjusted" else "−log10(p)"
    fig.update_xaxes(title=f"{label}: longer bar = stronger evidence of drift", rangemode="tozero")
    fig.update_layout(
        template=TEMPLATE, title=title, height=max(240, 110 + 26 * len(rows)), showlegend=False
    )
    return fig


def distribution(reference: Sequence[float], current: Sequence[float], name: str) -> go.Figure:
    """Overlaid histograms of one image property, held-out (reference) against production."""
    fig = go.Figure()
    for label, data, color in (
        ("held-out (reference)", reference, ACCENT),
        ("production (current)", current, WARN),
    ):
        fig.add_trace(go.Histogram(x=np.asarray(data, dtype=float), name=label, marker_color=color, opacity=0.6,
                                   histnorm="percent", nbinsx=40, hovertemplate=f"{label}: %{{y:.1f}}%<extra></extra>"))  # fmt: skip
    fig.update_layout(
        template=TEMPLATE,
        title=f"Distribution of {name}: reference vs current",
        barmode="overlay",
        height=300,
    )
    fig.update_xaxes(title=name)
    fig.update_yaxes(title="% of images")
    return fig


def class_shift(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    colors: Mapping[str, str],
    top: int = 15,
) -> go.Figure:
    """Share of predictions per class, reference vs current, the largest shifts first."""
    title = "Predicted class mix: held-out set vs production (largest shifts)"
    names = sorted(
        set(reference) | set(current),
        key=lambda c: -abs(float(current.get(c, 0)) - float(reference.get(c, 0))),
    )[:top]
    if not names:
        return _empty(title, "No predicted class shares stored in this drift run.")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names,
            x=[reference.get(c, 0) for c in names],
            orientation="h",
            name="held-out",
            marker_color="#A7B4C6",
        )
    )
    fig.add_trace(go.Bar(y=names, x=[current.get(c, 0) for c in names], orientation="h", name="production",
                         marker_color=[colors.get(c, ACCENT) for c in names]))  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%", title="share of predictions")
    fig.update_layout(
        template=TEMPLATE, title=title, barmode="group", height=max(260, 110 + 30 * len(names))
    )
    return fig


# ---------------------------------------------------------------- comparison


STATUS_COLORS = {"regression": BAD, "large drop": BAD, "watch": WARN, "improved": GOOD}


def compare_per_class(
    rows: Sequence[Mapping[str, Any]],
    colors: Mapping[str, str],
    version_a: str,
    version_b: str,
    top: int = 30,
) -> go.Figure:
    """Per-class recall of A (grey) and B (class colour) joined by a line, largest changes first.

    Rows are comparison.json's per_class entries (recall_a, recall_b, diff, status).
    """
    title = f"Per-class accuracy: {version_a} → {version_b}, largest changes first"
    data = [
        r
        for r in rows
        if _num(r.get("recall_a")) is not None and _num(r.get("recall_b")) is not None
    ]
    if not data:
        return _empty(title, "No per-class comparison stored.")
    data.sort(key=lambda r: -abs(_num(r["recall_b"]) - _num(r["recall_a"])))
    data = data[:top]
    names = [str(r["class"]) for r in data]
    a = [_num(r["recall_a"]) for r in data]
    b = [_num(r["recall_b"]) for r in data]
    status = [str(r.get("status") or "") for r in data]
    fig = go.Figure()
    xs: list[float | None] = []
    ys: list[str | None] = []
    for name, ya, yb in zip(names, a, b, strict=True):
        xs += [ya, yb, None]
        ys += [name, name, None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line=dict(color="#C9D3E0", width=3),
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(go.Scatter(x=a, y=names, mode="markers", name=version_a, marker=dict(color="#A7B4C6", size=9),
                             hovertemplate=f"{version_a}: %{{x:.1%}}<extra>%{{y}}</extra>"))  # fmt: skip
    custom = [
        [f"{100 * (yb - ya):+.1f}", s or "no significant change", int(r.get("support") or 0)]
        for r, ya, yb, s in zip(data, a, b, status, strict=True)
    ]
    fig.add_trace(go.Scatter(x=b, y=names, mode="markers", name=version_b, customdata=custom,
                             marker=dict(color=[colors.get(n, ACCENT) for n in names], size=11,
                                         line=dict(color=[STATUS_COLORS.get(s, INK) for s in status], width=[2.5 if s else 1 for s in status])),
                             hovertemplate=f"{version_b}: %{{x:.1%}} (%{{customdata[0]}} points, %{{customdata[1]}})<br>%{{customdata[2]}} images<extra>%{{y}}</extra>"))  # fmt: skip
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(tickformat=".0%", title="accuracy (recall)", range=[0, 1.02])
    fig.update_layout(template=TEMPLATE, title=title, height=max(280, 120 + 24 * len(names)))
    return fig


# ---------------------------------------------------------------- slices


def slices(rows: Sequence[Mapping[str, Any]], overall: float | None = None) -> go.Figure:
    """Accuracy per data slice (metadata value) with intervals; flagged slices in red."""
    title = "Accuracy per slice of the held-out set (95% intervals)"
    data = [r for r in rows if _num(r.get("accuracy")) is not None]
    if not data:
        return _empty(title, "No slice results stored.")
    data.sort(key=lambda r: _num(r["accuracy"]))
    names = [str(r.get("label") or r.get("name") or "?") for r in data]
    acc = np.array([_num(r["accuracy"]) for r in data])
    low = np.array(
        [
            _num(r.get("ci_low")) if _num(r.get("ci_low")) is not None else v
            for r, v in zip(data, acc, strict=True)
        ]
    )
    high = np.array(
        [
            _num(r.get("ci_high")) if _num(r.get("ci_high")) is not None else v
            for r, v in zip(data, acc, strict=True)
        ]
    )
    flagged = [bool(r.get("significantly_lower")) for r in data]
    fig = go.Figure(
        go.Bar(x=acc, y=names, orientation="h", marker_color=[BAD if f else "#94B3D6" for f in flagged],
               error_x=dict(type="data", symmetric=False, array=high - acc, arrayminus=acc - low, color="#5B6577", thickness=1.2, width=3),
               customdata=[[r.get("support", ""), _pct(lo), _pct(hi)] for r, lo, hi in zip(data, low, high, strict=True)],
               hovertemplate="<b>%{y}</b><br>accuracy %{x:.1%} (95% CI %{customdata[1]}–%{customdata[2]})<br>%{customdata[0]} images<extra></extra>")
    )  # fmt: skip
    if overall is not None:
        fig.add_vline(
            x=overall,
            line=dict(color=INK, dash="dot", width=1),
            annotation_text=f"overall {_pct(overall)}",
            annotation_position="top",
        )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%", title="accuracy")
    fig.update_layout(
        template=TEMPLATE, title=title, height=max(240, 110 + 26 * len(names)), showlegend=False
    )
    return fig
