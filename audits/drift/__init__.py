"""Drift: does a current batch differ from the reference, and how? (``python -m audits drift``)

Three views, one decision rule:

* **embedding** (the headline, ``embedding.py``): unbiased MMD² with an RBF kernel on the
  model's penultimate embeddings, permutation test (``audits.mmd``); drift when p < alpha.
* **properties** (``properties.py``): brightness, contrast, saturation, sharpness, width,
  height, aspect ratio, format and file size per image (``audits.image_properties``), compared
  column by column with Evidently's ``DataDriftPreset``. Numeric columns use its two-sample
  Kolmogorov–Smirnov test and ``format`` its chi-square test, set explicitly: left to choose,
  Evidently 0.7 switches to Wasserstein / Jensen–Shannon *distances* (no p-value) above 1,000
  reference rows. A property drifts when its Holm-adjusted p-value (over the nine properties)
  is below alpha, so that nine looks at one batch do not raise nine times the false alarms;
  ``p_value`` is Evidently's own, ``p_adjusted`` the one that decides.
* **predictions** (``predictions.py``): predicted-class distribution (chi-square on the
  2 x classes contingency table, classes with an expected count below 5 merged into "other")
  and confidence (two-sample KS); ``p_value`` = Bonferroni over the two,
  ``min(1, 2 min(p_class, p_conf))``. Accuracy on each side that has labels is reported, not
  tested.

Overall ``drift`` = embedding drift OR any property drift OR prediction drift
(``analysis.py``). Each of the three views holds its false alarms at alpha, so the overall rate
is at most 3 x alpha by the union bound (views are correlated, so less in practice;
``bench/drift.py --demo`` measures it over random splits of the demo's held-out set).

The ``examples`` (``examples.py``) are the current images farthest from the reference: mean
Euclidean distance of each current embedding to its ``k`` nearest reference embeddings, with
``ratio`` = that distance over the median of the same quantity within the reference.

``side.py`` holds one data set after inference, ``record.py`` the ``drift.json`` document. The
run itself (load, infer both sides, analyse, store) is ``auditapp.pipeline.drift.run_drift``.
"""
