"""The files of an explain folder: ``heatmaps.npy``, the rows of ``regions.parquet``, overlays.

The layout itself is described in ``explain.stage``; this module only writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from audits.datasets import ROI_COLUMNS
from audits.npy_writer import NpyRows
from explain.overlay import save_overlay
from explain.regions import region_scores

REGION_COLUMNS = [
    "index",
    "slot",
    "role",
    "kind",
    "row",
    "path",
    "label",
    "pred",
    "class",
    "class_idx",
    "correct",
    "loss",
    "confidence",
    "method",
    "layer",
    "roi_energy",
    "roi_peak",
    "roi_area",
    "overlay",
]


@dataclass
class HeatmapFile:
    """Streams heatmaps into ``heatmaps.npy`` with plain writes (flat memory for any count).

    Not a writable memory map: on a full disk that dies of SIGBUS; a write raises ENOSPC.
    """

    path: Path
    shape: tuple[int, int, int, int]

    def __post_init__(self) -> None:
        # Rows of unreadable images (never put) stay NaN.
        self.rows = NpyRows(self.path, np.float16, row_shape=self.shape[1:], fill=np.nan)

    def put(self, index: np.ndarray, maps: np.ndarray) -> None:
        """Write ``maps`` (float16 ``[n, 2, h, w]``) into rows ``index`` (ascending)."""
        self.rows.put(index, maps)

    def close(self) -> None:
        self.rows.close(rows=self.shape[0])


def stored_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """Heatmap size on disk: input size, shrunk to fit ``side`` (0 = no limit), aspect kept."""
    h, w = size
    if not side or max(h, w) <= side:
        return h, w
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def batch_scores(maps: torch.Tensor, part: pd.DataFrame) -> dict[str, np.ndarray]:
    """Region numbers of a batch's maps against the rows' region boxes (in original pixels)."""
    boxes = torch.as_tensor(
        part[ROI_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    )
    wh = torch.as_tensor(part[["width", "height"]].to_numpy(dtype=float))
    return {k: v.cpu().numpy() for k, v in region_scores(maps, boxes, wh).items()}


def region_records(
    index: int,
    row: pd.Series,
    scores: dict[str, np.ndarray] | None,
    j: int,
    info: dict[str, str | None],
    overlays: bool,
) -> list[dict[str, Any]]:
    """The two ``regions.parquet`` rows (predicted, true) of explained image ``index``.

    ``scores`` are the batch's region numbers (None without boxes), ``j`` the image's place in
    the batch, ``info`` the method's ``describe()``.
    """
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


def regions_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """``regions.parquet``: float32 shares, ``roi_peak`` as a nullable boolean."""
    frame = pd.DataFrame.from_records(records, columns=REGION_COLUMNS)
    frame["roi_energy"] = frame["roi_energy"].astype("float32")
    frame["roi_area"] = frame["roi_area"].astype("float32")
    peak = frame["roi_peak"].astype("float64")
    frame["roi_peak"] = pd.array(np.where(np.isnan(peak), None, peak == 1.0), dtype="boolean")
    return frame


def row_overlay(
    path: Path,
    image: np.ndarray,
    maps: np.ndarray,
    row: pd.Series,
    size: tuple[int, int],
    has_roi: bool,
) -> None:
    """``overlays/<row>.png``: the image, then the predicted (and, for a failure, true) map."""
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
