"""Compare two audit runs of a model on the same frozen held-out set, and gate the release.

``python -m audits compare RUN_A RUN_B`` answers: is B better than A overall, beyond noise,
without a class that got worse, and no slower? The answer is ``promote`` or ``hold`` (for
human investigation) with reasons in plain words, stored as a comparison folder in the store.

The decision rule (``decide``; every threshold is a CLI flag):

1. Better overall: the primary metric (accuracy by default) improved significantly, i.e. the
   paired test gives p < alpha and the gain is at least ``min_gain`` points. For accuracy the
   test is McNemar's exact test on the images one model got right and the other wrong (the
   larger of that and the clustered McNemar p when the set has groups of several shots).
2. Not worse on the other headline metric: balanced accuracy (or accuracy, when balanced
   accuracy is primary) did not fall significantly; an overall gain bought by hurting the
   rare classes is not "better overall".
3. No class regression: no class whose recall fell with a Benjamini-Hochberg adjusted
   p < alpha (the per-class test is McNemar on that class's images).
4. No large class drop: no class whose recall fell by ``max_class_drop`` points or more with
   an unadjusted p < alpha. BH keeps false alarms rare across many classes, but a release owner
   does not wave through a 10-point drop on one variant because 40 other variants were tested
   too; a large drop that is nominally significant goes to a human. A large drop that is not
   even nominally significant (too few images to tell) is listed as a note, not a hold.
5. No slower: B's throughput >= A's x (1 - tolerance) and B's latency <= A's x (1 + tolerance),
   both as medians of per-repeat B/A ratios measured in one process (``audits.speed``). With
   ``--no-speed`` this check is skipped and the verdict says so.

Promote only when all five hold; otherwise hold, naming every failed check.

Modules: ``thresholds`` (the flags), ``align`` (pairing two runs), ``statistics`` (the numbers,
on ``audits.paired_stats``), ``decision`` (the rule), ``wording`` (every sentence), ``document``
(``comparison.json``), ``storage`` (comparison folders, run look-up, class maps). Printing for
the terminal is the application's: ``auditapp/compare_view.py``.
"""

from audits.compare.align import Aligned, align_runs, matched_classes
from audits.compare.decision import Verdict, class_status, decide
from audits.compare.document import SCHEMA_VERSION, compare_runs
from audits.compare.statistics import CI_METHOD, paired_statistics
from audits.compare.storage import load_class_map, resolve_run, save_comparison
from audits.compare.thresholds import PRIMARY_METRICS, Thresholds
from audits.compare.wording import HOLD, PROMOTE, document_reasons

__all__ = [
    "CI_METHOD",
    "HOLD",
    "PRIMARY_METRICS",
    "PROMOTE",
    "SCHEMA_VERSION",
    "Aligned",
    "Thresholds",
    "Verdict",
    "align_runs",
    "class_status",
    "compare_runs",
    "decide",
    "document_reasons",
    "load_class_map",
    "matched_classes",
    "paired_statistics",
    "resolve_run",
    "save_comparison",
]
