"""Per confused pair (true -> predicted): region numbers and one sentence that states them.

Compares, for the failures of a pair, the heatmap of the *predicted* class (what the model
looked at when it said "carrera") with the heatmap of correct images of the same true class
(what it looks at when it gets a targa right). Works on the ``regions.parquet`` table.

"Below" is judged per image against a threshold on the energy share in the region box:

- ``threshold=None`` (default): the box's own share of the image (``roi_area``), i.e. what a
  flat heatmap would put there. Region boxes vary from a whole car to a thin roll bar, so a
  fixed cut such as 10% says little about a box that covers 1% of the image.
- a number: that share for every image (``0.10`` reads "less than 10% of the heatmap").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audits import formatting as fmt
from audits.formatting import is_num

#: None: judge each image against its box's share of the image (chance level).
DEFAULT_THRESHOLD: float | None = None


def _share(value: float | None) -> str:
    """A share as a percentage: "46%", "2.6%" below 10% (one decimal where it matters), or "n/a"."""
    return fmt.pct(value, digits=1 if is_num(value) and value < 0.1 else 0)


def separation_auc(baseline: np.ndarray, failures: np.ndarray) -> float:
    """P(a baseline value > a failure value), ties counted half (Mann-Whitney AUC); NaN if either is empty."""
    if len(baseline) == 0 or len(failures) == 0:
        return float("nan")
    diff = baseline[:, None] - failures[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _median(values: pd.Series | np.ndarray) -> float:
    values = pd.Series(values, dtype=float).dropna()
    return float(values.median()) if len(values) else float("nan")


def _rate(values: pd.Series) -> float:
    values = pd.Series(values, dtype="float64").dropna()
    return float(values.mean()) if len(values) else float("nan")


def _with_box(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["roi_energy"].notna()]


def _below(frame: pd.DataFrame, threshold: float | None) -> np.ndarray:
    limit = frame["roi_area"].to_numpy(dtype=float) if threshold is None else threshold
    return frame["roi_energy"].to_numpy(dtype=float) < limit


def class_baselines(regions: pd.DataFrame) -> list[dict[str, Any]]:
    """Region numbers of the correct (baseline) images, per class."""
    if regions.empty:
        return []
    base = regions[(regions["kind"] == "baseline") & (regions["role"] == "predicted")]
    out = []
    for label, part in base.groupby("label", sort=True):
        boxed = _with_box(part)
        out.append(
            {
                "class": label,
                "n": int(len(part)),
                "n_with_box": int(len(boxed)),
                "energy_median": _median(boxed["roi_energy"]),
                "area_median": _median(boxed["roi_area"]),
                "lift_median": _median(boxed["roi_energy"] / boxed["roi_area"]),
                "peak_in_box_rate": _rate(boxed["roi_peak"]),
            }
        )
    return out


def pair_summaries(
    regions: pd.DataFrame,
    totals: dict[tuple[str, str], int] | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    region_name: str = "the region box",
) -> list[dict[str, Any]]:
    """One entry per confused pair among the explained failures, largest first."""
    if regions.empty:
        return []
    failures = regions[regions["kind"] == "failure"]
    predicted = failures[failures["role"] == "predicted"]
    true_maps = failures[failures["role"] == "true"]
    baseline = regions[(regions["kind"] == "baseline") & (regions["role"] == "predicted")]
    counts = predicted.groupby(["label", "pred"]).size().sort_values(ascending=False, kind="stable")
    out = []
    for (label, pred), n in counts.items():
        grp = predicted[(predicted["label"] == label) & (predicted["pred"] == pred)]
        base = _with_box(baseline[baseline["label"] == label])
        entry: dict[str, Any] = {
            "true": label,
            "predicted": pred,
            "n_explained": int(n),
            "n_failures": int((totals or {}).get((label, pred), n)),
            "confidence_median": _median(grp["confidence"]),
            "n_baseline": int((baseline["label"] == label).sum()),
        }
        boxed = _with_box(grp)
        if len(boxed):
            same_pair = true_maps[(true_maps["label"] == label) & (true_maps["pred"] == pred)]
            below = int(_below(boxed, threshold).sum())
            base_below = int(_below(base, threshold).sum())
            energy = boxed["roi_energy"].to_numpy(dtype=float)
            base_energy = base["roi_energy"].to_numpy(dtype=float)
            entry.update(
                {
                    "threshold": "box area" if threshold is None else threshold,
                    "n_with_box": int(len(boxed)),
                    "energy_median": float(np.median(energy)),
                    "area_median": _median(boxed["roi_area"]),
                    "lift_median": _median(boxed["roi_energy"] / boxed["roi_area"]),
                    "below_threshold": below,
                    "peak_in_box_rate": _rate(boxed["roi_peak"]),
                    "true_class_energy_median": _median(same_pair["roi_energy"]),
                    "n_baseline_with_box": int(len(base)),
                    "baseline_energy_median": _median(base_energy),
                    "baseline_lift_median": _median(base["roi_energy"] / base["roi_area"]),
                    "baseline_below_threshold": base_below,
                    "baseline_peak_in_box_rate": _rate(base["roi_peak"]),
                    "separation_auc": separation_auc(base_energy, energy),
                }
            )
            entry["sentence"] = _sentence(entry, label, pred, threshold, region_name)
        else:
            entry["sentence"] = (
                f"{n} {label}→{pred} failures explained (median confidence {entry['confidence_median']:.2f}); "
                "the data set has no region box, so there are no region numbers"
            )
        out.append(entry)
    return out


def _sentence(
    e: dict[str, Any], label: str, pred: str, threshold: float | None, region: str
) -> str:
    n, below, base_n = e["n_with_box"], e["below_threshold"], e["n_baseline_with_box"]
    limit = "their box's share" if threshold is None else _share(threshold)
    if base_n:
        base = (
            f"correct {label} images: median {_share(e['baseline_energy_median'])}, "
            f"{e['baseline_below_threshold']} of {base_n} below {limit}"
        )
    else:
        base = f"no correct {label} images to compare"
    # State the majority: "on 2 of 46 ... less" reads worse than "on 44 of 46 ... at least".
    few = below * 2 < n
    count = n - below if few else below
    if threshold is None:
        share = "at least as much of the heatmap as" if few else "less of the heatmap than"
        return (
            f"on {count} of {n} {label}→{pred} failures {region} holds {share} of the image "
            f"(median {_share(e['energy_median'])} of the heatmap on "
            f"{_share(e['area_median'])} of the image; {base})"
        )
    share = f"at least {_share(threshold)}" if few else f"less than {_share(threshold)}"
    return (
        f"on {count} of {n} {label}→{pred} failures {share} of the heatmap lies inside {region} "
        f"(median {_share(e['energy_median'])}; {base})"
    )
