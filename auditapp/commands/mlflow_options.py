"""``--mlflow`` and its options for ``run``: check the tracking store first, log after storing.

The tracking store, experiment and parent run are checked before the audit starts, so a typo
costs seconds, not an audit. A failure while logging comes after the run folder is complete:
the error names the tracking URI and the stored run, which is kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_mlflow_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MLflow")
    g.add_argument(
        "--mlflow",
        action="store_true",
        help="also log the audit to MLflow: metrics, per-class recall, tags, confusion matrix, "
        "PDF and JSON export (tracking store: --mlflow-uri, else MLFLOW_TRACKING_URI)",
    )
    g.add_argument(
        "--mlflow-uri",
        metavar="URI",
        default=None,
        help="MLflow tracking URI (http://…, sqlite:///mlflow.db, databricks); implies --mlflow",
    )
    g.add_argument(
        "--mlflow-experiment",
        metavar="NAME",
        default=None,
        help="MLflow experiment, created when new (default: the parent run's, else "
        "MLFLOW_EXPERIMENT_NAME, else MLflow's Default); implies --mlflow",
    )
    g.add_argument(
        "--mlflow-parent",
        metavar="RUN_ID",
        default=None,
        help="log as a nested run of this MLflow run (e.g. the training run); implies --mlflow",
    )


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.mlflow or args.mlflow_uri or args.mlflow_experiment or args.mlflow_parent)


def mlflow_target(args: argparse.Namespace) -> Any:
    """The checked MLflow target when logging was asked for, else None (before the audit)."""
    if not wanted(args):
        return None
    from auditapp.mlflow_log import DEFAULT_EXPORTS, check_exports, connect

    check_exports(DEFAULT_EXPORTS)
    return connect(args.mlflow_uri, args.mlflow_experiment, args.mlflow_parent)


def log_stored(target: Any, path: Path, store: str | Path | None = None) -> None:
    """Log the stored audit run at ``path``; one line on stderr (stdout stays the run's)."""
    if target is None:
        return
    from auditapp.mlflow_log import log_to, shown_uri
    from audits.errors import AuditError

    try:
        run_id = log_to(target, path, store=store)
    except AuditError as exc:
        raise AuditError(f"{exc}; the audit run is stored in {path}") from None
    print(
        f"logged to MLflow ({shown_uri(target.uri)}): run {run_id} "
        f"in experiment {target.experiment_id}",
        file=sys.stderr,
    )
