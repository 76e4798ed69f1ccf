"""Finding a run's images, and the Grad-CAM overlays and region scores of one prediction.

The explain outputs are optional: a run without ``explain/`` has no overlays and no regions,
never an exception. Files inside the run are found by the run model (``audits.runs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

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
