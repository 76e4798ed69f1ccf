"""Drift a reader understands (issue 13, item 6): the batch is named, its accuracy is shown with a
Wilson interval when it is labelled, the farthest images are copied into the drift run as small
PNGs, the decision rule reads as words, and numbers are rounded for people — in drift.json, the
terminal, the PDF, the HTML and the dashboard."""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audits.drift.batch import batch_name, check_label
from audits.drift.predictions import labelled_accuracy
from audits.drift.wording import accuracy_sentence, property_value, rule_sentence
from audits.errors import AuditError
from audits.runs import DriftRecord

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "fox"]
LABEL = "fan photos, May"


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval from its closed form (independent of statsmodels)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("fixtures/data/fan_batch/manifest.csv", "fan_batch"),
        ("/data/shots/may_2026.csv", "may_2026"),
        ("/data/shots/labels.parquet", "shots"),
        ("/data/imagefolder/production/", "production"),
        ("batch", "batch"),
    ],
)
def test_batch_name_from_the_data_set(source: str, name: str) -> None:
    assert batch_name(source) == name


def test_label_is_checked() -> None:
    assert check_label("  fan photos  ") == "fan photos"
    assert check_label(None) is None
    for bad in ("", "   ", "two\nlines", "x" * 81):
        with pytest.raises(AuditError, match="--label"):
            check_label(bad)


def test_labelled_accuracy_has_the_wilson_interval() -> None:
    import pandas as pd

    correct = np.r_[np.ones(167, bool), np.zeros(233, bool), np.zeros(5, bool)]
    table = pd.DataFrame({"label_idx": [0] * 400 + [-1] * 5, "correct": correct})
    acc = labelled_accuracy(table)
    low, high = wilson(167, 400)
    assert acc["n"] == 400 and acc["correct"] == 167
    assert acc["accuracy"] == pytest.approx(0.4175)
    assert acc["ci_low"] == pytest.approx(low, abs=1e-12)
    assert acc["ci_high"] == pytest.approx(high, abs=1e-12)
    empty = labelled_accuracy(pd.DataFrame({"label_idx": [-1, -1], "correct": [False, False]}))
    assert empty["accuracy"] is None and empty["n"] == 0


def test_property_values_are_rounded_for_people() -> None:
    assert property_value("width", 128.0) == "128"
    assert property_value("height", 127.6) == "128"
    assert property_value("file_size", 24332.97) == "24.3 kB"
    assert property_value("sharpness", 790.652) == "791"
    assert property_value("sharpness", 74.328) == "74.3"
    assert property_value("brightness", 0.5712) == "0.57"
    assert property_value("contrast", 0.0861) == "0.086"
    assert property_value("brightness", None) == "n/a"
    assert property_value("aspect_ratio", 1.0) == "1.00"


def test_rule_in_words() -> None:
    text = rule_sentence(0.05)
    assert "0.05" in text and "any one of three" in text
    assert "embedding.drift" not in text and "any(" not in text


# ---------------------------------------------------------------- a real drift run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An audit and a labelled drift run (with --label) of one tiny model in one store."""
    from auditapp.pipeline.audit import run_audit
    from auditapp.pipeline.drift import run_drift
    from tests.builders import make_manifest, make_model_dir

    root = tmp_path_factory.mktemp("drift-readable")
    model = make_model_dir(root / "model", classes=CLASSES, name="car-variants")
    held = make_manifest(root / "heldout", CLASSES, per_class=8, seed=1)
    # Bigger images than the held-out set: width and height change, so they are worth printing.
    batch = make_manifest(root / "fan_batch", CLASSES, per_class=6, size=40, seed=2)
    store = root / "store"
    audit = run_audit(model, held, store=store, skip=("explain", "integrity"))
    drift = run_drift(model, held, batch, store=store, permutations=50, label=LABEL)
    return {"store": store, "audit": audit, "drift": drift, "model": model, "held": held}


def test_drift_record_names_the_batch_and_its_accuracy(runs: dict) -> None:
    from audits.store import load_run

    run = load_run(runs["drift"])
    d: DriftRecord = run.drift
    assert d.current.name == LABEL and d.batch == LABEL
    assert d.reference.name == "heldout"
    acc = d.predictions.accuracy
    table = load_run(runs["drift"]).properties
    current = table[table["side"] == "current"]
    k, n = int(current["correct"].sum()), len(current)
    assert (acc.current_correct, acc.n_current_labelled) == (k, n)
    assert acc.current == pytest.approx(k / n)
    low, high = wilson(k, n)
    assert acc.current_ci_low == pytest.approx(low, abs=1e-9)
    assert acc.current_ci_high == pytest.approx(high, abs=1e-9)
    assert d.drift_rule_text == rule_sentence(d.alpha)


