"""Leakage between a model's training set and the held-out set it is audited on.

Three ways a test image can have been seen in training:

* **exact duplicates**: the same bytes (file sha256) on both sides;
* **group leakage**: the same ``group`` (one physical object, e.g. one car advert) on both
  sides, even when every file differs;
* **near duplicates**: a resized, re-encoded or lightly edited copy. Two independent signals:
  the 64-bit perceptual hash (ImageHash ``phash``; Hamming distance <= ``PHASH_MAX_DISTANCE``)
  and the cosine similarity of the model's own embeddings (>= ``COSINE_MIN``), each test image
  against its nearest training image. Either signal flags a pair; both values are reported.

Thresholds (calibrated in tests/test_leakage.py and on the bundled demo, see the report):

* ``PHASH_MAX_DISTANCE = 8`` of 64 bits: resized (down to half size) and JPEG re-encoded
  (quality >= 50) copies land at 0-4; distinct photos of similar scenes at 12 or more.
* ``COSINE_MIN = 0.98`` on *centred* embeddings: the training set's mean embedding is
  subtracted first, because penultimate features after a ReLU all point into the same
  orthant, which makes raw cosines between unrelated images high (0.8-0.95). Copies of an
  image stay above 0.99 after centring; distinct images fall well below.

Exact and near duplicates are listed one pair per test image (its nearest training image);
near duplicates exclude test images that are already exact duplicates.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from audits.images import BadImage, decode, to_mode

PHASH_MAX_DISTANCE = 8
COSINE_MIN = 0.98
#: Training images embedded and perceptually hashed at most; a larger training set is sampled
#: (uniformly, fixed seed) and the report says so. Exact and group checks always use all rows.
MAX_TRAIN_NEAR = 50_000
_NO_HASH = np.uint64(0)


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
    out: list[str | None] = []
    for g in groups:
        if g is None or (isinstance(g, float) and np.isnan(g)) or pd.isna(g):
            out.append(None)
        else:
            s = str(g).strip()
            out.append(s or None)
    return out


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


# -- perceptual hashes ----------------------------------------------------------------------


def decode_small(data: bytes, side: int = 128) -> Image.Image:
    """Decode image bytes for hashing; ``BadImage`` when they are not a usable image.

    JPEGs are decoded at a reduced scale (Pillow's ``draft``: the DCT does 1/2 to 1/8 of the
    work), which makes hashing large photos several times faster; the hash only looks at a
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


def phash_bits(data: bytes) -> np.uint64 | None:
    """The 64-bit perceptual hash (ImageHash ``phash``) of image bytes as a uint64, or None."""
    import imagehash

    try:
        grey = to_mode(decode_small(data), 1)  # 16-bit, palette, alpha: as the model sees them
    except BadImage:
        return None
    except Exception:  # Pillow raises assorted types on odd modes
        return None
    bits = imagehash.phash(grey).hash.reshape(-1)
    return np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8")[0].astype(np.uint64)


def _phash_file(path: Path) -> np.uint64 | None:
    try:
        return phash_bits(path.read_bytes())
    except OSError:
        return None


