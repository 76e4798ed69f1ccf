"""Export: download the PDF, HTML, JSON and CSV exports of the selected run (made on click)."""

from __future__ import annotations

import importlib
import io
import logging
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import data
from dashboard.components import empty_state, esc, guard
from dashboard.markdown import md_code
from dashboard.page import PageContext, run_page
from reports.present.fmt import num

log = logging.getLogger("dashboard")

FORMATS = {  # key: (title, what it is, mime, icon, file suffix)
    "pdf": (
        "PDF report",
        "A printable report for clients and executives: summary, charts, tables, versions.",
        "application/pdf",
        ":material/picture_as_pdf:",
        "-report.pdf",
    ),
    "html": (
        "HTML report",
        "The same report as one self-contained web page that works offline.",
        "text/html",
        ":material/html:",
        "-report.html",
    ),
    "json": (
        "JSON data",
        "Every stored number in one file, following a published JSON Schema.",
        "application/json",
        ":material/data_object:",
        "-audit.json",
    ),
    "csv": (
        "CSV tables",
        "Per-class metrics, the confusion matrix and every prediction, as spreadsheets (ZIP).",
        "application/zip",
        ":material/table_view:",
        "-csv.zip",
    ),
    "all": (
        "Everything",
        "All four formats with the integrity manifest, ready for python -m audits verify (ZIP).",
        "application/zip",
        ":material/folder_zip:",
        "-export.zip",
    ),
}


def exporter() -> Any | None:
    """The ``reports.export`` module when the exports package is installed, else None."""
    try:
        return importlib.import_module("reports.export")
    except ImportError as exc:
        log.info("exports unavailable: %s", exc)
        return None


def _zip(folder: Path, files: list[Path], top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"{top}/{f.relative_to(folder).as_posix()}")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=32)
def build(run_dir: str, stamp: int, fmt: str) -> bytes:
    """The bytes of one download, made by reports.export.export_run in a temporary folder.

    Cached per run folder and mtime: runs are immutable, so a second click is instant.
    """
    module = exporter()
    if module is None:
        raise RuntimeError("the exports package (reports.export) is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="audit-export-"))
    try:
        formats = list(FORMATS)[:4] if fmt == "all" else [fmt]
        folder = Path(module.export_run(Path(run_dir), formats, tmp, store=Path(run_dir).parent))
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if fmt in ("pdf", "html", "json"):
            suffix = FORMATS[fmt][4]
            return next(p for p in files if p.name.endswith(suffix)).read_bytes()
        # CSV and everything: the folder as exported, manifest included, so verify works.
        return _zip(folder, files, folder.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Formats that take seconds to make (charts drawn, pages laid out): made by a button that
#: shows its progress, then offered for download (the bytes stay cached for the session).
SLOW = ("pdf", "html", "all")
_STEPS = (
    "reading the stored run, its drift run and its comparison",
    "drawing the charts and laying out the pages",
    "writing the files and their sha256 manifest",
)


def prepared(run_dir: str, stamp: int, fmt: str) -> bool:
    return st.session_state.get(f"export_ready_{fmt}") == (run_dir, stamp)


def prepare(run_dir: str, stamp: int, fmt: str, title: str) -> None:
    """Make one export with its progress shown (the first PDF takes seconds)."""
    with st.status(f"Making the {title}…", expanded=True) as status:
        for step in _STEPS:
            st.write(step)
        start = time.monotonic()
        build(run_dir, stamp, fmt)
        status.update(label=f"{title} ready ({time.monotonic() - start:.1f} s)", state="complete")
    st.session_state[f"export_ready_{fmt}"] = (run_dir, stamp)


def file_name(module: Any, ctx: PageContext, fmt: str) -> str:
    stem = module.file_stem(ctx.run) if hasattr(module, "file_stem") else ctx.info.run_id
    return f"{stem}{FORMATS[fmt][4]}"


def render(ctx: PageContext) -> None:
    st.markdown(
        f"Exports of run `{esc(ctx.info.run_id)}` ({esc(ctx.info.model)} {esc(ctx.info.version)}), with its drift run "
        "and comparison when the store has them. They are made from the same stored numbers as these pages, so "
        "the screen and the documents always agree. A file is made when you click (the PDF takes a few seconds, "
        "with its progress shown), then kept for the session.",
        unsafe_allow_html=True,
    )
    module = exporter()
    if module is None:
        empty_state(
            "Exports are not available in this installation",
            f"python -m audits export {ctx.path} --format pdf,html,json,csv --out exports/",
            "The dashboard makes the files with the `reports` package; install it or use the command line.",
        )
        return
    stamp = data.mtime(ctx.path)
    run_dir = str(ctx.path)
    for row in (list(FORMATS)[:3], list(FORMATS)[3:]):
        cols = st.columns(3)
        for col, fmt in zip(cols, row, strict=False):
            title, what, mime, icon, _ = FORMATS[fmt]
            with col.container(border=True, height="stretch"):
                st.markdown(f"**{title}**")
                st.caption(what)

                def make(fmt: str = fmt) -> bytes:
                    return build(run_dir, stamp, fmt)

                if fmt in SLOW and not prepared(run_dir, stamp, fmt):
                    if st.button(
                        f"Make the {title.split()[0] if fmt != 'all' else 'files'}",
                        key=f"make_{fmt}",
                        icon=icon,
                        type="primary" if fmt == "pdf" else "secondary",
                        width="stretch",
                    ):
                        prepare(run_dir, stamp, fmt, title)
                        st.rerun()
                    continue
                st.download_button(
                    f"Download {title.split()[0] if fmt != 'all' else 'all'}",
                    make,
                    file_name=file_name(module, ctx, fmt),
                    mime=mime,
                    icon=icon,
                    key=f"export_{fmt}",
                    type="primary" if fmt == "pdf" else "secondary",
                    width="stretch",
                    on_click="ignore",
                )
    st.caption(
        "Every export carries an integrity manifest (sha256 of each file); check a received copy with "
        "`python -m audits verify <folder>`. Command line: "
        + md_code(f"python -m audits export {ctx.path} --format pdf,html,json,csv --out exports/")
        + "."
    )
    with guard("The run's files", ctx.path), st.expander("Files in this run folder"):
        rows = []
        for p in sorted(ctx.path.rglob("*")):
            if p.is_file() and len(rows) < 200:
                rows.append(
                    {
                        "file": p.relative_to(ctx.path).as_posix(),
                        "size (KB)": num(p.stat().st_size / 1024, 1),
                    }
                )
        st.dataframe(rows, hide_index=True, width="stretch", height=260)


if __name__ == "__main__":
    run_page(
        render,
        "Export",
        "Take the results with you: a client-ready PDF, an offline HTML page, and the raw data.",
    )
