"""The sections of a client report, each built from stored results only.

A builder returns a ``Section`` (or ``None`` with the reason it is left out); numbers are
formatted with ``reports.present.fmt`` and sentences come from ``reports.present.narrative`` where the dashboard
says the same thing. Nothing is recomputed: only chosen, ordered and formatted.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from audits.related import RunBundle
from audits.store import Run
from reports.present import fmt, narrative
from reports.tree import (
    BODY_CLASSES,
    FULL_MATRIX_MAX,
    LIST_ROWS,
    MAX_OVERLAYS,
    REGION_ROWS,
    SUB_MATRIX_MAX,
    WORST_SHOWN,
    Block,
    Bullets,
    Callout,
    Cell,
    Chart,
    Column,
    Figure,
    Gallery,
    Heading,
    KeyValues,
    Paragraphs,
    Section,
    Table,
    c,
    cell_text,
    cols,
    date_text,
    dicts,
    dig,
    error_of,
    inside,
    kv,
    more,
    plain,
    read_json,
    recall_tone,
    safe_call,
    sha256_file,
)

# ---------------------------------------------------------------------------------------------
# sections


def versioning_section(run: Run, b: RunBundle) -> Section:
    meta = run.meta
    model, data, aud, dev = (meta.get(k) or {} for k in ("model", "dataset", "auditor", "device"))
    timings = meta.get("timings") or {}
    size = dig(model, "input", "size")
    size_text = f"{size[0]} × {size[1]} px" if isinstance(size, list) and len(size) == 2 else "n/a"
    classes = model.get("classes")
    n_classes = dig(meta, "metrics", "n_classes") or (
        len(classes) if isinstance(classes, list) else None
    )
    model_rows = [
        kv("Model name", model.get("name")),
        kv("Model version", model.get("version")),
        kv("Weights sha256", model.get("weights_sha256"), mono=True),
        kv("Model code commit", model.get("code_commit"), mono=True),
        kv("Architecture", model.get("architecture")),
        kv("Classes", fmt.count(n_classes)),
        kv("Input", f"{size_text}, {fmt.text(dig(model, 'input', 'channels'))} channel(s)"),
        kv("Grad-CAM layer", model.get("target_layer")),
        kv("Model folder", model.get("dir"), mono=True),
    ]
    if model.get("training_manifest"):
        model_rows.append(kv("Training manifest", model.get("training_manifest"), mono=True))
    data_rows = [
        kv("Held-out fingerprint", data.get("fingerprint"), mono=True),
        kv(
            "Frozen", "yes" if data.get("frozen") else "no — nothing proves the set stayed the same"
        ),
        kv("Held-out set", data.get("path"), mono=True),
        kv("Format", data.get("kind")),
        kv("Images listed", fmt.count(data.get("n_listed"))),
        kv("Images audited", fmt.count(data.get("n_images"))),
        kv("Images skipped", fmt.count(data.get("n_skipped"))),
        kv("Metadata columns", ", ".join(map(str, data.get("metadata_columns") or [])) or "none"),
    ]
    device = ", ".join(str(x) for x in (dev.get("type"), dev.get("name")) if x not in (None, ""))
    run_rows = [
        kv("Run id", run.run_id, mono=True),
        kv("Date of the audit", date_text(meta.get("created"))),
        kv("Auditor version", aud.get("version")),
        kv("Auditor commit", aud.get("commit"), mono=True),
        kv("Device", device or "n/a"),
        kv("PyTorch", dev.get("torch")),
        kv("Mixed precision", dev.get("amp")),
        kv(
            "Inference time",
            f"{fmt.num(timings.get('inference_s'), 1)} s "
            f"({fmt.count(round(timings['images_per_s'])) if fmt.is_num(timings.get('images_per_s')) else 'n/a'} images/s)",
        ),  # fmt: skip
    ]
    # Related runs join the audit table: a table of their own spilled onto a page of its own.
    if b.drift is not None:
        run_rows.append(kv("Drift run in this report", b.drift.run_id, mono=True))
    if b.comparison is not None:
        run_rows.append(kv("Comparison in this report", b.comparison.run_id, mono=True))
    if b.previous is not None:
        run_rows.append(kv("Previous version's audit", b.previous.run_id, mono=True))
    blocks: list[Block] = [
        Heading("Model"),
        KeyValues(model_rows),
        Heading("Held-out data"),
        KeyValues(data_rows),
        Heading("Audit"),
        KeyValues(run_rows),
    ]
    return Section(
        "versioning",
        "What this report describes",
        blocks,
        lead="The exact model, code and data the numbers belong to. A different weights file, "
        "commit or held-out fingerprint is a different audit.",
    )


def data_section(run: Run) -> Section:
    meta = run.meta
    m = meta.get("metrics") or {}
    imb = m.get("imbalance") or {}
    counts = imb.get("test_counts") or {}
    train = imb.get("train_counts") or None
    largest, smallest = imb.get("largest"), imb.get("smallest")
    blocks: list[Block] = [Paragraphs(safe_call(lambda: narrative.data_summary(meta), []))]
    rows = [
        kv("Classes", fmt.count(m.get("n_classes") or len(counts) or None)),
        kv("Images audited", fmt.count(dig(meta, "dataset", "n_images"))),
        kv("Largest class", f"{largest} ({fmt.count(counts.get(largest))} images)" if largest is not None else "n/a"),
        kv("Smallest class", f"{smallest} ({fmt.count(counts.get(smallest))} images)" if smallest is not None else "n/a"),
        kv("Imbalance (largest ÷ smallest)", f"{fmt.num(imb.get('ratio'), 1)} : 1" if fmt.is_num(imb.get("ratio")) else "n/a"),
    ]  # fmt: skip
    too_few = [str(x) for x in imb.get("too_few") or []]
    rows.append(
        kv(
            f"Classes under {fmt.count(imb.get('min_support'))} images",
            f"{len(too_few)}: " + ", ".join(too_few[:12]) + (" …" if len(too_few) > 12 else "")
            if too_few
            else "none",
        )
    )
    if train:
        tl, ts = imb.get("train_largest"), imb.get("train_smallest")
        rows += [
            kv("Training: largest class", f"{tl} ({fmt.count(train.get(tl))} images)" if tl is not None else "n/a"),
            kv("Training: smallest class", f"{ts} ({fmt.count(train.get(ts))} images)" if ts is not None else "n/a"),
            kv("Training imbalance", f"{fmt.num(imb.get('train_ratio'), 1)} : 1" if fmt.is_num(imb.get("train_ratio")) else "n/a"),
        ]  # fmt: skip
    blocks.append(KeyValues(rows))
    if counts:
        order = sorted(counts, key=lambda k: (-(counts[k] or 0), str(k)))
        n = len(order)
        blocks.append(
            Chart(
                "chart-imbalance",
                "imbalance",
                "Images per class",
                "Each bar is one class, largest first; the bar's length is its share of the "
                "held-out set"
                + (" (dark) beside its share of the training set (light)" if train else "")
                + ". A class far below the others gets a wide interval: its numbers are less "
                "certain."
                + (
                    f" With {n} classes the bars are not labelled; the largest and smallest are "
                    "named, and every count is in the per-class table."
                    if n > BODY_CLASSES
                    else ""
                ),  # fmt: skip
                {
                    "classes": [str(k) for k in order],
                    "test": [int(counts[k] or 0) for k in order],
                    "train": [int((train or {}).get(k) or 0) for k in order] if train else None,
                    "min_support": imb.get("min_support"),
                },
            )
        )
    skipped = dicts(meta.get("skipped"))
    n_skipped = dig(meta, "dataset", "n_skipped", default=len(skipped))
    blocks.append(Heading("Skipped images"))
    if skipped:
        shown = skipped[:LIST_ROWS]
        blocks.append(
            Table(
                cols(("Image", "left", "62%"), "Reason"),
                [[c(s.get("path"), mono=True), c(s.get("reason"))] for s in shown],
                caption=f"{fmt.count(n_skipped)} image(s) could not be decoded and are not in any "
                "number of this report."
                + more(len(skipped), len(shown), "all are listed in Appendix C"),
            )
        )
    else:
        blocks.append(
            Paragraphs(
                [f"{fmt.count(n_skipped)} image(s) were skipped; the run does not list them."
                 if n_skipped else "No image was skipped: every listed image could be decoded."]
            )
        )  # fmt: skip
    return Section(
        "data",
        "Data",
        blocks,
        lead="What the model was tested on, and whether some classes have too few images to judge.",
    )


def _metric_rows(m: dict[str, Any]) -> list[list[Cell]]:
    topk = m.get("top_k_accuracy") or {}
    rows = [
        ["Accuracy", pct_cell(m.get("accuracy")), ci_cell(m.get("accuracy_ci_low"), m.get("accuracy_ci_high")),
         "Share of all held-out images labelled correctly."],
        ["Balanced accuracy", pct_cell(m.get("balanced_accuracy")), c("—", tone="muted"),
         "Mean of the per-class recalls: every class counts the same, however many images it has."],
        ["Macro F1", pct_cell(m.get("macro_f1")), c("—", tone="muted"),
         "Mean per-class F1 (balance of precision and recall)."],
    ]  # fmt: skip
    for k in sorted(topk, key=lambda s: int(s) if str(s).isdigit() else 99):
        if str(k) == "1":
            continue  # top-1 is the accuracy
        rows.append(
            [f"Top-{k} accuracy", pct_cell(topk[k]), c("—", tone="muted"),
             f"The true class is among the model's {k} most probable classes."]
        )  # fmt: skip
    rows.append(
        ["Expected calibration error", pct_cell(m.get("ece")), c("—", tone="muted"),
         "Average gap between the stated confidence and the actual accuracy (lower is better)."]
    )  # fmt: skip
    return [[x if isinstance(x, Cell) else c(x) for x in row] for row in rows]


def pct_cell(x: Any) -> Cell:
    return c(fmt.pct(x))


def ci_cell(low: Any, high: Any) -> Cell:
    return c(fmt.ci(low, high))


def per_class_table(per_class: list[dict[str, Any]], caption: str) -> Table:
    rows = []
    for r in per_class:
        tone = recall_tone(r.get("recall"))
        rows.append(
            [
                c(r.get("class")),
                c(fmt.count(r.get("support"))),
                c(fmt.count(r.get("correct"))),
                c(fmt.pct(r.get("recall")), tone=tone),
                c(fmt.ci(r.get("ci_low"), r.get("ci_high"))),
                c(fmt.pct(r.get("precision"))),
                c(fmt.pct(r.get("f1"))),
                c(fmt.count(r.get("predicted"))),
            ]
        )
    return Table(
        cols(
            ("Class", "left", "27%"),
            ("Images", "right", "9%"),
            ("Correct", "right", "9%"),
            ("Recall", "right", "9%"),
            ("95% CI", "right", "15%"),
            ("Precision", "right", "10.5%"),
            ("F1", "right", "8%"),
            ("Predicted", "right", "12.5%"),
        ),
        rows,
        caption=caption,
        css="compact",
    )


def _worst_first(per_class: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Classes by recall, lowest first; classes without images (no recall) last."""
    return sorted(
        per_class,
        key=lambda r: (
            not fmt.is_num(r.get("recall")),
            r.get("recall") if fmt.is_num(r.get("recall")) else 0.0,
            str(r.get("class")),
        ),
    )


