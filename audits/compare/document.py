"""The whole comparison of two audit runs as one document (``comparison.json``)."""

from __future__ import annotations

from typing import Any

from audits.compare.align import Aligned, align_runs
from audits.compare.decision import class_status, decide
from audits.compare.statistics import paired_statistics
from audits.compare.thresholds import Thresholds
from audits.runs import SCHEMA_VERSION, utc_stamp
from audits.speed import SpeedResult, measure_speed
from audits.store import Run, auditor_identity
from audits.what_changed import changed_images, summary


def _run_block(run: Run) -> dict[str, Any]:
    record = run.audit
    model, device = record.model, record.device
    return {
        "run_id": run.run_id,
        "path": str(run.path),
        "model": {
            "name": model.name,
            "version": model.version,
            "weights_sha256": model.weights_sha256,
            "code_commit": model.code_commit,
            "dir": model.dir,
        },
        "accuracy": record.metrics.accuracy,
        "balanced_accuracy": record.metrics.balanced_accuracy,
        "device": None if device is None else device.as_dict(),
    }


def _dataset_block(run_a: Run, aligned: Aligned, n_clusters: int) -> dict[str, Any]:
    data = run_a.audit.dataset
    return {
        "fingerprint": data.fingerprint,
        "path": data.path,
        "frozen": bool(data.frozen),
        "n_images": int(len(aligned.frame)),  # the paired images (as in audit.json)
        "n_aligned": int(len(aligned.frame)),
        "n_only_a": aligned.n_only_a,
        "n_only_b": aligned.n_only_b,
        "n_groups": None if aligned.groups is None else n_clusters,
    }


def compare_runs(
    run_a: Run,
    run_b: Run,
    thresholds: Thresholds | None = None,
    class_map: dict[str, str] | None = None,
    speed: SpeedResult | None = None,
    measure: bool = False,
    speed_options: dict[str, Any] | None = None,
    across_corrections: bool = False,
) -> tuple[dict[str, Any], Aligned]:
    """The comparison document (``comparison.json`` without its run id) and the aligned pairs.

    ``measure=True`` times both models (``audits.speed.measure_speed``); otherwise ``speed`` is
    used as given, and ``None`` skips the speed check.
    """
    t = thresholds or Thresholds()
    aligned = align_runs(run_a, run_b, class_map, across_corrections)
    stats = paired_statistics(aligned, t.alpha)
    if measure:
        speed = measure_speed(run_a, run_b, aligned.frame["path"].tolist(), **(speed_options or {}))
    skipped = None if speed is not None else "speed not measured (--no-speed)"
    verdict = decide(stats["overall"], stats["per_class"], speed, t, speed_skipped=skipped)
    for row in stats["per_class"]:
        row["status"] = class_status(row, t)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "comparison",
        "run_id": None,
        "created": utc_stamp(),
        "run_a": _run_block(run_a),
        "run_b": _run_block(run_b),
        "dataset": _dataset_block(run_a, aligned, stats["overall"]["mcnemar"]["n_clusters"]),
        # two versions of one set (relabel): what was paired and what was left out
        **(
            {"across_corrections": aligned.across_corrections} if aligned.across_corrections else {}
        ),
        "classes": aligned.classes,
        "class_map": class_map or None,
        "overall": stats["overall"],
        "per_class": stats["per_class"],
        # The same pairs McNemar counted: only_a_right == mcnemar.b, only_b_right == mcnemar.c.
        "what_changed": summary(changed_images(aligned.frame)),
        "speed": None if speed is None else speed.to_dict(),
        "thresholds": t.to_dict(),
        "verdict": verdict.verdict,
        "reasons": verdict.reasons,
        "checks": verdict.checks,
        "notes": aligned.notes + verdict.notes,
        "summary": verdict.summary,
        "auditor": auditor_identity(),
    }
    return doc, aligned
