"""The readable-explanations and visual-bug fixes of the report and the dashboard (issue 13).

Each test pins one fix with real values and fails on the code before it: the Grad-CAM section
leads with the largest confused pair in plain words, appendices are lettered in order, small
shares never print "0%", legends name one colour, the Failures histogram follows the page's
filters, p-values have one format, top-k is shown only where it says something, and the
glossary defines every test the report names.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from audits.runs import ExplainFolder
from reports.present import charts, fmt
from reports.present.pair_words import below_header, pair_sentence
from reports.present.topk import shown_topk, topk_worth_showing
from reports.sections.appendices import letter_appendices
from reports.sections.glossary import GLOSSARY, TEST_NAMES
from reports.tree import Paragraphs, Section

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "audit-store"
TERMS = {term for term, _ in GLOSSARY}


# --- shared stores ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.synthetic_store import write_synthetic_store

    return write_synthetic_store(tmp_path_factory.mktemp("visual") / "s", 6, 600)


def _demo_audit(version: str = "1.0.0") -> Path:
    runs = sorted(DEMO.glob(f"*-car-variants-{version}-audit-*")) if DEMO.is_dir() else []
    if not runs:
        pytest.skip(f"{DEMO} has no {version} audit (python -m audits demo builds it)")
    return runs[-1]


def _strings(node: Any) -> list[str]:
    """Every string in a content tree (what the PDF and the HTML print)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, (list, tuple)):
        return [s for x in node for s in _strings(x)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [s for f in dataclasses.fields(node) for s in _strings(getattr(node, f.name))]
    return []


def _section(content: Any, title: str) -> Section:
    return next(s for s in content.sections if s.title == title)


# --- explanations -------------------------------------------------------------------------------

PAIR = {
    "true": "targa",
    "predicted": "carrera",
    "n_explained": 88,
    "n_failures": 88,
    "n_with_box": 88,
    "below_threshold": 81,
    "energy_median": 0.004,
    "baseline_energy_median": 0.026,
    "threshold": "box area",
}


def test_pair_sentence_is_one_plain_sentence_with_its_number() -> None:
    assert pair_sentence(PAIR) == (
        "On 88 targa images read as carrera, the heat sits outside the white box (the part "
        "that tells the classes apart) on 81; median heat in the box <1%, against 3% on "
        "correctly classified targa images."
    )
    few = {**PAIR, "below_threshold": 10, "n_with_box": 80}
    assert "the heat lands on the white box" in pair_sentence(few)
    assert "on 70 of the 80 with a box" in pair_sentence(few)
    assert "no region box" in pair_sentence({**PAIR, "n_with_box": None})


def test_below_column_never_reads_below_na() -> None:
    assert below_header("box area") == "Heat mostly outside box"
    assert below_header(None) == "Heat mostly outside box"
    assert below_header(0.1) == "Under 10% in box"


def test_demo_pdf_leads_with_the_largest_pair_in_plain_words() -> None:
    from reports.content import build_content

    section = _section(build_content(_demo_audit()), "Failures explained (Grad-CAM)")
    headings = [b.text for b in section.blocks if b.type == "heading"]
    assert headings[0] == "targa read as carrera"  # 88 failures, the demo's headline pair
    first = next(b for b in section.blocks if b.type == "gallery")
    assert first.columns == 1  # full width: the strips' labels print at ≥ 9 pt
    assert all("targa · read as carrera" in f.caption[0] for f in first.figures)
    text = " ".join(_strings(section))
    assert "On 88 targa images read as carrera, the heat sits outside" in text
    assert "Below n/a" not in text and "holds less of the heatmap than" not in text
    assert not any(b.type == "bullets" for b in section.blocks)  # the 22 jargon bullets
    table = next(b for b in section.blocks if b.type == "table")
    assert len(table.rows) == 8 and "smaller pairs" in table.caption


def test_region_line_in_plain_words() -> None:
    from dashboard.gallery import region_lines

    regions = pd.DataFrame(
        {
            "method": ["gradcam", "gradcam"],
            "class": ["carrera", "targa"],
            "roi_energy": [0.0, 0.02],
            "roi_peak": [False, True],
            "roi_area": [0.008, 0.008],
        }
    )
    assert region_lines(regions) == [
        "Region box (1% of the image): 0% of the heat for carrera (its peak outside), "
        "2% of the heat for targa (its peak inside)."
    ]


def test_enlarged_panels_blend_the_stored_heatmap_at_the_chosen_opacity(tmp_path: Path) -> None:
    from dashboard.images import heat_panels
    from explain.overlay import colorize

    folder = tmp_path / "explain"
    folder.mkdir()
    heat = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    np.save(folder / "heatmaps.npy", np.stack([heat, 1 - heat])[None].astype(np.float16))
    pd.DataFrame(
        {
            "index": [0, 0],
            "slot": [0, 1],
            "role": ["predicted", "true"],
            "row": [7, 7],
            "class": ["carrera", "targa"],
        }
    ).to_parquet(folder / "regions.parquet")
    image = tmp_path / "car.png"
    pixels = np.full((16, 16, 3), 200, np.uint8)
    Image.fromarray(pixels).save(image)
    explain = ExplainFolder(folder)
    plain = heat_panels(explain, 7, image, alpha=0.0, side=16)
    full = heat_panels(explain, 7, image, alpha=1.0, side=16)
    assert [c for _, c in plain] == [
        "the image",
        "why the model said: carrera",
        "evidence for the true class: targa",
    ]
    assert np.array_equal(plain[1][0], pixels)  # opacity 0: the image alone
    stored = np.asarray(np.load(folder / "heatmaps.npy")[0, 0], dtype=np.float32)
    assert np.abs(full[1][0].astype(int) - colorize(stored).astype(int)).max() <= 1
    assert heat_panels(explain, 8, image, alpha=0.5) == []  # not explained
    assert heat_panels(explain, 7, image, 0.5, side=512)[0][0].shape == (512, 512, 3)


# --- appendices ---------------------------------------------------------------------------------


def test_appendices_are_lettered_in_order_of_appearance() -> None:
    body = [Section("data", "Data", [Paragraphs(["all are listed in Appendix C"])])]
    glossary = Section("g", "Appendix D — How to read this report", [], appendix=True)
    evidence = Section("e", "Appendix E — Evidence files", [], appendix=True)
    skipped = Section("s", "Appendix C — Skipped images", [], appendix=True)
    new_body, apps = letter_appendices(body, [evidence, glossary, skipped])
    assert [a.title for a in apps] == [
        "Appendix A — Skipped images",
        "Appendix B — How to read this report",
        "Appendix C — Evidence files",
    ]
    assert new_body[0].blocks[0].items == ["all are listed in Appendix A"]


def test_a_report_without_the_first_appendices_starts_at_a(synthetic: Path) -> None:
    from reports.content import build_content

    content = build_content(synthetic)
    titles = [a.title for a in content.appendices]
    assert titles == ["Appendix A — How to read this report", "Appendix B — Evidence files"]


# --- numbers ------------------------------------------------------------------------------------


def test_small_shares_never_print_zero() -> None:
    assert fmt.pct_whole(2 / 500) == "<1%"
    assert fmt.pct_whole(0.0) == "0%"
    assert fmt.pct_whole(0.996) == ">99%"
    assert fmt.pct_whole(1.0) == "100%"
    assert fmt.pct_whole(0.126) == "13%"
    counts = np.array([[498, 2], [0, 500]])
    fig = charts.confusion(["a", "b"], counts, counts / counts.sum(1, keepdims=True), share=True)
    cells = [t for row in fig.data[0].text for t in row]
    assert "<1%" in cells and "0%" not in cells and ">99%" in cells


def test_p_values_have_one_format_in_reports_and_dashboard() -> None:
    # Scientific or general formats print p = 7.94e-62; audits.formatting.p_value prints < 0.001.
    bad = re.compile(r"\{[^{}:]+:[+\- ]?\.?\d*[eE]\}|\{[^{}:]+:\.\d+[gG]\}")
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for folder in ("reports", "dashboard")
        for p in (REPO / folder).rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if bad.search(line)
    ]
    assert hits == []


