"""Data sets: ImageFolder and manifests, path safety, label checks, fingerprints and freezing."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from audits.datasets import (
    check_frozen,
    check_labels,
    fingerprint,
    freeze,
    hash_files,
    load_dataset,
)
from audits.errors import AuditError
from tests.builders import make_imagefolder, make_manifest

CLASSES = ["cat", "dog", "fox"]


def test_imagefolder_rows_and_labels(tmp_path):
    root = make_imagefolder(tmp_path / "if", CLASSES, per_class=2)
    (root / "notes.txt").write_text("not an image")
    ds = load_dataset(root)
    assert ds.kind == "imagefolder"
    assert sorted(ds.items["path"]) == sorted(f"{c}/{c}_{i}.png" for c in CLASSES for i in range(2))
    assert ds.items.set_index("path").loc["dog/dog_1.png", "label"] == "dog"


def test_flat_folder_is_unlabelled(tmp_path):
    root = make_imagefolder(tmp_path / "if", ["x"], per_class=3)
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in (root / "x").iterdir():
        (flat / f.name).write_bytes(f.read_bytes())
    ds = load_dataset(flat)
    assert len(ds.items) == 3 and not ds.labelled


def test_manifest_metadata_and_folder_shortcut(tmp_path):
    manifest = make_manifest(tmp_path / "m", CLASSES, per_class=2)
    for path in (manifest, manifest.parent):
        ds = load_dataset(path)
        assert ds.kind == "manifest" and ds.has_roi
        assert {"group", "source", "roi_x0"} <= set(ds.metadata_columns)


def test_parquet_manifest(tmp_path):
    manifest = make_manifest(tmp_path / "m", CLASSES, per_class=2)
    pq = manifest.with_suffix(".parquet")
    pd.read_csv(manifest).to_parquet(pq)
    assert len(load_dataset(pq).items) == 6


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "img/../../x.png"])
def test_paths_that_escape_are_refused(tmp_path, bad):
    manifest = make_manifest(tmp_path / "m", CLASSES, per_class=1)
    frame = pd.read_csv(manifest)
    frame.loc[0, "path"] = bad
    frame.to_csv(manifest, index=False)
    with pytest.raises(AuditError, match=r"leave the manifest's folder"):
        load_dataset(manifest)


def test_manifest_without_path_column(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("file,label\na.png,cat\n")
    with pytest.raises(AuditError, match=r"no 'path' column"):
        load_dataset(f)


def test_reserved_metadata_names_are_prefixed(tmp_path):
    manifest = make_manifest(
        tmp_path / "m", CLASSES, per_class=1, extra={"pred": "x", "confidence": 1}
    )
    ds = load_dataset(manifest)
    assert {"meta_pred", "meta_confidence"} <= set(ds.items.columns)


def test_unknown_labels_are_listed(tmp_path):
    ds = load_dataset(make_imagefolder(tmp_path / "if", ["cat", "wolf", "owl"], per_class=2))
    with pytest.raises(
        AuditError,
        match=r"4 image\(s\) have labels that are not classes of the model: 'owl', 'wolf'",
    ):
        check_labels(ds, CLASSES)


def test_fingerprint_is_sha256_over_sorted_rows(tmp_path):
    ds = load_dataset(make_manifest(tmp_path / "m", CLASSES, per_class=2))
    rows = []
    for path, label in zip(ds.items["path"], ds.items["label"], strict=True):
        sha = hashlib.sha256((ds.root / path).read_bytes()).hexdigest()
        rows.append(f"{path}\t{sha}\t{label}\n")
    expected = hashlib.sha256("".join(sorted(rows)).encode()).hexdigest()
    assert fingerprint(ds) == expected
    shuffled = ds.items.sample(frac=1.0, random_state=1).reset_index(drop=True)
    ds.items = shuffled
    assert fingerprint(ds) == expected


def test_frozen_set_tamper_check(tmp_path):
    manifest = make_manifest(tmp_path / "m", CLASSES, per_class=3)
    ds = load_dataset(manifest)
    record = freeze(ds)
    assert ds.freeze_file.is_file() and record["n_images"] == 9
    assert check_frozen(ds, hash_files(ds)) is True

    # a changed byte, a relabelled row, an added row and a missing file
    target = ds.root / "img/cat_0.png"
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF
    target.write_bytes(bytes(data))
    frame = pd.read_csv(manifest)
    frame.loc[frame["path"] == "img/dog_1.png", "label"] = "fox"
    extra = frame.iloc[[0]].copy()
    extra["path"] = "img/new.png"
    (ds.root / "img/new.png").write_bytes((ds.root / "img/dog_0.png").read_bytes())
    frame = pd.concat([frame, extra])
    frame.to_csv(manifest, index=False)
    (ds.root / "img/fox_2.png").unlink()

    moved = load_dataset(manifest)
    with pytest.raises(AuditError) as info:
        check_frozen(moved, hash_files(moved))
    msg = str(info.value)
    assert "1 changed (img/cat_0.png)" in msg
    assert "1 relabelled (img/dog_1.png)" in msg
    assert "1 added (img/new.png)" in msg
    assert "1 missing (img/fox_2.png)" in msg
    assert "Once an image is test it stays test" in msg


def test_unfrozen_set_reports_not_frozen(tmp_path):
    ds = load_dataset(make_imagefolder(tmp_path / "if", CLASSES, per_class=1))
    assert check_frozen(ds, hash_files(ds)) is False


def test_missing_data_set(tmp_path):
    with pytest.raises(AuditError, match=r"data set not found"):
        load_dataset(tmp_path / "nope")
