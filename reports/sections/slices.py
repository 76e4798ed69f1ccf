"""Section "Slices": accuracy on slices of the metadata, the weakest first."""

from __future__ import annotations

from typing import Any

from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, ci_cell, cols, count_cell, p_cell, pct_cell
from reports.sections.reading import dicts, records
from reports.tree import Block, Paragraphs, Section, Table

_SLICE = ("label", "column", "value", "support", "accuracy", "ci_low", "ci_high")
_SLICE += ("rest_accuracy", "p_lower_adj", "significantly_lower")


def _read(sl: Any) -> dict[str, Any] | None:
    """integrity.json's slices block; None when there is none."""
    if not isinstance(sl, dict) or not sl:
        return None
    all_slices = dicts(sl.get("slices"))
    return {
        "weakest": records(sl.get("weakest"), *_SLICE),
        "n_slices": len(all_slices),
        "n_low": sum(1 for s in all_slices if s.get("significantly_lower")),
        "columns": [str(x.get("column")) for x in dicts(sl.get("columns"))],
        "min_support": sl.get("min_support"),
    }


def _weakest_table(s: dict[str, Any]) -> Table:
    rows = []
    for w in s["weakest"]:
        low = w["significantly_lower"]
        rows.append(
            [
                c(w["label"] or f"{w['column']} = {w['value']}"),
                count_cell(w["support"]),
                pct_cell(w["accuracy"]),
                ci_cell(w["ci_low"], w["ci_high"]),
                pct_cell(w["rest_accuracy"]),
                p_cell(w["p_lower_adj"]),
                c(fmt.yes_no(bool(low)), tone="bad" if low else ""),
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


def slices_section(sl: Any, run: Run) -> Section | None:
    """The slices section from integrity's slices block; None when it has none."""
    s = _read(sl)
    if s is None:
        return None
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
