"""Region scores, image selection, per-pair sentences and overlays: pure functions, hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from explain.overlay import blend, colorize, render
from explain.pairs import class_baselines, pair_summaries, separation_auc
from explain.regions import box_masks, region_scores, scale_boxes
from explain.select import select_images


def test_boxes_scale_from_original_pixels_to_the_heatmap():
    # A 200x100 (w x h) original resized straight to 50x40 (h x w): x * 40/200, y * 50/100.
    scaled = scale_boxes(
        torch.tensor([[20.0, 10.0, 120.0, 60.0]]), torch.tensor([[200.0, 100.0]]), (50, 40)
    )
    assert scaled.tolist() == [[4.0, 5.0, 24.0, 30.0]]


def test_energy_share_and_pointing_game():
    heat = torch.zeros(3, 10, 10)
    heat[0, 2:4, 2:4] = 1.0  # all energy inside the box, peak inside
    heat[1] = 1.0  # flat: the energy share equals the box's area share
    heat[1, 9, 9] = 2.0  # ... but the peak is outside
    # map 2 stays all zero: undefined
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0]] * 3)  # original 10x10 = heatmap pixels
    scores = region_scores(heat, boxes, torch.tensor([[10.0, 10.0]] * 3))
    energy, peak, area = scores["energy"], scores["peak"], scores["box_share"]
    assert energy[0] == pytest.approx(1.0)
    assert energy[1] == pytest.approx(16 / 101)
    assert math.isnan(energy[2]) and math.isnan(peak[2])
    assert peak[:2].tolist() == [1.0, 0.0]
    assert area.tolist() == pytest.approx([0.16] * 3)


def test_two_slot_maps_and_unusable_boxes():
    heat = torch.rand(3, 2, 8, 8)
    boxes = torch.tensor([[0.0, 0.0, 4.0, 8.0], [float("nan")] * 4, [5.0, 5.0, 3.0, 9.0]])
    scores = region_scores(heat, boxes, torch.tensor([[8.0, 8.0]] * 3))
    assert scores["energy"].shape == (3, 2)
    left = heat[0, :, :, :4].sum(dim=(-2, -1)) / heat[0].sum(dim=(-2, -1))
    assert scores["energy"][0].tolist() == pytest.approx(left.tolist(), rel=1e-5)
    assert torch.isnan(scores["energy"][1:]).all() and torch.isnan(scores["box_share"][1:]).all()


def test_a_box_thinner_than_a_pixel_keeps_one_pixel():
    masks, valid = box_masks(torch.tensor([[3.1, 3.2, 3.3, 3.4], [20.0, 20.0, 30.0, 30.0]]), (8, 8))
    assert valid.tolist() == [True, False]  # the second lies outside the map
    assert masks[0].sum() == 1 and masks[0, 3, 3]


def _table(pairs: dict[tuple[int, int], list[float]], n_correct: dict[int, int]) -> pd.DataFrame:
    rows = []
    for (true, pred), losses in pairs.items():
        rows += [
            {"label_idx": true, "pred_idx": pred, "correct": False, "loss": loss} for loss in losses
        ]
    for cls, n in n_correct.items():
        rows += [
            {"label_idx": cls, "pred_idx": cls, "correct": True, "loss": 0.1} for _ in range(n)
        ]
    frame = pd.DataFrame(rows)
    frame["row"] = np.arange(len(frame))
    return frame


def test_selection_cap_top_by_loss_spread_and_baseline():
    table = _table(
        {(0, 1): list(np.linspace(1, 9, 9)), (1, 0): [5.0], (2, 0): [0.5, 0.6]}, {0: 30, 1: 2, 2: 0}
    )
    every = select_images(table, max_failures=None, baseline=10)
    assert len(every.failures) == 12 and not every.capped
    assert every.failures["loss"].is_monotonic_decreasing
    # Classes on either side of a confusion (0, 1, 2): class 2 has no correct image.
    assert every.baseline["label_idx"].value_counts().to_dict() == {0: 10, 1: 2}

    top = select_images(table, max_failures=4, top_by_loss=True, baseline=0)
    assert (
        top.capped and top.failures["loss"].tolist() == [9.0, 8.0, 7.0, 6.0] and top.baseline.empty
    )

    spread = select_images(table, max_failures=4, seed=1)
    pairs = spread.failures.groupby(["label_idx", "pred_idx"]).size().to_dict()
    assert pairs == {(0, 1): 2, (1, 0): 1, (2, 0): 1}  # every pair keeps an image
    assert spread.n_failures == 12
    again = select_images(table, max_failures=4, seed=1)
    assert again.failures["row"].tolist() == spread.failures["row"].tolist()  # seeded


def _regions(fail_energy: list[float], base_energy: list[float], area: float = 0.1) -> pd.DataFrame:
    rows = []
    for i, e in enumerate(fail_energy):
        for role in ("predicted", "true"):
            rows.append({"kind": "failure", "role": role, "label": "targa", "pred": "carrera", "confidence": 0.9,
                         "roi_energy": e if role == "predicted" else 0.5, "roi_peak": e > 0.3,
                         "roi_area": area, "index": i})  # fmt: skip
    for i, e in enumerate(base_energy):
        for role in ("predicted", "true"):
            rows.append({"kind": "baseline", "role": role, "label": "targa", "pred": "targa", "confidence": 0.95,
                         "roi_energy": e, "roi_peak": True, "roi_area": area, "index": 100 + i})  # fmt: skip
    return pd.DataFrame(rows)


def test_pair_sentence_with_a_fixed_threshold():
    regions = _regions([0.02, 0.05, 0.08, 0.4], [0.3, 0.46, 0.5, 0.6, 0.05])
    (pair,) = pair_summaries(
        regions, {("targa", "carrera"): 17}, threshold=0.10, region_name="the roll bar"
    )
    assert pair["below_threshold"] == 3 and pair["n_with_box"] == 4 and pair["n_failures"] == 17
    assert pair["energy_median"] == pytest.approx(0.065)
    assert pair["baseline_energy_median"] == pytest.approx(0.46)
    assert pair["true_class_energy_median"] == pytest.approx(0.5)
    assert pair["peak_in_box_rate"] == pytest.approx(0.25)
    assert pair["sentence"] == (
        "on 3 of 4 targa→carrera failures less than 10% of the heatmap lies inside the roll bar "
        "(median 6.5%; correct targa images: median 46%, 1 of 5 below 10%)"
    )
    # Of the 20 (baseline, failure) pairs the baseline is higher in 16, tied in one (0.05).
    assert pair["separation_auc"] == pytest.approx(16.5 / 20)


def test_pair_sentence_against_the_box_share():
    regions = _regions([0.001, 0.004, 0.03], [0.02, 0.026, 0.03, 0.004], area=0.008)
    (pair,) = pair_summaries(regions)
    assert pair["below_threshold"] == 2 and pair["baseline_below_threshold"] == 1
    assert pair["lift_median"] == pytest.approx(0.5) and pair[
        "baseline_lift_median"
    ] == pytest.approx(2.875)
    assert pair["sentence"] == (
        "on 2 of 3 targa→carrera failures the region box holds less of the heatmap than of the "
        "image (median 0.4% of the heatmap on 0.8% of the image; correct targa images: median "
        "2.3%, 1 of 4 below their box's share)"
    )
    (flipped,) = pair_summaries(_regions([0.001, 0.02, 0.03], [0.02], area=0.008))
    assert flipped["sentence"].startswith(
        "on 2 of 3 targa→carrera failures the region box holds at least as much of the heatmap as"
    )
    (base,) = class_baselines(regions)
    assert (
        base["class"] == "targa"
        and base["n"] == 4
        and base["energy_median"] == pytest.approx(0.023)
    )


def test_pair_sentence_without_a_region_box():
    regions = _regions([float("nan")] * 2, [])
    (pair,) = pair_summaries(regions)
    assert "no region box" in pair["sentence"]
    assert pair["sentence"].startswith("2 targa→carrera failures")
    assert separation_auc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert separation_auc(np.array([]), np.array([0.0])) != separation_auc(
        np.array([]), np.array([0.0])
    )


def test_overlay_panels_and_colours(tmp_path):
    assert colorize(np.array([[0.0, 1.0]])).tolist() == [[[0, 0, 128], [128, 0, 0]]]  # jet ends
    grey = np.full((20, 30, 1), 100, np.uint8)
    mixed = blend(grey, np.zeros((20, 30)), alpha=0.5)
    assert mixed.shape == (20, 30, 3) and tuple(mixed[0, 0]) == (50, 50, 114)
    picture = render(
        grey, [np.ones((20, 30)), np.zeros((20, 30))], ["a", "b", "c"], box=(2, 2, 10, 10)
    )
    assert picture.size[0] > 3 * 128 and picture.size[1] > 128  # enlarged, three panels
    picture.save(tmp_path / "o.png")
    assert Image.open(tmp_path / "o.png").mode == "RGB"
