"""audits.image_properties and the statistics of audits.drift, against hand-computed values,
scipy and statsmodels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter
from scipy import stats
from statsmodels.stats.multitest import multipletests

from audits.datasets import load_dataset
from audits.drift.examples import farthest_examples
from audits.drift.predictions import class_distribution_test, prediction_drift
from audits.drift.properties import property_drift
from audits.image_properties import MAX_SIDE, PROPERTIES, image_properties, set_properties
from audits.multitest import holm


def props_of(img: Image.Image, fmt: str = "PNG") -> dict:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    data = buf.getvalue()
    return image_properties(Image.open(io.BytesIO(data)), data)


def texture(seed: int = 0, size: int = 64, level: float = 1.0) -> Image.Image:
    """A textured RGB image; ``level`` scales its brightness."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.float64)
    arr = np.kron(arr, np.ones((4, 4, 1))) * level
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# --- image properties -----------------------------------------------------------------------


def test_uniform_grey_image():
    p = props_of(Image.new("RGB", (40, 20), (128, 128, 128)))
    assert p["brightness"] == pytest.approx(128 / 255)
    assert p["contrast"] == 0.0
    assert p["saturation"] == 0.0
    assert p["sharpness"] == 0.0
    assert (p["width"], p["height"], p["aspect_ratio"], p["format"]) == (40, 20, 2.0, "PNG")


def test_checkerboard_contrast_and_laplacian_variance():
    """0/255 checkerboard: luma std 127.5; the 4-neighbour Laplacian is ±4·255 everywhere."""
    board = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    p = props_of(Image.fromarray(board).convert("RGB"))
    assert p["brightness"] == pytest.approx(0.5)
    assert p["contrast"] == pytest.approx(0.5)
    assert p["sharpness"] == pytest.approx((4 * 255) ** 2)


def test_saturation_of_pure_and_grey_colours():
    assert props_of(Image.new("RGB", (8, 8), (255, 0, 0)))["saturation"] == 1.0
    assert props_of(Image.new("RGB", (8, 8), (200, 100, 0)))["saturation"] == pytest.approx(
        255 / 255
    )
    assert props_of(Image.new("RGB", (8, 8), (200, 150, 100)))["saturation"] == pytest.approx(
        127 / 255
    )


def test_brightness_and_blur_orderings():
    bright = [props_of(texture(level=lv))["brightness"] for lv in (0.3, 0.6, 1.0)]
    assert bright[0] < bright[1] < bright[2]
    assert bright[0] == pytest.approx(0.3 * bright[2], rel=0.02)
    base = texture(seed=1)
    sharp = [props_of(base.filter(ImageFilter.GaussianBlur(r)))["sharpness"] for r in (0, 1, 3)]
    assert sharp[0] > 2 * sharp[1] > 4 * sharp[2] > 0


