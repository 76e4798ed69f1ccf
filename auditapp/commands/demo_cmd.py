"""``demo``: build the bundled demo store (data, two audited versions, drift, comparison) if missing."""

from __future__ import annotations

import argparse

from auditapp.commands.options import add_device_option, add_store_option
from auditapp.json_output import set_result


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="build the bundled demo store if it is missing", description=__doc__
    )
    add_store_option(p, help="store to build the demo runs in")
    add_device_option(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from auditapp.demo import ensure_demo_store

    path = ensure_demo_store(args.store, args.device)
    set_result(args, {"store": str(args.store), "run": str(path)})
    print(path)
    return 0
