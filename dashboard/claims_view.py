"""Claims typed on the Integrity page: a guided form, a TOML box, and the verdicts.

Claims are checked by ``audits.claims.evaluate_claims`` against the run's stored predictions;
stored claim results (``claims-*/claims.json`` written by ``python -m audits claims``) are shown too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from audits.errors import AuditError
from audits.runs import StoredClaims
from audits.runs.models_claims import ClaimResult
from dashboard.components import esc
from dashboard.page import PageContext
from dashboard.slicing import column_kinds, slice_options

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
    """The run's ``claims-*/`` results, in folder-name order."""
    return sorted(ctx.run.claims, key=lambda c: c.path.name)


def typed_results(results: Sequence[ClaimResult | Mapping[str, Any]]) -> list[ClaimResult]:
    """Claim results as records (``evaluate_claims`` returns the dicts it would store)."""
    return [r if isinstance(r, ClaimResult) else ClaimResult.from_dict(dict(r)) for r in results]


def show_results(results: Sequence[ClaimResult]) -> None:
    for r in results:
        color, icon = VERDICT_STYLE.get(r.verdict, ("gray", ":material/help:"))
        with st.container(border=True):
            st.markdown(
                f":{color}-badge[{icon} {r.verdict}] **{esc(r.text or r.kind)}**",
                unsafe_allow_html=True,
            )
            if r.sentence:
                st.markdown(esc(r.sentence), unsafe_allow_html=True)
            if r.reason:
                st.caption(r.reason)


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
    from audits.claims import evaluate_claims

    st.markdown(
        "Type what someone said about the model; it is checked against this run's stored predictions with a 95% interval. "
        "Verdicts: **supported**, **contradicted**, or **not enough data**."
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
            results = typed_results(evaluate_claims(ctx.run, typed))
        except AuditError as exc:
            st.error(f"The claim cannot be checked: {exc}")
        else:
            st.session_state["claims_results"] = (ctx.info.run_id, results)
    saved = st.session_state.get("claims_results")
    if saved and saved[0] == ctx.info.run_id:
        st.markdown("#### Checked on this page")
        show_results(saved[1])
    kept = stored_claims(ctx)
    for found in kept:
        record = found.record
        st.markdown(
            f"#### Stored claims file `{esc(record.claims_file)}` · checked {esc(record.created)}"
        )
        show_results(record.results)
    if not saved and not kept:
        st.caption(
            f"To store claims with the run for the exports: python -m audits claims {ctx.path} claims.toml"
        )