def test_demo_report_prints_no_scientific_p_values() -> None:
    from reports.content import build_content

    text = " ".join(_strings(build_content(_demo_audit())))
    assert not re.search(r"\d(\.\d+)?e-\d", text)


def test_topk_only_where_a_blind_guess_is_unlikely(synthetic: Path) -> None:
    from reports.content import build_content

    assert not topk_worth_showing(3, 6) and topk_worth_showing(3, 9)
    assert not topk_worth_showing(5, 14) and topk_worth_showing(5, 15)

    @dataclasses.dataclass
    class TopK:
        top3: float | None = 0.9
        top5: float | None = 0.95

    assert shown_topk(TopK(), 6) == []
    assert shown_topk(TopK(), 10) == [(3, 0.9)]
    assert shown_topk(TopK(), 20) == [(3, 0.9), (5, 0.95)]
    content = build_content(synthetic)  # 6 classes
    assert not any(f.label.startswith("Top-") for f in content.key_figures)
    assert "Top-3 accuracy" not in " ".join(_strings(_section(content, "Performance")))


# --- charts -------------------------------------------------------------------------------------


def _legend_colours_match(fig: Any) -> None:
    for trace in fig.data:
        if trace.showlegend is False or not trace.name:
            continue
        colour = trace.marker.color
        assert isinstance(colour, str), f"legend '{trace.name}' has one swatch but many colours"


