"""The typed run model: today's files load, the writer validates and keeps the bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audits.errors import AuditError
from audits.related import bundle
from audits.runs import (
    SCHEMA_VERSION,
    AuditRecord,
    ComparisonRecord,
    InvalidRecord,
    StageError,
    open_run,
    write_record,
)
from audits.runs.kinds import KINDS
from audits.runs.models_integrity import Unavailable
from audits.runs.schemas import PUBLISHED, schema_file, schema_text
from audits.store import list_runs, load_run

DATA = Path(__file__).parent / "data" / "runs"
AUDIT = DATA / "20261201T175937-car-variants-1.1.0-audit-46a3ad"
DRIFT = DATA / "20261201T180001-car-variants-1.1.0-drift-ebf50b"
COMPARISON = DATA / "20261201T180015-car-variants-1.0.0-vs-1.1.0-comparison-ee6527"
#: Every record file of the committed fixture, with its kind.
FIXTURE_FILES = [
    (AUDIT / "audit.json", "audit"),
    (AUDIT / "explain" / "summary.json", "explain"),
    (AUDIT / "integrity.json", "integrity"),
    (next(AUDIT.glob("claims-*")) / "claims.json", "claims"),
    (DRIFT / "drift.json", "drift"),
    (COMPARISON / "comparison.json", "comparison"),
]


def _json(file: Path) -> dict:
    return json.loads(file.read_text(encoding="utf-8"))


# --- today's format loads through the typed reader ------------------------------------------


def test_the_audit_fixture_loads_with_its_values() -> None:
    run = open_run(AUDIT)
    rec = run.audit
    assert isinstance(rec, AuditRecord) and rec.schema_version == SCHEMA_VERSION
    assert (rec.model.name, rec.model.version) == ("car-variants", "1.1.0")
    assert rec.dataset.n_images == 1200 and rec.dataset.kind == "manifest"
    assert rec.auditor.version == "0.1.0" and rec.device.type == "cpu"
    m = rec.metrics
    assert m.accuracy == pytest.approx(0.9241666666666667)
    assert (m.top_k_accuracy.top1, m.top_k_accuracy.top5) == (m.accuracy, 1.0)
    assert m.per_class[0].class_ == "carrera" and m.per_class[0].support == 400
    assert m.confusion.labels == rec.model.classes and len(m.confusion.normalized) == 6
    assert m.most_confused[0].true == "carrera" and m.most_confused[0].predicted == "gt"
    assert m.imbalance.largest == "carrera" and m.calibration.n_bins == 15
    assert m.calibration.bins[0].confidence is None  # an empty bin
    assert rec.explain.method == "gradcam" and rec.explain.pairs[0].below_threshold == 34
    assert rec.integrity.leakage.available and rec.integrity.leakage.leaked_images == 0
    assert rec.integrity.suspect_labels.n_flagged == 4
    assert rec.integrity.slices.weakest[0].label == "night = true"
    assert rec.timings.total_s == 9.74 and rec.skipped == []


def test_the_explain_integrity_and_claims_files_load() -> None:
    run = open_run(AUDIT)
    ex = run.explain
    assert ex is not None and ex.name == "explain" and run.explain_folders == [ex]
    assert ex.summary.energy_threshold == "box area" and ex.summary.heatmap_size == [128, 128]
    assert ex.summary.baselines[0].class_ == "cabriolet"
    # The fixture keeps the JSON only: the arrays, tables and images are absent, not errors.
    assert ex.heatmaps is None and ex.regions is None and ex.overlay(0) is None
    assert ex.overlays == {}
    integ = run.integrity
    assert integ.leakage.checks.near.phash_max_distance == 8
    assert integ.leakage.accuracy.leaked.accuracy is None
    assert integ.suspect_labels.rows[0].thumb.startswith("integrity/thumbs/")
    assert run.thumb(integ.suspect_labels.rows[0].thumb) is None  # not copied into the fixture
    assert integ.slices.weakest[0].significantly_lower is True
    [claims] = run.claims
    assert (
        claims.path.name.startswith("claims-") and claims.record.claims_file == "demo_claims.toml"
    )
    verdicts = [r.verdict for r in claims.record.results]
    assert verdicts[0] == "contradicted" and claims.record.results[1].sides["slice"].n > 0


def test_the_drift_fixture_loads() -> None:
    run = open_run(DRIFT)
    rec = run.drift
    assert rec.drift is True and rec.embedding.drift and rec.embedding.permutations == 1000
    assert rec.predictions.classes.counts[0].class_ == "carrera"
    assert rec.properties[0].name == "brightness" and rec.properties[0].kind == "numeric"
    assert [p.name for p in rec.drifted_properties] == [
        p.name for p in rec.properties if p.p_adjusted is not None and p.p_adjusted < rec.alpha
    ]
    assert rec.reference.frozen and not rec.current.frozen
    assert run.evidently_html is None and run.properties is None  # not in the fixture


def test_the_comparison_fixture_gives_the_verdict_as_values() -> None:
    rec = open_run(COMPARISON).comparison
    assert isinstance(rec, ComparisonRecord) and rec.verdict == "promote" and rec.promote
    assert rec.failed_checks == [] and all(not failed for _, failed in rec.reason_rows)
    assert rec.summary_detail.startswith("overall +25.0 points")
    assert rec.per_class[0].status == "improved" and rec.speed.b.params == 98790
    assert rec.run_b.run_id == AUDIT.name and rec.overall.mcnemar.n_clusters == 501


def test_a_hold_marks_exactly_the_failed_checks() -> None:
    doc = _json(COMPARISON / "comparison.json")
    doc["verdict"] = "hold"
    doc["checks"][0]["ok"] = False
    doc["reasons"] = [doc["checks"][0]["text"]] + [c["text"] for c in doc["checks"][1:]]
    doc["summary"] = "hold: " + doc["checks"][0]["text"]
    rec = ComparisonRecord.from_dict(doc)
    assert not rec.promote and [c.check for c in rec.failed_checks] == ["overall"]
    assert rec.reason_rows[0] == (doc["checks"][0]["text"], True)
    assert not any(failed for _, failed in rec.reason_rows[1:])
    assert rec.summary_detail == doc["checks"][0]["text"]


def test_the_fixture_store_bundles_the_related_runs() -> None:
    b = bundle(load_run(AUDIT))
    assert b.drift.run_id == DRIFT.name and b.comparison.run_id == COMPARISON.name
    assert b.previous is None  # run A is not in the fixture


def test_store_run_keeps_its_old_interface() -> None:
    run = load_run(AUDIT)
    assert run.kind == "audit" and run.run_id == AUDIT.name and run.meta["kind"] == "audit"
    assert run.read_json("integrity.json")["leakage"]["available"] is True
    assert run.read_json("nope.json") is None
    with pytest.raises(AuditError, match="no predictions.parquet"):
        run.table  # noqa: B018


def test_a_record_of_another_kind_is_refused() -> None:
    with pytest.raises(AuditError, match="a drift run, not the audit run this needs"):
        open_run(DRIFT).audit  # noqa: B018


# --- validation errors name the file and the field ---------------------------------------------


def _copy(tmp_path: Path, src: Path = AUDIT) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_an_invalid_record_names_the_file_and_the_field(tmp_path: Path) -> None:
    run_dir = _copy(tmp_path)
    meta = _json(run_dir / "audit.json")
    meta["metrics"]["per_class"][2]["support"] = "many"
    (run_dir / "audit.json").write_text(json.dumps(meta))
    run = open_run(run_dir)  # opening reads the JSON only
    with pytest.raises(AuditError) as err:
        run.audit  # noqa: B018
    assert str(run_dir / "audit.json") in str(err.value)
    assert "metrics.per_class.2.support" in str(err.value) and "'many'" in str(err.value)


def test_an_invalid_optional_file_names_it(tmp_path: Path) -> None:
    run_dir = _copy(tmp_path)
    doc = _json(run_dir / "integrity.json")
    del doc["slices"]["weakest"]
    (run_dir / "integrity.json").write_text(json.dumps(doc))
    with pytest.raises(
        AuditError, match=r"integrity\.json: invalid integrity record: slices\.weakest"
    ):
        open_run(run_dir).integrity  # noqa: B018
    (run_dir / "explain" / "summary.json").write_text("{oops")
    with pytest.raises(AuditError, match=r"summary\.json: damaged"):
        open_run(run_dir).explain.summary  # noqa: B018


def test_failed_and_unavailable_stages_are_typed() -> None:
    meta = _json(AUDIT / "audit.json")
    meta["explain"] = {"error": "explain unavailable (No module named 'pytorch_grad_cam')"}
    meta["integrity"] = {"file": "integrity.json", "leakage": {"available": False, "reason": "no manifest"},
                         "suspect_labels": {"error": "boom"}, "slices": {"error": "boom"}}  # fmt: skip
    rec = AuditRecord.from_dict(meta)
    assert isinstance(rec.explain, StageError) and rec.explain.error.startswith("explain")
    assert (
        rec.integrity.leakage.available is False and rec.integrity.leakage.reason == "no manifest"
    )
    assert isinstance(rec.integrity.suspect_labels, StageError)
    doc = _json(AUDIT / "integrity.json")
    doc["leakage"] = {"available": False, "reason": "the model card names no training_manifest"}
    doc["slices"] = {"error": "ValueError: boom"}
    integ = KINDS["integrity"].model.from_dict(doc)
    assert isinstance(integ.leakage, Unavailable) and isinstance(integ.slices, StageError)


# --- the writer ------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "kind"), FIXTURE_FILES, ids=lambda x: getattr(x, "name", x))
def test_write_read_write_keeps_the_bytes(tmp_path: Path, file: Path, kind: str) -> None:
    original = file.read_bytes()
    name = KINDS[kind].file
    first = write_record(tmp_path, _json(file), kind)
    assert (tmp_path / name).read_bytes() == original
    (tmp_path / "b").mkdir()
    write_record(tmp_path / "b", first, kind)  # the validated record, written again
    assert (tmp_path / "b" / name).read_bytes() == original
    read_back = KINDS[kind].model.from_dict(_json(tmp_path / "b" / name))
    (tmp_path / "c").mkdir()
    write_record(tmp_path / "c", read_back, kind)
    assert (tmp_path / "c" / name).read_bytes() == original


def test_the_writer_keeps_the_dicts_order_and_stamps_what_is_missing(tmp_path: Path) -> None:
    meta = _json(AUDIT / "audit.json")
    for key in ("schema_version", "created", "auditor"):
        del meta[key]
    rec = write_record(tmp_path, meta, "audit")
    stored = _json(tmp_path / "audit.json")
    assert list(stored)[: len(meta)] == list(meta)
    assert list(stored)[len(meta) :] == ["schema_version", "created", "auditor"]
    assert stored["schema_version"] == SCHEMA_VERSION and rec.created == stored["created"]
    assert set(stored["auditor"]) == {"version", "commit"}
    # Files that never carried the stamps do not get them (their bytes stay today's).
    summary = _json(AUDIT / "explain" / "summary.json")
    write_record(tmp_path, summary, "explain")
    assert _json(tmp_path / "summary.json") == summary


def test_the_writer_rejects_a_wrong_type(tmp_path: Path) -> None:
    meta = _json(AUDIT / "audit.json")
    meta["dataset"]["n_images"] = "1200"
    with pytest.raises(InvalidRecord, match=r"audit\.json: dataset\.n_images: .*integer"):
        write_record(tmp_path, meta, "audit")
    assert not (tmp_path / "audit.json").exists()
    doc = _json(COMPARISON / "comparison.json")
    doc["verdict"] = "maybe"
    with pytest.raises(InvalidRecord, match=r"comparison\.json: verdict: .*'promote' or 'hold'"):
        write_record(tmp_path, doc, "comparison")


def test_the_writer_rejects_a_missing_required_field(tmp_path: Path) -> None:
    doc = _json(DRIFT / "drift.json")
    del doc["embedding"]["p_value"]
    with pytest.raises(InvalidRecord, match=r"drift\.json: embedding\.p_value: Field required"):
        write_record(tmp_path, doc, "drift")
    meta = _json(AUDIT / "audit.json")
    del meta["metrics"]["top_k_accuracy"]["3"]
    with pytest.raises(InvalidRecord, match=r"metrics\.top_k_accuracy\.3: Field required"):
        write_record(tmp_path, meta, "audit")
    with pytest.raises(InvalidRecord, match="not a claims record"):
        write_record(tmp_path, open_run(AUDIT).audit, "claims")


def test_the_writer_takes_numpy_values_and_nan_as_today(tmp_path: Path) -> None:
    import numpy as np

    from audits.fsio import json_text

    meta = _json(AUDIT / "audit.json")
    meta["metrics"]["accuracy"] = np.float64(meta["metrics"]["accuracy"])
    meta["metrics"]["per_class"][0]["support"] = np.int64(400)
    meta["metrics"]["per_class"][0]["recall"] = float("nan")
    meta["model"]["input"]["size"] = (128, 128)
    rec = write_record(tmp_path, meta, "audit")
    assert (tmp_path / "audit.json").read_text(encoding="utf-8") == json_text(meta)
    assert rec.metrics.per_class[0].recall is None and rec.model.input.size == [128, 128]


# --- the store -------------------------------------------------------------------------------


def write_mixed_store(store: Path) -> None:
    """The fixture runs (an audit, its drift run, a comparison) beside damaged folders, a
    half-written hidden run and a loose file."""
    for src in (AUDIT, DRIFT, COMPARISON):
        shutil.copytree(src, store / src.name)
    (store / "bad-json").mkdir()
    (store / "bad-json" / "audit.json").write_text("{not json")
    (store / "a-list").mkdir()
    (store / "a-list" / "drift.json").write_text("[1, 2]")
    (store / "no-record").mkdir()
    (store / ".tmp-half-written").mkdir()
    (store / ".tmp-half-written" / "audit.json").write_text("{}")
    (store / "loose-file.json").write_text("{}")


def test_list_runs_skips_damaged_folders(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_mixed_store(store)
    runs = list_runs(store)
    assert [r.run_id for r in runs] == [COMPARISON.name, DRIFT.name, AUDIT.name]  # newest first
    assert [r.kind for r in list_runs(store, kind="drift")] == ["drift"]
    with pytest.raises(AuditError, match="not a JSON object"):
        load_run(store / "a-list")
    with pytest.raises(AuditError, match="not a run folder"):
        load_run(store / "no-record")


def test_identity_is_cheap_and_tolerant(tmp_path: Path) -> None:
    assert open_run(COMPARISON).identity.version == "1.1.0"  # the candidate's
    run_dir = _copy(tmp_path, DRIFT)
    doc = _json(run_dir / "drift.json")
    doc["model"]["version"] = 110
    (run_dir / "drift.json").write_text(json.dumps(doc))
    assert open_run(run_dir).identity.version is None


def test_thumbnails_never_lead_out_of_the_run(tmp_path: Path) -> None:
    run_dir = _copy(tmp_path)
    (run_dir / "integrity" / "thumbs").mkdir(parents=True)
    (run_dir / "integrity" / "thumbs" / "test-428.jpg").write_bytes(b"jpg")
    (tmp_path / "secret.jpg").write_bytes(b"no")
    run = open_run(run_dir)
    assert run.thumb("integrity/thumbs/test-428.jpg") == run.path / "integrity/thumbs/test-428.jpg"
    assert run.row_thumb(428) == run.thumb("integrity/thumbs/test-428.jpg")
    assert run.row_thumb(1) is None and run.thumb(None) is None
    assert run.thumb("../secret.jpg") is None and run.thumb(str(tmp_path / "secret.jpg")) is None


def test_claims_are_listed_newest_first(tmp_path: Path) -> None:
    run_dir = _copy(tmp_path)
    old = next(run_dir.glob("claims-*"))
    doc = _json(old / "claims.json")
    doc["created"] = "2030-01-01T00:00:00Z"
    (run_dir / "claims-000000000000").mkdir()
    (run_dir / "claims-000000000000" / "claims.json").write_text(json.dumps(doc))
    (run_dir / "claims-empty").mkdir()  # an unfinished or foreign folder: no claims.json
    assert [c.path.name for c in open_run(run_dir).claims] == ["claims-000000000000", old.name]


def test_explain_variants_and_overlays(tmp_path: Path) -> None:
    run_dir = _copy(tmp_path)
    variant = run_dir / "explain-gradcampp"
    (variant / "overlays").mkdir(parents=True)
    shutil.copy(run_dir / "explain" / "summary.json", variant / "summary.json")
    for name in ("12.png", "3.png", "notes.png"):
        (variant / "overlays" / name).write_bytes(b"png")
    run = open_run(run_dir)
    assert [f.name for f in run.explain_folders] == ["explain", "explain-gradcampp"]
    ex = run.explain_folders[1]
    assert list(ex.overlays) == [3, 12] and ex.overlay(12) == variant / "overlays" / "12.png"
    assert ex.overlay(4) is None and ex.summary.method == "gradcam"


# --- the published JSON Schemas --------------------------------------------------------------


@pytest.mark.parametrize("kind", PUBLISHED)
def test_the_committed_schemas_are_the_generated_ones(kind: str) -> None:
    assert schema_file(kind).read_text(encoding="utf-8") == schema_text(kind), (
        "regenerate them: python -m audits.runs.schemas"
    )


@pytest.mark.parametrize("kind", PUBLISHED)
def test_the_fixture_validates_against_the_published_schema(kind: str) -> None:
    import jsonschema

    schema = json.loads(schema_file(kind).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    file = next(f for f, k in FIXTURE_FILES if k == kind)
    jsonschema.validate(_json(file), schema, cls=jsonschema.Draft202012Validator)
    broken = _json(file)
    broken["schema_version"] = "1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)
