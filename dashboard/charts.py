"""Charts on a page: the shared figures (``reports.present.charts``) with the dashboard's
interactivity on top: Streamlit's chart element and its toolbar, the "how to read it" line,
and reading back which confusion cell a click selected.

The figures themselves, their colours and their hover texts are the presentation layer's, so
the dashboard and the HTML export draw the same chart from the same stored values.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def help_line(text: str) -> None:
    """The one-line 'how to read this chart' caption under every chart."""
    st.caption(f"How to read it: {text}")


def chart(fig: go.Figure, help_text: str, key: str | None = None, **kwargs: Any) -> Any:
    """A plotly chart with its help line; returns the selection event when ``on_select`` is set."""
    event = st.plotly_chart(fig, width="stretch", key=key, config=_CONFIG, **kwargs)
    help_line(help_text)
    return event


def clicked_cell(event: Any, labels: Sequence[str]) -> tuple[str, str] | None:
    """(true, predicted) class of the confusion cell a click selected, or None.

    The figures carry HTML-escaped class names (``reports.present.charts``); the click reports
    them as drawn, so they are unescaped before they are matched to the model's classes.
    """
    # Streamlit's selection event: a dict, or an object with attributes, by version.
    selection = (
        event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    )
    if isinstance(selection, dict):
        points = selection.get("points")
    else:
        points = getattr(selection, "points", None)
    if not points:
        return None
    x, y = (html.unescape(str(points[0].get(k))) for k in ("x", "y"))
    return (y, x) if x in labels and y in labels else None
