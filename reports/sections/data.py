"""Section "Data": the held-out set's size, class balance (against training) and skipped images."""

from __future__ import annotations

from typing import Any

from audits.runs.base import Skipped
from audits.runs.models_audit import Imbalance
from audits.store import Run
from reports.present import fmt, narrative
from reports.sections.base import kv, more
from reports.sections.skipped import read_skipped, skipped_table
from reports.tree import (
    BODY_CLASSES,
    LIST_ROWS,
    Block,
    Chart,
    Heading,
    KeyValue,
    KeyValues,
    Paragraphs,
    Section,
)


def _side(counts: dict[str, int], largest: Any, smallest: Any, ratio: Any) -> dict[str, Any]:
    """The largest and smallest class of one set, with their image counts, and the ratio."""
    return {
        "largest": (largest, counts.get(largest)),
        "smallest": (smallest, counts.get(smallest)),
        "ratio": ratio,
    }


def _balance(imb: Imbalance | None) -> dict[str, Any]:
    """metrics.imbalance: class counts of both sets, their extremes, the thin classes."""
    if imb is None:
        empty = _side({}, None, None, None)
        return {
            "counts": {},
            "train": None,
            "test_side": empty,
            "train_side": empty,
            "min_support": None,
            "too_few": [],
        }
    train = imb.train_counts or None
    return {
        "counts": imb.test_counts,
        "train": train,
        "test_side": _side(imb.test_counts, imb.largest, imb.smallest, imb.ratio),
        "train_side": _side(train or {}, imb.train_largest, imb.train_smallest, imb.train_ratio),
        "min_support": imb.min_support,
        "too_few": imb.too_few,
    }


def _read(run: Run) -> dict[str, Any]:
    """audit.json's metrics.imbalance block, class and image counts, and the skipped images."""
    audit = run.audit
    return {
        "summary": narrative.data_summary(audit),
        "n_classes": audit.metrics.n_classes,
        "n_images": audit.dataset.n_images,
        **_balance(audit.metrics.imbalance),
        "skipped": read_skipped(run),
        "n_skipped": audit.dataset.n_skipped,
    }


def _class_size(name_count: tuple[Any, Any]) -> str:
    name, n = name_count
    return f"{name} ({fmt.count(n)} images)" if name is not None else "n/a"


def _ratio(x: Any) -> str:
    return f"{fmt.num(x, 1)} : 1" if fmt.is_num(x) else "n/a"


def _balance_rows(s: dict[str, Any]) -> list[KeyValue]:
    counts, train, too_few = s["counts"], s["train"], s["too_few"]
    side = s["test_side"]
    listed = ", ".join(too_few[:12]) + (" …" if len(too_few) > 12 else "")
    rows = [
        kv("Classes", fmt.count(s["n_classes"] or len(counts) or None)),
        kv("Images audited", fmt.count(s["n_images"])),
        kv("Largest class", _class_size(side["largest"])),
        kv("Smallest class", _class_size(side["smallest"])),
        kv("Imbalance (largest ÷ smallest)", _ratio(side["ratio"])),
        kv(
            f"Classes under {fmt.count(s['min_support'])} images",
            f"{len(too_few)}: {listed}" if too_few else "none",
        ),
    ]
    if train:
        side = s["train_side"]
        rows += [
            kv("Training: largest class", _class_size(side["largest"])),
            kv("Training: smallest class", _class_size(side["smallest"])),
            kv("Training imbalance", _ratio(side["ratio"])),
        ]
    return rows


def _balance_chart(s: dict[str, Any]) -> Chart:
    counts, train = s["counts"], s["train"]
    order = sorted(counts, key=lambda k: (-(counts[k] or 0), str(k)))
    n = len(order)
    caption = (
        "Each bar is one class, largest first; the bar's length is its share of the held-out set"
        + (" (dark) beside its share of the training set (light)" if train else "")
        + ". A class far below the others gets a wide interval: its numbers are less certain."
    )
    if n > BODY_CLASSES:
        caption += (
            f" With {n} classes the bars are not labelled; the largest and smallest are named, "
            "and every count is in the per-class table."
        )
    data = {
        "classes": [str(k) for k in order],
        "test": [int(counts[k] or 0) for k in order],
        "train": [int((train or {}).get(k) or 0) for k in order] if train else None,
        "min_support": s["min_support"],
    }
    return Chart("chart-imbalance", "imbalance", "Images per class", caption, data)


def _skipped_blocks(skipped: list[Skipped], n_skipped: int) -> list[Block]:
    if skipped:
        shown = skipped[:LIST_ROWS]
        caption = (
            f"{fmt.count(n_skipped)} image(s) could not be decoded and are not in any number of "
            "this report." + more(len(skipped), len(shown), "all are listed in Appendix C")
        )
        return [Heading("Skipped images"), skipped_table(shown, caption)]
    text = (
        f"{fmt.count(n_skipped)} image(s) were skipped; the run does not list them."
        if n_skipped
        else "No image was skipped: every listed image could be decoded."
    )
    return [Heading("Skipped images"), Paragraphs([text])]


def data_section(run: Run) -> Section:
    """The held-out set: summary, class balance, the balance chart, skipped images."""
    s = _read(run)
    blocks: list[Block] = [Paragraphs(s["summary"]), KeyValues(_balance_rows(s))]
    if s["counts"]:
        blocks.append(_balance_chart(s))
    blocks += _skipped_blocks(s["skipped"], s["n_skipped"])
    return Section(
        "data",
        "Data",
        blocks,
        lead="What the model was tested on, and whether some classes have too few images to judge.",
    )
