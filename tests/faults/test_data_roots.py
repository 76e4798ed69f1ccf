"""Data roots that hold: a symbolic link that leads outside a data set's folder is refused.

Each case builds a real link (file, folder, ImageFolder class folder) to images outside the
root; the old, lexical-only check read and audited them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audits.datasets import load_dataset
from audits.errors import AuditError
from tests.builders import make_imagefolder, make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder of images that no data set below owns."""
    folder = make_imagefolder(tmp_path / "elsewhere", ["secret"], per_class=2) / "secret"
    return folder.resolve()


def _add_rows(manifest: Path, paths: list[str]) -> None:
    frame = pd.read_csv(manifest)
    extra = frame.iloc[[0] * len(paths)].copy()
    extra["path"] = paths
    pd.concat([frame, extra]).to_csv(manifest, index=False)


def _refusal(source: Path, root: Path, n: int, shown: str) -> str:
    return re.escape(
        f"{source}: {n} path(s) lead outside the data set's folder {root} through symbolic "
        f"links ({shown})"
    )


def test_manifest_row_that_is_a_link_to_a_file_outside_is_refused(tmp_path, outside):
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=1).resolve()
    os.symlink(outside / "secret_0.png", manifest.parent / "img" / "looks_fine.png")
    _add_rows(manifest, ["img/looks_fine.png"])
    with pytest.raises(AuditError) as info:
        load_dataset(manifest)
    message = str(info.value)
    assert re.match(
        _refusal(
            manifest, manifest.parent, 1, f"'img/looks_fine.png' → {outside / 'secret_0.png'}"
        ),
        message,
    )
    assert message.endswith(
        "copy those images into the manifest's folder or remove those rows "
        "(links that stay inside the folder are fine)"
    )
    assert "\n" not in message


def test_manifest_rows_under_a_linked_folder_outside_are_refused_and_counted(tmp_path, outside):
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=1).resolve()
    os.symlink(outside, manifest.parent / "more")
    _add_rows(manifest, ["more/secret_0.png", "more/secret_1.png"])
    with pytest.raises(AuditError) as info:
        load_dataset(manifest)
    shown = (
        f"'more/secret_0.png' → {outside / 'secret_0.png'}, "
        f"'more/secret_1.png' → {outside / 'secret_1.png'}"
    )
    assert re.match(_refusal(manifest, manifest.parent, 2, shown), str(info.value))


def test_many_offending_rows_show_the_first_three_and_the_count(tmp_path, outside):
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=1).resolve()
    img = manifest.parent / "img"
    names = [f"x{i}.png" for i in range(7)]
    for name in names:
        os.symlink(outside / "secret_0.png", img / name)
    _add_rows(manifest, [f"img/{n}" for n in names])
    with pytest.raises(AuditError, match=r": 7 path\(s\) lead outside .* and 4 more\)"):
        load_dataset(manifest)


def test_imagefolder_class_folder_linked_outside_is_refused(tmp_path, outside):
    root = make_imagefolder(tmp_path / "if", ["cat", "dog"], per_class=1).resolve()
    os.symlink(outside, root / "wolf")
    with pytest.raises(AuditError) as info:
        load_dataset(root)
    message = str(info.value)
    assert re.match(_refusal(root, root, 1, f"'wolf/' → {outside}"), message)
    assert message.endswith(
        "copy those images into the folder or remove the links "
        "(links that stay inside the folder are fine)"
    )


def test_imagefolder_file_linked_outside_is_refused(tmp_path, outside):
    root = make_imagefolder(tmp_path / "if", ["cat", "dog"], per_class=1).resolve()
    os.symlink(outside / "secret_1.png", root / "cat" / "cat_9.png")
    with pytest.raises(AuditError) as info:
        load_dataset(root)
    assert re.match(
        _refusal(root, root, 1, f"'cat/cat_9.png' → {outside / 'secret_1.png'}"), str(info.value)
    )


def test_imagefolder_nested_folder_linked_outside_is_refused(tmp_path, outside):
    root = make_imagefolder(tmp_path / "if", ["cat", "dog"], per_class=1).resolve()
    (root / "dog" / "more").mkdir()
    os.symlink(outside, root / "dog" / "more" / "batch")
    with pytest.raises(AuditError) as info:
        load_dataset(root)
    assert re.match(_refusal(root, root, 1, f"'dog/more/batch/' → {outside}"), str(info.value))


def test_links_that_stay_inside_the_root_are_accepted(tmp_path):
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=1).resolve()
    data = manifest.parent
    (data / "aliases").mkdir()
    os.symlink(data / "img" / "cat_0.png", data / "aliases" / "a.png")  # file link
    os.symlink(data / "img", data / "mirror")  # folder link
    _add_rows(manifest, ["aliases/a.png", "mirror/dog_0.png"])
    ds = load_dataset(manifest)
    assert ds.items["path"].tolist()[-2:] == ["aliases/a.png", "mirror/dog_0.png"]

    root = make_imagefolder(tmp_path / "if", ["cat", "dog"], per_class=2).resolve()
    os.symlink(root / "dog" / "dog_0.png", root / "cat" / "also_dog.png")
    os.symlink(root / "cat", root / "cat" / "loop")  # a cycle: followed once, then stopped
    os.symlink(root / "dog", root / "puppy")  # a class folder that is a link inside the root
    items = load_dataset(root).items
    assert items["path"].tolist() == [
        "cat/also_dog.png",
        "cat/cat_0.png",
        "cat/cat_1.png",
        "dog/dog_0.png",
        "dog/dog_1.png",
        "puppy/dog_0.png",
        "puppy/dog_1.png",
    ]
    assert items["label"].tolist() == ["cat"] * 3 + ["dog"] * 2 + ["puppy"] * 2


def test_imagefolder_listing_order_is_by_path_components(tmp_path):
    """'a/b.png' sorts before 'a-b/…' as Path sorting did: the predictions' row order holds."""
    root = make_imagefolder(tmp_path / "if", ["cat"], per_class=1).resolve()
    for sub in ("x", "x-y"):
        (root / "cat" / sub).mkdir()
        (root / "cat" / sub / "i.png").write_bytes((root / "cat" / "cat_0.png").read_bytes())
    assert load_dataset(root).items["path"].tolist() == [
        "cat/cat_0.png",
        "cat/x/i.png",
        "cat/x-y/i.png",
    ]


def test_cli_run_refuses_a_link_outside_with_one_line(tmp_path, outside):
    model = make_model_dir(tmp_path / "model", CLASSES)
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=1).resolve()
    os.symlink(outside / "secret_0.png", manifest.parent / "img" / "x.png")
    _add_rows(manifest, ["img/x.png"])
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "audits", "run", "--model", str(model), "--data", str(manifest)]
        + ["--store", str(store), "--no-explain", "--no-integrity"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 path(s) lead outside the data set's folder" in errors[0]
    assert f"'img/x.png' → {outside / 'secret_0.png'}" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not store.exists() or not [p for p in store.iterdir() if not p.name.startswith(".")]


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """pandas would keep the second 'label' as 'label.1', silently (fault campaign finding)."""
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,source,label\na.png,cat,web,fox\n")
    with pytest.raises(
        AuditError, match=r"manifest.csv: the header names column\(s\) 'label' more than once"
    ):
        load_dataset(manifest)
