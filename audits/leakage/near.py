"""Near duplicates: resized or re-encoded copies of training images in the held-out set.

Perceptual signatures decide (``thresholds.py`` says how the thresholds were measured); the
model's embeddings can flag pairs too when ``cosine_min`` is set. Pairs are listed one per
held-out image (its best training match), leaving out images that are already exact
duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audits.leakage.nearest import cosine_nearest, perceptual_nearest
from audits.leakage.signatures import SIGNATURE_SIDE, Signatures, hamming, signatures, thumb_rms
from audits.leakage.thresholds import COSINE_MIN, PHASH_MAX_DISTANCE, THUMB_RMS_MAX


def sample_rows(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions: all of ``range(n)`` or a uniform sample of ``cap`` of them."""
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False)).astype(np.int64)


def near_duplicate_pairs(
    perceptual: tuple[np.ndarray, np.ndarray] | None,
    cosine: tuple[np.ndarray, np.ndarray] | None = None,
    rms_max: float = THUMB_RMS_MAX,
    cosine_min: float | None = COSINE_MIN,
    exclude: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One pair per test row flagged by either signal: ``{test, train, found_by}``.

    ``perceptual`` is (index, thumbnail RMS) from ``perceptual_nearest``; ``cosine`` is
    (index, cosine) from ``cosine_nearest``, in the same training numbering. The pair names
    the perceptual match when there is one (the more literal evidence).
    """
    sizes = [len(x[0]) for x in (perceptual, cosine) if x is not None]
    n = sizes[0] if sizes else 0
    p_flag = np.zeros(n, bool)
    c_flag = np.zeros(n, bool)
    if perceptual is not None:
        p_flag = (perceptual[0] >= 0) & (perceptual[1] <= rms_max)
    if cosine is not None and cosine_min is not None:
        with np.errstate(invalid="ignore"):
            c_flag = (cosine[0] >= 0) & (cosine[1] >= cosine_min)
    flagged = p_flag | c_flag
    if exclude is not None:
        flagged &= ~exclude
    pairs = []
    for i in np.flatnonzero(flagged):
        by = [name for name, f in (("perceptual", p_flag[i]), ("embedding", c_flag[i])) if f]
        train = int(perceptual[0][i]) if p_flag[i] else int(cosine[0][i])  # type: ignore[index]
        pairs.append({"test": int(i), "train": train, "found_by": by})
    return pairs


@dataclass
class EmbeddingMatch:
    """The embedding check: each test row's most similar embedded training image."""

    test: np.ndarray  # test embeddings, one per test row
    train: np.ndarray  # training embeddings, row k at training position embedded_rows[k]
    embedded_rows: np.ndarray
    nearest: tuple[np.ndarray, np.ndarray]  # (training position or -1, centred cosine)
    mean: np.ndarray = field(init=False)
    _position: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.train, dtype=np.float64).mean(axis=0)
        self._position = {int(r): k for k, r in enumerate(self.embedded_rows)}

    @classmethod
    def search(
        cls,
        test: np.ndarray,
        train: np.ndarray,
        embedded_rows: np.ndarray,
        device: str | torch.device = "cpu",
    ) -> EmbeddingMatch:
        """Find each test row's nearest training embedding (on ``device``)."""
        rows = np.asarray(embedded_rows, np.int64)
        idx, cos = cosine_nearest(test, train, device=device)
        return cls(test, train, rows, (np.where(idx >= 0, rows[np.clip(idx, 0, None)], -1), cos))

    def cosine(self, i: int, j: int) -> float | None:
        """Centred cosine of test row ``i`` and training position ``j`` (as ``cosine_nearest``),
        rounded; None when ``j`` was not embedded."""
        k = self._position.get(j)
        if k is None:
            return None
        a = np.asarray(self.test[i], dtype=np.float64) - self.mean
        b = np.asarray(self.train[k], dtype=np.float64) - self.mean
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        return round(float(a @ b / denom) if denom > 0 else float("nan"), 5)


