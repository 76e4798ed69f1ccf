"""Suspect labels before and after failure patterns (issue 13).

1. The demo store: for every audit run, confident learning's flags (the old suspect list) and
   the suspects left once failure patterns are taken out, recomputed from the stored
   predictions and probabilities (the store is only read).
2. Planted flips: sklearn's digits (1,797 real 8x8 images), 5% of labels flipped at random,
   out-of-sample probabilities from a LogisticRegression with ``cross_val_predict``; the
   precision of the top-k suspects (k = flips) of both methods, per seed.

    python bench/suspect_labels.py [--store audit-store] [--seeds 10]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audits.failure_patterns import find_patterns, pattern_rows  # noqa: E402
from audits.label_consensus import other_versions, table_fingerprint
from audits.labels import flagged_mask, self_confidence, suspect_labels
from audits.store import list_runs


def both(
    table: pd.DataFrame, probs: np.ndarray, classes: list[str], others: list | None = None
) -> tuple[dict, dict, dict]:
    """(old suspects, patterns, new suspects) over one predictions table."""
    old = suspect_labels(table, probs, classes, max_listed=100_000)
    found = find_patterns(
        table,
        classes,
        flagged=flagged_mask(table, probs),
        self_confidence=self_confidence(table, probs),
    )
    new = suspect_labels(
        table, probs, classes, max_listed=100_000, exclude=pattern_rows(found), others=others or ()
    )
    return old, found, new


def demo(store: str) -> None:
    print(
        "| run | labelled | old: CL flags | failure patterns | flags in patterns | suspects "
        "(alone) | suspects (with the other version) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in sorted(list_runs(store), key=lambda r: r.run_id):
        if run.kind != "audit":
            continue
        table = run.table
        classes = list(run.audit.model.classes)
        old, found, new = both(table, run.probabilities, classes)
        ident = run.identity
        others = other_versions(Path(store), ident.name, ident.version, table_fingerprint(table))
        *_, agreed = both(table, run.probabilities, classes, others)
        print(
            f"| {ident.name} {ident.version} | {old['n_labelled']} | "
            f"{old['n_flagged']} | {len(found['patterns'])} | {new['n_in_patterns']} | "
            f"{new['n_flagged']} | {agreed['n_flagged']} (vs {', '.join(agreed['versions'])}) |"
        )


def digits(seeds: int) -> None:
    x, y = load_digits(return_X_y=True)
    classes = [str(d) for d in range(10)]
    k = round(0.05 * len(y))
    print(f"\n| seed | flips | old precision@{k} | new precision@{k} | patterns |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    olds, news = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flips = rng.choice(len(y), k, replace=False)
        noisy = y.copy()
        noisy[flips] = (y[flips] + rng.integers(1, 10, k)) % 10
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        p = cross_val_predict(model, x, noisy, cv=5, method="predict_proba")
        pred = p.argmax(axis=1)
        table = pd.DataFrame(
            {
                "row": np.arange(len(y)),
                "path": [f"{i}.png" for i in range(len(y))],
                "label_idx": noisy,
                "pred_idx": pred,
                "correct": pred == noisy,
            }
        )
        old, found, new = both(table, p, classes)
        planted = set(flips.tolist())
        prec = [len(planted & {r["row"] for r in o["rows"][:k]}) / k for o in (old, new)]
        olds.append(prec[0])
        news.append(prec[1])
        print(f"| {seed} | {k} | {prec[0]:.3f} | {prec[1]:.3f} | {len(found['patterns'])} |")
    print(f"| mean | {k} | {np.mean(olds):.3f} | {np.mean(news):.3f} | |")
    print(f"new >= old in {sum(n >= o for o, n in zip(olds, news, strict=True))} of {seeds}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="audit-store")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    demo(args.store)
    digits(args.seeds)


if __name__ == "__main__":
    main()
