"""Options that several commands share, declared once so their names, help and checks never drift.

The ``type=`` checkers refuse a bad value while the command line is parsed, before any work,
with one line naming the option (``error: argument --workers: must be 0 or more, got -1``).
"""

from __future__ import annotations

import argparse
import os
import re

#: ``--device`` values: auto, cpu, cuda, cuda:N, mps (whether one is present is checked later).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?|mps")
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (default auto: CUDA when present, else CPU)"
#: Shown in usage lines: the accepted ``--device`` values (cuda:N is any GPU index).
DEVICE_METAVAR = "{auto,cpu,cuda,cuda:N,mps}"

#: The store every command defaults to when ``--store`` is not given; the dashboard reads the
#: same variable (``dashboard/state.py``), so one export points both at one store.
STORE_ENV = "AUDIT_STORE"
FALLBACK_STORE = "audit-store"


def default_store() -> str:
    """``$AUDIT_STORE`` when set (and not empty), else ``audit-store``; ``--store`` overrides."""
    return os.path.expanduser(os.environ.get(STORE_ENV) or FALLBACK_STORE)


def add_store_option(p: argparse.ArgumentParser, help: str = "audit store folder") -> None:
    """``--store`` defaulting to ``$AUDIT_STORE``, else ``./audit-store``."""
    p.add_argument(
        "--store",
        default=default_store(),
        metavar="DIR",
        help=f"{help} (default: ${STORE_ENV} if set, else ./{FALLBACK_STORE})",
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--batch-size``)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (``--workers``, ``--explain-max``: 0 has a meaning there)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def batch_date(text: str) -> str:
    """``--batch-date``: a day or an ISO time (``audits.drift.batch.check_batch_date``)."""
    from audits.drift.batch import check_batch_date
    from audits.errors import AuditError

    try:
        return str(check_batch_date(text))
    except AuditError as exc:
        raise argparse.ArgumentTypeError(
            str(exc).removeprefix(f"--batch-date {text!r}: ")
        ) from None


def device_name(text: str) -> str:
    """One of auto, cpu, cuda, cuda:N, mps."""
    value = text.strip().lower()
    if not DEVICE_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; choose auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps"
        )
    return value


def add_device_option(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, help: str = DEVICE_HELP
) -> None:
    """``--device`` with the one set of accepted values (shown in the usage line)."""
    p.add_argument("--device", default="auto", type=device_name, metavar=DEVICE_METAVAR, help=help)


def add_inference_options(p: argparse.ArgumentParser) -> None:
    """``--store``, ``--device``, ``--batch-size`` and ``--workers`` of the commands that run a
    model over a data set (``run``, ``drift``)."""
    add_store_option(p)
    add_device_option(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="images per batch (default: by input size; 64 for 224x224 RGB, up to 512 for small inputs)",
    )
    p.add_argument(
        "--workers",
        type=non_negative_int,
        default=None,
        help="DataLoader workers reading images (default: by cores; 0: in this process)",
    )
