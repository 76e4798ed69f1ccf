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

import hashlib
import sys
import time
from dataclasses import dataclass
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
from audits.fsio import write_json
from audits.images import BadImage, load_for_model
from audits.model_card import ModelCard
from explain.overlay import save_overlay
from explain.pairs import DEFAULT_THRESHOLD, class_baselines, pair_summaries
from explain.regions import region_scores
from explain.registry import DEFAULT_METHOD, canonical, get_method
from explain.select import DEFAULT_BASELINE, DEFAULT_MAX_FAILURES, select_images

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
    "method", "layer", "folder", "n_failures", "n_explained", "n_baseline", "capped", "top_by_loss",
    "has_roi", "energy_threshold", "pairs", "baselines", "heatmaps_per_s",
)  # fmt: skip


def explain_stage(ctx: AuditContext) -> dict[str, Any]:
    """The runner's hook: writes ``ctx.run_dir / "explain"``; returns the summary for audit.json."""
    out = ctx.run_dir / "explain"
    out.mkdir()
    summary = run_explain(
        ctx.model, ctx.card, ctx.device, ctx.image_set, ctx.predictions.table, out,
        options=ctx.options, progress=ctx.progress, folder="explain",
    )  # fmt: skip
    return compact(summary)


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


class _Images(torch.utils.data.Dataset):
    """Decodes the selected images to the model's input (uint8 CHW); a failure is a reason string."""

    def __init__(self, root: Path, rows: pd.DataFrame, card: ModelCard, verify: bool) -> None:
        self.root, self.card, self.verify = root, card, verify
        self.paths = rows["path"].tolist()
        self.hashes = rows["file_sha256"].tolist() if "file_sha256" in rows else [None] * len(rows)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        blank = torch.zeros(self.card.channels, *self.card.size, dtype=torch.uint8)
        path = self.root / self.paths[i]
        try:
            data = path.read_bytes()
        except OSError as exc:
            return blank, i, f"cannot read file ({exc.strerror or exc})"
        if self.verify and self.hashes[i] and hashlib.sha256(data).hexdigest() != self.hashes[i]:
            return blank, i, "changed since the run (sha256 differs)"
        try:
            arr, _, _ = load_for_model(data, self.card.size, self.card.channels)
        except BadImage as exc:
            return blank, i, str(exc)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), i, ""


@dataclass
class _Writer:
    """Streams heatmaps into a memory-mapped ``heatmaps.npy`` (flat memory for any count)."""

    path: Path
    shape: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        self.mm: np.ndarray | None = None
        if self.shape[0] == 0:  # an empty file cannot be memory-mapped
            np.save(self.path, np.zeros(self.shape, dtype=np.float16))
            return
        self.mm = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=np.float16, shape=self.shape
        )
        self.mm[:] = np.nan  # rows of unreadable images stay NaN

    def put(self, index: np.ndarray, maps: np.ndarray) -> None:
        assert self.mm is not None
        self.mm[index] = maps

    def close(self) -> None:
        if self.mm is not None:
            self.mm.flush()
            self.mm = None


