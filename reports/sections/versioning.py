"""Section "What this report describes": the exact model, code, data and auditor of the run."""

from __future__ import annotations

from typing import Any

from audits.related import RunBundle
from audits.runs.base import ModelInfo
from audits.runs.models_audit import DatasetInfo
from audits.store import Run
from reports.present import fmt
from reports.sections.base import date_text, kv, rounded
from reports.tree import Block, Heading, KeyValue, KeyValues, Section


def _read(run: Run, b: RunBundle) -> dict[str, Any]:
    """audit.json's model, dataset, auditor, device and timings blocks; related run ids."""
    audit = run.audit
    model, device, timings = audit.model, audit.device, audit.timings
    n_classes = audit.metrics.n_classes or (
        len(model.classes) if model.classes is not None else None
    )
    return {
        "model": model,
        "n_classes": n_classes,
        "input_size": model.input.size if model.input is not None else None,
        "channels": model.input.channels if model.input is not None else None,
        "data": audit.dataset,
        "run_id": run.run_id,
        "created": audit.created,
        "auditor": audit.auditor,
        "device": (device.type, device.name, device.torch, device.amp)
        if device is not None
        else (None, None, None, None),
        "timings": (timings.inference_s, timings.images_per_s)
        if timings is not None
        else (None, None),
        "related": [
            (label, other.run_id)
            for label, other in (
                ("Drift run in this report", b.drift),
                ("Comparison in this report", b.comparison),
                ("Previous version's audit", b.previous),
                ("Comparison with a newer version", b.successor),
                ("Newer version's audit", b.newer),
            )
            if other is not None
        ],
    }


def _model_rows(s: dict[str, Any]) -> list[KeyValue]:
    model: ModelInfo = s["model"]
    size = s["input_size"]
    size_text = f"{size[0]} × {size[1]} px" if size is not None and len(size) == 2 else "n/a"
    rows = [
        kv("Model name", model.name),
        kv("Model version", model.version),
        kv("Weights sha256", model.weights_sha256, mono=True),
        kv("Model code commit", model.code_commit, mono=True),
        kv("Architecture", model.architecture),
        kv("Classes", fmt.count(s["n_classes"])),
        kv("Input", f"{size_text}, {fmt.text(s['channels'])} channel(s)"),
        kv("Grad-CAM layer", model.target_layer),
        kv("Model folder", model.dir, mono=True),
    ]
    if model.training_manifest:
        rows.append(kv("Training manifest", model.training_manifest, mono=True))
    return rows


def _data_rows(data: DatasetInfo) -> list[KeyValue]:
    frozen = "yes" if data.frozen else "no — nothing proves the set stayed the same"
    return [
        kv("Held-out fingerprint", data.fingerprint, mono=True),
        kv("Frozen", frozen),
        kv("Held-out set", data.path, mono=True),
        kv("Format", data.kind),
        kv("Images listed", fmt.count(data.n_listed)),
        kv("Images audited", fmt.count(data.n_images)),
        kv("Images skipped", fmt.count(data.n_skipped)),
        kv("Metadata columns", ", ".join(data.metadata_columns or []) or "none"),
    ]


def _run_rows(s: dict[str, Any]) -> list[KeyValue]:
    version, commit = s["auditor"].version, s["auditor"].commit
    kind, name, torch, amp = s["device"]
    inference_s, images_per_s = s["timings"]
    device = ", ".join(str(x) for x in (kind, name) if x not in (None, ""))
    rows = [
        kv("Run id", s["run_id"], mono=True),
        kv("Date of the audit", date_text(s["created"])),
        kv("Auditor version", version),
        kv("Auditor commit", commit, mono=True),
        kv("Device", device or "n/a"),
        kv("PyTorch", torch),
        kv("Mixed precision", amp),
        kv(
            "Inference time",
            f"{fmt.num(inference_s, 1)} s ({rounded(images_per_s)} images/s)",
        ),
    ]
    # Related runs join the audit table: a table of their own spilled onto a page of its own.
    rows += [kv(label, run_id, mono=True) for label, run_id in s["related"]]
    return rows


def versioning_section(run: Run, b: RunBundle) -> Section:
    """Model, held-out data and audit identity, with the related runs in this report."""
    s = _read(run, b)
    blocks: list[Block] = [
        Heading("Model"),
        KeyValues(_model_rows(s)),
        Heading("Held-out data"),
        KeyValues(_data_rows(s["data"])),
        Heading("Audit"),
        KeyValues(_run_rows(s)),
    ]
    return Section(
        "versioning",
        "What this report describes",
        blocks,
        lead="The exact model, code and data the numbers belong to. A different weights file, "
        "commit or held-out fingerprint is a different audit.",
    )
