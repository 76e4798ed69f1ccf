"""The Ray engine's driver: a Ray Data dataset from the manifest rows, ``map_batches`` over
``AuditActor`` (CPU or GPU actors), and the results streamed back into the local engine's
writers in data-set order.

Batch boundaries are the local engine's (one block per audit batch, ``batch_size`` rows), so
each image meets the same batch neighbours and, on the CPU, the numbers are bit-identical.
Results come back with ``iter_batches`` block by block: the driver keeps per-row scalars (as
the local engine does) and appends probabilities and embeddings to ``.npy`` files, never
holding images or arrays for the whole set.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from auditapp.engines.ray_session import RaySession, ray_session
from auditapp.engines.spec import EngineSpec, PerImage
from audits.datasets import ImageSet
from audits.errors import AuditError
from audits.inference import (
    ImageBatch,
    Outputs,
    Predictions,
    check_finite,
    label_indices,
    resolve_batch_size,
)
from audits.prepare import Prepared, check_freeze

#: Ray's fault tolerance for the actors: a dead actor is restarted and its batch retried.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3


def ray_per_image(
    spec: EngineSpec,
    ready: Prepared,
    image_set: ImageSet,
    *,
    model_dir: Path | None,
    batch_size: int | None,
    allow_pickle: bool,
    out_dir: Path,
    progress: bool,
) -> PerImage:
    """Run the per-image stage on Ray; returns the predictions, the freeze check and the
    ``engine`` block of ``audit.json``."""
    card, items = ready.card, image_set.items
    batch_size = resolve_batch_size(batch_size, card)  # None: the local engine's automatic size
    with ray_session(spec.address, progress) as session:
        from ray.data import ActorPoolStrategy

        gpus, actors = _placement(spec, session)
        started = time.perf_counter()
        ds = _map(
            _dataset(image_set, batch_size),
            _actor_class(),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=actors),
            num_cpus=spec.cpus_per_actor,
            num_gpus=gpus or None,
            fn_constructor_kwargs={
                "card": card,
                "device": "cuda" if gpus else "cpu",
                # A model folder is rebuilt by each actor from its card; an in-memory module
                # (the Python API) travels pickled.
                "model": _shipped_model(ready) if model_dir is None else None,
                "allow_pickle": allow_pickle,
                "decode_threads": max(1, int(spec.cpus_per_actor)),
            },
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_TASK_RETRIES,
        )
        gathered = _gather(_blocks(ds), ready, image_set, out_dir)
        elapsed = time.perf_counter() - started
        first = (gathered.first_at or time.perf_counter()) - started
    frozen = check_freeze(image_set, hashes=gathered.hashes)
    preds = Predictions(
        table=gathered.outputs.table(items, card, gathered.hashes),
        probabilities=gathered.outputs.probabilities.finish(len(card.classes)),
        embeddings=gathered.outputs.embeddings.finish(gathered.outputs.emb_dim),
        skipped=gathered.skipped,
        device=gathered.device or {},
        timings={
            "inference_s": round(elapsed, 4),
            "images_per_s": round(len(items) / elapsed, 2) if elapsed > 0 else 0.0,
        },
        embedding_source=_embedding_source(ready),
        hashes=gathered.hashes,
    )
    record = {
        "name": "ray",
        "address": session.address,
        "ray_version": session.ray_version,
        "n_actors": actors,
        "cpus_per_actor": spec.cpus_per_actor,
        "gpus_per_actor": gpus,
        "cluster_cpus": session.cpus,
        "cluster_gpus": session.gpus,
        "batch_size": batch_size,
        # Until the first batch came back: actors started (Python, torch, the model) and the
        # first batch done. The rest of inference_s is the steady rate.
        "first_result_s": round(first, 3),
        "explain": "local",  # Grad-CAM runs in this process on the selected images
    }
    return PerImage(preds=preds, frozen=frozen, record=record)


def _map(ds: Any, fn: type, **kwargs: Any) -> Any:
    """``map_batches``; Ray 2.60 takes ``max_restarts``/``max_task_retries`` only as the
    deprecated ``**ray_remote_args`` (no named parameter yet), so that one warning is muted."""
    from ray.util.annotations import RayDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RayDeprecationWarning)
        return ds.map_batches(fn, **kwargs)


def _actor_class() -> type:
    from auditapp.engines.ray_actor import AuditActor

    return AuditActor


def _placement(spec: EngineSpec, session: RaySession) -> tuple[float, int]:
    """(GPUs per actor, number of actors) for this cluster: GPU actors wherever the cluster has
    GPUs (the driver's ``--device`` is for its own stages), unless the options say 0."""
    gpus = spec.num_gpus_per_actor
    if gpus is None:
        gpus = 1.0 if session.gpus >= 1 else 0.0
    if gpus > 0 and session.gpus < gpus:
        raise AuditError(
            f"--ray-num-gpus-per-actor {gpus:g}: the Ray cluster has {session.gpus:g} GPU(s); "
            "use 0 for CPU actors"
        )
    if spec.actors is not None:
        return gpus, spec.actors
    if gpus > 0:
        return gpus, max(1, int(session.gpus // gpus))
    return gpus, max(1, int(session.cpus // spec.cpus_per_actor))


def _dataset(image_set: ImageSet, batch_size: int) -> Any:
    """The manifest rows (row, batch, absolute path) as one block per audit batch."""
    import ray.data

    paths = [str(image_set.abspath(p)) for p in image_set.items["path"]]
    n = len(paths)
    tables = [
        pa.table(
            {
                "row": pa.array(np.arange(s, min(s + batch_size, n), dtype=np.int64)),
                "batch": pa.array(np.full(min(batch_size, n - s), s // batch_size, np.int64)),
                "path": pa.array(paths[s : s + batch_size], pa.string()),
            }
        )
        for s in range(0, n, batch_size)
    ]
    return ray.data.from_arrow(tables)


def _shipped_model(ready: Prepared) -> Any:
    """The in-memory module for pickling; a CPU copy when it lives on a GPU (this process
    keeps using the original for the explain stage)."""
    return copy.deepcopy(ready.model).to("cpu") if ready.device.type != "cpu" else ready.model


def _embedding_source(ready: Prepared) -> str:
    from audits.inference import classifier_head

    head = classifier_head(ready.model, len(ready.card.classes))
    return getattr(ready.model, "embedding_source", None) or (
        "penultimate" if head is not None else "logits"
    )


def _blocks(ds: Any) -> Iterator[dict[str, np.ndarray]]:
    """The actors' output, block by block, as numpy; a failure of Ray is one line."""
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2)
    except AuditError:
        raise
    except Exception as exc:
        cause = _user_error(exc)
        if cause is not None:
            raise cause from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise AuditError(
            f"--engine ray: the Ray job failed ({type(exc).__name__}: {first})"
        ) from exc


def _user_error(exc: BaseException) -> AuditError | None:
    """An ``AuditError`` raised inside an actor (a model that returns NaN, a wrong shape…)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, AuditError):
            return AuditError(str(exc))
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            exc = cause
            continue
        exc = exc.__cause__ or exc.__context__
    return None


class _Gathered:
    """The driver's side: the local engine's ``Outputs`` fed in data-set order."""

    def __init__(self, ready: Prepared, image_set: ImageSet, out_dir: Path) -> None:
        items = image_set.items
        self.paths = items["path"].tolist()
        self.outputs = Outputs(
            ready.card, label_indices(items["label"], ready.card.classes), out_dir
        )
        self.hashes: list[str | None] = [None] * len(items)
        self.seen = np.zeros(len(items), dtype=bool)
        self.skipped: list[dict[str, str]] = []
        self.device: dict[str, Any] | None = None
        self.label = f"{ready.card.name}@{ready.card.version}"
        self.first_at: float | None = None

    def add(self, part: dict[str, np.ndarray]) -> None:
        """One audit batch's rows, in order."""
        failed = [e for e in part["error"].tolist() if e]
        if failed:  # the model's own failure in an actor: the local engine's line
            raise AuditError(failed[0])
        rows = part["row"]
        if self.seen[rows].any():
            raise AuditError(
                f"--engine ray: rows {rows[self.seen[rows]][:3].tolist()} came back twice"
            )
        self.seen[rows] = True
        for row, sha in zip(rows.tolist(), part["sha256"].tolist(), strict=True):
            self.hashes[row] = sha
        for described in part["device"]:
            if described and self.device is None:
                self.device = json.loads(described)
        ok = part["ok"].astype(bool)
        for row, reason in zip(rows[~ok].tolist(), part["reason"][~ok].tolist(), strict=True):
            self.skipped.append({"path": str(self.paths[row]), "reason": str(reason)})
        if not ok.any():
            return
        batch = ImageBatch(
            images=torch.empty(0, dtype=torch.uint8),
            index=rows[ok],
            width=part["width"][ok],
            height=part["height"][ok],
        )
        logits = torch.from_numpy(np.ascontiguousarray(part["logits"][ok], dtype=np.float32))
        emb = torch.from_numpy(np.ascontiguousarray(part["emb"][ok], dtype=np.float32))
        check_finite(logits, emb, batch, self.paths, self.label)
        self.outputs.add(batch, logits, emb)


def _gather(
    blocks: Iterator[dict[str, np.ndarray]], ready: Prepared, image_set: ImageSet, out_dir: Path
) -> _Gathered:
    """Feed every returned audit batch to the writers in batch order (Ray keeps the order with
    ``preserve_order``; a batch that arrives early waits here, keyed by its number)."""
    gathered = _Gathered(ready, image_set, out_dir)
    waiting: dict[int, dict[str, np.ndarray]] = {}
    next_batch = 0
    try:
        for block in blocks:
            if gathered.first_at is None:
                gathered.first_at = time.perf_counter()
            ids = block["batch"]
            for b in dict.fromkeys(ids.tolist()):
                at = ids == b
                waiting[b] = {key: value[at] for key, value in block.items()}
            while next_batch in waiting:
                gathered.add(waiting.pop(next_batch))
                next_batch += 1
    except BaseException:
        gathered.outputs.abort()
        raise
    if waiting or not gathered.seen.all():
        gathered.outputs.abort()
        missing = np.flatnonzero(~gathered.seen)[:3].tolist()
        raise AuditError(f"--engine ray: rows {missing} never came back from the Ray job")
    return gathered
