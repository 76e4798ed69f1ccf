"""The command line: ``python -m audits COMMAND``. Each command lives in ``auditapp/commands``.

Errors are one line on stderr, never a traceback (set AUDITS_DEBUG=1 to see one). Exit codes
(``EXIT_CODES_EPILOG``, shown by ``--help``): 0 ok; 1 a gate says no (``compare`` hold,
``drift --fail-on-drift`` with drift, ``claims --strict`` with a contradicted claim, ``verify``
altered); 2 a user or environment error (a bad option or input, a full disk, a read-only store,
a model that fails); 3 a bug in this program, whose traceback goes to a log file named in the
message. A command's last line on stdout is its result (a run folder, a verdict…); with
``--json`` stdout is one JSON object instead (``auditapp/json_output.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from auditapp.json_output import argv_wants_json, dumps, error_payload, get_result, wants_json
from audits.errors import AuditError, os_error_text
from audits.progress import set_enabled as set_progress
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
    "dashboard",
    "review",
    "relabel",
    "history",
)

EXIT_OK, EXIT_GATE, EXIT_ERROR, EXIT_BUG = 0, 1, 2, 3


#: The one exit-code table: ``--help`` shows it, the README repeats it.
EXIT_CODES_EPILOG = """\
exit codes:
  0  ok
  1  a gate says no: compare holds, drift --fail-on-drift found drift,
     claims --strict has a contradicted claim, verify found altered files
  2  a user or environment error (bad option or input, missing file, full disk,
     read-only store, a model that fails)
  3  a bug in this program (the traceback goes to a log file named in the message)

