"""Leakage between a model's training set and the held-out set it is audited on.

Three ways a test image can have been seen in training, one module each:

* **exact duplicates** (``exact.py``): the same bytes (file sha256) on both sides;
* **group leakage** (``groups.py``): the same ``group`` (one physical object, e.g. one car
  advert) on both sides, even when every file differs;
* **near duplicates** (``near.py``, on ``signatures.py`` and ``nearest.py``): a resized or
  re-encoded copy, found by perceptual signatures (and optionally the model's embeddings).

``report.find_leakage`` runs the three and combines them into ``integrity.json``'s
``leakage`` section, with accuracy with and without the leaked images.
"""
