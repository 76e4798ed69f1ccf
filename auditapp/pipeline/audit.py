"""The audit pipeline (``python -m audits run``): inference, metrics and the optional analyses,
into one run folder."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditapp.engines.dispatch import run_per_image
from auditapp.engines.spec import EngineSpec, as_engine
from auditapp.pipeline.common import skip_reasons, writing_run
from audits.context import AuditContext
from audits.datasets import ImageSet, load_dataset
from audits.errors import WRITE_FAULTS, AuditError
from audits.formats import StageUnsupported
from audits.inference import Predictions, resolve_batch_size
from audits.metrics import audit_metrics
from audits.model_card import ModelCard
from audits.prepare import FrozenCheck, Prepared, prepare
from audits.runs import SCHEMA_VERSION, utc_stamp, write_record
from audits.runs.tables import write_predictions
from audits.store import (
    DEFAULT_STORE,
    auditor_identity,
    create_run,
    new_run_id,
)

#: Optional analyses run before the run folder is sealed: (key in audit.json, loader of the
#: stage function). Loaders import lazily so a missing optional dependency only skips a stage.
Stage = Callable[[AuditContext], dict[str, Any] | None]


def _stages() -> list[tuple[str, Callable[[], Stage]]]:
    def explain() -> Stage:
        from explain.stage import explain_stage

        return explain_stage

    def integrity() -> Stage:
        from audits.integrity import integrity_stage

        return integrity_stage

    def embedding_map() -> Stage:
        from audits.embedding_map import map_stage

        return map_stage

    return [("explain", explain), ("integrity", integrity), ("embedding_map", embedding_map)]


def training_counts(card: ModelCard) -> dict[str, int] | None:
    """Images per class in the training manifest the card names, if any."""
    if card.training_manifest is None:
        return None
    try:
        train = load_dataset(card.training_manifest)
    except AuditError as exc:
        print(
            f"warning: training_manifest of {card.card_path} cannot be read, so training counts are left out: {exc}",
            file=sys.stderr,
        )
        return None
    counts = train.items["label"].dropna().value_counts()
    return {c: int(counts.get(c, 0)) for c in card.classes}


def _audit_meta(
    run_id: str,
    card: ModelCard,
    image_set: ImageSet,
    frozen: FrozenCheck,
    preds: Predictions,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """``audit.json`` before the analyses run (they add their blocks, then the total time)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "audit",
        "run_id": run_id,
        "created": utc_stamp(),
        "model": card.identity(),
        "dataset": {
            "fingerprint": frozen.fingerprint,
            "n_images": len(preds.rows),
            "n_skipped": len(preds.skipped),
            "n_listed": int(len(image_set.items)),
            "path": str(image_set.source),
            "kind": image_set.kind,
            "frozen": frozen.frozen,
            "metadata_columns": image_set.metadata_columns,
            "has_roi": image_set.has_roi,
            **frozen.record_fields(),
            # a set made by `relabel`: its parent and the corrections applied (audits/relabel.py)
            **(
                {"lineage": frozen.status.lineage}
                if frozen.status and frozen.status.lineage
                else {}
            ),
        },
        "auditor": auditor_identity(),
        "device": preds.device,
        "embedding_source": preds.embedding_source,
        "timings": dict(preds.timings),
        "skipped": preds.skipped,
        "metrics": metrics,
    }


def run_audit(
    model_dir: str | Path | Prepared,
    data: str | Path,
    store: str | Path = DEFAULT_STORE,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    allow_pickle: bool = False,
    progress: bool = False,
    skip: tuple[str, ...] = (),
    options: dict[str, Any] | None = None,
    engine: str | EngineSpec = "local",
) -> Path:
    """Audit a model on a labelled held-out set; returns the new run folder.

    ``engine``: where the per-image stage runs, ``local`` or ``ray`` (``auditapp.engines``).

    ``model_dir`` may also be an already ``Prepared`` model and data set (the Python API's
    in-memory module, ``auditapp.api``); then its first set is audited and ``data`` unused.
    """
    started = time.perf_counter()
    if isinstance(model_dir, Prepared):
        ready = model_dir
    else:
        ready = prepare(
            model_dir, [data], device=device, allow_pickle=allow_pickle, require_labels=True
        )
    card, image_set = ready.card, ready.image_set
    batch_size = resolve_batch_size(batch_size, card)
    spec = as_engine(engine)
    train_counts = training_counts(card)

    run_id = new_run_id("audit", card.name, card.version)
    with writing_run(store), create_run(store, run_id) as tmp:
        done = run_per_image(
            spec,
            ready,
            image_set,
            model_dir=None if isinstance(model_dir, Prepared) else Path(model_dir),
            batch_size=batch_size,
            workers=workers,
            allow_pickle=allow_pickle,
            out_dir=tmp,
            progress=progress,
        )
        preds, frozen = done.preds, done.frozen
        labelled = preds.rows.n_labelled()
        if labelled == 0:
            raise AuditError(
                f"{image_set.source}: none of the {len(image_set.items)} images could be read ({skip_reasons(preds.skipped)})"
            )
        # Neither needs the whole table: the metrics read four numeric columns, and the file
        # is written a row group at a time.
        metrics = audit_metrics(preds.rows.metric_table(), card.classes, train_counts=train_counts)
        write_predictions(preds.rows, tmp / "predictions.parquet")
        meta = _audit_meta(run_id, card, image_set, frozen, preds, metrics)
        if done.record is not None:
            meta["engine"] = done.record
        ctx = AuditContext(
            card,
            ready.model,
            ready.device,
            image_set,
            preds,
            metrics,
            tmp,
            dict(options or {}),
            progress,
        )
        for key, load in _stages():
            if key not in skip:
                result = _run_stage(key, load, ctx)
                if result is not None and set(result) == {"unsupported"}:
                    # The model's format cannot do it (ONNX: no gradients): skipped, with why.
                    meta.setdefault("unsupported_stages", {})[key] = result["unsupported"]
                else:
                    meta[key] = result
        meta["timings"]["total_s"] = round(time.perf_counter() - started, 3)
        write_record(tmp, meta, "audit")
    return Path(store) / run_id


def _run_stage(key: str, load: Callable[[], Stage], ctx: AuditContext) -> dict[str, Any] | None:
    """Run one optional analysis; a failure is recorded in the run instead of losing the run."""
    try:
        stage = load()
    except ImportError as exc:
        return {"error": f"{key} unavailable ({exc})"}
    try:
        return stage(ctx)
    except StageUnsupported as exc:
        print(f"note: {key} skipped: {exc}", file=sys.stderr)
        return {"unsupported": str(exc)}
    except AuditError as exc:
        print(f"warning: {key}: {exc}", file=sys.stderr)
        return {"error": str(exc)}
    except OSError as exc:
        if exc.errno in WRITE_FAULTS:  # a full disk or a read-only store ends the run
            raise
        print(f"warning: {key} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # keep the audit; say what broke
        print(f"warning: {key} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
