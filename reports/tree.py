"""The content tree of a client report: its node types and the size limits of its sections.

``reports.content.build_content`` fills this tree from a stored run, with one builder per
section in ``reports.sections``. Every value here is plain (strings, numbers, lists): both
renderers (PDF and HTML) draw the same tree with the same template.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Up to this many classes the body shows every class (table, chart, full confusion matrix).
BODY_CLASSES = 40
#: Above BODY_CLASSES the body shows the weakest classes only, and the rest in the appendix.
WORST_SHOWN = 30
#: Up to this many classes the confusion matrix fits the page width as a table.
FULL_MATRIX_MAX = 20
#: The most-confused sub-matrix shows at most this many classes.
SUB_MATRIX_MAX = 12
#: Long lists (skipped images, leakage pairs, suspects) show this many rows in the body.
LIST_ROWS = 25
#: Grad-CAM overlays shown at most, and rows of their region scores (the gallery above them
#: already names the first ones; 20 rows end the section on the gallery's second page).
MAX_OVERLAYS = 12
REGION_ROWS = 20


# ---------------------------------------------------------------------------------------------
# the tree


@dataclass
class Column:
    title: str
    align: str = "left"  # "left" | "right" | "center"
    width: str | None = None  # a CSS width such as "30%"


@dataclass
class Cell:
    """A table cell with presentation hints (never markup)."""

    text: str
    shade: float | None = None  # 0..1: heat-map intensity (confusion matrices)
    tone: str = ""  # "good" | "bad" | "warn" | "muted" | "diag"
    mono: bool = False  # hashes and paths: monospace, break anywhere


@dataclass
class Block:
    type: ClassVar[str] = "block"


@dataclass
class Heading(Block):
    text: str
    level: int = 2
    type: ClassVar[str] = "heading"


@dataclass
class Paragraphs(Block):
    items: list[str]
    type: ClassVar[str] = "paragraphs"


@dataclass
class Bullets(Block):
    items: list[str]
    type: ClassVar[str] = "bullets"


@dataclass
class Callout(Block):
    text: str
    tone: str = "info"  # "info" | "good" | "warn" | "bad"
    title: str = ""
    type: ClassVar[str] = "callout"


@dataclass
class KeyValue:
    label: str
    value: str
    mono: bool = False


@dataclass
class KeyValues(Block):
    rows: list[KeyValue]
    caption: str = ""
    type: ClassVar[str] = "keyvalues"


@dataclass
class Table(Block):
    columns: list[Column]
    rows: list[list[Cell]]
    caption: str = ""
    css: str = ""  # extra CSS classes: "compact", "matrix"
    width: str | None = None  # a CSS width when the table should not span the page
    legend: list[str] = field(default_factory=list)  # lines under the table (index legends)
    type: ClassVar[str] = "table"


@dataclass
class Chart(Block):
    """A chart as data; ``reports.charts_static`` and ``reports.charts_interactive`` draw it."""

    id: str  # unique in the report; also the HTML element id
    kind: str  # "recall_ci" | "imbalance" | "calibration" | "confusion" | "compare_diff"
    title: str
    caption: str  # how to read it
    data: dict[str, Any]
    wide: bool = False  # wants a landscape page in the PDF
    type: ClassVar[str] = "chart"


@dataclass
class Figure:
    paths: list[str]  # image files inside the run folder, shown side by side
    caption: list[str]


@dataclass
class Gallery(Block):
    figures: list[Figure]
    caption: str = ""
    columns: int = 2  # figures per row
    type: ClassVar[str] = "gallery"


@dataclass
class KeyFigure:
    label: str
    value: str
    detail: str = ""


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block]
    lead: str = ""  # one sentence under the title: what the section answers
    appendix: bool = False
    landscape: bool = False  # print on A4 landscape pages (the full confusion matrix)


@dataclass
class ReportContent:
    run_id: str
    model_name: str
    model_version: str
    created: str  # the run's ISO time (also the PDF's creation date)
    created_date: str  # "2026-11-23 16:00 UTC"
    title: str
    headline: str  # the verdict-like line on the cover
    headline_tone: str  # "good" | "warn" | "bad" | "info"
    verdict: str | None  # the release-gate line, when a comparison exists
    summary: list[str]  # executive summary, sentence by sentence
    warnings: list[str]  # what a reader must know before trusting the numbers
    key_figures: list[KeyFigure]
    identity: list[KeyValue]  # the cover's "this document describes" box
    sections: list[Section]
    appendices: list[Section]
    omitted: list[tuple[str, str]]  # (section, why it is not in this report)
    sources: list[dict[str, Any]]  # evidence files: {"file", "sha256", "bytes"}
    related: dict[str, str | None]  # run ids of the drift run, comparison, previous audit

    def all_sections(self) -> list[Section]:
        return self.sections + self.appendices

    def charts(self) -> Iterable[Chart]:
        for section in self.all_sections():
            for block in section.blocks:
                if isinstance(block, Chart):
                    yield block
