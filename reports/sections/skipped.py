"""The images the audit could not decode: their table, and Appendix C when the list is long."""

from __future__ import annotations

from audits.runs.base import Skipped
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cols
from reports.tree import LIST_ROWS, Section, Table


def read_skipped(run: Run) -> list[Skipped]:
    """audit.json's skipped list (path, reason); empty when the run lists none."""
    return run.audit.skipped or []


def skipped_table(skipped: list[Skipped], caption: str, css: str = "") -> Table:
    return Table(
        cols(("Image", "left", "62%"), "Reason"),
        [[c(s.path, mono=True), c(s.reason)] for s in skipped],
        caption=caption,
        css=css,
    )


def skipped_appendix(run: Run) -> Section | None:
    """Appendix C: every skipped image, when the Data section could not list them all."""
    skipped = read_skipped(run)
    if len(skipped) <= LIST_ROWS:
        return None
    caption = f"All {fmt.count(len(skipped))} images that could not be decoded."
    return Section(
        "appendix-skipped",
        "Appendix C — Skipped images",
        [skipped_table(skipped, caption, css="compact")],
        appendix=True,
    )
