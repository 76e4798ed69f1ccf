"""Integrity & claims: leakage, suspect labels, slices (integrity.json) and claims checked on the page."""

from __future__ import annotations

import tomllib
from typing import Any

import pandas as pd
import streamlit as st

from audits.errors import AuditError
from audits.narrative import pct
from dashboard import charts, data
from dashboard.components import chart, empty_state, esc, guard, metric_card, placeholder
from dashboard.page import PageContext, get, run_page
from dashboard.slicing import column_kinds, slice_options

VERDICT_STYLE = {"supported": ("green", ":material/check_circle:"), "contradicted": ("red", ":material/cancel:"),
                 "not enough data": ("orange", ":material/help:")}  # fmt: skip
KIND_LABELS = {
    "at_least": "Accuracy on a group is at least …",
    "at_most": "Accuracy on a group is at most …",
    "lower": "A group does worse than the rest",
    "higher": "A group does better than the rest",
    "share_at_least": "At least …% of the images belong to a group",
    "share_at_most": "At most …% of the images belong to a group",
    "confused_more_than": "One class is mistaken for another more than …% of the time",
}
EXAMPLE_TOML = """[[claim]]
text = "The model is at least 80% accurate"
kind = "at_least"
value = "80%"

[[claim]]
text = "Photos from fans are harder than dealer photos"
kind = "lower"
slice = { source = "fan" }
than = { source = "dealer" }
"""


def thumb(ctx: PageContext, rel: Any) -> None:
    """A thumbnail stored in the run by the integrity stage, or a placeholder."""
    file = ctx.path / rel if isinstance(rel, str) else None
    img = data.thumbnail(file, 240) if file else None
    if img:
        st.image(img, width="stretch")
    else:
        placeholder("no thumbnail stored")


# ---------------------------------------------------------------- leakage


def found_by(entry: dict[str, Any]) -> str:
    """'perceptual hash and embedding' from the stored list (or string)."""
    how = entry.get("found_by")
    names = {"phash": "perceptual hash", "embedding": "embedding similarity"}
    items = how if isinstance(how, list) else [how] if how else []
    return " and ".join(names.get(str(h), str(h)) for h in items) or "similarity"


def leakage(ctx: PageContext, report: dict[str, Any]) -> None:
    leak = report.get("leakage") or {}
    if leak.get("error"):
        st.error(f"The leakage check failed during the audit: {leak['error']}")
        return
    if not leak.get("available"):
        empty_state("Leakage between training and test images was not checked",
                    detail=esc(leak.get("reason") or "No training manifest is known for this model."))  # fmt: skip
        return
    counts = leak.get("counts") or {}
    acc = leak.get("accuracy") or {}
    cols = st.columns(4)
    with cols[0]:
        metric_card("Leaked test images", f"{counts.get('leaked_images', 0):,}", f"of {leak.get('n_test', 0):,} test images",
                    "Test images whose file, physical object (group) or near-duplicate is in the training data.")  # fmt: skip
    with cols[1]:
        metric_card("Exact copies", f"{counts.get('exact', 0):,}", "same file bytes")
    with cols[2]:
        metric_card(
            "Shared objects",
            f"{counts.get('group', 0):,}",
            f"{counts.get('group_test_images', 0):,} test images in shared groups",
        )
    with cols[3]:
        all_acc, clean = get(acc, "all", "accuracy"), get(acc, "without_leaked", "accuracy")
        metric_card("Accuracy without leaked", pct(clean), f"vs {pct(all_acc)} with them",
                    "If leaked images inflate accuracy, the clean number is the honest one.")  # fmt: skip
    near = leak.get("near") or []
    exact = leak.get("exact") or []
    pairs = [("exact copy", e) for e in exact] + [
        (f"near duplicate (by {found_by(e)})", e) for e in near
    ]
    has_thumbs = any(e.get("test_thumb") or e.get("train_thumb") for _, e in pairs)
    if pairs and not has_thumbs:  # a wall of placeholders says nothing: list them instead
        st.markdown("#### Test images found in the training data")
        st.dataframe(
            pd.DataFrame([{"found as": what, "class": e.get("label"), "test image": e.get("test_path"),
                           "training image": e.get("train_path")} for what, e in pairs]),
            hide_index=True, width="stretch", height=min(3 + 35 * (len(pairs) + 1), 320),
        )  # fmt: skip
    elif pairs:
        st.markdown("#### Test images found in the training data")
        for i in range(0, min(len(pairs), 12), 4):
            cols = st.columns(4)
            for col, (what, e) in zip(cols, pairs[i : i + 4], strict=False):
                with col.container(border=True):
                    a, b = st.columns(2)
                    with a:
                        thumb(ctx, e.get("test_thumb"))
                        st.caption("test")
                    with b:
                        thumb(ctx, e.get("train_thumb"))
                        st.caption("training")
                    st.markdown(
                        f'<div class="ma-muted">{esc(what)} · {esc(e.get("label"))}</div>',
                        unsafe_allow_html=True,
                    )
    groups = leak.get("groups") or []
    if groups:
        with st.expander(f"{len(groups):,} object group(s) on both sides"):
            st.dataframe(
                pd.DataFrame(groups)[[c for c in ("group", "n_test", "n_train") if c in groups[0]]],
                hide_index=True,
                width="stretch",
            )
    note = get(leak, "checks", "near", "note")
    if note:
        st.caption(note)