def stored_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """Heatmap size on disk: input size, shrunk to fit ``side`` (0 = no limit), aspect kept."""
    h, w = size
    if not side or max(h, w) <= side:
        return h, w
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


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
    """Explain the failures (and a baseline) of a predictions table into ``out_dir``; returns the summary."""
    started = time.perf_counter()
    opts = resolve_options(options)
    method_name = canonical(str(opts["explain_method"]))
    selection = select_images(
        table,
        max_failures=None if opts["explain_max"] is None else int(opts["explain_max"]),
        top_by_loss=bool(opts["explain_top_by_loss"]),
        baseline=int(opts["explain_baseline"]),
        seed=int(opts["explain_seed"]),
    )
    amp = None
    if opts["explain_amp"] and device.type == "cuda":
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    kwargs = {"amp": amp} if amp is not None else {}
    model.eval()
    method = get_method(
        method_name,
        model,
        opts["explain_layer"] or card.target_layer,
        input_shape=(card.channels, *card.size),
        **kwargs,
    )
    rows = selection.rows
    has_roi = all(c in table.columns for c in ROI_COLUMNS)
    overlays = bool(opts["explain_overlays"])
    if overlays:
        (out_dir / "overlays").mkdir(exist_ok=True)
    size = tuple(card.size)
    store_hw = stored_size(size, int(opts["explain_heatmap_side"] or 0))
    writer = _Writer(out_dir / "heatmaps.npy", (len(rows), 2, *store_hw))
    batch_size = int(opts["explain_batch_size"] or (64 if device.type == "cuda" else 32))
    mean = torch.tensor(card.mean, device=device).view(1, -1, 1, 1) * 255.0
    std = torch.tensor(card.std, device=device).view(1, -1, 1, 1) * 255.0

    records: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    attribution_s = 0.0
    n_maps = 0
    loader = _loader(image_set.root, rows, card, verify_files, batch_size, device)
    from tqdm import tqdm

    bar = tqdm(total=len(rows), unit="img", desc="explain", file=sys.stderr, disable=not progress)
    try:
        for batch_u8, index, reasons in loader:
            index = index.numpy()
            ok = np.array([r == "" for r in reasons], dtype=bool)
            for pos in np.flatnonzero(~ok):
                skipped.append({"path": str(rows["path"].iloc[index[pos]]), "reason": reasons[pos]})
            bar.update(len(index))
            if not ok.any():
                continue
            idx = index[ok]
            part = rows.iloc[idx]
            u8 = batch_u8[torch.from_numpy(ok)]
            x = (u8.to(device, non_blocking=True).float() - mean) / std
            targets = torch.as_tensor(
                np.stack([part["pred_idx"], part["label_idx"]], axis=1), device=device
            )
            t0 = time.perf_counter()
            if bool((targets[:, 0] == targets[:, 1]).all()):
                # Correct images: one map serves both slots.
                maps = method.attribute(x, targets[:, 0]).unsqueeze(1).expand(-1, 2, -1, -1)
                n_new = len(idx)
            else:
                maps = method.attribute(x, targets)
                n_new = 2 * len(idx)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            attribution_s += time.perf_counter() - t0
            n_maps += n_new
            scores = _scores(maps, part) if has_roi else None
            small = maps if store_hw == size else F.interpolate(maps, size=store_hw, mode="area")
            writer.put(idx, small.to(torch.float16).cpu().numpy())
            maps_cpu = maps.float().cpu().numpy() if overlays else None
            images = u8.permute(0, 2, 3, 1).numpy()
            for j, i in enumerate(idx):
                row = part.iloc[j]
                records.extend(_records(int(i), row, scores, j, method, overlays))
                if maps_cpu is not None:
                    _overlay(
                        out_dir / "overlays" / f"{int(row['row'])}.png",
                        images[j],
                        maps_cpu[j],
                        row,
                        size,
                        has_roi,
                    )
    finally:
        bar.close()
        writer.close()

    regions = _regions_table(records)
    regions.to_parquet(out_dir / "regions.parquet", index=False)
    totals = _pair_totals(table)
    threshold = None if opts["explain_threshold"] is None else float(opts["explain_threshold"])
    pairs = pair_summaries(regions, totals, threshold=threshold)
    info = method.describe()
    n_fail = int((regions["kind"] == "failure").sum() // 2) if len(regions) else 0
    summary = {
        "method": info["method"],
        "layer": info["layer"],
        "folder": folder,
        "n_failures": selection.n_failures,
        "n_explained": n_fail,
        "n_baseline": int((regions["kind"] == "baseline").sum() // 2) if len(regions) else 0,
        "capped": selection.capped,
        "top_by_loss": bool(opts["explain_top_by_loss"]),
        "has_roi": has_roi,
        "energy_threshold": "box area" if threshold is None else threshold,
        "pairs": pairs,
        "baselines": class_baselines(regions),
        "heatmaps_per_s": round(n_maps / attribution_s, 2) if attribution_s > 0 else None,
        "skipped": skipped,
        "device": device.type,
        "input_size": list(size),
        "heatmap_size": list(store_hw),
        "normalisation": NORMALISATION,
        "layout": {
            "heatmaps.npy": f"float16 [n_explained, 2, {store_hw[0]}, {store_hw[1]}]; axis 1 = (predicted, true); "
            "axis 0 = regions.parquet 'index'",
            "regions.parquet": "one row per (explained image, slot); roi_energy = share of heatmap energy in the "
            "region box, roi_peak = heatmap maximum inside it, roi_area = box share of the image",
            "overlays": "overlays/<row>.png, row = predictions.parquet row" if overlays else None,
        },
        "options": {k: opts[k] for k in DEFAULTS},
        "timings": {
            "attribution_s": round(attribution_s, 3),
            "total_s": round(time.perf_counter() - started, 3),
        },
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def _loader(
    root: Path,
    rows: pd.DataFrame,
    card: ModelCard,
    verify: bool,
    batch_size: int,
    device: torch.device,
) -> torch.utils.data.DataLoader:
    from audits.inference import default_workers

    # Worker start-up costs more than it saves for a few hundred small images.
    workers = default_workers(device) if len(rows) > 512 else 0
    return torch.utils.data.DataLoader(
        _Images(root, rows, card, verify),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


def _scores(maps: torch.Tensor, part: pd.DataFrame) -> dict[str, np.ndarray]:
    boxes = torch.as_tensor(
        part[ROI_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    )
    wh = torch.as_tensor(part[["width", "height"]].to_numpy(dtype=float))
    return {k: v.cpu().numpy() for k, v in region_scores(maps, boxes, wh).items()}


def _records(
    index: int,
    row: pd.Series,
    scores: dict[str, np.ndarray] | None,
    j: int,
    method: Any,
    overlays: bool,
) -> list[dict[str, Any]]:
    info = method.describe()
    out = []
    for slot, (role, cls, cls_idx) in enumerate(
        (("predicted", row["pred"], row["pred_idx"]), ("true", row["label"], row["label_idx"]))
    ):
        out.append(
            {
                "index": index,
                "slot": slot,
                "role": role,
                "kind": row["kind"],
                "row": int(row["row"]),
                "path": row["path"],
                "label": row["label"],
                "pred": row["pred"],
                "class": cls,
                "class_idx": int(cls_idx),
                "correct": bool(row["correct"]),
                "loss": float(row["loss"]),
                "confidence": float(row["confidence"]),
                "method": info["method"],
                "layer": info["layer"],
                "roi_energy": float(scores["energy"][j, slot]) if scores else float("nan"),
                "roi_peak": float(scores["peak"][j, slot]) if scores else float("nan"),
                "roi_area": float(scores["box_share"][j]) if scores else float("nan"),
                "overlay": f"overlays/{int(row['row'])}.png" if overlays else None,
            }
        )
    return out


def _regions_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [
        "index", "slot", "role", "kind", "row", "path", "label", "pred", "class", "class_idx", "correct",
        "loss", "confidence", "method", "layer", "roi_energy", "roi_peak", "roi_area", "overlay",
    ]  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["roi_energy"] = frame["roi_energy"].astype("float32")
    frame["roi_area"] = frame["roi_area"].astype("float32")
    peak = frame["roi_peak"].astype("float64")
    frame["roi_peak"] = pd.array(np.where(np.isnan(peak), None, peak == 1.0), dtype="boolean")
    return frame


def _pair_totals(table: pd.DataFrame) -> dict[tuple[str, str], int]:
    wrong = table[(table["label_idx"] >= 0) & ~table["correct"].astype(bool)]
    return {
        (str(a), str(b)): int(n) for (a, b), n in wrong.groupby(["label", "pred"]).size().items()
    }


def _overlay(
    path: Path,
    image: np.ndarray,
    maps: np.ndarray,
    row: pd.Series,
    size: tuple[int, int],
    has_roi: bool,
) -> None:
    box = None
    if has_roi:
        vals = pd.to_numeric(pd.Series([row[c] for c in ROI_COLUMNS]), errors="coerce").to_numpy(
            dtype=float
        )
        if np.isfinite(vals).all() and row["width"] > 0 and row["height"] > 0:
            sx, sy = size[1] / float(row["width"]), size[0] / float(row["height"])
            box = (vals[0] * sx, vals[1] * sy, vals[2] * sx, vals[3] * sy)
    conf = float(row["confidence"])
    if row["kind"] == "failure":
        captions = [
            f"true {row['label']}",
            f"why {row['pred']} ({conf:.2f})",
            f"{row['label']} evidence",
        ]
        heats = [maps[0], maps[1]]
    else:
        captions = [f"{row['label']} (correct)", f"why {row['pred']} ({conf:.2f})"]
        heats = [maps[0]]
    save_overlay(path, image, heats, captions, box)
