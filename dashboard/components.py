"""Reusable page pieces: header, metric cards, version block, empty states, guards, pagination."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audits.errors import AuditError
from audits.runs import AuditRecord, Part
from audits.runs.base import DeviceInfo, ModelInfo
from audits.runs.models_audit import DatasetInfo
from audits.runs.models_integrity import SuspectRow
from reports.present import fmt
from reports.present.palette import (
    BAD,
    BAD_BG,
    BAD_TEXT,
    BORDER,
    CHIP,
    CHIP_EDGE,
    GOOD,
    GOOD_BG,
    GOOD_TEXT,
    GRID,
    INK,
    INK_SOFT,
    MUTED,
    SURFACE,
    SURFACE_ALT,
    WARN,
    WARN_BG,
    WARN_TEXT,
)

log = logging.getLogger("dashboard")

_ROOT = (
    f":root {{--ma-ink: {INK}; --ma-soft: {INK_SOFT}; --ma-muted: {MUTED}; --ma-grid: {GRID}; "
    f"--ma-border: {BORDER}; --ma-surface: {SURFACE}; --ma-surface-alt: {SURFACE_ALT}; "
    f"--ma-chip: {CHIP}; --ma-chip-edge: {CHIP_EDGE}; --ma-good: {GOOD}; --ma-bad: {BAD}; "
    f"--ma-warn: {WARN}; --ma-good-bg: {GOOD_BG}; --ma-good-text: {GOOD_TEXT}; "
    f"--ma-warn-bg: {WARN_BG}; --ma-warn-text: {WARN_TEXT}; --ma-bad-bg: {BAD_BG}; "
    f"--ma-bad-text: {BAD_TEXT};}}"
)
# Colours come from the shared palette (reports.present.palette) through the variables above.
CSS = """
<style>
ROOT
.block-container {padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1320px;}
h1 {font-weight: 650; letter-spacing: -0.01em;}
h2, h3 {font-weight: 600; letter-spacing: -0.005em;}
.ma-sub {color: var(--ma-soft); margin: -0.6rem 0 1.1rem 0; font-size: 0.98rem;}
.ma-chip {display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem;
          color: var(--ma-ink); background: var(--ma-chip); border-left: 0.6rem solid var(--c); white-space: nowrap;
          max-width: 100%; overflow: hidden; text-overflow: ellipsis; vertical-align: middle;}
.ma-kv {display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 0.2rem 0.9rem; font-size: 0.86rem;}
.ma-kv dt {color: var(--ma-soft); overflow-wrap: anywhere;} .ma-kv dd {margin: 0; min-width: 0; color: var(--ma-ink); overflow-wrap: anywhere;}
.ma-kv code {font-size: 0.8rem; background: var(--ma-surface); padding: 0 0.25rem; border-radius: 4px; overflow-wrap: anywhere;}
.ma-summary p {font-size: 1.02rem; line-height: 1.55; margin-bottom: 0.45rem;}
.ma-ph {aspect-ratio: 2.8 / 1; border-radius: 6px; display: flex; align-items: center; justify-content: center;
        background: repeating-linear-gradient(45deg, var(--ma-surface), var(--ma-surface) 10px, var(--ma-surface-alt) 10px, var(--ma-surface-alt) 20px);
        color: var(--ma-muted); font-size: 0.8rem; text-align: center; padding: 0.5rem;}
.ma-flag {display: inline-block; padding: 0.05rem 0.45rem; border-radius: 4px; font-size: 0.75rem;
          background: var(--ma-bad-bg); color: var(--ma-bad-text); font-weight: 600;}
.ma-muted {color: var(--ma-soft); font-size: 0.85rem;}
.ma-verdict {font-size: 1.35rem; font-weight: 650; padding: 0.55rem 0.9rem; border-radius: 8px; display: inline-block;}
.ma-promote {background: var(--ma-good-bg); color: var(--ma-good-text);}
.ma-hold {background: var(--ma-warn-bg); color: var(--ma-warn-text);}
.ma-card {border: 1px solid var(--ma-border); border-radius: 10px; padding: 0.8rem 1rem 0.75rem 1rem; background: #FFFFFF;
           height: 100%; min-height: 7.6rem; margin-bottom: 0.6rem; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04);}
.ma-card-label {color: var(--ma-soft); font-size: 0.82rem; font-weight: 500; margin-bottom: 0.2rem;}
.ma-tip {display: inline-block; width: 0.95rem; height: 0.95rem; line-height: 0.95rem; border-radius: 50%;
          border: 1px solid var(--ma-chip-edge); color: var(--ma-muted); font-size: 0.62rem; text-align: center; margin-left: 0.3rem;
          cursor: help; vertical-align: 1px;}
