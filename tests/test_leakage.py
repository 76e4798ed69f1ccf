"""audits.leakage: exact, group and near-duplicate leakage on built image sets and on the
demo, and the vectorised searches against brute-force references."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw, ImageFile

from audits.datasets import hash_files, load_dataset
from audits.leakage.exact import exact_duplicates
from audits.leakage.groups import group_leaks
from audits.leakage.near import near_duplicate_pairs, sample_rows
from audits.leakage.nearest import cosine_nearest, perceptual_nearest
from audits.leakage.report import find_leakage
from audits.leakage.signatures import Signatures, hamming, signature, signatures, thumb_rms


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


def run_find(split: dict, cosine_min: float | None = None) -> dict:
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
        test_embeddings=tiny_image_embeddings(test),
        train_embeddings=tiny_image_embeddings(train),
        embedded_rows=np.arange(len(train.items)),
        cosine_min=cosine_min,
    )


NO_LEAKS = {"exact": 0, "group": 0, "group_test_images": 0, "near": 0, "leaked_images": 0}


# -- built data ------------------------------------------------------------------------------


def test_planted_leaks_are_all_found(tmp_path: Path) -> None:
    split = build_split(tmp_path)
    rep = run_find(split)
    pairs = lambda key: sorted((e["test_path"], e["train_path"]) for e in rep[key])  # noqa: E731
    assert pairs("exact") == sorted(split["exact"])
    groups = [(g["test_paths"], g["group"], g["n_train"]) for g in rep["groups"]]
    assert groups == [([p], g, 3) for p, g in split["group"]]
    assert pairs("near") == sorted(split["near"])
    for e in rep["near"]:
        assert e["found_by"] == ["perceptual"] and "cosine" not in e
        assert e["phash_distance"] <= 8 and e["thumb_rms"] <= 2.5
    assert rep["counts"] == {
        "exact": 2,
        "group": 1,
        "group_test_images": 1,
        "near": 4,
        "leaked_images": 7,
    }
    leaked = {e["test_path"] for key in ("exact", "near") for e in rep[key]} | {"img/sibling.png"}
    paths = load_dataset(split["test"]).items["path"]
    assert rep["leaked_rows"] == [i for i, p in enumerate(paths) if p in leaked]
    # Accuracy with and without the leaked images (the planted ones are all "right").
    acc = rep["accuracy"]
    assert (acc["all"]["n"], acc["leaked"]["n"], acc["without_leaked"]["n"]) == (37, 7, 30)
    assert acc["leaked"]["accuracy"] == 1.0
    assert acc["all"]["accuracy"] == pytest.approx(27 / 37)
    assert acc["without_leaked"]["accuracy"] == pytest.approx(20 / 30)
    # The margin is reported: the closest pair left alone is well beyond the threshold.
    assert rep["checks"]["near"]["closest_unflagged"] is None or (
        rep["checks"]["near"]["closest_unflagged"]["thumb_rms"] > 2.5
    )


def test_embedding_check_when_switched_on(tmp_path: Path) -> None:
    split = build_split(tmp_path)
    rep = run_find(split, cosine_min=0.98)
    assert sorted((e["test_path"], e["train_path"]) for e in rep["near"]) == sorted(split["near"])
    assert all(
        e["found_by"] == ["perceptual", "embedding"] and e["cosine"] >= 0.98 for e in rep["near"]
    )
    assert rep["checks"]["near"]["embeddings"] and rep["checks"]["near"]["n_train_embedded"] == 45


def test_clean_split_raises_no_alarm(tmp_path: Path) -> None:
    rep = run_find(build_split(tmp_path, n_train=60, n_test=60, plant=False), cosine_min=0.98)
    assert rep["counts"] == NO_LEAKS
    assert rep["exact"] == rep["groups"] == rep["near"] == rep["leaked_rows"] == []
    assert rep["accuracy"]["without_leaked"] == rep["accuracy"]["all"]


DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "data"


def _demo_signatures(name: str) -> tuple[pd.DataFrame, Signatures]:
    frame = pd.read_csv(DEMO / name / "manifest.csv")
    return frame, signatures([DEMO / name / p for p in frame["path"]])


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEMO / "heldout" / "manifest.csv").is_file(), reason="demo data not generated"
)
def test_demo_split_is_clean_and_copies_of_it_are_found(tmp_path: Path) -> None:
    """The bundled demo: the 64-bit phash alone would flag many look-alike studio shots; the
    thumbnail check leaves the clean split alone yet finds resized and re-encoded copies."""
    _, held = _demo_signatures("heldout")
    train, train_sig = _demo_signatures("train")
    phash_nearest = hamming(held.phash[:, None], train_sig.phash[None, :]).min(axis=1)
    assert (phash_nearest == 0).sum() >= 5  # look-alikes: same phash, different cars
    assert (phash_nearest <= 8).mean() > 0.3
    idx, rms, _ = perceptual_nearest(held, train_sig)
    assert rms[idx >= 0].min() > 3.5  # but no thumbnail within the 2.5 threshold, with margin
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), 30, replace=False)
    copies = []
    for k, j in enumerate(picks):
        img = Image.open(DEMO / "train" / train["path"][j]).convert("RGB")
        side = int(img.width * rng.uniform(0.4, 2.0))
        data = (
            jpeg(resized(img, side), int(rng.integers(40, 96)))
            if k % 2
            else png(resized(img, side))
        )
        (tmp_path / f"{k}.img").write_bytes(data)
        copies.append(tmp_path / f"{k}.img")
    idx, rms, _ = perceptual_nearest(signatures(copies), train_sig)
    assert idx.tolist() == picks.tolist()
    assert rms.max() <= 2.5


# -- the building blocks -----------------------------------------------------------------------


def test_exact_and_group_matching() -> None:
    assert exact_duplicates(["a", None, "b", "c"], ["x", "b", None, "b", "a"]) == [
        {"test": 0, "train": 4, "n_matches": 1},
        {"test": 2, "train": 1, "n_matches": 2},
    ]
    leaks = group_leaks(["g1", None, "g2", " g1 ", float("nan"), ""], ["g1", "g3", "", None, "g1"])
    assert leaks == [{"group": "g1", "test": [0, 3], "train": [0, 4]}]


def test_signature_is_imagehash_phash_and_a_grey_thumbnail() -> None:
    for seed in range(5):
        img = scene(seed)
        phash, thumb = signature(png(img))
        assert int(phash) == int(str(imagehash.phash(img)), 16)
        ref = img.convert("L").resize((16, 16), Image.Resampling.LANCZOS)
        assert thumb.tolist() == np.asarray(ref).reshape(-1).tolist()
    assert signature(b"not an image") is None


def test_look_alikes_share_a_phash_but_not_a_thumbnail() -> None:
    """Why phash alone is not enough: a picture shifted by a few pixels keeps its phash."""
    big = scene(3, size=80)
    a = signature(png(big.crop((0, 0, 64, 64))))
    b = signature(png(big.crop((2, 2, 66, 66))))
    assert hamming(a[0], b[0]) == 6  # a phash candidate...
    assert thumb_rms(a[1], b[1]) == pytest.approx(8.14, abs=0.01)  # ...that the thumbnails reject


def test_large_jpeg_is_hashed_at_reduced_scale_like_its_copies() -> None:
    big = resized(scene(7, size=128), 2000)
    data = jpeg(big, 90)
    with Image.open(io.BytesIO(data)) as full:
        reference = int(str(imagehash.phash(full.convert("L"))), 16)
    fast, thumb = signature(data)
    assert bin(int(fast) ^ reference).count("1") <= 2
    small_hash, small_thumb = signature(png(resized(big, 64)))
    assert hamming(fast, small_hash) <= 4 and thumb_rms(thumb, small_thumb) < 1.5
    assert signature(data[: len(data) // 2]) is None  # a truncated JPEG is refused
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:  # also when another library (weasyprint, on import) made Pillow lenient
        assert signature(data[: len(data) // 2]) is None
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def test_signatures_mark_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(scene(1)))
    (tmp_path / "b.png").write_bytes(b"")
    sig = signatures([tmp_path / "a.png", tmp_path / "b.png", tmp_path / "missing.png"])
    assert sig.valid.tolist() == [True, False, False]
    assert int(sig.phash[0]) == int(str(imagehash.phash(scene(1))), 16)


def test_perceptual_nearest_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    n, m = 37, 91
    train = Signatures(
        rng.integers(0, 2**63, m, dtype=np.uint64),
        rng.integers(0, 256, (m, 256), dtype=np.uint8),
        rng.random(m) > 0.1,
    )
    # Test hashes near some training hashes so that candidates exist.
    near = rng.integers(0, m, n)
    flips = np.array(
        [np.uint64(1) << np.uint64(b) for b in rng.integers(0, 64, n)], dtype=np.uint64
    )
    test = Signatures(
        train.phash[near] ^ flips, rng.integers(0, 256, (n, 256), dtype=np.uint8), np.ones(n, bool)
    )
    test.phash[5] = ~train.phash[0]  # far from everything
    test.valid[6] = False
    idx, rms, dist = perceptual_nearest(test, train, phash_max=20, block_cells=300)  # many blocks
    for i in range(n):
        cands = [
            (float(thumb_rms(test.thumbs[i], train.thumbs[j])), j)
            for j in range(m)
            if train.valid[j] and bin(int(test.phash[i]) ^ int(train.phash[j])).count("1") <= 20
        ]
        if not cands or not test.valid[i]:
            assert (idx[i], rms[i], dist[i]) == (-1, np.inf, 65)
            continue
        best_rms, best_j = min(cands)
        assert idx[i] == best_j and rms[i] == pytest.approx(best_rms)
        assert dist[i] == bin(int(test.phash[i]) ^ int(train.phash[best_j])).count("1")
    assert idx[5] == -1 and idx[6] == -1


def test_cosine_nearest_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(1.0, 1.0, (41, 16)).astype(np.float16)
    test = rng.normal(1.0, 1.0, (23, 16)).astype(np.float16)
    idx, cos = cosine_nearest(test, train, batch=5, train_batch=7)
    mean = train.astype(np.float64).mean(axis=0)
    a = test.astype(np.float64) - mean
    b = train.astype(np.float64) - mean
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    sims = a @ b.T
    assert idx.tolist() == sims.argmax(axis=1).tolist()
    assert cos == pytest.approx(sims.max(axis=1), abs=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_searches_on_cuda_match_cpu() -> None:
    rng = np.random.default_rng(2)
    train, test = rng.normal(size=(500, 64)), rng.normal(size=(300, 64))
    i_cpu, c_cpu = cosine_nearest(test, train, "cpu")
    i_gpu, c_gpu = cosine_nearest(test, train, "cuda")
    assert (i_cpu == i_gpu).mean() > 0.99 and c_gpu == pytest.approx(c_cpu, abs=1e-3)
    sig = Signatures(
        rng.integers(0, 2**8, 200, dtype=np.uint64),
        rng.integers(0, 256, (200, 256), dtype=np.uint8),
        np.ones(200, bool),
    )
    cpu = perceptual_nearest(sig, sig, phash_max=4, device="cpu")
    gpu = perceptual_nearest(sig, sig, phash_max=4, device="cuda")
    assert cpu[0].tolist() == gpu[0].tolist() == list(range(200))


def test_near_duplicate_pairs_merge_signals() -> None:
    perceptual = (np.array([0, 1, 2, -1]), np.array([1.0, 3.0, 2.4, np.inf]))
    cosine = (np.array([5, 6, 7, 4]), np.array([0.5, 0.99, 0.97, 0.999]))
    assert near_duplicate_pairs(perceptual, cosine, rms_max=2.5, cosine_min=None) == [
        {"test": 0, "train": 0, "found_by": ["perceptual"]},
        {"test": 2, "train": 2, "found_by": ["perceptual"]},
    ]
    assert near_duplicate_pairs(perceptual, cosine, rms_max=2.5, cosine_min=0.98) == [
        {"test": 0, "train": 0, "found_by": ["perceptual"]},
        {"test": 1, "train": 6, "found_by": ["embedding"]},
        {"test": 2, "train": 2, "found_by": ["perceptual"]},
        {"test": 3, "train": 4, "found_by": ["embedding"]},
    ]
    first = near_duplicate_pairs(perceptual, None, exclude=np.array([True, False, False, False]))[0]
    assert first == {"test": 2, "train": 2, "found_by": ["perceptual"]}


def test_sample_rows() -> None:
    assert sample_rows(5, 10).tolist() == [0, 1, 2, 3, 4]
    rows = sample_rows(1000, 100, seed=3)
    assert len(set(rows.tolist())) == 100 and rows.tolist() == sorted(rows.tolist())
    assert rows.tolist() == sample_rows(1000, 100, seed=3).tolist()
