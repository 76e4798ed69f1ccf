"""Section "Slices": accuracy on slices of the metadata, the weakest first."""

from __future__ import annotations

from typing import Any

from audits.runs.models_integrity import Slices
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, ci_cell, cols, count_cell, p_cell, pct_cell
from reports.tree import Block, Paragraphs, Section, Table


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
        )
    ]
    if s["weakest"]:
        blocks.append(_weakest_table(s))
    elif s["n_slices"]:
        text = f"No slice has the {fmt.count(s['min_support'])} images needed to rank it."
        blocks.append(Paragraphs([text]))
    lead = "Is the model weaker on some kinds of images (source, date, tags)?"
    return Section("slices", "Slices", blocks, lead=lead)
