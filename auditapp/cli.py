"""The command line: ``python -m audits COMMAND``. Each command lives in ``auditapp/commands``.

Errors are one line on stderr and a non-zero exit, never a traceback (set AUDITS_DEBUG=1 to
see one). A command's last line on stdout is its result (a run folder, a verdict…).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from audits.errors import AuditError
from audits.version import __version__

#: Command modules, in the order ``--help`` lists them. Each has ``add_parser(subparsers)``
#: and ``main(args) -> int``, and imports heavy libraries inside ``main``.
COMMANDS = (
    "run",
    "freeze",
    "list",
    "explain",
    "drift",
    "compare",
    "claims",
    "export",
    "verify",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audits",
        description="Audit PyTorch image classifiers: per-class metrics, Grad-CAM on failures, drift, release gates, exports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"auditapp.commands.{name.replace('-', '_')}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("auditapp.commands."):
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("AUDITS_DEBUG"):
            traceback.print_exc()
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (a bug; rerun with AUDITS_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 2
