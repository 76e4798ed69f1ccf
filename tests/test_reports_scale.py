"""Exports at the size real users have: 250 classes (synthetic run, no model needed)."""

from __future__ import annotations

import json

import pytest

from fixtures.synthetic_store import write_synthetic_run
from reports.content import BODY_CLASSES, SUB_MATRIX_MAX, WORST_SHOWN, Chart, Table, build_content
from reports.export import export_run
from reports.manifest import verify


@pytest.fixture(scope="module")
def run250(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("store250"), n_classes=250, n_rows=10_000)


def _tables(section):
    return [b for b in section.blocks if isinstance(b, Table)]


def test_250_classes_body_shows_the_weakest_and_the_appendix_all(run250):
    content = build_content(run250)
    metrics = next(s for s in content.sections if s.id == "metrics")
    per_class = next(t for t in _tables(metrics) if t.columns[0].title == "Class")
    assert len(per_class.rows) == WORST_SHOWN < 250
    recalls = [float(r[3].text.rstrip("%")) for r in per_class.rows]
    assert recalls == sorted(recalls)  # weakest first
    appendix = next(s for s in content.appendices if s.id == "appendix-per-class")
    assert len(_tables(appendix)[0].rows) == 250
    matrix = next(t for t in _tables(metrics) if t.css == "matrix")
    assert len(matrix.rows) <= SUB_MATRIX_MAX
    full = next(s for s in content.appendices if s.id == "appendix-confusion")
    chart = next(b for b in full.blocks if isinstance(b, Chart))
    assert len(chart.data["labels"]) == 250 > BODY_CLASSES


def test_250_class_pdf_has_no_blank_page(run250, tmp_path):
    from pypdf import PdfReader

    folder = export_run(run250, "pdf,json,csv", tmp_path)
    assert verify(folder) == []
    (pdf,) = folder.glob("*.pdf")
    pages = PdfReader(pdf).pages
    # Cover, contents, 5 body sections, 250-class appendix, matrix overview + 12 blocks, 2 more.
    assert 25 <= len(pages) <= 40
    for number, page in enumerate(pages, start=1):
        text = page.extract_text() or ""
        assert f"Page {number} of {len(pages)}" in text, number  # numbered, and not blank
        assert len(text.split()) > 12, number
    seconds = json.loads((folder / "export.json").read_text())["seconds"]
    assert seconds["pdf"] < 120
