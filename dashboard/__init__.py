"""Streamlit dashboard: renders stored audit runs (never recomputes a metric). Entry: streamlit_app.py."""
