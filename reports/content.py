"""The content model of a client report: one tree of sections, rendered to PDF and to HTML.

``build_content(run)`` reads a stored audit run (and, through ``audits.related.bundle``, its
drift run and comparison) and returns a ``ReportContent``: plain strings, numbers and lists,
already formatted, so both renderers show exactly the same words and numbers. Nothing is
recomputed here; the only work is choosing, ordering and formatting what the run stores.

Every optional producer (Grad-CAM, drift, comparison, integrity, claims) is read defensively:
a section is present when its result exists in the run and is otherwise listed in
``ReportContent.omitted`` with the reason, and a missing key never raises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audits.errors import AuditError
from audits.related import RunBundle, bundle
from audits.store import Run, load_run
from reports.present import fmt, narrative
from reports.sections import (
    claims_section,
    comparison_section,
    data_section,
    drift_section,
    evidence_files,
    evidence_section,
    explain_section,
    glossary_section,
    integrity_results,
    labels_section,
    leakage_section,
    metrics_section,
    skipped_appendix,
    slices_section,
    versioning_section,
)
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
    date_text,
    dicts,
    dig,
    error_of,
    kv,
    read_json,
    safe_call,
)

# ---------------------------------------------------------------------------------------------
# the cover and the whole report


def _cover(run: Run, b: RunBundle) -> dict[str, Any]:
    meta = run.meta
    m = meta.get("metrics") or {}
    model, data = meta.get("model") or {}, meta.get("dataset") or {}
    n = dig(m, "n_labelled") or data.get("n_images")
    acc = m.get("accuracy")
    ci_text = fmt.ci(m.get("accuracy_ci_low"), m.get("accuracy_ci_high"))
    headline = f"{fmt.pct(acc)} of {fmt.count(n)} held-out images labelled correctly" + (
        f" (95% CI {ci_text})" if ci_text != fmt.NA else ""
    )
    warnings = safe_call(lambda: narrative.warnings(b), [])
    tone = "warn" if warnings else "good" if fmt.is_num(acc) and acc >= 0.9 else "info"
    verdict = None
    if b.comparison is not None:
        v = b.comparison.meta.get("verdict")
        other = fmt.text(dig(b.comparison.meta, "run_a", "model", "version"))
        verdict = f"Release gate against {other}: " + (
            "PROMOTE"
            if v == "promote"
            else "HOLD for human investigation"
            if v == "hold"
            else fmt.text(v)
        )
        if v == "hold":
            tone = "warn"
    summary = safe_call(lambda: narrative.executive_summary(b), None) or [headline + "."]
    summary = [s for s in summary if s not in warnings]  # warnings get their own box
    per = [r for r in dicts(m.get("per_class")) if fmt.is_num(r.get("recall"))]
    weakest = min(per, key=lambda r: r["recall"]) if per else None
    topk = m.get("top_k_accuracy") or {}
    figures = [
        KeyFigure("Accuracy", fmt.pct(acc), f"95% CI {ci_text}" if ci_text != fmt.NA else ""),
        KeyFigure("Balanced accuracy", fmt.pct(m.get("balanced_accuracy")), "mean over classes"),
        KeyFigure("Macro F1", fmt.pct(m.get("macro_f1")), ""),
        KeyFigure("Top-3 accuracy", fmt.pct(topk.get("3")), ""),
        KeyFigure("Calibration error", fmt.pct(m.get("ece")), "ECE, lower is better"),
    ]
    if weakest is not None:
        figures.append(
            KeyFigure("Weakest class", fmt.pct(weakest["recall"]), str(weakest.get("class")))
        )
    fp = str(data.get("fingerprint") or "")
    identity = [
        kv("Model", f"{fmt.text(model.get('name'))} {fmt.text(model.get('version'))}"),
        kv("Weights sha256", model.get("weights_sha256"), mono=True),
        kv("Model code commit", model.get("code_commit"), mono=True),
        kv("Held-out data", f"{fmt.count(data.get('n_images'))} images, fingerprint {fp[:16]}{'…' if len(fp) > 16 else ''}"
           + ("" if data.get("frozen") else " (not frozen)")),
        kv("Auditor", f"{fmt.text(dig(meta, 'auditor', 'version'))} at commit {fmt.text(dig(meta, 'auditor', 'commit'))}"),
        kv("Audited on", f"{date_text(meta.get('created'))}, {fmt.text(dig(meta, 'device', 'type'))}"),
    ]  # fmt: skip
    return {"headline": headline, "tone": tone, "verdict": verdict, "summary": summary,
            "warnings": warnings, "figures": figures, "identity": identity}  # fmt: skip


def open_audit(run: Run | str | Path, store: str | Path | None = None) -> tuple[Run, RunBundle]:
    """The audit run and its related runs (drift, comparison); AuditError if not an audit."""
    if not isinstance(run, Run):
        run = load_run(run)
    if run.kind != "audit":
        raise AuditError(
            f"{run.path}: is a {run.kind} run; export an audit run (python -m audits list)"
        )
    if not isinstance(run.meta.get("metrics"), dict):
        raise AuditError(f"{run.path}: audit.json has no metrics block (damaged run)")
    try:
        b = bundle(run, store)
    except (OSError, AuditError):
        b = RunBundle(audit=run)  # related runs are optional; a bad store must not stop the export
    return run, b


def build_content(
    run: Run | str | Path, store: str | Path | None = None, related: RunBundle | None = None
) -> ReportContent:
    """The report of one stored audit run, read from its folder and its related runs."""
    if related is None:
        run, b = open_audit(run, store)
    else:
        run, b = related.audit, related
    meta = run.meta
    model = meta.get("model") or {}
    cover = _cover(run, b)
    omitted: list[tuple[str, str]] = []
    sections: list[Section] = [versioning_section(run, b), data_section(run)]
    metrics, appendices = metrics_section(run)
    sections.append(metrics)
    for name, (section, why) in (
        ("Failures explained (Grad-CAM)", explain_section(run)),
        ("Drift in production", drift_section(b)),
        ("Comparison with the previous version", comparison_section(b)),
    ):
        if section is not None:
            sections.append(section)
        elif why:
            omitted.append((name, why))
    integrity, why = integrity_results(run)
    if integrity is None:
        reason = (
            f"Integrity checks failed when the audit ran: {why}"
            if why
            else "Integrity checks were not run for this audit."
        )
        omitted += [("Leakage", reason), ("Suspect labels", reason), ("Slices", reason)]
    else:
        for name, key, builder in (
            ("Leakage", "leakage", leakage_section),
            ("Suspect labels", "suspect_labels", labels_section),
            ("Slices", "slices", slices_section),
        ):
            value = integrity.get(key)
            err = error_of(value)
            section = None if err else safe_call(lambda v=value, f=builder: f(v, run), None)
            if section is not None:
                sections.append(section)
            else:
                omitted.append(
                    (name, f"failed: {err}" if err else "not in this run's integrity results.")
                )
    claims = safe_call(lambda: claims_section(run), None)
    if claims is not None:
        sections.append(claims)
    else:
        omitted.append(
            ("Claims", "No claims were checked against this run (python -m audits claims).")
        )
    skipped_app = skipped_appendix(run)
    if skipped_app is not None:
        appendices.append(skipped_app)
    sources = evidence_files(run, b)
    appendices += [glossary_section(), evidence_section(sources)]
    appendices.sort(key=lambda s: s.title)  # Appendix A, B, C… in letter order
    return ReportContent(
        run_id=run.run_id,
        model_name=str(model.get("name") or "model"),
        model_version=str(model.get("version") or "?"),
        created=str(meta.get("created") or ""),
        created_date=date_text(meta.get("created")),
        title="Model audit report",
        headline=cover["headline"],
        headline_tone=cover["tone"],
        verdict=cover["verdict"],
        summary=cover["summary"],
        warnings=cover["warnings"],
        key_figures=cover["figures"],
        identity=cover["identity"],
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
