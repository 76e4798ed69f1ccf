"""Leakage between a model's training set and the held-out set it is audited on.

Three ways a test image can have been seen in training:

* **exact duplicates**: the same bytes (file sha256) on both sides;
* **group leakage**: the same ``group`` (one physical object, e.g. one car advert) on both
  sides, even when every file differs;
* **near duplicates**: a resized or re-encoded copy. Each image gets a perceptual
  signature from one decode: the 64-bit ImageHash ``phash`` and a 16 x 16 grey thumbnail
  (Lanczos). For each held-out image, the training images within ``PHASH_MAX_DISTANCE``
  bits are candidates, and the one whose thumbnail is closest (RMS difference, grey levels)
  is a near duplicate when that difference is at most ``THUMB_RMS_MAX``. The thumbnail
  distances are matrix products, computed in blocks on the audit's device.
  Optionally (``cosine_min``), the model's own embeddings flag pairs too: cosine of the
  centred embeddings (training mean subtracted) of each held-out image's nearest training
  image, also in blocks on the device.

Thresholds, measured on the bundled demo (car renders, 128 px: 1,200 held-out images against
the 3,000 of ``train`` and of ``train_v1``, and 300 copies of training images resized to
0.4-2x and JPEG-compressed at quality 40-95):

* the 64-bit phash alone cannot tell them apart: copies are within 4 bits of their source,
  but 17 (``train``) and 29 (``train_v1``) clean held-out images are at distance 0 from a
  *different* training image (studio shots of other cars with the same layout), and over 500
  within 8 bits. So it only picks candidates;
* the 16 x 16 grey thumbnail decides: copies are within RMS 1.3 of their source, the closest
  clean pair is 4.4 apart. ``THUMB_RMS_MAX = 2.5`` sits in between. (Colour thumbnails do
  worse: JPEG's halved colour resolution moves copies up to 4.8. A crop or shift by a pixel
  or two is not caught: on these renders it moves as far as a different car does.)
* the demo model's penultimate embeddings do not separate copies from distinct images:
  with 1.0.0, a copy's centred cosine to its source ranges 0.66-1.0 (median 0.984) while
  clean held-out images reach 0.988 with their nearest training image (1% of them >= 0.98);
  uncentred, copies >= 0.971 and clean images up to 0.996 (a third >= 0.98). A classifier's
  embedding says "same class", not "same picture", so the embedding check is off by default
  (``COSINE_MIN = None``); switch it on for a model whose embeddings are instance-level.

Exact and near duplicates are listed one pair per held-out image (its best training match);
near duplicates leave out held-out images that are already exact duplicates.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from audits.images import BadImage, decode, to_mode
from audits.intervals import wilson_interval

PHASH_MAX_DISTANCE = 8
SIGNATURE_SIDE = 16
THUMB_RMS_MAX = 2.5
COSINE_MIN: float | None = None
#: Training images searched for near duplicates at most; a larger training set is sampled
#: (uniformly, fixed seed) and the report says so. Exact and group checks always use all rows.
MAX_TRAIN_NEAR = 50_000


# -- exact duplicates and groups ------------------------------------------------------------


def exact_duplicates(
    test_hashes: Sequence[str | None], train_hashes: Sequence[str | None]
) -> list[dict[str, Any]]:
    """Test rows whose file sha256 is also a training file's: ``{test, train, n_matches}``.

    ``test``/``train`` are positions in the two sequences; ``train`` is the first match.
    Unreadable files (hash None) never match.
    """
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for j, h in enumerate(train_hashes):
        if h:
            first.setdefault(h, j)
            count[h] = count.get(h, 0) + 1
    return [
        {"test": i, "train": first[h], "n_matches": count[h]}
        for i, h in enumerate(test_hashes)
        if h and h in first
    ]


def _group_keys(groups: Sequence[Any] | pd.Series) -> list[str | None]:
    """Groups as strings; blanks and missing values belong to no group."""
    return [None if g is None or pd.isna(g) else (str(g).strip() or None) for g in groups]


def group_leaks(
    test_groups: Sequence[Any] | pd.Series, train_groups: Sequence[Any] | pd.Series
) -> list[dict[str, Any]]:
    """Groups present on both sides: ``{group, test: [positions], train: [positions]}``, sorted."""
    train_pos: dict[str, list[int]] = {}
    for j, g in enumerate(_group_keys(train_groups)):
        if g is not None:
            train_pos.setdefault(g, []).append(j)
    test_pos: dict[str, list[int]] = {}
    for i, g in enumerate(_group_keys(test_groups)):
        if g is not None and g in train_pos:
            test_pos.setdefault(g, []).append(i)
    return [{"group": g, "test": test_pos[g], "train": train_pos[g]} for g in sorted(test_pos)]


# -- perceptual signatures ------------------------------------------------------------------


def decode_small(data: bytes, side: int = 128) -> Image.Image:
    """Decode image bytes for hashing; ``BadImage`` when they are not a usable image.

    JPEGs are decoded at a reduced scale (Pillow's ``draft``: the DCT does 1/2 to 1/8 of the
    work), which makes large photos several times faster; the signature only looks at a
    32 x 32 reduction anyway. Other formats go through the audit's own safe ``decode``.
    """
    if data[:3] != b"\xff\xd8\xff":
        return decode(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.draft("L", (side, side))
            img.load()
    except Exception:  # anything odd: let the full, careful decoder decide and explain
        return decode(data)
    return img


def signature(data: bytes) -> tuple[np.uint64, np.ndarray] | None:
    """(64-bit phash as a uint64, 16 x 16 grey thumbnail as uint8[256]) of image bytes, or None."""
    import imagehash

    try:
        grey = to_mode(decode_small(data), 1)  # 16-bit, palette, alpha: as the model sees them
        bits = imagehash.phash(grey).hash.reshape(-1)
        thumb = grey.resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.LANCZOS)
    except BadImage:
        return None
    except Exception:  # Pillow raises assorted types on odd modes
        return None
    phash = np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8")[0].astype(np.uint64)
    return phash, np.asarray(thumb, dtype=np.uint8).reshape(-1)


@dataclass
class Signatures:
    """Perceptual signatures of a list of files, in order; ``valid`` is False where unreadable."""

    phash: np.ndarray  # uint64 [n]
    thumbs: np.ndarray  # uint8 [n, 256]
    valid: np.ndarray  # bool [n]


def _file_signature(path: Path) -> tuple[np.uint64, np.ndarray] | None:
    try:
        return signature(path.read_bytes())
    except OSError:
        return None


def signatures(paths: Sequence[Path], threads: int = 4) -> Signatures:
    """Signatures of files; Pillow releases the GIL while decoding and resizing, so threads help."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        found = list(pool.map(_file_signature, paths, chunksize=32))
    n = len(found)
    out = Signatures(
        np.zeros(n, np.uint64),
        np.zeros((n, SIGNATURE_SIDE * SIGNATURE_SIDE), np.uint8),
        np.zeros(n, bool),
    )
    for i, sig in enumerate(found):
        if sig is not None:
            out.phash[i], out.thumbs[i], out.valid[i] = sig[0], sig[1], True
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.asarray(a, np.uint64) ^ np.asarray(b, np.uint64))


