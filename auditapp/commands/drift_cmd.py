"""``drift``: does a current batch (usually unlabelled) differ from the reference set, and how?"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "drift", help="drift between a reference set and a current batch", description=__doc__
    )
    p.add_argument("--model", required=True, help="model folder holding model.toml")
    p.add_argument(
        "--reference",
        required=True,
        help="reference set (e.g. the held-out set): ImageFolder or manifest",
    )
    p.add_argument(
        "--current",
        required=True,
        help="current batch: ImageFolder, folder of images or manifest (labels optional)",
    )
    p.add_argument(
        "--store", default="audit-store", help="audit store folder (default ./audit-store)"
    )
    p.add_argument(
        "--device", default="auto", help="auto | cpu | cuda (default auto: CUDA when present)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--workers", type=int, default=None, help="DataLoader workers (default: by cores)"
    )
    p.add_argument(
        "--permutations", type=int, default=1000, help="permutations of the MMD test (default 1000)"
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (trusted files only)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=main)


def _p(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def summary_lines(meta: dict[str, Any]) -> list[str]:
    """A short human summary of a stored drift run (reads drift.json; computes nothing)."""
    from audits.formatting import pct

    emb, preds = meta["embedding"], meta["predictions"]
    ref, cur = meta["reference"], meta["current"]
    drifted = [p for p in meta["properties"] if p["drift"]]
    lines = [
        f"{meta['model']['name']} {meta['model']['version']}: reference {ref['n_images']} images "
        f"({ref['n_skipped']} skipped) vs current {cur['n_images']} ({cur['n_skipped']} skipped)",
        f"drift: {'YES' if meta['drift'] else 'no'} (alpha {meta['alpha']})",
        f"  embedding   MMD² {emb['mmd2']:.4g}, p {_p(emb['p_value'])} ({emb['permutations']} permutations)"
        f"{'  DRIFT' if emb['drift'] else ''}",
        f"  predictions p {_p(preds['p_value'])} (classes {_p(preds['classes']['p_value'])}, confidence "
        f"{_p(preds['confidence']['p_value'])}: mean {preds['confidence']['reference_mean']:.3f} -> "
        f"{preds['confidence']['current_mean']:.3f}){'  DRIFT' if preds['drift'] else ''}",
    ]
    acc = preds["accuracy"]
    if acc["current"] is not None:
        lines.append(f"  accuracy    {pct(acc['reference'])} -> {pct(acc['current'])}")
    if drifted:
        parts = []
        for p in drifted:
            if "reference_mean" in p:
                parts.append(f"{p['name']} {p['reference_mean']:.4g} -> {p['current_mean']:.4g}")
            else:
                parts.append(p["name"])
        lines.append(
            f"  properties  {len(drifted)} of {len(meta['properties'])} drifted: "
            + "; ".join(parts)
        )
    else:
        lines.append(f"  properties  none of {len(meta['properties'])} drifted")
    if meta["examples"]:
        far = meta["examples"][0]
        ratio = f" ({far['ratio']:.1f}x the reference spacing)" if far.get("ratio") else ""
        lines.append(f"  farthest    {far['path']}{ratio}")
    return lines


def main(args: argparse.Namespace) -> int:
    from auditapp.pipeline.drift import run_drift
    from audits.store import load_run

    path = run_drift(
        args.model,
        args.reference,
        args.current,
        store=args.store,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        permutations=args.permutations,
        alpha=args.alpha,
        seed=args.seed,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
    )
    if not args.quiet:
        for line in summary_lines(load_run(path).meta):
            print(line)
    print(path)
    return 0
