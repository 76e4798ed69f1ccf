"""Drift over time (issue 17, item 6): every drift run of a model against one reference, oldest
first, with the stored numbers; the chart and the Drift page open a point's drift run."""

from __future__ import annotations

import copy
import html
from pathlib import Path

import numpy as np
import pytest

from audits.drift.timeline import drift_timeline, timeline_frame
from audits.fsio import write_json
from audits.store import list_runs
from tests.test_compare import CLASSES, FINGERPRINT, block, fake_run, stored_record

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "<img src=x onerror=alert(1)>"

#: (created, version, batch, mmd2, mmd p, prediction p, drifted property, accuracy or None)
SPECS = [
    ("2026-11-20T10:00:00Z", "1.0.0", "fan_batch", 0.22, 0.001, 1e-9, "brightness", (0.42, 400)),
    ("2026-11-22T10:00:00Z", "1.1.0", "march", 0.004, 0.31, 0.40, None, None),
    ("2026-11-21T10:00:00Z", "1.1.0", HOSTILE, 0.05, 0.002, 0.03, "contrast", (0.81, 120)),
]


def drift_run(
    store: Path, i: int, spec: tuple, fingerprint: str = FINGERPRINT, model: str = "car-variants"
) -> Path:
    """A drift run folder whose drift.json is the stored demo record with these values."""
    created, version, batch, mmd2, mmd_p, pred_p, moved, acc = spec
    rec = copy.deepcopy(stored_record("drift"))
    stamp = created.replace("-", "").replace(":", "")[:15]
    run_id = f"{stamp}-{model}-{version}-drift-{i:06x}"
    rec.update(run_id=run_id, created=created)
    rec["model"].update(name=model, version=version, weights_sha256="0" * 64)  # as fake_run
    rec["reference"]["fingerprint"] = fingerprint
    rec["current"]["name"] = batch
    rec["embedding"].update(mmd2=mmd2, p_value=mmd_p, drift=mmd_p < 0.05)
    rec["predictions"].update(p_value=pred_p, drift=pred_p < 0.05)
    for p in rec["properties"]:
        p["drift"] = p["name"] == moved
        p["p_adjusted"] = 0.001 if p["name"] == moved else 0.9
    if acc is None:
        rec["predictions"]["accuracy"] = None
    else:
        value, n = acc
        rec["predictions"]["accuracy"].update(
            current=value,
            n_current_labelled=n,
            current_correct=round(value * n),
            current_ci_low=value - 0.05,
            current_ci_high=value + 0.04,
        )
    rec["drift"] = bool(rec["embedding"]["drift"] or rec["predictions"]["drift"] or moved)
    folder = store / run_id
    folder.mkdir(parents=True)
    write_json(folder / "drift.json", rec)
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    for i, spec in enumerate(SPECS):
        drift_run(store, i, spec)
    drift_run(store, 10, SPECS[0], fingerprint="e" * 64)  # another reference set
    drift_run(store, 11, SPECS[0], model="other-model")  # another model
    return store


def test_timeline_order_and_values_equal_the_stored_records(store: Path) -> None:
    found = drift_timeline(list_runs(store), "car-variants", FINGERPRINT)
    assert not found.skipped
    points = found.points
    assert [p.created for p in points] == sorted(s[0] for s in SPECS)
    assert [p.batch for p in points] == ["fan_batch", HOSTILE, "march"]
    for p in points:
        record = list_runs(store)
        stored = next(r for r in record if r.run_id == p.run_id).drift
        assert p.mmd2 == stored.embedding.mmd2 and p.mmd_p == stored.embedding.p_value
        assert p.prediction_p == stored.predictions.p_value and p.drift == stored.drift
        assert list(p.drifted) == [q.name for q in stored.properties if q.drift]
        assert p.property_p == {q.name: q.p_adjusted for q in stored.properties}
        acc = stored.predictions.accuracy
        if acc is None:
            assert p.accuracy is None and p.accuracy_low is None
        else:
            assert (p.accuracy, p.accuracy_low, p.accuracy_high, p.n_labelled) == (
                acc.current,
                acc.current_ci_low,
                acc.current_ci_high,
                acc.n_current_labelled,
            )
    frame = timeline_frame(points)
    assert frame["run_id"].tolist() == [p.run_id for p in points]
    assert frame["accuracy"].tolist()[:2] == [0.42, 0.81] and np.isnan(frame["accuracy"].iloc[2])
    assert frame["p brightness"].tolist() == [0.001, 0.9, 0.9]


def test_a_damaged_drift_run_is_named_not_fatal(store: Path) -> None:
    bad = drift_run(store, 20, ("2026-11-23T10:00:00Z", *SPECS[1][1:]))
    text = (bad / "drift.json").read_text().replace('"mmd2": 0.004', '"mmd2": "x"')
    (bad / "drift.json").write_text(text)
    from audits.runs import open_run

    found = drift_timeline([*list_runs(store), open_run(bad)], "car-variants", FINGERPRINT)
    assert len(found.points) == 3
    assert [run_id for run_id, _ in found.skipped] == [bad.name]
    assert "mmd2" in found.skipped[0][1]


