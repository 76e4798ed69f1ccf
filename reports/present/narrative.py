"""Plain-language sentences about a stored run, for executives and clients.

Shared by the dashboard's overview and the exports' cover page so the two always say the
same thing. Every number comes from the stored run; nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from audits.related import RunBundle
from reports.present.fmt import ci, count, is_num, num, p_equals, pct

VERDICT_WORDS = {"promote": "promote", "hold": "hold for human investigation"}


def _ci(low: float | None, high: float | None) -> str:
    """' (95% CI 81.2–86.9%)', or nothing when the run stores no interval."""
    return f" (95% CI {ci(low, high)})" if is_num(low) and is_num(high) else ""


def verdict_text(verdict: str | None) -> str:
    """The release gate's verdict in words: 'promote' or 'hold for human investigation'."""
    return VERDICT_WORDS.get(str(verdict), str(verdict) if verdict else "no verdict")


def verdict_detail(comparison: dict[str, Any]) -> str:
    """Why, in one sentence: comparison.json's summary after its verdict word, capitalised."""
    verdict = comparison.get("verdict")
    detail = str(comparison.get("summary") or "").removeprefix(f"{verdict}: ").strip()
    detail = detail[:1].upper() + detail[1:]
    return detail if not detail or detail.endswith(".") else detail + "."


def headline(meta: dict[str, Any]) -> str:
    """What was tested on what, and the overall accuracy with its interval."""
    model, data, m = meta["model"], meta["dataset"], meta["metrics"]
    acc_ci = _ci(m.get("accuracy_ci_low"), m.get("accuracy_ci_high"))
    frozen = "a frozen held-out set" if data.get("frozen") else "a held-out set that is not frozen"
    return (
        f"{model['name']} {model['version']} was tested on {count(data['n_images'])} images of "
        f"{count(m.get('n_classes', len(m['per_class'])))} classes from {frozen}. It labels "
        f"{pct(m['accuracy'])}{acc_ci} of them correctly; averaged over classes, "
        f"{pct(m['balanced_accuracy'])}."
    )


def worst_classes(meta: dict[str, Any], n: int = 3) -> list[str]:
    """One sentence per weakest class: recall with its interval and its main confusion."""
    m = meta["metrics"]
    rows = sorted(
        (c for c in m["per_class"] if c.get("recall") is not None), key=lambda c: c["recall"]
    )
    pairs = m.get("most_confused", [])
    out = []
    for c in rows[:n]:
        main = next((p for p in pairs if p["true"] == c["class"]), None)
        confusion = (
            f"; most often read as {main['predicted']} ({count(main['count'])} times)"
            if main
            else ""
        )
        out.append(
            f"{c['class']}: {pct(c['recall'])} correct{_ci(c['ci_low'], c['ci_high'])} on "
            f"{count(c['support'])} images{confusion}."
        )
    return out


def warnings(bundle: RunBundle) -> list[str]:
    """Things a reader must know before trusting the numbers."""
    meta = bundle.audit.meta
    out = []
    data = meta["dataset"]
    if not data.get("frozen"):
        out.append(
            "The held-out set is not frozen, so nothing proves it stayed the same between runs."
        )
    if data.get("n_skipped"):
        out.append(f"{count(data['n_skipped'])} image(s) could not be read and were left out.")
    too_few = (meta["metrics"].get("imbalance") or {}).get("too_few") or []
    if too_few:
        shown = ", ".join(too_few[:5]) + (" …" if len(too_few) > 5 else "")
        out.append(f"{count(len(too_few))} class(es) have too few test images to judge: {shown}.")
    n_leaked = ((meta.get("integrity") or {}).get("leakage") or {}).get("leaked_images")
    if n_leaked:
        out.append(
            f"{n_leaked} test image(s) also appear in the training data (leakage); see Integrity."
        )
    if bundle.drift is not None and bundle.drift.meta.get("drift"):
        out.append("Production images have drifted away from the held-out set; see Drift.")
    return out


def comparison_sentence(bundle: RunBundle) -> str | None:
    """The release verdict against the previous version, if a comparison exists."""
    if bundle.comparison is None:
        return None
    c = bundle.comparison.meta
    other = (c.get("run_a") or {}).get("model", {}).get("version", "the previous version")
    return f"Against {other}: {verdict_text(c.get('verdict'))}. {verdict_detail(c)}".strip()


def executive_summary(bundle: RunBundle) -> list[str]:
    """The overview paragraph, sentence by sentence."""
    meta = bundle.audit.meta
    out = [headline(meta)]
    weakest = worst_classes(meta, 1)
    if weakest:
        out.append("Weakest class — " + weakest[0])
    ece = meta["metrics"].get("ece")
    if ece is not None:
        out.append(
            f"Its confidence is off by {pct(ece)} on average (expected calibration error)"
            + (
                ", so its stated confidence can be taken roughly at face value."
                if ece < 0.05
                else "."
            )
        )
    verdict = comparison_sentence(bundle)
    if verdict:
        out.append(verdict)
    out.extend(warnings(bundle))
    return out


def data_summary(meta: dict[str, Any]) -> list[str]:
    """The held-out set in two sentences: size, largest and smallest class, thin classes."""
    m, data = meta["metrics"], meta["dataset"]
    imb = m.get("imbalance") or {}
    counts = imb.get("test_counts") or {}
    n_classes = m.get("n_classes", len(m["per_class"]))
    out = [f"The held-out set has {count(data['n_images'])} images of {count(n_classes)} classes."]
    big, small = imb.get("largest"), imb.get("smallest")
    if big is not None and small is not None and imb.get("ratio") is not None:
        out.append(
            f"The largest class, {big}, has {count(counts.get(big, 0))} images and the smallest, "
            f"{small}, has {count(counts.get(small, 0))}: {num(imb['ratio'], 1)} times fewer."
        )
    too_few = imb.get("too_few") or []
    if too_few:
        out.append(
            f"{count(len(too_few))} class(es) have fewer than {count(imb.get('min_support', 20))} images, so their "
            "numbers carry wide intervals."
        )
    return out


def drift_summary(drift: dict[str, Any]) -> list[str]:
    """A drift run (drift.json) in plain words: the verdict first, then what moved."""
    emb = drift.get("embedding") or {}
    preds = drift.get("predictions") or {}
    props = [p for p in drift.get("properties") or [] if isinstance(p, dict)]
    moved = [str(p.get("name")) for p in props if p.get("drift")]
    current = (drift.get("current") or {}).get("n_images")
    where = (
        f"the {count(current)} production images"
        if isinstance(current, int)
        else "the production images"
    )
    if drift.get("drift"):
        out = [
            f"{where[0].upper()}{where[1:]} differ from the held-out set: the audit's numbers may not hold in production."
        ]
    else:
        out = [f"No drift detected: {where} look like the held-out set."]
    if emb.get("p_value") is not None:
        out.append(
            f"Image embeddings: {'different' if emb.get('drift') else 'no significant difference'} "
            f"(MMD permutation test, {p_equals(emb['p_value'])})."
        )
    if preds.get("p_value") is not None:
        out.append(
            f"Predicted classes: {'the mix changed' if preds.get('drift') else 'the mix is stable'} "
            f"({p_equals(preds['p_value'])})."
        )
    if moved:
        out.append(
            "Image properties that moved: "
            + ", ".join(moved[:8])
            + (" …" if len(moved) > 8 else "")
            + "."
        )
    return out