@dataclass
class NearDuplicates:
    """The near-duplicate search over all test rows, and what the report says about it."""

    pairs: list[dict[str, Any]]  # {test, train, found_by}, one per flagged test row
    mask: np.ndarray  # flagged test rows
    exclude: np.ndarray  # test rows left out (exact duplicates)
    nearest: np.ndarray  # perceptual match per test row as a training position, or -1
    rms: np.ndarray  # its thumbnail RMS (inf without a match)
    distance: np.ndarray  # its phash distance (65 without a match)
    test_sig: Signatures
    train_sig: Signatures
    searched: np.ndarray  # training positions searched, in the order of train_sig
    embedding: EmbeddingMatch | None
    phash_max: int
    rms_max: float
    cosine_min: float | None
    _local: dict[int, int] = field(init=False)  # training position -> row of train_sig

    def __post_init__(self) -> None:
        self._local = {int(j): k for k, j in enumerate(self.searched)}

    def details(self, pair: dict[str, Any]) -> dict[str, Any]:
        """A listed pair's evidence: found_by, phash distance, thumbnail RMS (and cosine)."""
        i, j = pair["test"], pair["train"]
        out = {"found_by": pair["found_by"], "phash_distance": None, "thumb_rms": None}
        k = self._local.get(j)
        if k is not None and self.test_sig.valid[i] and self.train_sig.valid[k]:
            out["phash_distance"] = int(hamming(self.test_sig.phash[i], self.train_sig.phash[k]))
            rms = thumb_rms(self.test_sig.thumbs[i], self.train_sig.thumbs[k])
            out["thumb_rms"] = round(float(rms), 3)
        if self.embedding is not None:
            out["cosine"] = self.embedding.cosine(i, j)
        return out

    def closest_unflagged(self) -> tuple[int, int, dict[str, Any]] | None:
        """The closest perceptual pair that was *not* flagged (the threshold's margin on this
        data): (test row, training position, evidence), or None."""
        unflagged = np.flatnonzero((self.nearest >= 0) & ~self.mask & ~self.exclude)
        if not len(unflagged):
            return None
        i = int(unflagged[np.argmin(self.rms[unflagged])])
        evidence = {
            "phash_distance": int(self.distance[i]),
            "thumb_rms": round(float(self.rms[i]), 3),
        }
        return i, int(self.nearest[i]), evidence

    @property
    def unreadable_test_images(self) -> int:
        return int((~self.test_sig.valid).sum())

    @property
    def method(self) -> str:
        """The check in words, as the report states it."""
        side = SIGNATURE_SIDE
        text = (
            f"phash within {self.phash_max} bits, then {side}x{side} grey thumbnails "
            f"within RMS {self.rms_max:g}"
        )
        if self.embedding is not None:
            text += f"; or embedding cosine >= {self.cosine_min:g}"
        return text


def find_near_duplicates(
    test_paths: list[Path],
    train_paths: list[Path],
    searched: np.ndarray,
    exclude: np.ndarray,
    embedding: EmbeddingMatch | None = None,
    phash_max: int = PHASH_MAX_DISTANCE,
    rms_max: float = THUMB_RMS_MAX,
    cosine_min: float | None = COSINE_MIN,
    device: str | torch.device = "cpu",
    threads: int = 4,
) -> NearDuplicates:
    """Near duplicates of the training images at positions ``searched`` among the test images;
    ``train_paths`` are those images' files, in the same order."""
    test_sig = signatures(test_paths, threads)
    train_sig = signatures(train_paths, threads)
    idx, rms, dist = perceptual_nearest(test_sig, train_sig, phash_max, device)
    idx = np.where(idx >= 0, searched[np.clip(idx, 0, None)], -1)
    cosine = embedding.nearest if embedding is not None else None
    pairs = near_duplicate_pairs((idx, rms), cosine, rms_max, cosine_min, exclude)
    mask = np.zeros(len(test_paths), bool)
    mask[[p["test"] for p in pairs]] = True
    return NearDuplicates(
        pairs=pairs,
        mask=mask,
        exclude=exclude,
        nearest=idx,
        rms=rms,
        distance=dist,
        test_sig=test_sig,
        train_sig=train_sig,
        searched=searched,
        embedding=embedding,
        phash_max=phash_max,
        rms_max=rms_max,
        cosine_min=cosine_min,
    )
