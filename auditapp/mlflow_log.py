"""``log_run``: send a stored audit run to an MLflow tracking server or store.

One MLflow run per audit: the headline metrics and per-class recall (``recall/<class>``, names
mapped back in ``audit/recall_metric_names.json``), tags naming the weights, the data, the
auditor and the release-gate verdict (``audit.*``), and as artifacts the stored ``audit.json``,
the confusion matrix (CSV and PNG) and the exports the ``export`` command writes (PDF and JSON
by default) under ``export/``.

The tracking store is MLflow's own choice: ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else
MLflow's default. With a parent run id (or, in a notebook, while an MLflow run is active) the
audit is logged as a nested run of it, in the parent's experiment. ``MlflowClient`` is used
rather than the fluent ``mlflow.start_run`` so that logging never ends, resumes or replaces
the caller's active run.

Any failure is an ``AuditError`` naming the tracking URI; the audit run folder is only read,
so nothing stored is lost.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from auditapp.mlflow_content import audit_metrics, audit_tags, description, run_name, write_files
from audits.errors import AuditError
from audits.store import Run, load_run

DEFAULT_EXPORTS = ("pdf", "json")
#: MLflow accepts at most 1000 metrics in one ``log_batch`` call.
_BATCH = 1000
INSTALL_HINT = (
    "MLflow logging needs mlflow-skinny (and sqlalchemy + alembic for a sqlite:// store): "
    "pip install -r requirements.txt, or pip install 'model-audit[mlflow]'"
)


@dataclass(frozen=True)
class Target:
    """Where an audit is logged: a checked tracking store, experiment and optional parent run."""

    client: Any  # mlflow.tracking.MlflowClient
    uri: str
    experiment_id: str
    parent_run_id: str | None = None


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise AuditError(INSTALL_HINT) from None
    return mlflow


def shown_uri(uri: str) -> str:
    """The tracking URI for messages, without a password or token in its user part."""
    parts = urlsplit(uri)
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def _failure(uri: str, what: str, exc: BaseException) -> AuditError:
    return AuditError(f"MLflow ({shown_uri(uri)}): {what}: {_reason(exc)}")


def _experiment(client: Any, uri: str, name: str | None, explicit_uri: bool) -> str:
    """The experiment id: ``name`` (created when new), else MLflow's own default."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        if not explicit_uri:
            # Honours mlflow.set_experiment() in the caller's process (a notebook).
            from mlflow.tracking.fluent import _get_experiment_id

            return str(_get_experiment_id())
        return "0"  # MLflow's "Default" experiment
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name))
    if found.lifecycle_stage != "active":
        raise AuditError(
            f"MLflow ({shown_uri(uri)}): experiment {name!r} is deleted; "
            "restore it or choose another experiment name"
        )
    return str(found.experiment_id)


def connect(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
) -> Target:
    """Check the tracking store, the experiment and the parent run before anything is logged.

    Without ``parent_run_id``, a run active in this process (``mlflow.start_run``) is the
    parent, unless another tracking URI was given.
    """
    mlflow = _mlflow()
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    try:
        client = MlflowClient(tracking_uri=uri)
        if parent_run_id is None and tracking_uri is None and mlflow.active_run() is not None:
            parent_run_id = mlflow.active_run().info.run_id
        if parent_run_id:
            parent = _parent(client, uri, parent_run_id)
            if experiment is None:
                return Target(client, uri, str(parent.info.experiment_id), parent_run_id)
        exp_id = _experiment(client, uri, experiment, tracking_uri is not None)
    except AuditError:
        raise
    except Exception as exc:  # MLflow raises many kinds: store, HTTP, database, file errors
        raise _failure(uri, "cannot open the tracking store", exc) from None
    return Target(client, uri, exp_id, parent_run_id or None)


def _parent(client: Any, uri: str, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise AuditError(
                f"MLflow ({shown_uri(uri)}): parent run {run_id!r} not found; "
                "pass the id of an existing run"
            ) from None
        raise


def check_exports(formats: Iterable[str]) -> list[str]:
    """The export formats, checked (names, and weasyprint for a PDF) before any work."""
    formats = [f for f in formats if f]
    if not formats:
        return []
    from reports.export import parse_formats

    wanted = parse_formats(formats)
    if "pdf" in wanted and importlib.util.find_spec("weasyprint") is None:
        raise AuditError(
            "MLflow logging exports a PDF, which needs weasyprint: pip install "
            "'model-audit[pdf]' (or log without it: export_formats=('json',))"
        )
    return wanted


def log_run(
    run: str | Path | Run,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    export_formats: Iterable[str] = DEFAULT_EXPORTS,
    store: str | Path | None = None,
) -> str:
    """Log a stored audit run (folder or ``StoredRun``) to MLflow; returns the MLflow run id.

    ``store`` is where the run's comparisons are looked up for the verdict tag (default: the
    folder holding the run). ``export_formats`` may be empty to log no exports.
    """
    target = connect(tracking_uri, experiment, parent_run_id)
    return log_to(target, run, export_formats=export_formats, store=store)


def log_to(
    target: Target,
    run: str | Path | Run,
    *,
    export_formats: Iterable[str] = DEFAULT_EXPORTS,
    store: str | Path | None = None,
) -> str:
    """Log ``run`` to an already checked ``target`` (see ``connect``)."""
    run = run if isinstance(run, Run) else load_run(run)
    if run.kind != "audit":
        raise AuditError(f"{run.path}: a {run.kind} run; only audit runs are logged to MLflow")
    formats = check_exports(export_formats)
    record = run.audit
    metrics = audit_metrics(record)
    tags = audit_tags(run, store)
    with tempfile.TemporaryDirectory(prefix="audit-mlflow-") as tmp:
        # Every file is made before the MLflow run exists: a failed export leaves no half run.
        files = Path(tmp) / "audit"
        files.mkdir()
        shutil.copyfile(run.record_file, files / "audit.json")
        write_files(run, files)
        exported = None
        if formats:
            from reports.export import export_run

            exported = export_run(run, formats, Path(tmp) / "exports", store=store)
        return _send(target, record, metrics, tags, files, exported)


def _send(
    target: Target,
    record: Any,
    metrics: dict[str, float],
    tags: dict[str, str],
    files: Path,
    exported: Path | None,
) -> str:
    from mlflow.entities import Metric, RunStatus
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NOTE

    client, run_id = target.client, None
    extra = {MLFLOW_RUN_NOTE: description(record, tags)}
    if target.parent_run_id:
        extra[MLFLOW_PARENT_RUN_ID] = target.parent_run_id
    try:
        created = client.create_run(
            target.experiment_id, tags=resolve_tags({**tags, **extra}), run_name=run_name(record)
        )
        run_id = created.info.run_id
        now = int(time.time() * 1000)
        items = [Metric(k, v, now, 0) for k, v in metrics.items()]
        for i in range(0, len(items), _BATCH):
            client.log_batch(run_id, metrics=items[i : i + _BATCH])
        client.log_artifacts(run_id, str(files), "audit")
        if exported is not None:
            client.log_artifacts(run_id, str(exported), "export")
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    except Exception as exc:
        if run_id is not None:
            # The MLflow run shows as failed rather than running forever; the first error is
            # the one to report.
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise _failure(target.uri, "could not log the audit", exc) from None
    return run_id
