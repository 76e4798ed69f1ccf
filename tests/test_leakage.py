"""audits.leakage: exact, group and near-duplicate leakage on built image sets, and the
vectorised searches against brute-force references."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from audits.datasets import hash_files, load_dataset
from audits.leakage import (
    cosine_nearest,
    exact_duplicates,
    find_leakage,
    group_leaks,
    hamming_nearest,
    near_duplicate_pairs,
    phash_bits,
    phash_files,
    sample_rows,
)


def scene(seed: int, size: int = 64, dominant: int | None = None) -> Image.Image:
    """A random photo-like picture: a gradient and a few shapes; ``dominant`` channel bright."""
    rng = np.random.default_rng(seed)

    def colour() -> tuple[int, int, int]:
        c = rng.integers(0, 160, 3)
        if dominant is not None:
            c[dominant] = rng.integers(190, 256)
        return (int(c[0]), int(c[1]), int(c[2]))

    top, bottom = np.array(colour(), float), np.array(colour(), float)
    t = np.linspace(0, 1, size)[:, None, None]
    img = Image.fromarray(((top * (1 - t) + bottom * t) * np.ones((1, size, 1))).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(8, size // 2, 2)
        box = (int(x0), int(y0), int(x0 + w), int(y0 + h))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour())
    return img


def resized(img: Image.Image, side: int) -> Image.Image:
    return img.resize((side, side), Image.Resampling.LANCZOS)


def jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


CLASSES = ["red", "green", "blue"]


def build_split(root: Path, n_train: int = 45, n_test: int = 30, plant: bool = True) -> dict:
    """A training and a held-out manifest of distinct scenes (class = dominant colour).

    With ``plant``, the held-out set also gets: 2 byte-identical copies of training files,
    1 new photo of a training group (group leakage), and 4 near duplicates of training
    images (half size, 1.5x size, JPEG quality 60, 3/4 size + JPEG 75).
    """
    (root / "train" / "img").mkdir(parents=True)
    (root / "test" / "img").mkdir(parents=True)
    train_rows = []
    for i in range(n_train):
        c = i % 3
        rel = f"img/t{i:03d}.png"
        (root / "train" / rel).write_bytes(png(scene(1000 + i, dominant=c)))
        train_rows.append(
            {"path": rel, "label": CLASSES[c], "group": f"tr-{i // 3:03d}", "source": "dealer"}
        )
    test_rows = []
    for i in range(n_test):
        c = i % 3
        rel = f"img/h{i:03d}.png"
        (root / "test" / rel).write_bytes(png(scene(5000 + i, dominant=c)))
        test_rows.append(
            {"path": rel, "label": CLASSES[c], "group": f"ho-{i:03d}", "source": "fan"}
        )
    planted: dict[str, list[tuple[str, str]]] = {"exact": [], "group": [], "near": []}
    if plant:
        # Byte copies under new group names: only the bytes give them away.
        for k, j in enumerate((4, 10)):
            rel = f"img/copy{k}.png"
            (root / "test" / rel).write_bytes((root / "train" / train_rows[j]["path"]).read_bytes())
            test_rows.append(
                {
                    "path": rel,
                    "label": train_rows[j]["label"],
                    "group": f"ho-copy{k}",
                    "source": "fan",
                }
            )
            planted["exact"].append((rel, train_rows[j]["path"]))
        # Another shot of a training car: a new picture, but the advert's group is in training.
        rel = "img/sibling.png"
        (root / "test" / rel).write_bytes(png(scene(9000, dominant=0)))
        test_rows.append(
            {"path": rel, "label": "red", "group": train_rows[6]["group"], "source": "fan"}
        )
        planted["group"].append((rel, train_rows[6]["group"]))
        edits = {
            "half": lambda im: png(resized(im, 32)),
            "larger": lambda im: png(resized(im, 96)),
            "jpeg60": lambda im: jpeg(im, 60),
            "small_jpeg": lambda im: jpeg(resized(im, 48), 75),
        }
        for (name, edit), j in zip(edits.items(), (1, 14, 23, 38), strict=True):
            original = Image.open(root / "train" / train_rows[j]["path"]).convert("RGB")
            ext = "jpg" if "jpeg" in name else "png"
            rel = f"img/near_{name}.{ext}"
            (root / "test" / rel).write_bytes(edit(original))
            test_rows.append(
                {
                    "path": rel,
                    "label": train_rows[j]["label"],
                    "group": f"ho-{name}",
                    "source": "fan",
                }
            )
            planted["near"].append((rel, train_rows[j]["path"]))
    pd.DataFrame(train_rows).to_csv(root / "train" / "manifest.csv", index=False)
    pd.DataFrame(test_rows).to_csv(root / "test" / "manifest.csv", index=False)
    return {
        "train": root / "train" / "manifest.csv",
        "test": root / "test" / "manifest.csv",
        **planted,
    }


def tiny_image_embeddings(image_set) -> np.ndarray:
    """A stand-in for model embeddings: each image as an 8x8 colour thumbnail (192 numbers)."""
    out = []
    for rel in image_set.items["path"]:
        img = Image.open(image_set.abspath(rel)).convert("RGB").resize((8, 8), Image.Resampling.BOX)
        out.append(np.asarray(img, np.float32).reshape(-1))
    return np.stack(out)


def run_find(split: dict, embeddings: bool = True) -> dict:
    test, train = load_dataset(split["test"]), load_dataset(split["train"])
    table = test.items.copy()
    table.insert(0, "row", np.arange(len(table)))
    table["file_sha256"] = hash_files(test)
    table["label_idx"] = table["label"].map(CLASSES.index)
    table["correct"] = ~table["path"].str.startswith("img/h00")  # h000-h009 wrong, the rest right
    return find_leakage(
        table,
        test.root,
        train.items,
        train.root,
        hash_files(train),
        test_embeddings=tiny_image_embeddings(test) if embeddings else None,
        train_embeddings=tiny_image_embeddings(train) if embeddings else None,
        embedded_rows=np.arange(len(train.items)) if embeddings else None,
    )


# -- built data ------------------------------------------------------------------------------


def test_planted_leaks_are_all_found(tmp_path: Path) -> None:
    split = build_split(tmp_path)
    rep = run_find(split)
    pairs = lambda key: sorted((e["test_path"], e["train_path"]) for e in rep[key])  # noqa: E731
    assert pairs("exact") == sorted(split["exact"])
    assert [(g["test_paths"], g["group"]) for g in rep["groups"]] == [
        ([p], g) for p, g in split["group"]
    ]
    assert rep["groups"][0]["n_train"] == 3
    assert pairs("near") == sorted(split["near"])
    for e in rep["near"]:
        assert e["found_by"] == ["phash", "embedding"]
        assert e["phash_distance"] <= 8 and e["cosine"] >= 0.98
    assert rep["counts"] == {
        "exact": 2,
        "group": 1,
        "group_test_images": 1,
        "near": 4,
        "leaked_images": 7,
    }
    leaked = {e["test_path"] for key in ("exact", "near") for e in rep[key]} | {"img/sibling.png"}
    assert sorted(rep["leaked_rows"]) == sorted(
        i for i, p in enumerate(load_dataset(split["test"]).items["path"]) if p in leaked
    )
    # Accuracy with and without the leaked images (the planted ones are all "right").
    acc = rep["accuracy"]
    assert acc["all"]["n"] == 37 and acc["leaked"]["n"] == 7 and acc["without_leaked"]["n"] == 30
    assert acc["leaked"]["accuracy"] == 1.0
    assert acc["all"]["accuracy"] == pytest.approx(27 / 37)
    assert acc["without_leaked"]["accuracy"] == pytest.approx(20 / 30)


def test_clean_split_raises_no_alarm(tmp_path: Path) -> None:
    rep = run_find(build_split(tmp_path, n_train=60, n_test=60, plant=False))
    assert rep["counts"] == {
        "exact": 0,
        "group": 0,
        "group_test_images": 0,
        "near": 0,
        "leaked_images": 0,
    }
    assert rep["exact"] == rep["groups"] == rep["near"] == rep["leaked_rows"] == []
    assert rep["accuracy"]["without_leaked"] == rep["accuracy"]["all"]


def test_phash_alone_finds_the_copies(tmp_path: Path) -> None:
    split = build_split(tmp_path)
    rep = run_find(split, embeddings=False)
    assert sorted((e["test_path"], e["train_path"]) for e in rep["near"]) == sorted(split["near"])
    assert all(e["found_by"] == ["phash"] and e["cosine"] is None for e in rep["near"])
    assert rep["checks"]["near"]["embeddings"] is False


# -- the building blocks -----------------------------------------------------------------------


def test_exact_and_group_matching() -> None:
    assert exact_duplicates(["a", None, "b", "c"], ["x", "b", None, "b", "a"]) == [
        {"test": 0, "train": 4, "n_matches": 1},
        {"test": 2, "train": 1, "n_matches": 2},
    ]
    leaks = group_leaks(["g1", None, "g2", " g1 ", float("nan"), ""], ["g1", "g3", "", None, "g1"])
    assert leaks == [{"group": "g1", "test": [0, 3], "train": [0, 4]}]


def test_phash_bits_is_imagehash_phash() -> None:
    for seed in range(5):
        img = scene(seed)
        assert int(phash_bits(png(img))) == int(str(imagehash.phash(img)), 16)
    assert phash_bits(b"not an image") is None


def test_large_jpeg_is_hashed_at_reduced_scale_like_its_copies() -> None:
    big = resized(scene(7, size=128), 2000)
    data = jpeg(big, 90)
    with Image.open(io.BytesIO(data)) as full:
        reference = int(str(imagehash.phash(full.convert("L"))), 16)
    fast = int(phash_bits(data))
    assert bin(fast ^ reference).count("1") <= 2
    assert bin(fast ^ int(phash_bits(png(resized(big, 64))))).count("1") <= 4
    assert phash_bits(data[: len(data) // 2]) is None  # a truncated JPEG is refused


def test_phash_files_marks_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(scene(1)))
    (tmp_path / "b.png").write_bytes(b"")
    hashes, valid = phash_files([tmp_path / "a.png", tmp_path / "b.png", tmp_path / "missing.png"])
    assert valid.tolist() == [True, False, False]
    assert int(hashes[0]) == int(str(imagehash.phash(scene(1))), 16)


def test_hamming_nearest_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    test = rng.integers(0, 2**63, 57, dtype=np.uint64) ^ rng.integers(0, 2, 57, dtype=np.uint64)
    train = rng.integers(0, 2**63, 131, dtype=np.uint64)
    train[7] = test[3] ^ np.uint64(0b1011)  # a planted neighbour at distance 3
    valid = np.ones(131, bool)
    valid[50] = False
    idx, dist = hamming_nearest(test, train, train_valid=valid, block_cells=500)  # many blocks
    for i, t in enumerate(test.tolist()):
        ref = [bin(t ^ u).count("1") if valid[j] else 99 for j, u in enumerate(train.tolist())]
        assert dist[i] == min(ref) and ref[idx[i]] == min(ref)
    assert (idx[3], dist[3]) == (7, 3)
    idx, dist = hamming_nearest(test[:2], train, test_valid=np.array([True, False]))
    assert idx[1] == -1 and dist[1] == 65


def test_cosine_nearest_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(1.0, 1.0, (41, 16)).astype(np.float16)
    test = rng.normal(1.0, 1.0, (23, 16)).astype(np.float16)
    idx, cos = cosine_nearest(test, train, batch=5, train_batch=7)
    mean = train.astype(np.float64).mean(axis=0)
    a = test.astype(np.float64) - mean
    b = train.astype(np.float64) - mean
    sims = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        b / np.linalg.norm(b, axis=1, keepdims=True)
    ).T
    assert idx.tolist() == sims.argmax(axis=1).tolist()
    assert cos == pytest.approx(sims.max(axis=1), abs=1e-5)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cosine_nearest_on_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(2)
    train, test = rng.normal(size=(500, 64)), rng.normal(size=(300, 64))
    i_cpu, c_cpu = cosine_nearest(test, train, "cpu")
    i_gpu, c_gpu = cosine_nearest(test, train, "cuda")
    assert (i_cpu == i_gpu).mean() > 0.99 and c_gpu == pytest.approx(c_cpu, abs=1e-3)


def test_near_duplicate_pairs_merge_signals() -> None:
    phash = (np.array([0, 1, 2, -1]), np.array([3, 9, 12, 65]))
    cosine = (np.array([5, 6, 2, 4]), np.array([0.5, 0.99, 0.97, 0.999]))
    pairs = near_duplicate_pairs(phash, cosine, phash_max=8, cosine_min=0.98)
    assert pairs == [
        {"test": 0, "train": 0, "found_by": ["phash"]},
        {"test": 1, "train": 6, "found_by": ["embedding"]},
        {"test": 3, "train": 4, "found_by": ["embedding"]},
    ]
    first = near_duplicate_pairs(phash, cosine, exclude=np.array([True, False, False, False]))[0]
    assert first["test"] == 1


def test_sample_rows() -> None:
    assert sample_rows(5, 10).tolist() == [0, 1, 2, 3, 4]
    rows = sample_rows(1000, 100, seed=3)
    assert len(set(rows.tolist())) == 100 and rows.tolist() == sorted(rows.tolist())
    assert rows.tolist() == sample_rows(1000, 100, seed=3).tolist()
