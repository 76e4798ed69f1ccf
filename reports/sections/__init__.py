"""The sections of a client report, one per file, each built from stored results only.

Each file reads what its section shows from the typed run model (``audits.runs``) in one
``_read`` function at its top and builds the section from that; a builder returns a
``Section``, or an ``Omitted`` (``base``) with the reason it is left out. Numbers are formatted with ``reports.present.fmt`` and sentences come from
``reports.present.narrative`` where the dashboard says the same thing. Nothing is recomputed:
only chosen, ordered and formatted.

In report order: ``cover``, ``versioning``, ``data``, ``metrics`` (with ``confusion``),
``explain``, ``drift``, ``comparison``, ``integrity`` (``leakage``, ``failure_patterns``, ``labels``, ``slices``),
``claims``; appendices ``skipped``, ``glossary``, ``evidence``. ``base`` holds the cell and row
builders they share, and ``guarded``: a section whose stored file is damaged (the typed records
raise ``AuditError``) is left out with the reason instead of stopping the report.
"""

from reports.sections.base import Omitted
from reports.sections.claims import claims_section
from reports.sections.comparison import comparison_section
from reports.sections.cover import Cover, cover
from reports.sections.data import data_section
from reports.sections.drift import drift_section
from reports.sections.evidence import evidence_files, evidence_section
from reports.sections.explain import explain_section
from reports.sections.failure_patterns import failure_patterns_section
from reports.sections.glossary import glossary_section
from reports.sections.integrity import integrity_sections
from reports.sections.metrics import metrics_section
from reports.sections.skipped import skipped_appendix
from reports.sections.versioning import versioning_section

__all__ = [
    "Cover",
    "Omitted",
    "claims_section",
    "comparison_section",
    "cover",
    "data_section",
    "drift_section",
    "evidence_files",
    "evidence_section",
    "explain_section",
    "failure_patterns_section",
    "glossary_section",
    "integrity_sections",
    "metrics_section",
    "skipped_appendix",
    "versioning_section",
]
