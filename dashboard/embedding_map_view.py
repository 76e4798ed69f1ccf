"""The embedding map's parts: colour groups, the WebGL scatter, and reading back a selection.

Everything here is a pure function of stored values (the map's points, the predictions table,
the integrity flags), so the page only wires them to widgets and the tests call them directly.
One ``Scattergl`` trace per colour group: the legend (shown up to ``LEGEND_MAX`` groups) and the
hover name come from the trace, so no per-point text is sent; each point carries only its
predictions row as ``customdata`` (an int) for the hover line.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from reports.present.palette import BAD, GOOD, GRID, INK, LIGHT, MUTED, WARN, class_colors

CLASS = "Class"
CORRECT = "Correct vs wrong"
SUSPECT = "Suspect label"
SLICE = "Slice: "  # followed by a metadata column's name
#: More groups than this and the legend is hidden (250 classes make an unreadable legend);
#: the hover still names each point's group.
LEGEND_MAX = 20
#: Coordinates are rounded to this many decimals before they are sent: the map's units are
#: arbitrary and a thousandth of its span is below a pixel, while 50,000 full-precision floats
#: would double the payload.
DECIMALS = 3
UNLABELLED = "(unlabelled)"


@dataclass(frozen=True)
class Groups:
    """Each row's colour group: ``codes[i]`` indexes ``names`` (and ``colors``)."""

    names: list[str]
    colors: list[str]
    codes: np.ndarray


def colour_options(slice_columns: Sequence[str], has_suspects: bool) -> list[str]:
    """The "Colour by" choices: class, correctness, suspect label (when flagged), each slice."""
    options = [CLASS, CORRECT]
    if has_suspects:
        options.append(SUSPECT)
    return options + [f"{SLICE}{c}" for c in slice_columns]


def _categorical(values: pd.Series, order: Sequence[str] | None = None) -> tuple[list, np.ndarray]:
    """(group names, code per row) of a column; ``order`` first, then what else appears."""
    text = values.astype("string").fillna(UNLABELLED).to_numpy(dtype=object)
    seen = list(dict.fromkeys(order or [])) + sorted(set(text) - set(order or []))
    present = [g for g in seen if g in set(text)]
    index = {g: i for i, g in enumerate(present)}
    return present, np.fromiter((index[v] for v in text), dtype=np.int32, count=len(text))


def colour_groups(
    table: pd.DataFrame,
    by: str,
    classes: Sequence[str],
    slices: Mapping[str, pd.Series] | None = None,
    suspects: set[int] | frozenset[int] = frozenset(),
) -> Groups:
    """The colour group of every predictions row for the "Colour by" choice ``by``."""
    if by == CLASS:
        names, codes = _categorical(table["label"], classes)
        palette = class_colors(list(classes))
        return Groups(names, [palette.get(n, MUTED) for n in names], codes)
    if by == CORRECT:
        labelled = table["label_idx"].to_numpy() >= 0
        right = table["correct"].to_numpy(dtype=bool)
        codes = np.where(~labelled, 2, np.where(right, 0, 1)).astype(np.int32)
        return Groups(["correct", "wrong", UNLABELLED], [GOOD, BAD, LIGHT], codes)
    if by == SUSPECT:
        flagged = table["row"].isin(list(suspects)).to_numpy()
        return Groups(["not flagged", "suspect label"], [LIGHT, WARN], flagged.astype(np.int32))
    if by.startswith(SLICE) and slices is not None and by[len(SLICE) :] in slices:
        values = slices[by[len(SLICE) :]].reindex(table.index)
        names, codes = _categorical(values)
        palette = class_colors(names)
        return Groups(names, [palette[n] for n in names], codes)
    raise ValueError(f"unknown colouring {by!r}")


def trace_rows(points: pd.DataFrame, groups: Groups) -> list[np.ndarray]:
    """The predictions rows of each trace (one per group name), in the trace's point order."""
    rows = points["row"].to_numpy(dtype=np.int64)
    return [rows[groups.codes[rows] == g] for g in range(len(groups.names))]


