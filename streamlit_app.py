"""Model audit dashboard: ``streamlit run streamlit_app.py`` (store: $AUDIT_STORE or ``-- --store DIR``)."""

import streamlit as st

st.set_page_config(
    page_title="Model audit",
    page_icon=":material/fact_check:",
    layout="wide",
    initial_sidebar_state="expanded",
)

from dashboard.app import main  # noqa: E402 - page config must come first

main()
