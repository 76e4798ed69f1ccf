"""Claims on the Integrity page: a guided form, a TOML box, and every stored claim.

A claim checked here is stored with the run exactly as ``python -m audits claims`` stores a
file (``audits.claims_store``: a new ``claims-<sha>/`` folder with ``claims.json`` and the
thumbnails of the images behind each claim), so it reaches the exports. The page then lists
every stored claim of the run, newest first, with its verdict, interval, how the slice scan
answered the same question, and the images behind it.
"""

from __future__ import annotations

import html
import re
import tomllib
from collections.abc import Sequence
from typing import Any

import streamlit as st

from audits.errors import AuditError
from audits.runs import StoredClaims, open_run
from audits.runs.models_claims import ClaimResult
from dashboard import data
from dashboard.components import esc
from dashboard.page import PageContext
from dashboard.slicing import column_kinds, slice_options
from reports.present import fmt

VERDICT_STYLE = {
    "supported": ("green", ":material/check_circle:"),
    "contradicted": ("red", ":material/cancel:"),
    "not enough data": ("orange", ":material/help:"),
}
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


def stored_claims(ctx: PageContext) -> list[StoredClaims]:
    """The run's ``claims-*/`` results, newest first (read afresh: one may have just been added)."""
    return open_run(ctx.path).claims


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~$-])")


def plain(text: Any) -> str:
    """User text for st.markdown: HTML-escaped and with Markdown's special characters escaped."""
    return _MARKDOWN.sub(r"\\\1", html.escape(str(text), quote=False))


def _interval(r: ClaimResult) -> str:
    if r.ci_low is None or r.ci_high is None:
        return ""
    if r.kind in ("lower", "higher"):
        return f"difference {fmt.pts(r.measured)}, 95% CI {fmt.pts_ci(r.ci_low, r.ci_high)}"
    return f"{fmt.pct(r.measured)}, 95% CI {fmt.ci(r.ci_low, r.ci_high)}"


def images_behind(ctx: PageContext, r: ClaimResult) -> None:
    """Thumbnails of the images behind a claim (stored with it), failures first."""
    shown = [(e, ctx.run.thumb(e.thumb)) for e in (r.examples or []) if e.thumb]
    shown = [(e, f) for e, f in shown if f is not None]
    if not shown:
        return
    total = r.n_behind if r.n_behind is not None else len(shown)
    st.caption(f"{fmt.count(len(shown))} of the {fmt.count(total)} images behind this claim:")
    for i in range(0, len(shown), 6):
        cols = st.columns(6)
        for col, (e, file) in zip(cols, shown[i : i + 6], strict=False):
            img = data.thumbnail(file, 160)
            if img:
                col.image(img, width="stretch")
            mark = "" if e.correct is None else (" ✓" if e.correct else " ✗")
            col.caption(f"{e.label or '?'} → {e.pred or '?'}{mark}")


def show_results(results: Sequence[ClaimResult], ctx: PageContext | None = None) -> None:
    for r in results:
        color, icon = VERDICT_STYLE.get(r.verdict, ("gray", ":material/help:"))
        with st.container(border=True):
            st.markdown(
                f":{color}-badge[{icon} {r.verdict}] **{plain(r.text or r.kind)}**",
                unsafe_allow_html=True,
            )
            interval = _interval(r)
            if interval:
                st.caption(interval)
            if r.sentence:
                st.markdown(plain(r.sentence), unsafe_allow_html=True)
            if r.reason:
                st.caption(plain(r.reason))
            if r.scan_note:
                st.info(plain(r.scan_note), icon=":material/rule:")
            if ctx is not None:
                images_behind(ctx, r)


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


