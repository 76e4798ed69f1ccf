"""Compare: the images only one version gets right, as lists with a detail per image.

Reads the comparison's stored ``changed.parquet`` (``StoredRun.changed``); the counts are
``comparison.json`` ``what_changed``, the same discordant pairs McNemar tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from audits import what_changed as wc
from audits.runs import ComparisonRecord, StoredRun
from audits.store import Run
from dashboard import data
from dashboard.components import chip, empty_state, esc, paginate, placeholder
from dashboard.images import data_root, image_file
from dashboard.markdown import md_escape
from reports.present import fmt
from reports.present.palette import ACCENT

PER_PAGE = 24
COLUMNS = 6
ALL = "All images"
DETAIL_KEY = "wc_detail"


def regenerate_command(c: ComparisonRecord, store: Path) -> str:
    """The command that makes a comparison of the same two runs with the lists stored."""
    return f"python -m audits compare {c.run_a.run_id} {c.run_b.run_id} --store {store}"


def _slice_masks(base: Run | None, changed: pd.DataFrame, rows: str) -> dict[str, Any]:
    """'column = value' -> boolean mask over ``changed`` (metadata of the held-out set)."""
    if base is None:
        return {}
    from dashboard.slicing import slice_options

    try:
        options, labels = slice_options(base.path)
        table = data.view(base.path)
    except Exception:  # a damaged or missing table: no slice filter, the lists still show
        return {}
    # Slice labels are indexed like the predictions table; ``row`` maps a pair to its row.
    position = pd.Series(np.arange(len(table)), index=table["row"].to_numpy())
    at = position.reindex(changed[rows].to_numpy())
    found = at.notna().to_numpy()
    idx = at.fillna(0).to_numpy(dtype=np.int64)
    masks: dict[str, Any] = {}
    for option in options[1:]:
        col, value = option.split(" = ", 1)
        masks[option] = found & (labels[col].to_numpy()[idx] == value)
    return masks


def _filters(changed: pd.DataFrame, base: Run | None, rows: str) -> tuple[list[str], Any]:
    classes = sorted(changed["label"].astype(str).unique())
    left, right = st.columns(2)
    chosen = left.multiselect("True class", classes, key="wc_class", placeholder="every class")
    masks = _slice_masks(base, changed, rows)
    if not masks:
        right.caption("No slice filter: the held-out set's metadata is not readable here.")
        return chosen, None
    pick = right.selectbox("Slice", [ALL, *masks], key="wc_slice")
    return chosen, None if pick == ALL else masks[pick]


def _thumb(run: Run | None, rec: dict[str, Any], row: str = "row_a") -> bytes | None:
    """A small picture of the image: the file in the held-out set, else a stored thumbnail."""
    if run is None:
        return None
    file = image_file(data_root(run.audit.dataset), rec["path"]) or run.row_thumb(rec[row])
    return data.thumbnail(file, 160) if file else None


def _open(rec: dict[str, Any]) -> None:
    st.session_state[DETAIL_KEY] = rec


def _grid(rows: pd.DataFrame, runs: tuple[Run | None, Run | None], side: str) -> None:
    start, end = paginate(len(rows), PER_PAGE, key=f"wc_page_{side}")
    page = rows.iloc[start:end].to_dict("records")
    for i in range(0, len(page), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, rec in zip(cols, page[i : i + COLUMNS], strict=False):
            with col.container(border=True):
                img = _thumb(runs[0], rec) or _thumb(runs[1], rec, "row_b")
                if img:
                    st.image(img, width="stretch")
                else:
                    placeholder("image not available")
                st.markdown(
                    f'<div class="ma-muted" style="font-size:.75rem;overflow-wrap:anywhere">'
                    f"{esc(rec['label'])} · A {esc(rec['pred_a'])} · B {esc(rec['pred_b'])}</div>",
                    unsafe_allow_html=True,
                )
                # A callback: the detail above the grid shows in the same rerun as the click.
                st.button(
                    "Open",
                    key=f"wc_open_{side}_{int(rec['row_a'])}",
                    width="stretch",
                    on_click=_open,
                    args=({k: rec[k] for k in wc.COLUMNS if k in rec},),
                )


def _version_panel(name: str, run: Run | None, row: int, pred: str, right: bool) -> None:
    """One version's answer for the image: prediction, confidence, top-5 and its heatmap."""
    st.markdown(f"**{md_escape(name)}** {'right' if right else 'wrong'}")
    if run is None:
        st.caption(f"The audit of {md_escape(name)} is no longer in the store.")
        return
    table = data.row(run.path, row)  # one row, not the whole table
    conf = wc.confidence(table, row)
    st.markdown(
        f"predicted {chip(pred, ACCENT)}"
        + (f' <span class="ma-muted">{fmt.pct(conf, 1)}</span>' if conf is not None else ""),
        unsafe_allow_html=True,
    )
    top = wc.top_k(table, row, list(run.audit.model.classes or []))
    if top:
        st.dataframe(
            pd.DataFrame(
                {"class": [c for c, _ in top], "probability": [fmt.pct(p, 1) for _, p in top]}
            ),
            hide_index=True,
            width="stretch",
        )
    overlay = run.explain.overlay(row) if run.explain is not None else None
    if overlay is not None:
        st.image(str(overlay), width="stretch")
    else:
        st.caption(f"No heatmap stored for this image in {md_escape(name)}.")


