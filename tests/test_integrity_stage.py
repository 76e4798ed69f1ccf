"""audits.integrity through a real audit run: a built model and built sets with planted
leaks and label flips; integrity.json, thumbnails and the audit.json summary."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from auditapp.pipeline.audit import run_audit
from audits.store import load_run
from tests.test_leakage import CLASSES, build_split

# Classifies by the brightest colour channel; its embedding (the head's input) is the image
# shrunk to 8x8, which is what makes copies of an image look alike to it.
COLOUR_NET = """
from torch import nn


class ColourNet(nn.Module):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 3, 1), nn.AvgPool2d(4))
        self.fc = nn.Linear(3 * 8 * 8, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
"""


def colour_model(root: Path, training_manifest: Path | None) -> Path:
    root.mkdir(parents=True)
    (root / "net.py").write_text(COLOUR_NET)
    ns: dict = {}
    exec(COLOUR_NET, ns)
    model = ns["ColourNet"]()
    with torch.no_grad():
        model.features[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        model.features[0].bias.zero_()
        model.fc.weight.zero_()
        for c in range(3):
            model.fc.weight[c, c * 64 : (c + 1) * 64] = 8.0 / 64  # 8 x the channel's mean
        model.fc.bias.zero_()
    save_file(model.state_dict(), str(root / "weights.safetensors"))
    train = f'training_manifest = "{training_manifest}"\n' if training_manifest else ""
    (root / "model.toml").write_text(
        textwrap.dedent(
            """\
            name = "colour"
            version = "1.0.0"
            architecture = "net.py:ColourNet"
            weights = "weights.safetensors"
            classes = ["red", "green", "blue"]
            target_layer = "features.0"
            """
        )
        + train
        + "[input]\nsize = [32, 32]\nchannels = 3\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\n"
    )
    return root


FLIPS = ("img/h004.png", "img/h011.png", "img/h021.png")


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("integrity")
    split = build_split(root / "data")
    manifest = pd.read_csv(split["test"])
    for path in FLIPS:  # planted label flips: the picture says otherwise
        i = manifest.index[manifest["path"] == path][0]
        manifest.loc[i, "label"] = CLASSES[(CLASSES.index(manifest.loc[i, "label"]) + 1) % 3]
    manifest["night"] = [i % 4 == 0 for i in range(len(manifest))]
    manifest.to_csv(split["test"], index=False)
    model = colour_model(root / "model", split["train"])
    run = run_audit(model, split["test"], store=root / "store", device="cpu", workers=0,
                    skip=("explain",), options={"workers": 0, "cosine_min": 0.98})  # fmt: skip
    return run, split


def test_leakage_is_found_through_the_run(audited) -> None:
    run, split = audited
    report = json.loads((run / "integrity.json").read_text())
    leak = report["leakage"]
    assert leak["available"] and leak["training_manifest"] == str(split["train"].resolve())
    assert leak["counts"] == {
        "exact": 2,
        "group": 1,
        "group_test_images": 1,
        "near": 4,
        "leaked_images": 7,
    }
    assert sorted((e["test_path"], e["train_path"]) for e in leak["exact"]) == sorted(
        split["exact"]
    )
    assert sorted((e["test_path"], e["train_path"]) for e in leak["near"]) == sorted(split["near"])
    # Both signals: the perceptual one and, switched on here, the model's embeddings (for this
    # model the image shrunk to 8x8, so copies look alike to it).
    assert all(e["found_by"] == ["perceptual", "embedding"] for e in leak["near"])
    assert all(e["thumb_rms"] <= 2.5 and e["cosine"] >= 0.98 for e in leak["near"])
    assert leak["checks"]["near"]["embedding_source"] == "penultimate"
    assert (
        leak["checks"]["near"]["n_train_embedded"] == 45 and not leak["checks"]["near"]["sampled"]
    )
    # Thumbnails of both sides lie in the run and are small JPEGs.
    for e in leak["exact"] + leak["near"] + leak["groups"]:
        for key in ("test_thumb", "train_thumb"):
            with Image.open(run / e[key]) as im:
                assert im.format == "JPEG" and max(im.size) <= 128
    # The model is right on every image but the three flips, leaked or not.
    acc = leak["accuracy"]
    assert (acc["all"]["n"], acc["all"]["correct"]) == (37, 34)
    assert (acc["leaked"]["n"], acc["leaked"]["correct"]) == (7, 7)
    assert (acc["without_leaked"]["n"], acc["without_leaked"]["correct"]) == (30, 27)


def test_label_flips_top_the_suspects(audited) -> None:
    run, _ = audited
    suspects = json.loads((run / "integrity.json").read_text())["suspect_labels"]
    assert suspects["n_flagged"] == 3
    assert sorted(r["path"] for r in suspects["rows"]) == sorted(FLIPS)
    assert all(
        r["self_confidence"] < 0.01 and r["suggested"] == r["predicted"] for r in suspects["rows"]
    )
    assert all((run / r["thumb"]).is_file() for r in suspects["rows"])


def test_slices_and_summary(audited) -> None:
    run, _ = audited
    report = json.loads((run / "integrity.json").read_text())
    cols = {c["column"]: c["kind"] for c in report["slices"]["columns"]}
    assert cols == {"source": "category", "night": "boolean"}
    night = next(s for s in report["slices"]["slices"] if s["label"] == "night = true")
    assert night["support"] == 10
    meta = load_run(run).meta
    summary = meta["integrity"]
    assert summary["file"] == "integrity.json"
    assert summary["leakage"]["leaked_images"] == 7
    assert summary["leakage"]["accuracy"] == pytest.approx(34 / 37)
    assert summary["leakage"]["accuracy_without_leaked"] == pytest.approx(27 / 30)
    assert summary["suspect_labels"]["n_flagged"] == 3
    assert summary["slices"]["n_slices"] == len(report["slices"]["slices"])
    assert report["options"]["phash_max_distance"] == 8


def test_no_training_manifest_says_so(tmp_path: Path) -> None:
    split = build_split(tmp_path / "data", n_train=6, n_test=6, plant=False)
    model = colour_model(tmp_path / "model", None)
    run = run_audit(
        model, split["test"], store=tmp_path / "store", device="cpu", workers=0, skip=("explain",)
    )
    leak = json.loads((run / "integrity.json").read_text())["leakage"]
    assert leak["available"] is False and "no training_manifest" in leak["reason"]
    assert load_run(run).meta["integrity"]["leakage"]["available"] is False
    assert load_run(run).meta["integrity"]["suspect_labels"]["n_flagged"] == 0