def _fields(kind: str, options: list[str], classes: list[str]) -> dict[str, Any]:
    """The form's fields for one kind of claim (inside the form), with their values."""
    compare, share = kind in ("lower", "higher"), kind.startswith("share")
    f: dict[str, Any] = {
        "metric": "accuracy",
        "group": options[0],
        "than": "the rest",
        "value": 80.0,
    }
    c1, c2, c3 = st.columns(3)
    if kind == "confused_more_than":
        f["true"] = c1.selectbox("Images of", classes)
        f["with"] = c2.selectbox("Mistaken for", classes, index=min(1, len(classes) - 1))
        f["value"] = c3.number_input("More than (%)", 0.0, 100.0, 10.0, 1.0)
        return f
    f["group"] = c1.selectbox(
        "Group (slice)",
        options if not compare else options[1:] or options,
        help="The images the claim is about, by a metadata value.",
    )
    if compare:
        f["than"] = c2.selectbox("Compared with", ["the rest", *options[1:]])
    elif share:
        f["value"] = c2.number_input("Share (%)", 0.0, 100.0, 50.0, 1.0)
    else:
        f["value"] = c2.number_input(
            "Value (%)", 0.0, 100.0, 80.0, 1.0, help="The threshold the claim states."
        )
    if not share:
        f["metric"] = c3.selectbox(
            "Measured by",
            ["accuracy", *[f"recall:{c}" for c in classes]],
            format_func=lambda m: (
                "accuracy" if m == "accuracy" else f"accuracy on {m.split(':', 1)[1]}"
            ),
        )
    return f


def _claim(kind: str, text: str, f: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    """The claim as evaluate_claims reads it, from the submitted fields."""
    claim: dict[str, Any] = {"text": text or KIND_LABELS[kind], "kind": kind}
    if kind == "confused_more_than":
        claim.update({"class": f["true"], "with": f["with"], "value": f["value"] / 100})
    elif kind in ("lower", "higher"):
        claim.update({"metric": f["metric"], "slice": slice_spec(f["group"], kinds)})
        if f["than"] != "the rest":
            claim["than"] = slice_spec(f["than"], kinds)
    elif kind.startswith("share"):
        claim.update({"slice": slice_spec(f["group"], kinds), "value": f["value"] / 100})
    else:
        claim.update(
            {
                "metric": f["metric"],
                "slice": slice_spec(f["group"], kinds),
                "value": f["value"] / 100,
            }
        )
    return claim


def claim_form(ctx: PageContext) -> list[dict[str, Any]] | None:
    """A guided form for one claim (its fields follow the kind picked above it); the claim when submitted."""
    options, _ = slice_options(ctx.path)
    # The kind lives outside the form so that changing it redraws the form with its own fields.
    kind = st.selectbox(
        "What kind of claim", list(KIND_LABELS), format_func=KIND_LABELS.get, key="claim_kind"
    )
    with st.form("claim_form", border=True):
        text = st.text_input(
            "The claim, in the words it was made",
            placeholder="e.g. Fan photos are harder than dealer photos",
        )
        fields = _fields(kind, options, ctx.classes)
        submitted = st.form_submit_button(
            "Check this claim", type="primary", icon=":material/fact_check:"
        )
    return [_claim(kind, text, fields, column_kinds(ctx.path))] if submitted else None


def claims(ctx: PageContext) -> None:
    from audits.claims_store import check_typed_claims

    st.markdown(
        "Type what someone said about the model; it is checked against this run's stored predictions with a 95% interval "
        "and stored with the run, so the exports include it. Verdicts: **supported**, **contradicted**, or **not enough data**."
    )
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
            saved = check_typed_claims(ctx.run, typed)
        except AuditError as exc:
            st.error(f"The claim cannot be checked: {esc(exc)}")
        except OSError as exc:  # e.g. a read-only store
            st.error(f"The claim was checked but cannot be stored in {esc(ctx.path)}: {esc(exc)}")
        else:
            where = saved.folder.name
            st.success(
                f"Checked on this page and stored with the run ({where})"
                + (": these claims had been checked before." if saved.existed else "."),
                icon=":material/save:",
            )
    kept = stored_claims(ctx)
    if kept:
        n = sum(len(k.record.results) for k in kept)
        st.markdown(f"#### Every claim checked against this run ({fmt.count(n)}, newest first)")
    for found in kept:
        record = found.record
        origin = "typed on this page" if record.source == "dashboard" else record.claims_file
        st.markdown(f"##### {plain(origin)} · checked {esc(record.created)}")
        show_results(record.results, ctx)
    if not kept:
        st.caption(
            "No claim has been checked against this run yet. From the command line: "
            f"python -m audits claims {ctx.path} claims.toml"
        )