def test_legends_name_one_colour_per_entry() -> None:
    colors = {"a": "#111111", "b": "#222222", "c": "#333333"}
    shift = charts.class_shift(
        {"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.2, "b": 0.3, "c": 0.5}, colors
    )
    _legend_colours_match(shift)
    rows = [
        {"class": k, "recall_a": 0.5, "recall_b": 0.7, "diff": 0.2, "status": ""} for k in colors
    ]
    _legend_colours_match(charts.compare_per_class(rows, colors, "1.0.0", "1.1.0"))


def test_failures_histogram_follows_the_page_filters() -> None:
    from dashboard.pages.failures import correct_confidences, failures_frame, pick

    rng = np.random.default_rng(0)
    n = 400
    label = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, label, rng.integers(0, 3, n))
    names = np.array(["targa", "carrera", "gt"])
    table = pd.DataFrame(
        {
            "row": np.arange(n),
            "label_idx": label,
            "pred_idx": pred,
            "label": names[label],
            "pred": names[pred],
            "confidence": rng.random(n),
            "loss": rng.random(n),
        }
    )
    colour = pd.Series(np.where(rng.random(n) < 0.4, "red", "blue"))
    f = {
        "ranking": "Highest loss",
        "true": ["targa"],
        "pred": [],
        "slice": "colour = red",
        "slices": {"colour": colour},
        "conf": (0.2, 0.9),
        "suspect": False,
        "heat": False,
    }
    fails = failures_frame(table)
    picked = pick(fails, f, {}, {})
    right = correct_confidences(table, fails, f)
    keep = (table["label"] == "targa") & (colour == "red") & table["confidence"].between(0.2, 0.9)
    assert len(picked) == int((keep & (label != pred)).sum()) > 0
    assert len(right) == int((keep & (label == pred)).sum()) > 0
    fig = charts.confidence_histogram(right, picked["confidence"].to_numpy())
    assert [len(t.x) for t in fig.data] == [len(right), len(picked)]


# --- glossary -----------------------------------------------------------------------------------


def test_every_test_name_maps_to_a_glossary_entry() -> None:
    assert set(TEST_NAMES.values()) <= TERMS
    for term in (
        "Kolmogorov–Smirnov (KS) test",
        "Holm correction",
        "Benjamini–Hochberg correction",
        "Fisher's exact test",
        "Confident learning",
        "Suspect label",
        "Failure pattern",
        "MMD² (maximum mean discrepancy)",
        "95% interval (Wilson)",
        "McNemar's test",
    ):
        assert term in TERMS


def _assert_glossary_covers(content: Any) -> None:
    body = " ".join(_strings(content.sections) + _strings(content.summary)).lower()
    named = {term for pattern, term in TEST_NAMES.items() if re.search(pattern, body)}
    assert named, "the report names no test at all"
    glossary = next(a for a in content.appendices if a.id == "appendix-glossary")
    defined = {row[0].text for row in glossary.blocks[0].rows}
    assert named <= defined, named - defined


def test_glossary_defines_every_test_the_synthetic_report_names(synthetic: Path) -> None:
    from reports.content import build_content

    _assert_glossary_covers(build_content(synthetic))


def test_glossary_defines_every_test_the_demo_report_names() -> None:
    from reports.content import build_content

    _assert_glossary_covers(build_content(_demo_audit()))
