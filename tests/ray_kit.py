"""Shared by the Ray engine tests: a real local Ray, a small copy of the demo's held-out set
with two unreadable rows, and the comparison of two runs' stored numbers."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "fixtures" / "models" / "car-variants" / "1.0.0"
HELDOUT = REPO / "fixtures" / "data" / "heldout"
#: Enough rows for several audit batches on two actors, few enough for two loaded cores.
N_ROWS = 200
BATCH = 32


def small_heldout(root: Path) -> Path:
    """The first ``N_ROWS`` demo images copied (read-only use of the fixture) plus a file that is
    not an image and a listed file that is missing, as a manifest."""
    items = pd.read_csv(HELDOUT / "manifest.csv").head(N_ROWS)
    (root / "images").mkdir(parents=True)
    for rel in items["path"]:
        shutil.copyfile(HELDOUT / rel, root / rel)
    (root / "images" / "broken.png").write_bytes(b"not a png at all")
    extra = items.head(2).copy()
    extra["path"] = ["images/broken.png", "images/missing.png"]
    pd.concat([items.iloc[:50], extra, items.iloc[50:]]).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def local_ray(**init: object) -> Iterator[None]:
    """``ray.init(num_cpus=2)`` for a test module, shut down after it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (requirements-ray.txt)")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        **init,
    )
    try:
        yield
    finally:
        ray.shutdown()


def assert_same_numbers(local: Path, other: Path, heatmaps: bool = True) -> None:
    """Predictions, probabilities, embeddings, metrics, skips and fingerprint bit-identical."""
    pd.testing.assert_frame_equal(
        pd.read_parquet(local / "predictions.parquet"),
        pd.read_parquet(other / "predictions.parquet"),
        check_exact=True,
    )
    for name in ("probabilities.npy", "embeddings.npy"):
        a, b = np.load(local / name), np.load(other / name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b), name
    rec_a = json.loads((local / "audit.json").read_text())
    rec_b = json.loads((other / "audit.json").read_text())
    assert rec_a["metrics"] == rec_b["metrics"]
    assert rec_a["skipped"] == rec_b["skipped"]
    assert rec_a["dataset"] == {**rec_b["dataset"], "path": rec_a["dataset"]["path"]}
    if heatmaps:
        assert np.array_equal(
            np.load(local / "explain" / "heatmaps.npy"), np.load(other / "explain" / "heatmaps.npy")
        )
        sum_a = json.loads((local / "explain" / "summary.json").read_text())
        sum_b = json.loads((other / "explain" / "summary.json").read_text())
        for key in ("n_failures", "n_explained", "n_baseline", "pairs", "baselines"):
            assert sum_a[key] == sum_b[key], key
        pd.testing.assert_frame_equal(
            pd.read_parquet(local / "explain" / "regions.parquet"),
            pd.read_parquet(other / "explain" / "regions.parquet"),
            check_exact=True,
        )
