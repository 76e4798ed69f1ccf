"""Section "Failure patterns": confusions concentrated in a class pair or a metadata value.

They are the model's systematic errors, told apart from label noise by
``audits.failure_patterns``; their images are not suspect labels. Read from integrity.json only.
"""

from __future__ import annotations

from audits.runs.models_integrity import FailurePatterns
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cols, count_cell
from reports.tree import Block, Figure, Gallery, Paragraphs, Section, Table

#: Patterns shown with thumbnails.
GALLERY_PATTERNS = 4


def _intro(fp: FailurePatterns) -> Paragraphs:
    if not fp.patterns:
        return Paragraphs(
            [
                "No failure pattern: the model's errors are not concentrated in one class pair "
                "or one metadata value more than chance allows."
            ]
        )
    return Paragraphs(
        [
            f"{fmt.count(fp.n_in_patterns)} of the model's {fmt.count(fp.n_errors)} errors "
            f"fall into {fmt.count(len(fp.patterns))} failure pattern(s): confusions "
            "concentrated in one class pair or one metadata value, which random label noise "
            "does not produce. They are the model's systematic errors, so they are not listed "
            "as suspect labels. If labellers confuse the same pair on purpose or by habit, a "
            "pattern can come from the labels too: a look at a few of its images settles which.",
            f"Method: {fp.method}.",
        ]
    )


def _table(fp: FailurePatterns) -> Table:
    return Table(
        cols(
            ("#", "right", "5%"),
            ("Pattern", "left", "62%"),
            ("Errors", "right"),
            ("Flagged by confident learning", "right"),
            ("Adjusted p", "right"),
        ),
        [
            [
                count_cell(p.rank),
                c(p.sentence),
                count_cell(p.n_errors),
                count_cell(p.n_flagged),
                c(fmt.p_value(p.p_value_adj)),
            ]
            for p in fp.patterns
        ],
        caption="Largest first. A pair pattern is tested against the error rate of the other "
        "class pairs; a slice pattern against the rest of its class; an 'other images "
        "predicted' pattern against the images labelled with the predicted class.",
        css="compact",
    )


def _gallery(fp: FailurePatterns, run: Run) -> Gallery | None:
    figures = []
    for p in fp.patterns[:GALLERY_PATTERNS]:
        what = f"{p.label} → {p.predicted}" if p.predicted else p.label
        what += f", {p.slice}" if p.slice else ""
        for t in p.thumbs[:4]:  # one small figure per image: a row of four per pattern
            if (f := run.thumb(t)) is not None:
                figures.append(Figure([str(f)], [f"pattern #{fmt.count(p.rank)}", what]))
    if not figures:
        return None
    return Gallery(figures, "Examples from the largest patterns, one row each.", columns=4)


def failure_patterns_section(fp: FailurePatterns, run: Run) -> Section:
    """The failure-pattern section from integrity.json's failure_patterns block."""
    blocks: list[Block] = [_intro(fp)]
    if fp.patterns:
        blocks.append(_table(fp))
        gallery = _gallery(fp, run)
        if gallery is not None:
            blocks.append(gallery)
    lead = "Where the model fails systematically: by class pair and by metadata value."
    return Section("patterns", "Failure patterns", blocks, lead=lead)
