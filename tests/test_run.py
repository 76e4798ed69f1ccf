"""`python -m audits run` end to end: stored numbers, skipped images, atomicity, determinism, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from auditapp.pipeline.audit import run_audit
from audits.model_card import load_card, load_model
from audits.store import list_runs, load_run
from tests.builders import make_imagefolder, make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]
REPO = Path(__file__).resolve().parent.parent
SKIP_STAGES = ("explain", "integrity")


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_cli_run_manifest_numbers_equal_sklearn(tmp_path):
    model = make_model_dir(tmp_path / "model", seed=3)
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=8)
    store = tmp_path / "store"
    proc = cli(
        "run",
        "--model",
        str(model),
        "--data",
        str(manifest),
        "--store",
        str(store),
        "--no-explain",
        "--no-integrity",
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.parent == store and run_dir.is_dir()

    run = load_run(run_dir)
    meta, table = run.meta, run.table
    assert meta["schema_version"] == 1
    assert set(meta["model"]) >= {"name", "version", "weights_sha256", "code_commit"}
    assert set(meta["dataset"]) >= {"fingerprint", "n_images", "n_skipped"}
    assert set(meta["auditor"]) >= {"version", "commit"}
    m = meta["metrics"]
    y, p = table["label_idx"].to_numpy(), table["pred_idx"].to_numpy()
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(
        f1_score(y, p, labels=np.unique(y), average="macro", zero_division=0)
    )
    assert m["confusion"]["matrix"] == confusion_matrix(y, p, labels=range(3)).tolist()
    assert m["confusion"]["labels"] == CLASSES

    # the table agrees with the stored arrays and with the model itself
    assert run.probabilities.shape == (24, 3) and run.embeddings.shape == (24, 16)
    assert np.array_equal(run.probabilities.astype(np.float32).argmax(1), p)
    assert table["path"].tolist()[:2] == ["img/cat_0.png", "img/cat_1.png"]
    assert {"group", "source", "roi_x0", "file_sha256", "topk_idx", "loss", "width"} <= set(
        table.columns
    )
    row = table.iloc[0]
    assert list(row["topk_idx"])[0] == row["pred_idx"] and row["width"] == 24
    assert row["loss"] == pytest.approx(
        -np.log(run.probabilities[0, row["label_idx"]].astype(np.float64)), rel=2e-3
    )


def test_embeddings_are_the_penultimate_features(tmp_path):
    model_dir = make_model_dir(tmp_path / "model", seed=1)
    data = make_imagefolder(tmp_path / "if", CLASSES, per_class=2, size=32)
    run = load_run(run_audit(model_dir, data, store=tmp_path / "s", skip=SKIP_STAGES))
    card = load_card(model_dir)
    net = load_model(card)
    from PIL import Image

    img = np.asarray(Image.open(data / run.table["path"][0]).convert("RGB"), dtype=np.float32)
    x = (torch.from_numpy(img).permute(2, 0, 1)[None] / 255 - 0.5) / 0.25
    with torch.no_grad():
        feats = net.pool(net.features(x)).flatten(1)[0].numpy()
    np.testing.assert_allclose(run.embeddings[0].astype(np.float32), feats, rtol=2e-3, atol=2e-3)


def test_bad_images_are_skipped_and_counted(tmp_path):
    data = make_imagefolder(tmp_path / "if", CLASSES, per_class=3)
    (data / "cat" / "empty.png").write_bytes(b"")
    (data / "dog" / "text.jpg").write_text("not an image")
    good = (data / "fox" / "fox_0.png").read_bytes()
    (data / "fox" / "cut.png").write_bytes(good[: len(good) // 2])
    run = load_run(
        run_audit(make_model_dir(tmp_path / "m"), data, store=tmp_path / "s", skip=SKIP_STAGES)
    )
    d = run.meta["dataset"]
    assert (d["n_images"], d["n_skipped"], d["n_listed"]) == (9, 3, 12)
    reasons = {s["path"]: s["reason"] for s in run.meta["skipped"]}
    assert reasons["cat/empty.png"].startswith("empty file")
    assert reasons["dog/text.jpg"].startswith("not an image")
    assert "truncated" in reasons["fox/cut.png"] or "unreadable" in reasons["fox/cut.png"]
    assert len(run.table) == 9 and run.probabilities.shape[0] == 9


def test_greyscale_model_run(tmp_path):
    model = make_model_dir(tmp_path / "g", channels=1, size=(20, 28))
    run = load_run(
        run_audit(
            model,
            make_imagefolder(tmp_path / "if", CLASSES, 2),
            store=tmp_path / "s",
            skip=SKIP_STAGES,
        )
    )
    assert run.meta["model"]["input"] == {"size": [20, 28], "channels": 1}
    assert run.meta["dataset"]["n_images"] == 6


def test_same_inputs_give_the_same_numbers_on_cpu(tmp_path):
    model = make_model_dir(tmp_path / "m", seed=5)
    data = make_manifest(tmp_path / "d", CLASSES, per_class=6)
    a = load_run(run_audit(model, data, store=tmp_path / "s", device="cpu", skip=SKIP_STAGES))
    b = load_run(
        run_audit(model, data, store=tmp_path / "s", device="cpu", workers=0, skip=SKIP_STAGES)
    )
    assert a.run_id != b.run_id
    assert a.meta["metrics"] == b.meta["metrics"]
    assert a.meta["dataset"]["fingerprint"] == b.meta["dataset"]["fingerprint"]
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.array_equal(np.asarray(a.probabilities), np.asarray(b.probabilities))
    assert np.array_equal(np.asarray(a.embeddings), np.asarray(b.embeddings))


def test_failure_mid_run_leaves_no_folder(tmp_path, monkeypatch):
    import auditapp.pipeline.audit

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(auditapp.pipeline.audit, "audit_metrics", boom, raising=False)
    monkeypatch.setattr("audits.metrics.audit_metrics", boom)
    store = tmp_path / "s"
    with pytest.raises(RuntimeError):
        run_audit(
            make_model_dir(tmp_path / "m"),
            make_imagefolder(tmp_path / "d", CLASSES, 2),
            store=store,
            skip=SKIP_STAGES,
        )
    assert list(store.iterdir()) == []


def test_killed_run_leaves_no_partial_folder(tmp_path):
    model = make_model_dir(tmp_path / "m", size=(64, 64))
    data = make_imagefolder(tmp_path / "d", CLASSES, per_class=400, size=64)
    store = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "audits", "run", "--model", str(model), "--data", str(data), "--store", str(store),
            "--batch-size", "4", "--workers", "0", "--no-explain", "--no-integrity", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not any(store.glob(".tmp-*/probabilities.npy")):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in store.iterdir() if not p.name.startswith(".")] == []
    assert list_runs(store) == []
    # the next run cleans the dead run's temporary folder
    run_audit(model, make_imagefolder(tmp_path / "d2", CLASSES, 1), store=store, skip=SKIP_STAGES)
    assert not list(store.glob(".tmp-*")) and len(list_runs(store)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/nope", "--data", "{data}"], "model.toml"),
        (["--model", "{model}", "--data", "{tmp}/nope"], "data set not found"),
        (["--model", "{model}", "--data", "{data}", "--device", "cuda"], "no CUDA device"),
        (["--model", "{model}", "--data", "{wrong}"], "not classes of the model: 'owl'"),
        (["--model", "{model}", "--data", "{broken}"], "none of the 2 images could be read"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(tmp_path, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA present")
    model = make_model_dir(tmp_path / "m")
    data = make_imagefolder(tmp_path / "d", CLASSES, 1)
    wrong = make_imagefolder(tmp_path / "w", ["cat", "owl"], 1)
    broken = tmp_path / "b"
    (broken / "cat").mkdir(parents=True)
    (broken / "cat" / "a.png").write_bytes(b"")
    (broken / "cat" / "b.png").write_bytes(b"junk")
    subs = {"tmp": tmp_path, "model": model, "data": data, "wrong": wrong, "broken": broken}
    store = tmp_path / "store"
    proc = cli(
        "run",
        *[a.format(**subs) for a in args],
        "--store",
        str(store),
        "--no-explain",
        "--no-integrity",
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not store.exists() or [p for p in store.iterdir() if not p.name.startswith(".")] == []


def test_list_prints_runs(tmp_path):
    store = tmp_path / "s"
    run_audit(
        make_model_dir(tmp_path / "m"),
        make_imagefolder(tmp_path / "d", CLASSES, 1),
        store=store,
        skip=SKIP_STAGES,
    )
    damaged = store / "20260101T000000-tiny-1.0.0-drift-abcdef"  # a record that does not validate
    damaged.mkdir()
    (damaged / "drift.json").write_text(json.dumps({"kind": "drift", "model": {"name": "tiny"}}))
    proc = cli("list", "--store", str(store))
    assert proc.returncode == 0 and "tiny 1.0.0" in proc.stdout and "audit" in proc.stdout
    # The damaged run is skipped with one warning naming it; the healthy one is still listed.
    assert damaged.name not in proc.stdout
    assert f"skipped {damaged}" in proc.stderr or damaged.name in proc.stderr
    assert "Traceback" not in proc.stderr


def test_audit_json_is_strict_json(tmp_path):
    run_dir = run_audit(
        make_model_dir(tmp_path / "m"),
        make_imagefolder(tmp_path / "d", CLASSES, 1),
        store=tmp_path / "s",
        skip=SKIP_STAGES,
    )
    text = (run_dir / "audit.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_missing_training_manifest_only_disables_what_needs_it(tmp_path):
    model = make_model_dir(
        tmp_path / "m", extra_toml='training_manifest = "../train/manifest.csv"\n'
    )
    run = load_run(
        run_audit(
            model,
            make_imagefolder(tmp_path / "d", CLASSES, 2),
            store=tmp_path / "s",
            skip=("explain",),
        )
    )
    assert run.meta["metrics"]["imbalance"]["train_counts"] is None
    leak = run.read_json("integrity.json")["leakage"]
    assert leak["available"] is False and "data set not found" in leak["reason"]


def test_run_passes_explain_options(tmp_path):
    model = make_model_dir(tmp_path / "m", seed=2)
    data = make_manifest(tmp_path / "d", CLASSES, per_class=6)
    store = tmp_path / "s"
    proc = cli("run", "--model", str(model), "--data", str(data), "--store", str(store), "--no-integrity",
               "--explain-method", "xgradcam", "--explain-max", "3", "--explain-baseline", "1", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    explained = load_run(proc.stdout.strip().splitlines()[-1]).meta["explain"]
    assert "error" not in explained, explained
    assert explained["method"] == "xgradcam"
    n_failures = int((~load_run(proc.stdout.strip().splitlines()[-1]).table["correct"]).sum())
    assert explained["n_failures"] == n_failures > 3
    assert (
        explained["n_explained"] == 3
        and explained["capped"] is True
        and explained["n_baseline"] <= 1
    )