def phash_files(paths: Sequence[Path], threads: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Perceptual hashes of files: (uint64 hashes, bool valid) in order.

    Pillow releases the GIL while decoding and resizing, so a few threads help.
    """
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        found = list(pool.map(_phash_file, paths, chunksize=32))
    valid = np.array([h is not None for h in found], dtype=bool)
    hashes = np.array([h if h is not None else _NO_HASH for h in found], dtype=np.uint64)
    return hashes, valid


def hamming_nearest(
    test: np.ndarray,
    train: np.ndarray,
    test_valid: np.ndarray | None = None,
    train_valid: np.ndarray | None = None,
    block_cells: int = 1 << 22,
) -> tuple[np.ndarray, np.ndarray]:
    """For each test hash, the nearest training hash: (index, Hamming distance).

    Vectorised in blocks (XOR then popcount over ``block rows x len(train)`` cells) so memory
    stays bounded. Invalid rows get index -1 and distance 65.
    """
    test = np.asarray(test, dtype=np.uint64)
    train = np.asarray(train, dtype=np.uint64)
    n = len(test)
    best_idx = np.full(n, -1, dtype=np.int64)
    best_dist = np.full(n, 65, dtype=np.int64)
    tv = np.ones(n, bool) if test_valid is None else np.asarray(test_valid, bool)
    keep = np.flatnonzero(
        np.ones(len(train), bool) if train_valid is None else np.asarray(train_valid, bool)
    )
    if len(keep) == 0 or n == 0:
        return best_idx, best_dist
    pool = train[keep]
    rows = max(1, block_cells // len(pool))
    for start in range(0, n, rows):
        block = test[start : start + rows]
        dist = np.bitwise_count(block[:, None] ^ pool[None, :])
        arg = dist.argmin(axis=1)
        best_idx[start : start + rows] = keep[arg]
        best_dist[start : start + rows] = dist[np.arange(len(block)), arg]
    best_idx[~tv] = -1
    best_dist[~tv] = 65
    return best_idx, best_dist


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
    phash_nn: tuple[np.ndarray, np.ndarray] | None,
    cosine_nn: tuple[np.ndarray, np.ndarray] | None,
    phash_max: int = PHASH_MAX_DISTANCE,
    cosine_min: float = COSINE_MIN,
    exclude: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One pair per test row flagged by either signal: ``{test, train, found_by}``.

    ``phash_nn``/``cosine_nn`` are (nearest index, value) arrays over the test rows from
    ``hamming_nearest``/``cosine_nearest``, with indices in one shared training numbering.
    The pair names the phash match when phash flags it (the more literal evidence).
    """
    sizes = [len(x[0]) for x in (phash_nn, cosine_nn) if x is not None]
    n = sizes[0] if sizes else 0
    p_flag = np.zeros(n, bool)
    c_flag = np.zeros(n, bool)
    if phash_nn is not None:
        p_flag = (phash_nn[0] >= 0) & (phash_nn[1] <= phash_max)
    if cosine_nn is not None:
        with np.errstate(invalid="ignore"):
            c_flag = (cosine_nn[0] >= 0) & np.isfinite(cosine_nn[1]) & (cosine_nn[1] >= cosine_min)
    flagged = p_flag | c_flag
    if exclude is not None:
        flagged &= ~exclude
    pairs = []
    for i in np.flatnonzero(flagged):
        by = [name for name, f in (("phash", p_flag[i]), ("embedding", c_flag[i])) if f]
        train = int(phash_nn[0][i]) if p_flag[i] else int(cosine_nn[0][i])  # type: ignore[index]
        pairs.append({"test": int(i), "train": train, "found_by": by})
    return pairs


def accuracy_block(correct: np.ndarray) -> dict[str, Any]:
    """n, correct, accuracy and its Wilson 95% interval (nulls when n = 0)."""
    from audits.intervals import wilson_interval

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
    cosine_min: float = COSINE_MIN,
    device: str | torch.device = "cpu",
    max_listed: int = 200,
    threads: int = 4,
) -> dict[str, Any]:
    """Every leakage check between a held-out predictions table and a training manifest.

    ``test`` is the predictions table (``path``, ``file_sha256``, ``label_idx``, ``correct``,
    optional ``group``); ``train_items`` the training set's rows. ``near_rows`` are the
    training positions searched for near duplicates (all when None); ``train_embeddings`` row
    k belongs to training position ``embedded_rows[k]``. Lists hold at most ``max_listed``
    entries each; counts are always complete.
    """
    n_test, n_train = len(test), len(train_items)
    test_paths = test["path"].astype(str).tolist()
    train_paths = train_items["path"].astype(str).tolist()
    test_labels = test["label"].tolist() if "label" in test.columns else [None] * n_test
    train_labels = (
        train_items["label"].tolist() if "label" in train_items.columns else [None] * n_train
    )

    def side(i: int, j: int) -> dict[str, Any]:
        return {
            "test_row": int(test["row"].iat[i]) if "row" in test.columns else i,
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

    # Near duplicates: perceptual hash over (a sample of) the training set, then embeddings.
    near_rows = (
        np.arange(n_train, dtype=np.int64) if near_rows is None else np.asarray(near_rows, np.int64)
    )
    test_ph, test_ok = phash_files([test_root / p for p in test_paths], threads)
    train_ph, train_ok = phash_files([train_root / train_paths[j] for j in near_rows], threads)
    p_idx, p_dist = hamming_nearest(test_ph, train_ph, test_ok, train_ok)
    p_idx = np.where(p_idx >= 0, near_rows[np.clip(p_idx, 0, None)], -1)
    phash_of = dict(zip(near_rows.tolist(), train_ph.tolist(), strict=True))
    cosine_nn = None
    mean = None
    use_emb = (
        test_embeddings is not None and train_embeddings is not None and len(train_embeddings) > 0
    )
    if use_emb:
        embedded_rows = np.asarray(embedded_rows, np.int64)
        c_idx, c_val = cosine_nearest(test_embeddings, train_embeddings, device=device)
        cosine_nn = (np.where(c_idx >= 0, embedded_rows[np.clip(c_idx, 0, None)], -1), c_val)
        mean = np.asarray(train_embeddings, dtype=np.float64).mean(axis=0)
        emb_pos = {int(r): k for k, r in enumerate(embedded_rows)}
    near = near_duplicate_pairs(
        (p_idx, p_dist), cosine_nn, phash_max, cosine_min, exclude=exact_mask
    )
    near_mask = np.zeros(n_test, bool)
    near_mask[[p["test"] for p in near]] = True

    leaked = exact_mask | group_mask | near_mask
    labelled = (
        test["label_idx"].to_numpy() >= 0 if "label_idx" in test.columns else np.ones(n_test, bool)
    )
    correct = test["correct"].to_numpy(dtype=bool)

    near_listed = []
    for p in near[:max_listed]:
        i, j = p["test"], p["train"]
        entry = side(i, j) | {"found_by": p["found_by"]}
        entry["phash_distance"] = (
            int(np.bitwise_count(test_ph[i] ^ np.uint64(phash_of[j])))
            if test_ok[i] and j in phash_of
            else None
        )
        entry["cosine"] = (
            round(_pair_cosine(test_embeddings, train_embeddings, mean, i, emb_pos[j]), 5)
            if use_emb and j in emb_pos
            else None
        )
        near_listed.append(entry)

    return {
        "available": True,
        "n_test": n_test,
        "n_train": n_train,
        "checks": {
            "exact": "file sha256",
            "group": _group_check(test.columns, train_items.columns),
            "near": {
                "phash_max_distance": int(phash_max),
                "cosine_min": float(cosine_min),
                "n_train_searched": int(len(near_rows)),
                "sampled": bool(len(near_rows) < n_train),
                "n_train_embedded": int(len(embedded_rows)) if use_emb else 0,
                "embeddings": bool(use_emb),
                "unhashable_test_images": int((~test_ok).sum()),
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
            side(p["test"], p["train"]) | {"n_matches": p["n_matches"]} for p in exact[:max_listed]
        ],
        "groups": [
            {
                "group": g["group"],
                "n_test": len(g["test"]),
                "n_train": len(g["train"]),
                "test_paths": [test_paths[i] for i in g["test"][:5]],
                "train_paths": [train_paths[j] for j in g["train"][:5]],
                "test_rows": [int(i) for i in g["test"]],
            }
            for g in groups[:max_listed]
        ],
        "near": near_listed,
        "truncated": {
            "exact": len(exact) > max_listed,
            "groups": len(groups) > max_listed,
            "near": len(near) > max_listed,
        },
        "leaked_rows": [int(i) for i in np.flatnonzero(leaked)],
        "accuracy": {
            "all": accuracy_block(correct[labelled]),
            "without_leaked": accuracy_block(correct[labelled & ~leaked]),
            "leaked": accuracy_block(correct[labelled & leaked]),
        },
    }
