"""Client exports (issue 9): schema, numbers, integrity manifest, escaping, reproducibility.

One real store is built per module: two versions of a tiny model audited (with Grad-CAM and
integrity) on a held-out set whose third class is named ``<script>alert(1)</script>``, with
training-set leakage, a comparison, a drift run and a claims check. It is exported twice (all
formats) and every test reads those exports.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from auditapp.cli import main as cli
from audits.store import load_run
from reports import csv_export, json_export
from reports.content import build_content
from reports.export import export_run, file_stem, parse_formats
from reports.manifest import MANIFEST, verify
from reports.present.narrative import pct
from tests.builders import make_manifest, make_model_dir

XSS = "<script>alert(1)</script>"


def _build_store(root: Path) -> dict[str, Path]:
    from auditapp.pipeline.audit import run_audit
    from auditapp.pipeline.drift import run_drift

    safe = ["cat", "dog", "xss"]
    classes = ["cat", "dog", XSS]
    held = make_manifest(root / "held", safe, per_class=12, seed=1)
    frame = pd.read_csv(held)
    frame.loc[frame.label == "xss", "label"] = XSS  # file names stay safe; the label is hostile
    frame.to_csv(held, index=False)
    train = make_manifest(root / "train", safe, per_class=6, seed=2)
    tr = pd.read_csv(train)
    tr.loc[tr.label == "xss", "label"] = XSS
    shutil.copy(root / "held" / frame.path[0], root / "train" / "img" / "leak.png")  # exact leak
    tr.loc[len(tr)] = {**tr.iloc[0].to_dict(), "path": "img/leak.png", "group": "leak"}
    tr.to_csv(train, index=False)
    prod = make_manifest(root / "prod", safe, per_class=8, seed=3)
    pp = pd.read_csv(prod).drop(columns=["label"])
    for rel in pp.path:  # brighter production images: drift
        a = np.asarray(Image.open(root / "prod" / rel)).astype(int)
        Image.fromarray(np.clip(a + 70, 0, 255).astype(np.uint8)).save(root / "prod" / rel)
    pp.to_csv(prod, index=False)
    extra = f'training_manifest = "{train}"\n'
    m1 = make_model_dir(root / "m1", classes=classes, seed=0, version="1.0.0", extra_toml=extra)
    m2 = make_model_dir(root / "m2", classes=classes, seed=5, version="1.1.0", extra_toml=extra)
    store = root / "store"
    assert cli(["freeze", str(held)]) == 0
    r1 = run_audit(m1, held, store=store)
    r2 = run_audit(m2, held, store=store)
    assert cli(["compare", str(r1), str(r2), "--store", str(store), "--no-speed"]) in (0, 1)
    run_drift(m2, held, prod, store=store, permutations=100)
    claims = root / "claims.toml"
    claims.write_text(
        '[[claim]]\ntext = "Fan photos are less accurate"\n'
        'kind = "lower"\nslice = { source = "fan" }\n'
    )
    assert cli(["claims", str(r2), str(claims)]) == 0
    return {"store": store, "run": r2, "previous": r1, "held": held, "model": m2}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    paths = _build_store(root)
    first = export_run(paths["run"], "all", root / "out1")
    second = export_run(paths["run"], "all", root / "out2")
    return {
        **paths,
        "root": root,
        "export": first,
        "again": second,
        "run_obj": load_run(paths["run"]),
    }


def _file(folder: Path, suffix: str) -> Path:
    (match,) = [p for p in folder.iterdir() if p.name.endswith(suffix)]
    return match


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _squash(text: str) -> str:
    """Text without whitespace: table cells and wrapped lines may split a value."""
    return re.sub(r"\s+", "", text)


class _Html(HTMLParser):
    """Collects script element bodies and the visible text of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.script_attrs: list[dict] = []
        self.text: list[str] = []
        self.links: list[str] = []  # every src and href of the document's own tags
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
            self.script_attrs.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


# ---------------------------------------------------------------------------------------------
# what the folder holds


def test_export_folder_holds_every_format_and_a_manifest(built):
    folder = built["export"]
    stem = file_stem(built["run_obj"])
    names = {p.name for p in folder.iterdir()}
    for suffix in (
        "report.pdf",
        "report.html",
        "audit.json",
        "per-class.csv",
        "predictions.csv",
        "confusion.csv",
    ):
        assert f"{stem}-{suffix}" in names
    assert {"manifest.json", "export.json", "audit-export.schema.json"} <= names
    listed = {e["path"] for e in json.loads((folder / MANIFEST).read_text())["files"]}
    assert listed == names - {MANIFEST}
    assert verify(folder) == []