def thumb_rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS difference between thumbnails in grey levels, along the last axis."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.sqrt((d * d).mean(axis=-1))


def perceptual_nearest(
    test: Signatures,
    train: Signatures,
    phash_max: int = PHASH_MAX_DISTANCE,
    device: str | torch.device = "cpu",
    block_cells: int = 1 << 23,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each test image, the closest-thumbnail training image among those within
    ``phash_max`` bits: (index or -1, thumbnail RMS or inf, phash distance or 65).

    Blocks of test rows x all training rows: popcounts in numpy, thumbnail distances as a
    matrix product on ``device``; memory stays bounded by ``block_cells``.
    """
    dev = torch.device(device)
    n = len(test.phash)
    best = np.full(n, -1, np.int64)
    rms = np.full(n, np.inf)
    dist = np.full(n, 65, np.int64)
    keep = np.flatnonzero(train.valid)
    if n == 0 or len(keep) == 0:
        return best, rms, dist
    pool_hash = train.phash[keep]
    # Centre the grey levels so the squared norms stay small (float32 cancellation).
    pool = torch.as_tensor(train.thumbs[keep].astype(np.float32) - 128.0, device=dev)
    pool_sq = (pool * pool).sum(dim=1)
    rows = max(1, block_cells // len(keep))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        ham = hamming(test.phash[start:stop, None], pool_hash[None, :])
        far = torch.as_tensor(ham > phash_max, device=dev)
        q = torch.as_tensor(test.thumbs[start:stop].astype(np.float32) - 128.0, device=dev)
        d2 = (q * q).sum(dim=1, keepdim=True) + pool_sq[None, :] - 2.0 * (q @ pool.T)
        d2 = d2.masked_fill(far, float("inf"))
        _, arg = d2.min(dim=1)
        arg = arg.cpu().numpy()
        has = ~np.take_along_axis(ham > phash_max, arg[:, None], axis=1)[:, 0]
        has &= test.valid[start:stop]
        j = keep[arg]
        best[start:stop] = np.where(has, j, -1)
        # Exact values for the chosen pairs, in float64 (the product above is for ranking).
        exact = thumb_rms(test.thumbs[start:stop], train.thumbs[j])
        rms[start:stop] = np.where(has, exact, np.inf)
        dist[start:stop] = np.where(has, ham[np.arange(stop - start), arg], 65)
    return best, rms, dist


# -- embeddings -----------------------------------------------------------------------------


def cosine_nearest(
    test: np.ndarray,
    train: np.ndarray,
    device: str | torch.device = "cpu",
    center: bool = True,
    batch: int = 1024,
    train_batch: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """For each test embedding, the most similar training embedding: (index, cosine).

    Both sides are centred on the training mean (see the module docstring), L2-normalised and
    compared in blocks on ``device`` so a GPU does the matrix products and memory stays bounded.
    """
    dev = torch.device(device)
    n = len(test)
    best_idx = np.full(n, -1, dtype=np.int64)
    best_cos = np.full(n, np.nan, dtype=np.float64)
    if n == 0 or len(train) == 0:
        return best_idx, best_cos
    train_t = torch.as_tensor(np.asarray(train, dtype=np.float32), device=dev)
    mean = train_t.mean(dim=0, keepdim=True) if center else torch.zeros_like(train_t[:1])
    train_t = torch.nn.functional.normalize(train_t - mean, dim=1)
    for start in range(0, n, batch):
        q = torch.as_tensor(np.asarray(test[start : start + batch], dtype=np.float32), device=dev)
        q = torch.nn.functional.normalize(q - mean, dim=1)
        top_val = torch.full((len(q),), -2.0, device=dev)
        top_arg = torch.zeros(len(q), dtype=torch.long, device=dev)
        for t0 in range(0, len(train_t), train_batch):
            val, arg = (q @ train_t[t0 : t0 + train_batch].T).max(dim=1)
            better = val > top_val
            top_val = torch.where(better, val, top_val)
            top_arg = torch.where(better, arg + t0, top_arg)
        best_idx[start : start + len(q)] = top_arg.cpu().numpy()
        best_cos[start : start + len(q)] = top_val.cpu().double().numpy()
    return best_idx, best_cos


def sample_rows(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions: all of ``range(n)`` or a uniform sample of ``cap`` of them."""
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False)).astype(np.int64)


