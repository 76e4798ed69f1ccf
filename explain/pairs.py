"""Per confused pair (true -> predicted): region numbers and one sentence that states them.

Compares, for the failures of a pair, the heatmap of the *predicted* class (what the model
looked at when it said "carrera") with the heatmap of correct images of the same true class
(what it looks at when it gets a targa right). Works on the ``regions.parquet`` table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DEFAULT_THRESHOLD = 0.10


def pct(value: float) -> str:
    """A share as a whole percentage ("46%"), or "n/a"."""
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.0f}%"


def separation_auc(baseline: np.ndarray, failures: np.ndarray) -> float:
    """P(a baseline value > a failure value), ties counted half (Mann-Whitney AUC); NaN if either is empty."""
    if len(baseline) == 0 or len(failures) == 0:
        return float("nan")
    diff = baseline[:, None] - failures[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _median(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.median()) if len(values) else float("nan")


def pair_summaries(
    regions: pd.DataFrame,
    totals: dict[tuple[str, str], int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
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
        base = baseline[baseline["label"] == label]
        entry: dict[str, Any] = {
            "true": label,
            "predicted": pred,
            "n_explained": int(n),
            "n_failures": int((totals or {}).get((label, pred), n)),
            "confidence_median": _median(grp["confidence"]),
            "n_baseline": int(len(base)),
        }
        energy = grp["roi_energy"].dropna().to_numpy(dtype=float)
        if len(energy):
            base_energy = base["roi_energy"].dropna().to_numpy(dtype=float)
            same_pair = true_maps[(true_maps["label"] == label) & (true_maps["pred"] == pred)]
            below = int((energy < threshold).sum())
            base_below = int((base_energy < threshold).sum())
            entry.update(
                {
                    "n_with_box": int(len(energy)),
                    "energy_median": float(np.median(energy)),
                    "below_threshold": below,
                    "peak_in_box_rate": float(np.nanmean(grp["roi_peak"].to_numpy(dtype=float))),
                    "true_class_energy_median": _median(same_pair["roi_energy"]),
                    "baseline_energy_median": float(np.median(base_energy))
                    if len(base_energy)
                    else float("nan"),
                    "baseline_below_threshold": base_below,
                    "baseline_peak_in_box_rate": (
                        float(np.nanmean(base["roi_peak"].to_numpy(dtype=float)))
                        if len(base_energy)
                        else float("nan")
                    ),
                    "separation_auc": separation_auc(base_energy, energy),
                }
            )
            if len(base_energy):
                baseline_text = (
                    f"correct {label} images: median {pct(entry['baseline_energy_median'])}, "
                    f"{base_below} of {len(base_energy)} below {pct(threshold)}"
                )
            else:
                baseline_text = f"no correct {label} images to compare"
            entry["sentence"] = (
                f"on {below} of {len(energy)} {label}→{pred} failures less than {pct(threshold)} of the heatmap "
                f"lies inside {region_name} (median {pct(entry['energy_median'])}; {baseline_text})"
            )
        else:
            entry["sentence"] = (
                f"{n} {label}→{pred} failures explained (median confidence {entry['confidence_median']:.2f}); "
                "the data set has no region box, so there are no region numbers"
            )
        out.append(entry)
    return out
