"""The Python API (``from audits import audit``): the CLI's engine, callable from a notebook.

Every function here calls what the matching command calls — ``run_audit``, ``run_drift``,
``compare_runs``/``save_comparison``, ``check_claims_file``/``check_typed_claims``,
``export_run`` — so a run made here is an ordinary run folder that the CLI, the dashboard and
the exports read. In-memory inputs are turned into files by ``auditapp.sources``.

Without ``store`` a run goes to a temporary store that lives as long as its result object;
``AuditResult.save(store)`` copies it (and the data written for a Dataset) into a real store.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditapp.sources import INPUTS, dataset_manifest, frame_manifest, module_card, reference_card
from audits.errors import AuditError
from audits.formatting import pct

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from auditapp.engines.spec import EngineSpec
    from audits.runs.models_audit import AuditRecord, Metrics
    from audits.runs.reader import StoredRun

__all__ = [
    "AuditResult",
    "Comparison",
    "DriftResult",
    "audit",
    "check_claims",
    "compare",
    "drift",
    "load_run",
]


class _Store:
    """The store a call writes to: the given folder, or a temporary one removed with its owner."""

    def __init__(self, store: str | Path | None) -> None:
        if store is None:
            self.path = Path(tempfile.mkdtemp(prefix="model-audit-"))
            self.temporary = True
        else:
            self.path = Path(store).expanduser()
            self.temporary = False

    def discard(self) -> None:
        """A failed call leaves no temporary store behind."""
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    def keep_alive_with(self, owner: object) -> None:
        if self.temporary:
            weakref.finalize(owner, shutil.rmtree, self.path, ignore_errors=True)

    @property
    def inputs(self) -> Path:
        return self.path / INPUTS


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def _data_path(data: Any, classes: list[str] | None, store: _Store, root: Any) -> Path:
    """A manifest/ImageFolder path for ``data`` (a path, a Dataset or a DataFrame)."""
    if isinstance(data, str | Path):
        return Path(data).expanduser()
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return frame_manifest(data, _need_classes(classes, "a DataFrame"), root)
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pass
    if hasattr(data, "__getitem__"):
        return dataset_manifest(data, _need_classes(classes, "a Dataset"), store.inputs)
    raise AuditError(
        f"data: got {type(data).__name__}; pass a manifest or ImageFolder path, a "
        "torch Dataset of (image, label), or a pandas DataFrame with path,label"
    )


def _need_classes(classes: Any, what: str) -> list[str]:
    if classes is None:
        raise AuditError(f"classes: missing; {what} needs classes=[...] to name its labels")
    return [str(c) for c in classes]


def _prepared(model: Any, paths: list[Path], *, required: bool, device: str, card: Any) -> Any:
    """``Prepared`` for an in-memory module: its card, the device, the data sets checked."""
    from audits.inference import resolve_device
    from audits.prepare import Prepared, load_labelled

    sets = [load_labelled(p, card, required=required) for p in paths]
    dev = resolve_device(device)
    return Prepared(card=card, device=dev, model=model.to(dev).eval(), sets=sets)


def _model_source(model: Any, store: _Store, weights: Any, card_args: dict) -> Any:
    """A model folder path, or the module itself; a registry reference gets a written card."""
    if _is_module(model):
        return model
    if isinstance(model, str) and model.split(":", 1)[0] in ("torchvision", "timm"):
        return reference_card(model, weights, store.inputs, **card_args)
    if isinstance(model, str | Path):
        return Path(model).expanduser()
    raise AuditError(
        f"model: got {type(model).__name__}; pass an nn.Module, a model folder (model.toml) "
        "or a reference such as 'torchvision:resnet18' with weights="
    )


class _Training:
    """Put a user's module back in training mode afterwards if it was in it."""

    def __init__(self, model: Any) -> None:
        self.model = model if _is_module(model) else None
        self.was = bool(self.model is not None and self.model.training)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        if self.model is not None and self.was:
            self.model.train()


