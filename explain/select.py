"""Which images to explain: the failures (capped), and correct ones of the same classes as a baseline.

- failures: labelled rows with a wrong prediction, highest loss first. Over the cap, either
  the top ``max_failures`` by loss (``top_by_loss``) or a seeded sample spread over the
  confused pairs in proportion to their size, each pair keeping at least one image, so that
  every pair still gets its numbers.
- baseline: for each class among the chosen failures (true or predicted), a seeded sample
  of up to ``baseline`` correctly predicted images of that class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MAX_FAILURES = 500
DEFAULT_BASELINE = 50


@dataclass(frozen=True)
class Selection:
    """Rows of the predictions table to explain, in the order they are stored."""

    failures: pd.DataFrame
    baseline: pd.DataFrame
    n_failures: int  # all failures in the run
    capped: bool

    @property
    def rows(self) -> pd.DataFrame:
        """Failures then baseline, with a ``kind`` column."""
        return pd.concat(
            [self.failures.assign(kind="failure"), self.baseline.assign(kind="baseline")],
            ignore_index=True,
        )


def _by_loss(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["loss", "row"], ascending=[False, True], kind="stable")


def _spread(failures: pd.DataFrame, cap: int, rng: np.random.Generator) -> pd.DataFrame:
    """A sample of ``cap`` failures, proportional per (true, predicted) pair, at least one each."""
    groups = {key: part for key, part in failures.groupby(["label_idx", "pred_idx"], sort=True)}
    sizes = {key: len(part) for key, part in groups.items()}
    if len(groups) >= cap:
        # More pairs than room: one image (the highest loss) from each of the largest pairs.
        keys = sorted(groups, key=lambda k: (-sizes[k], k))[:cap]
        return pd.concat([_by_loss(groups[k]).head(1) for k in keys])
    total = sum(sizes.values())
    quota = {k: max(1, int(cap * n / total)) for k, n in sizes.items()}
    # The at-least-one rule can overshoot the cap: take back from the largest quotas.
    spare = cap - sum(quota.values())
    while spare < 0:
        biggest = max(quota, key=lambda k: (quota[k], k))
        quota[biggest] -= 1
        spare += 1
    # Hand out what rounding left over to the largest pairs first.
    for k in sorted(groups, key=lambda k: (-sizes[k], k)):
        if spare <= 0:
            break
        extra = min(spare, sizes[k] - quota[k])
        quota[k] += extra
        spare -= extra
    parts = []
    for k, part in groups.items():
        take = min(quota[k], len(part))
        picked = rng.choice(len(part), size=take, replace=False)
        parts.append(part.iloc[np.sort(picked)])
    return pd.concat(parts)


def select_images(
    table: pd.DataFrame,
    max_failures: int | None = DEFAULT_MAX_FAILURES,
    top_by_loss: bool = False,
    baseline: int = DEFAULT_BASELINE,
    seed: int = 0,
) -> Selection:
    """Choose the failures and the baseline from a predictions table (see module doc)."""
    rng = np.random.default_rng(seed)
    labelled = table[table["label_idx"] >= 0]
    failures = labelled[~labelled["correct"].astype(bool)]
    n_failures = len(failures)
    capped = max_failures is not None and n_failures > max_failures
    if capped:
        assert max_failures is not None
        chosen = (
            _by_loss(failures).head(max_failures)
            if top_by_loss
            else _spread(failures, max_failures, rng)
        )
    else:
        chosen = failures
    chosen = _by_loss(chosen)

    parts = []
    if baseline > 0:
        correct = labelled[labelled["correct"].astype(bool)]
        # Classes on either side of a confusion: "why carrera" maps are compared with correct
        # carreras, and the true class's correct images are the pair's baseline.
        classes = set(chosen["label_idx"].tolist()) | set(chosen["pred_idx"].tolist())
        for cls in sorted(classes):
            pool = correct[correct["label_idx"] == cls]
            if len(pool) > baseline:
                pool = pool.iloc[np.sort(rng.choice(len(pool), size=baseline, replace=False))]
            parts.append(pool)
    base = pd.concat(parts) if parts else labelled.iloc[0:0]
    return Selection(
        failures=chosen.reset_index(drop=True),
        baseline=base.sort_values("row").reset_index(drop=True),
        n_failures=n_failures,
        capped=bool(capped),
    )
