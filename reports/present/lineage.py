"""The one sentence that says where a relabelled held-out set came from (``dataset.lineage``).

"Held-out set v2 = v1 (fingerprint 1f3a9c2b0d1e, ../heldout/manifest.csv) + 2 relabelled,
1 excluded by 1 reviewer (demo-expert), 2026-12-01". Built here once for the dashboard's
Overview and the PDF/HTML cover; it is plain text, and each renderer escapes it (reviewer
names and paths are data).
"""

from __future__ import annotations

from typing import Any

from audits.formatting import count
from audits.runs.models_audit import LineageInfo

#: Reviewers named in the sentence; more are counted.
NAMED_REVIEWERS = 3


def _get(lineage: LineageInfo | dict[str, Any], key: str) -> Any:
    return lineage.get(key) if isinstance(lineage, dict) else getattr(lineage, key, None)


def _reviewers(names: list[str]) -> str:
    n = len(names)
    word = "reviewer" if n == 1 else "reviewers"
    if n == 0:
        return "by an unnamed reviewer"
    shown = ", ".join(names[:NAMED_REVIEWERS]) + (
        f" and {n - NAMED_REVIEWERS} more" if n > NAMED_REVIEWERS else ""
    )
    return f"by {n} {word} ({shown})"


def _dates(first: str | None, last: str | None) -> str:
    a, b = (first or "")[:10], (last or "")[:10]
    if not b:
        return ""
    return f", {b}" if a in ("", b) else f", {a} to {b}"


def lineage_sentence(lineage: LineageInfo | dict[str, Any] | None) -> str | None:
    """The set's lineage in one plain sentence, or None for an original (never relabelled) set."""
    if lineage is None:
        return None
    generation = _get(lineage, "generation")
    parent = f"fingerprint {str(_get(lineage, 'parent_fingerprint'))[:12]}"
    source = _get(lineage, "parent_source")
    if source:
        parent += f", {source}"
    if isinstance(generation, int) and generation >= 2:
        head = f"Held-out set v{generation} = v{generation - 1} ({parent})"
    else:
        head = f"This held-out set = its parent ({parent})"
    changes = [
        f"{count(_get(lineage, 'n_relabelled') or 0)} relabelled",
        f"{count(_get(lineage, 'n_excluded') or 0)} excluded",
    ]
    kept = _get(lineage, "n_kept") or 0
    if kept:
        changes.append(f"{count(kept)} confirmed")
    reviewers = _reviewers(list(_get(lineage, "reviewers") or []))
    dates = _dates(_get(lineage, "first_decision"), _get(lineage, "last_decision"))
    return f"{head} + {', '.join(changes)} {reviewers}{dates}"
