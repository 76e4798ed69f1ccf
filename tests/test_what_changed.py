"""Per-image "what changed" between two compared versions (issue 17, item 4): the images only A
and only B get right, stored with the comparison, equal to a direct pandas computation and to
the McNemar discordant counts the verdict uses; filters; exports; escaping; the Compare page."""

from __future__ import annotations

import csv
import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from audits import what_changed as wc
from audits.compare import compare_runs, save_comparison
from audits.store import load_run
from tests.test_compare import CLASSES, fake_run

REPO = Path(__file__).resolve().parents[1]
HOSTILE_LABEL = "<b>x</b><script>alert(1)</script>"
HOSTILE_PATH = '=HYPERLINK("http://evil")<img src=x onerror=alert(2)>.png'


def random_outcomes(seed: int, n: int = 120) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    a = {c: rng.random(n) < 0.7 for c in CLASSES}
    b = {c: rng.random(n) < 0.8 for c in CLASSES}
    return a, b


def add_metadata(run: Path, seed: int) -> None:
    """Slice columns of the held-out set in the predictions table (as a manifest gives them)."""
    file = run / "predictions.parquet"
    table = pd.read_parquet(file)
    rng = np.random.default_rng(seed)
    table["colour"] = rng.choice(["red", "blue", "green"], len(table))
    table["night"] = rng.integers(0, 2, len(table))
    table.to_parquet(file, index=False)


@pytest.fixture
def compared(tmp_path: Path) -> tuple[Path, Path, Path, dict]:
    """Two fake audits (same images, random outcomes) and their stored comparison."""
    a, b = random_outcomes(3)
    run_a, run_b = fake_run(tmp_path, "1.0.0", a), fake_run(tmp_path, "1.1.0", b)
    for run in (run_a, run_b):
        add_metadata(run, 9)  # the same metadata in both: one held-out set
    doc, aligned = compare_runs(load_run(run_a), load_run(run_b))
    store = tmp_path / "store"
    comparison = save_comparison(doc, aligned, store)
    return run_a, run_b, comparison, doc


def direct(run_a: Path, run_b: Path) -> pd.DataFrame:
    """The images exactly one run got right, straight from the two predictions tables."""
    ta, tb = (pd.read_parquet(r / "predictions.parquet") for r in (run_a, run_b))
    m = ta.merge(tb, on="path", suffixes=("_a", "_b"))
    ra = m["pred_idx_a"] == m["label_idx_a"]
    rb = m["pred_idx_b"] == m["label_idx_b"]
    m = m[ra != rb].assign(side=np.where(ra[ra != rb], "only_a", "only_b"))
    return m


def test_lists_equal_pandas_and_the_mcnemar_counts(compared) -> None:
    run_a, run_b, comparison, doc = compared
    stored = load_run(comparison)
    changed = stored.changed
    assert list(changed.columns) == list(wc.COLUMNS)
    expected = direct(run_a, run_b)
    got = changed.set_index("path").sort_index()
    want = expected.set_index("path").sort_index()
    assert got.index.tolist() == want.index.tolist()
    assert got["side"].tolist() == want["side"].tolist()
    assert got["pred_a"].tolist() == want["pred_a"].tolist()
    assert got["pred_b"].tolist() == want["pred_b"].tolist()
    assert got["label"].tolist() == want["label_a"].tolist()
    assert got["row_a"].tolist() == want["row_a"].tolist()
    # One answer to one question: the counts are McNemar's discordant pairs, overall and per class.
    record = stored.comparison
    mc = record.overall.mcnemar
    only_a, only_b = (
        int((changed["side"] == "only_a").sum()),
        int((changed["side"] == "only_b").sum()),
    )
    assert (record.what_changed.only_a_right, record.what_changed.only_b_right) == (only_a, only_b)
    assert (
        (mc.b, mc.c)
        == (only_a, only_b)
        == (
            record.overall.counts.only_a_right,
            record.overall.counts.only_b_right,
        )
    )
    assert record.what_changed.file == "changed.parquet"
    per_class = changed.groupby(["label", "side"]).size()
    for row in record.per_class:
        assert row.a_only == per_class.get((row.class_, "only_a"), 0)
        assert row.b_only == per_class.get((row.class_, "only_b"), 0)
    # And the stored exact p is statsmodels' exact McNemar on the same 2x2 table (no groups).
    both = int(record.overall.counts.both_right)
    neither = int(record.overall.counts.both_wrong)
    table = [[both, only_a], [only_b, neither]]
    assert mc.p_exact == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)


