"""Finding a run's images, Grad-CAM overlays, region scores and suspect-label flags.

Every reader is defensive: the explain/ and integrity outputs are optional, and a missing
file or key means "not available", never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, stored


def data_root(meta: dict[str, Any]) -> Path | None:
    """Folder the predictions' ``path`` column is relative to (manifest folder or ImageFolder)."""
    raw, kind = stored.dataset_path(meta)
    if raw is None:
        return None
    path = Path(raw)
    return path if kind == "imagefolder" or path.is_dir() else path.parent


def image_file(root: Path | None, rel: Any) -> Path | None:
    """The image on disk, or None when the data set root or the file is not there."""
    if root is None or not isinstance(rel, str) or not rel:
        return None
    file = root / rel
    return file if file.is_file() else None


_INT = re.compile(r"(\d+)")


@dataclass
class Explanations:
    """Overlays (PNG per explained image) and region scores written by explain/ for one run."""

    overlays: dict[int, list[Path]] = field(default_factory=dict)
    regions: pd.DataFrame | None = None
    summary: dict[str, Any] | None = None

    @property
    def available(self) -> bool:
        return bool(self.overlays) or (self.regions is not None and len(self.regions) > 0)

    def for_row(self, row: int) -> tuple[list[Path], pd.DataFrame | None]:
        regions = None
        if self.regions is not None and "row" in self.regions.columns:
            regions = self.regions[self.regions["row"] == row]
        return self.overlays.get(int(row), []), regions


def _row_of(name: str) -> int | None:
    """Row number from an overlay file name ('000123.png', 'row123_gradcam.png', '123-pred.png')."""
    m = re.search(r"row[_-]?(\d+)", name) or _INT.search(name)
    return int(m.group(1)) if m else None


def explanations(run_path: Path) -> Explanations:
    """Read ``explain/`` of a run; empty when the run has none. Cached by the folder's mtime."""
    folder = run_path / "explain"
    if not folder.is_dir():
        return Explanations()
    return _explanations(str(folder), data.mtime(folder), data.mtime(folder / "overlays"))


@st.cache_resource(show_spinner=False, max_entries=16)
def _explanations(folder_s: str, stamp: int, overlays_stamp: int) -> Explanations:
    folder = Path(folder_s)
    ex = Explanations(summary=data.read_json(folder / "summary.json"))
    regions = data.read_parquet(folder / "regions.parquet")
    ex.regions = regions
    overlays: dict[int, list[Path]] = {}
    # Prefer regions.parquet's overlay column (explain/stage.py: "overlays/<row>.png").
    if regions is not None and "overlay" in regions.columns:
        for row, name in zip(regions["row"], regions["overlay"], strict=False):
            if isinstance(name, str) and name:
                file = folder / name if not Path(name).is_absolute() else Path(name)
                if not file.is_file():
                    file = folder / "overlays" / Path(name).name
                if file.is_file() and file not in overlays.setdefault(int(row), []):
                    overlays[int(row)].append(file)
    if not overlays:
        for file in (
            sorted((folder / "overlays").glob("*.png")) if (folder / "overlays").is_dir() else []
        ):
            row = _row_of(file.stem)
            if row is not None:
                overlays.setdefault(row, []).append(file)
    ex.overlays = overlays
    return ex
