"""Export: download the PDF, HTML, JSON and CSV exports of the selected run (made on click)."""

from __future__ import annotations

import importlib
import io
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import data
from dashboard.components import empty_state, esc, guard
from dashboard.page import PageContext, run_page

log = logging.getLogger("dashboard")

FORMATS = {
    "pdf": ("PDF report", "A printable report for clients and executives: summary, charts, tables, versions.", "application/pdf", ":material/picture_as_pdf:"),
    "html": ("HTML report", "The same report as one self-contained web page (works offline, no server).", "text/html", ":material/html:"),
    "json": ("JSON", "Every stored number, with a published JSON Schema, for other tools.", "application/json", ":material/data_object:"),
    "csv": ("CSV tables", "Per-class metrics, confusion matrix and predictions as spreadsheets (ZIP).", "application/zip", ":material/table_view:"),
}  # fmt: skip


def exporter() -> Any | None:
    """``reports.export.export_run`` when the exports package is installed, else None."""
    try:
        module = importlib.import_module("reports.export")
    except ImportError as exc:
        log.info("exports unavailable: %s", exc)
        return None
    return getattr(module, "export_run", None)


@st.cache_data(show_spinner=False, max_entries=32)
def build(run_dir: str, stamp: int, fmt: str) -> tuple[str, bytes]:
    """(file name, bytes) of one export; a format with several files comes as a ZIP.

    Cached per run and mtime: a second click downloads at once, and runs are immutable.
    """
    export_run = exporter()
    if export_run is None:
        raise RuntimeError("the exports package (reports.export) is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="audit-export-"))
    try:
        out = Path(export_run(Path(run_dir), [fmt], tmp))
        folder = out if out.is_dir() else out.parent
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == f".{fmt}"
        )
        run_id = Path(run_dir).name
        if len(files) == 1 and fmt != "csv":
            return f"{run_id}{files[0].suffix}", files[0].read_bytes()
        if not files:
            files = sorted(p for p in folder.rglob("*") if p.is_file())
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files:
                z.write(f, f.relative_to(folder).as_posix())
            manifest = next(folder.rglob("MANIFEST*"), None) or next(
                folder.rglob("manifest*.json"), None
            )
            if manifest is not None and manifest not in files:
                z.write(manifest, manifest.relative_to(folder).as_posix())
        return f"{run_id}-{fmt}.zip", buf.getvalue()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render(ctx: PageContext) -> None:
    st.markdown(
        f"Exports of run `{esc(ctx.info.run_id)}` ({esc(ctx.info.model)} {esc(ctx.info.version)}). They are made from "
        "the same stored numbers as these pages, so the screen and the documents always agree. Each file is "
        "created when you click, then kept for the session.",
        unsafe_allow_html=True,
    )
    export_run = exporter()
    if export_run is None:
        empty_state(
            "Exports are not available in this installation",
            f"python -m audits export {ctx.path} --format pdf,html,json,csv --out exports/",
            "The dashboard makes the files with the `reports` package; install it or use the command line.",
        )
        return
    stamp = data.mtime(ctx.path)
    cols = st.columns(4)
    for col, (fmt, (title, what, mime, icon)) in zip(cols, FORMATS.items(), strict=True):
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{title}**")
            st.caption(what)
            ext = "zip" if fmt == "csv" else fmt

            def make(fmt: str = fmt) -> bytes:
                return build(str(ctx.path), stamp, fmt)[1]

            st.download_button(
                f"Download {fmt.upper()}",
                make,
                file_name=f"{ctx.info.run_id}.{ext}",
                mime=mime,
                icon=icon,
                key=f"export_{fmt}",
                type="primary" if fmt == "pdf" else "secondary",
                width="stretch",
                on_click="ignore",
            )
    st.caption(
        f"Every export carries an integrity manifest; check a received copy with `python -m audits verify <folder>`. "
        f"Command line equivalent: `python -m audits export {ctx.path} --format pdf,html,json,csv --out exports/`."
    )
    with guard("The run's files", ctx.path), st.expander("Files in this run folder"):
        rows = []
        for p in sorted(ctx.path.rglob("*")):
            if p.is_file() and len(rows) < 200:
                rows.append(
                    {
                        "file": p.relative_to(ctx.path).as_posix(),
                        "size (KB)": round(p.stat().st_size / 1024, 1),
                    }
                )
        st.dataframe(rows, hide_index=True, width="stretch", height=260)


if __name__ == "__main__":
    run_page(
        render,
        "Export",
        "Take the results with you: a client-ready PDF, an offline HTML page, and the raw data.",
    )
