"""Section "Drift in production": the related drift run (drift.json) of this model version."""

from __future__ import annotations

from typing import Any

from audits.drift.wording import accuracy_sentence, property_value, rule_sentence
from audits.related import RunBundle
from audits.runs.models_drift import (
    DriftExample,
    EmbeddingDrift,
    PredictionDrift,
    PropertyDrift,
)
from reports.present import fmt, narrative
from reports.sections.base import (
    Omitted,
    c,
    cols,
    dash_cell,
    date_text,
    kv,
    more,
    p_cell,
    pct_cell,
)
from reports.tree import (
    LIST_ROWS,
    Block,
    Bullets,
    Callout,
    Cell,
    Figure,
    Gallery,
    Heading,
    KeyValue,
    KeyValues,
    Section,
    Table,
)

NAME = "Drift in production"
#: Farthest images shown as thumbnails.
GALLERY_ROWS = 8


def _read(b: RunBundle) -> dict[str, Any] | str:
    """drift.json of the bundle's drift run; the reason when there is none."""
    if b.drift is None:
        return "No drift run of this model version is in the store (python -m audits drift)."
    d = b.drift.drift
    thumbs = [(e, b.drift.thumb(e.thumb)) for e in d.examples[:GALLERY_ROWS]]
    return {
        "sentences": narrative.drift_summary(d),
        "run_id": b.drift.run_id,
        "drift": d.drift,
        "batch": d.batch,
        "created": d.created,
        "alpha": d.alpha,
        "rule": d.drift_rule_text or rule_sentence(d.alpha),
        "sides": [("Reference", d.reference), (f"Current ({d.batch})", d.current)],
        "embedding": d.embedding,
        "predictions": d.predictions,
        "properties": d.properties,
        "examples": d.examples,
        "thumbs": [(e, str(p)) for e, p in thumbs if p is not None],
    }


def _flag_cell(flag: Any) -> Cell:
    if flag is None:
        return c("n/a", tone="muted")
    return c("drift" if flag else "no", tone="bad" if flag else "good")


def _callout(s: dict[str, Any]) -> Callout:
    drifted, sentences = s["drift"], s["sentences"]
    title = "Drift detected" if drifted else "No drift detected" if drifted is False else "Drift"
    return Callout(
        sentences[0] if sentences else "Drift result stored.",
        tone="bad" if drifted else "good" if drifted is False else "info",
        title=f"{title} in batch {s['batch']}",
    )


def _run_rows(s: dict[str, Any]) -> list[KeyValue]:
    rows = [
        kv("Drift run", s["run_id"], mono=True),
        kv("Date", date_text(s["created"])),
        kv("Batch", s["batch"]),
        kv("Significance level", f"{s['alpha']:g}" if fmt.is_num(s["alpha"]) else fmt.NA),
        kv("When it counts as drift", s["rule"]),
    ]
    for name, side in s["sides"]:
        images = f"{fmt.count(side.n_images)} ({fmt.count(side.n_skipped)} skipped)"
        rows += [
            kv(f"{name} set", side.path, mono=True),
            kv(f"{name} images", images),
            kv(f"{name} fingerprint", side.fingerprint, mono=True),
        ]
    return rows


def _tests_table(emb: EmbeddingDrift, pred: PredictionDrift) -> Table:
    detail = []
    if pred.classes is not None:
        detail.append(f"classes {fmt.p_equals(pred.classes.p_value)}")
    conf = pred.confidence
    if conf is not None:
        detail.append(
            f"confidence {fmt.p_equals(conf.p_value)}, mean "
            f"{fmt.pct(conf.reference_mean)} → {fmt.pct(conf.current_mean)}"
        )
    tests = [
        [
            c("Image embeddings (MMD², permutation test)"),
            c(fmt.num(emb.mmd2, 4)),
            p_cell(emb.p_value),
            c(f"{fmt.count(emb.permutations)} permutations"),
            _flag_cell(emb.drift),
        ],
        [
            c("Predictions (classes and confidence)"),
            dash_cell(),
            p_cell(pred.p_value),
            c("; ".join(detail)),
            _flag_cell(pred.drift),
        ],
    ]
    return Table(
        cols(
            ("Test", "left", "30%"),
            ("Statistic", "right", "11%"),
            ("p-value", "right", "10%"),
            "Detail",
            ("Drift", "center", "9%"),
        ),
        tests,
        caption="A p-value below the significance level means the production images differ "
        "from the held-out images more than chance explains.",
    )