every command takes --json (before or after the command name): exactly one JSON
object on stdout (on an error {"error": ..., "exit_code": N}); progress bars,
warnings and the human summary go to stderr. --store defaults to $AUDIT_STORE if
set, else ./audit-store.
"""

JSON_HELP = "print the result as one JSON object on stdout (human output goes to stderr)"


class _Parser(argparse.ArgumentParser):
    """An option error is one line, like every other error (argparse prints the usage too)."""

    #: The last option error, for ``--json`` (argparse reports it by exiting).
    last_error: str | None = None

    def error(self, message: str) -> NoReturn:
        line = f"error: {message} (see: {self.prog} --help)"
        _Parser.last_error = line
        self.exit(EXIT_ERROR, line + "\n")


def program_name() -> str:
    """``model-audit`` when run through the console script, else ``python -m audits``."""
    return "model-audit" if Path(sys.argv[0]).name == "model-audit" else "python -m audits"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=program_name(),
        description="Audit PyTorch image classifiers: per-class metrics, Grad-CAM on failures, drift, release gates, exports.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="a command (COMMAND --help for its options)"
    )
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"auditapp.commands.{name.replace('-', '_')}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("auditapp.commands."):
                continue  # command not built yet
            raise
        module.add_parser(sub)
    for command in sub.choices.values():
        _add_json_option(command)
    return parser


def _add_json_option(p: argparse.ArgumentParser) -> None:
    """``COMMAND ... --json`` too; SUPPRESS keeps a global ``--json`` from being reset."""
    if "--json" not in p._option_string_actions:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
    if not p.epilog:
        p.epilog = "exit codes: 0 ok, 1 a gate says no, 2 user or environment error, 3 a bug (python -m audits --help)"


def main(argv: list[str] | None = None) -> int:
    _ignore_file_size_signal()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = argv_wants_json(argv)
    parser = build_parser()
    _Parser.last_error = None
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if as_json and exc.code == EXIT_ERROR:
            _print_json(error_payload(_Parser.last_error or "invalid command line", EXIT_ERROR))
        raise
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        if as_json:
            _print_json(error_payload("error: no command given", EXIT_ERROR))
        return EXIT_ERROR
    set_progress(not getattr(args, "quiet", False))
    if not wants_json(args):
        return _run(args, argv)[0]
    # Human output (tables, summaries, stray prints of model code) goes to stderr, so
    # stdout holds exactly one JSON object.
    with contextlib.redirect_stdout(sys.stderr):
        code, error = _run(args, argv)
    if error is not None:
        _print_json(error)
    else:
        result = get_result(args)
        _print_json({**result, "exit_code": code} if result is not None else {"exit_code": code})
    return code


def _print_json(payload: dict) -> None:
    sys.stdout.write(dumps(payload) + "\n")
    sys.stdout.flush()


def _run(args: argparse.Namespace, argv: list[str]) -> tuple[int, dict | None]:
    """Run the command: its exit code, and the JSON error object when it failed."""
    debug = bool(os.environ.get("AUDITS_DEBUG"))
    try:
        return int(args.handler(args) or 0), None
    except AuditError as exc:
        _debug_traceback(debug)
        return _failed(str(exc))
    except KeyboardInterrupt:
        message = "error: interrupted; nothing was written"
        print(message, file=sys.stderr)
        return 130, error_payload(message, 130)
    except SystemExit as exc:  # our commands return codes; only foreign (model) code exits
        _debug_traceback(debug)
        return _failed(foreign_exit_message(exc))
    except OSError as exc:  # the environment: a full disk, permissions, a missing file…
        _debug_traceback(debug)
        return _failed(os_error_text(exc))
    except MemoryError:
        _debug_traceback(debug)
        return _failed("out of memory; use a smaller --batch-size or fewer --workers")
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda's, without importing torch
            _debug_traceback(debug)
            return _failed(f"out of GPU memory ({_first_line(exc)}); use a smaller --batch-size")
        _debug_traceback(debug)
        log = write_bug_log(exc, argv)
        where = f"with the log at {log}" if log else "(rerun with AUDITS_DEBUG=1 for the traceback)"
        message = (
            f"error: unexpected {type(exc).__name__}: {_first_line(exc)} "
            f"(a bug — please report it {where})"
        )
        print(message, file=sys.stderr)
        return EXIT_BUG, error_payload(message, EXIT_BUG, log=str(log) if log else None)


def _failed(message: str) -> tuple[int, dict]:
    code = _fail(message)
    return code, error_payload(f"error: {' '.join(message.split())}", code)


def _fail(message: str) -> int:
    # One line, whatever the message holds (a path with a newline, a multi-line library error).
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_ERROR


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else "(no message)"


def _debug_traceback(debug: bool) -> None:
    if debug:
        traceback.print_exc()


def _ignore_file_size_signal() -> None:
    """Past ``ulimit -f`` a write must fail with EFBIG (a clear error), not kill the process.

    CPython ignores SIGXFSZ at start-up already; this holds when ``main`` is embedded too.
    """
    if hasattr(signal, "SIGXFSZ"):
        # Outside the main thread signals cannot be set: leave it as it is there.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def foreign_exit_message(exc: SystemExit) -> str:
    """Who called ``sys.exit`` (the innermost frame: model code, never this program)."""
    frame = _innermost(exc.__traceback__)
    where = f"{frame.tb_frame.f_code.co_filename}, line {frame.tb_lineno}" if frame else "code"
    return (
        f"{where} called sys.exit({exc.code!r}) while the command ran; model code must raise "
        "an exception instead of ending the process (fix that line); nothing was stored"
    )


def _innermost(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def bug_log_path() -> Path:
    """Where a bug's traceback goes: ``$TMPDIR/model-audit-<UTC time>-<pid>.log``.

    Not the store: a failed command leaves the store unchanged, and the store may be the
    read-only or full place that failed.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return Path(tempfile.gettempdir()) / f"model-audit-{stamp}-{os.getpid()}.log"


def write_bug_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Write the traceback and what ran to ``bug_log_path()``; None when it cannot be written."""
    path = bug_log_path()
    head = [
        f"model-audit {__version__}: unexpected {type(exc).__name__}",
        f"time (UTC): {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        f"command: python -m audits {' '.join(argv)}",
        f"cwd: {os.getcwd()}",
        f"python {platform.python_version()} on {platform.platform()}",
        "",
    ]
    body = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        path.write_text("\n".join(head) + body, encoding="utf-8")
    except OSError:
        return None
    return path