def test_every_section_is_present_when_its_result_exists(built):
    content = build_content(built["run"])
    ids = [s.id for s in content.sections]
    for sid in (
        "versioning",
        "data",
        "metrics",
        "failures",
        "drift",
        "comparison",
        "leakage",
        "labels",
        "slices",
        "claims",
    ):
        assert sid in ids, sid
    assert content.omitted == []
    assert content.verdict and "Release gate against 1.0.0" in content.verdict


# ---------------------------------------------------------------------------------------------
# JSON schema and numbers


def test_json_validates_against_the_published_schema(built):
    doc = json.loads(_file(built["export"], "-audit.json").read_text())
    schema = json.loads((built["export"] / "audit-export.schema.json").read_text())
    assert schema == json_export.schema()  # the copy in the folder is the published one
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["schema_version"] == 1
    assert doc["drift"]["run_id"] and doc["comparison"]["verdict"] in ("promote", "hold")
    assert doc["integrity"]["leakage"]["counts"]["exact"] >= 1
    assert doc["claims"] and doc["explain"]["summary"]["pairs"]


def test_json_numbers_equal_the_runs(built):
    meta = built["run_obj"].meta
    doc = json.loads(_file(built["export"], "-audit.json").read_text())
    for key in ("model", "dataset", "auditor", "metrics"):
        assert doc[key] == meta[key], key
    comparison = load_run(next(p for p in built["store"].iterdir() if "comparison" in p.name)).meta
    assert doc["comparison"]["overall"] == comparison["overall"]


def test_csv_numbers_equal_the_runs(built):
    meta = built["run_obj"].meta
    per_class = pd.read_csv(
        _file(built["export"], "-per-class.csv"),
        keep_default_na=False,
        float_precision="round_trip",
    )
    assert list(per_class.columns) == list(csv_export.PER_CLASS_COLUMNS)
    for row, stored in zip(per_class.to_dict("records"), meta["metrics"]["per_class"], strict=True):
        assert row["class"] == stored["class"]
        for key in ("support", "correct", "recall", "precision", "f1", "ci_low", "ci_high"):
            assert row[key] == stored[key], key  # repr floats read back exactly
    preds = pd.read_csv(_file(built["export"], "-predictions.csv"))
    table = built["run_obj"].table
    assert len(preds) == len(table)
    assert preds["confidence"].astype("float32").tolist() == table["confidence"].tolist()
    conf = pd.read_csv(_file(built["export"], "-confusion.csv"), index_col=0)
    assert conf.to_numpy().tolist() == meta["metrics"]["confusion"]["matrix"]


def _expected_numbers(meta: dict) -> list[str]:
    m = meta["metrics"]
    out = [pct(m["accuracy"]), pct(m["balanced_accuracy"]), pct(m["macro_f1"]), pct(m["ece"])]
    out.append(f"{100 * m['accuracy_ci_low']:.1f}–{100 * m['accuracy_ci_high']:.1f}%")
    for c in m["per_class"]:
        out += [
            pct(c["recall"]),
            pct(c["precision"]),
            f"{100 * c['ci_low']:.1f}–{100 * c['ci_high']:.1f}%",
        ]
    out.append(meta["model"]["weights_sha256"])
    out.append(meta["dataset"]["fingerprint"])
    return out


def test_html_and_pdf_show_the_runs_numbers(built):
    meta = built["run_obj"].meta
    parser = _Html()
    parser.feed(_file(built["export"], "report.html").read_text())
    html_text = _squash(" ".join(parser.text))
    pdf_text = _squash(_pdf_text(_file(built["export"], "report.pdf")))
    for value in _expected_numbers(meta):
        assert _squash(value) in html_text, value
        assert _squash(value) in pdf_text, value
    for c in meta["metrics"]["per_class"]:  # each class's row: name, support, recall, interval
        row = f"{c['class']}{c['support']}{c['correct']}{pct(c['recall'])}"
        assert _squash(row) in pdf_text and _squash(row) in html_text


# ---------------------------------------------------------------------------------------------
# integrity