def test_jpeg_file_size_and_large_image():
    buf = io.BytesIO()
    texture(size=32).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    p = image_properties(Image.open(io.BytesIO(data)), data)
    assert p["format"] == "JPEG" and p["file_size"] == len(data)
    big = props_of(Image.new("RGB", (MAX_SIDE * 2, 100), (10, 20, 30)))
    assert (big["width"], big["height"], big["aspect_ratio"]) == (MAX_SIDE * 2, 100, 20.48)
    assert big["brightness"] == pytest.approx(
        (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255, abs=1 / 255
    )


def test_set_properties_skips_unreadable(tmp_path):
    texture().save(tmp_path / "ok.png")
    Image.new("L", (10, 10), 0).save(tmp_path / "grey.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    table, skipped = set_properties(load_dataset(tmp_path))
    assert list(table.columns) == ["path", *PROPERTIES]
    assert sorted(table["path"]) == ["grey.png", "ok.png"]
    assert {s["path"]: s["reason"] for s in skipped} == {
        "empty.png": "empty file (0 bytes)",
        "text.jpg": "not an image (unrecognised format)",
    }
    assert table.set_index("path").loc["grey.png", "brightness"] == 0.0


# --- statistics -----------------------------------------------------------------------------


def _holm_by_hand(p_values):
    """Holm step-down adjustment written out (the pre-statsmodels implementation)."""
    known = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(known)):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[i] = running
    return adjusted


def test_holm_matches_statsmodels_and_the_hand_written_step_down():
    p = [0.01, 0.04, 0.03, 0.5, 0.002, 0.2, 0.049, 1.0, 0.0001]
    expected = multipletests(p, method="holm")[1]
    assert holm(p) == pytest.approx(list(expected), abs=1e-12)
    assert holm(p) == pytest.approx(_holm_by_hand(p), abs=1e-12)
    with_missing = holm([0.01, None, 0.04])
    assert with_missing[1] is None
    assert with_missing[0] == pytest.approx(0.02) and with_missing[2] == pytest.approx(0.04)
    assert with_missing == pytest.approx(_holm_by_hand([0.01, None, 0.04]), abs=1e-12)


def test_class_distribution_without_merging_is_scipy():
    ref = [0] * 30 + [1] * 20 + [2] * 10
    cur = [0] * 10 + [1] * 20 + [2] * 30
    result = class_distribution_test(ref, cur, ["a", "b", "c"])
    chi2, p, dof, _ = stats.chi2_contingency([[30, 20, 10], [10, 20, 30]])
    assert result["p_value"] == pytest.approx(p) and result["statistic"] == pytest.approx(chi2)
    assert result["dof"] == dof == 2 and result["merged_into_other"] == []
    assert result["counts"][2] == {"class": "c", "reference": 10, "current": 30,
                                   "reference_share": pytest.approx(1 / 6), "current_share": pytest.approx(0.5)}  # fmt: skip


def test_class_distribution_merges_small_classes():
    # d never predicted (dropped); c expected < 5 -> other; then other is still small -> b joins it.
    ref = [0] * 50 + [1] * 40 + [2] * 1
    cur = [0] * 45 + [1] * 45 + [2] * 2
    result = class_distribution_test(ref, cur, ["a", "b", "c", "d"])
    assert result["merged_into_other"] == ["c", "b"]
    _, p, dof, _ = stats.chi2_contingency([[50, 41], [45, 47]])  # a vs other (b + c), Yates
    assert result["p_value"] == pytest.approx(p) and result["dof"] == dof == 1
    # Five classes, two rare: only the rare ones merge, the test keeps three columns.
    ref = [0] * 40 + [1] * 40 + [2] * 40 + [3] * 2 + [4] * 3
    cur = [0] * 40 + [1] * 40 + [2] * 40 + [3] * 3 + [4] * 4
    result = class_distribution_test(ref, cur, list("abcde"))
    assert sorted(result["merged_into_other"]) == ["d", "e"]
    _, p, _, _ = stats.chi2_contingency([[40, 40, 40, 5], [40, 40, 40, 7]])
    assert result["p_value"] == pytest.approx(p) and result["dof"] == 3


def test_class_distribution_single_class_and_shift():
    same = class_distribution_test([1] * 20, [1] * 30, ["a", "b"])
    assert same["p_value"] == 1.0 and same["dof"] == 0
    shifted = class_distribution_test([0] * 80 + [1] * 20, [0] * 20 + [1] * 80, ["a", "b"])
    assert shifted["p_value"] < 1e-10


def _table(pred, conf, label_idx):
    pred, label_idx = np.asarray(pred), np.asarray(label_idx)
    return pd.DataFrame({"pred_idx": pred, "confidence": conf, "label_idx": label_idx,
                         "correct": (pred == label_idx) & (label_idx >= 0)})  # fmt: skip


def test_prediction_drift_combines_and_reports_accuracy():
    rng = np.random.default_rng(0)
    ref = _table(rng.integers(0, 3, 300), rng.uniform(0.6, 1.0, 300), rng.integers(0, 3, 300))
    cur = _table(rng.integers(0, 3, 200), rng.uniform(0.4, 0.9, 200), [-1] * 200)
    result = prediction_drift(ref, cur, ["a", "b", "c"], alpha=0.05)
    ks = stats.ks_2samp(ref["confidence"], cur["confidence"])
    assert result["confidence"]["p_value"] == pytest.approx(ks.pvalue)
    assert result["p_value"] == pytest.approx(
        min(1.0, 2 * min(result["classes"]["p_value"], ks.pvalue))
    )
    assert result["drift"] is True  # the confidence moved
    acc = result["accuracy"]
    assert acc["reference"] == pytest.approx(float(ref["correct"].mean()))
    assert (
        acc["current"] is None
        and acc["n_current_labelled"] == 0
        and acc["n_reference_labelled"] == 300
    )


def test_farthest_examples_against_brute_force():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, (200, 8)).astype(np.float32)
    cur = rng.normal(0, 1, (40, 8)).astype(np.float32)
    cur[[5, 17, 33]] += np.array([[12.0], [8.0], [10.0]], dtype=np.float32)
    dist, top, typical = farthest_examples(ref, cur, top=5, k=5, chunk=7)
    d = np.sqrt(((cur[:, None, :].astype(np.float64) - ref[None]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, :5].mean(1)
    assert dist == pytest.approx(expected, rel=1e-5)
    assert [row for row, _ in top[:3]] == [5, 33, 17]
    assert top[0][1] == pytest.approx(expected[5], rel=1e-5)
    dr = np.sqrt(((ref[:, None, :].astype(np.float64) - ref[None]) ** 2).sum(-1))
    np.fill_diagonal(dr, np.inf)
    assert typical == pytest.approx(float(np.median(np.sort(dr, axis=1)[:, :5].mean(1))), rel=1e-5)


def test_property_drift_uses_evidently_ks_above_1000_rows():
    """Evidently would pick Wasserstein distances above 1,000 reference rows; KS is forced."""
    rng = np.random.default_rng(2)

    def frame(n: int, brightness: float) -> pd.DataFrame:
        width = rng.choice([640, 800], n)
        return pd.DataFrame({
            "brightness": rng.normal(brightness, 0.1, n), "contrast": rng.normal(0.2, 0.05, n),
            "saturation": rng.uniform(0, 1, n), "sharpness": rng.gamma(2.0, 100.0, n),
            "width": width, "height": np.full(n, 480), "aspect_ratio": width / 480,
            "format": rng.choice(["JPEG", "PNG"], n, p=[0.8, 0.2]), "file_size": rng.integers(10_000, 90_000, n),
        })  # fmt: skip

    ref, cur = frame(1001, 0.5), frame(300, 0.4)
    rows, snapshot = property_drift(ref, cur, alpha=0.05)
    assert [r["name"] for r in rows] == PROPERTIES
    by = {r["name"]: r for r in rows}
    assert list(by["brightness"])[:3] == ["name", "p_value", "drift"]  # DESIGN.md order
    for name in ("brightness", "contrast", "sharpness", "file_size"):
        assert by[name]["test"] == "ks"
        assert by[name]["p_value"] == pytest.approx(
            stats.ks_2samp(ref[name], cur[name]).pvalue, rel=1e-9
        )
    assert by["brightness"]["drift"] is True and by["brightness"]["p_value"] < 1e-20
    assert by["brightness"]["current_mean"] == pytest.approx(cur["brightness"].mean())
    assert by["height"]["p_value"] == 1.0 and by["height"]["drift"] is False
    assert by["format"]["test"] == "chisquare" and 0 < by["format"]["p_value"] <= 1
    assert by["format"]["reference_share"]["JPEG"] == pytest.approx(
        (ref["format"] == "JPEG").mean()
    )
    adjusted = multipletests([r["p_value"] for r in rows], method="holm")[1]
    assert [r["p_adjusted"] for r in rows] == pytest.approx(adjusted)
    assert sum(r["drift"] for r in rows) == sum(a < 0.05 for a in adjusted)
    assert "metrics" in snapshot.dict()
