"""What an audit run becomes in MLflow: metric names and values, tags, and the artifact files.

Pure functions over a stored audit run; nothing here imports MLflow (``mlflow_log`` sends it).
Every value is read from the stored record, never recomputed, so MLflow shows the numbers that
``audit.json``, the dashboard and the exports show.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path

from audits.related import bundle
from audits.runs.models_audit import AuditRecord
from audits.store import Run

#: Prefix of every tag this tool sets (MLflow reserves ``mlflow.``).
TAG_PREFIX = "audit."
#: Per-class recall metrics are ``recall/<class>``; this artifact maps the names back.
RECALL_PREFIX = "recall/"
RECALL_NAMES_FILE = "recall_metric_names.json"

# MLflow's metric-name charset, less the colon it refuses on Windows and the slash that would
# nest a class name into a folder: letters, digits, _ - . and space. ASCII only, so the name is
# the same on every tracking server and file system.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. ]")
#: MLflow's metric keys are at most 250 characters; a class name is cut well below that.
_MAX_NAME = 200


def metric_safe(name: str) -> str:
    """``name`` in MLflow's metric-name charset: accents dropped, other characters ``_``."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c)
    )
    safe = _UNSAFE.sub("_", plain).strip()[:_MAX_NAME].strip()
    # "." and ".." are path components MLflow refuses; an empty name needs a visible stand-in.
    return "_" if safe in ("", ".", "..") else safe


def recall_metric_names(classes: list[str]) -> dict[str, str]:
    """Class name -> unique ``recall/<safe name>``; a clash gets ``_2``, ``_3``… in class order."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for cls in classes:
        base = metric_safe(cls)
        safe, k = base, 1
        while safe.lower() in used:  # case-insensitive: some stores compare keys that way
            k += 1
            safe = f"{base}_{k}"
        used.add(safe.lower())
        names[cls] = RECALL_PREFIX + safe
    return names


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def audit_metrics(record: AuditRecord) -> dict[str, float]:
    """Headline metrics, top-k and per-class recall, as stored (absent values are left out)."""
    m = record.metrics
    values: dict[str, object] = {
        "accuracy": m.accuracy,
        "accuracy_ci_low": m.accuracy_ci_low,
        "accuracy_ci_high": m.accuracy_ci_high,
        "balanced_accuracy": m.balanced_accuracy,
        "macro_f1": m.macro_f1,
        "ece": m.ece,
        "top_1_accuracy": m.top_k_accuracy.top1,
        "top_3_accuracy": m.top_k_accuracy.top3,
        "top_5_accuracy": m.top_k_accuracy.top5,
        "n_images": record.dataset.n_images,
        "n_skipped": record.dataset.n_skipped,
    }
    names = recall_metric_names([c.class_ for c in m.per_class])
    values.update({names[c.class_]: c.recall for c in m.per_class})
    return {k: float(v) for k, v in values.items() if _finite(v)}


def audit_tags(run: Run, store: str | Path | None = None) -> dict[str, str]:
    """Identity tags, and the verdict of the newest comparison with this run as the candidate."""
    rec = run.audit
    tags = {
        "run_id": run.run_id,
        "model_name": rec.model.name,
        "model_version": rec.model.version,
        "weights_sha256": rec.model.weights_sha256,
        "code_commit": rec.model.code_commit,
        "data_fingerprint": rec.dataset.fingerprint,
        "data_path": rec.dataset.path,
        "auditor_version": rec.auditor.version,
        "auditor_commit": rec.auditor.commit,
    }
    comparison = bundle(run, store).comparison
    if comparison is not None:
        record = comparison.comparison
        tags |= {
            "verdict": record.verdict,
            "comparison_run_id": comparison.run_id,
            "baseline_run_id": record.run_a.run_id,
            "baseline_version": record.run_a.model.version if record.run_a.model else None,
        }
    return {TAG_PREFIX + k: str(v) for k, v in tags.items() if v is not None}


def run_name(record: AuditRecord) -> str:
    return f"audit {record.model.name} {record.model.version}"


def description(record: AuditRecord, tags: dict[str, str]) -> str:
    """The MLflow run's note (Markdown): what was audited and the headline numbers."""
    m = record.metrics
    lines = [
        f"Audit of **{_md(record.model.name)} {_md(record.model.version)}** on "
        f"{record.dataset.n_images} held-out images "
        f"(fingerprint `{record.dataset.fingerprint[:12]}`): accuracy {m.accuracy:.1%}, "
        f"balanced accuracy {m.balanced_accuracy:.1%}, macro-F1 {m.macro_f1:.3f}.",
    ]
    verdict = tags.get(TAG_PREFIX + "verdict")
    if verdict:
        base = tags.get(TAG_PREFIX + "baseline_version", "the baseline")
        lines.append(f"Release gate against {_md(base)}: **{verdict}**.")
    lines.append(f"Audit run `{record.run_id}`; exports under the `export/` artifacts.")
    return "\n\n".join(lines)


def _md(text: str) -> str:
    """Markdown-escape a data string for the run note (it never starts a line, so only the
    inline markers and raw HTML need a backslash)."""
    return re.sub(r"([\\`*_\[\]<>|~#])", r"\\\1", str(text))


def write_files(run: Run, folder: Path) -> list[Path]:
    """The confusion matrix (CSV, PNG) and the recall-name map into ``folder``; returns them."""
    from reports.charts_static import confusion
    from reports.csv_export import write_confusion

    conf = run.audit.metrics.confusion
    written = [p for p in [write_confusion(run, folder / "confusion.csv")] if p]
    if conf.labels and conf.normalized:
        figures = confusion({"labels": conf.labels, "normalized": conf.normalized})
        # One block holds every class by name: log it alone; a large matrix gets the overview
        # and every named block.
        pngs = figures[1:] if len(figures) == 2 else figures
        for i, (_, data) in enumerate(pngs):
            path = folder / ("confusion.png" if i == 0 else f"confusion-{i}.png")
            path.write_bytes(data)
            written.append(path)
    names = recall_metric_names([c.class_ for c in run.audit.metrics.per_class])
    mapping = folder / RECALL_NAMES_FILE
    mapping.write_text(
        json.dumps({metric: cls for cls, metric in names.items()}, indent=2, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    written.append(mapping)
    return written
