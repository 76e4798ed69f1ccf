"""One damaged run folder breaks nothing else (issue 14, found 5).

A store of tiny synthetic runs (``fixtures.synthetic_store``): version 1.0 and 2.0 of a model
audited on the same images, and a drift run of 2.0. A third audit, a newer re-audit of 2.0, is
then damaged in each way a disk, an editor or an older tool can damage it. ``list``, ``export``,
``compare name@version``, the related-run lookup and the dashboard's catalog must skip it with
one warning naming it and keep serving the healthy runs; naming the damaged run itself is one
``error:`` line naming its file (and the field), exit 2.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from auditapp.cli import main as cli
from audits.compare import resolve_run
from audits.errors import AuditError
from audits.related import bundle
from audits.store import list_runs, load_run, scan_store, utc_now
from dashboard.catalog import scan
from dashboard.state import resolve
from fixtures.synthetic_store import _drift, previous_version, synthetic_table, write_synthetic_run

N_CLASSES, N_ROWS = 4, 120


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store with audits of 1.0 and 2.0, a drift run of 2.0, and a newer audit of 2.0 (to damage)."""
    store = tmp_path_factory.mktemp("damage") / "store"
    table, probs, classes = synthetic_table(N_CLASSES, N_ROWS, seed=0)
    now = utc_now()
    old = write_synthetic_run(store, N_CLASSES, N_ROWS, 0, version="1.0", when=now - timedelta(days=3),
                              table=previous_version(table, N_CLASSES), probs=probs)  # fmt: skip
    new = write_synthetic_run(store, N_CLASSES, N_ROWS, 0, version="2.0",
                              when=now - timedelta(days=2), table=table, probs=probs)  # fmt: skip
    meta = json.loads((new / "audit.json").read_text())
    drift = _drift(store, meta, table, classes, now - timedelta(days=1))
    victim = write_synthetic_run(store, N_CLASSES, N_ROWS, 0, version="2.0", when=now,
                                 table=table, probs=probs)  # fmt: skip
    return {"store": store, "old": old, "new": new, "drift": drift, "victim": victim}


def _set(field: str, value: object):
    def damage(run: Path) -> None:
        meta = json.loads((run / "audit.json").read_text())
        meta[field] = value
        (run / "audit.json").write_text(json.dumps(meta))

    return damage


def _write(name: str, text: str | None = None, size: int | None = None):
    def damage(run: Path) -> None:
        file = run / name
        if text is not None:
            file.write_text(text)
        elif size is None:
            file.unlink()
        else:
            file.write_bytes(file.read_bytes()[:size])

    return damage


# (id, damage, the file the error must name, a word of the reason)
DAMAGE = [
    ("json-list", _write("audit.json", "[]"), "audit.json", "not a JSON object"),
    ("metrics-string", _set("metrics", "x"), "audit.json", "metrics"),
    ("created-number", _set("created", 12345), "audit.json", "created"),
    ("truncated-json", _write("audit.json", size=300), "audit.json", "damaged"),
    ("missing-record", _write("audit.json"), "", "not a run folder"),
    ("truncated-table", _write("predictions.parquet", size=100), "predictions.parquet", "damaged"),
]


