"""The light listing (``audits.history_records``): the listing sidecar, the catalog, the related
runs and ``list`` against the full, validated reading of the same store (``scan_store``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from auditapp.cli import main as cli_main
from audits.errors import AuditError
from audits.history_records import (
    LISTING_FILE,
    AuditEntry,
    _from_sidecar,
    list_store,
    read_records,
    write_listing,
)
from audits.related import bundle
from audits.store import list_runs, load_run, scan_store
from dashboard.catalog import scan
from fixtures.synthetic_history import write_audit
from fixtures.synthetic_store import synthetic_table
from tests.test_runs import AUDIT, COMPARISON, DRIFT, write_mixed_store

T0 = datetime(2026, 3, 1, 8, 0, 0)


@pytest.fixture(scope="module")
def table():
    t, probs, _ = synthetic_table(7, 90, seed=5)
    return t, probs


def _audit(store: Path, table, version: str, day: int) -> Path:
    t, probs = table
    return write_audit(store, "fam", version, T0.replace(day=1 + day), t, probs, 7, "f" * 64)


def _entry(folder: Path) -> AuditEntry:
    """``audit.json`` decoded independently of the listing's code path."""
    return msgspec.json.decode((folder / "audit.json").read_bytes(), type=AuditEntry)


@pytest.fixture
def mixed(tmp_path: Path, table) -> Path:
    """The fixture runs (an audit, its drift run and a comparison; older runs, no sidecar),
    two synthetic audits (with one) and the damaged folders ``scan_store``'s test uses."""
    store = tmp_path / "store"
    write_mixed_store(store)
    _audit(store, table, "1.0.0", 0)
    _audit(store, table, "1.1.0", 1)
    return store


# --- the sidecar -----------------------------------------------------------------------------


def test_an_audit_run_gets_a_sidecar_that_reads_as_its_record(tmp_path, table):
    run = _audit(tmp_path, table, "1.0.0", 0)
    side = json.loads((run / LISTING_FILE).read_text())
    stat = (run / "audit.json").stat()
    assert (side["source"]["size"], side["source"]["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
    record = msgspec.json.decode(json.dumps(side["record"]), type=AuditEntry)
    assert record == _entry(run)
    assert _from_sidecar(run) == record  # still fresh after the run folder's rename
    (listed,) = read_records(tmp_path).audits
    assert listed == msgspec.structs.replace(_entry(run), run_id=run.name, path=str(run))
    full = load_run(run).audit  # and what it holds is the validated record's
    assert listed.metrics.accuracy == full.metrics.accuracy
    assert [c.recall for c in listed.metrics.per_class] == [
        c.recall for c in full.metrics.per_class
    ]


def test_runs_with_and_without_the_sidecar_list_the_same(mixed):
    with_sidecars = [p for p in mixed.iterdir() if (p / LISTING_FILE).is_file()]
    assert len(with_sidecars) == 2  # the synthetic audits; the fixture runs predate it
    before = list_store(mixed)
    before_records = read_records(mixed)
    for folder in with_sidecars:
        (folder / LISTING_FILE).unlink()
    after = list_store(mixed)
    assert after == before and read_records(mixed) == before_records
    assert set(with_sidecars) <= {r.path for r in before.runs}


def test_a_sidecar_is_not_written_for_other_kinds_or_a_broken_record(tmp_path):
    for src in (DRIFT, COMPARISON):
        folder = shutil.copytree(src, tmp_path / src.name)
        assert write_listing(folder) is None and not (folder / LISTING_FILE).exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "audit.json").write_text('{"created": 1}')
    assert write_listing(bad) is None and not (bad / LISTING_FILE).exists()


def test_a_stale_or_damaged_sidecar_is_not_used(tmp_path, table):
    run = _audit(tmp_path, table, "1.0.0", 0)
    text = (run / "audit.json").read_text()
    accuracy = json.loads(text)["metrics"]["accuracy"]
    # Same size, a different value: only the times tell the sidecar is stale.
    edited = text.replace(
        f'"accuracy": {accuracy}', f'"accuracy": {accuracy / 2:.{len(str(accuracy)) - 2}f}', 1
    )
    assert len(edited) == len(text) and edited != text
    (run / "audit.json").write_text(edited)
    (listed,) = read_records(tmp_path).audits
    assert listed.metrics.accuracy == json.loads(edited)["metrics"]["accuracy"] != accuracy
    # A sidecar that does not decode, or describes another entry layout: the record is read.
    assert write_listing(run) is not None
    side = json.loads((run / LISTING_FILE).read_text())
    side["record"]["metrics"]["accuracy"] = 0.123
    (run / LISTING_FILE).write_text(json.dumps(side))
    assert read_records(tmp_path).audits[0].metrics.accuracy == 0.123  # a fresh one is used
    side["source"]["layout"] = "0" * 16
    (run / LISTING_FILE).write_text(json.dumps(side))
    assert read_records(tmp_path).audits[0].metrics.accuracy != 0.123
    (run / LISTING_FILE).write_text("{half")
    assert read_records(tmp_path).audits == [listed]


# --- the light listing against the full one ------------------------------------------------


def test_listing_agrees_with_the_full_scan(mixed):
    light, full = list_store(mixed, tables=True), scan_store(mixed)
    assert [r.run_id for r in light.runs] == [r.run_id for r in full.runs]  # newest first
    for lr, fr in zip(light.runs, full.runs, strict=True):
        assert (lr.kind, lr.created, lr.path.resolve()) == (fr.kind, fr.created, fr.path)
        who = fr.identity  # a comparison: its candidate
        assert (lr.model.name, lr.model.version, lr.model.weights_sha256) == (
            who.name,
            who.version,
            who.weights_sha256,
        )
    assert sorted(d.path.name for d in light.damaged) == sorted(d.path.name for d in full.damaged)
    assert sorted(d.path.name for d in light.damaged) == ["a-list", "bad-json", "no-record"]
    assert [r.run_id for r in list_store(mixed, kind="drift").runs] == [DRIFT.name]


def test_a_damaged_table_footer_is_set_apart_when_asked(mixed):
    newest = max(p for p in mixed.iterdir() if p.name.startswith("2026030"))
    (newest / "predictions.parquet").write_bytes(b"PAR1 not a parquet file")
    (damaged,) = [d for d in list_store(mixed, tables=True).damaged if d.path == newest]
    assert damaged.reason.startswith("predictions.parquet: damaged (")
    assert newest in [r.path for r in list_store(mixed).runs]  # not read unless asked
    assert newest.name in [d.path.name for d in scan_store(mixed).damaged]


def test_scan_store_of_one_kind_opens_only_that_kind(mixed):
    found = scan_store(mixed, kind="drift")
    assert [r.run_id for r in found.runs] == [DRIFT.name]
    # The broken audit record is not opened; the broken drift record and the folder with no
    # record are still named.
    assert sorted(d.path.name for d in found.damaged) == ["a-list", "no-record"]


def test_catalog_is_the_full_scans_runs(mixed):
    cat = scan(mixed)
    full = scan_store(mixed)
    expected = [
        (r.run_id, r.path, r.kind, r.identity.name, r.identity.version, r.created)
        for r in full.runs
    ]
    assert [(i.run_id, i.path, i.kind, i.model, i.version, i.created) for i in cat.runs] == expected
    assert sorted(b.name for b in cat.broken) == ["a-list", "bad-json", "no-record"]
    assert [i.version for i in cat.audits] == ["1.1.0", "1.1.0", "1.0.0"]


def test_a_record_wrong_only_where_no_list_reads_is_listed_and_named_when_opened(mixed):
    newest = max(p for p in mixed.iterdir() if p.name.startswith("2026030"))
    doc = json.loads((newest / "audit.json").read_text())
    doc["metrics"]["confusion"] = "not a matrix"
    (newest / "audit.json").write_text(json.dumps(doc))
    assert scan(mixed).get(newest.name) is not None  # the pickers offer it …
    with pytest.raises(AuditError, match=r"audit.json: invalid audit record: metrics.confusion"):
        load_run(newest).audit  # noqa: B018 - … and the page that opens it names the field


# --- related runs ----------------------------------------------------------------------------


def test_related_runs_skip_a_damaged_comparison_with_one_warning(mixed, caplog):
    newer = mixed / COMPARISON.name.replace("20261201T180015", "20261201T190000")
    shutil.copytree(COMPARISON, newer)
    doc = json.loads((newer / "comparison.json").read_text())
    doc["created"] = "2026-12-01T19:00:00Z"
    doc["overall"] = "broken"  # no list reads it; the full check does
    (newer / "comparison.json").write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, logger="audits.store"):
        b = bundle(load_run(mixed / AUDIT.name))
    assert b.comparison.run_id == COMPARISON.name and b.drift.run_id == DRIFT.name
    assert b.previous is None and b.successor is None  # run A is not in the store
    warned = [r.getMessage() for r in caplog.records if newer.name in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"warning: skipped {newer}: comparison.json")
    # What a fully checked listing picks: the newest valid comparison with this candidate.
    full = [r for r in list_runs(mixed) if r.kind == "comparison"]
    assert [r.run_id for r in full if r.comparison.run_b.run_id == AUDIT.name][0] == COMPARISON.name


