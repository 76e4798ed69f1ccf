"""Drift: do production images still look like the held-out images? (the latest drift run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from audits.drift.wording import EVIDENTLY_NOTE, accuracy_sentence, rule_sentence
from audits.runs import DriftRecord, StoredRun
from audits.runs.models_drift import DriftExample, PropertyDrift
from dashboard import data, drift_timeline_view
from dashboard.charts import chart
from dashboard.components import code, empty_state, esc, guard, kv, metric_card, placeholder
from dashboard.images import image_file
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt, narrative


def _drift_word(flag: bool | None) -> str:
    return "drift" if flag else "no drift" if flag is False else fmt.NA


def sentences(d: DriftRecord) -> list[str]:
    """The shared plain-language drift sentences (reports.present.narrative)."""
    try:
        return narrative.drift_summary(d)
    except Exception:  # an older or newer drift.json must not break the page
        return []


def accuracy_card(d: DriftRecord) -> bool:
    """The labelled batch's accuracy with its Wilson interval; False when it has no labels."""
    acc = d.predictions.accuracy
    if acc is None or not fmt.is_num(acc.current):
        return False
    interval = (
        f"95% CI {fmt.ci(acc.current_ci_low, acc.current_ci_high)} · "
        if fmt.is_num(acc.current_ci_low)
        else ""
    )
    drop = fmt.is_num(acc.reference) and acc.current < acc.reference
    metric_card(
        f"Accuracy on {d.batch}",
        fmt.pct(acc.current),
        f"{interval}{fmt.count(acc.n_current_labelled)} labelled images · held-out "
        f"{fmt.pct(acc.reference)}",
        "Share of the batch's labelled images the model gets right, with its Wilson 95% interval.",
        "bad" if drop else "",
    )
    return True


def cards(d: DriftRecord) -> None:
    emb, pred, props = d.embedding, d.predictions, d.properties
    ref, cur = d.reference.n_images, d.current.n_images
    test = fmt.p_equals(emb.p_value)
    acc = d.predictions.accuracy
    labelled = acc is not None and fmt.is_num(acc.current)
    cols = st.columns(5 if labelled else 4)
    with cols[0]:
        metric_card(
            "What the model sees",
            _drift_word(emb.drift),
            f"MMD² {fmt.num(emb.mmd2, 4)}, {test}",
            "Maximum mean discrepancy between the model's embeddings of the two sets, tested by permutation.",
        )
    with cols[1]:
        metric_card(
            "What the model answers",
            _drift_word(pred.drift),
            fmt.p_equals(pred.p_value),
            "Whether the mix of predicted classes differs between the two sets.",
        )
    with cols[2]:
        moved = d.drifted_properties
        metric_card(
            "Image properties drifted",
            f"{fmt.count(len(moved))} of {fmt.count(len(props))}" if props else fmt.NA,
            ", ".join(p.name for p in moved)[:60] or "none",
            "Brightness, contrast, sharpness, size… compared one by one.",
        )
    with cols[3]:
        metric_card(
            "Images compared", f"{fmt.count(ref)} vs {fmt.count(cur)}", f"held-out vs {d.batch}"
        )
    if labelled:
        with cols[4]:
            accuracy_card(d)


def _p_rank(p: PropertyDrift) -> float:
    """The p-value that decides (Holm-adjusted when stored); untested properties last."""
    value = p.p_adjusted if p.p_adjusted is not None else p.p_value
    return value if value is not None else 2


def property_distribution(run: StoredRun, props: list[PropertyDrift]) -> None:
    """Reference vs current histogram of one property from properties.parquet (column ``side``)."""
    frame = run.properties
    side = "side"  # audits/drift: "reference" or "current"
    if frame is None or frame.empty or side not in frame.columns:
        return
    numeric = [
        c
        for c in frame.columns
        if c != side and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
    ]
    # Properties first, most drifted first; then other numeric columns (confidence, nn_distance).
    order = [p.name for p in sorted(props, key=_p_rank) if p.name in numeric]
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


def example_card(e: DriftExample, root: Path | None, run: StoredRun | None = None) -> None:
    """One production image far from the held-out set, with what the model said about it.

    The thumbnail stored in the drift run comes first; the source image is the fallback for
    runs made before thumbnails were stored."""
    file = run.thumb(e.thumb) if run is not None else None
    if file is None:
        abspath = Path(e.abspath) if e.abspath else None
        file = abspath if abspath is not None and abspath.is_file() else image_file(root, e.path)
    img = data.thumbnail(file, 240) if file else None
    if img:
        st.image(img, width="stretch")
    else:
        placeholder("image not available")
    far = f"{fmt.num(e.ratio, 1)}× the usual distance" if fmt.is_num(e.ratio) else None
    pred = f"predicted {e.pred}" if e.pred else None
    st.markdown(
        f'<div class="ma-muted">{esc(" · ".join(x for x in (pred, far) if x))}</div>'
        f'<div class="ma-muted" style="font-size:.75rem;overflow-wrap:anywhere">{esc(e.path)}</div>',
        unsafe_allow_html=True,
    )


def examples(d: DriftRecord, run: StoredRun | None = None) -> None:
    rows = d.examples
    if not rows:
        return
    st.markdown(f"#### Images of {esc(d.batch)} least like the held-out set")
    current = Path(d.current.path)
    root = current if current.is_dir() else current.parent
    for i in range(0, min(len(rows), 8), 4):
        cols = st.columns(4)
        for col, e in zip(cols, rows[i : i + 4], strict=False):
            with col.container(border=True):
                example_card(e, root, run)