def test_verify_names_a_changed_byte_a_missing_and_an_added_file(built, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(built["export"], folder)
    assert cli(["verify", str(folder)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ok"

    csv_file = _file(folder, "-per-class.csv")
    data = bytearray(csv_file.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one byte
    csv_file.write_bytes(bytes(data))
    pdf = _file(folder, "report.pdf")
    pdf.unlink()
    (folder / "extra.txt").write_text("added later")
    problems = verify(folder)
    assert f"altered: {csv_file.name} (sha256 differs from the manifest)" in problems
    assert f"missing: {pdf.name}" in problems
    assert "not in the manifest: extra.txt" in problems
    assert cli(["verify", str(folder)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert csv_file.name in last and pdf.name in last


def test_verify_of_a_folder_without_manifest_is_an_error(tmp_path, capsys):
    assert cli(["verify", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_exports_are_reproducible(built):
    a, b = built["export"], built["again"]
    for suffix in (
        "-audit.json",
        "-per-class.csv",
        "-predictions.csv",
        "-confusion.csv",
        "report.html",
    ):
        assert _file(a, suffix).read_bytes() == _file(b, suffix).read_bytes(), suffix
    assert _pdf_text(_file(a, "report.pdf")) == _pdf_text(_file(b, "report.pdf"))
    entries = [
        {e["path"]: e["sha256"] for e in json.loads((f / MANIFEST).read_text())["files"]}
        for f in (a, b)
    ]
    for name, digest in entries[0].items():
        if not name.endswith((".pdf", "export.json")):
            assert entries[1][name] == digest, name


def test_pdf_dates_are_the_runs_not_the_exports(built):
    from pypdf import PdfReader

    info = PdfReader(_file(built["export"], "report.pdf")).metadata
    created = built["run_obj"].meta["created"]  # 2026-11-23T16:00:00Z
    assert info["/CreationDate"].startswith("D:" + re.sub(r"\D", "", created)[:12])


# ---------------------------------------------------------------------------------------------
# escaping


def test_hostile_class_name_is_text_in_html(built):
    html = _file(built["export"], "report.html").read_text()
    assert XSS not in html  # never written as markup
    parser = _Html()
    parser.feed(html)
    assert XSS in "".join(parser.text)  # but shown, as text
    # Scripts: plotly.js and one per chart, all written by plotly; none holds the raw tag.
    assert all("<script" not in body.lower() for body in parser.scripts)
    assert all(attrs.get("type") == "text/javascript" for attrs in parser.script_attrs)
    n_charts = sum(1 for _ in build_content(built["run"]).charts())
    assert len(parser.scripts) == 1 + n_charts


def test_html_is_self_contained(built):
    parser = _Html()
    parser.feed(_file(built["export"], "report.html").read_text())
    assert parser.links and all(link.startswith(("data:", "#")) for link in parser.links)
    assert len(parser.scripts[0]) > 1_000_000  # plotly.js inline, once
    assert all("Plotly.newPlot" in body for body in parser.scripts[1:])  # then one per chart


def test_hostile_class_name_is_text_in_pdf(built):
    text = _squash(_pdf_text(_file(built["export"], "report.pdf")))
    assert _squash(XSS) in text


def test_hostile_names_are_spreadsheet_safe_in_csv(tmp_path):
    assert csv_export.safe_text("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_export.safe_text("cat") == "cat"


# ---------------------------------------------------------------------------------------------
# robustness: missing and damaged optional results


def _copy_run(built, tmp_path) -> Path:
    run = tmp_path / "store" / built["run"].name
    shutil.copytree(built["run"], run)
    return run


def test_a_run_with_missing_and_damaged_parts_still_exports(built, tmp_path):
    run = _copy_run(built, tmp_path)
    meta = json.loads((run / "audit.json").read_text())
    for key in ("device", "timings", "skipped"):
        meta.pop(key)
    meta["metrics"].pop("imbalance")
    meta["metrics"].pop("calibration")
    meta["explain"] = {"error": "RuntimeError: <b>boom</b>"}
    (run / "audit.json").write_text(json.dumps(meta))
    shutil.rmtree(run / "explain")
    (run / "integrity.json").write_text("{not json")
    folder = export_run(run, "pdf,html,json", tmp_path / "out")
    assert verify(folder) == []
    content = build_content(run)
    omitted = dict(content.omitted)
    assert "boom" in omitted["Failures explained (Grad-CAM)"]
    assert {"Drift in production", "Comparison with the previous version"} <= set(
        omitted
    )  # other store
    html = _file(folder, "report.html").read_text()
    assert "<b>boom</b>" not in html and "&lt;b&gt;boom&lt;/b&gt;" in html
    doc = json.loads(_file(folder, "-audit.json").read_text())
    jsonschema.validate(doc, json_export.schema(), cls=jsonschema.Draft202012Validator)
    assert doc["drift"] is None and doc["stage_errors"]["explain"].startswith("RuntimeError")
    # The broken integrity.json: the JSON export falls back to audit.json's summary, the report
    # leaves the integrity sections out and says why.
    assert doc["integrity"] == meta["integrity"]
    for name in ("Leakage", "Suspect labels", "Slices"):
        assert omitted[name].startswith("Unavailable:") and "integrity.json" in omitted[name]


def test_absent_optional_blocks_read_as_none(built, tmp_path):
    run = _copy_run(built, tmp_path)
    meta = json.loads((run / "audit.json").read_text())
    for key in ("device", "timings", "skipped", "explain", "integrity"):
        meta.pop(key)
    for key in ("imbalance", "calibration", "most_confused", "n_labelled", "n_classes"):
        meta["metrics"].pop(key)
    meta["model"].pop("input")
    (run / "audit.json").write_text(json.dumps(meta))
    shutil.rmtree(run / "explain")
    (run / "integrity.json").unlink()
    content = build_content(run)  # no crash on any absent block
    omitted = dict(content.omitted)
    assert "was not run" in omitted["Failures explained (Grad-CAM)"]
    assert omitted["Leakage"] == "Integrity checks were not run for this audit."
    sections = {s.id: s for s in content.sections}
    metrics = sections["metrics"]
    assert not any(getattr(b, "kind", "") == "calibration" for b in metrics.blocks)
    assert not any(getattr(b, "kind", "") == "imbalance" for b in sections["data"].blocks)
    rows = {r.label: r.value for b in sections["versioning"].blocks for r in getattr(b, "rows", [])}
    assert rows["Device"] == "n/a" and rows["Input"] == "n/a, n/a channel(s)"


def test_a_wrong_type_in_integrity_json_makes_its_sections_unavailable(built, tmp_path):
    run = _copy_run(built, tmp_path)
    record = json.loads((run / "integrity.json").read_text())
    record["leakage"]["n_test"] = "many"  # valid JSON, invalid record
    (run / "integrity.json").write_text(json.dumps(record))
    folder = export_run(run, "pdf,html,json", tmp_path / "out")
    omitted = dict(build_content(run).omitted)
    for name in ("Leakage", "Suspect labels", "Slices"):
        assert omitted[name].startswith("Unavailable:"), name
        assert "invalid integrity record: leakage.n_test" in omitted[name]
    html = _Html()
    html.feed(_file(folder, "report.html").read_text())
    assert "invalid integrity record" in " ".join(html.text)
    doc = json.loads(_file(folder, "-audit.json").read_text())
    assert doc["integrity"] == json.loads((run / "audit.json").read_text())["integrity"]


def test_cli_export_prints_the_folder_last_and_rejects_bad_input(built, tmp_path, capsys):
    assert cli(["export", str(built["run"]), "--format", "json,csv", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert Path(last) == tmp_path / built["run"].name and verify(Path(last)) == []
    assert cli(["export", str(built["run"]), "--format", "docx", "--out", str(tmp_path)]) == 2
    assert "unknown export format" in capsys.readouterr().err
    drift = next(p for p in built["store"].iterdir() if "drift" in p.name)
    assert cli(["export", str(drift), "--out", str(tmp_path)]) == 2
    assert "export an audit run" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / built["run"].name).mkdir()
    (tmp_path / "taken" / built["run"].name / "notes.txt").write_text("mine")
    assert (
        cli(["export", str(built["run"]), "--format", "json", "--out", str(tmp_path / "taken")])
        == 2
    )
    assert (tmp_path / "taken" / built["run"].name / "notes.txt").read_text() == "mine"


def test_parse_formats():
    assert parse_formats("csv, PDF") == ["pdf", "csv"]
    assert parse_formats("all") == ["pdf", "html", "json", "csv"]