def _side_value(name: str, shares: dict[str, float] | None, mean: float | None) -> str:
    """A property's value on one side: the mean rounded for people, or a categorical
    property's shares."""
    if shares:
        return ", ".join(f"{k} {fmt.pct(v, 0)}" for k, v in list(shares.items())[:4])
    return property_value(name, mean)


def _properties_table(props: list[PropertyDrift]) -> Table:
    def order(p: PropertyDrift) -> tuple[bool, float]:
        for value in (p.p_adjusted, p.p_value):
            if fmt.is_num(value):
                return not p.drift, value
        return not p.drift, 2.0

    rows = [
        [
            c(p.name),
            c(fmt.text(p.test)),
            c(_side_value(p.name, p.reference_share, p.reference_mean)),
            c(_side_value(p.name, p.current_share, p.current_mean)),
            p_cell(p.p_value),
            p_cell(p.p_adjusted),
            _flag_cell(p.drift),
        ]
        for p in sorted(props, key=order)
    ]
    return Table(
        cols(
            ("Property", "left", "17%"),
            ("Test", "left", "10%"),
            ("Reference", "right", "19%"),
            ("Production", "right", "19%"),
            ("p-value", "right"),
            ("adjusted p", "right"),
            ("Drift", "center"),
        ),
        rows,
        caption="Simple image properties (mean value, or the share of each value) compared "
        "between the reference and the production images, drifted ones first. Adjusted p is "
        "Holm's correction across the properties; it decides.",
        css="compact",
    )


def _examples_table(examples: list[DriftExample]) -> Table:
    shown = examples[:LIST_ROWS]
    rows = [
        [
            c(e.path, mono=True),
            c(fmt.num(e.distance, 1)),
            c(fmt.num(e.ratio, 1)),
            c(e.pred),
            pct_cell(e.confidence),
        ]
        for e in shown
    ]
    return Table(
        cols(
            ("Image", "left", "38%"),
            ("Distance", "right"),
            ("× typical", "right"),
            ("Predicted as", "left", "20%"),
            ("Confidence", "right"),
        ),
        rows,
        caption="Distance of each image's embedding to its nearest reference images; × typical "
        "compares it with the spacing inside the reference set. Look at these first to see "
        "what changed." + more(len(examples), len(shown), "all are in the JSON export"),
        css="compact",
    )


def _gallery(thumbs: list[tuple[DriftExample, str]]) -> Gallery | None:
    """The stored thumbnails of the farthest images (copied into the drift run)."""
    figures = [
        Figure(
            [file],
            [
                f"{e.path}",
                f"predicted {e.pred} ({fmt.pct(e.confidence, 0)})"
                + (f", {fmt.num(e.ratio, 1)}× typical distance" if fmt.is_num(e.ratio) else ""),
            ],
        )
        for e, file in thumbs
    ]
    if not figures:
        return None
    caption = "The farthest images, copied into the drift run when it was made."
    return Gallery(figures, caption, columns=4)


def drift_section(b: RunBundle) -> Section | Omitted:
    """The drift section, or why it is left out (no drift run in the store)."""
    s = _read(b)
    if isinstance(s, str):
        return Omitted(NAME, s)
    blocks: list[Block] = [_callout(s)]
    accuracy = accuracy_sentence(s["batch"], s["predictions"].accuracy)
    bullets = ([accuracy] if accuracy else []) + s["sentences"][1:]
    if bullets:  # the labelled batch's accuracy first: what a reader asks before the tests
        blocks.append(Bullets(bullets))
    blocks.append(KeyValues(_run_rows(s)))
    blocks.append(_tests_table(s["embedding"], s["predictions"]))
    if s["properties"]:
        blocks += [Heading("Image properties"), _properties_table(s["properties"])]
    if s["examples"]:
        blocks.append(Heading(f"Images of {s['batch']} least like the held-out set"))
        gallery = _gallery(s["thumbs"])
        if gallery is not None:
            blocks.append(gallery)
        blocks.append(_examples_table(s["examples"]))
    lead = "Do production images still look like the images the model was tested on?"
    return Section("drift", NAME, blocks, lead=lead)
