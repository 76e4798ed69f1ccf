"""Section "Suspect labels": held-out images whose label the model confidently contradicts."""

from __future__ import annotations

from typing import Any

from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cols, count_cell, more, pct_cell
from reports.sections.reading import records, run_file
from reports.tree import LIST_ROWS, Block, Figure, Gallery, Paragraphs, Section, Table

_ROW = ("rank", "path", "label", "suggested", "confidence", "self_confidence", "thumb")


def _read(sus: Any, run: Run) -> dict[str, Any] | None:
    """integrity.json's suspect_labels block; None when there is none."""
    if not isinstance(sus, dict) or not sus:
        return None
    rows = records(sus.get("rows"), *_ROW)
    for r in rows[:8]:
        r["thumb"] = run_file(run, r["thumb"])
    method = sus.get("method")
    return {
        "rows": rows,
        "n_flagged": sus.get("n_flagged"),
        "n_labelled": sus.get("n_labelled"),
        "method": method if isinstance(method, str) else None,
    }


def _intro(s: dict[str, Any]) -> Paragraphs:
    text = (
        f"{fmt.count(s['n_flagged'])} of {fmt.count(s['n_labelled'])} labelled test images may "
        "carry a wrong label: the model confidently says another class. They are candidates for "
        "a human check, not proven errors; a wrong label also makes the model look worse than "
        "it is."
    )
    return Paragraphs([text] + ([f"Method: {s['method']}."] if s["method"] else []))


def _gallery(rows: list[dict[str, Any]]) -> Gallery | None:
    figures = [
        Figure(
            [r["thumb"]],
            [
                f"#{fmt.count(r['rank'])} labelled {fmt.text(r['label'])}",
                f"looks like {fmt.text(r['suggested'])}",
            ],
        )
        for r in rows[:8]
        if r["thumb"]
    ]
    if not figures:
        return None
    caption = "The likeliest mislabels, with their given label and the class the model sees."
    return Gallery(figures, caption, columns=4)


def _table(s: dict[str, Any]) -> Table:
    rows, n_flagged = s["rows"], s["n_flagged"]
    shown = rows[:LIST_ROWS]
    total = int(n_flagged) if fmt.is_num(n_flagged) else len(rows)
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
                count_cell(r["rank"]),
                c(r["path"], mono=True),
                c(r["label"]),
                c(r["suggested"]),
                pct_cell(r["confidence"]),
                pct_cell(r["self_confidence"]),
            ]
            for r in shown
        ],
        caption="Likeliest mislabels first."
        + more(total, len(shown), "the listed ones are in the JSON export"),
        css="compact",
    )


def labels_section(sus: Any, run: Run) -> Section | None:
    """The suspect-label section from integrity's block; None when it has none."""
    s = _read(sus, run)
    if s is None:
        return None
    blocks: list[Block] = [_intro(s)]
    gallery = _gallery(s["rows"])
    if gallery is not None:
        blocks.append(gallery)
    if s["rows"]:
        blocks.append(_table(s))
    lead = "Held-out images whose label the model confidently contradicts."
    return Section("labels", "Suspect labels", blocks, lead=lead)
