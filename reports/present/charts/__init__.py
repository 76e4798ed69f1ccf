"""Plotly chart builders fed from stored values, shared by the dashboard and the HTML export.

Each builder takes the stored blocks of audit.json / drift.json / comparison.json and returns a
figure; nothing here computes a metric. The dashboard adds interactivity on top
(``dashboard.charts``); ``reports.charts_interactive`` embeds the figures in the HTML export.
"""

from reports.present.charts.base import MAX_LABELLED, TEMPLATE
from reports.present.charts.calibration import confidence_histogram, reliability
from reports.present.charts.classes import imbalance, per_class_recall, slices
from reports.present.charts.compare import STATUS_COLORS, compare_diff, compare_per_class
from reports.present.charts.confusion import confusion
from reports.present.charts.drift import class_shift, distribution, drift_pvalues

__all__ = [
    "MAX_LABELLED",
    "STATUS_COLORS",
    "TEMPLATE",
    "class_shift",
    "compare_diff",
    "compare_per_class",
    "confidence_histogram",
    "confusion",
    "distribution",
    "drift_pvalues",
    "imbalance",
    "per_class_recall",
    "reliability",
    "slices",
]
