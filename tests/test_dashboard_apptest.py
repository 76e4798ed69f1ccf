"""The Streamlit dashboard, headless (AppTest): every page on an empty store, a small real
store (two audited versions and their comparison), the synthetic 250-class store, and the
bundled demo store when it has been built. No page may raise or show a traceback."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.catalog import scan
from dashboard.state import resolve, store_path

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")
PAGES = ["overview", "classes", "confusion", "failures", "drift", "compare", "integrity", "export"]
TITLES = {"overview": "Overview", "classes": "Classes", "confusion": "Confusion", "failures": "Failures",
          "drift": "Drift", "compare": "Compare", "integrity": "Integrity & claims", "export": "Export"}  # fmt: skip
CLASSES = ["carrera", "targa", "turbo", "gt3"]


def build_small_store(root: Path) -> Path:
    """Two versions of a tiny 4-class model audited on one manifest (with a training manifest,
    so integrity has leakage to find), and their comparison. Returns the store."""
    from auditapp.pipeline.audit import run_audit
    from audits.compare import compare_runs, save_comparison
    from audits.speed import SpeedResult
    from audits.store import load_run
    from tests.builders import make_manifest, make_model_dir

    train = make_manifest(root / "train", CLASSES, per_class=8, seed=5)
    extra = f'training_manifest = "{train}"\n'
    dirs = [
        make_model_dir(
            root / f"m{i}",
            classes=CLASSES,
            version=v,
            seed=i,
            extra_toml=extra,
            name="car-variants",
        )
        for i, v in enumerate(("1.0.0", "1.1.0"))
    ]
    data = make_manifest(root / "data", CLASSES, per_class=10, seed=1)
    store = root / "store"
    # The older version needs no heatmaps or integrity checks: the pages show the newest run.
    runs = [
        run_audit(dirs[0], data, store=store, skip=("explain", "integrity")),
        run_audit(dirs[1], data, store=store, options={"explain_baseline": 5}),
    ]
    speed = SpeedResult.from_numbers((2.0, 2.1), (500.0, 480.0), (1000, 1000))
    doc, aligned = compare_runs(load_run(runs[0]), load_run(runs[1]), speed=speed)
    save_comparison(doc, aligned, store)
    return store


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_store(tmp_path_factory.mktemp("dash-small"))


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """250 classes at reduced rows (the 50,000-row timing lives in bench/dashboard.py)."""
    from fixtures.synthetic_store import write_synthetic_store

    store = tmp_path_factory.mktemp("dash-250") / "store"
    write_synthetic_store(store, n_classes=250, n_rows=6_000)
    return store


def app(store: Path, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    return at.run()


def texts(at: AppTest) -> str:
    """Every markdown, caption, heading, alert and code text of the last run, joined."""
    parts = [e.value for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning",
                                  "success", "error", "code") for e in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest, page: str) -> None:
    """No uncaught exception, no guarded failure, and the page ran to its footer."""
    assert not at.exception, f"{page}: {[e.value for e in at.exception]}"
    failures = [e.value for e in at.error]
    assert not failures, f"{page}: {failures}"
    assert any(f'data-page="{page}"' in str(m.value) for m in at.markdown), (
        f"{page}: no footer (page did not finish)"
    )
    assert at.title[0].value == TITLES[page]


def visit(at: AppTest, page: str) -> AppTest:
    return at.switch_page(f"dashboard/pages/{page}.py").run()


# ---------------------------------------------------------------- pure parts


def test_store_path_order(tmp_path: Path) -> None:
    assert store_path(["--store", str(tmp_path)], {"AUDIT_STORE": "x"}) == tmp_path
    assert store_path([], {"AUDIT_STORE": str(tmp_path)}) == tmp_path
    # pytest's own positional arguments are not a store
    assert store_path(["tests/test_x.py", "-q"], {}).name == "audit-store"


def test_catalog_lists_broken_and_partial_folders(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "audit.json").write_text("{not json")
    (tmp_path / "empty").mkdir()
    (tmp_path / ".tmp-20260101T000000-x-1-audit-abc").mkdir()
    cat = scan(tmp_path)
    assert cat.runs == []
    assert {b.name for b in cat.broken} == {"bad", "empty"}
    assert cat.in_progress and resolve(cat, None, None).run is None


def test_selection_prefers_url_then_session(small_store: Path) -> None:
    cat = scan(small_store)
    newest, older = cat.audits[0], cat.audits[1]
    assert newest.version == "1.1.0"
    assert resolve(cat, None, None).run == newest
    assert resolve(cat, older.run_id, newest.run_id).run == older
    assert resolve(cat, None, older.run_id).run == older
    sel = resolve(cat, "no-such-run", None)
    assert sel.run == newest and sel.note and "no-such-run" in sel.note


# ---------------------------------------------------------------- empty store


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_pages(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = visit(app(tmp_path / "nothing-here", monkeypatch), page)
    assert_clean(at, page)
    body = texts(at)
    assert "No audit runs" in body and "python -m audits run" in body


# ---------------------------------------------------------------- small real store


@pytest.fixture(scope="module")
def small_app(small_store: Path) -> AppTest:
    mp = pytest.MonkeyPatch()
    at = app(small_store, mp)
    yield at
    mp.undo()


EXPECT = {
    "overview": [
        "In plain words",
        "Weakest classes",
        "Checks on this version",
        "What was audited",
        "Accuracy",
    ],
    "classes": ["Precision, recall and F1 per class", "How to read it"],
    "confusion": ["Images behind a cell", "How to read it", "Showing"],
    "failures": ["misclassified", "failure(s)", "How to read it"],
    "drift": ["No drift run for car-variants 1.1.0 yet", "python -m audits drift"],
    "compare": ["against 1.0.0", "The checks behind the verdict", "Every class"],
    "integrity": ["Leaked test images", "candidates for review", "Type what someone said"],
    "export": ["Exports of run"],
}


@pytest.mark.parametrize("page", PAGES)
def test_small_store_pages(page: str, small_app: AppTest) -> None:
    at = visit(small_app, page)
    assert_clean(at, page)
    body = texts(at)
    for needle in EXPECT[page]:
        assert needle in body, f"{page}: '{needle}' missing"
    assert at.query_params["run"].startswith(at.query_params["run"][:8])
    assert "1.1.0" in at.query_params["run"]  # the newest run stays selected on every page
    if page in ("classes", "confusion", "failures"):
        assert at.get("plotly_chart"), f"{page}: no chart"


def test_picker_moves_the_selection_into_the_url(
    small_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(small_store, monkeypatch)
    at.sidebar.selectbox(key="pick_version").select("1.0.0").run()
    assert "1.0.0" in at.query_params["run"]
    at = visit(at, "classes")
    assert_clean(at, "classes")
    assert "1.0.0" in at.query_params["run"]  # survives the page change
    assert "car-variants 1.0.0" in texts(at)


def test_shared_link_opens_that_run(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    older = scan(small_store).audits[1]
    at = app(small_store, monkeypatch, run=older.run_id)
    assert_clean(at, "overview")
    assert at.query_params["run"] == older.run_id and "car-variants 1.0.0" in texts(at)
    at = app(small_store, monkeypatch, run="20990101T000000-gone-audit-000000")
    assert "not an audit run" in "\n".join(w.value for w in at.warning)
    assert "1.1.0" in at.query_params["run"]


def test_confusion_pair_shows_its_images(small_app: AppTest) -> None:
    at = visit(small_app, "confusion")
    cm = json.loads(
        (
            Path(scan(Path(at.session_state["_selection"].store)).audits[0].path) / "audit.json"
        ).read_text()
    )
    pair = cm["metrics"]["most_confused"][0]
    at.selectbox(key="cm_pair").select(0).run()
    assert at.selectbox(key="cm_true").value == pair["true"]
    assert at.selectbox(key="cm_pred").value == pair["predicted"]
    assert (
        f"{pair['count']:,}** images of **{pair['true']}** predicted as **{pair['predicted']}"
        in texts(at)
    )
    at.segmented_control(key="cm_values").set_value("Share of true class").run()
    assert_clean(at, "confusion")


def test_failures_filters(small_app: AppTest) -> None:
    at = visit(small_app, "failures")
    total = next(
        m.value for m in at.markdown if m.value.startswith("#### ") and "failure(s)" in m.value
    )
    at.multiselect(key="fail_true").select("targa").run()
    narrowed = next(
        m.value for m in at.markdown if m.value.startswith("#### ") and "failure(s)" in m.value
    )
    assert_clean(at, "failures")
    assert int(narrowed.split()[1].replace(",", "")) <= int(total.split()[1].replace(",", ""))
    suspects = at.toggle(key="fail_suspect")
    if suspects.disabled:  # no suspect label in this store: the toggle says so by being off
        assert not suspects.value
    else:
        suspects.set_value(True).run()
    assert_clean(at, "failures")


def test_claim_typed_on_the_page_is_checked(small_app: AppTest) -> None:
    at = visit(small_app, "integrity")
    # The default kind: "accuracy on a group is at least …".
    at.text_input[0].input("The model is right at least 10% of the time")
    at.number_input[0].set_value(10.0)
    next(b for b in at.button if b.label == "Check this claim").click().run()
    assert_clean(at, "integrity")
    body = texts(at)
    assert "Checked on this page" in body and "The model is right at least 10% of the time" in body
    assert any(v in body for v in ("supported", "contradicted", "not enough data"))
    # A comparison between two slices: the form redraws with its own fields.
    at.selectbox(key="claim_kind").select("lower").run()
    group = next(s for s in at.selectbox if s.label == "Group (slice)")
    group.select("source = fan")
    next(s for s in at.selectbox if s.label == "Compared with").select("source = dealer")
    next(b for b in at.button if b.label == "Check this claim").click().run()
    assert_clean(at, "integrity")
    assert "source = fan" in texts(at) or "fan" in texts(at)


def damageable_copy(small_store: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the small store to damage, and the folder of its newest audit run."""
    store = tmp_path / "store"
    shutil.copytree(small_store, store)
    return store, scan(store).audits[0].path