@pytest.fixture(params=DAMAGE, ids=[d[0] for d in DAMAGE])
def damaged(
    request: pytest.FixtureRequest, healthy: dict[str, Path], tmp_path: Path
) -> dict[str, object]:
    """A copy of the healthy store whose newest audit run is damaged one way."""
    name, damage, file, word = request.param
    store = tmp_path / "store"
    shutil.copytree(healthy["store"], store)
    runs = {k: store / v.name for k, v in healthy.items() if k != "store"}
    damage(runs["victim"])
    return {"store": store, **runs, "id": name, "file": file, "word": word}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_skips_the_damaged_run_with_one_warning(
    damaged: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # run ids unfolded in Rich's table
    code, out, err = _cli(["list", "--store", str(damaged["store"])], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1, err
    assert warnings[0].startswith(f"warning: skipped {damaged['victim']}: {damaged['file']}")
    assert damaged["word"] in warnings[0]
    for key in ("old", "new", "drift"):
        assert damaged[key].name in out
    assert damaged["victim"].name not in out


def test_readers_serve_the_healthy_runs(damaged: dict) -> None:
    store = damaged["store"]
    found = scan_store(store)
    assert [d.path.name for d in found.damaged] == [damaged["victim"].name]
    assert {r.run_id for r in list_runs(store)} == {
        damaged[k].name for k in ("old", "new", "drift")
    }
    # name@version: the newest audit of 2.0 is damaged, so the healthy one before it is meant
    assert resolve_run("synthetic-cars@2.0", store).path == damaged["new"]
    related = bundle(load_run(damaged["new"]), store)
    assert related.drift is not None and related.drift.path == damaged["drift"]
    cat = scan(store)
    assert {b.name for b in cat.broken} == {damaged["victim"].name}
    assert damaged["victim"].name not in {r.run_id for r in cat.runs}
    sel = resolve(cat, damaged["victim"].name, None)  # a link to the damaged run
    assert sel.run is not None and sel.run.path == damaged["new"]
    assert sel.note is not None and "cannot be read" in sel.note


def test_export_and_compare_by_name_use_the_healthy_run(
    damaged: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = str(damaged["store"])
    out_dir = tmp_path / "exports"
    code, out, err = _cli(
        ["export", "synthetic-cars@2.0", "--store", store, "--format", "json,csv", "--out", str(out_dir)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(out_dir / damaged["new"].name)
    assert "error" not in err and err.count("warning: skipped") <= 1
    code, out, err = _cli(
        ["compare", "synthetic-cars@1.0", "synthetic-cars@2.0", "--store", store, "--no-speed",
         "--quiet"],
        capsys,
    )  # fmt: skip
    assert code in (0, 1), err  # 1: the gate held the release, still a result
    [comparison] = list_runs(store, kind="comparison")
    assert comparison.comparison.run_b.run_id == damaged["new"].name
    assert comparison.comparison.run_a.run_id == damaged["old"].name


def test_the_damaged_run_itself_is_one_clear_error(
    damaged: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    victim = damaged["victim"]
    for args in (
        ["export", str(victim), "--format", "json,csv", "--out", str(tmp_path / "exports")],
        ["compare", str(damaged["old"]), str(victim), "--no-speed", "--store", str(tmp_path / "s")],
    ):
        code, out, err = _cli(args, capsys)
        assert code == 2, (args, out, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: {victim}"), err
        assert damaged["file"] in lines[0] and damaged["word"] in lines[0]
        assert "a bug" not in lines[0]
    assert not (tmp_path / "exports" / victim.name).exists()


def test_the_only_run_of_a_version_being_damaged_is_named(damaged: dict) -> None:
    shutil.rmtree(damaged["new"])
    with pytest.raises(AuditError) as caught:
        resolve_run("synthetic-cars@2.0", damaged["store"])
    message = str(caught.value)
    assert message.startswith("synthetic-cars@2.0: ")
    if damaged["id"] in ("metrics-string", "created-number", "truncated-table"):
        # its record still names the model: the error says which run and what is wrong with it
        assert f"{damaged['victim']}: {damaged['file']}" in message
        assert damaged["word"] in message
    else:
        assert "no audit run of synthetic-cars version 2.0" in message


def test_a_damaged_drift_run_is_not_taken_as_the_related_one(healthy: dict, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(healthy["store"], store)
    newer = store / (healthy["drift"].name.replace("drift", "drift-zz"))  # same model, newer
    shutil.copytree(store / healthy["drift"].name, newer)
    meta = json.loads((newer / "drift.json").read_text())
    meta["created"] = "2099-01-01T00:00:00Z"
    meta["embedding"] = "x"
    (newer / "drift.json").write_text(json.dumps(meta))
    related = bundle(load_run(store / healthy["new"].name), store)
    assert related.drift is not None and related.drift.path == store / healthy["drift"].name


def test_dashboard_serves_a_healthy_run_beside_damaged_ones(
    healthy: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    store = tmp_path / "store"
    shutil.copytree(healthy["store"], store)
    _set("created", 12345)(store / healthy["victim"].name)
    _write("audit.json", "[]")(store / healthy["old"].name)
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(Path(__file__).parents[2] / "streamlit_app.py"), default_timeout=180)
    at.query_params["run"] = healthy["victim"].name  # a shared link to the damaged run
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["_selection"].run.run_id == healthy["new"].name
    assert "2 folder(s) could not be read" in " ".join(str(e.label) for e in at.sidebar.expander)
    assert any("cannot be read" in str(w.value) for w in at.warning)
    assert any('data-page="overview"' in str(m.value) for m in at.markdown)
    assert not at.error, [e.value for e in at.error]


def test_a_damaged_same_set_run_falls_back_to_a_readable_run_on_another_set(damaged: dict) -> None:
    """``compare A name@version``: the newest run of the version on A's set is damaged; the
    readable run of that version on another set is used, as before the light listing."""
    meta = json.loads((damaged["new"] / "audit.json").read_text())
    meta["dataset"]["fingerprint"] = "f" * 64  # the healthy 2.0 run: another held-out set
    (damaged["new"] / "audit.json").write_text(json.dumps(meta))
    baseline = load_run(damaged["old"])
    assert baseline.audit.dataset.fingerprint != "f" * 64
    found = resolve_run("synthetic-cars@2.0", damaged["store"], same_set_as=baseline)
    assert found.path == damaged["new"]


def test_label_consensus_skips_a_version_whose_record_is_damaged(
    healthy: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The other audited versions that clear suspect labels: one whose ``audit.json`` is
    invalid in full is left out with one warning, as the full store scan did."""
    from audits.label_consensus import other_versions, table_fingerprint

    store = tmp_path / "store"
    shutil.copytree(healthy["store"], store)
    old = store / healthy["old"].name
    fingerprint = table_fingerprint(load_run(old).table)
    assert [v for v, _ in other_versions(store, "synthetic-cars", "2.0", fingerprint)] == ["1.0"]
    meta = json.loads((old / "audit.json").read_text())
    meta["metrics"]["confusion"] = "x"  # a field no listing reads: only the full check sees it
    (old / "audit.json").write_text(json.dumps(meta))
    assert other_versions(store, "synthetic-cars", "2.0", fingerprint) == []
    assert any(str(old) in r.getMessage() and "confusion" in r.getMessage() for r in caplog.records)
