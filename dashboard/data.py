"""Cached reads of the store. Nothing here computes a metric: it opens what audits/ stored.

Keys are the run folder's path plus its modification time (a run gains sub-folders such as
``explain/`` or ``claims-*/`` later; the folder's mtime changes when it does). Big objects
(tables, Run objects) use ``cache_resource``: they are shared read-only and never copied; a
cached Run keeps the typed records it has read (``audits.runs.StoredRun``), so each file of a
run is parsed once. Small derived values use ``cache_data``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from audits.related import RunBundle, bundle
from audits.store import Run, load_run
from dashboard.catalog import Catalog, scan, signature
from reports.present.palette import SURFACE, rgb

log = logging.getLogger("dashboard")


def mtime(path: Path) -> int:
    """A folder's or file's mtime in ns (0 when missing), for cache keys."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner=False, max_entries=8)
def _catalog(store: str, sig: tuple) -> Catalog:
    return scan(Path(store))


def catalog(store: str) -> Catalog:
    """Runs in the store; rescanned only when a run folder appears, goes or changes."""
    return _catalog(store, signature(Path(store)))


@st.cache_resource(show_spinner=False, max_entries=32)
def _run(path: str, stamp: int) -> Run:
    return load_run(path)


def run(path: Path) -> Run:
    """A Run; its records, table and arrays are read lazily once and then shared."""
    return _run(str(path), mtime(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _table(path: str, stamp: int) -> pd.DataFrame:
    return _run(path, stamp).table


def table(path: Path) -> pd.DataFrame:
    """The predictions table (read-only: callers filter, never mutate)."""
    return _table(str(path), mtime(path))


#: Columns no page filters or shows in a gallery: the top-k lists (the largest part of a big
#: table in memory), file hashes and image sizes. Every other column, metadata included, is read.
HEAVY_COLUMNS = ("topk_idx", "topk_prob", "file_sha256", "width", "height")


@st.cache_resource(show_spinner=False, max_entries=8)
def _view(path: str, stamp: int) -> pd.DataFrame:
    table = _run(path, stamp).predictions  # footer only; the projection reads the rest
    return table.read([c for c in table.columns if c not in HEAVY_COLUMNS])


def view(path: Path) -> pd.DataFrame:
    """The predictions table without ``HEAVY_COLUMNS``, read column-projected (read-only).
    Same rows, index and metadata columns as ``table``; on a 1M-row, 250-class run it took
    0.55 GB and a third of the full read's time (1.25 GB)."""
    return _view(str(path), mtime(path))


@st.cache_resource(show_spinner=False, max_entries=64)
def _row(path: str, stamp: int, row: int) -> pd.DataFrame:
    return _run(path, stamp).rows([("row", "=", int(row))])


def row(path: Path, row: int) -> pd.DataFrame:
    """The predictions row whose ``row`` is ``row`` (every column, top-k lists included), read
    through a filter: one image's details never load a 1M-row table."""
    return _row(str(path), mtime(path), int(row))


@st.cache_resource(show_spinner=False, max_entries=16)
def _bundle(path: str, stamp: int, store_sig: tuple) -> RunBundle:
    audit = _run(path, stamp)
    return bundle(audit, Path(path).parent)


def related(path: Path) -> RunBundle:
    """The audit run with its drift run, comparison and previous run (audits.related)."""
    return _bundle(str(path), mtime(path), signature(path.parent))


@st.cache_data(show_spinner=False, max_entries=512)
def _thumbnail(file: str, stamp: int, size: int, aspect: float | None) -> bytes | None:
    import io

    from PIL import Image

    try:
        with Image.open(file) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            if aspect:  # letterbox onto a fixed shape so a gallery's cards line up
                h = img.height
                w = max(img.width, round(h * aspect))
                canvas = Image.new("RGB", (w, h), rgb(SURFACE))
                canvas.paste(img, ((w - img.width) // 2, 0))
                img = canvas
            out = io.BytesIO()
            img.save(out, format="PNG")
            return out.getvalue()
    except Exception as exc:  # a broken image is shown as a placeholder, never a crash
        log.warning("thumbnail %s: %s", file, exc)
        return None


def thumbnail(file: Path, size: int = 320, aspect: float | None = None) -> bytes | None:
    """A small PNG of an image file (letterboxed to ``aspect`` = width/height when given), or
    None when the file is missing or unreadable."""
    if not file.is_file():
        return None
    return _thumbnail(str(file), mtime(file), size, aspect)
