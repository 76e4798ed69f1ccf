"""Drift: do production images still look like the held-out images? (the latest drift run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, stored
from dashboard.charts import chart
from dashboard.components import code, empty_state, esc, guard, kv, metric_card, placeholder
from dashboard.images import image_file
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt, narrative


def _drift_word(flag: Any) -> str:
    return "drift" if flag else "no drift" if flag is False else fmt.NA


def sentences(doc: dict[str, Any]) -> list[str]:
    """The shared plain-language drift sentences (reports.present.narrative)."""
    try:
        return [str(s) for s in narrative.drift_summary(doc) or []]
    except Exception:  # an older or newer drift.json must not break the page
        return []


def cards(d: dict[str, Any]) -> None:
    emb, pred, props = d["embedding"], d["predictions"], d["properties"]
    ref, cur = d["reference"]["n_images"], d["current"]["n_images"]
    test = fmt.p_equals(emb["p_value"])
    cols = st.columns(4)
    with cols[0]:
        metric_card("What the model sees", _drift_word(emb["drift"]),
                    f"MMD² {fmt.num(emb['mmd2'], 4)}, {test}" if fmt.is_num(emb["mmd2"]) else test,
                    "Maximum mean discrepancy between the model's embeddings of the two sets, tested by permutation.")  # fmt: skip
    with cols[1]:
        metric_card("What the model answers", _drift_word(pred["drift"]), fmt.p_equals(pred["p_value"]),
                    "Whether the mix of predicted classes differs between the two sets.")  # fmt: skip
    with cols[2]:
        n_drift = sum(bool(p.get("drift")) for p in props)
        metric_card("Image properties drifted", f"{fmt.count(n_drift)} of {fmt.count(len(props))}" if props else fmt.NA,
                    ", ".join(str(p.get("name")) for p in props if p.get("drift"))[:60] or "none",
                    "Brightness, contrast, sharpness, size… compared one by one.")  # fmt: skip
    with cols[3]:
        both = isinstance(ref, int) and isinstance(cur, int)
        metric_card("Images compared", f"{fmt.count(ref)} vs {fmt.count(cur)}" if both else fmt.NA,
                    "held-out vs production")  # fmt: skip


def property_distribution(drift_path: Path, props: list[dict[str, Any]]) -> None:
    """Reference vs current histogram of one property from properties.parquet (column ``side``)."""
    frame = data.read_parquet(drift_path / "properties.parquet")
    side = "side"  # audits/drift: "reference" or "current"
    if frame is None or frame.empty or side not in frame.columns:
        return
    numeric = [
        c
        for c in frame.columns
        if c != side and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
    ]
    # Properties first, most drifted first; then other numeric columns (confidence, nn_distance).
    ranked = sorted(
        props,
        key=lambda p: (
            p.get("p_adjusted", p.get("p_value"))
            if isinstance(p.get("p_adjusted", p.get("p_value")), int | float)
            else 2
        ),
    )
    order = [str(p.get("name")) for p in ranked if str(p.get("name")) in numeric]
    order += [c for c in numeric if c not in order and c not in ("row", "index")]
    if not order:
        return
    name = st.selectbox("Property", order, key="drift_prop")
    sides = frame[side].astype(str)
    chart(
        charts.distribution(
            frame.loc[sides == "reference", name].dropna(),
            frame.loc[sides == "current", name].dropna(),
            name,
        ),
        "blue is the held-out set the model was tested on, orange the production images; where the two shapes "
        "differ, production images are unlike what the audit covered.",
        key="drift_dist",
    )


def example_card(e: dict[str, Any], root: Path | None) -> None:
    """One production image far from the held-out set, with what the model said about it."""
    abspath = Path(e["abspath"]) if isinstance(e.get("abspath"), str) else None
    file = abspath if abspath is not None and abspath.is_file() else image_file(root, e.get("path"))
    img = data.thumbnail(file, 240) if file else None
    if img:
        st.image(img, width="stretch")
    else:
        placeholder("image not available")
    ratio = e.get("ratio")
    far = f"{fmt.num(ratio, 1)}× the usual distance" if fmt.is_num(ratio) else None
    pred = f"predicted {e['pred']}" if e.get("pred") else None
    st.markdown(
        f'<div class="ma-muted">{esc(" · ".join(x for x in (pred, far) if x))}</div>'
        f'<div class="ma-muted" style="font-size:.75rem;overflow-wrap:anywhere">{esc(e.get("path", ""))}</div>',
        unsafe_allow_html=True,
    )


def examples(d: dict[str, Any]) -> None:
    rows = d["examples"]
    if not rows:
        return
    st.markdown("#### Production images least like the held-out set")
    cur_path = d["current"]["path"]
    root = None
    if isinstance(cur_path, str):
        p = Path(cur_path)
        root = p if p.is_dir() else p.parent
    for i in range(0, min(len(rows), 8), 4):
        cols = st.columns(4)
        for col, e in zip(cols, rows[i : i + 4], strict=False):
            with col.container(border=True):
                example_card(e, root)


def evidently(drift_path: Path) -> None:
    file = drift_path / "evidently.html"
    if not file.is_file():
        return
    with st.expander("Full Evidently data-drift report", icon=":material/description:"):
        st.download_button("Download the Evidently report (HTML)", lambda: file.read_bytes(), file_name="evidently.html",
                           mime="text/html", key="drift_evidently_dl")  # fmt: skip
        if st.toggle("Show it here (large)", key="drift_evidently_show"):
            st.iframe(file, height=900)  # our own store's file, not user input


def empty(ctx: PageContext) -> None:
    ref = stored.dataset_path(ctx.meta)[0] or "<held-out set>"
    empty_state(
        f"No drift run for {ctx.info.model} {ctx.info.version} yet",
        f"python -m audits drift --model {stored.model_dir(ctx.meta) or '<model dir>'} --reference {ref} "
        f"--current <production batch> --store {ctx.store}",
        "A drift run compares a batch of production images with the held-out set this audit used: the model's "
        "embeddings (MMD), its predicted classes, and simple image properties.",
    )


def verdict(doc: dict[str, Any], d: dict[str, Any]) -> None:
    lines = sentences(doc)
    head = lines[0] if lines else None
    if d["drift"]:
        st.warning(
            head
            or "Production images have drifted away from the held-out set: the audit's numbers may not hold in production.",
            icon=":material/warning:",
        )
    elif d["drift"] is False:
        st.success(
            head or "No drift: production images look like the held-out set.",
            icon=":material/check_circle:",
        )
    for s in lines[1:]:
        st.markdown(f"- {esc(s)}", unsafe_allow_html=True)
    cards(d)


def details(run_id: str, d: dict[str, Any]) -> None:
    ref, cur = d["reference"], d["current"]
    with st.expander("Drift run details"):
        st.markdown(kv([
            ("drift run", code(run_id)), ("created", d["created"]),
            ("reference", code(ref["path"])), ("reference fingerprint", code(ref["fingerprint"], 16)),
            ("current", code(cur["path"])), ("current fingerprint", code(cur["fingerprint"], 16)),
            ("permutations", fmt.count(d["embedding"]["permutations"])),
        ]), unsafe_allow_html=True)  # fmt: skip


def render(ctx: PageContext) -> None:
    b = ctx.bundle
    if b.drift is None:
        empty(ctx)
        return
    doc = b.drift.meta
    d = stored.drift(doc)
    where = b.drift.path / "drift.json"
    with guard("The drift verdict", where):
        verdict(doc, d)
    left, right = st.columns([1, 1], gap="large")
    with left, guard("The property tests", where):
        chart(
            charts.drift_pvalues(d["properties"], d["alpha"]),
            "one bar per image property; the longer the bar, the stronger the evidence that production images differ "
            "in it. Red bars passed the significance line.",
            key="drift_pvalues",
        )
    with right, guard("The property distributions", b.drift.path / "properties.parquet"):
        property_distribution(b.drift.path, d["properties"])
    with guard("The class mix", where):
        mix = stored.class_mix(doc)
        if mix:
            chart(
                charts.class_shift(mix[0], mix[1], ctx.colors),
                "for each class, the share of images the model assigns to it in the held-out set (grey) and in "
                "production (class colour); large gaps mean production sees different cars, or the model reads them differently.",
                key="drift_mix",
            )
    with guard("The example images", where):
        examples(d)
    with guard("The Evidently report", b.drift.path / "evidently.html"):
        evidently(b.drift.path)
    with guard("The drift run details", where):
        details(b.drift.run_id, d)


if __name__ == "__main__":
    run_page(
        render, "Drift", "Do production images still look like the images the model was tested on?"
    )
