"""The content tree of a client report: node types, and helpers that read a run defensively.

``reports.content.build_content`` fills this tree from a stored run; ``reports.sections`` holds
the builders of each section. Every value here is plain (strings, numbers, lists): both
renderers (PDF and HTML) draw the same tree with the same template. The helpers never raise on
a missing key or a damaged optional file: a section is omitted instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reports.present import fmt

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


# ---------------------------------------------------------------------------------------------
# defensive reading


def dig(obj: Any, *keys: Any, default: Any = None) -> Any:
    """obj[k1][k2]… or ``default`` when any step is missing or the wrong type."""
    for key in keys:
        in_map = isinstance(obj, Mapping) and key in obj
        in_list = isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj)
        if not (in_map or in_list):
            return default
        obj = obj[key]
    return default if obj is None else obj


def dicts(x: Any) -> list[dict[str, Any]]:
    """Only the dict items of a list (anything else: empty)."""
    return [r for r in x if isinstance(r, dict)] if isinstance(x, list) else []


def safe_call(fn: Callable[[], Any], default: Any) -> Any:
    """Call a narrative helper; a run missing a key it expects gives ``default``, not a crash."""
    try:
        return fn()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError):
        return default


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def error_of(block: Any) -> str | None:
    """A stage that failed stores ``{"error": "..."}`` in audit.json instead of its result."""
    if isinstance(block, dict) and set(block) <= {"error", "skipped"} and block.get("error"):
        return str(block["error"])
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inside(base: Path, candidate: str | Path) -> Path | None:
    """``candidate`` (relative to ``base``, or absolute) if it is a file inside ``base``."""
    try:
        p = Path(candidate)
        p = (p if p.is_absolute() else base / p).resolve()
        base = base.resolve()
    except (OSError, ValueError, TypeError):
        return None
    if base != p and base not in p.parents:
        return None  # a path in the data must not make the export read files elsewhere
    return p if p.is_file() else None


# ---------------------------------------------------------------------------------------------
# small builders


def kv(label: str, value: Any, mono: bool = False) -> KeyValue:
    return KeyValue(label, value if isinstance(value, str) else fmt.text(value), mono)


def cols(*spec: str | tuple[str, str] | tuple[str, str, str]) -> list[Column]:
    """Columns from titles, (title, align) or (title, align, width)."""
    out = []
    for s in spec:
        out.append(Column(s) if isinstance(s, str) else Column(*s))
    return out


def c(value: Any, **hints: Any) -> Cell:
    return Cell(value if isinstance(value, str) else fmt.text(value), **hints)


def recall_tone(recall: Any) -> str:
    if not fmt.is_num(recall):
        return "muted"
    return "bad" if recall < 0.5 else "warn" if recall < 0.8 else ""


def more(n_total: int, n_shown: int, where: str) -> str:
    return f" Showing {n_shown} of {fmt.count(n_total)}; {where}." if n_total > n_shown else ""


def date_text(iso: Any) -> str:
    """'2026-11-23T16:00:00Z' -> '2026-11-23 16:00 UTC'."""
    if not isinstance(iso, str) or len(iso) < 16:
        return fmt.text(iso)
    return f"{iso[:10]} {iso[11:16]} UTC"


def plain(v: Any) -> Any:
    """numpy / pandas scalars to Python; NA and NaN to None."""
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item") and not isinstance(v, list | dict | str):
        with contextlib.suppress(ValueError, AttributeError):
            v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def cell_text(key: str, value: Any) -> str:
    value = plain(value)
    if isinstance(value, bool):
        return fmt.yes_no(value)
    if isinstance(value, float):
        if key.startswith("p_") or key == "p_value":
            return fmt.pval(value)
        return fmt.num(value, 3)
    if fmt.is_num(value):
        return fmt.count(value)
    return fmt.text(value)
