"""Interactive charts for the HTML export: the shared plotly figures as ``<div>``s.

The figures are the presentation layer's (``reports.present.charts``), the dashboard's own
builders; this module only turns a ``Chart`` block's data into their inputs. plotly.js is
inlined once per file by the HTML renderer (``plotly_js()``), so the report opens offline. Each
figure gets a fixed element id (the chart's id), which keeps the HTML output deterministic.
The builders HTML-escape class names; the figure JSON itself is escaped by plotly (``<``
becomes ``\\u003c``), so a name cannot close the ``<script>`` that holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from reports.present import charts
from reports.tree import Chart

_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


def plotly_js() -> str:
    """The plotly.js bundle, for one inline ``<script>`` per HTML file."""
    return get_plotlyjs()


def _rows(data: dict[str, Any], **columns: str) -> list[dict[str, Any]]:
    """Per-class rows from the chart's parallel lists: _rows(data, recall="recall", ...)."""
    lists = {key: data[source] for key, source in columns.items()}
    return [
        {"class": str(name), **{key: values[i] for key, values in lists.items()}}
        for i, name in enumerate(data["classes"])
    ]


def recall_ci(data: dict[str, Any]) -> go.Figure:
    rows = _rows(data, recall="recall", ci_low="low", ci_high="high", support="support")
    return charts.per_class_recall(rows, title="", dots=True, window=data.get("shown"))


def imbalance(data: dict[str, Any]) -> go.Figure:
    classes = [str(c) for c in data["classes"]]
    block = {
        "test_counts": dict(zip(classes, data["test"], strict=True)),
        "train_counts": dict(zip(classes, data["train"], strict=True))
        if data.get("train")
        else None,
        "min_support": data.get("min_support"),
    }
    return charts.imbalance(block, shares=True, title="")


def calibration(data: dict[str, Any]) -> go.Figure:
    return charts.reliability({"bins": data["bins"], "ece": data.get("ece")}, points=True, title="")


def confusion(data: dict[str, Any]) -> go.Figure:
    return charts.confusion(
        data["labels"], data["matrix"], data["normalized"], share=True, title=""
    )


def compare_diff(data: dict[str, Any]) -> go.Figure:
    rows = _rows(data, diff="diff", ci_low="low", ci_high="high")
    return charts.compare_diff(rows, title="")


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