def _matrix_table(
    labels: list[str], matrix: list[list[Any]], normalized: Any, idx: list[int], caption: str
) -> Table:
    """A confusion (sub-)matrix as a shaded table; columns are numbered, rows named."""
    columns = [Column("True class \\ predicted", "left", "30%")] + [
        Column(str(j + 1), "right") for j in range(len(idx))
    ]
    rows = []
    for a, i in enumerate(idx):
        row = [c(f"{a + 1}  {labels[i]}")]
        for b, j in enumerate(idx):
            n = dig(matrix, i, j, default=0)
            rate = dig(normalized, i, j) if normalized is not None else None
            shade = float(rate) if fmt.is_num(rate) else None
            tone = "diag" if a == b else ("bad" if n else "muted")
            row.append(Cell(fmt.count(n) if n else "·", shade=shade if n else None, tone=tone))
        rows.append(row)
    # A small matrix keeps square-ish cells instead of stretching across the page.
    width = f"{min(100, 30 + 7 * len(idx))}%"
    return Table(columns, rows, caption=caption, css="matrix", width=width)


def _confusion_blocks(m: dict[str, Any]) -> tuple[list[Block], Section | None]:
    conf = m.get("confusion") or {}
    labels = [str(x) for x in conf.get("labels") or []]
    matrix = conf.get("matrix")
    normalized = conf.get("normalized")
    if not labels or not isinstance(matrix, list):
        return [Paragraphs(["The run stores no confusion matrix."])], None
    n = len(labels)
    blocks: list[Block] = [Heading("Confusion matrix")]
    how = (
        "Rows are true classes, columns the class the model predicted (numbered as the rows). "
        "Each cell counts images; the diagonal (green) is correct, red cells are confusions, "
        "darker when a larger share of the true class goes there."
    )
    if n <= FULL_MATRIX_MAX:
        blocks.append(_matrix_table(labels, matrix, normalized, list(range(n)), how))
        return blocks, None
    # The most-confused sub-matrix: the classes of the largest confusions, in that order.
    chosen: list[int] = []
    index = {name: i for i, name in enumerate(labels)}
    for p in dicts(m.get("most_confused")):
        for name in (p.get("true"), p.get("predicted")):
            i = index.get(str(name))
            if i is not None and i not in chosen and len(chosen) < SUB_MATRIX_MAX:
                chosen.append(i)
    if chosen:
        blocks.append(
            _matrix_table(
                labels, matrix, normalized, chosen,
                f"The {len(chosen)} classes involved in the largest confusions, out of {n}. "
                + how + " Only these columns are shown, so a row does not add up to the class's "
                "images. The full matrix is in Appendix B.",
            )
        )  # fmt: skip
    appendix = Section(
        "appendix-confusion",
        "Appendix B — Full confusion matrix",
        [
            Chart(
                "chart-confusion-full",
                "confusion",
                f"Confusion matrix, all {n} classes",
                "Rows are true classes, columns predicted classes, both in the model's class "
                "order. The first figure shows the whole matrix by position, to see where "
                "confusions gather; the figures after it split the matrix into blocks in which "
                "every class is named. Green cells are correct, red cells confusions, darker when "
                "a larger share of the true class goes there; white is none. Counts are in the "
                "JSON export and in confusion.csv.",
                {"labels": labels, "matrix": matrix, "normalized": normalized},
                wide=True,
            )
        ],
        appendix=True,
        landscape=True,
    )
    return blocks, appendix