def test_chart_carries_run_ids_and_escapes_batch_names(store: Path) -> None:
    from reports.present.charts.drift_timeline import drift_timeline as figure

    points = drift_timeline(list_runs(store), "car-variants", FINGERPRINT).points
    fig = figure(points)
    assert len(fig.data) == 4  # MMD², two p-values, accuracy (some batches are labelled)
    for trace in fig.data:
        assert list(trace.customdata) == [p.run_id for p in points]
        assert all(HOSTILE not in str(x) for x in trace.x)
        assert all(HOSTILE not in str(h) for h in trace.hovertext)
    assert any(html.escape(HOSTILE, quote=False) in str(x) for x in fig.data[0].x)
    acc = fig.data[3]
    assert list(acc.y)[:2] == [0.42, 0.81] and acc.y[2] is None
    assert list(acc.error_y.array)[:2] == pytest.approx([0.04, 0.04])
    assert list(acc.error_y.arrayminus)[:2] == pytest.approx([0.05, 0.05])


def test_drift_page_opens_a_point(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest: the Drift page lists the model's drift runs; picking one of another version
    opens it and selects that version's audit; batch names reach the page escaped."""
    from streamlit.testing.v1 import AppTest

    runs = {
        v: fake_run(store.parent / "audits", v, {c: block((8, True), (2, False)) for c in CLASSES})
        for v in ("1.0.0", "1.1.0")
    }
    for run in runs.values():
        run.rename(store / run.name)
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.query_params["run"] = runs["1.1.0"].name
    at.run()
    at = at.switch_page("dashboard/pages/drift.py").run()
    assert not at.exception, [e.value for e in at.exception]
    pick = at.selectbox(key="drift_timeline_pick")
    points = drift_timeline(list_runs(store), "car-variants", FINGERPRINT).points
    assert len(pick.options) == 3 and [o.split(" · ")[1] for o in pick.options] == [
        p.batch for p in points
    ]
    body = "\n".join(str(m.value) for m in at.markdown)
    assert "Batch <code>march</code>" in body  # the newest drift run of 1.1.0 is shown first
    assert HOSTILE not in body
    pick.set_value(pick.options[0]).run()  # 1.0.0's fan batch
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["run"] == runs["1.0.0"].name
    body = "\n".join(str(m.value) for m in at.markdown)
    assert "Batch <code>fan_batch</code>" in body
    at.selectbox(key="drift_timeline_pick").set_value(pick.options[1]).run()  # the hostile batch
    assert at.query_params["run"] == runs["1.1.0"].name
    body = "\n".join(str(m.value) for m in at.markdown)
    assert f"Batch <code>{html.escape(HOSTILE)}</code>" in body and HOSTILE not in body


def test_a_click_names_its_drift_run() -> None:
    """Streamlit's selection event as a dict; customdata as drawn (a scalar or a list)."""
    from dashboard.drift_timeline_view import _clicked

    assert _clicked({"selection": {"points": [{"customdata": "run-1", "x": "a"}]}}) == "run-1"
    assert _clicked({"selection": {"points": [{"customdata": ["run-2"]}]}}) == "run-2"
    assert _clicked({"selection": {"points": []}}) is None and _clicked(None) is None


def test_an_audit_on_a_relabelled_child_set_keeps_the_timeline(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest audit of 1.1.0 is on a child set (another fingerprint): its batches were checked
    against the parent, so the timeline follows the reference of the version's drift runs."""
    from streamlit.testing.v1 import AppTest

    outcomes = {c: block((8, True), (2, False)) for c in CLASSES}
    child = fake_run(store.parent / "audits", "1.1.0", outcomes, fingerprint="c" * 64)
    child.rename(store / child.name)
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.query_params["run"] = child.name
    at.run()
    at = at.switch_page("dashboard/pages/drift.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.selectbox(key="drift_timeline_pick").options) == 3


def test_batch_dates_order_the_timeline_before_run_times(store: Path) -> None:
    """A batch checked late but taken early sits where it was taken; undated batches keep
    their run's time; the chart's ticks show the batch date."""
    from audits.runs import open_run
    from reports.present.charts.drift_timeline import point_label

    late = drift_run(
        store, 20, ("2026-11-25T10:00:00Z", "1.1.0", "may", 0.01, 0.2, 0.3, None, None)
    )
    record = copy.deepcopy(open_run(late).drift.model_dump(mode="json", exclude_none=True))
    record["current"]["date"] = "2026-05-31"
    write_json(late / "drift.json", record)
    points = drift_timeline(list_runs(store), "car-variants", FINGERPRINT).points
    assert [p.batch for p in points] == ["may", "fan_batch", HOSTILE, "march"]
    assert points[0].batch_date == "2026-05-31" and points[1].batch_date is None
    assert point_label(points[0]).startswith("1.1.0 · may · 2026-05-31 · ")
    assert timeline_frame(points)["when"].tolist()[:2] == ["2026-05-31", "2026-11-20T10:00:00Z"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-05-31", "2026-05-31"),
        ("2026-05-31T14:00:00", "2026-05-31T14:00:00Z"),
        ("2026-05-31T16:00:00+02:00", "2026-05-31T14:00:00Z"),
        (" 2026-05-31T14:00:00Z ", "2026-05-31T14:00:00Z"),
        ("20260531", "2026-05-31"),  # ISO's basic form is still a day
    ],
)
def test_batch_date_is_a_day_or_a_utc_time(given: str, stored: str) -> None:
    from audits.drift.batch import check_batch_date

    assert check_batch_date(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "31/05/2026",
        "May 2026",
        "2026-13-01",
        "",
        "2026-05-31 lunch",
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC: no traceback
        "0999-01-01T00:00",  # a three-digit year would not sort as text
    ],
)
def test_a_bad_batch_date_is_one_line(bad: str) -> None:
    from audits.drift.batch import check_batch_date
    from audits.errors import AuditError

    with pytest.raises(AuditError, match=r"--batch-date .*YYYY-MM-DD"):
        check_batch_date(bad)
