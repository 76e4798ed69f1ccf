"""Section "Failures explained (Grad-CAM)": what explain/ stored about the misclassified images
(counts, one sentence per confused pair, region scores, overlays)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audits.store import Run
from reports.present import fmt
from reports.sections.base import (
    Omitted,
    c,
    cols,
    count_cell,
    more,
    pct_cell,
    sentence_case,
)
from reports.sections.reading import (
    error_of,
    inside,
    pick,
    plain,
    read_json,
    read_parquet_records,
    records,
)
from reports.tree import (
    MAX_OVERLAYS,
    REGION_ROWS,
    Block,
    Bullets,
    Figure,
    Gallery,
    Heading,
    Paragraphs,
    Section,
    Table,
)

NAME = "Failures explained (Grad-CAM)"
_INFO = ("method", "layer", "n_failures", "n_explained", "n_baseline", "capped")
_INFO += ("energy_threshold",)
_PAIR = ("sentence", "true", "predicted", "n_failures", "n_explained", "confidence_median")
_PAIR += ("energy_median", "below_threshold", "n_with_box", "true_class_energy_median")
_PAIR += ("baseline_energy_median",)
_FAILURE = ("row", "path", "label", "pred", "confidence", "loss", "overlay")


def _failure_rows(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per explained failure (slots merged), in the stored order (highest loss first)."""
    by_index: dict[Any, dict[str, Any]] = {}
    for r in regions:
        if r.get("kind") not in (None, "failure"):
            continue
        entry = by_index.setdefault(
            r.get("index", len(by_index)),
            {**{k: r.get(k) for k in _FAILURE}, "energy_pred": None, "energy_true": None},
        )
        entry["energy_pred" if r.get("role") == "predicted" else "energy_true"] = r.get(
            "roi_energy"
        )
    return list(by_index.values())


def _read(run: Run) -> dict[str, Any] | str:
    """explain/summary.json over audit.json's compact copy, and regions.parquet's failures;
    the reason the section is left out when there is neither."""
    block = run.meta.get("explain")
    err = error_of(block)
    summary = read_json(run.path / "explain" / "summary.json")
    info: dict[str, Any] = dict(block) if isinstance(block, dict) and not err else {}
    if isinstance(summary, dict):
        info.update(summary)
    if not info:
        if err:
            return f"Grad-CAM failed when the audit ran: {err}"
        return "Grad-CAM was not run for this audit (python -m audits explain RUN adds it)."
    regions = read_parquet_records(run.path / "explain" / "regions.parquet") or []
    regions = [{k: plain(v) for k, v in r.items()} for r in regions]
    return {
        **pick(info, *_INFO),
        "pairs": records(info.get("pairs"), *_PAIR),
        "failures": _failure_rows(regions),
        "folder": run.path / "explain",
    }


def _intro(s: dict[str, Any]) -> str:
    return (
        f"Grad-CAM ({fmt.text(s['method'])}, layer {fmt.text(s['layer'])}) explained "
        f"{fmt.count(s['n_explained'])} of the {fmt.count(s['n_failures'])} misclassified images"
        + (" (capped; the ones with the highest loss or a sample)" if s["capped"] else "")
        + f", and {fmt.count(s['n_baseline'])} correctly classified images as a baseline."
    )


def _pairs_table(pairs: list[dict[str, Any]], threshold: Any) -> Table:
    columns = cols(
        ("True class", "left", "19%"),
        ("Predicted as", "left", "15%"),
        ("Failures", "right", "9%"),
        ("Explained", "right", "10%"),
        ("Median conf.", "right", "9%"),
        ("In box, median", "right", "9%"),
        (f"Below {fmt.pct(threshold, 0)}", "right", "8%"),
        ("True-class map in box", "right", "10%"),
        ("Correct images in box", "right", "11%"),
    )
    rows = [
        [
            c(p["true"]),
            c(p["predicted"]),
            count_cell(p["n_failures"]),
            count_cell(p["n_explained"]),
            pct_cell(p["confidence_median"]),
            pct_cell(p["energy_median"]),
            c(fmt.count(p["below_threshold"]) if p["n_with_box"] else "n/a"),
            pct_cell(p["true_class_energy_median"]),
            pct_cell(p["baseline_energy_median"]),
        ]
        for p in pairs
    ]
    return Table(
        columns,
        rows,
        caption="Per confused pair. In box: the share of the heat-map for the predicted class "
        "that falls inside the image's region box (the part that decides the class, when the "
        "data gives one). A low share means the model decided on something else, such as "
        "the background. Compare with the true class's map and with correctly classified "
        "images of the same class.",
        css="compact",
    )


def _overlays(folder: Path, failures: list[dict[str, Any]]) -> list[Figure]:
    """The stored overlay strips of the first failures (any overlays when no region scores)."""
    figures: list[Figure] = []
    for f in failures:
        p = inside(folder, f["overlay"]) if isinstance(f["overlay"], str) else None
        if p is None:
            continue
        title = (
            f"true {fmt.text(f['label'])} · predicted {fmt.text(f['pred'])} "
            f"({fmt.pct(f['confidence'])})"
        )
        figures.append(Figure([str(p)], [title, fmt.text(f["path"])]))
        if len(figures) >= MAX_OVERLAYS:
            break
    if not figures and not failures and (folder / "overlays").is_dir():
        for p in sorted((folder / "overlays").glob("*.png"))[:MAX_OVERLAYS]:
            figures.append(Figure([str(p)], [f"predictions row {p.stem}"]))
    return figures


def _regions_table(failures: list[dict[str, Any]]) -> Table:
    shown = failures[:REGION_ROWS]
    columns = cols(
        ("Image", "left", "26%"),
        ("True class", "left", "18%"),
        ("Predicted as", "left", "18%"),
        ("Confidence", "right"),
        ("Predicted map in box", "right"),
        ("True map in box", "right"),
    )
    rows = [
        [
            c(f["path"], mono=True),
            c(f["label"]),
            c(f["pred"]),
            pct_cell(f["confidence"]),
            pct_cell(f["energy_pred"]),
            pct_cell(f["energy_true"]),
        ]
        for f in shown
    ]
    return Table(
        columns,
        rows,
        caption="Region scores of the explained failures: the share of each heat-map inside the "
        "region box." + more(len(failures), len(shown), "all are in the JSON export"),
        css="compact",
    )


def explain_section(run: Run) -> Section | Omitted:
    """The Grad-CAM section, or why it is left out (not run, or failed)."""
    s = _read(run)
    if isinstance(s, str):
        return Omitted(NAME, s)
    blocks: list[Block] = [Paragraphs([_intro(s)])]
    sentences = [
        sentence_case(str(p["sentence"])) + "."
        for p in s["pairs"]
        if isinstance(p["sentence"], str)
    ]
    if sentences:
        blocks.append(Bullets(sentences))
    if s["pairs"]:
        blocks.append(_pairs_table(s["pairs"], s["energy_threshold"]))
    failures = s["failures"]
    figures = _overlays(s["folder"], failures)
    if figures:
        caption = (
            "Each strip shows a misclassified test image, then where the model looked to "
            "predict the wrong class, then where it finds evidence for the true class (warm "
            "colours weigh most; the white box is the region that decides the class)."
            + more(len(failures), len(figures), "the JSON export lists every explained image")
        )
        blocks += [Heading("Failures, highest loss first"), Gallery(figures, caption)]
    if failures:
        blocks.append(_regions_table(failures))
    lead = "Where the model looked when it got an image wrong."
    return Section("failures", NAME, blocks, lead=lead)