def test_broken_and_partial_runs_never_show_a_traceback(
    small_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, newest = damageable_copy(small_store, tmp_path)
    (store / "zz-damaged").mkdir()
    (store / "zz-damaged" / "audit.json").write_text("{broken")
    # An invalid record (JSON, but without its metrics block) is listed as broken, never picked.
    invalid = store / "zz-invalid"
    shutil.copytree(newest, invalid)
    meta = json.loads((invalid / "audit.json").read_text())
    meta.pop("metrics")
    (invalid / "audit.json").write_text(json.dumps(meta))
    # A partial run: its predictions table is gone and its integrity.json is damaged.
    (newest / "predictions.parquet").unlink()
    (newest / "integrity.json").write_text("{broken")
    cat = scan(store)
    reasons = {b.name: b.reason for b in cat.broken}
    assert set(reasons) == {"zz-damaged", "zz-invalid"} and "metrics" in reasons["zz-invalid"]
    assert newest.name in {r.run_id for r in cat.audits}
    at = app(store, monkeypatch)
    assert "could not be read" in "\n".join(str(e.label) for e in at.sidebar.expander)
    assert at.query_params["run"] == newest.name
    for page in PAGES:
        at = visit(at, page)
        assert not at.exception, page
        assert any('data-page="' in str(m.value) for m in at.markdown), page
    errors = "\n".join(e.value for e in at.error)
    assert "Traceback" not in errors


def test_damaged_integrity_file_leaves_the_other_pages_whole(
    small_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, newest = damageable_copy(small_store, tmp_path)
    (newest / "integrity.json").write_text('{"leakage": 1}')  # JSON, not an integrity record
    at = app(store, monkeypatch)
    for page in (p for p in PAGES if p != "integrity"):
        assert_clean(visit(at, page), page)  # failures and galleries go on without the flags
    at = visit(at, "integrity")
    assert not at.exception
    errors = "\n".join(e.value for e in at.error)
    assert "integrity.json" in errors and "Traceback" not in errors
    assert "Type what someone said" in texts(at)  # the claims tab still works


# ---------------------------------------------------------------- 250 classes


@pytest.mark.parametrize("page", PAGES)
def test_big_store_pages(page: str, big_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = visit(app(big_store, monkeypatch), page)
    assert_clean(at, page)
    body = texts(at)
    assert "synthetic-cars 250c" in body
    if page == "confusion":
        assert "the 20 most confused classes" in "\n".join(
            str(c.proto.spec) for c in at.get("plotly_chart")
        )
    if page == "drift":
        assert "drifted" in body or "differ" in body
    if page == "compare":
        assert "Promote" in body or "Hold" in body


# ---------------------------------------------------------------- the demo store, when built


DEMO = Path(
    os.environ.get("DASHBOARD_DEMO_STORE", REPO / "audit-store")
)  # built by python -m audits demo


@pytest.mark.skipif(
    not (DEMO.is_dir() and scan(DEMO).audits), reason="demo store not built (python -m audits demo)"
)
@pytest.mark.parametrize("page", PAGES)
def test_demo_store_pages(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = visit(app(DEMO, monkeypatch), page)
    assert_clean(at, page)
    assert "car-variants" in texts(at)


# ---------------------------------------------------------------- stored values, shown as stored


def stored_most_confused(run_path: Path) -> list[str]:
    """The classes of audit.json's most_confused pairs, in pair order, each once."""
    meta = json.loads((run_path / "audit.json").read_text())
    names: list[str] = []
    for pair in meta["metrics"]["most_confused"]:
        for name in (pair["true"], pair["predicted"]):
            if name not in names:
                names.append(name)
    return names


def test_confusion_view_shows_the_stored_most_confused_classes(
    big_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = visit(app(big_store, monkeypatch), "confusion")
    assert_clean(at, "confusion")
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    expected = stored_most_confused(scan(big_store).audits[0].path)[:20]
    assert heat["y"] == expected and heat["x"] == expected  # not classes picked by another rule


@pytest.mark.skipif(
    not (DEMO.is_dir() and scan(DEMO).audits), reason="demo store not built (python -m audits demo)"
)
def test_every_p_value_reads_below_one_thousandth(monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(DEMO, monkeypatch)
    for page in ("drift", "compare"):
        at = visit(at, page)
        assert_clean(at, page)
        shown = html.unescape("\n".join([texts(at), *(e.value.to_string() for e in at.dataframe)]))
        assert "< 0.001" in shown, page
        assert "0.000999" not in shown and not re.search(r"\de-\d", shown), page
        hovers = "\n".join(str(c.proto.spec) for c in at.get("plotly_chart"))
        assert not re.search(r"p = (\d\.\d+e-|0\.000)", hovers), page
