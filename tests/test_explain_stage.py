"""The explain stage inside ``python -m audits run`` and the ``explain`` command on a stored run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from auditapp.cli import main as cli
from auditapp.pipeline.audit import run_audit
from audits.images import load_for_model
from audits.model_card import load_card, load_model
from audits.store import load_run
from explain.regions import region_scores
from explain.registry import get_method
from tests.builders import make_imagefolder, make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    model_dir = make_model_dir(root / "model", classes=CLASSES, size=(32, 32))
    data = make_manifest(root / "data", CLASSES, per_class=6, size=24)
    run = run_audit(model_dir, data, store=root / "store", device="cpu", batch_size=8, workers=0,
                    options={"explain_baseline": 3})  # fmt: skip
    return load_run(run), model_dir


def test_run_writes_the_explain_folder(audited):
    run, _ = audited
    table = run.table
    failures = table[~table["correct"]]
    summary = run.meta["explain"]
    assert "error" not in summary, summary
    assert (
        summary["method"] == "gradcam" and summary["layer"] == "features.2" and summary["has_roi"]
    )
    assert summary["n_failures"] == summary["n_explained"] == len(failures)
    folder = run.path / "explain"
    heatmaps = np.load(folder / "heatmaps.npy")
    regions = pd.read_parquet(folder / "regions.parquet")
    n = summary["n_explained"] + summary["n_baseline"]
    assert heatmaps.dtype == np.float16 and heatmaps.shape == (n, 2, 32, 32)
    assert len(regions) == 2 * n and regions["index"].max() == n - 1
    assert set(regions["method"]) == {"gradcam"}
    assert regions.loc[regions["kind"] == "failure", "loss"].iloc[::2].is_monotonic_decreasing
    assert len(list((folder / "overlays").glob("*.png"))) == n
    stored = run.read_json("explain/summary.json")
    assert stored["pairs"] == summary["pairs"] and stored["heatmap_size"] == [32, 32]
    pairs = {(p["true"], p["predicted"]): p for p in summary["pairs"]}
    counts = failures.groupby(["label", "pred"]).size().to_dict()
    assert {k: p["n_failures"] for k, p in pairs.items()} == counts
    wording = "failures the region box holds"
    assert all(wording in p["sentence"] for p in pairs.values())
    assert {b["class"] for b in summary["baselines"]} <= set(CLASSES)


def test_stored_heatmaps_and_region_numbers_are_the_methods(audited):
    run, model_dir = audited
    card = load_card(model_dir)
    model = load_model(card)
    regions = pd.read_parquet(run.path / "explain" / "regions.parquet")
    first = regions[regions["index"] == 0].sort_values("slot")
    row = run.table.iloc[int(first["row"].iloc[0])]
    root = Path(run.meta["dataset"]["path"]).parent
    arr, width, height = load_for_model((root / row["path"]).read_bytes(), card.size, card.channels)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float()
    x = (x - torch.tensor(card.mean).view(1, -1, 1, 1) * 255) / (
        torch.tensor(card.std).view(1, -1, 1, 1) * 255
    )
    maps = get_method("gradcam", model, "features.2").attribute(
        x, torch.tensor([[row["pred_idx"], row["label_idx"]]])
    )
    stored = np.load(run.path / "explain" / "heatmaps.npy")[0]
    # float16 storage: about 3 decimal digits.
    np.testing.assert_allclose(stored.astype(np.float32), maps[0].numpy(), atol=1e-3)
    box = torch.tensor(
        [[row["roi_x0"], row["roi_y0"], row["roi_x1"], row["roi_y1"]]], dtype=torch.float64
    )
    scores = region_scores(maps, box, torch.tensor([[width, height]]))
    np.testing.assert_allclose(
        first["roi_energy"].to_numpy(float), scores["energy"][0].numpy(), atol=1e-5
    )
    assert first["roi_area"].iloc[0] == pytest.approx(float(scores["box_share"][0]), abs=1e-6)


def test_explain_command_on_a_stored_run(audited, capsys):
    run, _ = audited
    code = cli(["explain", str(run.path), "--method", "Grad-CAM++", "--max", "2", "--top-by-loss",
                "--baseline", "1", "--no-overlays", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    folder = run.path / "explain-gradcampp"
    assert out[-1] == str(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "gradcam++" and summary["n_explained"] == 2 and summary["capped"]
    regions = pd.read_parquet(folder / "regions.parquet")
    worst = run.table[~run.table["correct"]].nlargest(2, "loss")["row"].tolist()
    assert regions.loc[regions["kind"] == "failure", "row"].unique().tolist() == worst
    assert not (folder / "overlays").exists()
    # The same method again: the folder exists, runs are immutable.
    assert cli(["explain", str(run.path), "--method", "gradcam++", "--quiet"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert not list(run.path.glob(".tmp-*"))


def test_explain_command_refuses_other_weights(tmp_path, capsys):
    model_dir = make_model_dir(tmp_path / "model", classes=CLASSES)
    data = make_manifest(tmp_path / "data", CLASSES, per_class=2)
    run = run_audit(
        model_dir,
        data,
        store=tmp_path / "store",
        device="cpu",
        workers=0,
        skip=("explain", "integrity"),
    )
    make_model_dir(tmp_path / "model", classes=CLASSES, seed=5)  # retrained in place
    assert cli(["explain", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "weights changed since run" in err
    assert not (run / "explain").exists() and not list(run.glob(".tmp-*"))


def test_greyscale_model_without_region_boxes(tmp_path):
    model_dir = make_model_dir(
        tmp_path / "model", classes=CLASSES, channels=1, size=(20, 28), target_layer=None
    )
    data = make_imagefolder(tmp_path / "data", CLASSES, per_class=3)
    run = load_run(run_audit(model_dir, data, store=tmp_path / "store", device="cpu", workers=0,
                             options={"explain_method": "xgradcam"}))  # fmt: skip
    summary = run.meta["explain"]
    assert (
        summary["method"] == "xgradcam"
        and summary["layer"] == "features.2"
        and not summary["has_roi"]
    )
    assert np.load(run.path / "explain" / "heatmaps.npy").shape[-2:] == (20, 28)
    regions = pd.read_parquet(run.path / "explain" / "regions.parquet")
    assert regions["roi_energy"].isna().all() and regions["roi_peak"].isna().all()
    assert all("no region box" in p["sentence"] for p in summary["pairs"])


def test_a_wrong_layer_is_recorded_not_fatal(tmp_path):
    model_dir = make_model_dir(tmp_path / "model", classes=CLASSES, target_layer="features.0")
    data = make_manifest(tmp_path / "data", CLASSES, per_class=2)
    run = load_run(run_audit(model_dir, data, store=tmp_path / "store", device="cpu", workers=0,
                             options={"explain_layer": "features.7"}))  # fmt: skip
    assert (
        "features.7" in run.meta["explain"]["error"]
        and "features.2" in run.meta["explain"]["error"]
    )


def test_options():
    from audits.errors import AuditError
    from explain.stage import resolve_options

    assert resolve_options(None)["explain_max"] == 500
    assert resolve_options({"explain_max": None})["explain_max"] is None  # --all: no cap
    assert resolve_options({"explain_layer": None, "other": 1})["explain_method"] == "gradcam"
    with pytest.raises(AuditError, match="unknown explain option"):
        resolve_options({"explain_metod": "x"})


def test_explain_command_refuses_changed_images(tmp_path, capsys):
    model_dir = make_model_dir(tmp_path / "model", classes=CLASSES)
    data = make_manifest(tmp_path / "data", CLASSES, per_class=2)
    run = load_run(run_audit(model_dir, data, store=tmp_path / "store", device="cpu", workers=0,
                             skip=("explain", "integrity")))  # fmt: skip
    failure = run.table[~run.table["correct"]].iloc[0]
    other = run.table.loc[run.table["path"] != failure["path"], "path"].iloc[0]
    (data.parent / failure["path"]).write_bytes((data.parent / other).read_bytes())
    assert cli(["explain", str(run.path), "--quiet"]) == 2
    assert "changed since the run" in capsys.readouterr().err
    assert not (run.path / "explain").exists()


def test_second_explain_folders_are_named_by_method(tmp_path):
    from auditapp.commands.explain_cmd import folder_name
    from explain.registry import available_methods

    assert folder_name(tmp_path, "gradcam++") == "explain"
    (tmp_path / "explain").mkdir()
    names = {m: folder_name(tmp_path, m) for m in available_methods()}
    assert names["gradcam++"] == "explain-gradcampp"
    assert names["pgc-gradcam++"] == "explain-pgc-gradcampp"
    assert names["integratedgradients"] == "explain-integratedgradients"
    assert len(set(names.values())) == len(names)