def test_farthest_images_are_copied_into_the_run(runs: dict) -> None:
    from audits.store import load_run

    run = load_run(runs["drift"])
    examples = run.drift.examples
    assert examples and all(e.thumb for e in examples)
    for e in examples:
        file = run.thumb(e.thumb)
        assert file is not None and file.parent == run.path / "thumbs"
        with Image.open(file) as img:
            assert img.format == "PNG" and max(img.size) <= 160
        assert file.stat().st_size < 50_000


def test_older_record_without_the_new_fields_still_reads(runs: dict) -> None:
    """A drift.json from before: no name, no intervals, no thumbs; the batch falls back to the
    folder name and the sentence to the accuracy alone."""
    from audits.store import load_run

    doc = copy.deepcopy(load_run(runs["drift"]).drift.as_dict())
    doc["current"].pop("name")
    for key in ("current_ci_low", "current_ci_high", "reference_ci_low", "reference_ci_high"):
        doc["predictions"]["accuracy"].pop(key)
    for e in doc["examples"]:
        e.pop("thumb")
    old = DriftRecord.model_validate(doc)
    assert old.batch == "fan_batch"
    sentence = accuracy_sentence(old.batch, old.predictions.accuracy)
    assert sentence is not None and "fan_batch" in sentence and "CI" not in sentence


def test_terminal_summary_names_batch_and_interval(runs: dict) -> None:
    from auditapp.commands.drift_cmd import summary_lines
    from audits.store import load_run

    text = "\n".join(summary_lines(load_run(runs["drift"]).drift))
    assert repr(LABEL) in text and "95% CI" in text
    assert not re.search(r"\d\.\d+e-\d", text)


def _report_texts(runs: dict, tmp_path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    from reports.export import export_run

    out = export_run(runs["audit"], "pdf,html", tmp_path / "out", store=runs["store"])
    pdf = next(out.glob("*.pdf"))
    html = next(out.glob("*.html")).read_text()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    pdf_text = "\n".join(p.extract_text() or "" for p in PdfReader(pdf).pages)
    return pdf_text, html


def test_pdf_and_html_read_for_people(runs: dict, tmp_path: Path) -> None:
    import html as html_lib

    from audits.formatting import ci, pct
    from audits.store import load_run

    acc = load_run(runs["drift"]).drift.predictions.accuracy
    pdf, page = _report_texts(runs, tmp_path)
    page = html_lib.unescape(page)
    for text in (pdf, page):
        flat = re.sub(r"\s+", " ", text)
        assert LABEL in flat
        assert pct(acc.current) in flat
        assert ci(acc.current_ci_low, acc.current_ci_high) in flat
        assert "any one of three checks" in flat
        assert "embedding.drift or" not in flat
        assert "128.000" not in flat and "40.000" not in flat
        assert not re.search(r"\d\.\d+e-\d", flat), re.findall(r".{30}\d\.\d+e-\d.{10}", flat)


def test_pdf_embeds_the_thumbnails(runs: dict, tmp_path: Path) -> None:
    from reports.content import build_content
    from reports.tree import Gallery

    content = build_content(runs["audit"], runs["store"])
    drift = next(s for s in content.sections if s.id == "drift")
    galleries = [b for b in drift.blocks if isinstance(b, Gallery)]
    assert galleries and galleries[0].figures
    for figure in galleries[0].figures:
        assert Path(figure.paths[0]).parent.name == "thumbs"
        assert Path(figure.paths[0]).is_relative_to(runs["drift"])


def test_dashboard_drift_page_names_batch_and_accuracy(
    runs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from audits.formatting import pct
    from audits.store import load_run

    monkeypatch.setenv("AUDIT_STORE", str(runs["store"]))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.query_params.update(run=Path(runs["audit"]).name)
    at.run()
    at = at.switch_page("dashboard/pages/drift.py").run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(str(e.value) for kind in ("markdown", "caption") for e in at.get(kind))
    acc = load_run(runs["drift"]).drift.predictions.accuracy
    assert "fan photos, May" in text
    assert f"Accuracy on {LABEL}" in text and pct(acc.current) in text
    assert "95% CI" in text
    assert "any one of three checks" in text


def test_cli_refuses_an_empty_label(runs: dict, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "audits", "drift", "--model", str(runs["model"]),
           "--reference", str(runs["held"]), "--current", str(runs["held"]),
           "--store", str(tmp_path), "--label", "  "]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "--label" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
