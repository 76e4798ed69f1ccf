"""``dashboard``: serve the Streamlit dashboard on a store (needs the ``[dashboard]`` extra).

Runs ``streamlit run streamlit_app.py -- --store DIR`` with the dashboard's theme, from the
repository or from the installed package alike, until Ctrl+C. Listens on localhost unless
``--host`` says otherwise: audits describe a company's models and data.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from auditapp.commands.options import add_store_option
from auditapp.json_output import set_result, wants_json
from audits.errors import AuditError

#: The repository root, or ``model_audit/`` when installed: the entry script sits there so that
#: its ``st.Page("dashboard/pages/...")`` paths resolve (scripts/wheel_layout.py).
ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
CONFIG = ROOT / ".streamlit" / "config.toml"
DEFAULT_PORT = 8501


def port_number(text: str) -> int:
    """A TCP port, 1–65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the dashboard (Streamlit) on a store",
        description=__doc__.split("\n\n")[0],
    )
    add_store_option(p, help="store to show")
    p.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"port to serve on (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--host",
        default="localhost",
        metavar="ADDRESS",
        help="address to listen on (default localhost; 0.0.0.0 serves every network interface)",
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser tab (on a server, in CI)",
    )
    p.set_defaults(handler=main)


def config_flags(config: Path = CONFIG) -> list[str]:
    """The dashboard's ``.streamlit/config.toml`` as ``streamlit run`` flags.

    Streamlit reads that file only from the working folder; passed as flags, the theme and
    settings hold wherever the command is started.
    """
    if not config.is_file():
        return []

    def flat(prefix: str, table: dict[str, Any]) -> list[str]:
        out = []
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                out += flat(name, value)
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                out.append(f"--{name}={text}")
        return out

    return flat("", tomllib.loads(config.read_text(encoding="utf-8")))


def streamlit_command(store: Path, port: int, host: str, browser: bool) -> list[str]:
    """The ``streamlit run`` command line the dashboard is served with."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        *config_flags(),
        f"--server.port={port}",
        f"--server.address={host}",
        f"--server.headless={str(not browser).lower()}",
        "--server.fileWatcherType=none",  # the installed code does not change while it runs
        "--browser.gatherUsageStats=false",
        "--", "--store", str(store),
    ]  # fmt: skip


def run_until_stopped(command: list[str], env: dict[str, str], out: Any) -> int:
    """Run Streamlit as a child and pass SIGTERM/SIGHUP on to it: ``kill``, ``timeout``,
    systemd or ``docker stop`` on this process must not leave a server holding the port."""
    proc = subprocess.Popen(command, env=env, stdout=out)

    def forward(signum: int, _frame: Any) -> None:
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl+C reaches Streamlit too (same process group)
        proc.terminate()
        proc.wait()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise AuditError(
            "the dashboard needs Streamlit, which is not installed: "
            "pip install 'model-audit[dashboard]'"
        )
    store = Path(args.store).expanduser().resolve()
    if not store.is_dir():
        raise AuditError(
            f"{store}: no audit store there; build the demo store with "
            f"`model-audit demo --store {args.store}` or pass --store DIR"
        )
    url = f"http://{args.host}:{args.port}"
    print(f"dashboard: {url} showing {store} (Ctrl+C stops it)", file=sys.stderr, flush=True)
    command = streamlit_command(store, args.port, args.host, not args.no_browser)
    env = {**os.environ, "AUDIT_STORE": str(store)}
    # With --json, stdout holds only our one object: Streamlit's own messages go to stderr.
    out = sys.__stderr__ if wants_json(args) else None
    code = run_until_stopped(command, env, out)
    set_result(args, {"store": str(store), "url": url, "exit_code": code})
    if code not in (0, -2, -signal.SIGTERM, -signal.SIGHUP):
        raise AuditError(f"Streamlit stopped with exit code {code} (its messages are above)")
    return 0