def test_old_comparisons_without_the_file_still_load(compared) -> None:
    *_, comparison, _ = compared
    (comparison / "changed.parquet").unlink()
    meta = json.loads((comparison / "comparison.json").read_text())
    del meta["what_changed"]
    (comparison / "comparison.json").write_text(json.dumps(meta))
    run = load_run(comparison)
    assert run.changed is None and run.comparison.what_changed is None
    record = load_run(
        REPO / "tests/data/runs/20261201T180015-car-variants-1.0.0-vs-1.1.0-comparison-ee6527"
    )
    assert record.comparison.what_changed is None and record.changed is None


def test_filters_by_class_and_slice(compared) -> None:
    run_a, _, comparison, _ = compared
    changed = load_run(comparison).changed
    table = pd.read_parquet(run_a / "predictions.parquet").set_index("row")
    colour = table.loc[changed["row_a"], "colour"].to_numpy()
    for side in wc.SIDES:
        got = wc.select(changed, side, ["targa"], colour == "red")
        want = changed[
            (changed["side"] == side) & (changed["label"] == "targa") & (colour == "red")
        ]
        assert got["path"].tolist() == want["path"].tolist() and len(want) > 0
    everything = wc.select(changed, "only_b")
    assert len(everything) == int((changed["side"] == "only_b").sum())
    with pytest.raises(ValueError, match="side"):
        wc.select(changed, "both")


def test_page_and_stored_predictions() -> None:
    frame = pd.DataFrame({"x": range(50)})
    first, pages = wc.page(frame, 0, 24)
    last, _ = wc.page(frame, 99, 24)
    assert pages == 3 and first["x"].tolist() == list(range(24)) and last["x"].tolist() == [48, 49]
    table = pd.DataFrame(
        {
            "row": [0, 1],
            "confidence": np.array([0.9, 0.6], dtype=np.float32),
            "topk_idx": [[1, 0], [0, 2]],
            "topk_prob": [[0.9, 0.1], [0.6, 0.3]],
        }
    )
    assert wc.top_k(table, 1, ["a", "b", "c"]) == [("a", 0.6), ("c", 0.3)]
    assert wc.confidence(table, 1) == pytest.approx(0.6) and wc.confidence(table, 7) is None
    assert wc.top_k(table.drop(columns="topk_idx"), 1, ["a"]) == []


# ------------------------------------------------------------------ exports and escaping


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A comparison whose labels and paths carry markup and a spreadsheet formula."""
    classes = [HOSTILE_LABEL, "targa", "turbo"]
    a = {c: np.array([True, False, True, False]) for c in classes}
    b = {c: np.array([False, True, True, True]) for c in classes}
    run_a = fake_run(tmp_path, "1.0.0", a, classes=classes)
    run_b = fake_run(tmp_path, "1.1.0", b, classes=classes)
    for run in (run_a, run_b):  # one path made hostile in both tables
        file = run / "predictions.parquet"
        table = pd.read_parquet(file)
        table.loc[1, "path"] = HOSTILE_PATH
        table.to_parquet(file, index=False)
    store = tmp_path / "store"
    doc, aligned = compare_runs(load_run(run_a), load_run(run_b), speed=None)
    comparison = save_comparison(doc, aligned, store)
    return run_a, run_b, comparison


def test_export_lists(hostile, tmp_path: Path) -> None:
    """The JSON export's comparison and the CSV carry the stored lists; the CSV defuses formulas;
    the report section names the counts with the text escaped."""
    from audits.related import RunBundle
    from reports.changed_export import changed_records, write_changed
    from reports.sections.comparison import _changed_blocks

    run_a, run_b, comparison = hostile
    stored = load_run(comparison)
    records = changed_records(stored)
    changed = stored.changed
    assert [r["path"] for r in records] == changed["path"].tolist()
    assert {r["side"] for r in records} == {"only_a", "only_b"}
    bundle = RunBundle(audit=load_run(run_b), comparison=stored, previous=load_run(run_a))
    out = write_changed(bundle, tmp_path / "x-what-changed.csv")
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == list(wc.COLUMNS) and len(rows) == len(changed) + 1
    assert all(not cell.startswith("=") for row in rows for cell in row)
    assert any(cell == "'" + HOSTILE_PATH for row in rows for cell in row)
    assert write_changed(RunBundle(audit=load_run(run_b)), tmp_path / "none.csv") is None
    blocks = _changed_blocks(stored, stored.comparison)
    counts = blocks[1].items[0]
    n_a, n_b = int((changed["side"] == "only_a").sum()), int((changed["side"] == "only_b").sum())
    assert f"{n_b} images only 1.1.0 gets right and {n_a} only 1.0.0 gets right" in counts
    cells = [cell.text for row in blocks[2].rows for cell in row]
    assert HOSTILE_PATH in cells  # stored as given; the renderer escapes it (below)


def test_report_html_escapes_the_lists(hostile) -> None:
    """The HTML report's comparison section lists the changed images, every string escaped."""
    from audits.related import RunBundle
    from reports.content import build_content
    from reports.html import html_document

    run_a, run_b, comparison = hostile
    stored = load_run(comparison)
    bundle = RunBundle(audit=load_run(run_b), comparison=stored, previous=load_run(run_a))
    page = html_document(build_content(load_run(run_b), related=bundle))
    assert "What changed, image by image" in page
    assert html.escape(HOSTILE_PATH, quote=False).replace('"', "&#34;") in page or (
        html.escape(HOSTILE_PATH) in page
    )
    assert "<img src=x" not in page and "<script>alert(1)" not in page


