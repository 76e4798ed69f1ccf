"""Heatmaps for the failures of an audit run: the ``explain`` stage and its command.

``explain_stage(ctx)`` runs inside ``python -m audits run`` before the run folder is sealed;
``run_explain`` does the work and is shared with ``python -m audits explain RUN``.

Files written into the output folder (``explain/`` of the run):

- ``heatmaps.npy``: float16 ``[n_explained, 2, h, w]``; axis 1 is (predicted class, true
  class); row ``i`` is row ``index == i`` of ``regions.parquet``. Failures come first (highest
  loss first), then the baseline of correct images (both slots hold the same map there, as
  predicted == true). Maps are in [0, 1] (see ``explain.base``); they are stored at input
  resolution, area-downsampled when a side exceeds ``explain_heatmap_side`` (default 128) to
  keep the folder small. Region numbers are always computed at input resolution first.
- ``overlays/<row>.png``: the image the model saw, the predicted-class overlay and the
  true-class overlay side by side (one overlay for baseline images); ``row`` is the
  predictions table's row.
- ``regions.parquet``: one row per (explained image, slot): ``index, slot, role, kind, row,
  path, label, pred, class, class_idx, correct, loss, confidence, method, layer, roi_energy,
  roi_peak, roi_area, overlay``. ``roi_*`` are NaN/NA without a usable region box.
- ``summary.json``: method, layer, counts, per-pair numbers and sentences, timings, layout.

Options (``ctx.options`` / the command's flags): ``explain_method`` ("gradcam"),
``explain_layer`` (card's ``target_layer`` or auto), ``explain_max`` (500 failures; None: all),
``explain_top_by_loss`` (False), ``explain_baseline`` (50 correct images per class),
``explain_threshold`` (None: each image's box share of the image; or a share such as 0.10),
``explain_batch_size`` (32 CPU / 64 CUDA), ``explain_overlays`` (True), ``explain_seed`` (0),
``explain_heatmap_side`` (128; 0 keeps input size),
``explain_amp`` (False: autocast on CUDA for the CAM forward).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audits.context import AuditContext
from audits.datasets import ROI_COLUMNS, ImageSet
from audits.errors import AuditError
from audits.formats import StageUnsupported, unsupported_reason
from audits.inference import (
    ImageBatch,
    ImageBatches,
    amp_dtype,
    default_workers,
    normalise,
    pixel_scale,
)
from audits.model_card import ModelCard
from audits.runs import write_record
from explain.base import Attributor
from explain.outputs import (
    HeatmapFile,
    batch_scores,
    region_records,
    regions_table,
    row_overlay,
    stored_size,
)
from explain.pairs import DEFAULT_THRESHOLD, class_baselines, pair_summaries
from explain.registry import DEFAULT_METHOD, canonical, get_method
from explain.select import DEFAULT_BASELINE, DEFAULT_MAX_FAILURES, Selection, select_images

DEFAULTS: dict[str, Any] = {
    "explain_method": DEFAULT_METHOD,
    "explain_layer": None,
    "explain_max": DEFAULT_MAX_FAILURES,
    "explain_top_by_loss": False,
    "explain_baseline": DEFAULT_BASELINE,
    "explain_batch_size": None,
    "explain_overlays": True,
    "explain_seed": 0,
    "explain_threshold": DEFAULT_THRESHOLD,
    "explain_heatmap_side": 128,
    "explain_amp": False,
}
NORMALISATION = (
    "per map: ReLU, min-max to [0, 1] at the method's resolution, bilinear upsampling to the "
    "input size (half-pixel centres), min-max again (pytorch-grad-cam's scale_cam_image)"
)
COMPACT_KEYS = (
    "method",
    "layer",
    "folder",
    "n_failures",
    "n_explained",
    "n_baseline",
    "capped",
    "top_by_loss",
    "has_roi",
    "energy_threshold",
    "pairs",
    "baselines",
    "heatmaps_per_s",
)
#: Below this many images, DataLoader worker start-up costs more than it saves.
_WORKERS_FROM = 512


def explain_stage(ctx: AuditContext) -> dict[str, Any]:
    """The runner's hook: writes ``ctx.run_dir / "explain"``; returns the summary for audit.json."""
    _check_supported(ctx.model, resolve_options(ctx.options))
    out = ctx.run_dir / "explain"
    out.mkdir()
    summary = run_explain(
        ctx.model,
        ctx.card,
        ctx.device,
        ctx.image_set,
        ctx.predictions.table,
        out,
        options=ctx.options,
        progress=ctx.progress,
        folder="explain",
    )
    return compact(summary)


