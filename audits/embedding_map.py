"""The embedding map: a 2-D layout of a run's stored embeddings, computed once and stored.

PCA (scikit-learn) or UMAP (``umap-learn``, optional). The audit's stage uses PCA unless told
``--map umap``: UMAP's numba compilation costs every new process seconds to minutes, more than
a small audit itself (measured in bench/embedding_map.py). The map is stored in the run's
``embedding-map/`` folder: ``map.parquet`` (``row``, ``x``, ``y`` as float32, row = the
predictions row) and ``map.json`` (method, n, seconds, params); the audit also puts the record
into ``audit.json``. A run gets a map (or a second method's, in ``embedding-map-<method>/``)
later through ``add_map_to_run`` (``audits.store.add_to_run``), once: it never overwrites.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.errors import AuditError
from audits.runs.reader import MAP_DIR, open_run
from audits.runs.writer import write_record

MAP_TABLE = "map.parquet"
METHODS = ("auto", "umap", "pca")
#: The audit stage's method (see the module's note); the dashboard's button uses ``auto``.
STAGE_METHOD = "pca"

#: UMAP's settings (umap-learn's defaults, written down so the stored params say them).
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
#: Embeddings wider than this are first reduced by PCA: the neighbour search then costs a tenth
#: on 512-wide embeddings and the layout is the same up to noise (a common UMAP preprocessing).
UMAP_PCA_DIMS = 50
MIN_ROWS = 3


def umap_available() -> bool:
    """Whether ``umap-learn`` is installed (without importing it: numba's import is slow)."""
    return importlib.util.find_spec("umap") is not None


def resolve_method(requested: str = "auto") -> str:
    """``umap`` or ``pca``: ``auto`` is UMAP when installed; asking for UMAP without it fails."""
    if requested not in METHODS:
        raise AuditError(f"map method {requested!r}: unknown; choose one of {', '.join(METHODS)}")
    if requested == "auto":
        return "umap" if umap_available() else "pca"
    if requested == "umap" and not umap_available():
        raise AuditError(
            "map method 'umap': umap-learn is not installed "
            "(pip install -c constraints.txt umap-learn==0.5.12, or use pca)"
        )
    return requested


@dataclass(frozen=True)
class EmbeddingMap:
    """2-D coordinates (float32 [n, 2], row i = predictions row i) and how they were made."""

    xy: np.ndarray
    method: str
    params: dict[str, Any]
    seconds: float

    def record(self) -> dict[str, Any]:
        """The ``embedding_map`` block of ``audit.json`` (and ``map.json``)."""
        return {
            "method": self.method,
            "n": int(len(self.xy)),
            "seconds": round(self.seconds, 3),
            "params": self.params,
            "file": f"{MAP_DIR}/{MAP_TABLE}",
        }


def _checked(embeddings: np.ndarray) -> np.ndarray:
    """float32 [n, d]; too few rows or a non-finite value is an ``AuditError`` saying which."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise AuditError(f"embeddings: expected a 2-D array [n, d], got shape {x.shape}")
    if len(x) < MIN_ROWS:
        raise AuditError(
            f"embeddings: a map needs at least {MIN_ROWS} images, the run has {len(x)}"
        )
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = ", ".join(str(i) for i in np.flatnonzero(bad)[:5])
        raise AuditError(
            f"embeddings: {int(bad.sum())} rows hold NaN or Inf (rows {rows}…); no map drawn"
        )
    return x


def pca_map(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """The first two principal components (sklearn's PCA, exact; signs fixed by sklearn).

    The covariance eigen-solver is exact like a full SVD and, for n >> d, several times faster.
    """
    from sklearn.decomposition import PCA

    n_components = min(2, x.shape[1])
    solver = "covariance_eigh" if len(x) >= x.shape[1] else "full"
    pca = PCA(n_components=n_components, svd_solver=solver, random_state=seed)
    xy = pca.fit_transform(x)
    if n_components < 2:  # one embedding dimension: the map is a line
        xy = np.column_stack([xy, np.zeros(len(xy))])
    explained = [round(float(v), 4) for v in pca.explained_variance_ratio_]
    return xy.astype(np.float32), {"explained_variance_ratio": explained, "seed": seed}


def umap_map(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """UMAP with ``random_state=seed``: deterministic, and therefore single-threaded (umap-learn
    turns parallelism off when a seed is given)."""
    import umap  # slow first import (numba); only here

    params: dict[str, Any] = {
        "n_neighbors": min(UMAP_NEIGHBOURS, len(x) - 1),
        "min_dist": UMAP_MIN_DIST,
        "metric": "euclidean",
        "seed": seed,
    }
    if x.shape[1] > UMAP_PCA_DIMS and len(x) > UMAP_PCA_DIMS:
        from sklearn.decomposition import PCA

        x = PCA(
            n_components=UMAP_PCA_DIMS, svd_solver="covariance_eigh", random_state=seed
        ).fit_transform(x)
        params["pca_dims"] = UMAP_PCA_DIMS
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=params["n_neighbors"],
        min_dist=UMAP_MIN_DIST,
        metric="euclidean",
        random_state=seed,
        init="spectral" if len(x) > params["n_neighbors"] + 2 else "random",
        n_jobs=1,
    )
    with warnings.catch_warnings():
        # A set of well-separated classes gives a disconnected neighbour graph; the spectral
        # start then warns, and the layout is still right (each component is placed apart).
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden")
        xy = reducer.fit_transform(x.astype(np.float32))
    return np.asarray(xy, dtype=np.float32), params


def compute_map(embeddings: np.ndarray, method: str = "auto", seed: int = 0) -> EmbeddingMap:
    """The 2-D map of ``embeddings`` (float16/32 [n, d]) by ``method`` (auto, umap or pca)."""
    chosen = resolve_method(method)
    x = _checked(embeddings)
    started = time.perf_counter()
    xy, params = umap_map(x, seed) if chosen == "umap" else pca_map(x, seed)
    return EmbeddingMap(xy, chosen, params, time.perf_counter() - started)


def write_map(folder: Path, emap: EmbeddingMap) -> dict[str, Any]:
    """Write ``map.parquet`` and ``map.json`` into ``folder``; returns the record."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "row": np.arange(len(emap.xy), dtype=np.int64),
            "x": emap.xy[:, 0].astype(np.float32),
            "y": emap.xy[:, 1].astype(np.float32),
        }
    )
    table.to_parquet(folder / MAP_TABLE, index=False)
    record = emap.record()
    write_record(folder, record, "embedding_map")
    return record


