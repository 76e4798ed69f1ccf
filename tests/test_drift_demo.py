"""The bundled demo: the fan batch drifts from the held-out set (skipped until it is generated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditapp.pipeline.drift import run_drift
from audits.store import load_run

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures" / "models" / "car-variants" / "1.0.0"
HELDOUT = ROOT / "fixtures" / "data" / "heldout" / "manifest.csv"
FAN = ROOT / "fixtures" / "data" / "fan_batch" / "manifest.csv"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(p.exists() for p in (MODEL / "model.toml", HELDOUT, FAN)),
        reason="demo not generated (python -m fixtures.generate)",
    ),
]


def test_fan_batch_drifts_from_heldout(tmp_path):
    run = load_run(run_drift(MODEL, HELDOUT, FAN, store=tmp_path, permutations=200))
    meta = run.meta
    assert meta["drift"] is True
    assert meta["embedding"]["p_value"] < 0.01
    drifted = {p["name"] for p in meta["properties"] if p["drift"]}
    assert {"brightness", "sharpness"} <= drifted
    by = {p["name"]: p for p in meta["properties"]}
    # Fan photos are darker and blurrier than dealer photos.
    assert by["brightness"]["current_mean"] < by["brightness"]["reference_mean"]
    assert by["sharpness"]["current_mean"] < by["sharpness"]["reference_mean"]
    assert meta["reference"]["n_images"] == 1200 and meta["current"]["n_labelled"] > 0
