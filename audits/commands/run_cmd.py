"""``run``: audit a model on a held-out set."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="audit a model on a labelled held-out set", description=__doc__)
    p.add_argument("--model", required=True, help="model folder holding model.toml")
    p.add_argument(
        "--data", required=True, help="held-out set: ImageFolder or .csv/.parquet manifest"
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
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (runs code in it: trusted files only)",
    )
    p.add_argument("--no-explain", action="store_true", help="skip Grad-CAM on failures")
    p.add_argument(
        "--no-integrity", action="store_true", help="skip leakage, suspect labels and slices"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.runner import run_audit
    from audits.store import load_run
    from audits.summary import print_summary

    skip = tuple(
        k for k, off in (("explain", args.no_explain), ("integrity", args.no_integrity)) if off
    )
    path = run_audit(
        args.model,
        args.data,
        store=args.store,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
        skip=skip,
    )
    if not args.quiet:
        print_summary(load_run(path))
    print(path)
    return 0
