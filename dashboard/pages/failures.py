"""Failures: the wrong predictions, ranked and filtered, with heatmaps and suspect-label flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.components import chart, guard, suspect_table
from dashboard.gallery import gallery
from dashboard.images import explanations, suspects
from dashboard.page import PageContext, get, run_page
from dashboard.slicing import ALL, slice_options

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


def render(ctx: PageContext) -> None:
    table = ctx.table()
    fails = failures_frame(table)
    integrity = data.read_json(ctx.path / "integrity.json")
    flagged = suspects(integrity)
    n_flagged = get(integrity, "suspect_labels", "n_flagged", default=len(flagged))
    st.markdown(
        f"**{len(fails):,}** of **{int((table['label_idx'] >= 0).sum()):,}** labelled images are misclassified"
        + (
            f"; **{n_flagged:,}** carry a label the integrity check suspects is wrong"
            + (
                f" (the {len(flagged):,} likeliest are listed)."
                if n_flagged > len(flagged)
                else "."
            )
            if flagged
            else "."
        )
    )
    classes = ctx.classes
    c1, c2, c3 = st.columns([1.2, 1.5, 1.5])
    ranking = c1.selectbox("Rank by", list(RANKINGS), key="fail_rank")
    true_sel = c2.multiselect("True class", classes, key="fail_true", placeholder="any")
    pred_sel = c3.multiselect("Predicted class", classes, key="fail_pred", placeholder="any")
    c4, c5, c6 = st.columns([1.2, 1.5, 1.5])
    options, slice_map = slice_options(ctx.path)
    slice_choice = c4.selectbox(
        "Slice",
        options,
        key="fail_slice",
        help="A metadata value of the held-out set (source, tags, month…).",
    )
    lo, hi = c5.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="fail_conf", format="%.2f")
    overlays = explanations(ctx.path).overlays
    only_suspect = c6.toggle("Only suspect labels", key="fail_suspect", disabled=not flagged,
                             help="Images whose label the model confidently contradicts (confident learning)." if flagged else "No suspect-label results in this run.")  # fmt: skip
    only_heat = c6.toggle("Only images with heatmaps", key="fail_heat", disabled=not overlays,
                          help="Grad-CAM was run on a sample of the failures (python -m audits explain --all for every one)." if overlays else "No heatmaps in this run.")  # fmt: skip

    mask = np.ones(len(fails), bool)
    if true_sel:
        mask &= fails["label"].isin(true_sel).to_numpy()
    if pred_sel:
        mask &= fails["pred"].isin(pred_sel).to_numpy()
    if slice_choice != ALL:
        col, _, value = slice_choice.partition(" = ")
        mask &= (slice_map[col].loc[fails.index] == value).to_numpy()
    conf = fails["confidence"].to_numpy()
    mask &= (conf >= lo) & (conf <= hi)
    if only_suspect:
        mask &= fails["row"].isin(list(flagged)).to_numpy()
    if only_heat:
        mask &= fails["row"].isin(list(overlays)).to_numpy()
    picked = fails[mask]
    column, ascending = RANKINGS[ranking]
    picked = picked.sort_values(column, ascending=ascending, kind="stable", na_position="last")

    with guard("The confidence chart", ctx.path / "predictions.parquet"):
        correct = table["confidence"].to_numpy()[
            (table["label_idx"] >= 0).to_numpy() & ~table.index.isin(fails.index)
        ]
        chart(
            charts.confidence_histogram(correct, fails["confidence"].to_numpy()),
            "green is how confident the model was when right, red when wrong (each as a share of its group). Red "
            "mass on the right means confident mistakes — the dangerous ones; use the confidence filter to look at them.",
            key="fail_conf_chart",
        )
    st.markdown(f"#### {len(picked):,} failure(s) · {ranking.lower()}")
    with guard("The failure gallery", ctx.path):
        gallery(ctx, picked, key="fail_gallery", per_page=12)
    if flagged:
        with st.expander(f"Suspect labels ({len(flagged):,} listed)", icon=":material/flag:"):
            suspect_table(list(flagged.values()), height=320)
            st.caption(
                "Ranked by how little probability the model gives the given label: the likeliest mislabels come first. Check these images before trusting the accuracy of their classes."
            )


if __name__ == "__main__":
    run_page(
        render,
        "Failures",
        "The images the model gets wrong, worst first — with where it looked and which labels look wrong.",
    )
