"""Letter the appendices A, B, C… in the order they appear, and every "Appendix X" reference.

Each appendix builder names itself by a fixed key letter (per-class table A, full confusion
matrix B, skipped images C, glossary D, evidence files E) and body text refers to that key.
A report holds only some of them, so the letters are reassigned here, once the report's
appendices are known: a report with only the glossary and the evidence letters them A and B,
and the body's references follow.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from reports.tree import Section

_REF = re.compile(r"\bAppendix ([A-Z])\b")


def _key(section: Section) -> str:
    m = _REF.match(section.title)
    return m.group(1) if m else "~"


def _rewrite(value: Any, letters: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _REF.sub(lambda m: f"Appendix {letters.get(m.group(1), m.group(1))}", value)
    if isinstance(value, list):
        return [_rewrite(v, letters) for v in value]
    if isinstance(value, tuple):
        return tuple(_rewrite(v, letters) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _rewrite(getattr(value, f.name), letters)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


def letter_appendices(
    sections: list[Section], appendices: list[Section]
) -> tuple[list[Section], list[Section]]:
    """The body and the appendices (ordered by key) with letters A, B, C… in that order."""
    ordered = sorted(appendices, key=_key)
    letters = {_key(s): chr(ord("A") + i) for i, s in enumerate(ordered)}
    return [_rewrite(s, letters) for s in sections], [_rewrite(s, letters) for s in ordered]
