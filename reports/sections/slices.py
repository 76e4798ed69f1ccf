"""Section "Slices": accuracy on slices of the metadata, the weakest first."""

from __future__ import annotations

from typing import Any

from audits.runs.models_integrity import ClassSlices, Slices
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, ci_cell, cols, count_cell, p_cell, pct_cell
from reports.tree import Block, Heading, Paragraphs, Section, Table


def _read(sl: Slices) -> dict[str, Any]:
    """integrity.json's slices block: the weakest slices, counts and the columns sliced."""
    return {
        "weakest": sl.weakest,
        "n_slices": len(sl.slices),
        "n_low": sum(1 for s in sl.slices if s.significantly_lower),
        "columns": [x.column for x in sl.columns],
        "min_support": sl.min_support,
    }


def _weakest_table(s: dict[str, Any]) -> Table:
    rows = []
    for w in s["weakest"]:
        low = w.significantly_lower
        rows.append(
            [
                c(w.label or f"{w.column} = {w.value}"),
                count_cell(w.support),
                pct_cell(w.accuracy),
                ci_cell(w.ci_low, w.ci_high),
                pct_cell(w.rest_accuracy),
                p_cell(w.p_lower_adj),
                c(fmt.yes_no(low), tone="bad" if low else ""),
            ]
        )
    return Table(
        cols(
            ("Slice", "left", "30%"),
            ("Images", "right"),
            ("Accuracy", "right"),
            ("95% CI", "right", "15%"),
            ("Rest", "right"),
            ("adj. p (lower)", "right"),
            ("Lower?", "center"),
        ),
        rows,
        caption=f"The weakest slices with at least {fmt.count(s['min_support'])} images, lowest "
        "accuracy first; Rest is the accuracy on every other image. Every slice is in the JSON "
        "export.",
        css="compact",
    )


#: Class x slice rows shown in the report (the smallest adjusted p first); all are in the JSON.
CROSS_TAB_ROWS = 8


def _cross_tab(block: ClassSlices) -> list[Block]:
    """The root cause and the strongest class x slice associations, from integrity.json."""
    rows = [r for r in block.rows if r.significant][:CROSS_TAB_ROWS]
    out: list[Block] = []
    if block.root_cause is not None:
        out.append(Paragraphs([f"Strongest association: {block.root_cause.sentence}"]))
    if not rows:
        out.append(Paragraphs(["No class's recall differs significantly between the values of a "
                               "metadata column."]))  # fmt: skip
        return out
    table = Table(
        cols(
            ("Class", "left"),
            ("Slice", "left", "22%"),
            ("Recall within", "right"),
            ("95% CI", "right"),
            ("Recall on the rest", "right"),
            ("95% CI", "right"),
            ("adj. p", "right"),
        ),
        [
            [
                c(r.class_),
                c(
                    f"{r.label} (n = {fmt.count(r.support)} of {fmt.count(r.support + r.rest_support)})"
                ),
                pct_cell(r.recall),
                ci_cell(r.ci_low, r.ci_high),
                pct_cell(r.rest_recall),
                ci_cell(r.rest_ci_low, r.rest_ci_high),
                p_cell(r.p_adj),
            ]
            for r in rows
        ],
        caption=f"Where a class's recall depends on a metadata value: per class and column, the "
        f"value with the largest gap ({block.test}; {fmt.count(block.n_tested)} tests).",
        css="compact",
    )
    return out + [table]


def slices_section(sl: Slices, run: Run) -> Section:
    """The slices section from integrity.json's slices block."""
    s = _read(sl)
    columns = ", ".join(s["columns"]) or "none"
    blocks: list[Block] = [
        Paragraphs(
            [
                f"Accuracy was measured on {fmt.count(s['n_slices'])} slices of the metadata "
                f"(columns: {columns}); {fmt.count(s['n_low'])} are significantly less accurate "
                "than the rest of the images (Fisher's exact test, Benjamini–Hochberg adjusted)."
            ]
            + ([sl.note] if sl.note else [])  # why a pre-stated claim can answer differently
        )
    ]
    if s["weakest"]:
        blocks.append(_weakest_table(s))
    elif s["n_slices"]:
        text = f"No slice has the {fmt.count(s['min_support'])} images needed to rank it."
        blocks.append(Paragraphs([text]))
    integrity = run.integrity
    cross = getattr(integrity, "class_slices", None) if integrity is not None else None
    if isinstance(cross, ClassSlices):
        blocks.append(Heading("Recall of each class within each metadata value", 3))
        blocks.extend(_cross_tab(cross))
    lead = "Is the model weaker on some kinds of images (source, date, tags)?"
    return Section("slices", "Slices", blocks, lead=lead)
