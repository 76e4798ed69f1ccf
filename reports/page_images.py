"""Page images of a report, for the README and for looking at every page before shipping.

``python -m reports.page_images RUN [--out reports/examples]`` exports the run's PDF and writes
the cover, the first Performance page, the first Grad-CAM page and the failure patterns as PNG
(``pdftoppm`` from poppler-utils).
``--all DIR`` renders every page instead, to check none is blank or overflowing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from audits.errors import AuditError

#: The sentence under the Performance section's title (reports.sections.metrics).
PERFORMANCE_MARK = "How often the model is right overall"
#: Sentences under the titles of the Grad-CAM and failure-pattern sections.
FAILURES_MARK = "Where the model looked when it got an image wrong"
PATTERNS_MARK = "Where the model fails systematically"


def render_page(pdf: Path, page: int, out: Path, dpi: int = 100) -> Path:
    """One page (1-based) as ``out`` (PNG)."""
    if shutil.which("pdftoppm") is None:
        raise AuditError("pdftoppm not found: apt-get install -y poppler-utils")
    stem = out.with_suffix("")
    pages = ["-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), *pages, str(pdf), str(stem)], check=True)
    return out


def find_page(pdf: Path, text: str) -> int | None:
    """The first page (1-based) whose text contains ``text``."""
    from pypdf import PdfReader

    for number, page in enumerate(PdfReader(pdf).pages, start=1):
        if text in " ".join((page.extract_text() or "").split()):
            return number
    return None


def examples(run: Path, out: Path, dpi: int = 100) -> list[Path]:
    """The cover and the Performance, Grad-CAM and failure-pattern pages of the run's PDF
    report (those it has), as PNG files in ``out``."""
    from reports.export import export_run

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_run(run, "pdf", tmp)
        (pdf,) = folder.glob("*.pdf")
        pages = [
            (1, "report-cover.png"),
            (find_page(pdf, PERFORMANCE_MARK) or 2, "report-performance.png"),
            (find_page(pdf, FAILURES_MARK), "report-failures.png"),
            (find_page(pdf, PATTERNS_MARK), "report-patterns.png"),
        ]
        return [render_page(pdf, n, out / name, dpi) for n, name in pages if n is not None]


def all_pages(pdf: Path, out: Path, dpi: int = 60) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page-*.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="audit run folder (or, with --all, a PDF)")
    parser.add_argument("--out", default="reports/examples")
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--all", metavar="DIR", help="render every page of the PDF into DIR")
    args = parser.parse_args()
    if args.all:
        for p in all_pages(Path(args.run), Path(args.all), args.dpi):
            print(p)
        return
    for p in examples(Path(args.run), Path(args.out), args.dpi):
        print(p)


if __name__ == "__main__":
    main()
