"""Small pure helpers of the dashboard: readers of optional outputs, filters, claim building.

Records are stored ones from ``tests/data/runs`` with fields changed, so every helper reads
complete, valid records as the pages do.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.runs import ComparisonRecord, DriftRecord, IntegrityRecord
from audits.runs.models_audit import ClassMetrics, DatasetInfo
from audits.runs.models_comparison import ClassComparison
from dashboard.charts import clicked_cell
from dashboard.claims_view import slice_spec
from dashboard.gallery import region_lines
from dashboard.images import data_root, image_file
from dashboard.pages.classes import filter_rows, metrics_frame
from dashboard.pages.confusion import focus_index
from dashboard.pages.failures import failures_frame
from dashboard.stored import leaked_rows, n_suspects, suspects

RUNS = Path(__file__).resolve().parent / "data" / "runs"
AUDIT = RUNS / "20261201T175937-car-variants-1.1.0-audit-46a3ad"
DRIFT = RUNS / "20261201T180001-car-variants-1.1.0-drift-ebf50b"
COMPARISON = RUNS / "20261201T180015-car-variants-1.0.0-vs-1.1.0-comparison-ee6527"


def stored(file: Path) -> dict[str, Any]:
    """A stored record as a fresh dict, to change before validating it."""
    return copy.deepcopy(json.loads(file.read_text(encoding="utf-8")))


def test_data_root_for_manifest_and_imagefolder(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()

    def dataset(**fields: Any) -> DatasetInfo:
        return DatasetInfo.from_dict({"fingerprint": "f", "n_images": 1, "n_skipped": 0, **fields})

    manifest = dataset(path=str(tmp_path / "set" / "manifest.csv"), kind="manifest")
    assert data_root(manifest) == tmp_path / "set"
    assert data_root(dataset(path=str(tmp_path / "set"), kind="imagefolder")) == tmp_path / "set"
    assert data_root(dataset()) is None
    (tmp_path / "set" / "a.png").write_bytes(b"x")
    assert image_file(tmp_path / "set", "a.png") == tmp_path / "set" / "a.png"
    assert image_file(tmp_path / "set", "missing.png") is None and image_file(None, "a.png") is None


def test_suspects_and_leaked_rows_of_integrity() -> None:
    doc = stored(AUDIT / "integrity.json")
    doc["suspect_labels"]["n_flagged"] = 5
    doc["suspect_labels"]["rows"][0].update(row=7, suggested="targa")
    doc["leakage"]["leaked_rows"] = [3, 7]
    report = IntegrityRecord.from_dict(doc)
    flagged = suspects(report)
    assert list(flagged)[0] == 7 and flagged[7].suggested == "targa"
    assert len(flagged) == 3 and n_suspects(report, len(flagged)) == 5  # more flagged than listed
    assert leaked_rows(report) == {3, 7}
    assert suspects(None) == {} and leaked_rows(None) == set() and n_suspects(None, 2) == 2
    # A stage that failed stored its error instead of its result: nothing is flagged.
    doc["suspect_labels"] = {"error": "boom"}
    doc["leakage"] = {"available": False, "reason": "no training manifest"}
    failed = IntegrityRecord.from_dict(doc)
    assert suspects(failed) == {} and n_suspects(failed, 0) == 0 and leaked_rows(failed) == set()


def test_region_lines_read_explain_columns() -> None:
    regions = pd.DataFrame(
        {"role": ["predicted", "true"], "class": ["carrera", "targa"], "method": ["gradcam"] * 2,
         "roi_energy": [0.05, 0.4], "roi_peak": pd.array([False, True], dtype="boolean")}
    )  # fmt: skip
    (line,) = region_lines(regions)
    assert "5% of the heat for carrera (its peak outside)" in line
    assert "40% of the heat for targa (its peak inside)" in line
    no_box = regions.assign(roi_energy=np.nan, roi_peak=pd.array([None, None], dtype="boolean"))
    assert "no region box" in region_lines(no_box)[0]
    assert region_lines(None) == [] and region_lines(regions.iloc[0:0]) == []


def class_row(name: str, support: int, recall: float | None) -> ClassMetrics:
    """A per_class row that stores no precision or F1 (None), as for a class never predicted."""
    return ClassMetrics.from_dict(
        {"class": name, "support": support, "correct": 0, "recall": recall, "precision": None,
         "f1": None, "ci_low": None, "ci_high": None}
    )  # fmt: skip


def test_class_filters_and_table() -> None:
    rows = [class_row("targa", 50, 0.9), class_row("carrera", 5, 0.2), class_row("turbo", 0, None)]
    assert [r.class_ for r in filter_rows(rows, "", 0, "Worst first")] == [
        "carrera",
        "targa",
        "turbo",
    ]
    assert [r.class_ for r in filter_rows(rows, "TAR", 0, "Worst first")] == ["targa"]
    assert [r.class_ for r in filter_rows(rows, "", 10, "Model order")] == ["targa"]
    frame = metrics_frame(rows)
    assert list(frame.columns)[:4] == ["class", "test images", "correct", "accuracy (recall)"]
    assert list(frame["accuracy (recall)"]) == ["90.0%", "20.0%", "n/a"]
    assert (frame["precision"] == "n/a").all()  # not stored: said so, as the exports do


def test_focus_index_and_failures() -> None:
    cm = np.array([[10, 5, 0, 1], [2, 10, 0, 0], [0, 0, 10, 0], [0, 0, 3, 10]])
    assert focus_index(cm, 0, 3) == [0, 1, 3]
    table = pd.DataFrame({"label_idx": [0, 1, -1, 2], "pred_idx": [0, 2, 1, 1]})
    assert list(failures_frame(table).index) == [1, 3]  # unlabelled rows are not failures


def test_slice_spec_builds_claim_values() -> None:
    kinds = {"dog": "boolean", "source": "category", "width": "numeric", "date": "date"}
    assert slice_spec("All images", kinds) == {}
    assert slice_spec("dog = true", kinds) == {"dog": True}
    assert slice_spec("source = fan", kinds) == {"source": "fan"}
    assert slice_spec("width = 400 to 800", kinds) == {"width": {"min": 400.0, "max": 800.0}}
    assert slice_spec("date = 2024-07", kinds) == {"date": "2024-07"}
    assert slice_spec("source = (missing)", kinds) == {"source": None}


def test_clicked_cell_unescapes_the_figures_names() -> None:
    labels = ["a&b", "c"]
    event = {"selection": {"points": [{"x": "c", "y": "a&amp;b"}]}}
    assert clicked_cell(event, labels) == ("a&b", "c")
    assert clicked_cell({"selection": {"points": []}}, labels) is None


def test_comparison_marks_failed_reasons_by_the_stored_checks() -> None:
    from reports.present.narrative import verdict_detail

    doc = stored(COMPARISON / "comparison.json")
    doc.update({
        "verdict": "hold",
        "summary": "hold: overall +5.0 points but targa recall -20.0 points",
        "reasons": ["targa recall -20.0 points", "overall +5.0 points"],
        "checks": [{"check": "overall", "ok": True, "text": "overall +5.0 points"},
                   {"check": "class:targa", "ok": False, "text": "targa recall -20.0 points"}],
    })  # fmt: skip
    record = ComparisonRecord.from_dict(doc)
    assert record.reason_rows == [
        ("targa recall -20.0 points", True),
        ("overall +5.0 points", False),  # in the summary, but its check passed
    ]
    assert verdict_detail(record) == "Overall +5.0 points but targa recall -20.0 points."


def test_every_p_value_reads_below_one_thousandth() -> None:
    from reports.present.narrative import drift_summary

    row = stored(COMPARISON / "comparison.json")["per_class"][0]
    row.update({"class": "a", "p_value": 0.000999, "p_adjusted": 9.99e-5, "diff": -0.1})
    with_p = per_class_frame_text([ClassComparison.from_dict(row)])
    assert "0.000999" not in with_p and with_p.count("< 0.001") == 2
    doc = stored(DRIFT / "drift.json")
    doc["embedding"].update(p_value=0.000999, drift=True)
    doc["predictions"].update(p_value=8.65e-94, drift=True)
    text = " ".join(drift_summary(DriftRecord.from_dict(doc)))
    assert "p < 0.001" in text and "0.000999" not in text and "e-94" not in text


def per_class_frame_text(rows: list[ClassComparison]) -> str:
    """The compare page's per-class table as text (what st.dataframe shows)."""
    from dashboard.components import value_frame
    from dashboard.pages.compare import PER_CLASS

    return value_frame(rows, PER_CLASS).to_string()
