"""A drift run in words for people: the decision rule, property values rounded for reading,
and why Evidently's own summary may disagree with the verdict. Used by the terminal, the
dashboard and the exports, so that they say the same thing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audits.formatting import NA, ci, count, is_num, pct

if TYPE_CHECKING:
    from audits.runs.models_drift import DriftAccuracy

#: Properties measured in whole pixels.
_PIXELS = {"width", "height"}


def rule_sentence(alpha: Any) -> str:
    """``drift_rule`` (``embedding.drift or predictions.drift or any(property.drift)``) in words."""
    level = f"{alpha:g}" if is_num(alpha) else "0.05"
    return (
        f"The batch counts as drifted when any one of three checks is significant at the {level} "
        "level: what the model sees (its embeddings, MMD permutation test), what it answers "
        "(predicted classes or confidence), or any one image property (after Holm's correction "
        "across the properties)."
    )


EVIDENTLY_NOTE = (
    "Evidently's own summary at the top of its report calls the data set drifted when more "
    "than half of the columns drift; that is Evidently's default rule, not this audit's. The "
    "verdict here follows the rule above, and the per-column tests are the same."
)


def property_value(name: str, value: Any) -> str:
    """One property's mean for people: pixels as whole numbers, file sizes in kB, the rest
    to about three significant figures (``128``, ``24.3 kB``, ``791``, ``0.57``)."""
    if not is_num(value):
        return NA
    if name in _PIXELS:
        return count(round(value))
    if name == "file_size":
        return f"{value / 1000:,.1f} kB"
    magnitude = abs(value)
    if magnitude >= 100:
        return count(round(value))
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if magnitude >= 0.1 or value == 0 else f"{value:.3f}"


def accuracy_sentence(batch: str, acc: DriftAccuracy | None) -> str | None:
    """'Accuracy on the 400 labelled images of fan_batch: 41.8% (95% CI 37.0–46.7%), against
    67.4% (64.7–70.0%) on the held-out set.' None when the batch has no labels."""
    if acc is None or not is_num(acc.current):
        return None

    def interval(low: Any, high: Any) -> str:
        return f" (95% CI {ci(low, high)})" if is_num(low) and is_num(high) else ""

    text = (
        f"Accuracy on the {count(acc.n_current_labelled)} labelled images of {batch}: "
        f"{pct(acc.current)}{interval(acc.current_ci_low, acc.current_ci_high)}"
    )
    if is_num(acc.reference):
        text += (
            f", against {pct(acc.reference)}"
            f"{interval(acc.reference_ci_low, acc.reference_ci_high)} on the held-out set"
        )
    return text + "."
