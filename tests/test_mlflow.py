"""MLflow logging against a real local tracking store (SQLite, started here); no mocks.

Each test reads the logged run back with ``MlflowClient`` and checks it against the stored
``audit.json`` (and the metrics against scikit-learn on the stored predictions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import _validate_metric_name
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

from auditapp.mlflow_content import RECALL_NAMES_FILE, metric_safe, recall_metric_names
from auditapp.mlflow_log import log_run, shown_uri
from auditapp.pipeline.audit import run_audit
from audits.compare import compare_runs, save_comparison
from audits.errors import AuditError
from audits.store import list_runs, load_run
from tests.builders import make_manifest, make_model_dir

REPO = Path(__file__).resolve().parent.parent
# Class names MLflow refuses as metric names as they stand (a slash, an accent).
CLASSES = ["cat/black", "chien é", "fox"]
SKIP = ("explain", "integrity")


class Tracking:
    """A SQLite tracking store in a temp folder, with an experiment whose artifacts stay there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.experiment_id = self.experiment("audits")

    def experiment(self, name: str, artifacts: Path | None = None) -> str:
        location = artifacts or self.root / "artifacts" / name
        return self.client.create_experiment(name, artifact_location=str(location))

    def runs(self, experiment_id: str) -> list:
        return self.client.search_runs([experiment_id])

    def artifact(self, run_id: str, path: str) -> Path:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, tracking_uri=self.uri, dst_path=str(self.root)
            )
        )

    def artifact_names(self, run_id: str, folder: str) -> list[str]:
        return sorted(Path(f.path).name for f in self.client.list_artifacts(run_id, folder))


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> Tracking:
    return Tracking(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("inputs")
    model = make_model_dir(root / "model", classes=CLASSES, seed=1)
    manifest = make_manifest(root / "data", ["a", "b", "c"], per_class=6)
    frame = pd.read_csv(manifest)  # the builder names files after classes: relabel afterwards
    frame["label"] = frame["label"].map(dict(zip("abc", CLASSES, strict=True)))
    frame.to_csv(manifest, index=False)
    return model, manifest


@pytest.fixture(scope="module")
def audited(inputs, tmp_path_factory) -> Path:
    model, manifest = inputs
    return run_audit(model, manifest, store=tmp_path_factory.mktemp("store"), skip=SKIP)


def cli(tracking: Tracking, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": tracking.uri,
    }
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        capture_output=True,
        text=True,
        cwd=cwd,  # MLflow's default artifact root is relative to it: keep it in tmp
        env=env,
        timeout=600,
    )


def run_args(inputs: tuple[Path, Path], store: Path, *extra: str) -> list[str]:
    model, manifest = inputs
    return ["run", "--model", str(model), "--data", str(manifest), "--store", str(store),
            "--no-explain", "--no-integrity", "--quiet", *extra]  # fmt: skip


def check_metrics(tracking: Tracking, mlflow_run, run_dir: Path) -> None:
    """Logged metrics equal audit.json's, and scikit-learn's on the stored predictions."""
    record = json.loads((run_dir / "audit.json").read_text())["metrics"]
    logged = mlflow_run.data.metrics
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "ece"):
        assert logged[key] == record[key], key
    for k in ("1", "3", "5"):
        assert logged[f"top_{k}_accuracy"] == record["top_k_accuracy"][k]
    names = json.loads(
        tracking.artifact(mlflow_run.info.run_id, f"audit/{RECALL_NAMES_FILE}").read_text()
    )
    assert sorted(names.values()) == sorted(CLASSES)
    assert sorted(k for k in logged if k.startswith("recall/")) == sorted(names)
    recall = {names[k]: v for k, v in logged.items() if k in names}
    assert recall == {c["class"]: c["recall"] for c in record["per_class"]}

    table = load_run(run_dir).table
    y, p = table["label"], table["pred"]
    assert logged["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert logged["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p), abs=1e-12)
    assert logged["macro_f1"] == pytest.approx(
        f1_score(y, p, labels=CLASSES, average="macro", zero_division=0), abs=1e-12
    )
    sk = recall_score(y, p, labels=CLASSES, average=None, zero_division=0)
    assert [recall[c] for c in CLASSES] == pytest.approx(list(sk), abs=1e-12)


