"""A run's neighbours in words: the newer version that replaced it, and the order of the
``compare`` command (the older run first: ``compare OLD NEW`` asks whether NEW is better).

Shared by the dashboard (Overview, Compare) and the exports (cover, comparison and versioning
sections) so that they name the same neighbour with the same verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from audits.related import RunBundle
from audits.runs import ComparisonRecord
from reports.present.narrative import verdict_text
from reports.present.rows import record_or_none


def successor_record(b: RunBundle) -> ComparisonRecord | None:
    """The comparison in which this run is the baseline (A), if one is stored and readable."""
    return record_or_none(b.successor, "comparison")


def superseded_sentence(b: RunBundle) -> str | None:
    """'Superseded: 1.1.0 was compared with this version on 2026-12-01 and passed the release
    gate (promote: better overall beyond noise, with no class significantly worse).' (None when no
    newer version was compared with this run). A held candidate does not supersede."""
    c = successor_record(b)
    if c is None:
        return None
    newer = c.run_b.model.version or "a newer version"
    when = c.created[:10]
    verdict = verdict_text(c.verdict)
    if c.verdict == "promote":
        return (
            f"Superseded: {newer} was compared with this version on {when} and passed the "
            f"release gate ({verdict}: better overall beyond noise, with no class significantly "
            "worse)."
        )
    return (
        f"A newer version, {newer}, was compared with this version on {when}: {verdict}; "
        "it has not replaced this one."
    )


def _key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of version text: '1.10.0' after '1.9.2', numbers before letters."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.findall(r"\d+|[A-Za-z]+", version)
    )


def is_older(version: str, other: str) -> bool:
    """Whether ``version`` comes before ``other`` in natural version order."""
    return _key(version) < _key(other)


def compare_args(
    model: str, version: str, run_ref: str, others: Sequence[str]
) -> tuple[str, str] | None:
    """The two arguments of the ``compare`` command for this run, older first.

    ``others`` are the model's other audited versions, newest audited first. The newest older
    version is the baseline when there is one (``compare model@OLD this-run``); otherwise this
    run is the baseline of the oldest newer one (``compare this-run model@NEW``). None when no
    other version exists.
    """
    others = [v for v in others if v != version]
    older = sorted((v for v in others if is_older(v, version)), key=_key)
    if older:
        return f"{model}@{older[-1]}", run_ref
    newer = sorted(others, key=_key)
    if newer:
        return run_ref, f"{model}@{newer[0]}"
    return None


def cover_line(gate: str | None, b: RunBundle) -> str | None:
    """The cover's verdict line: the release gate against the previous version, then the newer
    version that was compared with this one (either may be missing)."""
    parts = [x for x in (gate, superseded_sentence(b)) if x]
    if not parts:
        return None
    if len(parts) == 2 and not parts[0].endswith("."):
        parts[0] += "."
    return " ".join(parts)