def detail(
    rec: dict[str, Any], names: tuple[str, str], runs: tuple[Run | None, Run | None]
) -> None:
    """Both versions' predictions for one changed image, side by side."""
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.markdown(
            f"##### {esc(rec['path'])}<br/><span class='ma-muted'>true class "
            f"{esc(rec['label'])}</span>",
            unsafe_allow_html=True,
        )
        close.button(
            "Close", key="wc_close", on_click=st.session_state.pop, args=(DETAIL_KEY, None)
        )
        img = _thumb(runs[0], rec) or _thumb(runs[1], rec, "row_b")
        cols = st.columns([1, 2, 2])
        if img:
            cols[0].image(img, width="stretch")
        side_a = rec["side"] == wc.ONLY_A
        for col, name, run, row, pred, right in (
            (cols[1], names[0], runs[0], int(rec["row_a"]), str(rec["pred_a"]), side_a),
            (cols[2], names[1], runs[1], int(rec["row_b"]), str(rec["pred_b"]), not side_a),
        ):
            with col:
                _version_panel(name, run, row, pred, right)


def render(
    comparison: StoredRun,
    c: ComparisonRecord,
    runs: tuple[Run | None, Run | None],
    names: tuple[str, str],
    store: Path,
) -> None:
    """The two lists "only A right (n)" / "only B right (n)", filters, grid and detail."""
    st.markdown("#### What changed, image by image")
    changed = comparison.changed
    if changed is None:
        empty_state(
            "This comparison was made before the changed images were stored",
            regenerate_command(c, store),
            "Comparing the two runs again stores the images only one version gets right "
            f"(today only the counts: {fmt.count(c.overall.mcnemar.b)} vs {fmt.count(c.overall.mcnemar.c)}).",
        )
        return
    counts = wc.summary(changed)
    labels = {
        wc.ONLY_A: f"Only {names[0]} right ({fmt.count(counts['only_a_right'])})",
        wc.ONLY_B: f"Only {names[1]} right ({fmt.count(counts['only_b_right'])})",
    }
    side = (
        st.segmented_control(
            "List", list(labels), format_func=labels.get, default=wc.ONLY_B, key="wc_side"
        )
        or wc.ONLY_B
    )
    classes, mask = _filters(changed, runs[0] or runs[1], "row_a" if runs[0] else "row_b")
    shown = wc.select(changed, side, classes, mask)
    chosen = st.session_state.get(DETAIL_KEY)
    if isinstance(chosen, dict):
        detail(chosen, names, runs)
    _grid(shown, runs, side)
    st.caption(
        f"Comparison {md_escape(comparison.run_id)}: the images one version gets right and the "
        "other wrong, the pairs McNemar's test counts."
    )