.ma-card-value {font-size: 1.85rem; font-weight: 650; line-height: 1.15; color: var(--ma-ink); letter-spacing: -0.01em;}
.ma-card-note {color: var(--ma-soft); font-size: 0.8rem; margin-top: 0.35rem; line-height: 1.3;}
.ma-card.bad {border-left: 4px solid var(--ma-bad);} .ma-card.good {border-left: 4px solid var(--ma-good);}
.ma-card.warn {border-left: 4px solid var(--ma-warn);}
.ma-context {color: var(--ma-ink); font-size: 0.92rem; margin: -0.9rem 0 0.1rem 0;}
.ma-context code {font-size: 0.8rem;}
.ma-footer {color: var(--ma-muted); font-size: 0.78rem; margin-top: 2.5rem; border-top: 1px solid var(--ma-grid); padding-top: 0.6rem;}
[data-testid="stCaptionContainer"] {color: var(--ma-soft);}
</style>
""".replace("ROOT", _ROOT)


def inject_css() -> None:
    """The small style layer on top of the theme (spacing, chips, cards)."""
    st.html(CSS)


def esc(text: Any) -> str:
    return html.escape(str(text))


def header(title: str, subtitle: str | None = None, context: str | None = None) -> None:
    """Page title, the run it shows (HTML, already escaped) and what the page answers."""
    st.title(title)
    if context:
        st.markdown(f'<p class="ma-context">{context}</p>', unsafe_allow_html=True)
    if subtitle:
        st.markdown(f'<p class="ma-sub">{esc(subtitle)}</p>', unsafe_allow_html=True)


def footer(page: str, text: str) -> None:
    """The last element of every page; its marker tells browser tests the page has finished."""
    st.markdown(
        f'<div class="ma-footer" data-page="{esc(page)}">{esc(text)}</div>', unsafe_allow_html=True
    )


def chip(name: str, color: str) -> str:
    """A class name with its colour (HTML)."""
    return f'<span class="ma-chip" style="--c:{esc(color)}" title="{esc(name)}">{esc(name)}</span>'


def interval(low: Any, high: Any) -> str | None:
    """'95% CI 81.2–86.9%', or None when the run stores no interval."""
    return f"95% CI {fmt.ci(low, high)}" if fmt.is_num(low) and fmt.is_num(high) else None


def metric_card(
    label: str, value: str, note: str | None = None, help: str | None = None, tone: str = ""
) -> None:
    """A bordered metric with its interval (or another qualifier) beneath; text wraps, never truncates.

    ``tone`` ("good", "bad", "warn") adds a coloured edge for verdict-like numbers.
    """
    tip = f'<span class="ma-tip" title="{esc(help)}">?</span>' if help else ""
    body = (
        f'<div class="ma-card {esc(tone)}"><div class="ma-card-label">{esc(label)}{tip}</div>'
        f'<div class="ma-card-value">{esc(value)}</div>'
        + (f'<div class="ma-card-note">{esc(note)}</div>' if note else "")
        + "</div>"
    )
    st.markdown(body, unsafe_allow_html=True)


def empty_state(what: str, command: str | None = None, detail: str | None = None) -> None:
    """Say what is missing and the command that produces it."""
    with st.container(border=True):
        st.markdown(f"**{what}**")
        if detail:
            st.markdown(detail)
        if command:
            st.code(command, language="bash", wrap_lines=True)


def kv(items: Sequence[tuple[str, Any]]) -> str:
    """A compact key/value list (HTML); values of None are shown as 'n/a'."""
    rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Html) else esc(fmt.NA if v is None else v)}</dd>"
        for k, v in items
    )
    return f'<dl class="ma-kv">{rows}</dl>'


class Html(str):
    """A value that is already safe HTML (kv() does not escape it)."""


def code(text: Any, n: int | None = None) -> Html:
    if text is None:
        return Html(fmt.NA)
    s = str(text)
    short = s[:n] if n and len(s) > n else s
    return Html(f'<code title="{esc(s)}">{esc(short)}</code>')


def _card(title: str, rows: Sequence[tuple[str, Any]], column: Any) -> None:
    with column.container(border=True):
        st.markdown(f"**{title}**")
        st.markdown(kv(rows), unsafe_allow_html=True)


def version_block(audit: AuditRecord) -> None:
    """What exactly was audited: model, data and auditor versions, device and timings."""
    c1, c2, c3 = st.columns(3)
    _card("Model", _model_rows(audit.model), c1)
    _card("Held-out data", _data_rows(audit.dataset), c2)
    _card("Audit", _audit_rows(audit), c3)


def _model_rows(model: ModelInfo) -> list[tuple[str, Any]]:
    classes = len(model.classes) if model.classes is not None else None
    return [
        ("name", model.name),
        ("version", model.version),
        ("weights sha256", code(model.weights_sha256, 16)),
        ("code commit", code(model.code_commit)),
        ("architecture", code(model.architecture)),
        ("classes", fmt.count(classes)),
        ("Grad-CAM layer", code(model.target_layer)),
    ]


def _data_rows(data: DatasetInfo) -> list[tuple[str, Any]]:
    images = fmt.count(data.n_images)
    if data.n_listed is not None and data.n_listed != data.n_images:
        images += f" of {fmt.count(data.n_listed)} listed"
    frozen = None if data.frozen is None else "yes" if data.frozen else "no — not frozen"
    return [
        ("fingerprint", code(data.fingerprint, 16)),
        ("images", images),
        ("unreadable", fmt.count(data.n_skipped)),
        ("frozen", frozen),
        ("format", data.kind),
        ("path", code(data.path)),
        ("metadata", ", ".join(map(str, data.metadata_columns or [])) or None),
    ]


def _audit_rows(audit: AuditRecord) -> list[tuple[str, Any]]:
    device = audit.device or DeviceInfo(type="")
    speed = audit.timings.images_per_s if audit.timings is not None else None
    return [
        ("run", code(audit.run_id)),
        ("created", audit.created),
        ("auditor", f"{fmt.text(audit.auditor.version)} @ {fmt.text(audit.auditor.commit)}"),
        ("device", " · ".join(str(x) for x in (device.type, device.name) if x) or None),
        ("torch · AMP", f"{fmt.text(device.torch)} · {fmt.text(device.amp)}"),
        (
            "throughput",
            f"{fmt.count(round(speed))} images/s" if fmt.is_num(speed) and speed else None,
        ),
    ]


@contextlib.contextmanager
def guard(what: str, where: Path | str | None = None) -> Iterator[None]:
    """Render a section; an exception becomes a friendly error naming the file, never a traceback.

    Streamlit's rerun/stop signals derive from BaseException and pass through untouched.
    """
    try:
        yield
    except AuditError as exc:
        log.warning("%s: %s", what, exc)
        st.error(f"{what}: {exc}", icon=":material/error:")
    except Exception as exc:
        log.exception("%s failed (%s)", what, where)
        place = f" from `{where}`" if where else ""
        st.error(
            f"{what} could not be shown{place}: {type(exc).__name__}: {exc}. "
            "The run folder may be incomplete, damaged or written by another version of the auditor.",
            icon=":material/error:",
        )


def paginate(n_items: int, per_page: int, key: str) -> tuple[int, int]:
    """(start, end) of the current page of a gallery; the control appears when needed."""
    pages = max(1, -(-n_items // per_page))
    page = 1
    if pages > 1:
        page = int(st.pagination(pages, key=key, max_visible_pages=9) or 1)
        page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    end = min(start + per_page, n_items)
    shown = f"Showing {fmt.count(start + 1)}–{fmt.count(end)} of {fmt.count(n_items)}"
    st.caption(shown if n_items else "Nothing to show")
    return start, end


def placeholder(text: str) -> None:
    st.markdown(f'<div class="ma-ph">{esc(text)}</div>', unsafe_allow_html=True)


SUSPECT_COLUMNS = (
    "rank",
    "row",
    "path",
    "label",
    "suggested",
    "predicted",
    "self_confidence",
    "confidence",
)


def suspect_table(rows: Sequence[SuspectRow], height: int = 300) -> None:
    """The ranked suspect-label table (the integrity stage's rows), shown the same on every page."""
    frame = pd.DataFrame(
        [[getattr(r, c) for c in SUSPECT_COLUMNS] for r in rows], columns=list(SUSPECT_COLUMNS)
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=height,
        column_config={
            "self_confidence": st.column_config.NumberColumn("p(given label)", format="percent"),
            "confidence": st.column_config.NumberColumn("confidence", format="percent"),
        },
    )


Column = tuple[str, str | tuple[str, ...], Callable[..., str]]  # (title, field(s), formatter)


def value_frame(rows: Sequence[Part], columns: Sequence[Column]) -> pd.DataFrame:
    """Stored records as a table of display text, each field written by its ``fmt`` formatter
    (a column of two fields, such as an interval's ends, passes both)."""
    out = {}
    for title, key, show in columns:
        keys = key if isinstance(key, tuple) else (key,)
        out[title] = [show(*(getattr(r, k) for k in keys)) for r in rows]
    return pd.DataFrame(out, columns=[title for title, _, _ in columns])


def right_aligned(columns: Sequence[Column]) -> dict[str, Any]:
    """Column configs that right-align the given (number) columns of a ``value_frame``."""
    return {t: st.column_config.TextColumn(t, alignment="right") for t, _, _ in columns}