def map_stage(ctx: Any) -> dict[str, Any] | None:
    """The audit's map stage: the embeddings the inference just wrote, into ``embedding-map/``.

    ``ctx`` is an ``audits.context.AuditContext``; ``options['map_method']`` picks the method.
    A run of fewer than ``MIN_ROWS`` images, or without embeddings, has no map (None).
    """
    file = Path(ctx.run_dir) / "embeddings.npy"
    if not file.is_file():  # a model format without an embedding output
        return None
    embeddings = np.load(file, mmap_mode="r")
    if len(embeddings) < MIN_ROWS:
        return None
    emap = compute_map(embeddings, ctx.options.get("map_method", STAGE_METHOD))
    return write_map(Path(ctx.run_dir) / MAP_DIR, emap)


def add_map_to_run(run_dir: str | Path, method: str = "auto") -> dict[str, Any]:
    """Compute and store the map of an existing audit run by ``method``, once; its record.

    The first map of a run goes to ``embedding-map/``, a second method's to
    ``embedding-map-<method>/``. A map by that method already stored is kept (runs are
    immutable) and its record returned; of two callers at once, the second one's rename fails
    and the first one's map is returned.
    """
    from audits.store import add_to_run

    chosen = resolve_method(method)
    run = open_run(run_dir)
    existing = run.embedding_maps.get(chosen)
    if existing is not None:
        return existing.record.as_dict()
    emap = compute_map(run.embeddings, chosen)
    name = f"{MAP_DIR}-{chosen}" if run.embedding_maps else MAP_DIR
    try:
        with add_to_run(run.path, name) as tmp:
            return write_map(tmp, emap)
    except (FileExistsError, AuditError, OSError):
        again = open_run(run.path).embedding_maps.get(chosen)
        if again is None:
            raise
        return again.record.as_dict()
