"""Section "Performance": overall metrics with intervals, calibration, per class (weakest first),
most-confused pairs and the confusion matrix; Appendix A lists every class of a large model."""

from __future__ import annotations

from typing import Any

from audits.runs.models_audit import ClassMetrics, ConfusedPair, Metrics
from audits.store import Run
from reports.present import fmt
from reports.present.topk import shown_topk
from reports.sections.base import (
    c,
    ci_cell,
    cols,
    count_cell,
    dash_cell,
    pct_cell,
    recall_tone,
)
from reports.sections.confusion import confusion_blocks
from reports.tree import (
    BODY_CLASSES,
    WORST_SHOWN,
    Block,
    Cell,
    Chart,
    Heading,
    Section,
    Table,
)


def _read(run: Run) -> dict[str, Any]:
    """audit.json's metrics block, the number of labelled images, the calibration bins."""
    audit = run.audit
    m = audit.metrics
    return {
        "m": m,
        "n_labelled": m.n_labelled or audit.dataset.n_images,
        # Chart data is plain values (the chart renderers read the stored keys).
        "bins": [b.as_dict() for b in m.calibration.bins] if m.calibration is not None else [],
    }


def _metric_rows(m: Metrics) -> list[list[Cell]]:
    """Accuracy (with its interval), balanced accuracy, macro F1, top-k and calibration error."""
    rows = [
        (
            "Accuracy",
            m.accuracy,
            ci_cell(m.accuracy_ci_low, m.accuracy_ci_high),
            "Share of all held-out images classified correctly.",
        ),
        (
            "Balanced accuracy",
            m.balanced_accuracy,
            dash_cell(),
            "Mean of the per-class recalls: every class counts the same, however many images "
            "it has.",
        ),
        (
            "Macro F1",
            m.macro_f1,
            dash_cell(),
            "Mean per-class F1 (balance of precision and recall).",
        ),
    ]
    n_classes = m.n_classes if m.n_classes is not None else len(m.per_class)
    # top-1 is the accuracy; top-k only where a blind guess of k classes is unlikely (topk).
    for k, value in shown_topk(m.top_k_accuracy, n_classes):
        meaning = f"The true class is among the model's {k} most probable classes."
        rows.append((f"Top-{k} accuracy", value, dash_cell(), meaning))
    meaning = "Average gap between the stated confidence and the actual accuracy (lower is better)."
    rows.append(("Expected calibration error", m.ece, dash_cell(), meaning))
    return [[c(name), pct_cell(value), interval, c(text)] for name, value, interval, text in rows]


def _overall_table(s: dict[str, Any]) -> Table:
    return Table(
        cols(
            ("Metric", "left", "24%"),
            ("Value", "right", "11%"),
            ("95% interval", "right", "17%"),
            "What it means",
        ),
        _metric_rows(s["m"]),
        caption=f"Over {fmt.count(s['n_labelled'])} labelled images. The interval is a Wilson "
        "95% interval: with this many images the true accuracy lies there with 95% confidence. "
        "The stored run gives an interval for the accuracy only.",
    )


def _calibration_chart(s: dict[str, Any]) -> Chart:
    return Chart(
        "chart-calibration",
        "calibration",
        "Calibration: stated confidence against actual accuracy",
        "Images are grouped by the model's confidence; each point is a group's actual "
        "accuracy, plotted against its mean confidence, sized by how many images it holds. "
        "On the diagonal, a stated 80% means right 80% of the time; below it, the model is "
        "over-confident.",
        {"bins": s["bins"], "ece": s["m"].ece},
    )


def per_class_table(per_class: list[ClassMetrics], caption: str) -> Table:
    rows = [
        [
            c(r.class_),
            count_cell(r.support),
            count_cell(r.correct),
            pct_cell(r.recall, tone=recall_tone(r.recall)),
            ci_cell(r.ci_low, r.ci_high),
            pct_cell(r.precision),
            pct_cell(r.f1),
            count_cell(r.predicted),
        ]
        for r in per_class
    ]
    columns = cols(
        ("Class", "left", "27%"),
        ("Images", "right", "9%"),
        ("Correct", "right", "9%"),
        ("Recall", "right", "9%"),
        ("95% CI", "right", "15%"),
        ("Precision", "right", "10.5%"),
        ("F1", "right", "8%"),
        ("Predicted", "right", "12.5%"),
    )
    return Table(columns, rows, caption=caption, css="compact")


