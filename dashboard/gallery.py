"""A paginated grid of prediction cards: image, Grad-CAM overlays, region scores, flags."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from audits.runs import ExplainFolder
from audits.runs.models_integrity import SuspectRow
from dashboard import data, stored
from dashboard.components import chip, esc, paginate, placeholder
from dashboard.images import data_root, has_explanations, image_file, row_regions
from dashboard.page import PageContext
from reports.present import fmt
from reports.present.charts.base import num as _f
from reports.present.palette import ACCENT

OVERLAY_ASPECT = 2.8  # width / height of explain/'s three-panel overlay PNGs


def region_lines(regions: pd.DataFrame | None) -> list[str]:
    """One line of region scores from explain/regions.parquet: heat on the region box per class.

    roi_energy is the share of heatmap energy inside the box that decides the class; roi_peak
    says whether the heatmap's maximum lies inside it (the pointing game).
    """
    if regions is None or regions.empty:
        return []
    parts = []
    method = None
    for rec in regions.head(2).to_dict("records"):
        method = method or rec["method"]
        share = _f(rec["roi_energy"])
        if share is None:
            continue
        hit = rec["roi_peak"]
        peak = (
            ""
            if hit is None or hit is pd.NA or (isinstance(hit, float) and math.isnan(hit))
            else (" ✓" if bool(hit) else " ✗")
        )
        parts.append(f"{esc(rec['class'])} {fmt.pct(share, 0)}{peak}")
    if not parts:
        return [f"{esc(method or 'heatmap')}: no region box for this image"]
    return [f"heat on the region box ({esc(method or 'heatmap')}): " + " · ".join(parts)]


def card(
    ctx: PageContext,
    rec: dict[str, Any],
    root: Any,
    explain: ExplainFolder | None,
    flagged: dict[int, SuspectRow],
    leaked: set[int],
) -> None:
    """One prediction (a predictions row): the image or its overlay, true/predicted chips,
    numbers, flags."""
    row = int(rec["row"])
    overlay = explain.overlay(row) if explain is not None else None
    regions = row_regions(explain, row)
    with st.container(border=True):
        if overlay is not None:
            st.image(str(overlay), width="stretch")
        else:
            # The integrity stage keeps small copies of the images it names.
            file = image_file(root, rec["path"]) or ctx.run.row_thumb(row)
            # Same shape as the overlay strips (image | predicted | true) so cards line up.
            thumb = data.thumbnail(file, 240, aspect=OVERLAY_ASPECT) if file else None
            if thumb:
                st.image(thumb, width="stretch")
            else:
                placeholder("image file not available")
        label, pred = rec["label"], rec["pred"]
        colors = ctx.colors
        conf, loss = _f(rec["confidence"]), _f(rec["loss"])
        numbers = [
            f"confidence {fmt.pct(conf, 0)}" if conf is not None else None,
            f"loss {fmt.num(loss, 2)}" if loss is not None else None,
            f"row {row}",
        ]
        # One HTML block: separate st.markdown calls would each add a paragraph gap.
        html = [
            f'<div>{chip(label, colors.get(label, ACCENT))} <span class="ma-muted">→</span> {chip(pred, colors.get(pred, ACCENT))}</div>',
            f'<div class="ma-muted" style="margin-top:.3rem">{" · ".join(n for n in numbers if n)}</div>',
        ]
        if row in flagged:
            html.append(
                f'<div style="margin-top:.3rem"><span class="ma-flag">suspect label</span> '
                f'<span class="ma-muted">model suggests {esc(flagged[row].suggested)}</span></div>'
            )
        if row in leaked:
            html.append(
                '<div style="margin-top:.3rem"><span class="ma-flag">also in training data</span></div>'
            )
        html += [
            f'<div class="ma-muted" style="margin-top:.3rem">{line}</div>'
            for line in region_lines(regions)
        ]
        if overlay is None and has_explanations(explain):
            html.append(
                '<div class="ma-muted" style="margin-top:.3rem">no heatmap: not in the explained sample</div>'
            )
        html.append(
            f'<div class="ma-muted" style="margin-top:.3rem;font-size:.75rem;overflow-wrap:anywhere">{esc(rec["path"])}</div>'
        )
        st.markdown("".join(html), unsafe_allow_html=True)


def gallery(ctx: PageContext, rows: pd.DataFrame, key: str, per_page: int = 12) -> None:
    """Paginated cards for ``rows`` (already filtered and ordered)."""
    explain = ctx.run.explain
    integrity = stored.integrity(ctx.run)
    flagged = stored.suspects(integrity)
    leaked = stored.leaked_rows(integrity)
    root = data_root(ctx.audit.dataset)
    start, end = paginate(len(rows), per_page, key=f"{key}_page")
    if not len(rows):
        return
    explained = has_explanations(explain)
    cols_per_row = 3 if explain is not None and explain.overlays else 4
    page = rows.iloc[start:end].to_dict("records")
    for i in range(0, len(page), cols_per_row):
        cols = st.columns(cols_per_row)
        for col, rec in zip(cols, page[i : i + cols_per_row], strict=False):
            with col:
                card(ctx, rec, root, explain, flagged, leaked)
    failed = stored.stage_error(ctx.audit.explain)
    if not explained and failed:
        st.caption(
            f"The heatmaps could not be made during the audit ({failed}); `python -m audits explain {ctx.path}` retries."
        )
    elif not explained:
        st.caption(
            "No Grad-CAM overlays in this run yet: "
            f"`python -m audits explain {ctx.path}` adds them (heatmaps for the predicted and the true class)."
        )
    elif root is None or not root.is_dir():
        st.caption(
            "The data set folder of this run is not on this machine, so only the stored overlays are shown."
        )
