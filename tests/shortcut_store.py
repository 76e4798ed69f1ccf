"""A small synthetic audit run with a planted colour shortcut, like the demo's 1.0.0.

Three classes; ``variant-001`` plays the Targa: in training 90% of its images are red (other
classes 1%), and on the held-out set the model gets every red one right but reads 85% of the
others as ``variant-000``. Six images carry the tag ``dog`` and have stored thumbnails, for a
tag claim with images behind it. The run has integrity.json with the slice scan and the class x
slice cross-tab, as the integrity stage writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from audits.class_slices import class_slice_report
from audits.runs import write_record
from audits.slices import slice_report

CLASSES = ["variant-000", "variant-001", "variant-002"]
TARGA = "variant-001"
N_ROWS = 900


def shortcut_table(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The held-out predictions table and its probabilities."""
    from fixtures.synthetic_store import synthetic_table

    table, probs, classes = synthetic_table(3, N_ROWS, seed)
    assert classes == CLASSES
    rng = np.random.default_rng(seed + 7)
    label = table["label"].to_numpy()
    is_targa = label == TARGA
    colours = np.array(["black", "blue", "white", "silver", "yellow"])
    colour = colours[rng.integers(0, len(colours), N_ROWS)].astype(object)
    red = np.where(is_targa, rng.random(N_ROWS) < 0.25, rng.random(N_ROWS) < 0.04)
    colour[red] = "red"
    table["colour"] = colour
    pred = table["pred"].to_numpy().copy()
    pred[is_targa & red] = TARGA
    misread = is_targa & ~red & (rng.random(N_ROWS) < 0.85)
    pred[is_targa & ~red] = TARGA
    pred[misread] = "variant-000"
    table["pred"] = pred
    table["pred_idx"] = table["pred"].map(CLASSES.index).astype(np.int64)
    table["correct"] = table["pred_idx"] == table["label_idx"]
    table["dog"] = np.isin(np.arange(N_ROWS), np.arange(6) * 37)
    return table, probs


def training_frame(seed: int = 0) -> pd.DataFrame:
    """A training manifest's rows: 90% of the Targas red, 1% of the other classes."""
    rng = np.random.default_rng(seed + 11)
    n = 1200
    label = np.array(CLASSES, dtype=object)[rng.integers(0, 3, n)]
    red = np.where(label == TARGA, rng.random(n) < 0.9, rng.random(n) < 0.01)
    colour = np.where(red, "red", "blue").astype(object)
    return pd.DataFrame(
        {"path": [f"t/{i}.png" for i in range(n)], "label": label, "colour": colour}
    )


def write_shortcut_run(store: Path, seed: int = 0) -> Path:
    """One audit run in ``store`` with integrity.json (scan and cross-tab) and dog thumbnails."""
    from audits.integrity import summarize
    from audits.labels import suspect_labels
    from fixtures.synthetic_store import write_synthetic_run

    table, probs = shortcut_table(seed)
    training = training_frame(seed)

    def fill(tmp: Path, meta: dict) -> None:
        report = {
            "options": {},
            "leakage": {"available": False, "reason": "no training manifest in this test"},
            "suspect_labels": suspect_labels(table, np.asarray(probs, np.float32), CLASSES),
            "slices": slice_report(table),
            "class_slices": class_slice_report(table, CLASSES, training),
            "timings": {},
        }
        write_record(tmp, report, "integrity")
        meta["integrity"] = summarize(report)
        meta["dataset"]["metadata_columns"] = ["group", "source", "night", "dog", "date", "colour"]
        thumbs = tmp / "integrity" / "thumbs"
        thumbs.mkdir(parents=True, exist_ok=True)
        for row in np.flatnonzero(table["dog"].to_numpy()):
            Image.new("RGB", (24, 16), (200, 30, 30)).save(thumbs / f"test-{row}.jpg")

    return write_synthetic_run(
        store, 3, N_ROWS, seed, version="1.0.0", table=table, probs=probs, fill=fill
    )
