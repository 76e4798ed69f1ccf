"""Drift: do production images still look like the held-out images? (the latest drift run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.components import chart, code, empty_state, esc, guard, kv, metric_card, placeholder
from dashboard.images import image_file
from dashboard.page import PageContext, get, run_page
from reports.present import narrative

SIDE_COLUMNS = ("set", "split", "side", "which", "dataset", "source_set")


def _p(x: Any) -> str:
    if not isinstance(x, int | float):
        return "n/a"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


def _drift_word(flag: Any) -> str:
    return "drift" if flag else "no drift" if flag is False else "n/a"


def sentences(doc: dict[str, Any]) -> list[str]:
    """The shared plain-language drift sentences when reports.present.narrative has them."""
    fn = getattr(narrative, "drift_summary", None)
    if fn is None:
        return []
    try:
        return [str(s) for s in fn(doc) or []]
    except Exception:  # an older or newer drift.json must not break the page
        return []


def cards(doc: dict[str, Any]) -> None:
    emb, pred = doc.get("embedding") or {}, doc.get("predictions") or {}
    props = [p for p in doc.get("properties") or [] if isinstance(p, dict)]
    ref, cur = doc.get("reference") or {}, doc.get("current") or {}
    cols = st.columns(4)
    with cols[0]:
        mmd = emb.get("mmd2")
        metric_card("What the model sees", _drift_word(emb.get("drift")),
                    f"MMD² {mmd:.4f}, p {_p(emb.get('p_value'))}" if isinstance(mmd, int | float) else f"p {_p(emb.get('p_value'))}",
                    "Maximum mean discrepancy between the model's embeddings of the two sets, tested by permutation.")  # fmt: skip
    with cols[1]:
        metric_card("What the model answers", _drift_word(pred.get("drift")), f"p {_p(pred.get('p_value'))}",
                    "Whether the mix of predicted classes differs between the two sets.")  # fmt: skip
    with cols[2]:
        n_drift = sum(bool(p.get("drift")) for p in props)
        metric_card("Image properties drifted", f"{n_drift} of {len(props)}" if props else "n/a",
                    ", ".join(str(p.get("name")) for p in props if p.get("drift"))[:60] or "none",
                    "Brightness, contrast, sharpness, size… compared one by one.")  # fmt: skip
    with cols[3]:
        metric_card("Images compared", f"{get(ref, 'n_images', default='?'):,} vs {get(cur, 'n_images', default='?'):,}"
                    if isinstance(ref.get("n_images"), int) and isinstance(cur.get("n_images"), int) else "n/a",
                    "held-out vs production")  # fmt: skip


def class_mix(pred: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]] | None:
    """Predicted class shares (reference, current) from predictions.classes.counts, when stored."""
    counts = get(pred, "classes", "counts", default=None)
    if not isinstance(counts, list) or not counts:
        return None
    ref, cur = {}, {}
    for c in counts:
        if isinstance(c, dict) and "class" in c:
            ref[str(c["class"])] = float(c.get("reference_share") or 0.0)
            cur[str(c["class"])] = float(c.get("current_share") or 0.0)
    return (ref, cur) if ref else None


def property_distribution(drift_path: Path, props: list[dict[str, Any]]) -> None:
    """Reference vs current histogram of one property from properties.parquet (column ``side``)."""
    frame = data.read_parquet(drift_path / "properties.parquet")
    if frame is None or frame.empty:
        return
    side = next((c for c in SIDE_COLUMNS if c in frame.columns), None)
    if side is None:
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


def examples(ctx: PageContext, doc: dict[str, Any]) -> None:
    rows = [e for e in doc.get("examples") or [] if isinstance(e, dict)]
    if not rows:
        return
    st.markdown("#### Production images least like the held-out set")
    cur_path = get(doc, "current", "path")
    root = None
    if isinstance(cur_path, str):
        p = Path(cur_path)
        root = p if p.is_dir() else p.parent
    drift_dir = ctx.bundle.drift.path
    for i in range(0, min(len(rows), 8), 4):
        cols = st.columns(4)
        for col, e in zip(cols, rows[i : i + 4], strict=False):
            with col.container(border=True):
                abspath = Path(e["abspath"]) if isinstance(e.get("abspath"), str) else None
                file = (
                    abspath
                    if abspath is not None and abspath.is_file()
                    else image_file(root, e.get("path"))
                )
                if (
                    file is None
                    and isinstance(e.get("thumb"), str)
                    and (drift_dir / e["thumb"]).is_file()
                ):
                    file = drift_dir / e["thumb"]
                img = data.thumbnail(file, 240) if file else None
                if img:
                    st.image(img, width="stretch")
                else:
                    placeholder("image not available")
                ratio = e.get("ratio")
                far = f"{ratio:.1f}× the usual distance" if isinstance(ratio, int | float) else None
                pred = f"predicted {e['pred']}" if e.get("pred") else None
                st.markdown(
                    f'<div class="ma-muted">{esc(" · ".join(x for x in (pred, far) if x))}</div>'
                    f'<div class="ma-muted" style="font-size:.75rem;overflow-wrap:anywhere">{esc(e.get("path", ""))}</div>',
                    unsafe_allow_html=True,
                )


def evidently(drift_path: Path) -> None:
    file = drift_path / "evidently.html"
    if not file.is_file():
        return
    with st.expander("Full Evidently data-drift report", icon=":material/description:"):
        st.download_button("Download the Evidently report (HTML)", lambda: file.read_bytes(), file_name="evidently.html",
                           mime="text/html", key="drift_evidently_dl")  # fmt: skip
        if st.toggle("Show it here (large)", key="drift_evidently_show"):
            st.iframe(file, height=900)  # our own store's file, not user input


def render(ctx: PageContext) -> None:
    b = ctx.bundle
    if b.drift is None:
        model_dir = get(ctx.meta, "model", "dir", default="<model dir>")
        ref = get(ctx.meta, "dataset", "path", default="<held-out set>")
        empty_state(
            f"No drift run for {ctx.info.model} {ctx.info.version} yet",
            f"python -m audits drift --model {model_dir} --reference {ref} --current <production batch> --store {ctx.store}",
            "A drift run compares a batch of production images with the held-out set this audit used: the model's "
            "embeddings (MMD), its predicted classes, and simple image properties.",
        )
        return
    doc = b.drift.meta
    where = b.drift.path / "drift.json"
    with guard("The drift verdict", where):
        drifted = doc.get("drift")
        lines = sentences(doc)
        head = lines[0] if lines else None
        if drifted:
            st.warning(
                head
                or "Production images have drifted away from the held-out set: the audit's numbers may not hold in production.",
                icon=":material/warning:",
            )
        elif drifted is False:
            st.success(
                head or "No drift: production images look like the held-out set.",
                icon=":material/check_circle:",
            )
        for s in lines[1:]:
            st.markdown(f"- {esc(s)}", unsafe_allow_html=True)
        cards(doc)
    left, right = st.columns([1, 1], gap="large")
    with left, guard("The property tests", where):
        props = [p for p in doc.get("properties") or [] if isinstance(p, dict)]
        alpha = doc.get("alpha") if isinstance(doc.get("alpha"), int | float) else 0.05
        chart(
            charts.drift_pvalues(props, alpha),
            "one bar per image property; the longer the bar, the stronger the evidence that production images differ "
            "in it. Red bars passed the significance line.",
            key="drift_pvalues",
        )
    with right, guard("The property distributions", b.drift.path / "properties.parquet"):
        property_distribution(b.drift.path, props)
    with guard("The class mix", where):
        mix = class_mix(doc.get("predictions") or {})
        if mix:
            chart(
                charts.class_shift(mix[0], mix[1], ctx.colors),
                "for each class, the share of images the model assigns to it in the held-out set (grey) and in "
                "production (class colour); large gaps mean production sees different cars, or the model reads them differently.",
                key="drift_mix",
            )
    with guard("The example images", where):
        examples(ctx, doc)
    with guard("The Evidently report", b.drift.path / "evidently.html"):
        evidently(b.drift.path)
    with guard("The drift run details", where), st.expander("Drift run details"):
        ref, cur = doc.get("reference") or {}, doc.get("current") or {}
        st.markdown(kv([
            ("drift run", code(b.drift.run_id)), ("created", doc.get("created")),
            ("reference", code(ref.get("path"))), ("reference fingerprint", code(ref.get("fingerprint"), 16)),
            ("current", code(cur.get("path"))), ("current fingerprint", code(cur.get("fingerprint"), 16)),
            ("permutations", get(doc, "embedding", "permutations")),
        ]), unsafe_allow_html=True)  # fmt: skip


if __name__ == "__main__":
    run_page(
        render, "Drift", "Do production images still look like the images the model was tested on?"
    )