def metrics_section(run: Run) -> tuple[Section, list[Section]]:
    meta = run.meta
    m = meta.get("metrics") or {}
    per_class = dicts(m.get("per_class"))
    appendices: list[Section] = []
    blocks: list[Block] = [
        Table(
            cols(("Metric", "left", "24%"), ("Value", "right", "11%"), ("95% interval", "right", "17%"), "What it means"),
            _metric_rows(m),
            caption=f"Over {fmt.count(m.get('n_labelled') or dig(meta, 'dataset', 'n_images'))} "
            "labelled images. The interval is a Wilson 95% interval: with this many images the "
            "true accuracy lies there with 95% confidence. The stored run gives an interval for "
            "the accuracy only.",
        )
    ]  # fmt: skip
    bins = dicts(dig(m, "calibration", "bins"))
    if bins:
        blocks.append(
            Chart(
                "chart-calibration",
                "calibration",
                "Calibration: stated confidence against actual accuracy",
                "Images are grouped by the model's confidence; each point is a group's actual "
                "accuracy, plotted against its mean confidence, sized by how many images it holds. "
                "On the diagonal, a stated 80% means right 80% of the time; below it, the model is "
                "over-confident.",
                {"bins": bins, "ece": m.get("ece")},
            )
        )
    blocks.append(Heading("Per class"))
    worst = _worst_first(per_class)
    n = len(per_class)
    shown = worst if n <= BODY_CLASSES else worst[:WORST_SHOWN]
    if per_class:
        blocks.append(
            Chart(
                "chart-recall",
                "recall_ci",
                "Recall per class, weakest first" + (f" (the {len(shown)} weakest of {n})" if len(shown) < n else ""),
                "Each dot is the share of a class's images labelled correctly (recall); the bar "
                "is its Wilson 95% interval. A wide bar means few images: the class may be better "
                "or worse than the dot suggests."
                + (f" All {n} classes are in Appendix A." if len(shown) < n else ""),
                {
                    "classes": [str(r.get("class")) for r in worst],
                    "recall": [r.get("recall") for r in worst],
                    "low": [r.get("ci_low") for r in worst],
                    "high": [r.get("ci_high") for r in worst],
                    "support": [r.get("support") for r in worst],
                    "shown": len(shown),
                },
            )
        )  # fmt: skip
        blocks.append(
            per_class_table(
                shown,
                "Weakest classes first. Recall is the share of the class's images labelled "
                "correctly, with its Wilson 95% interval; precision is the share of the images "
                "predicted as the class that really are; Predicted counts them."
                + (f" The {len(shown)} weakest of {n} classes; Appendix A lists all." if len(shown) < n else ""),
            )
        )  # fmt: skip
        if len(shown) < n:
            appendices.append(
                Section(
                    "appendix-per-class",
                    "Appendix A — Every class",
                    [per_class_table(per_class, f"All {n} classes in the model's class order.")],
                    appendix=True,
                )
            )
    pairs = dicts(m.get("most_confused"))
    if pairs:
        blocks.append(Heading("Most confused pairs"))
        blocks.append(
            Table(
                cols(("True class", "left", "34%"), ("Predicted as", "left", "34%"), ("Images", "right"), ("Share of true class", "right")),
                [[c(p.get("true")), c(p.get("predicted")), c(fmt.count(p.get("count"))), c(fmt.pct(p.get("rate")))] for p in pairs],
                caption="The largest confusions, by number of images.",
                css="compact",
            )
        )  # fmt: skip
    conf_blocks, conf_appendix = _confusion_blocks(m)
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


# -- Grad-CAM ---------------------------------------------------------------------------------


