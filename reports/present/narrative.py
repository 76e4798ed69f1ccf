"""Plain-language sentences about a stored run, for executives and clients.

Shared by the dashboard's overview and the exports' cover page so the two always say the
same thing. Every number comes from the stored run's typed records (``audits.runs``); nothing
is recomputed here.
"""

from __future__ import annotations

from audits.related import RunBundle
from audits.runs import AuditRecord, ComparisonRecord, DriftRecord
from audits.runs.models_integrity import IntegrityBlock
from reports.present import findings
from reports.present.fmt import ci, count, is_num, num, p_equals, pct
from reports.present.rows import record_or_none

VERDICT_WORDS = {"promote": "promote", "hold": "hold for human investigation"}


def _ci(low: float | None, high: float | None) -> str:
    """' (95% CI 81.2–86.9%)', or nothing when the run stores no interval."""
    return f" (95% CI {ci(low, high)})" if is_num(low) and is_num(high) else ""


def _n_classes(audit: AuditRecord) -> int:
    m = audit.metrics
    return m.n_classes if m.n_classes is not None else len(m.per_class)


def verdict_text(verdict: str | None) -> str:
    """The release gate's verdict in words: 'promote' or 'hold for human investigation'."""
    return VERDICT_WORDS.get(str(verdict), str(verdict) if verdict else "no verdict")


def verdict_detail(comparison: ComparisonRecord) -> str:
    """Why, in one sentence: the summary after its verdict word, capitalised, with a full stop."""
    detail = comparison.summary_detail.strip()
    detail = detail[:1].upper() + detail[1:]
    return detail if not detail or detail.endswith(".") else detail + "."


def headline(audit: AuditRecord) -> str:
    """What was tested on what, and the overall accuracy with its interval."""
    model, data, m = audit.model, audit.dataset, audit.metrics
    acc_ci = _ci(m.accuracy_ci_low, m.accuracy_ci_high)
    frozen = "a frozen held-out set" if data.frozen else "a held-out set that is not frozen"
    return (
        f"{model.name} {model.version} was tested on {count(data.n_images)} images of "
        f"{count(_n_classes(audit))} classes from {frozen}. It classifies "
        f"{pct(m.accuracy)}{acc_ci} of them correctly; averaged over classes, "
        f"{pct(m.balanced_accuracy)}."
    )


def worst_classes(audit: AuditRecord, n: int = 3) -> list[str]:
    """One sentence per weakest class: recall with its interval and its main confusion."""
    m = audit.metrics
    rows = sorted((c for c in m.per_class if c.recall is not None), key=lambda c: c.recall)
    pairs = m.most_confused or []
    out = []
    for c in rows[:n]:
        main = next((p for p in pairs if p.true == c.class_), None)
        confusion = (
            f"; most often read as {main.predicted} ({count(main.count)} times)" if main else ""
        )
        out.append(
            f"{c.class_}: {pct(c.recall)} correct{_ci(c.ci_low, c.ci_high)} on "
            f"{count(c.support)} images{confusion}."
        )
    return out


def _leaked_images(audit: AuditRecord) -> int | None:
    """audit.json's count of test images found in the training data (None: not checked)."""
    block = audit.integrity
    return block.leakage.leaked_images if isinstance(block, IntegrityBlock) else None


def warnings(bundle: RunBundle) -> list[str]:
    """Things a reader must know before trusting the numbers."""
    audit = bundle.audit.audit
    data = audit.dataset
    out = []
    if not data.frozen:
        out.append(
            "The held-out set is not frozen, so nothing proves it stayed the same between runs."
        )
    if data.n_skipped:
        out.append(f"{count(data.n_skipped)} image(s) could not be read and were left out.")
    imbalance = audit.metrics.imbalance
    too_few = imbalance.too_few if imbalance is not None else []
    if too_few:
        shown = ", ".join(too_few[:5]) + (" …" if len(too_few) > 5 else "")
        out.append(f"{count(len(too_few))} class(es) have too few test images to judge: {shown}.")
    n_leaked = _leaked_images(audit)
    if n_leaked:
        out.append(
            f"{n_leaked} test image(s) also appear in the training data (leakage); see Integrity."
        )
    drift = record_or_none(bundle.drift, "drift")
    if drift is not None and drift.drift:
        out.append("Production images have drifted away from the held-out set; see Drift.")
    return out


def comparison_sentence(bundle: RunBundle) -> str | None:
    """The release verdict against the previous version, if a readable comparison exists."""
    c = record_or_none(bundle.comparison, "comparison")
    if c is None:
        return None
    other = c.run_a.model.version or "the previous version"
    return f"Against {other}: {verdict_text(c.verdict)}. {verdict_detail(c)}".strip()


def executive_summary(bundle: RunBundle) -> list[str]:
    """The overview paragraph, sentence by sentence."""
    audit = bundle.audit.audit
    out = [headline(audit)]
    out.extend(findings.finding_lines(bundle.audit))  # what fails, why, what to do
    weakest = worst_classes(audit, 1)
    if weakest:
        out.append("Weakest class — " + weakest[0])
    ece = audit.metrics.ece
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
    out.extend(findings.claim_answers(bundle.audit))  # every stored claim, newest first
    out.extend(warnings(bundle))
    return out


def data_summary(audit: AuditRecord) -> list[str]:
    """The held-out set in two sentences: size, largest and smallest class, thin classes."""
    imb = audit.metrics.imbalance
    out = [
        f"The held-out set has {count(audit.dataset.n_images)} images of "
        f"{count(_n_classes(audit))} classes."
    ]
    if imb is None:
        return out
    counts = imb.test_counts  # keyed by class name
    big, small = imb.largest, imb.smallest
    if big is not None and small is not None and imb.ratio is not None:
        out.append(
            f"The largest class, {big}, has {count(counts.get(big, 0))} images and the smallest, "
            f"{small}, has {count(counts.get(small, 0))}: {num(imb.ratio, 1)} times fewer."
        )
    if imb.too_few:
        out.append(
            f"{count(len(imb.too_few))} class(es) have fewer than {count(imb.min_support)} "
            "images, so their numbers carry wide intervals."
        )
    return out


def drift_summary(drift: DriftRecord) -> list[str]:
    """A drift run in plain words: the verdict first, then what moved."""
    emb, preds = drift.embedding, drift.predictions
    moved = [p.name for p in drift.drifted_properties]
    where = f"the {count(drift.current.n_images)} production images"
    if drift.drift:
        out = [
            f"{where[0].upper()}{where[1:]} differ from the held-out set: the audit's numbers "
            "may not hold in production."
        ]
    else:
        out = [f"No drift detected: {where} look like the held-out set."]
    out.append(
        f"Image embeddings: {'different' if emb.drift else 'no significant difference'} "
        f"(MMD permutation test, {p_equals(emb.p_value)})."
    )
    out.append(
        f"Predicted classes: {'the mix changed' if preds.drift else 'the mix is stable'} "
        f"({p_equals(preds.p_value)})."
    )
    if moved:
        out.append(
            "Image properties that moved: "
            + ", ".join(moved[:8])
            + (" …" if len(moved) > 8 else "")
            + "."
        )
    return out
