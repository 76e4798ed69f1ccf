"""The leakage report: the exact, group and near-duplicate checks combined, with accuracy with
and without the leaked images (``integrity.json``'s ``leakage`` section)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from audits.intervals import accuracy_block
from audits.leakage.exact import METHOD as EXACT_METHOD
from audits.leakage.exact import exact_duplicates
from audits.leakage.groups import group_check, group_leaks
from audits.leakage.near import EmbeddingMatch, NearDuplicates, find_near_duplicates
from audits.leakage.thresholds import COSINE_MIN, PHASH_MAX_DISTANCE, THUMB_RMS_MAX


@dataclass
class PairNames:
    """How the report names held-out rows and training images."""

    rows: np.ndarray  # the predictions table's ``row`` per test position
    test_paths: list[str]
    test_labels: list[Any]
    train_paths: list[str]
    train_labels: list[Any]

    @classmethod
    def of(cls, test: pd.DataFrame, train_items: pd.DataFrame) -> PairNames:
        rows = test["row"].to_numpy() if "row" in test.columns else np.arange(len(test))
        return cls(
            rows,
            test["path"].astype(str).tolist(),
            test["label"].tolist(),
            train_items["path"].astype(str).tolist(),
            train_items["label"].tolist(),
        )

    def pair(self, i: int, j: int) -> dict[str, Any]:
        """Test position ``i`` and training position ``j`` as the report lists them."""
        return {
            "test_row": int(self.rows[i]),
            "test_path": self.test_paths[i],
            "label": self.test_labels[i],
            "train_path": self.train_paths[j],
            "train_label": self.train_labels[j],
        }

    def group(self, g: dict[str, Any]) -> dict[str, Any]:
        """A leaked group: sizes, every test row, the first five paths on each side."""
        return {
            "group": g["group"],
            "n_test": len(g["test"]),
            "n_train": len(g["train"]),
            "test_rows": [int(self.rows[i]) for i in g["test"]],
            "test_paths": [self.test_paths[i] for i in g["test"][:5]],
            "train_paths": [self.train_paths[j] for j in g["train"][:5]],
        }


def _mask(n: int, positions: Sequence[int]) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[list(positions)] = True
    return mask


def find_leakage(
    test: pd.DataFrame,
    test_root: Path,
    train_items: pd.DataFrame,
    train_root: Path,
    train_hashes: Sequence[str | None],
    near_rows: np.ndarray | None = None,
    test_embeddings: np.ndarray | None = None,
    train_embeddings: np.ndarray | None = None,
    embedded_rows: np.ndarray | None = None,
    phash_max: int = PHASH_MAX_DISTANCE,
    rms_max: float = THUMB_RMS_MAX,
    cosine_min: float | None = COSINE_MIN,
    device: str | torch.device = "cpu",
    max_listed: int = 200,
    threads: int = 4,
) -> dict[str, Any]:
    """Every leakage check between a held-out predictions table and a training manifest.

    ``test`` is the predictions table (``row``, ``path``, ``label``, ``file_sha256``,
    ``label_idx``, ``correct``, optional ``group``); ``train_items`` the training set's rows.
    ``near_rows`` are the training positions searched for near duplicates (all when None).
    The embedding check runs when ``cosine_min`` is set and embeddings are given
    (``train_embeddings`` row k belongs to training position ``embedded_rows[k]``).
    Lists hold at most ``max_listed`` entries each; counts are always complete.
    """
    names = PairNames.of(test, train_items)
    exact = exact_duplicates(test["file_sha256"].tolist(), list(train_hashes))
    has_groups = "group" in test.columns and "group" in train_items.columns
    groups = group_leaks(test["group"], train_items["group"]) if has_groups else []
    searched = np.arange(len(train_items)) if near_rows is None else np.asarray(near_rows, np.int64)
    embedding = None
    use_embeddings = test_embeddings is not None and train_embeddings is not None
    if cosine_min is not None and use_embeddings and len(train_embeddings) > 0:
        embedding = EmbeddingMatch.search(test_embeddings, train_embeddings, embedded_rows, device)
    exact_mask = _mask(len(test), [p["test"] for p in exact])
    near = find_near_duplicates(
        [test_root / p for p in names.test_paths],
        [train_root / names.train_paths[j] for j in searched],
        searched,
        exact_mask,
        embedding,
        phash_max,
        rms_max,
        cosine_min,
        device,
        threads,
    )
    return _report(test, train_items, names, (exact, exact_mask), groups, near, max_listed)


def _report(
    test: pd.DataFrame,
    train_items: pd.DataFrame,
    names: PairNames,
    exact_found: tuple[list[dict[str, Any]], np.ndarray],
    groups: list[dict[str, Any]],
    near: NearDuplicates,
    max_listed: int,
) -> dict[str, Any]:
    """The leakage section from the three checks' findings (exact: pairs and test-row mask)."""
    exact, exact_mask = exact_found
    group_mask = _mask(len(test), [i for g in groups for i in g["test"]])
    leaked = exact_mask | group_mask | near.mask
    return {
        "available": True,
        "n_test": len(test),
        "n_train": len(train_items),
        "checks": {
            "exact": EXACT_METHOD,
            "group": group_check(test.columns, train_items.columns),
            "near": _near_check(near, names, len(train_items)),
        },
        "counts": {
            "exact": int(exact_mask.sum()),
            "group": len(groups),
            "group_test_images": int(group_mask.sum()),
            "near": int(near.mask.sum()),
            "leaked_images": int(leaked.sum()),
        },
        "exact": [
            names.pair(p["test"], p["train"]) | {"n_matches": p["n_matches"]}
            for p in exact[:max_listed]
        ],
        "groups": [names.group(g) for g in groups[:max_listed]],
        "near": [
            names.pair(p["test"], p["train"]) | near.details(p) for p in near.pairs[:max_listed]
        ],
        "truncated": {
            "exact": len(exact) > max_listed,
            "groups": len(groups) > max_listed,
            "near": len(near.pairs) > max_listed,
        },
        "leaked_rows": [int(names.rows[i]) for i in np.flatnonzero(leaked)],
        "accuracy": leakage_accuracy(test, leaked),
    }


def _near_check(near: NearDuplicates, names: PairNames, n_train: int) -> dict[str, Any]:
    """The ``checks.near`` block: settings, what was searched, and the closest pair left alone."""
    closest = near.closest_unflagged()
    embedded = near.embedding is not None
    return {
        "method": near.method,
        "phash_max_distance": int(near.phash_max),
        "thumb_rms_max": float(near.rms_max),
        "cosine_min": near.cosine_min,
        "embeddings": embedded,
        "n_train_searched": int(len(near.searched)),
        "sampled": bool(len(near.searched) < n_train),
        "n_train_embedded": int(len(near.embedding.embedded_rows)) if embedded else 0,
        "unreadable_test_images": near.unreadable_test_images,
        "closest_unflagged": None
        if closest is None
        else names.pair(closest[0], closest[1]) | closest[2],
    }


def leakage_accuracy(test: pd.DataFrame, leaked: np.ndarray) -> dict[str, dict[str, Any]]:
    """Accuracy (Wilson 95%) over all labelled rows, without the leaked ones, and of them alone."""
    labelled = test["label_idx"].to_numpy() >= 0
    correct = test["correct"].to_numpy(dtype=bool)
    return {
        "all": accuracy_block(correct[labelled]),
        "without_leaked": accuracy_block(correct[labelled & ~leaked]),
        "leaked": accuracy_block(correct[labelled & leaked]),
    }
