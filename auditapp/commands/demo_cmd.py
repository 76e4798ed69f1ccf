"""``demo``: build the bundled demo store (data, two audited versions, drift, comparison) if missing."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="build the bundled demo store if it is missing", description=__doc__
    )
    p.add_argument("--store", default="audit-store")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from auditapp.demo import ensure_demo_store

    path = ensure_demo_store(args.store, args.device)
    print(path)
    return 0
