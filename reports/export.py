"""``export_run``: every requested format of one audit run into one folder with a manifest.

Used by ``python -m audits export`` and the dashboard's Export page. The folder is
``<out_dir>/<run_id>/``, built under a temporary name and renamed when complete, so a failed
export never leaves a half-written folder under the final name. Exporting the same run again
replaces its previous export folder (and only a folder that holds an export manifest).

Files (``<stem>`` is ``<model name>-<version>``):

* ``<stem>-report.pdf``, ``<stem>-report.html`` — the client report;
* ``<stem>-audit.json`` and ``audit-export.schema.json`` — the data and the schema it follows;
* ``<stem>-per-class.csv``, ``<stem>-confusion.csv``, ``<stem>-predictions.csv`` and, when the
  comparison stores them, ``<stem>-what-changed.csv`` (the images only one version gets right);
* ``export.json`` — when and with what the export was made (the only file that changes
  between exports of the same run, besides the PDF's internal ids);
* ``manifest.json`` — sha256 and size of every other file (``python -m audits verify``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from audits.errors import AuditError
from audits.fsio import atomic_dir, write_json
from audits.hashing import file_sha256
from audits.progress import tracked
from audits.related import RunBundle
from audits.store import Run, auditor_identity, check_run, load_run, utc_now
from audits.text import slug
from reports import FORMATS
from reports.content import build_content, open_audit
from reports.manifest import MANIFEST, write_manifest


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """'pdf,html' -> ['pdf', 'html'] in canonical order; 'all' is every format."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    wanted = {s.strip().lower() for s in items if s and s.strip()}
    if "all" in wanted:
        wanted = set(FORMATS)
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        choices = ",".join(FORMATS)
        raise AuditError(
            f"unknown export format(s): {', '.join(unknown)}; choose from {choices} (or all)"
        )
    if not wanted:
        raise AuditError(f"no export format given; choose from {','.join(FORMATS)}")
    return [f for f in FORMATS if f in wanted]


def file_stem(run: Run) -> str:
    """'<model name>-<version>', file-name safe (an empty part becomes 'model')."""
    model = run.audit.model
    name = slug(model.name or "model", fallback="model")
    version = slug(model.version or "x", fallback="model")
    return f"{name}-{version}"


def _write_formats(run: Run, related: RunBundle, formats: list[str], tmp: Path) -> dict[str, float]:
    """Write each format into ``tmp``; returns seconds per format."""
    stem = file_stem(run)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    content = build_content(run, related=related)
    timings["content"] = time.perf_counter() - started
    for fmt in tracked(formats, len(formats), "export", unit="format"):
        t0 = time.perf_counter()
        if fmt == "pdf":
            from reports.pdf import write_pdf

            write_pdf(content, tmp / f"{stem}-report.pdf")
        elif fmt == "html":
            from reports.html import write_html

            write_html(content, tmp / f"{stem}-report.html")
        elif fmt == "json":
            from reports import json_export

            json_export.write_json(run, related, content, tmp / f"{stem}-audit.json")
            shutil.copyfile(json_export.SCHEMA_FILE, tmp / json_export.SCHEMA_FILE.name)
        elif fmt == "csv":
            from reports import csv_export

            csv_export.write_per_class(run, tmp / f"{stem}-per-class.csv")
            csv_export.write_confusion(run, tmp / f"{stem}-confusion.csv")
            csv_export.write_predictions(run, tmp / f"{stem}-predictions.csv")
            from reports.changed_export import write_changed

            write_changed(related, tmp / f"{stem}-what-changed.csv")  # when a comparison has it
        timings[fmt] = time.perf_counter() - t0
    return timings


def export_run(
    run_dir: str | Path | Run,
    formats: str | Iterable[str] = FORMATS,
    out_dir: str | Path = "exports",
    store: str | Path | None = None,
) -> Path:
    """Export one audit run; returns the export folder ``<out_dir>/<run_id>``."""
    started = time.perf_counter()
    wanted = parse_formats(formats)
    if not isinstance(run_dir, Run):
        run_dir = load_run(run_dir)
    if run_dir.kind == "audit":
        check_run(run_dir)  # a damaged run fails here, on its file and field, before any lookup
    run, related = open_audit(run_dir, store)
    out_dir = Path(out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"{out_dir}: cannot create the export folder ({exc.strerror})") from None
    final = out_dir / run.run_id
    if final.exists() and not (final / MANIFEST).is_file():
        raise AuditError(f"{final}: exists and is not an export folder; choose another --out")
    # A previous export of this run is swapped out only once the new one is complete.
    with atomic_dir(final, replace=True) as tmp:
        timings = _write_formats(run, related, wanted, tmp)
        timings["total"] = time.perf_counter() - started
        write_json(tmp / "export.json", _export_record(run, related, wanted, timings))
        write_manifest(tmp, run.run_id)
    return final


def _export_record(
    run: Run, related: RunBundle, formats: list[str], timings: dict[str, float]
) -> dict[str, object]:
    """export.json: when and with what the export was made."""
    return {
        "run_id": run.run_id,
        "run_path": str(run.path),
        "formats": formats,
        "exported_at": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exporter": auditor_identity(),
        "related_runs": {
            "drift": related.drift.run_id if related.drift else None,
            "comparison": related.comparison.run_id if related.comparison else None,
        },
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }


def manifest_digest(folder: Path) -> str:
    """sha256 of the manifest: send it separately so the reader can trust the manifest."""
    return file_sha256(folder / MANIFEST)
