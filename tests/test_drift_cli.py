"""``python -m audits drift`` end to end on tiny built data, and its refusals of bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from auditapp.cli import main
from auditapp.pipeline.drift import run_drift
from audits.errors import AuditError
from audits.image_properties import PROPERTIES
from audits.store import load_run
from tests.builders import make_model_dir

CLASSES = ["cat", "dog", "fox"]


def photos(root, n: int, seed: int, level: float = 1.0, blur: float = 0.0, labelled: bool = True):
    """Textured 32 px photos; ``level`` darkens, ``blur`` softens (a fan batch when < 1 / > 0)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        cls = CLASSES[i % 3]
        folder = root / cls if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        base = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((4, 4, 1)))
        tint = np.array([1.0, 0.8, 0.6])[np.roll(np.arange(3), i % 3)]
        img = Image.fromarray(np.clip(base * tint * level, 0, 255).astype(np.uint8))
        if blur:
            img = img.filter(ImageFilter.GaussianBlur(blur))
        img.save(folder / f"{cls}_{i}.png")
    return root


def drift(args: list[str], capsys) -> tuple[int, str, str]:
    rc = main(["drift", "--workers", "0", "--permutations", "200", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    return {
        "root": root,
        "model": make_model_dir(root / "model", classes=CLASSES),
        "reference": photos(root / "reference", 36, seed=1),
        "same": photos(root / "same", 30, seed=2),
        "fan": photos(root / "fan", 30, seed=3, level=0.45, blur=1.5, labelled=False),
    }


@pytest.fixture(scope="module")
def fan_run(built, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    rc = main(["drift", "--model", str(built["model"]), "--reference", str(built["reference"]),
               "--current", str(built["fan"]), "--store", str(store), "--workers", "0",
               "--permutations", "200", "--quiet"])  # fmt: skip
    assert rc == 0
    (run,) = [p for p in store.iterdir() if not p.name.startswith(".")]
    return run


def test_cli_writes_a_drift_run_with_the_design_fields(built, tmp_path, capsys):
    store = tmp_path / "store"
    rc, out, _ = drift(["--model", str(built["model"]), "--reference", str(built["reference"]),
                        "--current", str(built["fan"]), "--store", str(store)], capsys)  # fmt: skip
    assert rc == 0
    lines = out.strip().splitlines()
    run = load_run(lines[-1])  # the last stdout line is the run folder
    assert run.kind == "drift" and run.path.parent == store.resolve()
    assert any(line.startswith("drift: YES") for line in lines)
    meta = run.meta
    # DESIGN.md drift.json contract, in its order.
    assert list(meta)[:4] == ["drift", "embedding", "predictions", "properties"]
    assert isinstance(meta["drift"], bool)
    assert {"mmd2", "p_value", "permutations", "drift"} <= set(meta["embedding"])
    assert meta["embedding"]["permutations_max"] == 200  # at most; it stops once settled
    assert {"p_value", "drift"} <= set(meta["predictions"])
    assert [p["name"] for p in meta["properties"]] == PROPERTIES
    assert all({"name", "p_value", "drift"} <= set(p) for p in meta["properties"])
    # Run identity and both data sets' fingerprints.
    assert meta["schema_version"] == 1 and meta["kind"] == "drift" and meta["run_id"] == run.run_id
    assert meta["model"]["name"] == "tiny" and len(meta["model"]["weights_sha256"]) == 64
    for side, n in (("reference", 36), ("current", 30)):
        block = meta[side]
        assert (
            len(block["fingerprint"]) == 64 and block["n_images"] == n and block["n_skipped"] == 0
        )
    assert meta["reference"]["n_labelled"] == 36 and meta["current"]["n_labelled"] == 0
    assert meta["auditor"]["version"] and meta["alpha"] == 0.05
    assert sorted(p.name for p in run.path.iterdir()) == [
        "drift.json",
        "evidently.html",
        "evidently.json",
        "properties.parquet",
        "thumbs",  # small PNGs of the farthest current images
    ]


def test_fan_batch_drift_is_found_and_explained(fan_run):
    meta = json.loads((fan_run / "drift.json").read_text())
    assert meta["drift"] is True
    assert meta["embedding"]["drift"] is True
    # Settled by the sequential test after 173 permutations, none reaching it (audits.sequential).
    assert meta["embedding"]["permutations"] == 173
    assert meta["embedding"]["p_value"] == pytest.approx(1 / 174)
    drifted = {p["name"] for p in meta["properties"] if p["drift"]}
    assert {"brightness", "sharpness"} <= drifted
    assert not drifted & {"width", "height", "aspect_ratio", "format"}
    by = {p["name"]: p for p in meta["properties"]}
    assert by["brightness"]["current_mean"] == pytest.approx(
        0.45 * by["brightness"]["reference_mean"], rel=0.05
    )
    assert by["sharpness"]["current_mean"] < 0.2 * by["sharpness"]["reference_mean"]
    assert meta["predictions"]["accuracy"]["current"] is None
    assert len(meta["examples"]) == 24
    distances = [e["distance"] for e in meta["examples"]]
    assert distances == sorted(distances, reverse=True) and distances[0] > 0
    assert meta["examples"][0]["ratio"] == pytest.approx(
        distances[0] / meta["examples_method"]["reference_typical_distance"]
    )


def test_properties_parquet_and_evidently_files(fan_run):
    table = pd.read_parquet(fan_run / "properties.parquet")
    assert table["side"].value_counts().to_dict() == {"reference": 36, "current": 30}
    assert set(PROPERTIES) <= set(table.columns)
    assert table.loc[table["side"] == "reference", "nn_distance"].isna().all()
    current = table[table["side"] == "current"]
    meta = json.loads((fan_run / "drift.json").read_text())
    far = current.loc[current["nn_distance"].idxmax()]
    assert far["path"] == meta["examples"][0]["path"]
    assert (fan_run / "evidently.html").read_text().lstrip().lower().startswith(
        "<!doctype html"
    ) or ("<html" in (fan_run / "evidently.html").read_text()[:2000].lower())
    evidently = json.loads((fan_run / "evidently.json").read_text())
    assert "metrics" in evidently


def test_same_source_batch_is_not_flagged(built, tmp_path, capsys):
    rc, out, _ = drift(["--model", str(built["model"]), "--reference", str(built["reference"]),
                        "--current", str(built["same"]), "--store", str(tmp_path / "s"), "--quiet"], capsys)  # fmt: skip
    assert rc == 0
    meta = load_run(out.strip().splitlines()[-1]).meta
    assert meta["embedding"]["p_value"] > 0.05
    assert not any(p["drift"] for p in meta["properties"])
    assert (
        meta["predictions"]["accuracy"]["current"] is not None
    )  # labelled current: accuracy reported


def _assert_refused(rc: int, err: str, store, *words: str) -> None:
    """Exit 2, stderr one ``error:`` line (no traceback) naming the cause, no run in the store."""
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    assert not store.exists() or not any(store.iterdir())


def test_current_with_no_readable_image(built, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"")
    (broken / "b.jpg").write_text("not a photo")
    store = tmp_path / "store"
    rc, _, err = drift(["--model", str(built["model"]), "--reference", str(built["reference"]),
                        "--current", str(broken), "--store", str(store), "--quiet"], capsys)  # fmt: skip
    _assert_refused(rc, err, store, str(broken), "0 readable image(s) of 2", "empty file")


def test_empty_current_folder(built, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    store = tmp_path / "store"
    rc, _, err = drift(["--model", str(built["model"]), "--reference", str(built["reference"]),
                        "--current", str(empty), "--store", str(store), "--quiet"], capsys)  # fmt: skip
    _assert_refused(rc, err, store, str(empty), "no images found")


def test_model_whose_classes_do_not_match_the_reference(built, tmp_path, capsys):
    other = make_model_dir(tmp_path / "other", classes=["sedan", "coupe", "van"])
    store = tmp_path / "store"
    rc, _, err = drift(["--model", str(other), "--reference", str(built["reference"]),
                        "--current", str(built["fan"]), "--store", str(store), "--quiet"], capsys)  # fmt: skip
    _assert_refused(
        rc, err, store, "36 image(s) have labels that are not classes of the model", "'cat'"
    )


def test_bad_options(built, tmp_path, capsys):
    store = tmp_path / "store"
    common = ["--model", str(built["model"]), "--reference", str(built["reference"]),
              "--current", str(built["fan"]), "--store", str(store), "--quiet"]  # fmt: skip
    rc, _, err = drift([*common, "--alpha", "1.5"], capsys)
    _assert_refused(rc, err, store, "--alpha")
    rc = main(["drift", *common, "--permutations", "0"])
    _assert_refused(rc, capsys.readouterr().err, store, "--permutations")


def test_failure_while_writing_leaves_nothing(built, tmp_path, monkeypatch):
    def broken_write(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("auditapp.pipeline.drift.write_record", broken_write)
    store = tmp_path / "store"
    # A write fault is a user-facing error (exit 2) naming the store, not a bare OSError.
    with pytest.raises(AuditError, match=r"cannot write the run: disk full; nothing was stored"):
        run_drift(
            built["model"],
            built["reference"],
            built["same"],
            store=store,
            workers=0,
            permutations=20,
        )
    assert store.exists() and list(store.iterdir()) == []  # the temporary folder is gone too