# ---------------------------------------------------------------- suspect labels


def suspect_labels(ctx: PageContext, report: dict[str, Any]) -> None:
    block = report.get("suspect_labels") or {}
    if block.get("error"):
        st.error(f"The suspect-label check failed during the audit: {block['error']}")
        return
    rows = block.get("rows") or []
    st.markdown(f"**{block.get('n_flagged', len(rows)):,}** of {block.get('n_labelled', 0):,} labelled images look mislabelled. "
                f"Method: {esc(block.get('method', 'confident learning'))}.")  # fmt: skip
    if not rows:
        st.success("No suspect labels: the model never confidently contradicts a given label.")
        return
    for i in range(0, min(len(rows), 8), 4):
        cols = st.columns(4)
        for col, r in zip(cols, rows[i : i + 4], strict=False):
            with col.container(border=True):
                thumb(ctx, r.get("thumb"))
                st.markdown(
                    f"labelled **{esc(r.get('label'))}**, looks like **{esc(r.get('suggested'))}**"
                )
                st.caption(f"p(given label) {pct(r.get('self_confidence'))} · row {r.get('row')}")
    frame = pd.DataFrame(rows)
    keep = [
        c
        for c in (
            "rank",
            "row",
            "path",
            "label",
            "suggested",
            "predicted",
            "self_confidence",
            "confidence",
        )
        if c in frame.columns
    ]
    st.dataframe(frame[keep], hide_index=True, width="stretch", height=300,
                 column_config={"self_confidence": st.column_config.NumberColumn("p(given label)", format="percent"),
                                "confidence": st.column_config.NumberColumn("confidence", format="percent")})  # fmt: skip
    st.caption(
        "Likeliest mislabels first. The Failures page can show only these images, with their heatmaps."
    )


# ---------------------------------------------------------------- slices


def slices(ctx: PageContext, report: dict[str, Any]) -> None:
    block = report.get("slices") or {}
    if block.get("error"):
        st.error(f"The slice analysis failed during the audit: {block['error']}")
        return
    rows = block.get("slices") or []
    if not rows:
        empty_state(
            "No metadata to slice by",
            detail="The held-out set has no metadata columns (source, tags, dates…).",
        )
        return
    columns = sorted({str(r.get("column")) for r in rows})
    c1, c2 = st.columns([1, 2])
    col = c1.selectbox("Metadata column", ["Weakest slices", *columns], key="slice_col")
    shown = (
        (block.get("weakest") or rows[:10])
        if col == "Weakest slices"
        else [r for r in rows if str(r.get("column")) == col]
    )
    lower = sum(bool(r.get("significantly_lower")) for r in rows)
    c2.markdown(
        f"<br>{lower} of {len(rows)} slices are significantly less accurate than the rest.",
        unsafe_allow_html=True,
    )
    chart(
        charts.slices(shown, block.get("accuracy")),
        "each bar is the accuracy on images with that metadata value, with its 95% interval; red bars are "
        "significantly worse than the rest of the set (Fisher's test, adjusted for testing many slices).",
        key="slices_chart",
    )


# ---------------------------------------------------------------- claims


def stored_claims(ctx: PageContext) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for folder in data.list_dirs(ctx.path, "claims-"):
        doc = data.read_json(folder / "claims.json")
        if isinstance(doc, dict):
            out.append((folder.name, doc))
    return out


def show_results(results: list[dict[str, Any]]) -> None:
    for r in results:
        verdict = str(r.get("verdict", "?"))
        color, icon = VERDICT_STYLE.get(verdict, ("gray", ":material/help:"))
        with st.container(border=True):
            st.markdown(
                f":{color}-badge[{icon} {verdict}] **{esc(r.get('text') or r.get('kind'))}**",
                unsafe_allow_html=True,
            )
            if r.get("sentence"):
                st.markdown(esc(r["sentence"]), unsafe_allow_html=True)
            if r.get("reason"):
                st.caption(r["reason"])


def slice_spec(choice: str, kinds: dict[str, str]) -> dict[str, Any]:
    """'source = fan' -> {'source': 'fan'}; booleans and numeric bins become claim values."""
    if not choice or choice.startswith("All"):
        return {}
    col, _, value = choice.partition(" = ")
    kind = kinds.get(col)
    if kind == "boolean" and value in ("true", "false"):
        return {col: value == "true"}
    if kind == "numeric" and " to " in value:
        lo, _, hi = value.partition(" to ")
        return {col: {"min": float(lo), "max": float(hi)}}
    if value == "(missing)":
        return {col: None}
    return {col: value}


