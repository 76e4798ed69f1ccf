"""Section "Claims checked": statements about the model checked against the audit's evidence
(``python -m audits claims``, stored as claims-<sha256>/claims.json)."""

from __future__ import annotations

from typing import Any

from audits.runs import StoredClaims
from audits.runs.models_claims import ClaimResult
from audits.store import Run
from reports.present import fmt
from reports.sections.base import Omitted, c, cols, date_text, kv
from reports.tree import Block, Heading, KeyValues, Paragraphs, Section, Table

NAME = "Claims"
NOT_CHECKED = "No claims were checked against this run (python -m audits claims)."
_VERDICT_TONE = {"supported": "good", "contradicted": "bad", "not enough data": "warn"}


def _read(run: Run) -> list[StoredClaims]:
    """Every claims-*/claims.json of the run, by folder name."""
    return sorted(run.claims, key=lambda c: c.path.name)


def _row(r: ClaimResult) -> list[Any]:
    if r.kind in ("lower", "higher"):  # a difference between two groups, in points
        measured, interval = fmt.pts(r.measured), fmt.pts_ci(r.ci_low, r.ci_high)
    else:
        measured, interval = fmt.pct(r.measured), fmt.ci(r.ci_low, r.ci_high)
    return [
        c(r.text or r.id),
        c(r.verdict, tone=_VERDICT_TONE.get(r.verdict, "")),
        c(measured),
        c(interval),
        c(r.sentence or r.reason or ""),
    ]


def _file_blocks(stored: StoredClaims) -> list[Block]:
    doc = stored.record
    blocks: list[Block] = [
        Heading(f"Claims file {doc.claims_file or stored.path.name}", 3),
        KeyValues(
            [
                kv("Checked", date_text(doc.created)),
                kv("Claims file sha256", doc.claims_sha256, mono=True),
            ]
        ),
    ]
    if not doc.results:
        return blocks + [Paragraphs(["This claims file holds no results."])]
    table = Table(
        cols(
            ("Claim", "left", "27%"),
            ("Verdict", "left", "12%"),
            ("Measured", "right", "10%"),
            ("95% CI", "right", "15%"),
            "Evidence",
        ),
        [_row(r) for r in doc.results],
        css="compact",
        caption="Supported or contradicted only when the 95% interval is entirely on one side; "
        "otherwise, or with fewer than the minimum number of images, not enough data.",
    )
    return blocks + [table]


def claims_section(run: Run) -> Section | Omitted:
    """Every claims file checked against the run, or why the section is left out."""
    docs = _read(run)
    if not docs:
        return Omitted(NAME, NOT_CHECKED)
    blocks = [block for doc in docs for block in _file_blocks(doc)]
    lead = "Statements made about the model, checked against the audit's evidence."
    return Section("claims", "Claims checked", blocks, lead=lead)
