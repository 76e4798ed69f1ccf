"""Near-duplicate thresholds, and how they were measured.

For each held-out image, the training images within ``PHASH_MAX_DISTANCE`` bits of its
64-bit phash are candidates, and the one whose 16 x 16 grey thumbnail is closest (RMS
difference, grey levels) is a near duplicate when that difference is at most
``THUMB_RMS_MAX``. Optionally (``cosine_min``), the model's own embeddings flag pairs too:
cosine of the centred embeddings (training mean subtracted) of each held-out image's nearest
training image.

Measured on the bundled demo (car renders, 128 px: 1,200 held-out images against the 3,000 of
``train`` and of ``train_v1``, and 300 copies of training images resized to 0.4-2x and
JPEG-compressed at quality 40-95):

* the 64-bit phash alone cannot tell them apart: copies are within 4 bits of their source,
  but 17 (``train``) and 29 (``train_v1``) clean held-out images are at distance 0 from a
  *different* training image (studio shots of other cars with the same layout), and over 500
  within 8 bits. So it only picks candidates;
* the 16 x 16 grey thumbnail decides: copies are within RMS 1.3 of their source, the closest
  clean pair is 4.4 apart. ``THUMB_RMS_MAX = 2.5`` sits in between. (Colour thumbnails do
  worse: JPEG's halved colour resolution moves copies up to 4.8. A crop or shift by a pixel
  or two is not caught: on these renders it moves as far as a different car does.)
* the demo model's penultimate embeddings do not separate copies from distinct images:
  with 1.0.0, a copy's centred cosine to its source ranges 0.66-1.0 (median 0.984) while
  clean held-out images reach 0.988 with their nearest training image (1% of them >= 0.98);
  uncentred, copies >= 0.971 and clean images up to 0.996 (a third >= 0.98). A classifier's
  embedding says "same class", not "same picture", so the embedding check is off by default
  (``COSINE_MIN = None``); switch it on for a model whose embeddings are instance-level.
"""

from __future__ import annotations

PHASH_MAX_DISTANCE = 8
THUMB_RMS_MAX = 2.5
COSINE_MIN: float | None = None
#: Training images searched for near duplicates at most; a larger training set is sampled
#: (uniformly, fixed seed) and the report says so. Exact and group checks always use all rows.
MAX_TRAIN_NEAR = 50_000
