"""The cover: the headline, the release verdict, key figures, the executive summary, warnings
and what the document describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audits.related import RunBundle
from audits.runs.models_audit import Metrics
from audits.store import Run
from reports.present import fmt, narrative, neighbours
from reports.present.lineage import lineage_sentence
from reports.present.topk import shown_topk
from reports.sections.base import date_text, kv
from reports.tree import KeyFigure, KeyValue


@dataclass
class Cover:
    model_name: str
    model_version: str
    created: str  # the run's ISO time (also the PDF's creation date)
    created_date: str  # "2026-11-23 16:00 UTC"
    headline: str
    tone: str  # "good" | "warn" | "bad" | "info"
    verdict: str | None
    summary: list[str]
    warnings: list[str]
    figures: list[KeyFigure]
    identity: list[KeyValue]


def _read(run: Run, b: RunBundle) -> dict[str, Any]:
    """audit.json's headline metrics, identity fields; the comparison's verdict."""
    audit = run.audit
    m, data, model, auditor = audit.metrics, audit.dataset, audit.model, audit.auditor
    comparison = b.comparison.comparison if b.comparison is not None else None
    return {
        "m": m,
        "n": m.n_labelled or data.n_images,
        "model": (model.name, model.version, model.weights_sha256, model.code_commit),
        "data": (data.n_images, data.fingerprint, data.frozen),
        "lineage": lineage_sentence(data.lineage),
        "auditor": (auditor.version, auditor.commit),
        "created": audit.created,
        "device": audit.device.type if audit.device is not None else None,
        "comparison": None
        if comparison is None
        else (comparison.verdict, comparison.run_a.model.version),
    }


def _verdict(comparison: tuple[str, str | None] | None) -> str | None:
    """'Release gate against 1.0.0: PROMOTE' (the verdict's first word in capitals)."""
    if comparison is None:
        return None
    verdict, other = comparison
    first, _, rest = narrative.verdict_text(verdict).partition(" ")
    words = f"{first.upper()} {rest}".strip()
    return f"Release gate against {fmt.text(other)}: {words}"


def _figures(m: Metrics, ci_text: str) -> list[KeyFigure]:
    figures = [
        KeyFigure(
            "Accuracy", fmt.pct(m.accuracy), f"95% CI {ci_text}" if ci_text != fmt.NA else ""
        ),
        KeyFigure("Balanced accuracy", fmt.pct(m.balanced_accuracy), "mean over classes"),
        KeyFigure("Macro F1", fmt.pct(m.macro_f1), "precision and recall, per class"),
        *(
            KeyFigure(f"Top-{k} accuracy", fmt.pct(v), "true class among the top k")
            for k, v in shown_topk(m.top_k_accuracy, m.n_classes or len(m.per_class))[:1]
        ),
        KeyFigure("Calibration error", fmt.pct(m.ece), "ECE, lower is better"),
    ]
    per = [r for r in m.per_class if fmt.is_num(r.recall)]
    if per:
        weakest = min(per, key=lambda r: r.recall)
        figures.append(KeyFigure("Weakest class", fmt.pct(weakest.recall), weakest.class_))
    return figures


def _identity(s: dict[str, Any]) -> list[KeyValue]:
    name, version, weights, code_commit = s["model"]
    n_images, fp, frozen = s["data"]
    short = fp[:16] + ("…" if len(fp) > 16 else "")
    held_out = f"{fmt.count(n_images)} images, fingerprint {short}" + (
        "" if frozen else " (not frozen)"
    )
    auditor_version, commit = s["auditor"]
    return [
        kv("Model", f"{name} {version}"),
        kv("Weights sha256", weights, mono=True),
        kv("Model code commit", code_commit, mono=True),
        kv("Held-out data", held_out),
        *([kv("Data lineage", s["lineage"])] if s.get("lineage") else []),
        kv("Auditor", f"{auditor_version} at commit {commit}"),
        kv("Audited on", f"{date_text(s['created'])}, {fmt.text(s['device'])}"),
    ]


def cover(run: Run, b: RunBundle) -> Cover:
    """The cover of the report of ``run`` and its related runs."""
    s = _read(run, b)
    m: Metrics = s["m"]
    acc = m.accuracy
    ci_text = fmt.ci(m.accuracy_ci_low, m.accuracy_ci_high)
    headline = f"{fmt.pct(acc)} of {fmt.count(s['n'])} held-out images classified correctly" + (
        f" (95% CI {ci_text})" if ci_text != fmt.NA else ""
    )
    warnings = narrative.warnings(b)
    tone = "warn" if warnings else "good" if fmt.is_num(acc) and acc >= 0.9 else "info"
    if s["comparison"] is not None and s["comparison"][0] == "hold":
        tone = "warn"
    summary = narrative.executive_summary(b)
    name, version, _, _ = s["model"]
    return Cover(
        model_name=name or "model",
        model_version=version or "?",
        created=s["created"],
        created_date=date_text(s["created"]),
        headline=headline,
        tone=tone,
        verdict=neighbours.cover_line(_verdict(s["comparison"]), b),
        summary=[x for x in summary if x not in warnings],  # warnings get their own box
        warnings=warnings,
        figures=_figures(m, ci_text),
        identity=_identity(s),
    )
