"""The confusion matrix: a shaded table in the Performance section (the most-confused classes
above ``FULL_MATRIX_MAX``), and Appendix B with the full matrix as a chart."""

from __future__ import annotations

from typing import Any

from audits.store import Run
from reports.present import fmt
from reports.present.class_views import most_confused_classes
from reports.sections.base import c
from reports.tree import (
    FULL_MATRIX_MAX,
    SUB_MATRIX_MAX,
    Block,
    Cell,
    Chart,
    Column,
    Heading,
    Paragraphs,
    Section,
    Table,
)

_HOW = (
    "Rows are true classes, columns the class the model predicted (numbered as the rows). "
    "Each cell counts images; the diagonal (green) is correct, blue cells are confusions, "
    "darker when a larger share of the true class goes there."
)
_FULL_HOW = (
    "Rows are true classes, columns predicted classes, both in the model's class order. The "
    "first figure shows the whole matrix by position, to see where confusions gather; the "
    "figures after it split the matrix into blocks in which every class is named. Green cells "
    "are correct, blue cells confusions, darker when a larger share of the true class goes "
    "there; white is none. Counts are in the JSON export and in confusion.csv."
)


def _read(run: Run) -> dict[str, Any]:
    """audit.json's metrics.confusion (labels, matrix, normalized) and most_confused pairs."""
    m = run.audit.metrics
    return {
        "labels": m.confusion.labels,
        "matrix": m.confusion.matrix,
        "normalized": m.confusion.normalized,
        "pairs": m.most_confused or [],
    }


def _at(grid: list[list[Any]] | None, i: int, j: int) -> Any:
    """grid[i][j], or None outside a (ragged or missing) matrix."""
    row = grid[i] if grid is not None and i < len(grid) else []
    return row[j] if j < len(row) else None


def _matrix_table(s: dict[str, Any], idx: list[int], caption: str) -> Table:
    """A confusion (sub-)matrix as a shaded table; columns are numbered, rows named."""
    columns = [Column("True class \\ predicted", "left", "30%")] + [
        Column(str(j + 1), "right") for j in range(len(idx))
    ]
    rows = []
    for a, i in enumerate(idx):
        row = [c(f"{a + 1}  {s['labels'][i]}")]
        for b, j in enumerate(idx):
            n = _at(s["matrix"], i, j) or 0
            rate = _at(s["normalized"], i, j)
            shade = float(rate) if fmt.is_num(rate) and n else None
            tone = "diag" if a == b else ("bad" if n else "muted")
            row.append(Cell(fmt.count(n) if n else "·", shade=shade, tone=tone))
        rows.append(row)
    # A small matrix keeps square-ish cells instead of stretching across the page.
    width = f"{min(100, 30 + 7 * len(idx))}%"
    return Table(columns, rows, caption=caption, css="matrix", width=width)


def _appendix(s: dict[str, Any]) -> Section:
    n = len(s["labels"])
    data = {"labels": s["labels"], "matrix": s["matrix"], "normalized": s["normalized"]}
    chart = Chart(
        "chart-confusion-full",
        "confusion",
        f"Confusion matrix, all {n} classes",
        _FULL_HOW,
        data,
        wide=True,
    )
    return Section(
        "appendix-confusion",
        "Appendix B — Full confusion matrix",
        [chart],
        appendix=True,
        landscape=True,
    )


def confusion_blocks(run: Run) -> tuple[list[Block], Section | None]:
    """The matrix for the Performance section, and Appendix B when it is too large to show."""
    s = _read(run)
    n = len(s["labels"])
    if not n:
        return [Paragraphs(["The run stores no confusion matrix."])], None
    blocks: list[Block] = [Heading("Confusion matrix")]
    if n <= FULL_MATRIX_MAX:
        blocks.append(_matrix_table(s, list(range(n)), _HOW))
        return blocks, None
    # The dashboard's rule: the classes of the stored most-confused pairs, in pair order.
    chosen = most_confused_classes(s["pairs"], s["labels"], SUB_MATRIX_MAX)
    if chosen:
        caption = (
            f"The {len(chosen)} classes involved in the largest confusions, out of {n}. "
            + _HOW
            + " Only these columns are shown, so a row does not add up to the class's images. "
            "The full matrix is in Appendix B."
        )
        blocks.append(_matrix_table(s, chosen, caption))
    return blocks, _appendix(s)