def explain_section(run: Run) -> tuple[Section | None, str | None]:
    """explain/summary.json (+ audit.json's compact copy), regions.parquet and overlays/*.png."""
    block = run.meta.get("explain")
    err = error_of(block)
    summary = read_json(run.path / "explain" / "summary.json")
    info: dict[str, Any] = dict(block) if isinstance(block, dict) and not err else {}
    if isinstance(summary, dict):
        info.update(summary)
    if not info:
        if err:
            return None, f"Grad-CAM failed when the audit ran: {err}"
        return None, "Grad-CAM was not run for this audit (python -m audits explain RUN adds it)."
    regions = _regions(run)
    blocks: list[Block] = []
    pairs = dicts(info.get("pairs"))
    n_failures, n_explained = info.get("n_failures"), info.get("n_explained")
    intro = (
        f"Grad-CAM ({fmt.text(info.get('method'))}, layer {fmt.text(info.get('layer'))}) explained "
        f"{fmt.count(n_explained)} of the {fmt.count(n_failures)} misclassified images"
        + (" (capped; the ones with the highest loss or a sample)" if info.get("capped") else "")
        + f", and {fmt.count(info.get('n_baseline'))} correctly classified images as a baseline."
    )
    blocks.append(Paragraphs([intro]))
    sentences = [
        _sentence_case(str(p["sentence"])) + "."
        for p in pairs
        if isinstance(p.get("sentence"), str)
    ]
    if sentences:
        blocks.append(Bullets(sentences))
    if pairs:
        thr = info.get("energy_threshold")
        blocks.append(
            Table(
                cols(("True class", "left", "19%"), ("Predicted as", "left", "15%"), ("Failures", "right", "9%"),
                     ("Explained", "right", "10%"), ("Median conf.", "right", "9%"), ("In box, median", "right", "9%"),
                     (f"Below {fmt.pct(thr, 0)}", "right", "8%"), ("True-class map in box", "right", "10%"),
                     ("Correct images in box", "right", "11%")),
                [[c(p.get("true")), c(p.get("predicted")), c(fmt.count(p.get("n_failures"))), c(fmt.count(p.get("n_explained"))),
                  c(fmt.pct(p.get("confidence_median"))), c(fmt.pct(p.get("energy_median"))),
                  c(fmt.count(p.get("below_threshold")) if p.get("n_with_box") else "n/a"),
                  c(fmt.pct(p.get("true_class_energy_median"))), c(fmt.pct(p.get("baseline_energy_median")))] for p in pairs],
                caption="Per confused pair. In box: the share of the heat-map for the predicted class "
                "that falls inside the image's region box (the part that decides the class, when the "
                "data gives one). A low share means the model decided on something else, such as "
                "the background. Compare with the true class's map and with correctly classified "
                "images of the same class.",
                css="compact",
            )
        )  # fmt: skip
    failures = _failure_rows(regions)
    figures = _overlays(run, failures)
    if figures:
        blocks.append(Heading("Failures, highest loss first"))
        blocks.append(
            Gallery(
                figures,
                "Each strip shows a misclassified test image, then where the model looked to "
                "predict the wrong class, then where it finds evidence for the true class (warm "
                "colours weigh most; the white box is the region that decides the class)."
                + more(len(failures), len(figures), "the JSON export lists every explained image"),
            )
        )  # fmt: skip
    if failures:
        shown = failures[:REGION_ROWS]
        blocks.append(
            Table(
                cols(("Image", "left", "26%"), ("True class", "left", "18%"), ("Predicted as", "left", "18%"),
                     ("Confidence", "right"), ("Predicted map in box", "right"), ("True map in box", "right")),
                [[c(f.get("path"), mono=True), c(f.get("label")), c(f.get("pred")), c(fmt.pct(f.get("confidence"))),
                  c(fmt.pct(f.get("energy_pred"))), c(fmt.pct(f.get("energy_true")))] for f in shown],
                caption="Region scores of the explained failures: the share of each heat-map inside the "
                "region box." + more(len(failures), len(shown), "all are in the JSON export"),
                css="compact",
            )
        )  # fmt: skip
    return Section("failures", "Failures explained (Grad-CAM)", blocks,
                   lead="Where the model looked when it got an image wrong."), None  # fmt: skip


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _regions(run: Run) -> list[dict[str, Any]]:
    file = run.path / "explain" / "regions.parquet"
    if not file.is_file():
        return []
    try:
        import pandas as pd

        frame = pd.read_parquet(file)
        return [{k: plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
    except Exception:  # a damaged optional file must not stop the export
        return []


def _failure_rows(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per explained failure (slots merged), in the stored order (highest loss first)."""
    by_index: dict[Any, dict[str, Any]] = {}
    for r in regions:
        if r.get("kind") not in (None, "failure"):
            continue
        entry = by_index.setdefault(
            r.get("index", len(by_index)),
            {
                k: r.get(k)
                for k in ("row", "path", "label", "pred", "confidence", "loss", "overlay")
            },
        )
        entry["energy_pred" if r.get("role") == "predicted" else "energy_true"] = r.get(
            "roi_energy"
        )
    return list(by_index.values())


def _overlays(run: Run, failures: list[dict[str, Any]]) -> list[Figure]:
    base = run.path / "explain"
    figures: list[Figure] = []
    for f in failures:
        rel = f.get("overlay")
        p = inside(base, rel) if isinstance(rel, str) else None
        if p is None:
            continue
        figures.append(
            Figure(
                [str(p)],
                [f"true {fmt.text(f.get('label'))} · predicted {fmt.text(f.get('pred'))} ({fmt.pct(f.get('confidence'))})",
                 fmt.text(f.get("path"))],
            )
        )  # fmt: skip
        if len(figures) >= MAX_OVERLAYS:
            break
    if not figures and not failures and (base / "overlays").is_dir():
        for p in sorted((base / "overlays").glob("*.png"))[:MAX_OVERLAYS]:
            figures.append(Figure([str(p)], [f"predictions row {p.stem}"]))
    return figures


# -- drift ------------------------------------------------------------------------------------


def _side_value(p: dict[str, Any], side: str) -> str:
    """A property's value on one side: the mean, or the shares of a categorical property."""
    shares = p.get(f"{side}_share")
    if isinstance(shares, dict) and shares:
        return ", ".join(f"{k} {fmt.pct(v, 0)}" for k, v in list(shares.items())[:4])
    return fmt.num(p.get(f"{side}_mean"), 3)


def drift_section(b: RunBundle) -> tuple[Section | None, str | None]:
    if b.drift is None:
        return None, "No drift run of this model version is in the store (python -m audits drift)."
    d = b.drift.meta
    drifted = d.get("drift")
    sentences = safe_call(lambda: narrative.drift_summary(d), [])
    blocks: list[Block] = [
        Callout(
            sentences[0] if sentences else "Drift result stored.",
            tone="bad" if drifted else "good" if drifted is False else "info",
            title="Drift detected"
            if drifted
            else "No drift detected"
            if drifted is False
            else "Drift",
        )
    ]
    if len(sentences) > 1:
        blocks.append(Bullets(sentences[1:]))
    ref, cur = d.get("reference") or {}, d.get("current") or {}
    rows = [kv("Drift run", b.drift.run_id, mono=True), kv("Date", date_text(d.get("created"))),
            kv("Significance level", fmt.text(d.get("alpha"))), kv("Rule", fmt.text(d.get("drift_rule")))]  # fmt: skip
    for name, block in (("Reference", ref), ("Current (production)", cur)):
        if isinstance(block, dict) and block:
            rows += [
                kv(f"{name} set", block.get("path"), mono=True),
                kv(f"{name} images", f"{fmt.count(block.get('n_images'))} ({fmt.count(block.get('n_skipped'))} skipped)"),
                kv(f"{name} fingerprint", block.get("fingerprint"), mono=True),
            ]  # fmt: skip
    blocks.append(KeyValues(rows))
    emb, pred = d.get("embedding") or {}, d.get("predictions") or {}
    tests = []
    if isinstance(emb, dict) and emb:
        tests.append(
            [c("Image embeddings (MMD², permutation test)"), c(fmt.num(emb.get("mmd2"), 4)), c(fmt.pval(emb.get("p_value"))),
             c(f"{fmt.count(emb.get('permutations'))} permutations"), _drift_cell(emb.get("drift"))]
        )  # fmt: skip
    if isinstance(pred, dict) and pred:
        classes, conf = pred.get("classes") or {}, pred.get("confidence") or {}
        detail = []
        if isinstance(classes, dict) and classes:
            detail.append(f"classes p {fmt.pval(classes.get('p_value'))}")
        if isinstance(conf, dict) and conf:
            detail.append(
                f"confidence p {fmt.pval(conf.get('p_value'))}, mean {fmt.pct(conf.get('reference_mean'))} → {fmt.pct(conf.get('current_mean'))}"
            )
        tests.append(
            [c("Predictions (classes and confidence)"), c("—", tone="muted"), c(fmt.pval(pred.get("p_value"))),
             c("; ".join(detail)), _drift_cell(pred.get("drift"))]
        )  # fmt: skip
    if tests:
        blocks.append(
            Table(
                cols(("Test", "left", "30%"), ("Statistic", "right", "11%"), ("p-value", "right", "10%"), "Detail", ("Drift", "center", "9%")),
                tests,
                caption="A p-value below the significance level means the production images differ "
                "from the held-out images more than chance explains.",
            )
        )  # fmt: skip
    acc = pred.get("accuracy") if isinstance(pred, dict) else None
    if isinstance(acc, dict) and acc.get("current") is not None:
        blocks.append(Paragraphs([f"Accuracy on labelled production images: {fmt.pct(acc.get('current'))} "
                                  f"({fmt.count(acc.get('n_current_labelled'))} images), against {fmt.pct(acc.get('reference'))} on the reference."]))  # fmt: skip
    props = dicts(d.get("properties"))
    if props:
        order = sorted(
            props,
            key=lambda p: (
                not p.get("drift"),
                p.get("p_adjusted")
                if fmt.is_num(p.get("p_adjusted"))
                else p.get("p_value")
                if fmt.is_num(p.get("p_value"))
                else 2.0,
            ),
        )
        blocks.append(Heading("Image properties"))
        blocks.append(
            Table(
                cols(("Property", "left", "17%"), ("Test", "left", "10%"), ("Reference", "right", "19%"), ("Production", "right", "19%"),
                     ("p-value", "right"), ("adjusted p", "right"), ("Drift", "center")),
                [[c(p.get("name")), c(fmt.text(p.get("test"))), c(_side_value(p, "reference")), c(_side_value(p, "current")),
                  c(fmt.pval(p.get("p_value"))), c(fmt.pval(p.get("p_adjusted"))), _drift_cell(p.get("drift"))] for p in order],
                caption="Simple image properties (mean value, or the share of each value) compared between "
                "the reference and the production images, drifted ones first. Adjusted p is Holm's "
                "correction across the properties; it decides.",
                css="compact",
            )
        )  # fmt: skip
    examples = dicts(d.get("examples"))
    if examples:
        shown = examples[:LIST_ROWS]
        blocks.append(Heading("Production images least like the held-out set"))
        blocks.append(
            Table(
                cols(("Image", "left", "38%"), ("Distance", "right"), ("× typical", "right"), ("Predicted as", "left", "20%"), ("Confidence", "right")),
                [[c(e.get("path"), mono=True), c(fmt.num(e.get("distance"), 3)), c(fmt.num(e.get("ratio"), 1)),
                  c(fmt.text(e.get("pred"))), c(fmt.pct(e.get("confidence")))] for e in shown],
                caption="Distance of each image's embedding to its nearest reference images; × typical "
                "compares it with the spacing inside the reference set. Look at these first to see "
                "what changed." + more(len(examples), len(shown), "all are in the JSON export"),
                css="compact",
            )
        )  # fmt: skip
    return Section("drift", "Drift in production", blocks,
                   lead="Do production images still look like the images the model was tested on?"), None  # fmt: skip


def _drift_cell(flag: Any) -> Cell:
    if flag is None:
        return c("n/a", tone="muted")
    return c("drift" if flag else "no", tone="bad" if flag else "good")


# -- comparison -------------------------------------------------------------------------------

_STATUS_TONE = {"regression": "bad", "large drop": "bad", "watch": "warn", "improved": "good"}


def comparison_section(b: RunBundle) -> tuple[Section | None, str | None]:
    if b.comparison is None:
        return (
            None,
            "This version has not been compared with another one (python -m audits compare A B).",
        )
    d = b.comparison.meta
    verdict = d.get("verdict")
    ma, mb = dig(d, "run_a", "model", default={}), dig(d, "run_b", "model", default={})
    blocks: list[Block] = [
        Callout(
            str(d.get("summary") or verdict or "no verdict stored"),
            tone="good" if verdict == "promote" else "warn" if verdict == "hold" else "info",
            title=f"Verdict: {'promote' if verdict == 'promote' else 'hold for human investigation' if verdict == 'hold' else fmt.text(verdict)}",
        )
    ]
    reasons = [str(r) for r in d.get("reasons") or [] if r]
    if reasons:
        blocks += [Heading("Every check, failed ones first"), Bullets(reasons)]
    notes = [str(r) for r in d.get("notes") or [] if r]
    if notes:
        blocks += [Heading("Notes"), Bullets(notes)]
    ds = d.get("dataset") or {}
    blocks.append(
        KeyValues(
            [
                kv("Comparison run", b.comparison.run_id, mono=True),
                kv("A (previous)", f"{fmt.text(ma.get('name'))} {fmt.text(ma.get('version'))}"),
                kv("B (this report)", f"{fmt.text(mb.get('name'))} {fmt.text(mb.get('version'))}"),
                kv("Paired images", fmt.count(ds.get("n_aligned"))),
                kv("Held-out fingerprint", ds.get("fingerprint"), mono=True),
            ]
        )
    )
    o = d.get("overall") or {}
    if o:
        mc, ba = o.get("mcnemar") or {}, o.get("balanced_accuracy") or {}
        level = f"{round(100 * o['ci_level'])}%" if fmt.is_num(o.get("ci_level")) else "95%"
        rows = [
            [c("Accuracy"), c(fmt.pct(o.get("accuracy_a"))), c(fmt.pct(o.get("accuracy_b"))),
             c(fmt.pts(o.get("diff"))), c(fmt.pts_ci(o.get("ci_low"), o.get("ci_high"))), c(fmt.pval(mc.get("p_value")))],
        ]  # fmt: skip
        if isinstance(ba, dict) and ba:
            rows.append(
                [c("Balanced accuracy"), c(fmt.pct(ba.get("balanced_accuracy_a"))), c(fmt.pct(ba.get("balanced_accuracy_b"))),
                 c(fmt.pts(ba.get("diff"))), c(fmt.pts_ci(ba.get("ci_low"), ba.get("ci_high"))), c(fmt.pval(ba.get("p_value")))]
            )  # fmt: skip
        blocks.append(Heading("Overall, B against A"))
        blocks.append(
            Table(
                cols(("Metric", "left", "24%"), ("A", "right"), ("B", "right"), ("B − A", "right"), (f"{level} CI", "right", "22%"), ("p", "right")),
                rows,
                caption="Measured on the same images for both versions (paired). p is McNemar's test "
                f"on the images only one version got right: A alone {fmt.count(mc.get('b'))}, "
                f"B alone {fmt.count(mc.get('c'))}.",
            )
        )  # fmt: skip
    per = dicts(d.get("per_class"))
    if per:
        flagged = [r for r in per if r.get("status")]
        ordered = sorted(
            per,
            key=lambda r: (
                not fmt.is_num(r.get("diff")),
                r.get("diff") if fmt.is_num(r.get("diff")) else 0,
            ),
        )
        shown = (
            ordered
            if len(ordered) <= BODY_CLASSES
            else (flagged + [r for r in ordered if not r.get("status")])[:WORST_SHOWN]
        )
        shown = sorted(
            shown,
            key=lambda r: (
                not fmt.is_num(r.get("diff")),
                r.get("diff") if fmt.is_num(r.get("diff")) else 0,
            ),
        )
        rows = [
            [c(r.get("class")), c(fmt.count(r.get("support"))), c(fmt.pct(r.get("recall_a"))), c(fmt.pct(r.get("recall_b"))),
             c(fmt.pts(r.get("diff"))), c(fmt.pts_ci(r.get("ci_low"), r.get("ci_high"))), c(fmt.pval(r.get("p_adjusted"))),
             c(fmt.text(r.get("status") or ""), tone=_STATUS_TONE.get(str(r.get("status")), ""))]
            for r in shown
        ]  # fmt: skip
        blocks.append(Heading("Per class, largest drop first"))
        blocks.append(
            Table(
                cols(("Class", "left", "22%"), ("Images", "right"), ("A", "right"), ("B", "right"), ("B − A", "right"),
                     ("95% CI", "right", "19%"), ("adj. p", "right"), ("Status", "left")),
                rows,
                caption="Recall of each class in both versions. adj. p is Benjamini–Hochberg adjusted "
                "across classes; a regression is a significant drop."
                + more(len(per), len(shown), "the flagged classes and the largest drops are shown, every class is in the JSON export"),
                css="compact",
            )
        )  # fmt: skip
    sp = d.get("speed")
    if isinstance(sp, dict) and sp:
        a, bb = sp.get("a") or {}, sp.get("b") or {}
        rows = [
            [c("Latency, ms per image (batch 1)"), c(fmt.num(a.get("latency_ms"), 2)), c(fmt.num(bb.get("latency_ms"), 2)), c(fmt.num(sp.get("latency_ratio"), 3))],
            [c("Throughput, images/s"), c(fmt.count(round(a["throughput"])) if fmt.is_num(a.get("throughput")) else "n/a"),
             c(fmt.count(round(bb["throughput"])) if fmt.is_num(bb.get("throughput")) else "n/a"), c(fmt.num(sp.get("throughput_ratio"), 3))],
        ]  # fmt: skip
        blocks.append(Heading("Speed"))
        blocks.append(
            Table(
                cols(("", "left", "40%"), ("A", "right"), ("B", "right"), ("B ÷ A (median)", "right")),
                rows,
                caption=f"Measured in one process on {fmt.text(dig(sp, 'device', 'name'))}.",
            )
        )  # fmt: skip
    elif d.get("speed") is None and "speed" in d:
        blocks.append(Paragraphs(["Speed was not measured for this comparison."]))
    return Section("comparison", "Comparison with the previous version", blocks,
                   lead="Is this version better than the one before it, beyond noise, and no slower?"), None  # fmt: skip


# -- integrity and claims ----------------------------------------------------------------------


def integrity_results(run: Run) -> tuple[dict[str, Any] | None, str | None]:
    doc = read_json(run.path / "integrity.json")  # damaged: None, then audit.json's summary
    block = run.meta.get("integrity")
    if isinstance(doc, dict):
        merged = dict(block) if isinstance(block, dict) and not error_of(block) else {}
        merged.update(doc)
        return merged, None
    err = error_of(block)
    if err:
        return None, err
    if isinstance(block, dict) and block:
        return block, None
    return None, None


def _thumb(run: Run, rel: Any) -> str | None:
    p = inside(run.path, rel) if isinstance(rel, str) else None
    return str(p) if p is not None else None


def _near_method(near: dict) -> str:
    """The near-duplicate rule as the integrity stage recorded it."""
    if isinstance(near.get("method"), str):
        return near["method"]
    parts = []
    if near.get("phash_max_distance") is not None:
        parts.append(
            f"perceptual hash distance ≤ {fmt.text(near.get('phash_max_distance'))} of 64 bits"
        )
    if near.get("thumb_rms_max") is not None:
        parts.append(f"thumbnail RMS difference ≤ {fmt.text(near.get('thumb_rms_max'))}")
    if near.get("cosine_min") is not None:
        parts.append(f"embedding cosine ≥ {fmt.text(near.get('cosine_min'))}")
    return ", ".join(parts) or "not recorded"


def leakage_section(leak: Any, run: Run) -> Section | None:
    if not isinstance(leak, dict) or not leak:
        return None
    blocks: list[Block] = []
    if leak.get("available") is False:
        blocks.append(Callout(str(leak.get("reason") or "Leakage could not be checked for this run."), tone="warn",
                              title="Not checked"))  # fmt: skip
        return Section("leakage", "Leakage between training and test", blocks,
                       lead="A test image the model saw in training makes the accuracy look better than it is.")  # fmt: skip
    # integrity.json nests the counts; audit.json's compact summary has them at the top level.
    counts = leak.get("counts") or {
        k: leak.get(k) for k in ("exact", "group", "group_test_images", "near", "leaked_images")
    }
    n_leaked = counts.get("leaked_images", leak.get("n_leaked"))
    blocks.append(
        Callout(
            f"{fmt.count(n_leaked)} of {fmt.count(leak.get('n_test'))} test images were also in the training "
            "data, exactly, as the same object, or nearly." if n_leaked else "No test image was found in the training data.",
            tone="bad" if n_leaked else "good",
            title="Leakage found" if n_leaked else "No leakage found",
        )
    )  # fmt: skip
    checks = leak.get("checks") or {}
    near = checks.get("near") if isinstance(checks.get("near"), dict) else {}
    group_check = checks.get("group")
    rows = [
        kv("Training manifest", leak.get("training_manifest"), mono=True),
        kv("Training images", fmt.count(leak.get("n_train"))),
        kv("Exact duplicates (same file bytes)", fmt.count(counts.get("exact"))),
        kv("Shared groups (same object on both sides)",
           f"{fmt.count(counts.get('group'))} group(s), {fmt.count(counts.get('group_test_images'))} test image(s)"),
        kv("Near duplicates (resized, re-encoded)", fmt.count(counts.get("near"))),
    ]  # fmt: skip
    if isinstance(group_check, str) and group_check.startswith("not run"):
        rows.append(kv("Group check", group_check))
    if near:
        rows.append(
            kv("Near-duplicate method", _near_method(near) + (f". {near['note']}" if isinstance(near.get("note"), str) else ""))
        )  # fmt: skip
    blocks.append(KeyValues(rows))
    acc = leak.get("accuracy")
    if isinstance(acc, dict):
        names = {
            "all": "All test images",
            "without_leaked": "Without the leaked ones",
            "leaked": "Leaked ones only",
        }
        arows = [
            [c(names.get(k, str(k))), c(fmt.count(v.get("n"))), c(fmt.pct(v.get("accuracy"))), c(fmt.ci(v.get("ci_low"), v.get("ci_high")))]
            for k, v in acc.items() if isinstance(v, dict)
        ]  # fmt: skip
        if arows:
            blocks.append(
                Table(cols(("Images", "left", "40%"), ("Count", "right"), ("Accuracy", "right"), ("95% CI", "right")), arows,
                      caption="Accuracy with and without the leaked images: a gap means the leaked images flatter the model.")
            )  # fmt: skip
    pairs = [("exact", e) for e in dicts(leak.get("exact"))] + [
        ("near", e) for e in dicts(leak.get("near"))
    ]
    figures = []
    for kind, e in pairs:
        shots = [
            t for t in (_thumb(run, e.get("test_thumb")), _thumb(run, e.get("train_thumb"))) if t
        ]
        if len(shots) == 2:
            figures.append(
                Figure(
                    shots,
                    [
                        f"{kind}: test {fmt.text(e.get('test_path'))}",
                        f"training {fmt.text(e.get('train_path'))}",
                    ],
                )
            )
        if len(figures) >= 6:
            break
    if figures:
        blocks.append(
            Gallery(
                figures,
                "Held-out image (left) and its copy in the training data (right).",
                columns=3,
            )
        )
    for key, title, fields in (
        ("exact", "Exact duplicates", (("test_path", "Test image"), ("train_path", "Training image"), ("label", "Label"), ("train_label", "Training label"))),
        ("near", "Near duplicates", (("test_path", "Test image"), ("train_path", "Training image"), ("found_by", "Found by"), ("phash_distance", "Hash distance"), ("thumb_rms", "Thumbnail RMS"), ("cosine", "Cosine"))),
        ("groups", "Shared groups", (("group", "Group"), ("n_test", "Test images"), ("n_train", "Training images"))),
    ):  # fmt: skip
        items = dicts(leak.get(key))
        if not items:
            continue
        shown = items[:LIST_ROWS]
        total = counts.get(key) if fmt.is_num(counts.get(key)) else len(items)
        blocks.append(Heading(title, 3))
        blocks.append(
            Table(
                [Column(t, "left" if f in ("test_path", "train_path", "label", "train_label", "group", "found_by") else "right",
                        "30%" if "path" in f else None) for f, t in fields],
                [[c(cell_text(f, i.get(f)), mono="path" in f) for f, _ in fields] for i in shown],
                caption=more(int(total), len(shown), "the listed ones are in the JSON export").strip(),
                css="compact",
            )
        )  # fmt: skip
    return Section("leakage", "Leakage between training and test", blocks,
                   lead="A test image the model saw in training makes the accuracy look better than it is.")  # fmt: skip


def labels_section(sus: Any, run: Run) -> Section | None:
    if not isinstance(sus, dict) or not sus:
        return None
    rows = dicts(sus.get("rows"))
    n_flagged = sus.get("n_flagged")
    blocks: list[Block] = [
        Paragraphs(
            [f"{fmt.count(n_flagged)} of {fmt.count(sus.get('n_labelled'))} labelled test images may carry a wrong "
             "label: the model confidently says another class. They are candidates for a human check, not proven "
             "errors; a wrong label also makes the model look worse than it is."]
            + ([f"Method: {sus['method']}."] if isinstance(sus.get("method"), str) else [])
        )
    ]  # fmt: skip
    figures = []
    for r in rows[:8]:
        shot = _thumb(run, r.get("thumb"))
        if shot:
            figures.append(Figure([shot], [f"#{fmt.count(r.get('rank'))} labelled {fmt.text(r.get('label'))}",
                                           f"looks like {fmt.text(r.get('suggested'))}"]))  # fmt: skip
    if figures:
        blocks.append(
            Gallery(
                figures,
                "The likeliest mislabels, with their given label and the class the model sees.",
                columns=4,
            )
        )
    if rows:
        shown = rows[:LIST_ROWS]
        blocks.append(
            Table(
                cols(("#", "right", "6%"), ("Image", "left", "30%"), ("Given label", "left"), ("Suggested", "left"), ("Confidence", "right"), ("Given label's probability", "right")),
                [[c(fmt.count(r.get("rank"))), c(r.get("path"), mono=True), c(r.get("label")), c(r.get("suggested")),
                  c(fmt.pct(r.get("confidence"))), c(fmt.pct(r.get("self_confidence")))] for r in shown],
                caption="Likeliest mislabels first." + more(int(n_flagged) if fmt.is_num(n_flagged) else len(rows), len(shown), "the listed ones are in the JSON export"),
                css="compact",
            )
        )  # fmt: skip
    return Section("labels", "Suspect labels", blocks,
                   lead="Held-out images whose label the model confidently contradicts.")  # fmt: skip


def slices_section(sl: Any, run: Run) -> Section | None:
    if not isinstance(sl, dict) or not sl:
        return None
    weakest = dicts(sl.get("weakest"))
    all_slices = dicts(sl.get("slices"))
    blocks: list[Block] = []
    n_low = sum(1 for s in all_slices if s.get("significantly_lower"))
    columns = ", ".join(str(x.get("column")) for x in dicts(sl.get("columns"))) or "none"
    blocks.append(
        Paragraphs(
            [f"Accuracy was measured on {fmt.count(len(all_slices))} slices of the metadata (columns: {columns}); "
             f"{fmt.count(n_low)} are significantly less accurate than the rest of the images "
             f"(Fisher's exact test, Benjamini–Hochberg adjusted)."]
        )
    )  # fmt: skip
    if weakest:
        blocks.append(
            Table(
                cols(("Slice", "left", "30%"), ("Images", "right"), ("Accuracy", "right"), ("95% CI", "right", "15%"), ("Rest", "right"), ("adj. p (lower)", "right"), ("Lower?", "center")),
                [[c(s.get("label") or f"{s.get('column')} = {s.get('value')}"), c(fmt.count(s.get("support"))), c(fmt.pct(s.get("accuracy"))),
                  c(fmt.ci(s.get("ci_low"), s.get("ci_high"))), c(fmt.pct(s.get("rest_accuracy"))), c(fmt.pval(s.get("p_lower_adj"))),
                  c("yes" if s.get("significantly_lower") else "no", tone="bad" if s.get("significantly_lower") else "")] for s in weakest],
                caption=f"The weakest slices with at least {fmt.count(sl.get('min_support'))} images, lowest accuracy first; "
                "Rest is the accuracy on every other image. Every slice is in the JSON export.",
                css="compact",
            )
        )  # fmt: skip
    elif all_slices:
        blocks.append(
            Paragraphs(
                [f"No slice has the {fmt.count(sl.get('min_support'))} images needed to rank it."]
            )
        )
    return Section(
        "slices",
        "Slices",
        blocks,
        lead="Is the model weaker on some kinds of images (source, date, tags)?",
    )


_VERDICT_TONE = {"supported": "good", "contradicted": "bad", "not enough data": "warn"}


def claims_section(run: Run) -> Section | None:
    """claims-*/claims.json: {claims_file, claims_sha256, created, results: [...]}."""
    docs = []
    for folder in sorted(p for p in run.path.glob("claims-*") if p.is_dir()):
        doc = read_json(folder / "claims.json")
        if isinstance(doc, dict):
            docs.append((folder.name, doc))
    if not docs:
        return None
    blocks: list[Block] = []
    for name, doc in docs:
        results = dicts(doc.get("results"))
        blocks.append(Heading(f"Claims file {fmt.text(doc.get('claims_file') or name)}", 3))
        blocks.append(
            KeyValues([kv("Checked", date_text(doc.get("created"))), kv("Claims file sha256", doc.get("claims_sha256"), mono=True)])
        )  # fmt: skip
        rows = []
        for r in results:
            points = r.get("kind") in ("lower", "higher")
            measured = fmt.pts(r.get("measured")) if points else fmt.pct(r.get("measured"))
            interval = (
                fmt.pts_ci(r.get("ci_low"), r.get("ci_high"))
                if points
                else fmt.ci(r.get("ci_low"), r.get("ci_high"))
            )
            verdict = str(r.get("verdict") or "n/a")
            rows.append([c(fmt.text(r.get("text") or r.get("id"))), c(verdict, tone=_VERDICT_TONE.get(verdict, "")),
                         c(measured), c(interval), c(fmt.text(r.get("sentence") or r.get("reason") or ""))])  # fmt: skip
        if rows:
            blocks.append(
                Table(cols(("Claim", "left", "27%"), ("Verdict", "left", "12%"), ("Measured", "right", "10%"), ("95% CI", "right", "15%"), "Evidence"),
                      rows, css="compact",
                      caption="Supported or contradicted only when the 95% interval is entirely on one side; "
                      "otherwise, or with fewer than the minimum number of images, not enough data.")
            )  # fmt: skip
        else:
            blocks.append(Paragraphs(["This claims file holds no results."]))
    return Section("claims", "Claims checked", blocks,
                   lead="Statements made about the model, checked against the audit's evidence.")  # fmt: skip


# -- appendices --------------------------------------------------------------------------------


def skipped_appendix(run: Run) -> Section | None:
    skipped = dicts(run.meta.get("skipped"))
    if len(skipped) <= LIST_ROWS:
        return None
    return Section(
        "appendix-skipped",
        "Appendix C — Skipped images",
        [Table(cols(("Image", "left", "62%"), "Reason"), [[c(s.get("path"), mono=True), c(s.get("reason"))] for s in skipped],
               caption=f"All {fmt.count(len(skipped))} images that could not be decoded.", css="compact")],
        appendix=True,
    )  # fmt: skip


GLOSSARY = [
    ("Recall", "The share of a class's images the model labels correctly (per-class accuracy)."),
    ("Precision", "The share of the images predicted as a class that really are that class."),
    ("F1", "The harmonic mean of precision and recall."),
    ("Balanced accuracy", "The mean recall over classes: rare classes count as much as common ones."),
    ("95% interval (Wilson)", "The range that holds the true value with 95% confidence, given the number of images; narrow with many images, wide with few."),
    ("Expected calibration error", "The average gap between the model's stated confidence and its actual accuracy, over groups of similar confidence."),
    ("Top-k accuracy", "How often the true class is among the model's k most probable classes."),
    ("Held-out fingerprint", "A sha256 over the sorted (path, file sha256, label) rows of the test set: any change to an image or label changes it."),
    ("McNemar's test", "Compares two versions on the same images, using only the images one got right and the other wrong."),
    ("MMD²", "Maximum mean discrepancy between the embeddings of two image sets; its p-value comes from a permutation test."),
    ("Grad-CAM", "A heat-map of the image regions that most increased the score of a class."),
]  # fmt: skip


def glossary_section() -> Section:
    return Section(
        "appendix-glossary",
        "Appendix D — How to read this report",
        [
            Table(
                cols(("Term", "left", "26%"), "Meaning"),
                [[c(t), c(d)] for t, d in GLOSSARY],
                css="compact",
            )
        ],
        appendix=True,
    )


def evidence_files(run: Run, b: RunBundle) -> list[dict[str, Any]]:
    """The stored files this report was made from, with their sha256 (the evidence trail)."""
    out = []

    def add(base: Path, file: Path, prefix: str) -> None:
        with contextlib.suppress(OSError):  # a file vanishing mid-export is left out, not fatal
            out.append(
                {
                    "file": prefix + file.relative_to(base).as_posix(),
                    "sha256": sha256_file(file),
                    "bytes": file.stat().st_size,
                }
            )

    files = sorted(p for p in run.path.iterdir() if p.is_file() and not p.name.startswith("."))
    for sub in ("explain", "claims-*"):
        for folder in sorted(run.path.glob(sub)):
            if folder.is_dir():
                files += sorted(
                    p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".parquet")
                )
    for f in files:
        add(run.path, f, f"{run.run_id}/")
    for other in (b.drift, b.comparison):
        if other is not None:
            for f in sorted(p for p in other.path.iterdir() if p.is_file() and p.suffix == ".json"):
                add(other.path, f, f"{other.run_id}/")
    return out


def evidence_section(sources: list[dict[str, Any]]) -> Section:
    return Section(
        "appendix-sources",
        "Appendix E — Evidence files",
        [
            Paragraphs(
                ["This report was rendered from these stored files and nothing else; their sha256 "
                 "identifies them. The export folder's manifest.json lists the sha256 of every "
                 "exported file: python -m audits verify FOLDER names any file altered since."]
            ),
            Table(cols(("File", "left", "44%"), ("Bytes", "right", "12%"), ("sha256", "left")),
                  [[c(s["file"], mono=True), c(fmt.count(s["bytes"])), c(s["sha256"], mono=True)] for s in sources],
                  css="compact"),
        ],
        appendix=True,
    )  # fmt: skip
