"""One module per dashboard page; each runs as a script under st.navigation (see dashboard/app.py)."""
