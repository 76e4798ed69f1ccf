"""The content model of a client report: one tree of sections, rendered to PDF and to HTML.

``build_content(run)`` reads a stored audit run (and, through ``audits.related.bundle``, its
drift run and comparison) and returns a ``ReportContent``: plain strings, numbers and lists,
already formatted, so both renderers show exactly the same words and numbers. Nothing is
recomputed here; the only work is choosing, ordering and formatting what the run stores.

Every optional producer (Grad-CAM, drift, comparison, integrity, claims) is read through the
typed run model (``audits.runs``): a section is present when its result exists in the run and is
otherwise listed in ``ReportContent.omitted`` with the reason; a damaged or invalid stored file
(``AuditError`` on access) leaves its section out instead of stopping the report. The node types and
size limits (``reports.tree``) are re-exported here for the chart renderers and the tests.
"""

from __future__ import annotations

from pathlib import Path

from audits.errors import AuditError
from audits.related import RunBundle, bundle
from audits.store import Run, load_run
from reports.sections import (
    Omitted,
    claims_section,
    comparison_section,
    cover,
    data_section,
    drift_section,
    evidence_files,
    evidence_section,
    explain_section,
    glossary_section,
    integrity_sections,
    metrics_section,
    skipped_appendix,
    versioning_section,
)
from reports.sections.appendices import letter_appendices
from reports.sections.base import guarded
from reports.sections.claims import NAME as CLAIMS
from reports.sections.comparison import NAME as COMPARISON
from reports.sections.drift import NAME as DRIFT
from reports.sections.explain import NAME as EXPLAIN
from reports.tree import (  # noqa: F401 - re-exported: the content model's public names
    BODY_CLASSES,
    FULL_MATRIX_MAX,
    LIST_ROWS,
    MAX_OVERLAYS,
    REGION_ROWS,
    SUB_MATRIX_MAX,
    WORST_SHOWN,
    Block,
    Bullets,
    Callout,
    Cell,
    Chart,
    Column,
    Figure,
    Gallery,
    Heading,
    KeyFigure,
    KeyValue,
    KeyValues,
    Paragraphs,
    ReportContent,
    Section,
    Table,
)


def open_audit(run: Run | str | Path, store: str | Path | None = None) -> tuple[Run, RunBundle]:
    """The audit run and its related runs (drift, comparison); AuditError if not an audit."""
    if not isinstance(run, Run):
        run = load_run(run)
    if run.kind != "audit":
        raise AuditError(
            f"{run.path}: is a {run.kind} run; export an audit run (python -m audits list)"
        )
    run.audit  # noqa: B018 - validates audit.json now: a damaged record stops the export here
    try:
        b = bundle(run, store)
    except (OSError, AuditError):
        b = RunBundle(audit=run)  # related runs are optional; a bad store must not stop the export
    return run, b


def _body(run: Run, b: RunBundle) -> tuple[list[Section], list[Section], list[tuple[str, str]]]:
    """The body sections in report order, the appendices they add, and the omitted ones."""
    versioning, data = versioning_section(run, b), data_section(run)
    metrics, appendices = metrics_section(run)
    built: list[Section | Omitted] = [
        versioning,
        data,
        metrics,
        guarded(EXPLAIN, lambda: explain_section(run)),
        guarded(DRIFT, lambda: drift_section(b)),
        guarded(COMPARISON, lambda: comparison_section(b)),
        *integrity_sections(run),
        guarded(CLAIMS, lambda: claims_section(run)),
    ]
    sections = [x for x in built if isinstance(x, Section)]
    omitted = [(x.name, x.reason) for x in built if isinstance(x, Omitted)]
    return sections, appendices, omitted


def build_content(
    run: Run | str | Path, store: str | Path | None = None, related: RunBundle | None = None
) -> ReportContent:
    """The report of one stored audit run, read from its folder and its related runs."""
    if related is None:
        run, b = open_audit(run, store)
    else:
        run, b = related.audit, related
    front = cover(run, b)
    sections, appendices, omitted = _body(run, b)
    skipped = skipped_appendix(run)
    if skipped is not None:
        appendices.append(skipped)
    sources = evidence_files(run, b)
    appendices += [glossary_section(), evidence_section(sources)]
    sections, appendices = letter_appendices(sections, appendices)  # A, B, C… as they appear
    return ReportContent(
        run_id=run.run_id,
        model_name=front.model_name,
        model_version=front.model_version,
        created=front.created,
        created_date=front.created_date,
        title="Model audit report",
        headline=front.headline,
        headline_tone=front.tone,
        verdict=front.verdict,
        summary=front.summary,
        warnings=front.warnings,
        key_figures=front.figures,
        identity=front.identity,
        sections=sections,
        appendices=appendices,
        omitted=omitted,
        sources=sources,
        related={
            "drift": b.drift.run_id if b.drift else None,
            "comparison": b.comparison.run_id if b.comparison else None,
            "previous": b.previous.run_id if b.previous else None,
        },
    )