def map_figure(points: pd.DataFrame, groups: Groups, height: int = 560) -> go.Figure:
    """The WebGL scatter: one trace per group, legend up to ``LEGEND_MAX`` groups, box select."""
    xy = points.set_index("row")[["x", "y"]]
    many = len(groups.names) > LEGEND_MAX
    size = 4 if len(points) > 20_000 else 6
    fig = go.Figure()
    for name, color, rows in zip(
        groups.names, groups.colors, trace_rows(points, groups), strict=True
    ):
        if not len(rows):
            continue
        at = xy.loc[rows]
        fig.add_trace(
            go.Scattergl(
                x=np.round(at["x"].to_numpy(dtype=np.float64), DECIMALS),
                y=np.round(at["y"].to_numpy(dtype=np.float64), DECIMALS),
                customdata=rows,
                mode="markers",
                name=html.escape(str(name)),  # plotly renders names as HTML
                marker={"color": color, "size": size, "opacity": 0.75, "line": {"width": 0}},
                hovertemplate="<b>%{fullData.name}</b><br>row %{customdata}<extra></extra>",
                showlegend=not many,
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        dragmode="select",
        hovermode="closest",
        plot_bgcolor="white",
        paper_bgcolor="white",
        font={"color": INK},
        # Below the map: on its right it would sit under the toolbar.
        legend={
            "itemsizing": "constant",
            "orientation": "h",
            "x": 0,
            "y": -0.02,
            "yanchor": "top",
        },
        uirevision="map",  # keep zoom and selection across reruns
    )
    axis = {"showticklabels": False, "zeroline": False, "gridcolor": GRID, "title": None}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis, scaleanchor="x", scaleratio=1)
    return fig


def _selection(event: Any) -> Any:
    """The selection part of Streamlit's chart event (a dict or an attribute object)."""
    if event is None:
        return None
    if isinstance(event, Mapping):
        return event.get("selection")
    return getattr(event, "selection", None)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def selected_rows(event: Any, traces: Sequence[np.ndarray]) -> np.ndarray | None:
    """Predictions rows a box or lasso selection picked, sorted; None when there is no
    selection (an empty array when a box or lasso holds no point).

    Each selected point names its trace (``curve_number``) and its index in that trace
    (``point_index``); ``traces`` are the figure's rows per trace (``trace_rows``). Points that
    name no known trace or index are ignored (a stale event after the colouring changed).
    """
    selection = _selection(event)
    if selection is None:
        return None
    points = _get(selection, "points")
    if not points:
        drawn = _get(selection, "box") or _get(selection, "lasso")
        return np.zeros(0, dtype=np.int64) if drawn else None
    found = []
    for p in points:
        curve, index = _get(p, "curve_number"), _get(p, "point_index")
        if isinstance(curve, int) and isinstance(index, int) and 0 <= curve < len(traces):
            rows = traces[curve]
            if 0 <= index < len(rows):
                found.append(int(rows[index]))
    return np.unique(np.asarray(found, dtype=np.int64))


def rows_in_box(points: pd.DataFrame, x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Rows whose point lies inside the box spanned by ``x`` and ``y`` (two values each)."""
    px, py = points["x"].to_numpy(), points["y"].to_numpy()
    inside = (px >= min(x)) & (px <= max(x)) & (py >= min(y)) & (py <= max(y))
    return np.sort(points["row"].to_numpy(dtype=np.int64)[inside])


def selection_line(table: pd.DataFrame, rows: np.ndarray) -> str:
    """'**312** images selected · **41** wrong' (counts of the selection, Markdown)."""
    picked = table[table["row"].isin(rows)]
    labelled = picked["label_idx"].to_numpy() >= 0
    wrong = int((labelled & ~picked["correct"].to_numpy(dtype=bool)).sum())
    return f"**{len(picked):,}** images selected · **{wrong:,}** wrong"


__all__ = [
    "CLASS",
    "CORRECT",
    "LEGEND_MAX",
    "SLICE",
    "SUSPECT",
    "Groups",
    "colour_groups",
    "colour_options",
    "map_figure",
    "rows_in_box",
    "selected_rows",
    "selection_line",
    "trace_rows",
]
