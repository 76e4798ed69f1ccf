"""Two more production batches for the demo, so that the Drift page's timeline has a history.

Both are cut from generated sets (no new images, no generated set or fingerprint changes): a
manifest of chosen rows is written beside the set's own manifest (paths stay inside its
folder) and checked for drift against the held-out set with the newest demo version.

* ``dealer archive``: 300 dealer-era photos sampled from ``train_v1`` (which the newest version
  never trained on): close to the held-out set, with a small, real shift.
* ``fan photos, May``: the fan batch's May photos: the fans' camera look, drifted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

#: (label, generated set, manifest file written beside it).
BATCHES = (
    ("dealer archive", "train_v1", "dealer_archive.csv"),
    ("fan photos, May", "fan_batch", "fan_may.csv"),
)
ARCHIVE_ROWS = 300
ARCHIVE_SEED = 17


def _rows(label: str, table: pd.DataFrame) -> pd.DataFrame:
    if label == "dealer archive":
        rng = np.random.default_rng(ARCHIVE_SEED)
        keep = np.sort(rng.choice(len(table), size=min(ARCHIVE_ROWS, len(table)), replace=False))
        return table.iloc[keep]
    return table[table["date"].astype(str) >= "2025-05-01"]


def batch_manifest(label: str, source: Path, name: str) -> Path:
    """The batch's manifest beside ``source`` (written once, atomically)."""
    out = source.parent / name
    if not out.is_file():
        table = pd.read_csv(source, dtype=str, keep_default_na=False)  # cells kept as written
        tmp = out.with_name(f".{name}.tmp-{os.getpid()}")
        _rows(label, table).to_csv(tmp, index=False)
        os.replace(tmp, out)
    return out


def ensure_batches(
    manifests: dict[str, Path],
    has_run: Callable[[str], bool],
    check: Callable[[Path, str], object],
) -> None:
    """Check each batch that ``has_run(label)`` says is not in the store yet (``check(manifest,
    label)`` runs the drift check)."""
    for label, source, name in BATCHES:
        if not has_run(label):
            check(batch_manifest(label, Path(manifests[source]), name), label)