def claim_form(ctx: PageContext) -> list[dict[str, Any]] | None:
    """A guided form for one claim; returns it when submitted."""
    options, _ = slice_options(ctx.path)
    kinds = column_kinds(ctx.path)
    classes = ctx.classes
    with st.form("claim_form", border=True):
        text = st.text_input(
            "The claim, in the words it was made",
            placeholder="e.g. Fan photos are harder than dealer photos",
        )
        c1, c2 = st.columns(2)
        kind = c1.selectbox("What kind of claim", list(KIND_LABELS), format_func=KIND_LABELS.get)
        metric = c2.selectbox("Measured by", ["accuracy", *[f"recall:{c}" for c in classes[:300]]],
                              format_func=lambda m: "accuracy" if m == "accuracy" else f"accuracy on {m.split(':', 1)[1]}")  # fmt: skip
        c3, c4, c5 = st.columns(3)
        group = c3.selectbox("Group (slice)", options, help="Metadata value defining the group.")
        than = c4.selectbox(
            "Compared with", ["the rest", *options[1:]], help="Only for 'worse/better than'."
        )
        value = c5.number_input(
            "Value (%)", 0.0, 100.0, 80.0, 1.0, help="The threshold the claim states."
        )
        c6, c7 = st.columns(2)
        true_cls = c6.selectbox("True class (mistaken claims)", classes)
        with_cls = c7.selectbox("Mistaken for", classes, index=min(1, len(classes) - 1))
        submitted = st.form_submit_button(
            "Check this claim", type="primary", icon=":material/fact_check:"
        )
    if not submitted:
        return None
    claim: dict[str, Any] = {"text": text or KIND_LABELS[kind], "kind": kind, "metric": metric}
    spec = slice_spec(group, kinds)
    if kind in ("lower", "higher"):
        claim["slice"] = spec
        if than != "the rest":
            claim["than"] = slice_spec(than, kinds)
    elif kind == "confused_more_than":
        claim.update({"class": true_cls, "with": with_cls, "value": value / 100})
        claim.pop("metric")
    elif kind.startswith("share"):
        claim.update({"slice": spec, "value": value / 100})
        claim.pop("metric")
    else:
        claim.update({"slice": spec, "value": value / 100})
    return [claim]


def claims(ctx: PageContext) -> None:
    from audits.claims import evaluate_claims

    st.markdown("Type what someone said about the model; it is checked against this run's stored predictions with a 95% interval. "
                "Verdicts: **supported**, **contradicted**, or **not enough data**.")  # fmt: skip
    typed = claim_form(ctx)
    with st.expander("Several claims at once (TOML, as in a claims file)"):
        text = st.text_area("Claims", EXAMPLE_TOML, height=220, key="claims_toml")
        if st.button("Check these claims", key="claims_toml_go"):
            try:
                parsed = tomllib.loads(text)
                typed = parsed.get("claim") or parsed.get("claims") or []
            except tomllib.TOMLDecodeError as exc:
                st.error(f"Not valid TOML: {exc}")
    if typed:
        try:
            results = evaluate_claims(ctx.run, typed)
        except AuditError as exc:
            st.error(f"The claim cannot be checked: {exc}")
        else:
            st.session_state["claims_results"] = (ctx.info.run_id, results)
    saved = st.session_state.get("claims_results")
    if saved and saved[0] == ctx.info.run_id:
        st.markdown("#### Checked on this page")
        show_results(saved[1])
    for name, doc in stored_claims(ctx):
        st.markdown(
            f"#### Stored claims file `{esc(doc.get('claims_file', name))}` · checked {esc(doc.get('created', ''))}"
        )
        show_results(doc.get("results") or [])
    if not saved and not stored_claims(ctx):
        st.caption(
            f"To store claims with the run for the exports: python -m audits claims {ctx.path} claims.toml"
        )


def render(ctx: PageContext) -> None:
    report_file = ctx.path / "integrity.json"
    report = None
    with guard("The integrity report", report_file):
        report = data.read_json(report_file)
    summary = ctx.meta.get("integrity")
    tabs = st.tabs(["Leakage", "Suspect labels", "Slices", "Claims"])
    if report is None:
        reason = summary.get("error") if isinstance(summary, dict) else None
        for tab in tabs[:3]:
            with tab:
                empty_state(
                    "No integrity results in this run",
                    f"python -m audits run --model <model dir> --data {get(ctx.meta, 'dataset', 'path', default='<held-out set>')}",
                    (f"The integrity stage did not run: {esc(reason)}. " if reason else "")
                    + "A new audit runs the leakage, suspect-label and slice checks (runs are immutable, so an old run is not changed).",
                )
    else:
        with tabs[0], guard("The leakage check", report_file):
            leakage(ctx, report)
        with tabs[1], guard("The suspect labels", report_file):
            suspect_labels(ctx, report)
        with tabs[2], guard("The slices", report_file):
            slices(ctx, report)
    with tabs[3], guard("The claims", ctx.path):
        claims(ctx)


if __name__ == "__main__":
    run_page(
        render,
        "Integrity & claims",
        "Can the numbers be trusted — and is what people say about the model true?",
    )
