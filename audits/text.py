"""Small text helpers shared by the store, the exports and the commands."""

from __future__ import annotations

import re


def slug(text: str, fallback: str = "x") -> str:
    """A file-name-safe form of ``text``: runs of other characters become ``-``, and no leading
    or trailing ``-``/``.`` (a leading dot would hide the folder); ``fallback`` when empty."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or fallback
