"""The frame around every page: navigation, the run picker in the sidebar, the selection."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboard import data, state
from dashboard.catalog import Catalog
from dashboard.components import inject_css
from dashboard.markdown import md_code, md_escape
from reports.present import fmt
from reports.present.rows import record_or_none

log = logging.getLogger("dashboard")

# (file stem, title, material icon); sections group them in the sidebar.
SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "Audit": [
        ("overview", "Overview", ":material/summarize:"),
        ("classes", "Classes", ":material/bar_chart:"),
        ("confusion", "Confusion", ":material/grid_on:"),
        ("failures", "Failures", ":material/image_search:"),
        ("embeddings", "Embedding map", ":material/scatter_plot:"),
    ],
    "Checks": [
        ("drift", "Drift", ":material/trending_up:"),
        ("compare", "Compare", ":material/compare_arrows:"),
        ("history", "History", ":material/timeline:"),
        ("integrity", "Integrity & claims", ":material/verified_user:"),
    ],
    "Act": [("review", "Review", ":material/fact_check:")],
    "Share": [("export", "Export", ":material/download:")],
}


def _pages() -> dict[str, list[st.Page]]:
    return {
        section: [
            st.Page(
                f"dashboard/pages/{stem}.py",
                title=title,
                icon=icon,
                url_path=stem,
                default=stem == "overview",
            )
            for stem, title, icon in items
        ]
        for section, items in SECTIONS.items()
    }


def _on_pick(cat: Catalog, level: str) -> None:
    """A picker changed: select the newest run under the new model/version, or the chosen run."""
    model = st.session_state.get("pick_model")
    if level == "run":
        state.choose(st.session_state["pick_run"])
        return
    versions = cat.versions(model)
    version = (
        st.session_state.get("pick_version") if level == "version" else (versions or [None])[0]
    )
    runs = cat.runs_of(model, version)
    if runs:
        state.choose(runs[0].run_id)


def sidebar(cat: Catalog, sel: state.Selection) -> None:
    """Model, version and run pickers, the related runs, and the store's health."""
    with st.sidebar:
        if sel.run is None:
            st.caption(f"Store {md_code(cat.store)} has no audit runs.")
        else:
            run = sel.run
            # Seed the pickers from the selection (URL or session) before they are drawn.
            st.session_state["pick_model"] = run.model
            st.session_state["pick_version"] = run.version
            st.session_state["pick_run"] = run.run_id
            st.selectbox(
                "Model", cat.models(), key="pick_model", on_change=_on_pick, args=(cat, "model")
            )
            st.selectbox(
                "Version",
                cat.versions(run.model),
                key="pick_version",
                on_change=_on_pick,
                args=(cat, "version"),
            )
            labels = {r.run_id: r.label for r in cat.runs_of(run.model, run.version)}
            st.selectbox(
                "Audit run",
                list(labels),
                key="pick_run",
                format_func=lambda r: labels.get(r, r),
                on_change=_on_pick,
                args=(cat, "run"),
                help="Runs are immutable; each audit of the same model version is listed by time.",
            )
            _related(sel)
        st.caption(f"Store: {md_code(cat.store)} · {fmt.count(len(cat.runs))} run(s)")
        if cat.in_progress:
            st.caption(
                f"{fmt.count(len(cat.in_progress))} run(s) still being written (not shown until complete)."
            )
        if cat.broken:
            with st.expander(
                f"{fmt.count(len(cat.broken))} folder(s) could not be read (skipped)",
                icon=":material/warning:",
            ):
                for b in cat.broken:  # names and reasons come from the files: escaped
                    st.markdown(f"{md_code(b.name)}: {md_escape(b.reason)}")


def _related(sel: state.Selection) -> None:
    """One line each for the drift run and the comparison found for this model version."""
    try:
        b = data.related(sel.run.path)
    except Exception as exc:  # the picker must survive a damaged neighbour
        log.warning("related runs of %s: %s", sel.run.path, exc)
        return
    lines = []
    drift = record_or_none(b.drift, "drift")  # an unreadable one is left out here
    if drift is not None:
        lines.append(f"Drift run: {'drift found' if drift.drift else 'no drift'}")
    comparison = record_or_none(b.comparison, "comparison")
    if comparison is not None:
        lines.append(f"Release gate: **{fmt.text(comparison.verdict)}**")
    if lines:
        st.caption(" · ".join(lines))


ASSETS = Path(__file__).resolve().parent / "assets"


def main() -> None:
    """Entry point called by streamlit_app.py on every script run."""
    inject_css()
    st.logo(str(ASSETS / "logo.svg"), size="large", icon_image=str(ASSETS / "icon.svg"))
    store = state.store_path()
    try:
        cat = data.catalog(str(store))
    except Exception as exc:  # an unreadable store still gets a page
        log.exception("store %s", store)
        cat = Catalog(store=store)
        st.error(f"The store {md_code(store)} could not be read: {md_escape(exc)}")
    sel = state.select(cat)
    st.session_state["_selection"] = sel
    nav = st.navigation(_pages())
    sidebar(cat, sel)
    nav.run()
