"""A freeze covers what the audit depends on: groups, ROIs and every metadata column.

Metadata edited after ``freeze`` makes the set not frozen, each change listed (row, column,
old → new) on the CLI and in ``audit.json``; a freeze record from before metadata was covered
is accepted with a note; a damaged record is one clear line, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from auditapp.pipeline.audit import run_audit
from audits.datasets import fingerprint, freeze, hash_files, load_dataset, read_freeze
from audits.errors import AuditError
from audits.prepare import check_freeze
from audits.runs import open_run
from tests.builders import make_imagefolder, make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]
REPO = Path(__file__).resolve().parents[2]
SKIP_STAGES = ("explain", "integrity")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path / "data", CLASSES, per_class=2).resolve()


def _edit(manifest: Path, **changes: tuple[str, str, object]) -> None:
    """Set ``column`` of the row with ``path`` to ``value``: ``name=(path, column, value)``."""
    frame = pd.read_csv(manifest)
    for path, column, value in changes.values():
        frame.loc[frame["path"] == path, column] = value
    frame.to_csv(manifest, index=False)


def _strip_metadata(image_set) -> None:
    """Rewrite the freeze record as the format before metadata was covered wrote it."""
    record = json.loads(image_set.freeze_file.read_text())
    for key in ("metadata_columns", "metadata_sha256"):
        del record[key]
    for entry in record["files"].values():
        del entry["meta"]
    image_set.freeze_file.write_text(json.dumps(record, indent=1, sort_keys=True))


def test_the_freeze_record_holds_every_rows_metadata_and_its_digest(manifest):
    ds = load_dataset(manifest)
    record = freeze(ds)
    frame = pd.read_csv(manifest)
    columns = ["group", "roi_x0", "roi_y0", "roi_x1", "roi_y1", "source"]
    assert record["metadata_columns"] == columns
    first = frame.iloc[0]
    assert record["files"][first["path"]] == {
        "sha256": hashlib.sha256((manifest.parent / first["path"]).read_bytes()).hexdigest(),
        "label": first["label"],
        "meta": {c: first[c].item() if hasattr(first[c], "item") else first[c] for c in columns},
    }
    # the digest, computed independently from the CSV text's values
    rows = sorted(
        [r["path"], [r[c] for c in sorted(columns)]]
        for r in json.loads(frame.to_json(orient="records"))
    )
    text = json.dumps({"columns": sorted(columns), "rows": rows}, separators=(",", ":"))
    assert record["metadata_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    # DESIGN.md's fingerprint is unchanged: (path, file sha256, label) rows only
    assert record["fingerprint"] == fingerprint(ds)


def test_changed_source_and_group_make_the_set_not_frozen_with_each_change_listed(manifest, capsys):
    ds = load_dataset(manifest)
    before = freeze(ds)["fingerprint"]
    _edit(
        manifest,
        a=("img/cat_0.png", "source", "dealer"),
        b=("img/dog_1.png", "group", "g9_9"),
    )
    check = check_freeze(load_dataset(manifest))
    assert not check.frozen
    assert check.fingerprint == before  # labels and files did not move
    assert [c.as_dict() for c in check.status.changes] == [
        {"path": "img/cat_0.png", "column": "source", "old": "fan", "new": "dealer"},
        {"path": "img/dog_1.png", "column": "group", "old": "g1_0", "new": "g9_9"},
    ]
    assert capsys.readouterr().err == (
        f"warning: {manifest}: metadata changed since it was frozen (manifest.freeze.json): "
        "2 value(s) changed (img/cat_0.png: source 'fan' → 'dealer'; "
        "img/dog_1.png: group 'g1_0' → 'g9_9'). Slices, claims and group leakage read these "
        "columns, so this set is NOT frozen: restore the values, or freeze it again as a new "
        f"held-out set (python -m audits freeze {manifest} --force)\n"
    )


def test_roi_cleared_and_columns_added_or_removed_are_listed(manifest):
    freeze(load_dataset(manifest))
    frame = pd.read_csv(manifest)
    frame.loc[frame["path"] == "img/fox_0.png", "roi_x0"] = None  # reads back as a float column
    frame["weather"] = "rain"
    frame = frame.drop(columns=["source"])
    frame.to_csv(manifest, index=False)
    status = check_freeze(load_dataset(manifest), warn=False).status
    assert not status.frozen
    assert status.columns_added == ["weather"] and status.columns_removed == ["source"]
    # one change, not one per row: 2.0 read from a float column equals the frozen 2
    assert [c.describe() for c in status.changes] == ["img/fox_0.png: roi_x0 2 → (empty)"]


def test_unchanged_metadata_stays_frozen_through_parquet_and_odd_values(tmp_path):
    manifest = make_manifest(
        tmp_path / "d", CLASSES, per_class=2, extra={"dog": True, "score": 0.25}
    )
    frame = pd.read_csv(manifest)
    frame.loc[0, "score"] = float("nan")
    parquet = manifest.with_suffix(".parquet")
    frame.to_parquet(parquet)
    freeze(load_dataset(parquet))
    check = check_freeze(load_dataset(parquet), warn=False)
    assert check.frozen and check.status.covers_metadata is True
    frame.loc[1, "dog"] = False
    frame.to_parquet(parquet)
    changes = check_freeze(load_dataset(parquet), warn=False).status.changes
    assert [c.as_dict() for c in changes] == [
        {"path": frame.loc[1, "path"], "column": "dog", "old": True, "new": False}
    ]


def test_an_audit_after_a_metadata_edit_records_not_frozen_and_the_changes(tmp_path, manifest):
    model = make_model_dir(tmp_path / "model", CLASSES)
    freeze(load_dataset(manifest))
    _edit(manifest, a=("img/fox_0.png", "source", "press"))
    run = open_run(run_audit(model, manifest, store=tmp_path / "store", skip=SKIP_STAGES))
    data = run.audit.dataset
    assert data.frozen is False
    assert data.freeze.covers_metadata is True and data.freeze.n_metadata_changes == 1
    change = data.freeze.metadata_changes[0]
    assert (change.path, change.column, change.old, change.new) == (
        "img/fox_0.png",
        "source",
        "fan",
        "press",
    )
    raw = json.loads((run.path / "audit.json").read_text())["dataset"]["freeze"]
    assert raw["metadata_changes"] == [
        {"path": "img/fox_0.png", "column": "source", "old": "fan", "new": "press"}
    ]
    assert (
        raw["metadata_sha256"]
        == check_freeze(load_dataset(manifest), warn=False).status.metadata_sha256
    )


def test_a_freeze_record_from_before_metadata_coverage_is_accepted_with_a_note(
    tmp_path, manifest, capsys
):
    ds = load_dataset(manifest)
    freeze(ds)
    _strip_metadata(ds)
    _edit(manifest, a=("img/cat_0.png", "source", "dealer"))  # not covered: cannot be seen
    check = check_freeze(load_dataset(manifest))
    assert check.frozen and check.status.covers_metadata is False
    assert capsys.readouterr().err == (
        f"note: {ds.freeze_file} predates metadata coverage: files and labels are frozen, "
        "groups, ROIs and other columns are not; re-freeze to cover metadata: "
        f"python -m audits freeze {manifest} --force\n"
    )
    run = open_run(
        run_audit(
            make_model_dir(tmp_path / "model", CLASSES),
            manifest,
            store=tmp_path / "store",
            skip=SKIP_STAGES,
        )
    )
    assert run.audit.dataset.frozen is True
    assert run.audit.dataset.freeze.covers_metadata is False
    assert "re-freeze to cover metadata" in run.audit.dataset.freeze.note


def test_freeze_command_lists_metadata_changes_and_upgrades_an_old_record(manifest):
    ds = load_dataset(manifest)
    freeze(ds)
    _strip_metadata(ds)
    proc = cli("freeze", str(manifest))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("already frozen, files and labels unchanged: ")
    assert "re-freeze to cover metadata" in proc.stdout
    proc = cli("freeze", str(manifest), "--force")
    assert proc.returncode == 0, proc.stderr
    assert "and 6 metadata column(s)" in proc.stdout
    assert read_freeze(ds)["metadata_columns"][0] == "group"

    _edit(manifest, a=("img/dog_0.png", "group", "elsewhere"))
    proc = cli("freeze", str(manifest))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {manifest}: metadata changed since it was frozen (manifest.freeze.json): "
        "1 value(s) changed (img/dog_0.png: group 'g1_0' → 'elsewhere'); restore the values, "
        f"or freeze it again as a new held-out set: python -m audits freeze {manifest} --force\n"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "a JSON object was expected, found list"),
        ('{"files": []}', "'files' must map each image path to its sha256 and label"),
        ('{"files": {"img/cat_0.png": "abc"}}', "entry 'img/cat_0.png' needs a string 'sha256'"),
        ('{"files": {"a.png": {"sha256": 5, "label": "cat"}}}', "entry 'a.png' needs a string"),
        ('{"files": {}, "metadata_sha256": 1}', "'metadata_sha256' must be a string"),
        (
            '{"files": {"a.png": {"sha256": "x", "label": null}}, "metadata_sha256": "x",'
            ' "metadata_columns": []}',
            "entry 'a.png' has no 'meta' object",
        ),
    ],
)
def test_a_damaged_freeze_record_is_one_clear_line(manifest, text, why):
    ds = load_dataset(manifest)
    ds.freeze_file.write_text(text)
    with pytest.raises(AuditError) as info:
        check_freeze(ds, warn=False)
    message = str(info.value)
    assert message.startswith(f"{ds.freeze_file}: the freeze record is damaged ({why}")
    assert message.endswith(
        f"restore it from version control, or, if the set is known to be unchanged, "
        f"re-freeze it: python -m audits freeze {manifest} --force"
    )


def test_metadata_digest_that_disagrees_with_its_rows_is_damaged(manifest):
    ds = load_dataset(manifest)
    freeze(ds)
    record = json.loads(ds.freeze_file.read_text())
    record["metadata_sha256"] = "0" * 64
    ds.freeze_file.write_text(json.dumps(record))
    with pytest.raises(AuditError, match=r"'metadata_sha256' does not match its own rows"):
        check_freeze(ds, warn=False)


@pytest.mark.parametrize("text", ['{"files": []}', "{not json"])
def test_run_with_a_damaged_freeze_record_exits_2_without_a_traceback(tmp_path, text):
    data = make_imagefolder(tmp_path / "if", CLASSES, per_class=1).resolve()
    (data / "freeze.json").write_text(text)
    model = make_model_dir(tmp_path / "model", CLASSES)
    proc = cli(
        "run", "--model", str(model), "--data", str(data), "--store", str(tmp_path / "s"),
        "--no-explain", "--no-integrity",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {data / 'freeze.json'}: the freeze record is damaged")
    assert errors[0].endswith(f"re-freeze it: python -m audits freeze {data} --force")


def test_imagefolder_freeze_has_no_metadata_columns_and_stays_frozen(tmp_path):
    root = make_imagefolder(tmp_path / "if", CLASSES, per_class=1)
    ds = load_dataset(root)
    record = freeze(ds)
    assert record["metadata_columns"] == [] and record["files"]["cat/cat_0.png"]["meta"] == {}
    assert check_freeze(load_dataset(root), warn=False).frozen
    assert hash_files(ds)[0] == record["files"]["cat/cat_0.png"]["sha256"]
