"""``python -m audits history``: the versions of a model family, their set, order and gates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from statsmodels.stats.proportion import proportion_confint

from auditapp import cli
from audits.errors import AuditError
from audits.history import build_history, payload, recall_matrix
from audits.history_records import read_records
from audits.store import load_run
from fixtures.synthetic_history import fingerprint, lineage_block, write_audit, write_history
from fixtures.synthetic_store import synthetic_table

T0 = datetime(2026, 3, 1, 8, 0, 0)
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
ROOT, CHILD, GRANDCHILD = (fingerprint(1, k) for k in (0, 1, 2))


@pytest.fixture(scope="module")
def table():
    t, probs, _ = synthetic_table(5, 120, seed=3)
    return t, probs


def _audit(store, table, family, version, day, fp=None, lineage=None, hour=0):
    t, probs = table
    when = T0 + timedelta(days=day, hours=hour)
    return write_audit(store, family, version, when, t, probs, 5, fp or ROOT, lineage)


def _history(store, family="fam", **kw):
    found = read_records(store)
    return build_history(found.audits, found.comparisons, family, store=str(store), **kw)


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- ordering ------------------------------------------------------------------------------


def test_semantic_version_order_with_prereleases(tmp_path, table):
    # Audited in an order that neither time nor string sorting would put right.
    versions = ["1.10.0", "1.9.0", "1.0.0", "1.0.0rc1", "1.2.0", "1.2.0-beta.1", "1.9.10"]
    for day, v in enumerate(versions):
        _audit(tmp_path, table, "fam", v, day)
    h = _history(tmp_path)
    assert [r.version for r in h.rows] == [
        "1.0.0rc1",
        "1.0.0",
        "1.2.0-beta.1",
        "1.2.0",
        "1.9.0",
        "1.9.10",
        "1.10.0",
    ]
    assert h.order == "version" and not any("ordered by" in n for n in h.notes)
    by_time = _history(tmp_path, order="time")
    assert [r.version for r in by_time.rows] == versions


def test_non_semver_falls_back_to_time_and_says_so(tmp_path, table):
    for day, v in enumerate(["2.0.0", "nightly-b", "1.0.0", "nightly-a"]):
        _audit(tmp_path, table, "fam", v, day)
    h = _history(tmp_path)
    assert h.order == "time"
    assert [r.version for r in h.rows] == ["2.0.0", "nightly-b", "1.0.0", "nightly-a"]
    assert any("not semantic versions" in n and "'nightly-a'" in n for n in h.notes)


def test_reruns_are_counted_and_the_newest_is_shown(tmp_path, table):
    _audit(tmp_path, table, "fam", "1.0.0", 0)
    first = _audit(tmp_path, table, "fam", "1.1.0", 1)
    newest = _audit(tmp_path, table, "fam", "1.1.0", 3)
    _audit(tmp_path, table, "fam", "1.1.0", 2)
    h = _history(tmp_path)
    assert [(r.version, r.n_runs) for r in h.rows] == [("1.0.0", 1), ("1.1.0", 3)]
    assert h.rows[1].run_id == newest.name != first.name


# --- the set and its descendants -----------------------------------------------------------


def test_lineage_children_join_the_history_and_unrelated_sets_are_named(tmp_path, table):
    _audit(tmp_path, table, "fam", "1.0.0", 0)
    _audit(tmp_path, table, "fam", "1.1.0", 1)
    _audit(tmp_path, table, "fam", "1.1.0", 2, CHILD, lineage_block(ROOT, 37, 4))
    _audit(tmp_path, table, "fam", "1.2.0", 3, GRANDCHILD, lineage_block(CHILD, 2, 0))
    # Another set of the same family, fewer runs: left out, named in a note.
    other = fingerprint(9)
    _audit(tmp_path, table, "fam", "0.9.0", 0, other)
    # Another family on many runs of an unrelated set: irrelevant to "fam".
    for day in range(6):
        _audit(tmp_path, table, "other-family", f"3.{day}.0", day, fingerprint(8))
    h = _history(tmp_path)
    assert [(r.version, r.set_label) for r in h.rows] == [
        ("1.0.0", "v1"),
        ("1.1.0", "v1"),
        ("1.1.0", "v2"),
        ("1.2.0", "v3"),
    ]
    assert h.root.fingerprint == ROOT and h.root.n_runs == 4
    assert h.rows[2].lineage.n_relabelled == 37 and h.rows[2].lineage.n_excluded == 4
    assert [s.fingerprint for s in h.other_sets] == [other]
    assert any("2 unrelated held-out sets" in n and other[:12] in n for n in h.notes)
    # Comparing across the parent and its child needs the flag the compare command asks for.
    assert h.rows[2].gate.command.endswith("--across-corrections")
    assert not h.rows[1].gate.command.endswith("--across-corrections")
    picked = _history(tmp_path, set_prefix=other[:10])
    assert [r.version for r in picked.rows] == ["0.9.0"] and picked.notes == []
    with pytest.raises(AuditError, match="--set ffff: matches no set"):
        _history(tmp_path, set_prefix="ffff")


# --- stored numbers: intervals and gates ---------------------------------------------------


@pytest.fixture(scope="module")
def family_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("history")
    write_history(store, n_runs=8, n_classes=6, n_rows=300, n_comparisons=4, n_child=1, seed=2)
    return store


def test_metric_and_interval_are_the_stored_ones(family_store):
    h = build_history(*_records(family_store), "synthetic-cars", store=str(family_store))
    assert len(h.rows) == 9
    for row in h.rows:
        stored = json.loads((Path(row.path) / "audit.json").read_text())["metrics"]
        assert (row.value, row.ci_low, row.ci_high) == (
            stored["accuracy"],
            stored["accuracy_ci_low"],
            stored["accuracy_ci_high"],
        )
        # The stored interval is Wilson's (statsmodels, independently).
        table = load_run(row.path).table
        low, high = proportion_confint(int(table["correct"].sum()), len(table), method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
        assert row.recall == {c["class"]: c["recall"] for c in stored["per_class"]}
    f1 = build_history(*_records(family_store), "synthetic-cars", metric="macro_f1")
    assert [r.value for r in f1.rows] == [
        json.loads((Path(r.path) / "audit.json").read_text())["metrics"]["macro_f1"]
        for r in f1.rows
    ]
    assert all(r.ci_low is None for r in f1.rows) and any(
        "no stored interval" in n for n in f1.notes
    )
    classes, matrix = recall_matrix(h)
    assert len(classes) == 6 and len(matrix[0]) == len(h.rows)


def _records(store):
    found = read_records(store)
    assert not found.damaged
    return found.audits, found.comparisons


def test_gates_join_the_stored_comparisons(family_store):
    h = build_history(*_records(family_store), "synthetic-cars", store=str(family_store))
    stored = {}
    for folder in family_store.iterdir():
        if (folder / "comparison.json").is_file():
            doc = json.loads((folder / "comparison.json").read_text())
            stored[(doc["run_a"]["run_id"], doc["run_b"]["run_id"])] = (folder.name, doc)
    assert len(stored) == 4
    assert h.rows[0].gate is None
    compared = 0
    for prev, row in zip(h.rows, h.rows[1:], strict=False):
        match = stored.get((prev.run_id, row.run_id))
        if match is None:
            assert row.gate.verdict is None and row.gate.reason == "not compared"
            assert row.gate.command == (
                f"python -m audits compare {prev.run_id} {row.run_id} --store {family_store}"
                + (" --across-corrections" if prev.fingerprint != row.fingerprint else "")
            )
            continue
        compared += 1
        name, doc = match
        failed = [c["text"] for c in doc["checks"] if c["ok"] is False]
        assert row.gate.verdict == doc["verdict"] and row.gate.comparison_id == name
        assert row.gate.reason.startswith((failed or [doc["checks"][0]["text"]])[0][:100])
    assert compared == 4


# --- the command ---------------------------------------------------------------------------


def test_json_shape(family_store, capsys):
    code, out, _ = _cli(capsys, "history", "synthetic-cars", "--store", str(family_store), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["family"] == "synthetic-cars" and doc["metric"] == "accuracy"
    assert doc["order"] == "version" and doc["set"]["n_runs"] == 9
    row = doc["rows"][1]
    assert set(row) == {
        "version", "run_id", "path", "set", "fingerprint", "created", "value", "ci_low",
        "ci_high", "n_images", "n_runs", "lineage", "gate",
    }  # fmt: skip
    assert set(row["gate"]) == {"verdict", "reason", "comparison_id", "command"}
    assert doc["rows"][-1]["set"] == "v2" and doc["rows"][-1]["lineage"]["n_excluded"] == 4
    assert len(doc["recall"]) == len(doc["classes"]) == 6
    assert all(len(r) == len(doc["rows"]) for r in doc["recall"])
    assert doc == json.loads(json.dumps(payload(build_history(
        *_records(family_store), "synthetic-cars", store=str(family_store)), str(family_store)
    ) | {"exit_code": 0}))  # fmt: skip


def test_cli_metric_choices_are_the_history_metrics():
    from auditapp.commands.history_cmd import METRIC_CHOICES
    from audits.history import METRICS

    assert METRIC_CHOICES == METRICS


def test_unknown_family_is_one_line_naming_the_known_ones(family_store, capsys):
    code, out, err = _cli(capsys, "history", "no-such", "--store", str(family_store))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: no audit runs of model family 'no-such' in {family_store}; "
        "known families: synthetic-cars"
    ]


def test_hostile_names_are_printed_as_text(tmp_path, table, capsys):
    family = "[bold red]evil[/bold red]"
    _audit(tmp_path, table, family, "1.0.0", 0)
    _audit(tmp_path, table, family, "2.0[/]x[link=http://e.vil]", 1)
    code, out, err = _cli(capsys, "history", family, "--store", str(tmp_path))
    assert code == 0, err
    flat = "".join(out.split())  # the table may fold long cells
    assert "[boldred]evil[/boldred]" in flat
    assert "2.0[/]x[link=http://e.vil]" in flat
    assert "ordered by audit time" in " ".join(out.split())


def test_damaged_run_is_skipped_with_a_warning(tmp_path, table, capsys):
    _audit(tmp_path, table, "fam", "1.0.0", 0)
    bad = _audit(tmp_path, table, "fam", "1.1.0", 1)
    doc = json.loads((bad / "audit.json").read_text())
    doc["metrics"]["accuracy"] = "high"
    (bad / "audit.json").write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "history", "fam", "--store", str(tmp_path), "--json")
    assert code == 0
    assert [r["version"] for r in json.loads(out)["rows"]] == ["1.0.0"]
    assert f"warning: skipped {bad}: audit.json: invalid audit record:" in err
    assert "$.metrics.accuracy" in err


def test_light_reader_agrees_with_the_full_record(family_store):
    audits, _ = _records(family_store)
    for entry in audits[:3]:
        full = load_run(entry.path).audit
        assert (entry.model.name, entry.model.version) == (full.model.name, full.model.version)
        assert entry.dataset.fingerprint == full.dataset.fingerprint
        assert entry.metrics.balanced_accuracy == full.metrics.balanced_accuracy
        assert entry.metrics.ece == full.metrics.ece
        assert [c.recall for c in entry.metrics.per_class] == [
            c.recall for c in full.metrics.per_class
        ]


# --- the page (headless) ---------------------------------------------------------------------


def _page(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    return at.switch_page("dashboard/pages/history.py").run()


def test_page_draws_the_history_and_opens_a_compared_pair(family_store, monkeypatch):
    at = _page(family_store, monkeypatch)
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert at.title[0].value == "History"
    assert len(at.get("plotly_chart")) == 2  # the metric over versions and the heatmap
    text = " ".join(str(m.value) for m in (*at.markdown, *at.caption, *at.code))
    assert "9 version(s) on held-out set" in text
    # The default pair (the last two rows: 1.0.7 on v1 and on v2) has no comparison.
    assert "No stored comparison of these two runs" in text
    assert "--across-corrections" in at.code[0].value
    # A compared pair: 1.0.0 → 1.0.1 (row 0 → row 1) opens in Compare.
    at.selectbox(key="history_a").set_value(0)
    at.selectbox(key="history_b").set_value(1).run()
    assert "Stored comparison:" in " ".join(str(m.value) for m in at.markdown)
    at.button(key="history_open").click().run()
    assert at.title[0].value == "Compare"
    assert "1.0.1" in " ".join(str(m.value) for m in at.markdown)


def test_page_escapes_a_hostile_family_name(tmp_path, table, monkeypatch):
    family = "**bold** <img src=x onerror=alert(1)> [link](http://e.vil)"
    _audit(tmp_path, table, family, "1.0.0", 0)
    _audit(tmp_path, table, family, "1.1.0", 1)
    at = _page(tmp_path, monkeypatch)
    assert not at.exception and not at.error
    line = next(str(m.value) for m in at.markdown if "version(s) on held-out set" in str(m.value))
    assert "\\*\\*bold\\*\\* \\<img" in line and "\\[link\\]\\(http" in line


# --- the figures -----------------------------------------------------------------------------


def test_figures_draw_the_stored_values(family_store):
    import numpy as np

    from reports.present import history_charts as hc

    h = build_history(*_records(family_store), "synthetic-cars", store=str(family_store))
    fig = hc.metric_over_versions(h)
    high, low, line = fig.data
    assert list(high.y) == [r.ci_high for r in h.rows] and list(low.y) == [r.ci_low for r in h.rows]
    assert list(line.y) == [r.value for r in h.rows] and line.type == "scatter"
    assert list(line.x)[-1] == "1.0.7 (v2)"  # the set is named once the history spans two
    many = type(h)(h.family, h.metric, h.order, h.rows * 30, h.root)
    assert hc.metric_over_versions(many).data[-1].type == "scattergl"  # WebGL past 200
    classes, matrix = recall_matrix(h)
    z = np.array(matrix, dtype=float)
    shown, rows = hc.pick_classes(classes, matrix, "variance", 3)
    assert shown == [classes[i] for i in np.argsort(-z.var(axis=1), kind="stable")[:3]]
    shown, _ = hc.pick_classes(classes, matrix, "worst", 2)
    assert shown == [classes[i] for i in np.argsort(z.min(axis=1), kind="stable")[:2]]
    heat = hc.recall_heatmap(h, "worst", 2).data[0]
    assert list(heat.y) == shown and np.allclose(heat.z, z[np.argsort(z.min(axis=1))[:2]])
