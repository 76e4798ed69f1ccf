"""Embedding map: the run's stored 2-D map of its embeddings; a box or lasso selection filters
the image grid below it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from audits.embedding_map import add_map_to_run, umap_available
from audits.errors import AuditError
from audits.runs.reader import StoredMap
from dashboard import data, stored
from dashboard.charts import help_line
from dashboard.components import guard, paginate, placeholder
from dashboard.embedding_map_view import (
    LEGEND_MAX,
    colour_groups,
    colour_options,
    map_figure,
    selected_rows,
    selection_line,
    trace_rows,
)
from dashboard.images import data_root, image_file
from dashboard.markdown import md_code
from dashboard.markdown import md_escape as md
from dashboard.page import PageContext, run_page
from dashboard.slicing import slice_options

PER_PAGE = 24
COLUMNS = 6
#: Box and lasso only: a click on one point would select it and empty the grid by accident.
_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d"]}


@st.cache_resource(show_spinner=False, max_entries=8)
def _points(path: str, stamp: int, method: str) -> pd.DataFrame:
    return data.run(Path(path)).embedding_maps[method].points


@st.cache_data(show_spinner=False, max_entries=16)
def _figure(
    path: str, stamp: int, method: str, by: str
) -> tuple[dict[str, Any], list[np.ndarray], int]:
    """The figure (as a dict), each trace's rows and the number of groups; built once per run,
    layout and colouring (the stored points are only read, never recomputed).

    A dict, not a ``go.Figure``: Streamlit derives the chart's identity from its spec, and a
    figure rebuilt from the cache's pickle may list its keys in another order, so the chart
    would get a new identity on the rerun a selection causes and lose that selection."""
    ctx_run = data.run(Path(path))
    table = data.table(Path(path))
    points = _points(path, stamp, method)
    _, slices = slice_options(Path(path))
    suspects = set(stored.suspects(stored.integrity(ctx_run)))
    groups = colour_groups(
        table, by, stored.class_names(ctx_run.audit), slices=slices, suspects=suspects
    )
    return map_figure(points, groups).to_dict(), trace_rows(points, groups), len(groups.names)


def compute_button(ctx: PageContext, label: str, method: str, primary: bool = False) -> None:
    """A button that computes a map by ``method`` and stores it in the run, once."""
    if st.button(label, key=f"map_compute_{method}", type="primary" if primary else "secondary"):
        with st.spinner("Laying out the embeddings…"):
            try:
                add_map_to_run(ctx.path, method)
            except AuditError as exc:
                st.error(f"No map: {md(str(exc))}")
                return
        st.rerun()


def no_map(ctx: PageContext) -> None:
    """The run has no map yet: say so and offer to compute it once, into the run."""
    st.info(
        "This run has no embedding map yet (it was audited before maps were made, or with "
        "`--no-map`). Computing it stores it in the run, once: PCA takes seconds; UMAP "
        "separates clusters better but takes minutes on large sets.",
        icon=":material/scatter_plot:",
    )
    compute_button(ctx, "Compute the map for this run (PCA)", "pca", primary=True)
    if umap_available():
        compute_button(ctx, "Compute a UMAP map", "umap")


def grid(ctx: PageContext, rows: pd.DataFrame) -> None:
    """The selected images as thumbnails (stored integrity thumbnails or the data set's files)."""
    start, end = paginate(len(rows), PER_PAGE, key="map_grid_page")
    root = data_root(ctx.audit.dataset)
    page = rows.iloc[start:end].to_dict("records")
    for i in range(0, len(page), COLUMNS):
        for col, rec in zip(st.columns(COLUMNS), page[i : i + COLUMNS], strict=False):
            with col:
                row = int(rec["row"])
                file = image_file(root, rec["path"]) or ctx.run.row_thumb(row)
                thumb = data.thumbnail(file, 160) if file else None
                mark = "" if rec["correct"] else " ✗"
                caption = f"{md(rec['label'])} → {md(rec['pred'])}{mark} · row {row}"
                if thumb:
                    st.image(thumb, caption=caption, width="stretch")
                else:
                    placeholder("image not available")
                    st.caption(caption)


def render(ctx: PageContext) -> None:
    maps = ctx.run.embedding_maps
    if not maps:
        no_map(ctx)
        return
    methods = sorted(maps, key=lambda m: m != "umap")  # UMAP first when stored
    method = (
        st.radio("Layout", methods, horizontal=True, format_func=str.upper, key="map_method")
        if len(methods) > 1
        else methods[0]
    )
    stored_map: StoredMap = maps[method]
    table = ctx.table()
    rec = stored_map.record
    if rec.n != len(table):
        st.error(
            f"The stored map has {rec.n:,} points but the run has {len(table):,} predictions; "
            f"it does not belong to this run ({md_code(stored_map.path)})."
        )
        return
    options, slices = slice_options(ctx.path)
    integrity = stored.integrity(ctx.run)
    choices = colour_options(list(slices), bool(stored.suspects(integrity)))
    by = st.selectbox("Colour by", choices, key="map_colour")
    stamp = data.mtime(ctx.path)
    with guard("The embedding map", ctx.path):
        fig, traces, n_groups = _figure(str(ctx.path), stamp, method, by)
        event = st.plotly_chart(
            fig,
            width="stretch",
            key=f"map_chart_{method}_{by}",
            config=_CONFIG,
            on_select="rerun",
            selection_mode=("box", "lasso"),
        )
        legend = (
            f" The legend is hidden above {LEGEND_MAX} groups: hover a point for its group."
            if n_groups > LEGEND_MAX
            else ""
        )
        help_line(
            "each dot is one held-out image, placed by its embedding "
            f"({rec.method.upper()} of the penultimate layer, {rec.n:,} points): images the "
            "model sees as alike lie close together. Drag a box or lasso (toolbar) to list "
            f"those images below; double-click the map to clear the selection.{legend}"
        )
    if "umap" not in maps and umap_available():
        compute_button(ctx, "Compute a UMAP map too (minutes on large sets)", "umap")
    picked = selected_rows(event, traces)
    if picked is None:
        st.markdown("#### All images · none selected")
        st.caption("Select a region of the map to list only its images.")
        rows = table
    else:
        st.markdown(selection_line(table, picked))
        rows = table[table["row"].isin(picked)]
    with guard("The image grid", ctx.path):
        grid(ctx, rows)


if __name__ == "__main__":
    run_page(
        render,
        "Embedding map",
        "The held-out images laid out by what the model sees: clusters, outliers and mislabelled islands.",
    )
