"""Options that several commands share, declared once so their names and help never drift."""

from __future__ import annotations

import argparse


def add_inference_options(p: argparse.ArgumentParser) -> None:
    """``--store``, ``--device``, ``--batch-size`` and ``--workers`` of the commands that run a
    model over a data set (``run``, ``drift``)."""
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