def test_compare_page_lists_open_a_detail(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest: the two lists with their counts, the filters, and a click opening the detail;
    hostile labels and paths reach the page escaped."""
    from streamlit.testing.v1 import AppTest

    run_a, run_b, comparison = hostile
    store = comparison.parent
    for run in (run_a, run_b):
        os.rename(run, store / run.name)
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.query_params["run"] = run_b.name
    at.run()
    at = at.switch_page("dashboard/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    changed = load_run(comparison).changed
    n_a, n_b = int((changed["side"] == "only_a").sum()), int((changed["side"] == "only_b").sum())
    side = at.segmented_control(key="wc_side")
    assert side.options == [f"Only 1.0.0 right ({n_a})", f"Only 1.1.0 right ({n_b})"]
    opens = [b for b in at.button if (b.key or "").startswith("wc_open_only_b_")]
    assert len(opens) == n_b
    at.multiselect(key="wc_class").select("targa").run()
    opens = [b for b in at.button if (b.key or "").startswith("wc_open_only_b_")]
    want = changed[(changed["side"] == "only_b") & (changed["label"] == "targa")]
    assert len(opens) == len(want)
    at.multiselect(key="wc_class").unselect("targa").run()
    hostile_row = changed[changed["path"] == HOSTILE_PATH].iloc[0]
    at.segmented_control(key="wc_side").set_value(hostile_row["side"]).run()
    key = f"wc_open_{hostile_row['side']}_{int(hostile_row['row_a'])}"
    next(b for b in at.button if b.key == key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    body = "\n".join(str(m.value) for m in at.markdown)
    assert html.escape(HOSTILE_PATH) in body  # the detail's heading, escaped
    assert "<script>" not in body and "<img src=x" not in body
    assert "predicted" in body
    captions = "\n".join(str(c.value) for c in at.caption)
    assert captions.count("No heatmap stored for this image in") == 2


def test_terminal_lists_what_changed_by_class(compared) -> None:
    """`compare` in a terminal prints the per-class counts of the stored lists and where they are."""
    import io

    from rich.console import Console

    from auditapp.compare_view import CHANGED_CLASSES_SHOWN, print_comparison

    run_a, run_b, comparison, doc = compared
    out = io.StringIO()
    print_comparison(doc, Console(file=out, width=200), stored=str(comparison))
    text = out.getvalue()
    assert "What changed: images only one version gets right, by true class" in text
    expected = direct(run_a, run_b).groupby(["label_a", "side"]).size()
    shown = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) == 4 and cells[0] in CLASSES and cells[3][0] in "+-0":
            a, b = int(cells[1]), int(cells[2])
            assert a == expected.get((cells[0], "only_a"), 0)
            assert b == expected.get((cells[0], "only_b"), 0)
            assert cells[3] == f"{b - a:+d}"
            shown += 1
    assert shown == min(len(CLASSES), CHANGED_CLASSES_SHOWN)
    assert f"every image: {comparison}/changed.parquet" in text.replace("\n", "")
