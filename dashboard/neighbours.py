"""The newer version that replaced the selected run, shown on its pages (Overview, Compare)."""

from __future__ import annotations

import streamlit as st

from audits.related import RunBundle
from dashboard.components import esc
from reports.present import neighbours


def superseded_banner(b: RunBundle) -> bool:
    """An info box naming the newer compared version and its verdict; False when there is none."""
    sentence = neighbours.superseded_sentence(b)
    if sentence is None:
        return False
    st.markdown(
        f'<div class="ma-superseded" style="border-left:4px solid #1f6feb;padding:.5rem .9rem;'
        f'margin:.2rem 0 .8rem 0;background:rgba(31,111,235,.07);border-radius:4px">'
        f"{esc(sentence)}</div>",
        unsafe_allow_html=True,
    )
    return True
