"""The cover: the headline, the release verdict, key figures, the executive summary, warnings
and what the document describes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audits.related import RunBundle
from audits.store import Run
from reports.present import fmt, narrative
from reports.sections.base import date_text, kv
from reports.sections.reading import dig, mapping, pick, records, safe_call
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
    meta = run.meta
    m = mapping(meta.get("metrics"))
    data = mapping(meta.get("dataset"))
    comparison = b.comparison.meta if b.comparison is not None else None
    return {
        **pick(m, "accuracy", "accuracy_ci_low", "accuracy_ci_high", "balanced_accuracy"),
        **pick(m, "macro_f1", "ece"),
        "top3": mapping(m.get("top_k_accuracy")).get("3"),
        "n": dig(m, "n_labelled") or data.get("n_images"),
        "per_class": records(m.get("per_class"), "class", "recall"),
        "model": pick(meta.get("model"), "name", "version", "weights_sha256", "code_commit"),
        "data": pick(data, "n_images", "fingerprint", "frozen"),
        "auditor": (dig(meta, "auditor", "version"), dig(meta, "auditor", "commit")),
        "created": meta.get("created"),
        "device": dig(meta, "device", "type"),
        "comparison": None
        if comparison is None
        else (comparison.get("verdict"), dig(comparison, "run_a", "model", "version")),
    }


def _verdict(comparison: tuple[Any, Any] | None) -> str | None:
    if comparison is None:
        return None
    verdict, other = comparison
    if verdict == "promote":
        words = "PROMOTE"
    elif verdict == "hold":
        words = "HOLD for human investigation"
    else:
        words = fmt.text(verdict)
    return f"Release gate against {fmt.text(other)}: {words}"


def _figures(s: dict[str, Any], ci_text: str) -> list[KeyFigure]:
    figures = [
        KeyFigure(
            "Accuracy", fmt.pct(s["accuracy"]), f"95% CI {ci_text}" if ci_text != fmt.NA else ""
        ),
        KeyFigure("Balanced accuracy", fmt.pct(s["balanced_accuracy"]), "mean over classes"),
        KeyFigure("Macro F1", fmt.pct(s["macro_f1"]), ""),
        KeyFigure("Top-3 accuracy", fmt.pct(s["top3"]), ""),
        KeyFigure("Calibration error", fmt.pct(s["ece"]), "ECE, lower is better"),
    ]
    per = [r for r in s["per_class"] if fmt.is_num(r["recall"])]
    if per:
        weakest = min(per, key=lambda r: r["recall"])
        figures.append(
            KeyFigure("Weakest class", fmt.pct(weakest["recall"]), str(weakest["class"]))
        )
    return figures


def _identity(s: dict[str, Any]) -> list[KeyValue]:
    model, data = s["model"], s["data"]
    fp = str(data["fingerprint"] or "")
    short = fp[:16] + ("…" if len(fp) > 16 else "")
    held_out = f"{fmt.count(data['n_images'])} images, fingerprint {short}" + (
        "" if data["frozen"] else " (not frozen)"
    )
    version, commit = s["auditor"]
    return [
        kv("Model", f"{fmt.text(model['name'])} {fmt.text(model['version'])}"),
        kv("Weights sha256", model["weights_sha256"], mono=True),
        kv("Model code commit", model["code_commit"], mono=True),
        kv("Held-out data", held_out),
        kv("Auditor", f"{fmt.text(version)} at commit {fmt.text(commit)}"),
        kv("Audited on", f"{date_text(s['created'])}, {fmt.text(s['device'])}"),
    ]


def cover(run: Run, b: RunBundle) -> Cover:
    """The cover of the report of ``run`` and its related runs."""
    s = _read(run, b)
    acc = s["accuracy"]
    ci_text = fmt.ci(s["accuracy_ci_low"], s["accuracy_ci_high"])
    headline = f"{fmt.pct(acc)} of {fmt.count(s['n'])} held-out images labelled correctly" + (
        f" (95% CI {ci_text})" if ci_text != fmt.NA else ""
    )
    warnings = safe_call(lambda: narrative.warnings(b), [])
    tone = "warn" if warnings else "good" if fmt.is_num(acc) and acc >= 0.9 else "info"
    if s["comparison"] is not None and s["comparison"][0] == "hold":
        tone = "warn"
    summary = safe_call(lambda: narrative.executive_summary(b), None) or [headline + "."]
    model = s["model"]
    return Cover(
        model_name=str(model["name"] or "model"),
        model_version=str(model["version"] or "?"),
        created=str(s["created"] or ""),
        created_date=date_text(s["created"]),
        headline=headline,
        tone=tone,
        verdict=_verdict(s["comparison"]),
        summary=[x for x in summary if x not in warnings],  # warnings get their own box
        warnings=warnings,
        figures=_figures(s, ci_text),
        identity=_identity(s),
    )
