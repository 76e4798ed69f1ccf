"""``verify``: check an export folder against its manifest.json; names every altered or missing file."""

from __future__ import annotations

import argparse

from auditapp.json_output import set_result


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check an export folder's sha256 manifest (exit 0 ok, 1 altered)",
        description=__doc__,
    )
    p.add_argument("folder", help="an export folder (holds manifest.json)")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from reports.manifest import verify

    problems = verify(args.folder)
    set_result(
        args,
        {
            "ok": not problems,
            "folder": args.folder,
            # one entry per altered, missing or unlisted file, as in the text output
            "altered": problems,
        },
    )
    if not problems:
        print("ok")
        return 0
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s): " + "; ".join(problems))
    return 1
