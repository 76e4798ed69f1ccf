"""The run model: the shape of every file stored in a run folder (see docs/ARCHITECTURE.md).

Read a run with ``open_run(path)`` (typed records and file locators), write a record with
``write_record(folder, data, kind)``; the published JSON Schemas are in ``schemas/``.
"""

from audits.runs.base import SCHEMA_VERSION, Part, StageError
from audits.runs.models_audit import AuditRecord
from audits.runs.models_claims import ClaimsRecord
from audits.runs.models_comparison import ComparisonRecord
from audits.runs.models_drift import DriftRecord
from audits.runs.models_explain import ExplainSummary
from audits.runs.models_integrity import IntegrityRecord
from audits.runs.reader import ExplainFolder, StoredClaims, StoredRun, open_run
from audits.runs.stamp import auditor_identity, utc_now, utc_stamp
from audits.runs.writer import InvalidRecord, check_record, write_record

__all__ = [
    "SCHEMA_VERSION",
    "AuditRecord",
    "ClaimsRecord",
    "ComparisonRecord",
    "DriftRecord",
    "ExplainFolder",
    "ExplainSummary",
    "IntegrityRecord",
    "InvalidRecord",
    "Part",
    "StageError",
    "StoredClaims",
    "StoredRun",
    "auditor_identity",
    "check_record",
    "open_run",
    "utc_now",
    "utc_stamp",
    "write_record",
]
