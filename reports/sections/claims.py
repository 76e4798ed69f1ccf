"""Section "Claims checked": statements about the model checked against the audit's evidence
(``python -m audits claims``, stored as claims-<sha256>/claims.json)."""

from __future__ import annotations

from typing import Any

from audits.runs import StoredClaims
from audits.runs.models_claims import ClaimResult
from audits.store import Run
from reports.present import fmt
from reports.sections.base import Omitted, c, cols, date_text, kv
from reports.tree import Block, Figure, Gallery, Heading, KeyValues, Paragraphs, Section, Table

NAME = "Claims"
NOT_CHECKED = (
    "No claims were checked against this run (python -m audits claims, or the dashboard's "
    "Integrity page)."
)
_VERDICT_TONE = {"supported": "good", "contradicted": "bad", "not enough data": "warn"}


#: Images shown per claim (the model's failures among them first).
IMAGES_PER_CLAIM = 3


def _read(run: Run) -> list[StoredClaims]:
    """Every claims-*/claims.json of the run (from the CLI or the dashboard), newest first."""
    return list(run.claims)


def _images(run: Run, results: list[ClaimResult]) -> Gallery | None:
    """Thumbnails stored with the claims: the first images behind each one."""
    figures = []
    for r in results:
        for e in (r.examples or [])[:IMAGES_PER_CLAIM]:
            file = run.thumb(e.thumb) if e.thumb else None
            if file is not None:
                mark = "" if e.correct is None else (" (right)" if e.correct else " (wrong)")
                figures.append(
                    Figure(
                        [str(file)],
                        [f"claim {r.id}", f"{e.label or '?'} → {e.pred or '?'}{mark}"],
                    )
                )
    if not figures:
        return None
    return Gallery(figures, "Images behind each claim, the model's failures first.", columns=6)


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
        c(" ".join(x for x in (r.sentence or r.reason, r.scan_note) if x)),
    ]


def _file_blocks(stored: StoredClaims, run: Run) -> list[Block]:
    doc = stored.record
    origin = (
        "Claims typed in the dashboard"
        if doc.source == "dashboard"
        else f"Claims file {doc.claims_file or stored.path.name}"
    )
    blocks: list[Block] = [
        Heading(origin, 3),
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
            ("Claim", "left", "25%"),
            ("Verdict", "left", "14%"),
            ("Measured", "right", "10%"),
            ("95% CI", "right", "15%"),
            "Evidence",
        ),
        [_row(r) for r in doc.results],
        css="compact",
        caption="Supported or contradicted only when the 95% interval is entirely on one side; "
        "otherwise, or with fewer than the minimum number of images, not enough data. A claim is "
        "one test stated in advance, so it is not adjusted for the slices the scan tests.",
    )
    gallery = _images(run, list(doc.results))
    return blocks + [table] + ([gallery] if gallery is not None else [])


def claims_section(run: Run) -> Section | Omitted:
    """Every claims file checked against the run, or why the section is left out."""
    docs = _read(run)
    if not docs:
        return Omitted(NAME, NOT_CHECKED)
    blocks = [block for doc in docs for block in _file_blocks(doc, run)]
    lead = "Statements made about the model, checked against the audit's evidence."
    return Section("claims", "Claims checked", blocks, lead=lead)
