"""What the pipelines share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def skip_reasons(skipped: Iterable[Mapping[str, str]]) -> str:
    """The first three distinct reasons images were skipped, joined by '; ', or 'no images'."""
    return "; ".join(sorted({s["reason"] for s in skipped})[:3]) or "no images"
