"""The glossary appendix: how to read the report, term by term.

Every statistical test or method the report can name has one plain sentence here;
``TEST_NAMES`` maps the words that name it in the report to its glossary term, and the tests
check that each name found in a rendered report has its entry.
"""

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
    ("Top-k accuracy", "How often the true class is among the model's k most probable classes."),
    (
        "95% interval (Wilson)",
        "The range that holds the true value with 95% confidence, given the number of images; "
        "narrow with many images, wide with few (Wilson's score interval).",
    ),
    (
        "Newcombe interval",
        "A 95% interval for the difference between two accuracies measured on the same images.",
    ),
    (
        "p-value",
        "How often a difference at least this large would appear by chance if there were no "
        "real difference; below 0.05 is called significant.",
    ),
    (
        "Score test",
        "Tests whether a measured share (such as an accuracy) is above or below a stated value, "
        "using the same formula as the Wilson interval.",
    ),
    (
        "Fisher's exact test",
        "Tests whether the accuracy inside a group of images (a slice) differs from the "
        "accuracy on the rest, exactly, without large-sample approximations.",
    ),
    (
        "McNemar's test",
        "Compares two versions on the same images, using only the images one got right and the "
        "other wrong.",
    ),
    (
        "Clustered McNemar",
        "McNemar's test counted per group of images of one object (one car advert) instead of "
        "per image, so several shots of one car do not count as independent evidence.",
    ),
    (
        "Sign-flip test",
        "Tests whether a paired difference (such as balanced accuracy of two versions on the "
        "same images) is above zero by randomly swapping which version each pair came from.",
    ),
    (
        "Binomial test",
        "Tests whether a count of events (such as errors from one class into another) is larger "
        "than a background rate explains.",
    ),
    (
        "Kolmogorov–Smirnov (KS) test",
        "Tests whether a number measured on every image (such as brightness or confidence) is "
        "distributed differently in two image sets.",
    ),
    (
        "Chi-square test",
        "Tests whether the counts of categories (such as predicted classes) differ between two "
        "image sets.",
    ),
    (
        "MMD² (maximum mean discrepancy)",
        "A distance between the embeddings of two image sets; its p-value comes from a "
        "permutation test.",
    ),
    (
        "Permutation test",
        "Shuffles the images between the two sets many times and counts how often the shuffled "
        "difference is as large as the real one; that share is the p-value.",
    ),
    (
        "Holm correction",
        "Raises the p-values of several tests run together so that the chance of any false "
        "alarm stays at 5%.",
    ),
    (
        "Bonferroni correction",
        "Multiplies each of several p-values by their number, the simplest guard against false "
        "alarms when many tests are run.",
    ),
    (
        "Benjamini–Hochberg correction",
        "Adjusts the p-values of many tests so that at most 5% of the findings called "
        "significant are expected to be false alarms (false discovery rate).",
    ),
    (
        "Expected calibration error (ECE)",
        "The average gap between the model's stated confidence and its actual accuracy, over "
        "groups of similar confidence.",
    ),
    (
        "Confident learning",
        "Flags an image whose given label the model finds much less likely than another class, "
        "judged against the model's typical confidence per class (cleanlab).",
    ),
    (
        "Suspect label",
        "An image whose label may be wrong, to be checked by a person; a model that learned a "
        "shortcut also produces suspects, so they are candidates, not verdicts.",
    ),
    (
        "Failure pattern",
        "Errors concentrated in one pair of classes or one slice of the data: a systematic "
        "model failure, not noise in the labels.",
    ),
    (
        "Slice",
        "The images that share one metadata value (for example colour = red).",
    ),
    (
        "Held-out fingerprint",
        "A sha256 over the sorted (path, file sha256, label) rows of the test set: any change "
        "to an image or label changes it.",
    ),
    ("Grad-CAM", "A heat-map of the image regions that most increased the score of a class."),
    (
        "Region box",
        "The part of an image that tells the classes apart, given by the data set; the report "
        "measures how much of a heat-map falls inside it.",
    ),
]

#: A word that names a test or method in the report -> its glossary term (regex, lower case).
TEST_NAMES: dict[str, str] = {
    r"\bwilson\b": "95% interval (Wilson)",
    r"\bnewcombe\b": "Newcombe interval",
    r"\bscore test\b": "Score test",
    r"\bfisher": "Fisher's exact test",
    r"clustered mcnemar": "Clustered McNemar",
    r"\bmcnemar": "McNemar's test",
    r"sign-flip": "Sign-flip test",
    r"\bbinomial\b": "Binomial test",
    r"\bks\b|kolmogorov": "Kolmogorov–Smirnov (KS) test",
    r"chi-square|χ²": "Chi-square test",
    r"\bmmd": "MMD² (maximum mean discrepancy)",
    r"\bpermutation": "Permutation test",
    r"\bholm\b": "Holm correction",
    r"\bbonferroni\b": "Bonferroni correction",
    r"benjamini|\bbh\b": "Benjamini–Hochberg correction",
    r"calibration error|\bece\b": "Expected calibration error (ECE)",
    r"confident learning|cleanlab": "Confident learning",
    r"suspect label": "Suspect label",
    r"failure pattern": "Failure pattern",
    r"grad-cam": "Grad-CAM",
    r"p-value|\bp [=<]": "p-value",
}


def glossary_section() -> Section:
    """The glossary appendix (key letter D; ``appendices`` letters it in report order)."""
    table = Table(
        cols(("Term", "left", "26%"), "Meaning"),
        [[c(term), c(meaning)] for term, meaning in GLOSSARY],
        css="compact",
    )
    return Section(
        "appendix-glossary", "Appendix D — How to read this report", [table], appendix=True
    )
