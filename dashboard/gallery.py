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
from dashboard.images import data_root, has_explanations, heat_panels, image_file, row_regions
from dashboard.markdown import md_escape as md
from dashboard.page import PageContext
from reports.present import fmt
from reports.present.charts.base import num as _f
from reports.present.palette import ACCENT

OVERLAY_ASPECT = 2.8  # width / height of explain/'s three-panel overlay PNGs


def region_lines(regions: pd.DataFrame | None) -> list[str]:
    """The region scores of one explained image (explain/regions.parquet), in plain words:
    "Region box (1% of the image): 0% of the heat for carrera (its peak outside), 2% of the
    heat for targa (its peak outside)."

    roi_energy is the share of heat-map energy inside the box that decides the class; roi_peak
    says whether the heat-map's maximum lies inside it (the pointing game).
    """
    if regions is None or regions.empty:
        return []
    parts = []
    method = None
    area = None
    for rec in regions.head(2).to_dict("records"):
        method = method or rec["method"]
        area = area if area is not None else _f(rec.get("roi_area"))
        share = _f(rec["roi_energy"])
        if share is None:
            continue
        hit = rec["roi_peak"]
        peak = (
            ""
            if hit is None or hit is pd.NA or (isinstance(hit, float) and math.isnan(hit))
            else (" (its peak inside)" if bool(hit) else " (its peak outside)")
        )
        parts.append(f"{fmt.pct_whole(share)} of the heat for {esc(rec['class'])}{peak}")
    if not parts:
        return [f"{esc(method or 'heatmap')}: no region box for this image"]
    where = f"Region box ({fmt.pct_whole(area)} of the image)" if area is not None else "Region box"
    return [f"{where}: " + ", ".join(parts) + "."]


def _box(rec: dict[str, Any]) -> tuple[float, float, float, float] | None:
    values = [_f(rec.get(f"roi_{k}")) for k in ("x0", "y0", "x1", "y1")]
    return None if any(v is None for v in values) else tuple(values)  # type: ignore[return-value]


@st.dialog("Heat-maps, enlarged", width="large")
def enlarge(rec: dict[str, Any], root: Any, explain: ExplainFolder | None) -> None:
    """The image and its stored heat-maps side by side, large, with an opacity slider."""
    row = int(rec["row"])
    alpha = st.slider(
        "Heat-map opacity",
        0.0,
        1.0,
        0.5,
        0.05,
        key="heat_alpha",
        help="0 shows the image alone, 1 the heat-map alone.",
    )
    panels = heat_panels(explain, row, image_file(root, rec["path"]), alpha, _box(rec))
    if not panels:
        st.info("This image has no stored heat-map.")
        return
    for col, (pixels, caption) in zip(st.columns(len(panels)), panels, strict=True):
        col.image(pixels, caption=md(caption), width="stretch")
    st.caption(
        f"true {md(rec['label'])} · predicted {md(rec['pred'])} · {md(rec['path'])}. Warm "
        "colours weigh most; the white box is the region that tells the classes apart."
    )


def card(
    ctx: PageContext,
    rec: dict[str, Any],
    root: Any,
    explain: ExplainFolder | None,
    flagged: dict[int, SuspectRow],
    leaked: set[int],
    patterns: dict[int, str] | None = None,
) -> None:
    """One prediction (a predictions row): the image or its overlay, true/predicted chips,
    numbers, flags."""
    row = int(rec["row"])
    overlay = explain.overlay(row) if explain is not None else None
    regions = row_regions(explain, row)
    with st.container(border=True):
        if overlay is not None:
            st.image(str(overlay), width="stretch")
            if st.button(
                "Enlarge", key=f"enlarge_{ctx.info.run_id}_{row}", icon=":material/zoom_in:"
            ):
                enlarge(rec, root, explain)
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
        if patterns and row in patterns:  # a systematic error, not a suspect label
            html.append(
                '<div class="ma-muted" style="margin-top:.3rem">part of failure pattern: '
                f"{esc(patterns[row])}</div>"
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


def pattern_badges(report: Any) -> dict[int, str]:
    """Predictions row -> its failure pattern in words ("targa→carrera, colour = red"), read
    from integrity.json; empty for runs audited before failure patterns existed."""
    block = getattr(report, "failure_patterns", None) if report is not None else None
    out: dict[int, str] = {}
    for p in getattr(block, "patterns", None) or []:
        what = f"{p.label}→{p.predicted}" if p.predicted else p.label
        if p.slice:
            what += f", {p.slice}"
        elif p.slices:
            sign = "" if p.slices[0].direction == "over" else "not "
            what += f", {sign}{p.slices[0].label}"
        for r in p.rows:
            out.setdefault(int(r), what)
    return out


def gallery(ctx: PageContext, rows: pd.DataFrame, key: str, per_page: int = 12) -> None:
    """Paginated cards for ``rows`` (already filtered and ordered)."""
    explain = ctx.run.explain
    integrity = stored.integrity(ctx.run)
    flagged = stored.suspects(integrity)
    leaked = stored.leaked_rows(integrity)
    in_patterns = pattern_badges(integrity)
    root = data_root(ctx.audit.dataset)
    start, end = paginate(len(rows), per_page, key=f"{key}_page")
    if not len(rows):
        return
    explained = has_explanations(explain)
    # Two cards a row with overlays: three made each heat-map panel ~90 px wide, unreadable.
    cols_per_row = 2 if explain is not None and explain.overlays else 4
    page = rows.iloc[start:end].to_dict("records")
    for i in range(0, len(page), cols_per_row):
        cols = st.columns(cols_per_row)
        for col, rec in zip(cols, page[i : i + cols_per_row], strict=False):
            with col:
                card(ctx, rec, root, explain, flagged, leaked, in_patterns)
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
