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
from reports.present.pair_words import below_header, pair_sentence, rule, share
from reports.sections.base import (
    Omitted,
    c,
    cols,
    count_cell,
    more,
    pct_cell,
)
from reports.tree import (
    MAX_OVERLAYS,
    REGION_ROWS,
    Block,
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
        unsupported = (run.audit.unsupported_stages or {}).get("explain")
        if unsupported:
            return f"Grad-CAM is not available for this model: {unsupported}"
        return "Grad-CAM was not run for this audit (python -m audits explain RUN adds it)."
    return {"info": info, "failures": _failure_rows(regions), "folder": folder}


def _intro(info: ExplainBlock) -> str:
    return (
        f"Grad-CAM ({info.method}, layer {fmt.text(info.layer)}) explained "
        f"{fmt.count(info.n_explained)} of the {fmt.count(info.n_failures)} misclassified images"
        + (" (capped; the ones with the highest loss or a sample)" if info.capped else "")
        + f", and {fmt.count(info.n_baseline)} correctly classified images as a baseline."
    )


#: Confused pairs shown first with their heat-maps, and images per pair.
TOP_PAIRS = 3
PER_PAIR = 2
#: Pairs in the summary table (the rest are counted under it).
TABLE_PAIRS = 8


_HOW_TO_READ = (
    "Each strip shows a misclassified test image, then where the model looked when it chose "
    "the wrong class, then where it finds evidence for the true class (warm colours weigh "
    "most). The white box is the data set's region box, the part of the image that tells "
    "the classes apart; a model that decides for the right reason puts its heat there."
)


def _pairs_table(pairs: list[PairSummary], threshold: Any) -> Table:
    """One short row per confused pair, largest first, in plain words."""
    shown = pairs[:TABLE_PAIRS]
    columns = cols(
        ("True class", "left", "18%"),
        ("Read as", "left", "16%"),
        ("Failures", "right", "11%"),
        (below_header(threshold), "right", "19%"),
        ("Heat in box, failures", "right", "18%"),
        ("Heat in box, correct images", "right", "18%"),
    )
    rows = [
        [
            c(p.true),
            c(p.predicted),
            count_cell(p.n_failures),
            c(
                f"{fmt.count(p.below_threshold)} of {fmt.count(p.n_with_box)}"
                if p.n_with_box
                else "no box"
            ),
            c(share(p.energy_median)),
            c(share(p.baseline_energy_median)),
        ]
        for p in shown
    ]
    rest = pairs[len(shown) :]
    tail = (
        f" {len(rest)} smaller pairs ({fmt.count(sum(p.n_failures for p in rest))} failures) "
        "are in the JSON export."
        if rest
        else ""
    )
    return Table(
        columns,
        rows,
        caption="Per confused pair. Heat mostly outside box: the images with "
        + rule(threshold)
        + ". Heat in box: the median share of the heat-map for the predicted class inside the "
        "region box, for the failures and for correctly classified images of the same true "
        "class." + tail,
        css="compact",
    )


def _strip(folder: ExplainFolder, f: dict[str, Any]) -> Figure | None:
    # regions.parquet names the overlay only for the failures that have one.
    p = folder.overlay(f["row"]) if f["overlay"] is not None else None
    if p is None:
        return None
    title = (
        f"true {fmt.text(f['label'])} · read as {fmt.text(f['pred'])} "
        f"({fmt.pct(f['confidence'])} sure) · {fmt.text(f['path'])}"
    )
    return Figure([str(p)], [title])


def _top_pairs(
    folder: ExplainFolder | None, pairs: list[PairSummary], failures: list[dict[str, Any]]
) -> list[Block]:
    """The largest confused pairs first: one plain sentence and full-width heat-maps each."""
    blocks: list[Block] = []
    for p in pairs[:TOP_PAIRS]:
        mine = [f for f in failures if f["label"] == p.true and f["pred"] == p.predicted]
        figures = [x for f in mine if folder is not None and (x := _strip(folder, f))]
        blocks.append(Heading(f"{fmt.text(p.true)} read as {fmt.text(p.predicted)}"))
        blocks.append(Paragraphs([pair_sentence(p)]))
        if figures:
            blocks.append(Gallery(figures[:PER_PAIR], columns=1))
    return blocks


def _overlays(folder: ExplainFolder | None, failures: list[dict[str, Any]]) -> list[Figure]:
    """Overlay strips when there are no region scores to pick them by pair."""
    if folder is None or failures:
        return []
    by_name = sorted(folder.overlays.items(), key=lambda item: item[1].name)
    return [Figure([str(p)], [f"predictions row {row}"]) for row, p in by_name[:MAX_OVERLAYS]]


def _regions_table(failures: list[dict[str, Any]]) -> Table:
    shown = failures[:REGION_ROWS]
    columns = cols(
        ("Image", "left", "26%"),
        ("True class", "left", "18%"),
        ("Predicted as", "left", "18%"),
        ("Confidence", "right"),
        ("Heat in box, read-as class", "right"),
        ("Heat in box, true class", "right"),
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
        caption="The explained failures, highest loss first: the share of each heat-map "
        "inside the region box." + more(len(failures), len(shown), "all are in the JSON export"),
        css="compact",
    )


def explain_section(run: Run) -> Section | Omitted:
    """The Grad-CAM section, or why it is left out (not run, or failed)."""
    s = _read(run)
    if isinstance(s, str):
        return Omitted(NAME, s)
    info: ExplainBlock = s["info"]
    failures, folder = s["failures"], s["folder"]
    pairs = sorted(info.pairs, key=lambda p: -p.n_failures)  # stable: stored order on ties
    blocks: list[Block] = [Paragraphs([_intro(info), _HOW_TO_READ])]
    blocks += _top_pairs(folder, pairs, failures)
    if pairs:
        blocks += [Heading("Every confused pair"), _pairs_table(pairs, info.energy_threshold)]
    figures = _overlays(folder, failures)
    if figures:
        blocks.append(Gallery(figures, "Stored heat-map overlays.", columns=1))
    if failures:
        blocks.append(_regions_table(failures))
    lead = "Where the model looked when it got an image wrong, largest confusions first."
    return Section("failures", NAME, blocks, lead=lead)
