"""Where the store is and which run is selected; the selection lives in the URL.

The selection is a run id. It is read from ``?run=`` first (a shared link wins), then from
the session (it survives page changes even when the page link drops the query string), then
defaults to the newest demo run. Every run writes it back to ``st.query_params`` so the
address bar always holds a link to the current view.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard.catalog import Catalog, RunInfo
from dashboard.markdown import md_code, md_escape

STORE_ENV = "AUDIT_STORE"
DEFAULT_STORE = "audit-store"
DEMO_MODEL = "car-variants"
QUERY_KEY = "run"
SESSION_KEY = "selected_run"
REPO_ROOT = Path(__file__).resolve().parent.parent


def store_path(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Path:
    """The store: ``streamlit run streamlit_app.py -- --store DIR``, else $AUDIT_STORE, else ./audit-store.

    Only ``--store`` is read from the command line: under pytest/AppTest ``sys.argv`` belongs to
    pytest, and a positional argument there must not be mistaken for a store.
    """
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--store")
    known, _ = parser.parse_known_args(argv)
    if known.store:
        return Path(known.store).expanduser()
    if env.get(STORE_ENV):
        return Path(env[STORE_ENV]).expanduser()
    here = Path(DEFAULT_STORE)
    # The README starts the app from the repository root; fall back to it from elsewhere.
    return (
        here
        if here.is_dir() or not (REPO_ROOT / DEFAULT_STORE).is_dir()
        else REPO_ROOT / DEFAULT_STORE
    )


def default_run(catalog: Catalog) -> RunInfo | None:
    """The newest audit run of the bundled demo model, else the newest audit run."""
    audits = catalog.audits
    demo = [r for r in audits if r.model == DEMO_MODEL]
    return (demo or audits or [None])[0]


@dataclass(frozen=True)
class Selection:
    """The run the pages render (None when the store has no audit run)."""

    store: Path
    run: RunInfo | None
    note: str | None = None  # Markdown, data escaped: a shared link named an unknown run


def resolve(catalog: Catalog, from_url: str | None, from_session: str | None) -> Selection:
    """Pick the run: URL, then session, then the default. Pure, so it is unit-testable."""
    note = None
    for candidate in (from_url, from_session):
        if not candidate:
            continue
        info = catalog.get(candidate)
        if info is not None and info.kind == "audit":
            return Selection(catalog.store, info)
        broken = next((b for b in catalog.broken if b.name == candidate), None)
        if candidate == from_url and broken is not None:
            note = (
                f"The link names run {md_code(candidate)}, which cannot be read "
                f"({md_escape(broken.reason)}); showing the newest run instead."
            )
        elif candidate == from_url:
            # The value comes from the address bar: a code span it cannot close (no links).
            note = (
                f"The link names run {md_code(candidate, limit=120)}, which is not an audit "
                f"run in {md_code(catalog.store)}; showing the newest run instead."
            )
    return Selection(catalog.store, default_run(catalog), note)


def _query_value() -> str | None:
    value = st.query_params.get(QUERY_KEY)
    return value or None


def select(catalog: Catalog) -> Selection:
    """Resolve the selection for this script run and mirror it into the session and the URL."""
    sel = resolve(catalog, _query_value(), st.session_state.get(SESSION_KEY))
    if sel.run is not None:
        st.session_state[SESSION_KEY] = sel.run.run_id
        if st.query_params.get(QUERY_KEY) != sel.run.run_id:
            st.query_params[QUERY_KEY] = sel.run.run_id
    return sel


def choose(run_id: str) -> None:
    """Make ``run_id`` the selection (widget callbacks call this before the script reruns)."""
    st.session_state[SESSION_KEY] = run_id
    st.query_params[QUERY_KEY] = run_id


def current() -> Selection:
    """The selection the entry script resolved in this run (pages call this)."""
    sel = st.session_state.get("_selection")
    if isinstance(sel, Selection):
        return sel
    from dashboard.data import catalog  # a page run without the entry script (should not happen)

    return select(catalog(str(store_path())))