def _check_supported(model: nn.Module, opts: dict[str, Any]) -> None:
    """Refuse a model whose format cannot be explained (ONNX: no gradients), with why."""
    reason = unsupported_reason(model, "explain", canonical(str(opts["explain_method"])))
    if reason is not None:
        raise StageUnsupported(reason)


def compact(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of ``summary.json`` stored in audit.json (per-pair numbers included)."""
    return {k: summary[k] for k in COMPACT_KEYS if k in summary}


def resolve_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults completed with the given options; unknown ``explain_*`` keys are an error."""
    given = {k: v for k, v in (options or {}).items() if k.startswith("explain_")}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise AuditError(
            f"unknown explain option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}"
        )
    # None means "the default", except for explain_max where it means "no cap".
    merged = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None or k == "explain_max"}}
    if merged["explain_max"] is not None and int(merged["explain_max"]) < 0:
        raise AuditError("--max must be 0 or more")
    return merged


@dataclass
class _Plan:
    """How one explain run works: the method and what it writes, resolved from the options."""

    method: Attributor
    card: ModelCard
    device: torch.device
    store_hw: tuple[int, int]
    has_roi: bool
    overlays: bool
    batch_size: int

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.card.size)


@dataclass
class _Tally:
    """What the batches produced: region rows, attribution time and heatmap count."""

    records: list[dict[str, Any]] = field(default_factory=list)
    attribution_s: float = 0.0
    n_maps: int = 0