def audit(
    model: nn.Module | str | Path,
    data: Any,
    *,
    classes: Sequence[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int | None = None,
    target_layer: str | None = None,
    name: str | None = None,
    version: str | None = None,
    store: str | Path | None = None,
    explain: bool = True,
    integrity: bool = True,
    device: str = "auto",
    weights: str | Path | None = None,
    root: str | Path | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    options: Mapping[str, Any] | None = None,
    engine: str | EngineSpec = "local",
) -> AuditResult:
    """Audit ``model`` on the labelled set ``data``: the same run as ``python -m audits run``.

    ``model``: an ``nn.Module`` (then ``classes`` and ``input_size`` are needed; ``mean``/
    ``std`` default to ImageNet's), a model folder or its ``model.toml`` (the card gives
    everything; the card arguments are ignored), or ``"torchvision:<name>"``/``"timm:<name>"``
    with ``weights=`` a state_dict file. ``data``: a manifest/ImageFolder path, a Dataset of
    ``(image, label)`` (PIL or un-normalised tensor; label index or class name; written as PNGs
    in the store's ``.inputs/``), or a DataFrame with ``path,label`` (paths relative to
    ``root``, or absolute). ``store=None`` keeps the run in a temporary store.
    ``engine``: ``"local"`` or ``"ray"`` (a local Ray, or the session already open), or an
    ``auditapp.engines.spec.EngineSpec`` (cluster address, actors, GPUs per actor).
    """
    where = _Store(store)
    card_args = {
        "classes": list(classes) if classes is not None else None,
        "input_size": input_size,
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
        "channels": channels,
        "target_layer": target_layer,
        "name": name,
        "version": version,
    }
    try:
        run = _audit_into(
            where,
            model,
            data,
            card_args,
            weights,
            root,
            device,
            run_options={
                "batch_size": batch_size,
                "progress": progress,
                "engine": engine,
                "skip": tuple(
                    k for k, on in (("explain", explain), ("integrity", integrity)) if not on
                ),
                "options": dict(options or {}),
            },
        )
    except BaseException:
        where.discard()
        raise
    result = AuditResult(run)
    where.keep_alive_with(result)
    return result


def _audit_into(
    where: _Store,
    model: Any,
    data: Any,
    card_args: dict[str, Any],
    weights: Any,
    root: Any,
    device: str,
    run_options: dict[str, Any],
) -> Path:
    """``audit``'s work: the model and data turned into what ``run_audit`` takes, then run."""
    from auditapp.pipeline.audit import run_audit

    source = _model_source(model, where, weights, card_args)
    if not _is_module(source) and card_args["classes"] is None and not isinstance(data, str | Path):
        from audits.model_card import load_card

        card_args["classes"] = load_card(source).classes  # a card names the data's classes
    # An in-memory module is checked (one dummy forward) before any data is written.
    card = module_card(source, **card_args) if _is_module(source) else None
    path = _data_path(data, card_args["classes"], where, root)
    with _Training(source):
        if card is not None:
            target = _prepared(source, [path], required=True, device=device, card=card)
        else:
            target = source
        return run_audit(target, path, store=where.path, device=device, **run_options)


def load_run(path: str | Path) -> AuditResult:
    """A stored audit run as an ``AuditResult`` (refuses a drift or comparison run)."""
    result = AuditResult(Path(path).expanduser())
    if result.run.kind != "audit":
        raise AuditError(f"{path}: is a {result.run.kind} run, not an audit run")
    return result


def drift(
    model: nn.Module | str | Path,
    reference: Any,
    current: Any,
    *,
    classes: Sequence[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int | None = None,
    name: str | None = None,
    version: str | None = None,
    store: str | Path | None = None,
    device: str = "auto",
    weights: str | Path | None = None,
    permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    label: str | None = None,
    early_stop: bool = True,
    batch_date: str | None = None,
) -> DriftResult:
    """Drift of ``current`` against ``reference`` through ``model`` (``python -m audits drift``).

    The sets are paths, Datasets or DataFrames as in ``audit``; they need no labels when paths.
    The MMD test stops once its answer is settled; ``early_stop=False`` draws all
    ``permutations`` (the fixed test, ``--no-early-stop``). ``batch_date`` (YYYY-MM-DD or an
    ISO time, ``--batch-date``) says when the batch was taken.
    """
    from auditapp.pipeline.drift import run_drift

    where = _Store(store)
    card_args = {
        "classes": list(classes) if classes is not None else None,
        "input_size": input_size,
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
        "channels": channels,
        "target_layer": None,
        "name": name,
        "version": version,
    }
    try:
        source = _model_source(model, where, weights, card_args)
        card = module_card(source, **card_args) if _is_module(source) else None
        paths = [_data_path(d, card_args["classes"], where, None) for d in (reference, current)]
        with _Training(source):
            if card is not None:
                target = _prepared(source, paths, required=False, device=device, card=card)
            else:
                target = source
            run = run_drift(
                target,
                paths[0],
                paths[1],
                store=where.path,
                device=device,
                permutations=permutations,
                alpha=alpha,
                seed=seed,
                label=label,
                early_stop=early_stop,
                batch_date=batch_date,
            )
    except BaseException:
        where.discard()
        raise
    result = DriftResult(run)
    where.keep_alive_with(result)
    return result


def _run_path(run: Any) -> Path:
    if isinstance(run, AuditResult | DriftResult):
        return run.path
    return Path(run).expanduser()


def compare(
    a: AuditResult | str | Path,
    b: AuditResult | str | Path,
    *,
    save: bool = False,
    speed: bool = False,
    store: str | Path | None = None,
    across_corrections: bool = False,
    **thresholds: Any,
) -> Comparison:
    """Is run ``b`` better than run ``a`` (``python -m audits compare``)?

    Speed is not timed unless ``speed=True`` (an in-memory model cannot be rebuilt for it).
    ``thresholds``: ``alpha``, ``min_gain``, ``max_class_drop``, ``tolerance``, ``primary``.
    ``save=True`` stores the comparison (in ``store``, default run ``b``'s store).
    ``across_corrections=True`` compares runs on two versions of one set (``relabel``) on
    the images both share with the same label.
    """
    from audits.compare import Thresholds, compare_runs, save_comparison
    from audits.store import load_run as load_stored

    run_a, run_b = load_stored(_run_path(a)), load_stored(_run_path(b))
    try:
        limits = Thresholds(**thresholds)
    except TypeError as exc:
        raise AuditError(f"compare: {exc}") from None
    try:
        doc, aligned = compare_runs(
            run_a, run_b, thresholds=limits, measure=speed, across_corrections=across_corrections
        )
    except AuditError as exc:  # the messages name the CLI's flag
        message = str(exc).replace("--no-speed", "speed=False")
        raise AuditError(
            message.replace("--across-corrections", "across_corrections=True")
        ) from None
    path = None
    if save:
        path = save_comparison(doc, aligned, Path(store) if store else run_b.path.parent)
    return Comparison(doc, path)


def check_claims(
    run: AuditResult | str | Path, claims: str | Path | Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Check claims (a TOML/YAML file, or a list of claim dicts) against an audit run.

    Stored in the run as ``claims-<hash>/`` like ``python -m audits claims``; returns the
    typed results (``ClaimResult``: ``verdict``, ``measured``, ``sentence``…).
    """
    from audits.claims_store import check_claims_file, check_typed_claims

    path = _run_path(run)
    if isinstance(claims, str | Path):
        saved = check_claims_file(path, claims)
    else:
        saved = check_typed_claims(path, list(claims), source="api")
    return list(saved.record.results)


class _Result:
    """A stored run, read lazily."""

    def __init__(self, path: Path) -> None:
        from audits.runs import open_run

        self.path = Path(path)
        self.run: StoredRun = open_run(self.path)

    def save(self, store: str | Path) -> Path:
        """Copy the run folder (and the data the API wrote for it) into ``store``; its path."""
        store = Path(store).expanduser()
        target = store / self.path.name
        if target.exists():
            raise AuditError(f"{target}: exists already; runs are immutable")
        store.mkdir(parents=True, exist_ok=True)
        self._copy_inputs(store)
        shutil.copytree(self.path, target)
        self._repoint(target, store)
        return target

    def _repoint(self, target: Path, store: Path) -> None:
        """Point the copy's data set (and written card) at the copies in ``store``'s inputs."""
        from audits.fsio import write_json

        record_file = target / f"{self.run.kind}.json"
        if not record_file.is_file():
            return
        old = str((self.path.parent / INPUTS).resolve())
        new = str((store / INPUTS).resolve())
        data = json.loads(record_file.read_text(encoding="utf-8"))
        changed = False
        for block, key in (
            ("dataset", "path"),
            ("model", "dir"),
            ("reference", "path"),
            ("reference", "root"),
            ("current", "path"),
            ("current", "root"),
        ):
            value = (data.get(block) or {}).get(key) if isinstance(data.get(block), dict) else None
            if isinstance(value, str) and value.startswith(old + "/"):
                data[block][key] = new + value[len(old) :]
                changed = True
        if changed:
            write_json(record_file, data)

    def _copy_inputs(self, store: Path) -> None:
        """Data and cards written under the source store's ``.inputs`` go along (same names)."""
        source = self.path.parent / INPUTS
        if not source.is_dir() or source.resolve() == (store / INPUTS).resolve():
            return
        for entry in source.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                dest = store / INPUTS / entry.name
                if not dest.exists():
                    shutil.copytree(entry, dest)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class AuditResult(_Result):
    """An audit run: typed metrics, tables, and what the CLI can do with a run."""

    @property
    def record(self) -> AuditRecord:
        """``audit.json``, typed (``audits.runs.models_audit.AuditRecord``)."""
        return self.run.audit

    @property
    def metrics(self) -> Metrics:
        """The ``metrics`` block, typed (accuracy, intervals, per_class, confusion…)."""
        return self.record.metrics

    @property
    def per_class(self) -> pd.DataFrame:
        """One row per class: support, correct, recall with its Wilson CI, precision, F1."""
        import pandas as pd

        rows = [c.model_dump(by_alias=True) for c in self.metrics.per_class]
        return pd.DataFrame(rows).set_index("class")

    @property
    def predictions(self) -> pd.DataFrame:
        """``predictions.parquet``: one row per image (docs/ARCHITECTURE.md)."""
        return self.run.table

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts, rows true classes and columns predicted ones, labelled by class."""
        import pandas as pd

        conf = self.metrics.confusion
        frame = pd.DataFrame(conf.matrix, index=conf.labels, columns=conf.labels)
        frame.index.name, frame.columns.name = "true", "predicted"
        return frame

    def export(
        self,
        out: str | Path = "exports",
        formats: Iterable[str] = ("pdf", "html", "json", "csv"),
    ) -> Path:
        """Write the exports (``python -m audits export``); returns the export folder."""
        from reports.export import export_run

        return export_run(self.path, list(formats), out, store=self.path.parent)

    def compare(self, other: AuditResult | str | Path, **kwargs: Any) -> Comparison:
        """This run as version A against ``other`` as B (see ``compare``)."""
        return compare(self, other, **kwargs)

    def log_mlflow(self, **kwargs: Any) -> Any:
        """Log the run to MLflow's active tracking URI (``auditapp.mlflow_log.log_run``)."""
        try:
            from auditapp import mlflow_log  # type: ignore[attr-defined]
        except ImportError as exc:
            raise AuditError(
                f"log_mlflow: MLflow logging is unavailable ({exc}); install the [mlflow] extra"
            ) from None
        return mlflow_log.log_run(self.path, **kwargs)

    def _repr_html_(self) -> str:
        rec, m = self.record, self.metrics
        esc = html.escape
        ci = ""
        if m.accuracy_ci_low is not None and m.accuracy_ci_high is not None:
            ci = f" (95% CI {pct(m.accuracy_ci_low)} to {pct(m.accuracy_ci_high)})"
        worst = min(m.per_class, key=lambda c: (c.recall is None, c.recall or 0.0), default=None)
        rows = [
            ("model", f"{rec.model.name} {rec.model.version}"),
            ("data", f"{rec.dataset.n_images} images, {len(m.per_class)} classes"),
            ("accuracy", f"{pct(m.accuracy)}{ci}"),
            ("balanced accuracy", pct(m.balanced_accuracy)),
            ("macro-F1", pct(m.macro_f1)),
        ]
        if worst is not None and worst.recall is not None:
            rows.append(("weakest class", f"{worst.class_}: recall {pct(worst.recall)}"))
        rows.append(("run", str(self.path)))
        body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        return f"<table class='model-audit'>{body}</table>"


class DriftResult(_Result):
    """A drift run: ``record`` (typed ``drift.json``), ``drifted``."""

    @property
    def record(self) -> Any:
        return self.run.drift

    @property
    def drifted(self) -> bool:
        return bool(self.record.drift)

    def _repr_html_(self) -> str:
        rec = self.record
        verdict = "drift" if self.drifted else "no drift"
        summary = rec.drift_rule_text or ""
        return (
            f"<p><b>{html.escape(verdict)}</b> {html.escape(str(summary))}</p>"
            f"<p>{html.escape(str(self.path))}</p>"
        )


class Comparison:
    """A comparison document (``comparison.json``): ``verdict`` (promote|hold), ``record``."""

    def __init__(self, doc: dict[str, Any], path: Path | None = None) -> None:
        self.doc = doc
        self.path = path

    @property
    def record(self) -> Any:
        """The document, typed (``audits.runs.models_comparison.ComparisonRecord``)."""
        from audits.runs.writer import check_record

        # An unsaved comparison has no run id yet; it is validated as the CLI would store it.
        record, _ = check_record({**self.doc, "run_id": self.doc.get("run_id") or ""}, "comparison")
        return record

    @property
    def verdict(self) -> str:
        return str(self.doc["verdict"])

    @property
    def summary(self) -> str:
        return str(self.doc.get("summary", ""))

    def __repr__(self) -> str:
        return f"<Comparison {self.verdict}: {self.summary}>"

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in self.doc.get("notes", []))
        return f"<p><b>{html.escape(self.verdict)}</b>: {html.escape(self.summary)}</p>" + (
            f"<ul>{notes}</ul>" if notes else ""
        )
