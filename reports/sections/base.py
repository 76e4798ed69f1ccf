"""What every section builder shares: cells, key-value rows, columns, the "left out because …"
shape, the guard that turns a damaged stored file into that shape, and small text helpers.
Every number goes through ``reports.present.fmt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audits.errors import AuditError
from reports.present import fmt
from reports.tree import Cell, Column, KeyValue, Section


@dataclass(frozen=True)
class Omitted:
    """A section left out of the report, with the reason the contents page gives."""

    name: str
    reason: str


def unavailable(name: str, exc: AuditError) -> Omitted:
    """The section ``name`` left out because a stored file it reads is damaged or invalid."""
    return Omitted(name, f"Unavailable: {exc}")


def guarded(name: str, build: Callable[[], Section | Omitted]) -> Section | Omitted:
    """``build()``, or the section left out when a stored file it reads is damaged or invalid:
    the typed records raise ``AuditError`` on first access, and one part must not stop the
    report."""
    try:
        return build()
    except AuditError as exc:
        return unavailable(name, exc)


def kv(label: str, value: Any, mono: bool = False) -> KeyValue:
    """A key-value row; a non-text value is formatted (``None`` -> 'n/a')."""
    return KeyValue(label, value if isinstance(value, str) else fmt.text(value), mono)


def cols(*spec: str | tuple[str, str] | tuple[str, str, str]) -> list[Column]:
    """Columns from titles, (title, align) or (title, align, width)."""
    return [Column(s) if isinstance(s, str) else Column(*s) for s in spec]


def c(value: Any, **hints: Any) -> Cell:
    """A cell; a non-text value is formatted (``None`` -> 'n/a')."""
    return Cell(value if isinstance(value, str) else fmt.text(value), **hints)


def pct_cell(x: Any, **hints: Any) -> Cell:
    return c(fmt.pct(x), **hints)


def ci_cell(low: Any, high: Any) -> Cell:
    return c(fmt.ci(low, high))


def count_cell(x: Any) -> Cell:
    return c(fmt.count(x))


def p_cell(p: Any) -> Cell:
    return c(fmt.p_value(p))


def dash_cell() -> Cell:
    """A cell with nothing to show by design (no interval stored for this metric)."""
    return c("—", tone="muted")


def rounded(x: Any) -> str:
    """A rate shown as a whole number: 1234.6 -> '1,235'."""
    return fmt.count(round(x)) if fmt.is_num(x) else fmt.NA


def recall_tone(recall: Any) -> str:
    if not fmt.is_num(recall):
        return "muted"
    return "bad" if recall < 0.5 else "warn" if recall < 0.8 else ""


def more(n_total: int, n_shown: int, where: str) -> str:
    """' Showing 25 of 1,234; <where>.' when a list is cut, else ''."""
    return f" Showing {n_shown} of {fmt.count(n_total)}; {where}." if n_total > n_shown else ""


def date_text(iso: Any) -> str:
    """'2026-11-23T16:00:00Z' -> '2026-11-23 16:00 UTC'."""
    if not isinstance(iso, str) or len(iso) < 16:
        return fmt.text(iso)
    return f"{iso[:10]} {iso[11:16]} UTC"


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def cell_text(key: str, value: Any) -> str:
    """A stored value of any type as cell text; a float named ``p_…`` is a p-value."""
    if isinstance(value, bool):
        return fmt.yes_no(value)
    if isinstance(value, float):
        if key.startswith("p_") or key == "p_value":
            return fmt.p_value(value)
        return fmt.num(value, 3)
    if fmt.is_num(value):
        return fmt.count(value)
    return fmt.text(value)