def _pair_cosine(test: np.ndarray, train: np.ndarray, mean: np.ndarray, i: int, j: int) -> float:
    """Centred cosine between one test and one training embedding (as ``cosine_nearest``)."""
    a = np.asarray(test[i], dtype=np.float64) - mean
    b = np.asarray(train[j], dtype=np.float64) - mean
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else float("nan")


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


def accuracy_block(correct: np.ndarray) -> dict[str, Any]:
    """n, correct, accuracy and its Wilson 95% interval (nulls when n = 0)."""
    n = int(len(correct))
    k = int(np.sum(correct))
    low, high = wilson_interval(k, n)
    return {"n": n, "correct": k, "accuracy": k / n if n else None, "ci_low": low, "ci_high": high}


def _group_check(test_columns: pd.Index, train_columns: pd.Index) -> str:
    """What the group check compared, or which side lacks a ``group`` column."""
    missing = [
        name
        for name, cols in (("held-out", test_columns), ("training", train_columns))
        if "group" not in cols
    ]
    if not missing:
        return "shared 'group' values"
    return f"not run: no 'group' column in the {' and '.join(missing)} set{'s' if len(missing) > 1 else ''}"


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
    n_test, n_train = len(test), len(train_items)
    test_paths = test["path"].astype(str).tolist()
    train_paths = train_items["path"].astype(str).tolist()
    test_labels = test["label"].tolist()
    train_labels = train_items["label"].tolist()
    rows = test["row"].to_numpy() if "row" in test.columns else np.arange(n_test)

    def pair(i: int, j: int) -> dict[str, Any]:
        return {
            "test_row": int(rows[i]),
            "test_path": test_paths[i],
            "label": test_labels[i],
            "train_path": train_paths[j],
            "train_label": train_labels[j],
        }

    # Exact duplicates: file bytes.
    exact = exact_duplicates(test["file_sha256"].tolist(), list(train_hashes))
    exact_mask = np.zeros(n_test, bool)
    exact_mask[[p["test"] for p in exact]] = True

    # Group leakage: the same physical object on both sides.
    has_groups = "group" in test.columns and "group" in train_items.columns
    groups = group_leaks(test["group"], train_items["group"]) if has_groups else []
    group_mask = np.zeros(n_test, bool)
    for g in groups:
        group_mask[g["test"]] = True

    # Near duplicates: perceptual signatures of (a sample of) the training set.
    near_rows = np.arange(n_train) if near_rows is None else np.asarray(near_rows, np.int64)
    test_sig = signatures([test_root / p for p in test_paths], threads)
    train_sig = signatures([train_root / train_paths[j] for j in near_rows], threads)
    p_idx, p_rms, p_dist = perceptual_nearest(test_sig, train_sig, phash_max, device)
    local = {int(j): k for k, j in enumerate(near_rows)}  # training position -> sample index
    p_idx = np.where(p_idx >= 0, near_rows[np.clip(p_idx, 0, None)], -1)
    use_emb = (
        cosine_min is not None
        and test_embeddings is not None
        and train_embeddings is not None
        and len(train_embeddings) > 0
    )
    cosine_nn = None
    if use_emb:
        embedded_rows = np.asarray(embedded_rows, np.int64)
        c_idx, c_val = cosine_nearest(test_embeddings, train_embeddings, device=device)
        cosine_nn = (np.where(c_idx >= 0, embedded_rows[np.clip(c_idx, 0, None)], -1), c_val)
        mean = np.asarray(train_embeddings, dtype=np.float64).mean(axis=0)
        emb_pos = {int(r): k for k, r in enumerate(embedded_rows)}
    near = near_duplicate_pairs((p_idx, p_rms), cosine_nn, rms_max, cosine_min, exact_mask)
    near_mask = np.zeros(n_test, bool)
    near_mask[[p["test"] for p in near]] = True

    def near_entry(p: dict[str, Any]) -> dict[str, Any]:
        i, j = p["test"], p["train"]
        entry = pair(i, j) | {"found_by": p["found_by"], "phash_distance": None, "thumb_rms": None}
        k = local.get(j)
        if k is not None and test_sig.valid[i] and train_sig.valid[k]:
            entry["phash_distance"] = int(hamming(test_sig.phash[i], train_sig.phash[k]))
            entry["thumb_rms"] = round(float(thumb_rms(test_sig.thumbs[i], train_sig.thumbs[k])), 3)
        if use_emb:
            cos = (
                _pair_cosine(test_embeddings, train_embeddings, mean, i, emb_pos[j])
                if j in emb_pos
                else None
            )
            entry["cosine"] = None if cos is None else round(cos, 5)
        return entry

    # The closest pair that was *not* flagged: how much margin the threshold had on this data.
    unflagged = np.flatnonzero((p_idx >= 0) & ~near_mask & ~exact_mask)
    closest = None
    if len(unflagged):
        i = int(unflagged[np.argmin(p_rms[unflagged])])
        closest = pair(i, int(p_idx[i])) | {
            "phash_distance": int(p_dist[i]),
            "thumb_rms": round(float(p_rms[i]), 3),
        }

    leaked = exact_mask | group_mask | near_mask
    labelled = test["label_idx"].to_numpy() >= 0
    correct = test["correct"].to_numpy(dtype=bool)
    return {
        "available": True,
        "n_test": n_test,
        "n_train": n_train,
        "checks": {
            "exact": "file sha256",
            "group": _group_check(test.columns, train_items.columns),
            "near": {
                "method": f"phash within {phash_max} bits, then 16x16 grey thumbnails within RMS {rms_max:g}"
                + (f"; or embedding cosine >= {cosine_min:g}" if use_emb else ""),
                "phash_max_distance": int(phash_max),
                "thumb_rms_max": float(rms_max),
                "cosine_min": cosine_min,
                "embeddings": bool(use_emb),
                "n_train_searched": int(len(near_rows)),
                "sampled": bool(len(near_rows) < n_train),
                "n_train_embedded": int(len(embedded_rows)) if use_emb else 0,
                "unreadable_test_images": int((~test_sig.valid).sum()),
                "closest_unflagged": closest,
            },
        },
        "counts": {
            "exact": int(exact_mask.sum()),
            "group": len(groups),
            "group_test_images": int(group_mask.sum()),
            "near": int(near_mask.sum()),
            "leaked_images": int(leaked.sum()),
        },
        "exact": [
            pair(p["test"], p["train"]) | {"n_matches": p["n_matches"]} for p in exact[:max_listed]
        ],
        "groups": [
            {
                "group": g["group"],
                "n_test": len(g["test"]),
                "n_train": len(g["train"]),
                "test_rows": [int(rows[i]) for i in g["test"]],
                "test_paths": [test_paths[i] for i in g["test"][:5]],
                "train_paths": [train_paths[j] for j in g["train"][:5]],
            }
            for g in groups[:max_listed]
        ],
        "near": [near_entry(p) for p in near[:max_listed]],
        "truncated": {
            "exact": len(exact) > max_listed,
            "groups": len(groups) > max_listed,
            "near": len(near) > max_listed,
        },
        "leaked_rows": [int(rows[i]) for i in np.flatnonzero(leaked)],
        "accuracy": {
            "all": accuracy_block(correct[labelled]),
            "without_leaked": accuracy_block(correct[labelled & ~leaked]),
            "leaked": accuracy_block(correct[labelled & leaked]),
        },
    }
