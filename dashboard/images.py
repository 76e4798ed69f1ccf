"""Finding a run's images, and the Grad-CAM overlays and region scores of one prediction.

The explain outputs are optional: a run without ``explain/`` has no overlays and no regions,
never an exception. Files inside the run are found by the run model (``audits.runs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from audits.runs import ExplainFolder
from audits.runs.models_audit import DatasetInfo


def data_root(dataset: DatasetInfo) -> Path | None:
    """Folder the predictions' ``path`` column is relative to (manifest folder or ImageFolder)."""
    if not dataset.path:
        return None
    path = Path(dataset.path)
    return path if dataset.kind == "imagefolder" or path.is_dir() else path.parent


def image_file(root: Path | None, rel: Any) -> Path | None:
    """The image on disk, or None when the data set root or the file is not there."""
    if root is None or not isinstance(rel, str) or not rel:
        return None
    file = root / rel
    return file if file.is_file() else None


def overlays(explain: ExplainFolder | None) -> dict[int, Path]:
    """Overlay PNGs by predictions row (none when the run has no ``explain/``)."""
    return explain.overlays if explain is not None else {}


def has_explanations(explain: ExplainFolder | None) -> bool:
    """Whether ``explain/`` holds overlays or region scores."""
    if explain is None:
        return False
    return bool(explain.overlays) or (explain.regions is not None and len(explain.regions) > 0)


def row_regions(explain: ExplainFolder | None, row: int) -> pd.DataFrame | None:
    """The region scores of one predictions row (its predicted and true class), if explained."""
    regions = explain.regions if explain is not None else None
    if regions is None or "row" not in regions.columns:
        return None
    return regions[regions["row"] == row]


#: Pixels of the longest side of an enlarged panel.
ENLARGED_SIDE = 512


def _stored_image(explain: ExplainFolder, row: int, size: tuple[int, int]) -> np.ndarray | None:
    """The first panel of the stored overlay strip (the image the model saw), when the data
    set's folder is not on this machine."""
    from explain.overlay import CAPTION_HEIGHT, GAP

    file = explain.overlay(row)
    if file is None:
        return None
    with Image.open(file) as strip:
        strip = strip.convert("RGB")
        side = (strip.width + GAP) // 3 - GAP  # three panels: image | predicted | true
        panel = strip.crop((0, CAPTION_HEIGHT, side, strip.height))
        return np.asarray(panel.resize(size, Image.Resampling.BILINEAR))


def heat_panels(
    explain: ExplainFolder | None,
    row: int,
    image: Path | None,
    alpha: float,
    box: tuple[float, float, float, float] | None = None,
    side: int = ENLARGED_SIDE,
) -> list[tuple[np.ndarray, str]]:
    """[(RGB panel, caption)]: the image, then each stored heat-map blended over it at
    ``alpha`` (the heat-map's weight), enlarged to ``side`` px, with the region box drawn.

    Rendering only: the heat-maps are the stored ones (``explain/heatmaps.npy``); ``box`` is in
    the original image's pixels. Empty when the row was not explained.
    """
    from explain.overlay import blend

    regions = row_regions(explain, row)
    maps = explain.heatmaps if explain is not None else None
    if regions is None or regions.empty or maps is None:
        return []
    h, w = maps.shape[-2:]
    if image is not None:
        with Image.open(image) as im:
            orig = im.size
            base = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.BILINEAR))
    else:
        base = _stored_image(explain, row, (w, h))
        orig = None
        if base is None:
            return []
    scale = side / max(h, w)
    size = (round(w * scale), round(h * scale))
    panels = [(base, "the image")]
    for rec in regions.sort_values("slot").to_dict("records"):
        heat = np.asarray(maps[int(rec["index"]), int(rec["slot"])], dtype=np.float32)
        what = "why the model said" if rec["role"] == "predicted" else "evidence for the true class"
        panels.append((blend(base, heat, alpha), f"{what}: {rec['class']}"))
    out = []
    for pixels, caption in panels:
        big = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
        if box is not None and orig is not None and all(np.isfinite(box)):
            sx, sy = size[0] / orig[0], size[1] / orig[1]
            x0, y0, x1, y1 = box
            ImageDraw.Draw(big).rectangle(
                [x0 * sx, y0 * sy, max(x0 * sx, x1 * sx - 1), max(y0 * sy, y1 * sy - 1)],
                outline=(255, 255, 255),
                width=3,
            )
        out.append((np.asarray(big), caption))
    return out
