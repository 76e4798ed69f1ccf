"""Failures: the wrong predictions, ranked and filtered, with heatmaps and suspect-label flags."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import stored
from dashboard.charts import chart
from dashboard.components import guard, suspect_table
from dashboard.gallery import gallery
from dashboard.images import overlays as overlay_files
from dashboard.page import PageContext, run_page
from dashboard.slicing import ALL, slice_options
from reports.present import charts, fmt

RANKINGS = {
    "Highest loss": ("loss", False),
    "Most confident mistakes": ("confidence", False),
    "Least confident": ("confidence", True),
}


def failures_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Labelled rows the model got wrong (label known, prediction different)."""
    labelled = table["label_idx"].to_numpy() >= 0
    wrong = table["pred_idx"].to_numpy() != table["label_idx"].to_numpy()
    return table[labelled & wrong]


def headline(table: pd.DataFrame, fails: pd.DataFrame, flagged: dict, n_flagged: int) -> str:
    """'**91** of **1,200** labelled images are misclassified; **4** are candidates for label review …'."""
    n_labelled = int((table["label_idx"] >= 0).sum())
    line = f"**{fmt.count(len(fails))}** of **{fmt.count(n_labelled)}** labelled images are misclassified"
    if not flagged:
        return line + "."
    line += (
        f"; **{fmt.count(n_flagged)}** are candidates for label review (the model contradicts "
        "their label outside any failure pattern)"
    )
    listed = (
        f" (the {fmt.count(len(flagged))} likeliest are listed)."
        if n_flagged > len(flagged)
        else "."
    )
    return line + listed


def controls(ctx: PageContext, flagged: dict, overlays: dict) -> dict[str, Any]:
    """The ranking and filters picked above the gallery."""
    c1, c2, c3 = st.columns([1.2, 1.5, 1.5])
    out: dict[str, Any] = {
        "ranking": c1.selectbox("Rank by", list(RANKINGS), key="fail_rank"),
        "true": c2.multiselect("True class", ctx.classes, key="fail_true", placeholder="any"),
        "pred": c3.multiselect("Predicted class", ctx.classes, key="fail_pred", placeholder="any"),
    }
    c4, c5, c6 = st.columns([1.2, 1.5, 1.5])
    options, out["slices"] = slice_options(ctx.path)
    out["slice"] = c4.selectbox(
        "Slice",
        options,
        key="fail_slice",
        help="A metadata value of the held-out set (source, tags, month…).",
    )
    out["conf"] = c5.slider(
        "Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="fail_conf", format="%.2f"
    )
    out["suspect"] = c6.toggle(
        "Only suspect labels",
        key="fail_suspect",
        disabled=not flagged,
        help="Candidates for label review: images whose label the model confidently "
        "contradicts (confident learning), outside the failure patterns on the Integrity page."
        if flagged
        else "No suspect-label results in this run.",
    )
    out["heat"] = c6.toggle(
        "Only images with heatmaps",
        key="fail_heat",
        disabled=not overlays,
        help="Grad-CAM was run on a sample of the failures (python -m audits explain --all for every one)."
        if overlays
        else "No heatmaps in this run.",
    )
    return out


def _shared_mask(rows: pd.DataFrame, f: dict[str, Any]) -> np.ndarray:
    """The filters that apply to any labelled image: classes, slice, confidence range."""
    mask = np.ones(len(rows), bool)
    if f["true"]:
        mask &= rows["label"].isin(f["true"]).to_numpy()
    if f["pred"]:
        mask &= rows["pred"].isin(f["pred"]).to_numpy()
    if f["slice"] != ALL:
        col, _, value = f["slice"].partition(" = ")
        mask &= (f["slices"][col].loc[rows.index] == value).to_numpy()
    conf = rows["confidence"].to_numpy()
    mask &= (conf >= f["conf"][0]) & (conf <= f["conf"][1])
    return mask


def correct_confidences(table: pd.DataFrame, fails: pd.DataFrame, f: dict[str, Any]) -> np.ndarray:
    """Confidence of the correctly classified labelled images the page's filters keep (the
    histogram's green group must answer the same filters as the red one)."""
    keep = (table["label_idx"] >= 0).to_numpy()
    keep[table.index.get_indexer(fails.index)] = False  # positions: no hashing of 1M labels
    right = table.loc[keep, ["label", "pred", "confidence"]]  # only what the filters read
    return right["confidence"].to_numpy()[_shared_mask(right, f)]


def pick(fails: pd.DataFrame, f: dict[str, Any], flagged: dict, overlays: dict) -> pd.DataFrame:
    """The failures the filters keep, in the chosen ranking."""
    mask = _shared_mask(fails, f)
    if f["suspect"]:
        mask &= fails["row"].isin(list(flagged)).to_numpy()
    if f["heat"]:
        mask &= fails["row"].isin(list(overlays)).to_numpy()
    column, ascending = RANKINGS[f["ranking"]]
    return fails[mask].sort_values(column, ascending=ascending, kind="stable", na_position="last")


def render(ctx: PageContext) -> None:
    table = ctx.view()
    fails = failures_frame(table)
    integrity = stored.integrity(ctx.run)
    flagged = stored.suspects(integrity)
    st.markdown(headline(table, fails, flagged, stored.n_suspects(integrity, len(flagged))))
    overlays = overlay_files(ctx.run.explain)
    filters = controls(ctx, flagged, overlays)
    picked = pick(fails, filters, flagged, overlays)
    with guard("The confidence chart", ctx.path):
        chart(
            charts.confidence_histogram(
                correct_confidences(table, fails, filters), picked["confidence"].to_numpy()
            ),
            "green is how confident the model was when right, red when wrong (each as a share of its group), "
            "for the images the filters above keep. Red mass on the right means confident mistakes — the "
            "dangerous ones; use the confidence filter to look at them.",
            key="fail_conf_chart",
        )
    st.markdown(f"#### {fmt.count(len(picked))} failure(s) · {filters['ranking'].lower()}")
    with guard("The failure gallery", ctx.path):
        gallery(ctx, picked, key="fail_gallery", per_page=12)
    if flagged:
        with st.expander(
            f"Suspect labels ({fmt.count(len(flagged))} listed)", icon=":material/flag:"
        ):
            suspect_table(list(flagged.values()), height=320)
            st.caption(
                "Candidates for review, ranked by how little probability the model gives the given label. Images in a failure pattern are the model's systematic errors and are not listed here."
            )


if __name__ == "__main__":
    run_page(
        render,
        "Failures",
        "The images the model gets wrong, worst first — with where it looked and which labels look wrong.",
    )