def _worst_first(per_class: list[ClassMetrics]) -> list[ClassMetrics]:
    """Classes by recall, lowest first; classes without images (no recall) last."""
    return sorted(
        per_class,
        key=lambda r: (
            not fmt.is_num(r.recall),
            r.recall if fmt.is_num(r.recall) else 0.0,
            r.class_,
        ),
    )


def _recall_chart(worst: list[ClassMetrics], shown: int) -> Chart:
    n = len(worst)
    cut = shown < n
    return Chart(
        "chart-recall",
        "recall_ci",
        "Recall per class, weakest first" + (f" (the {shown} weakest of {n})" if cut else ""),
        "Each dot is the share of a class's images classified correctly (recall); the bar is its "
        "Wilson 95% interval. A wide bar means few images: the class may be better or worse "
        "than the dot suggests." + (f" All {n} classes are in Appendix A." if cut else ""),
        {
            "classes": [r.class_ for r in worst],
            "recall": [r.recall for r in worst],
            "low": [r.ci_low for r in worst],
            "high": [r.ci_high for r in worst],
            "support": [r.support for r in worst],
            "shown": shown,
        },
    )


def _per_class_blocks(per_class: list[ClassMetrics]) -> tuple[list[Block], list[Section]]:
    """The recall chart and table (the weakest classes of a large model), and Appendix A."""
    worst = _worst_first(per_class)
    n = len(per_class)
    shown = worst if n <= BODY_CLASSES else worst[:WORST_SHOWN]
    blocks: list[Block] = [Heading("Per class")]
    if not per_class:
        return blocks, []
    cut = len(shown) < n
    caption = (
        "Weakest classes first. Recall is the share of the class's images classified correctly, "
        "with its Wilson 95% interval; precision is the share of the images predicted as the "
        "class that really are; Predicted counts them."
        + (f" The {len(shown)} weakest of {n} classes; Appendix A lists all." if cut else "")
    )
    blocks += [_recall_chart(worst, len(shown)), per_class_table(shown, caption)]
    if not cut:
        return blocks, []
    appendix = Section(
        "appendix-per-class",
        "Appendix A — Every class",
        [per_class_table(per_class, f"All {n} classes in the model's class order.")],
        appendix=True,
    )
    return blocks, [appendix]


def _pairs_table(pairs: list[ConfusedPair]) -> Table:
    return Table(
        cols(
            ("True class", "left", "34%"),
            ("Predicted as", "left", "34%"),
            ("Images", "right"),
            ("Share of true class", "right"),
        ),
        [[c(p.true), c(p.predicted), count_cell(p.count), pct_cell(p.rate)] for p in pairs],
        caption="The largest confusions, by number of images.",
        css="compact",
    )


def metrics_section(run: Run) -> tuple[Section, list[Section]]:
    """The Performance section and its appendices (A: every class, B: the full matrix)."""
    s = _read(run)
    blocks: list[Block] = [_overall_table(s)]
    if s["bins"]:
        blocks.append(_calibration_chart(s))
    m: Metrics = s["m"]
    class_blocks, appendices = _per_class_blocks(m.per_class)
    blocks += class_blocks
    if m.most_confused:
        blocks += [Heading("Most confused pairs"), _pairs_table(m.most_confused)]
    conf_blocks, conf_appendix = confusion_blocks(run)
    blocks += conf_blocks
    if conf_appendix is not None:
        appendices.append(conf_appendix)
    section = Section(
        "metrics",
        "Performance",
        blocks,
        lead="How often the model is right overall and for each class, with how sure we can be.",
    )
    return section, appendices
