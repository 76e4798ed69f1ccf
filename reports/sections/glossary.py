"""Appendix D: how to read the report, term by term."""

from __future__ import annotations

from reports.sections.base import c, cols
from reports.tree import Section, Table

GLOSSARY = [
    ("Recall", "The share of a class's images the model labels correctly (per-class accuracy)."),
    ("Precision", "The share of the images predicted as a class that really are that class."),
    ("F1", "The harmonic mean of precision and recall."),
    (
        "Balanced accuracy",
        "The mean recall over classes: rare classes count as much as common ones.",
    ),
    (
        "95% interval (Wilson)",
        "The range that holds the true value with 95% confidence, given the number of images; "
        "narrow with many images, wide with few.",
    ),
    (
        "Expected calibration error",
        "The average gap between the model's stated confidence and its actual accuracy, over "
        "groups of similar confidence.",
    ),
    ("Top-k accuracy", "How often the true class is among the model's k most probable classes."),
    (
        "Held-out fingerprint",
        "A sha256 over the sorted (path, file sha256, label) rows of the test set: any change "
        "to an image or label changes it.",
    ),
    (
        "McNemar's test",
        "Compares two versions on the same images, using only the images one got right and the "
        "other wrong.",
    ),
    (
        "MMD²",
        "Maximum mean discrepancy between the embeddings of two image sets; its p-value comes "
        "from a permutation test.",
    ),
    ("Grad-CAM", "A heat-map of the image regions that most increased the score of a class."),
]


def glossary_section() -> Section:
    """Appendix D: the glossary table."""
    table = Table(
        cols(("Term", "left", "26%"), "Meaning"),
        [[c(term), c(meaning)] for term, meaning in GLOSSARY],
        css="compact",
    )
    return Section(
        "appendix-glossary", "Appendix D — How to read this report", [table], appendix=True
    )
