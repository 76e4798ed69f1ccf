"""The drift pipeline (``python -m audits drift``): load → infer both sides → analyse → store.

The statistics live in ``audits.drift``; this module only orchestrates them into one drift
run folder (``drift.json``, ``properties.parquet``, Evidently's HTML and JSON report).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from auditapp.pipeline.common import skip_reasons, writing_run
from audits.datasets import ImageSet
from audits.drift.analysis import DriftAnalysis, analyse_drift
from audits.drift.batch import check_batch_date, check_label
from audits.drift.record import FILES, drift_record, properties_table
from audits.drift.side import Side, measured_properties
from audits.drift.thumbs import add_example_thumbs
from audits.errors import AuditError
from audits.inference import predict
from audits.prepare import Prepared, check_freeze, prepare
from audits.runs import utc_stamp, write_record
from audits.sequential import MAX_DRAWS_LIMIT
from audits.store import DEFAULT_STORE, auditor_identity, create_run, new_run_id


def run_drift(
    model_dir: str | Path | Prepared,
    reference: str | Path,
    current: str | Path,
    store: str | Path = DEFAULT_STORE,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    allow_pickle: bool = False,
    progress: bool = False,
    label: str | None = None,
    early_stop: bool = True,
    batch_date: str | None = None,
) -> Path:
    """Compare ``current`` with ``reference`` through the model; returns the new run folder.

    ``label`` names the current batch for readers (default: its folder's name) and
    ``batch_date`` says when it was taken (orders the drift timeline). The MMD test
    stops once its answer is settled, after at most ``permutations``; ``early_stop=False``
    draws all of them (the fixed test)."""
    started = time.perf_counter()
    label = check_label(label)
    batch_date = check_batch_date(batch_date)
    _check_options(alpha, permutations)
    if early_stop and permutations > MAX_DRAWS_LIMIT:
        raise AuditError(
            f"--permutations {permutations}: the sequential test draws at most "
            f"{MAX_DRAWS_LIMIT:,}; use fewer, or --no-early-stop for a fixed test"
        )
    if isinstance(model_dir, Prepared):  # the Python API's in-memory module, sets loaded
        prep = model_dir
    else:
        prep = prepare(model_dir, [reference, current], device=device, allow_pickle=allow_pickle)
    ref_set, cur_set = prep.sets
    # The current batch first: it is usually the smaller set and the one more likely unreadable.
    cur = _side("current", prep, cur_set, batch_size, workers, progress)
    ref = _side("reference", prep, ref_set, batch_size, workers, progress)
    if progress:
        how = "up to " if early_stop else ""
        print(
            f"permutation test: {how}{permutations} permutations on {prep.device.type}…",
            file=sys.stderr,
        )
    analysis = analyse_drift(
        ref, cur, prep.card.classes, alpha, permutations, seed, prep.device, early_stop
    )
    run_id = new_run_id("drift", prep.card.name, prep.card.version)
    record = drift_record(
        prep.card,
        ref,
        cur,
        analysis,
        alpha,
        run_id=run_id,
        created=utc_stamp(),
        auditor=auditor_identity(),
        label=label,
        batch_date=batch_date,
    )
    with writing_run(store), create_run(store, run_id) as tmp:
        _write_reports(tmp, ref, cur, analysis)
        add_example_thumbs(tmp, record["examples"])  # exports show them without the source data
        record["timings"]["total_s"] = round(time.perf_counter() - started, 3)
        write_record(tmp, record, "drift")
    return Path(store) / run_id


def _check_options(alpha: float, permutations: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise AuditError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if permutations < 1:
        raise AuditError(f"--permutations {permutations}: must be at least 1 (1000 is the default)")


def _side(
    name: str,
    prep: Prepared,
    image_set: ImageSet,
    batch_size: int | None,
    workers: int | None,
    progress: bool,
) -> Side:
    """Hash and freeze-check one set, run the model over it and measure its image properties."""
    freeze = check_freeze(image_set, warn=False)
    if name == "reference" and not freeze.frozen:
        print(
            f"warning: {image_set.source} is not frozen; freeze the reference so later drift runs "
            f"compare against the same images: python -m audits freeze {image_set.source}",
            file=sys.stderr,
        )
    preds = predict(
        prep.model,
        prep.card,
        image_set,
        prep.device,
        batch_size,
        workers,
        hashes=freeze.hashes,
        progress=progress,
    )
    if len(preds.rows) < 2:
        raise AuditError(
            f"{image_set.source}: the {name} set has {len(preds.rows)} readable image(s) of "
            f"{len(image_set.items)} ({skip_reasons(preds.skipped)}); drift needs at least 2 on "
            "each side"
        )
    started = time.perf_counter()
    props = measured_properties(image_set, preds.table)
    return Side(image_set, preds, props, freeze, round(time.perf_counter() - started, 3))


def _write_reports(folder: Path, ref: Side, cur: Side, analysis: DriftAnalysis) -> None:
    """``properties.parquet`` and Evidently's report (HTML and JSON) into the run folder."""
    properties_table(ref, cur, analysis).to_parquet(folder / FILES["properties"], index=False)
    analysis.snapshot.save_html(str(folder / FILES["evidently_html"]))
    analysis.snapshot.save_json(str(folder / FILES["evidently_json"]))
