"""Reusable page pieces: header, metric cards, version block, empty states, guards, pagination."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from audits.errors import AuditError
from reports.present.narrative import pct

log = logging.getLogger("dashboard")

CSS = """
<style>
.block-container {padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1320px;}
h1 {font-weight: 650; letter-spacing: -0.01em;}
h2, h3 {font-weight: 600; letter-spacing: -0.005em;}
.ma-sub {color: #5B6577; margin: -0.6rem 0 1.1rem 0; font-size: 0.98rem;}
.ma-chip {display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.8rem;
          color: #1F2933; background: #EEF1F5; border-left: 0.6rem solid var(--c); white-space: nowrap;
          max-width: 100%; overflow: hidden; text-overflow: ellipsis; vertical-align: middle;}
.ma-kv {display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.9rem; font-size: 0.86rem;}
.ma-kv dt {color: #5B6577;} .ma-kv dd {margin: 0; color: #1F2933; overflow-wrap: anywhere;}
.ma-kv code {font-size: 0.8rem; background: #F4F6F8; padding: 0 0.25rem; border-radius: 4px;}
.ma-summary p {font-size: 1.02rem; line-height: 1.55; margin-bottom: 0.45rem;}
.ma-ph {aspect-ratio: 2.8 / 1; background: repeating-linear-gradient(45deg, #F4F6F8, #F4F6F8 10px, #EDF0F4 10px, #EDF0F4 20px);
        border-radius: 6px; display: flex; align-items: center; justify-content: center; color: #8A94A6;
        font-size: 0.8rem; text-align: center; padding: 0.5rem;}
.ma-flag {display: inline-block; padding: 0.05rem 0.45rem; border-radius: 4px; font-size: 0.75rem;
          background: #FBEAEA; color: #9B2F2C; font-weight: 600;}
.ma-muted {color: #5B6577; font-size: 0.85rem;}
.ma-verdict {font-size: 1.35rem; font-weight: 650; padding: 0.55rem 0.9rem; border-radius: 8px; display: inline-block;}
.ma-promote {background: #E7F3EE; color: #24614A;} .ma-hold {background: #FBF1E2; color: #8A5A12;}
.ma-card {border: 1px solid #E1E5EB; border-radius: 10px; padding: 0.8rem 1rem 0.75rem 1rem; background: #FFFFFF;
           height: 100%; min-height: 7.6rem; margin-bottom: 0.6rem; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04);}
.ma-card-label {color: #5B6577; font-size: 0.82rem; font-weight: 500; margin-bottom: 0.2rem;}
.ma-tip {display: inline-block; width: 0.95rem; height: 0.95rem; line-height: 0.95rem; border-radius: 50%;
          border: 1px solid #B8C0CC; color: #8A94A6; font-size: 0.62rem; text-align: center; margin-left: 0.3rem;
          cursor: help; vertical-align: 1px;}
.ma-card-value {font-size: 1.85rem; font-weight: 650; line-height: 1.15; color: #1F2933; letter-spacing: -0.01em;}
.ma-card-note {color: #5B6577; font-size: 0.8rem; margin-top: 0.35rem; line-height: 1.3;}
.ma-card.bad {border-left: 4px solid #C0504D;} .ma-card.good {border-left: 4px solid #3C8D6E;}
.ma-card.warn {border-left: 4px solid #D9932B;}
.ma-context {color: #1F2933; font-size: 0.92rem; margin: -0.9rem 0 0.1rem 0;}
.ma-context code {font-size: 0.8rem;}
.ma-footer {color: #8A94A6; font-size: 0.78rem; margin-top: 2.5rem; border-top: 1px solid #E6E9EF; padding-top: 0.6rem;}
[data-testid="stCaptionContainer"] {color: #5B6577;}
</style>
"""


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


def help_line(text: str) -> None:
    """The one-line 'how to read this chart' caption under every chart."""
    st.caption(f"How to read it: {text}")


def chart(fig: go.Figure, help_text: str, key: str | None = None, **kwargs: Any) -> Any:
    """A plotly chart with its help line; returns the selection event when ``on_select`` is set."""
    event = st.plotly_chart(
        fig,
        width="stretch",
        key=key,
        config={
            "displaylogo": False,
            "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
        },
        **kwargs,
    )
    help_line(help_text)
    return event


def chip(name: str, color: str) -> str:
    """A class name with its colour (HTML)."""
    return f'<span class="ma-chip" style="--c:{esc(color)}" title="{esc(name)}">{esc(name)}</span>'


def interval(low: float | None, high: float | None) -> str | None:
    return None if low is None or high is None else f"95% CI {pct(low)}–{pct(high)}"


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
        f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Html) else esc('n/a' if v is None else v)}</dd>"
        for k, v in items
    )
    return f'<dl class="ma-kv">{rows}</dl>'


class Html(str):
    """A value that is already safe HTML (kv() does not escape it)."""


def code(text: Any, n: int | None = None) -> Html:
    if text is None:
        return Html("n/a")
    s = str(text)
    short = s[:n] if n and len(s) > n else s
    return Html(f'<code title="{esc(s)}">{esc(short)}</code>')


def version_block(meta: Mapping[str, Any]) -> None:
    """What exactly was audited: model, data and auditor versions, device and timings."""
    model = meta.get("model") or {}
    data = meta.get("dataset") or {}
    auditor = meta.get("auditor") or {}
    device = meta.get("device") or {}
    timings = meta.get("timings") or {}
    classes = model.get("classes")
    n_listed = data.get("n_listed")
    c1, c2, c3 = st.columns(3)
    with c1.container(border=True):
        st.markdown("**Model**")
        st.markdown(kv([
            ("name", model.get("name")), ("version", model.get("version")),
            ("weights sha256", code(model.get("weights_sha256"), 16)), ("code commit", code(model.get("code_commit"))),
            ("architecture", code(model.get("architecture"))),
            ("classes", len(classes) if isinstance(classes, list) else None),
            ("Grad-CAM layer", code(model.get("target_layer"))),
        ]), unsafe_allow_html=True)  # fmt: skip
    with c2.container(border=True):
        st.markdown("**Held-out data**")
        images = data.get("n_images")
        st.markdown(kv([
            ("fingerprint", code(data.get("fingerprint"), 16)),
            ("images", f"{images:,}" + (f" of {n_listed:,} listed" if isinstance(n_listed, int) and n_listed != images else "") if isinstance(images, int) else images),
            ("unreadable", data.get("n_skipped")),
            ("frozen", {True: "yes", False: "no — not frozen"}.get(data.get("frozen"))),
            ("format", data.get("kind")), ("path", code(data.get("path"))),
            ("metadata", ", ".join(map(str, data.get("metadata_columns") or [])) or None),
        ]), unsafe_allow_html=True)  # fmt: skip
    with c3.container(border=True):
        st.markdown("**Audit**")
        speed = timings.get("images_per_s")
        st.markdown(kv([
            ("run", code(meta.get("run_id"))), ("created", meta.get("created")),
            ("auditor", f"{auditor.get('version', 'n/a')} @ {auditor.get('commit', 'n/a')}"),
            ("device", " · ".join(str(x) for x in (device.get("type"), device.get("name")) if x) or None),
            ("torch · AMP", f"{device.get('torch', 'n/a')} · {device.get('amp', 'n/a')}"),
            ("throughput", f"{speed:,.0f} images/s" if isinstance(speed, int | float) and speed else None),
        ]), unsafe_allow_html=True)  # fmt: skip


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
    st.caption(f"Showing {start + 1:,}–{end:,} of {n_items:,}" if n_items else "Nothing to show")
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


def suspect_table(rows: list[dict], height: int = 300) -> None:
    """The ranked suspect-label table (the integrity stage's rows), shown the same on every page."""
    frame = pd.DataFrame(rows)
    keep = [c for c in SUSPECT_COLUMNS if c in frame.columns]
    st.dataframe(
        frame[keep],
        hide_index=True,
        width="stretch",
        height=height,
        column_config={
            "self_confidence": st.column_config.NumberColumn("p(given label)", format="percent"),
            "confidence": st.column_config.NumberColumn("confidence", format="percent"),
        },
    )
