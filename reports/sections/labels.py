"""Section "Suspect labels": held-out images whose label the model confidently contradicts."""

from __future__ import annotations

from typing import Any

from audits.runs.models_integrity import SuspectLabels, SuspectRow
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cols, count_cell, more, pct_cell
from reports.tree import LIST_ROWS, Block, Figure, Gallery, Paragraphs, Section, Table

#: Suspects shown as thumbnails, likeliest first.
GALLERY_ROWS = 8


def _read(sus: SuspectLabels, run: Run) -> dict[str, Any]:
    """integrity.json's suspect_labels block, and the stored thumbnails of the first rows."""
    thumbs = [(r, run.thumb(r.thumb)) for r in sus.rows[:GALLERY_ROWS]]
    return {
        "rows": sus.rows,
        "thumbs": [(r, str(p)) for r, p in thumbs if p is not None],
        "n_flagged": sus.n_flagged,
        "n_labelled": sus.n_labelled,
        "method": sus.method,
        "n_in_patterns": sus.n_in_patterns or 0,
    }


def _intro(s: dict[str, Any]) -> Paragraphs:
    text = (
        f"{fmt.count(s['n_flagged'])} of {fmt.count(s['n_labelled'])} labelled test images are "
        "candidates for review: the model confidently says another class, and the image is not "
        "part of a failure pattern. They are not proven label errors; a reviewer decides."
    )
    if s["n_in_patterns"]:
        text += (
            f" {fmt.count(s['n_in_patterns'])} more images the model contradicts just as "
            "confidently belong to a failure pattern (previous section): those are the "
            "model's systematic errors, not counted here."
        )
    return Paragraphs([text] + ([f"Method: {s['method']}."] if s["method"] else []))


def _gallery(thumbs: list[tuple[SuspectRow, str]]) -> Gallery | None:
    figures = [
        Figure(
            [thumb],
            [f"#{fmt.count(r.rank)} labelled {r.label}", f"looks like {r.suggested}"],
        )
        for r, thumb in thumbs
    ]
    if not figures:
        return None
    caption = "Candidates for review, likeliest first: given label and the class the model sees."
    return Gallery(figures, caption, columns=4)


def _table(s: dict[str, Any]) -> Table:
    rows, total = s["rows"], s["n_flagged"]
    shown = rows[:LIST_ROWS]
    return Table(
        cols(
            ("#", "right", "6%"),
            ("Image", "left", "30%"),
            ("Given label", "left"),
            ("Suggested", "left"),
            ("Confidence", "right"),
            ("Given label's probability", "right"),
        ),
        [
            [
                count_cell(r.rank),
                c(r.path, mono=True),
                c(r.label),
                c(r.suggested),
                pct_cell(r.confidence),
                pct_cell(r.self_confidence),
            ]
            for r in shown
        ],
        caption="Likeliest candidates first (lowest probability for the given label)."
        + more(total, len(shown), "the listed ones are in the JSON export"),
        css="compact",
    )


def labels_section(sus: SuspectLabels, run: Run) -> Section:
    """The suspect-label section from integrity.json's suspect_labels block."""
    s = _read(sus, run)
    blocks: list[Block] = [_intro(s)]
    gallery = _gallery(s["thumbs"])
    if gallery is not None:
        blocks.append(gallery)
    if s["rows"]:
        blocks.append(_table(s))
    lead = "Candidates for review: labels the model contradicts outside any failure pattern."
    return Section("labels", "Suspect labels", blocks, lead=lead)