def check_tags(mlflow_run, run_dir: Path) -> None:
    rec = json.loads((run_dir / "audit.json").read_text())
    tags = mlflow_run.data.tags
    assert tags["audit.run_id"] == run_dir.name
    assert tags["audit.model_name"] == rec["model"]["name"]
    assert tags["audit.model_version"] == rec["model"]["version"]
    assert tags["audit.weights_sha256"] == rec["model"]["weights_sha256"]
    assert tags["audit.code_commit"] == rec["model"]["code_commit"]
    assert tags["audit.data_fingerprint"] == rec["dataset"]["fingerprint"]
    assert tags["audit.auditor_version"] == rec["auditor"]["version"]
    assert tags["audit.auditor_commit"] == rec["auditor"]["commit"]


def test_cli_run_mlflow_logs_metrics_tags_and_exports(tracking, inputs, tmp_path):
    proc = cli(tracking, tmp_path, *run_args(inputs, tmp_path / "store", "--mlflow",
                                             "--mlflow-experiment", "audits"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert (run_dir / "audit.json").is_file()
    assert "logged to MLflow" in proc.stderr and tracking.uri in proc.stderr

    found = tracking.client.search_runs(
        [tracking.experiment_id], filter_string=f"tags.`audit.run_id` = '{run_dir.name}'"
    )
    assert len(found) == 1
    logged = found[0]
    assert logged.info.status == "FINISHED"
    assert logged.info.run_name == "audit tiny 1.0.0"
    assert "mlflow.parentRunId" not in logged.data.tags
    assert "audit.verdict" not in logged.data.tags  # no comparison yet
    check_metrics(tracking, logged, run_dir)
    check_tags(logged, run_dir)

    run_id = logged.info.run_id
    exports = tracking.artifact_names(run_id, "export")
    assert "tiny-1.0.0-report.pdf" in exports and "tiny-1.0.0-audit.json" in exports
    assert tracking.artifact(run_id, "export/tiny-1.0.0-report.pdf").read_bytes()[:5] == b"%PDF-"
    exported = json.loads(tracking.artifact(run_id, "export/tiny-1.0.0-audit.json").read_text())
    assert exported["run_id"] == run_dir.name
    assert tracking.artifact_names(run_id, "audit") == sorted(
        ["audit.json", "confusion.csv", "confusion.png", RECALL_NAMES_FILE]
    )
    stored = json.loads(tracking.artifact(run_id, "audit/audit.json").read_text())
    assert stored == json.loads((run_dir / "audit.json").read_text())
    confusion = pd.read_csv(tracking.artifact(run_id, "audit/confusion.csv"), index_col=0)
    assert list(confusion.columns) == CLASSES and list(confusion.index) == CLASSES
    assert confusion.to_numpy().tolist() == stored["metrics"]["confusion"]["matrix"]
    assert tracking.artifact(run_id, "audit/confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_log_run_nested_under_parent_in_its_experiment(tracking, audited):
    exp = tracking.experiment("training")
    parent = tracking.client.create_run(exp, run_name="train resnet")
    parent_id = parent.info.run_id
    run_id = log_run(load_run(audited), tracking_uri=tracking.uri, parent_run_id=parent_id,
                     export_formats=("json",))  # fmt: skip
    child = tracking.client.get_run(run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent_id
    assert child.info.experiment_id == exp  # the parent's experiment
    assert child.info.status == "FINISHED"
    check_metrics(tracking, child, audited)
    check_tags(child, audited)
    exports = tracking.artifact_names(run_id, "export")
    assert "tiny-1.0.0-audit.json" in exports
    assert not any(n.endswith(".pdf") for n in exports)  # only the formats asked for
    # The parent is only referenced: still running, nothing logged into it.
    after = tracking.client.get_run(parent_id)
    assert after.info.status == "RUNNING" and after.data.metrics == {}


def test_log_run_nests_under_the_callers_active_run(tracking, audited, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.uri)
    with mlflow.start_run(experiment_id=tracking.experiment_id) as active:
        run_id = log_run(audited, export_formats=())
        assert mlflow.active_run().info.run_id == active.info.run_id  # left active
    child = tracking.client.get_run(run_id)
    assert child.data.tags["mlflow.parentRunId"] == active.info.run_id
    assert tracking.artifact_names(run_id, "export") == []
    check_tags(child, audited)


def test_verdict_of_the_newest_comparison_is_a_tag(tracking, inputs, audited, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    candidate = Path(shutil.copytree(audited, store / audited.name))
    base_model = make_model_dir(tmp_path / "base", classes=CLASSES, seed=7, version="0.9.0")
    baseline = run_audit(base_model, inputs[1], store=store, skip=SKIP)
    doc, aligned = compare_runs(load_run(baseline), load_run(candidate))
    comparison = save_comparison(doc, aligned, store)

    run_id = log_run(candidate, tracking_uri=tracking.uri, experiment="gates", export_formats=())
    logged = tracking.client.get_run(run_id)
    tags = logged.data.tags
    assert tags["audit.verdict"] == doc["verdict"] and doc["verdict"] in ("promote", "hold")
    assert tags["audit.comparison_run_id"] == comparison.name
    assert tags["audit.baseline_run_id"] == baseline.name
    assert tags["audit.baseline_version"] == "0.9.0"
    assert doc["verdict"] in tags["mlflow.note.content"]
    gates = tracking.client.get_experiment_by_name("gates")
    assert gates is not None and logged.info.experiment_id == gates.experiment_id

    with pytest.raises(AuditError, match="only audit runs"):
        log_run(comparison, tracking_uri=tracking.uri, export_formats=())


def test_cli_logging_failure_names_the_uri_and_keeps_the_run(tracking, inputs, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should be")
    exp = tracking.experiment("blocked", artifacts=blocker / "artifacts")
    store = tmp_path / "store"
    proc = cli(tracking, tmp_path, *run_args(inputs, store, "--mlflow-experiment", "blocked"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert f"MLflow ({tracking.uri}): could not log the audit" in error[0]
    runs = list_runs(store)
    assert len(runs) == 1 and (runs[0].path / "audit.json").is_file()  # nothing lost
    assert f"the audit run is stored in {runs[0].path}" in error[0]
    (failed,) = tracking.runs(exp)
    assert failed.info.status == "FAILED"  # not left running


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--mlflow-parent", "0" * 32], "parent run '" + "0" * 32 + "' not found"),
        (["--mlflow-uri", "bogus://nowhere"], "MLflow (bogus://nowhere): cannot open"),
    ],
)
def test_cli_checks_mlflow_before_the_audit(tracking, inputs, tmp_path, extra, expected):
    store = tmp_path / "store"
    proc = cli(tracking, tmp_path, *run_args(inputs, store, *extra))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert not store.exists() or list_runs(store) == []  # refused before any audit work


def test_metric_names_are_valid_unique_and_mapped():
    classes = ["cat/black", "chien é", "猫", "犬", "..", ".", "", "a?b", "A?B", "x:y", "a" * 400]
    names = recall_metric_names(classes)
    assert list(names) == classes
    assert len({n.lower() for n in names.values()}) == len(classes)
    for name in names.values():
        _validate_metric_name(name)  # MLflow's own check
        assert ":" not in name.removeprefix("recall/") and "/" not in name.removeprefix("recall/")
        assert len(name) <= 250
    assert names["chien é"] == "recall/chien e"
    assert names["a?b"] == "recall/a_b" and names["A?B"] == "recall/A_B_2"
    assert metric_safe("fox") == "fox"


def test_shown_uri_hides_credentials():
    assert "s3cret" not in shown_uri("https://alice:s3cret@mlflow.example.com/")
    assert (
        shown_uri("https://alice:s3cret@mlflow.example.com/") == "https://***@mlflow.example.com/"
    )
    assert "tok" not in shown_uri("https://tok@mlflow.example.com")
    assert shown_uri("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"


def test_bad_export_format_is_refused_before_any_mlflow_run(tracking, audited):
    with pytest.raises(AuditError, match="unknown export format"):
        log_run(audited, tracking_uri=tracking.uri, experiment="refused", export_formats=["pdfx"])
    refused = tracking.client.get_experiment_by_name("refused")
    assert refused is None or tracking.runs(refused.experiment_id) == []