def evidently(run: StoredRun) -> None:
    file = run.evidently_html
    if file is None:
        return
    with st.expander("Full Evidently data-drift report", icon=":material/description:"):
        st.info(EVIDENTLY_NOTE, icon=":material/info:")
        st.download_button(
            "Download the Evidently report (HTML)",
            lambda: file.read_bytes(),
            file_name="evidently.html",
            mime="text/html",
            key="drift_evidently_dl",
        )
        if st.toggle("Show it here (large)", key="drift_evidently_show"):
            # Our own store's file, not user input; tall, and it scrolls inside (never clipped).
            st.iframe(file, height=1600)


def empty(ctx: PageContext) -> None:
    audit = ctx.audit
    ref = audit.dataset.path or "<held-out set>"
    empty_state(
        f"No drift run for {ctx.info.model} {ctx.info.version} yet",
        f"python -m audits drift --model {audit.model.dir or '<model dir>'} --reference {ref} "
        f"--current <production batch> --store {ctx.store}",
        "A drift run compares a batch of production images with the held-out set this audit used: the model's "
        "embeddings (MMD), its predicted classes, and simple image properties.",
    )


def verdict(d: DriftRecord) -> None:
    lines = sentences(d)
    head = lines[0] if lines else None
    st.markdown(
        f"##### Batch <code>{esc(d.batch)}</code>: {fmt.count(d.current.n_images)} images",
        unsafe_allow_html=True,
    )
    if d.drift:
        st.warning(
            head
            or "Production images have drifted away from the held-out set: the audit's numbers may not hold in production.",
            icon=":material/warning:",
        )
    else:
        st.success(
            head or "No drift: production images look like the held-out set.",
            icon=":material/check_circle:",
        )
    for s in lines[1:]:
        st.markdown(f"- {esc(s)}", unsafe_allow_html=True)
    accuracy = accuracy_sentence(d.batch, d.predictions.accuracy)
    if accuracy:
        st.markdown(f"- {esc(accuracy)}", unsafe_allow_html=True)
    cards(d)
    st.caption(d.drift_rule_text or rule_sentence(d.alpha))


def details(run_id: str, d: DriftRecord) -> None:
    ref, cur = d.reference, d.current
    with st.expander("Drift run details"):
        st.markdown(
            kv(
                [
                    ("drift run", code(run_id)),
                    ("batch", esc(d.batch)),
                    ("created", d.created),
                    ("reference", code(ref.path)),
                    ("reference fingerprint", code(ref.fingerprint, 16)),
                    ("current", code(cur.path)),
                    ("current fingerprint", code(cur.fingerprint, 16)),
                    ("permutations", fmt.count(d.embedding.permutations)),
                ]
            ),
            unsafe_allow_html=True,
        )


def class_mix(d: DriftRecord) -> tuple[dict[str, float], dict[str, float]] | None:
    """Predicted class shares (reference, current) from predictions.classes.counts, if stored."""
    classes = d.predictions.classes
    counts = classes.counts if classes is not None else None
    if not counts:
        return None
    return (
        {c.class_: c.reference_share for c in counts},
        {c.class_: c.current_share for c in counts},
    )


def shown_run(ctx: PageContext) -> tuple[StoredRun | None, str]:
    """The drift run to show (picked on the timeline, else the version's latest) and the
    reference fingerprint of the timeline (``drift_timeline_view.resolve``)."""
    latest = ctx.bundle.drift
    fingerprint, run_id = drift_timeline_view.resolve(
        ctx.store,
        ctx.info.model,
        ctx.info.version,
        ctx.audit.dataset.fingerprint or "",
        latest.run_id if latest is not None else None,
    )
    info = data.catalog(str(ctx.store)).get(run_id) if run_id else None
    return (data.run(info.path) if info is not None else latest), fingerprint


def timeline(ctx: PageContext, shown: StoredRun | None, fingerprint: str, alpha: float) -> None:
    with guard("The drift timeline", ctx.store):
        drift_timeline_view.render(
            ctx.store,
            ctx.info.model,
            ctx.info.version,
            fingerprint,
            shown.run_id if shown is not None else None,
            alpha,
        )


def render(ctx: PageContext) -> None:
    run, fingerprint = shown_run(ctx)
    if run is None:
        empty(ctx)
        timeline(ctx, None, fingerprint, 0.05)  # other versions' drift runs can still be opened
        return
    d = run.drift  # an invalid drift.json raises here: the page's guard names the file
    where = run.record_file
    with guard("The drift verdict", where):
        verdict(d)
    timeline(ctx, run, fingerprint, d.alpha)
    left, right = st.columns([1, 1], gap="large")
    with left, guard("The property tests", where):
        chart(
            charts.drift_pvalues(d.properties, d.alpha),
            "one bar per image property; the longer the bar, the stronger the evidence that production images differ "
            "in it. Red bars passed the significance line.",
            key="drift_pvalues",
        )
    with right, guard("The property distributions", run.path):
        property_distribution(run, d.properties)
    with guard("The class mix", where):
        mix = class_mix(d)
        if mix:
            chart(
                charts.class_shift(mix[0], mix[1], ctx.colors),
                "for each class, the share of images the model assigns to it in the held-out set (grey) and in "
                "production (class colour); large gaps mean production sees different cars, or the model reads them differently.",
                key="drift_mix",
            )
    with guard("The example images", where):
        examples(d, run)
    with guard("The Evidently report", run.path):
        evidently(run)
    with guard("The drift run details", where):
        details(run.run_id, d)


if __name__ == "__main__":
    run_page(
        render, "Drift", "Do production images still look like the images the model was tested on?"
    )