def run_explain(
    model: nn.Module,
    card: ModelCard,
    device: torch.device,
    image_set: ImageSet,
    table: pd.DataFrame,
    out_dir: Path,
    options: dict[str, Any] | None = None,
    progress: bool = False,
    verify_files: bool = False,
    folder: str = "explain",
) -> dict[str, Any]:
    """Explain the failures (and a baseline) of a predictions table into ``out_dir``.

    Returns the summary (also written as ``summary.json``); see the module doc for the files.
    """
    started = time.perf_counter()
    opts = resolve_options(options)
    _check_supported(model, opts)
    selection = select_images(
        table,
        max_failures=None if opts["explain_max"] is None else int(opts["explain_max"]),
        top_by_loss=bool(opts["explain_top_by_loss"]),
        baseline=int(opts["explain_baseline"]),
        seed=int(opts["explain_seed"]),
    )
    plan = _plan(model, card, device, table, opts)
    if plan.overlays:
        (out_dir / "overlays").mkdir(exist_ok=True)
    rows = selection.rows
    hashes = rows["file_sha256"].tolist() if verify_files and "file_sha256" in rows else None
    batches = ImageBatches(
        image_set.root,
        rows["path"].tolist(),
        card,
        device,
        batch_size=plan.batch_size,
        workers=default_workers(device) if len(rows) > _WORKERS_FROM else 0,
        expected_sha256=hashes,
        progress=progress,
        desc="explain",
    )
    tally = _explain_batches(plan, batches, rows, out_dir)
    regions = regions_table(tally.records)
    regions.to_parquet(out_dir / "regions.parquet", index=False)
    summary = _summary(plan, opts, selection, regions, table, tally, batches.skipped, folder)
    summary["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    write_record(out_dir, summary, "explain")
    return summary


def _plan(
    model: nn.Module,
    card: ModelCard,
    device: torch.device,
    table: pd.DataFrame,
    opts: dict[str, Any],
) -> _Plan:
    """Build the method on the model (a wrong layer fails here, before any file is written)."""
    amp = amp_dtype(device) if opts["explain_amp"] else None
    kwargs = {"amp": amp} if amp is not None else {}
    model.eval()
    method = get_method(
        canonical(str(opts["explain_method"])),
        model,
        # A .pt2's modules are not nn.Conv2d instances: it names its last convolution itself.
        opts["explain_layer"] or card.target_layer or getattr(model, "default_layer", None),
        input_shape=(card.channels, *card.size),
        **kwargs,
    )
    return _Plan(
        method=method,
        card=card,
        device=device,
        store_hw=stored_size(tuple(card.size), int(opts["explain_heatmap_side"] or 0)),
        has_roi=all(c in table.columns for c in ROI_COLUMNS),
        overlays=bool(opts["explain_overlays"]),
        batch_size=int(opts["explain_batch_size"] or (64 if device.type == "cuda" else 32)),
    )


def _explain_batches(
    plan: _Plan, batches: ImageBatches, rows: pd.DataFrame, out_dir: Path
) -> _Tally:
    """Heatmaps, region rows and overlays of every readable selected image, batch by batch."""
    tally = _Tally()
    heatmaps = HeatmapFile(out_dir / "heatmaps.npy", (len(rows), 2, *plan.store_hw))
    mean, std = pixel_scale(plan.card, plan.device)
    info = plan.method.describe()
    try:
        for batch in batches:
            part = rows.iloc[batch.index]
            maps = _attribute(plan, normalise(batch.images, mean, std), part, tally)
            scores = batch_scores(maps, part) if plan.has_roi else None
            small = maps
            if plan.store_hw != plan.size:
                small = F.interpolate(maps, size=plan.store_hw, mode="area")
            heatmaps.put(batch.index, small.to(torch.float16).cpu().numpy())
            for j, i in enumerate(batch.index):
                tally.records.extend(
                    region_records(int(i), part.iloc[j], scores, j, info, plan.overlays)
                )
            if plan.overlays:
                _overlays(plan, batch, part, maps, out_dir / "overlays")
    finally:
        heatmaps.close()
    return tally


def _attribute(plan: _Plan, x: torch.Tensor, part: pd.DataFrame, tally: _Tally) -> torch.Tensor:
    """Maps ``[n, 2, H, W]`` for (predicted, true) class; timed into ``tally``."""
    targets = torch.as_tensor(
        np.stack([part["pred_idx"], part["label_idx"]], axis=1), device=plan.device
    )
    t0 = time.perf_counter()
    if bool((targets[:, 0] == targets[:, 1]).all()):
        # Correct images: one map serves both slots.
        maps = plan.method.attribute(x, targets[:, 0]).unsqueeze(1).expand(-1, 2, -1, -1)
        tally.n_maps += len(part)
    else:
        maps = plan.method.attribute(x, targets)
        tally.n_maps += 2 * len(part)
    if plan.device.type == "cuda":
        torch.cuda.synchronize(plan.device)
    tally.attribution_s += time.perf_counter() - t0
    return maps


def _overlays(
    plan: _Plan, batch: ImageBatch, part: pd.DataFrame, maps: torch.Tensor, folder: Path
) -> None:
    maps_cpu = maps.float().cpu().numpy()
    images = batch.images.permute(0, 2, 3, 1).numpy()
    for j in range(len(part)):
        row = part.iloc[j]
        path = folder / f"{int(row['row'])}.png"
        row_overlay(path, images[j], maps_cpu[j], row, plan.size, plan.has_roi)


def _pair_totals(table: pd.DataFrame) -> dict[tuple[str, str], int]:
    wrong = table[(table["label_idx"] >= 0) & ~table["correct"].astype(bool)]
    return {
        (str(a), str(b)): int(n) for (a, b), n in wrong.groupby(["label", "pred"]).size().items()
    }


def _summary(
    plan: _Plan,
    opts: dict[str, Any],
    selection: Selection,
    regions: pd.DataFrame,
    table: pd.DataFrame,
    tally: _Tally,
    skipped: list[dict[str, str]],
    folder: str,
) -> dict[str, Any]:
    """``summary.json`` (its ``timings.total_s`` is the caller's to fill in)."""
    threshold = None if opts["explain_threshold"] is None else float(opts["explain_threshold"])
    info = plan.method.describe()
    h, w = plan.store_hw

    def explained(kind: str) -> int:
        return int((regions["kind"] == kind).sum() // 2) if len(regions) else 0

    return {
        "method": info["method"],
        "layer": info["layer"],
        "folder": folder,
        "n_failures": selection.n_failures,
        "n_explained": explained("failure"),
        "n_baseline": explained("baseline"),
        "capped": selection.capped,
        "top_by_loss": bool(opts["explain_top_by_loss"]),
        "has_roi": plan.has_roi,
        "energy_threshold": "box area" if threshold is None else threshold,
        "pairs": pair_summaries(regions, _pair_totals(table), threshold=threshold),
        "baselines": class_baselines(regions),
        "heatmaps_per_s": round(tally.n_maps / tally.attribution_s, 2)
        if tally.attribution_s > 0
        else None,
        "skipped": skipped,
        "device": plan.device.type,
        "input_size": list(plan.size),
        "heatmap_size": [h, w],
        "normalisation": NORMALISATION,
        "layout": {
            "heatmaps.npy": f"float16 [n_explained, 2, {h}, {w}]; axis 1 = (predicted, true); "
            "axis 0 = regions.parquet 'index'",
            "regions.parquet": "one row per (explained image, slot); roi_energy = share of "
            "heatmap energy in the region box, roi_peak = heatmap maximum inside it, roi_area = "
            "box share of the image",
            "overlays": "overlays/<row>.png, row = predictions.parquet row"
            if plan.overlays
            else None,
        },
        "options": {k: opts[k] for k in DEFAULTS},
        "timings": {"attribution_s": round(tally.attribution_s, 3), "total_s": None},
    }