def test_related_runs_find_the_successor_and_its_audit(tmp_path):
    store = tmp_path / "store"
    for src in (AUDIT, COMPARISON):
        shutil.copytree(src, store / src.name)
    doc = json.loads((COMPARISON / "comparison.json").read_text())
    base = store / doc["run_a"]["run_id"]  # the baseline, under its recorded id
    shutil.copytree(AUDIT, base)
    older = bundle(load_run(base))
    assert older.successor.run_id == COMPARISON.name and older.newer.run_id == AUDIT.name
    assert older.comparison is None


# --- list ------------------------------------------------------------------------------------


def _expected_entry(path: Path) -> dict:
    """``list --json``'s entry from the validated record (the command's former reading)."""
    run = load_run(path)
    rec = run.record
    data = rec.current if run.kind == "drift" else rec.dataset
    model = None if run.kind == "comparison" else rec.model
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "path": str(run.path),
        "model": None if model is None else {"name": model.name, "version": model.version},
        "data": data.path,
        "n_images": data.n_images,
        "accuracy": rec.metrics.accuracy if run.kind == "audit" else None,
        "verdict": rec.verdict if run.kind == "comparison" else None,
        "drift": rec.drift if run.kind == "drift" else None,
        "created": rec.created,
    }


def test_list_json_is_the_validated_records_fields(mixed, capsys):
    assert cli_main(["list", "--store", str(mixed), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["runs"] == [_expected_entry(r.path) for r in scan_store(mixed).runs]
    assert sorted(Path(d.split(": ")[0]).name for d in doc["damaged"]) == [
        "a-list",
        "bad-json",
        "no-record",
    ]
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("warning: skipped")]
    assert len(warnings) == 3 and "Traceback" not in captured.err


def test_list_table_from_a_relative_store(mixed, capsys, monkeypatch):
    monkeypatch.chdir(mixed.parent)
    monkeypatch.setenv("COLUMNS", "250")
    assert cli_main(["list", "--store", mixed.name]) == 0
    out = capsys.readouterr().out
    assert all(os.path.basename(r.path) in out for r in scan_store(mixed).runs)
    assert "fam 1.1.0" in out and "car-variants 1.1.0" in out
