"""Section "Failures explained (Grad-CAM)": what explain/ stored about the misclassified images
(counts, one sentence per confused pair, region scores, overlays)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from audits.errors import AuditError
from audits.runs import ExplainFolder, StageError
from audits.runs.models_explain import ExplainBlock, ExplainSummary, PairSummary
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
_FAILURE = ("row", "path", "label", "pred", "confidence", "loss", "overlay")
#: regions.parquet columns the failure rows need (an older or damaged file: no rows).
_REGION_COLUMNS = {"index", "kind", "role", "roi_energy", *_FAILURE}


def _failure_rows(regions: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One row per explained failure (slots merged), in the stored order (highest loss first)."""
    if regions is None or not set(regions.columns) >= _REGION_COLUMNS:
        return []
    kind = regions["kind"]
    failures = regions[kind.isna() | (kind == "failure")]
    # Python values, and None for NaN/NA, as the cells and formatters expect.
    failures = failures.astype(object).where(failures.notna(), None)
    by_index: dict[Any, dict[str, Any]] = {}
    for r in failures.to_dict("records"):
        entry = by_index.setdefault(
            r["index"], {**{k: r[k] for k in _FAILURE}, "energy_pred": None, "energy_true": None}
        )
        entry["energy_pred" if r["role"] == "predicted" else "energy_true"] = r["roi_energy"]
    return list(by_index.values())


def _unless_damaged(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except AuditError:
        return None


def explain_files(
    folder: ExplainFolder | None,
) -> tuple[ExplainSummary | None, pd.DataFrame | None]:
    """explain/summary.json and regions.parquet; None for a missing or damaged file (an optional
    result must not stop the export: audit.json's compact copy of the summary serves)."""
    if folder is None:
        return None, None
    return _unless_damaged(lambda: folder.summary), _unless_damaged(lambda: folder.regions)


def _read(run: Run) -> dict[str, Any] | str:
    """explain/summary.json over audit.json's compact copy, and regions.parquet's failures;
    the reason the section is left out when there is neither."""
    block, folder = run.audit.explain, run.explain
    summary, regions = explain_files(folder)
    info = summary if summary is not None else block
    if not isinstance(info, ExplainBlock):
        if isinstance(block, StageError):
            return f"Grad-CAM failed when the audit ran: {block.error}"
        return "Grad-CAM was not run for this audit (python -m audits explain RUN adds it)."
    return {"info": info, "failures": _failure_rows(regions), "folder": folder}


def _intro(info: ExplainBlock) -> str:
    return (
        f"Grad-CAM ({info.method}, layer {fmt.text(info.layer)}) explained "
        f"{fmt.count(info.n_explained)} of the {fmt.count(info.n_failures)} misclassified images"
        + (" (capped; the ones with the highest loss or a sample)" if info.capped else "")
        + f", and {fmt.count(info.n_baseline)} correctly classified images as a baseline."
    )


def _pairs_table(pairs: list[PairSummary], threshold: Any) -> Table:
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
            c(p.true),
            c(p.predicted),
            count_cell(p.n_failures),
            count_cell(p.n_explained),
            pct_cell(p.confidence_median),
            pct_cell(p.energy_median),
            c(fmt.count(p.below_threshold) if p.n_with_box else "n/a"),
            pct_cell(p.true_class_energy_median),
            pct_cell(p.baseline_energy_median),
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


def _overlays(folder: ExplainFolder | None, failures: list[dict[str, Any]]) -> list[Figure]:
    """The stored overlay strips of the first failures (any overlays when no region scores)."""
    figures: list[Figure] = []
    if folder is None:
        return figures
    for f in failures:
        # regions.parquet names the overlay only for the failures that have one.
        p = folder.overlay(f["row"]) if f["overlay"] is not None else None
        if p is None:
            continue
        title = (
            f"true {fmt.text(f['label'])} · predicted {fmt.text(f['pred'])} "
            f"({fmt.pct(f['confidence'])})"
        )
        figures.append(Figure([str(p)], [title, fmt.text(f["path"])]))
        if len(figures) >= MAX_OVERLAYS:
            break
    if not figures and not failures:
        by_name = sorted(folder.overlays.items(), key=lambda item: item[1].name)
        for row, p in by_name[:MAX_OVERLAYS]:
            figures.append(Figure([str(p)], [f"predictions row {row}"]))
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
    info: ExplainBlock = s["info"]
    blocks: list[Block] = [Paragraphs([_intro(info)])]
    sentences = [sentence_case(p.sentence) + "." for p in info.pairs]
    if sentences:
        blocks.append(Bullets(sentences))
    if info.pairs:
        blocks.append(_pairs_table(info.pairs, info.energy_threshold))
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
