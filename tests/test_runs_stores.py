"""Every run that today's code writes (demo store, synthetic store, a real tiny audit) validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audits.runs import StoredRun, open_run, write_record
from audits.runs.kinds import KINDS
from audits.runs.schemas import PUBLISHED, schema_file
from audits.store import list_runs

DEMO_STORE = Path(__file__).parents[1] / "audit-store"


def _validators() -> dict:
    import jsonschema

    return {
        kind: jsonschema.Draft202012Validator(
            json.loads(schema_file(kind).read_text(encoding="utf-8"))
        )
        for kind in PUBLISHED
    }


def check_run(run: StoredRun, validators: dict, tmp_path: Path) -> None:
    """Every record of ``run`` validates (model and schema) and is rewritten byte for byte."""
    record = run.record
    errors = [e.message for e in validators[run.kind].iter_errors(run.meta)]
    assert not errors, (run.record_file, errors[:3])
    files = [(run.record_file, run.kind)]
    if run.kind == "audit":
        assert record.metrics.confusion.labels == record.model.classes
        for folder in run.explain_folders:
            assert folder.summary is not None, folder.path
            files.append((folder.path / "summary.json", "explain"))
        if run.integrity is not None:
            files.append((run.path / "integrity.json", "integrity"))
        for claims in run.claims:
            files.append((claims.path / "claims.json", "claims"))
    for file, kind in files:
        out = tmp_path / run.run_id / file.parent.name
        out.mkdir(parents=True, exist_ok=True)
        write_record(out, json.loads(file.read_text(encoding="utf-8")), kind)
        assert (out / KINDS[kind].file).read_bytes() == file.read_bytes(), file


def test_every_demo_run_loads_and_validates(tmp_path: Path) -> None:
    runs = list_runs(DEMO_STORE)
    if not runs:
        pytest.skip(f"{DEMO_STORE} has no runs (build the demo store: python -m audits demo)")
    validators = _validators()
    for run in runs:
        check_run(run, validators, tmp_path)
    kinds = {r.kind for r in runs}
    assert kinds <= {"audit", "drift", "comparison"}
    for run in runs:
        if run.kind == "drift":
            assert run.evidently_html is not None and run.properties is not None
            assert set(run.properties["side"]) == {"reference", "current"}
        if run.kind == "comparison":
            assert len(run.pairs) == run.comparison.dataset.n_aligned
        if run.kind == "audit" and run.explain is not None:
            ex = run.explain
            first = int(ex.regions["row"].iloc[0])
            assert ex.overlay(first) is not None
            assert ex.heatmaps.shape[0] == ex.summary.n_explained + ex.summary.n_baseline
            suspects = run.integrity.suspect_labels.rows
            assert run.thumb(suspects[0].thumb) is not None


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.synthetic_store import write_synthetic_store

    store = tmp_path_factory.mktemp("runs-synthetic") / "store"
    write_synthetic_store(store, n_classes=12, n_rows=1_500)
    return store


def test_every_synthetic_run_loads_and_validates(synthetic_store: Path, tmp_path: Path) -> None:
    runs = list_runs(synthetic_store)
    assert sorted(r.kind for r in runs) == ["audit", "audit", "comparison", "drift"]
    validators = _validators()
    for run in runs:
        check_run(run, validators, tmp_path)
    main = next(r for r in runs if r.kind == "audit" and r.integrity is not None)
    assert main.integrity.leakage.counts.leaked_images > 0
    assert main.integrity.leakage.exact[0].n_matches == 1
    ex = main.explain
    assert ex.heatmaps is None and len(ex.overlays) == 48  # the synthetic run writes no maps
    row = int(ex.regions["row"].iloc[0])
    assert ex.overlay(row) == ex.path / "overlays" / f"{row}.png"
    drift = next(r for r in runs if r.kind == "drift")
    assert drift.drift.drift and drift.evidently_html is None and len(drift.properties) == 7000


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real audit with every stage: all its held-out images are also training images."""
    from auditapp.pipeline.audit import run_audit
    from tests.builders import make_manifest, make_model_dir

    root = tmp_path_factory.mktemp("runs-real")
    classes = ["cat", "dog", "fox"]
    data = make_manifest(root / "data", classes, per_class=6, size=24)
    train = make_manifest(root / "train", classes, per_class=6, size=24)
    model = make_model_dir(root / "model", classes=classes, size=(32, 32),
                           extra_toml=f'training_manifest = "{train}"\n')  # fmt: skip
    return run_audit(model, data, store=root / "store", device="cpu", batch_size=8, workers=0,
                     options={"explain_baseline": 2, "workers": 0, "cosine_min": 0.98})  # fmt: skip


def test_a_real_audit_with_every_stage_validates(real_run: Path, tmp_path: Path) -> None:
    run = open_run(real_run)
    check_run(run, _validators(), tmp_path)
    rec = run.audit
    assert rec.explain.n_explained == rec.explain.n_failures
    leak = run.integrity.leakage
    assert leak.available and leak.counts.exact == 18 and leak.checks.near.embeddings
    assert leak.accuracy.without_leaked.accuracy is None  # every image leaked
    assert run.thumb(leak.exact[0].test_thumb) is not None
    assert rec.integrity.leakage.leaked_images == 18
