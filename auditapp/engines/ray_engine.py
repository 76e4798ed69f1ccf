"""The Ray engine's driver: the manifest's rows in calls of whole audit batches, dispatched to
a pool of model actors (``ray_pool``: kept warm between audits of the same model), and the
results taken back in data-set order into the local engine's writers.

Batch boundaries are the local engine's (``batch_size`` rows), so each image meets the same
batch neighbours and, on the CPU, the numbers are bit-identical. A call carries one or more
whole batches: the first call of each actor one (the pipeline fills sooner), then up to
``CALL_ROWS`` rows (fewer round trips for small images). Each actor has at most ``WINDOW``
calls queued, and the driver takes results in call order, so memory holds a few calls'
results, never the set. Per-row data stays in numpy arrays (hashes as 32-byte digests) until
the freeze check and the table need them.

Why actors of our own rather than Ray Data's ``map_batches``: Ray Data starts a new actor
pool for every execution, and an actor's start (a process, torch, torchvision, the model) is
seconds, longer than a small audit; the input is a list of paths the actors read themselves,
so Ray Data had no reading or shuffling to do. Ray core gives the rest: restarts of a dead
actor and retries of its calls (``max_restarts``/``max_task_retries``).
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auditapp.engines.ray_pool import Pool, acquire, begin, pool_key
from auditapp.engines.ray_session import RaySession, ray_session
from auditapp.engines.spec import EngineSpec, PerImage
from audits.datasets import ImageSet
from audits.errors import AuditError
from audits.hashing import Digests
from audits.inference import (
    ImageBatch,
    Outputs,
    Predictions,
    check_finite,
    label_indices,
    resolve_batch_size,
)
from audits.prepare import Prepared, check_freeze

#: Rows per call after each actor's first (whole batches; at least one batch).
CALL_ROWS = 1024
#: Calls queued per actor: one running, one waiting, so an actor never idles on the driver.
WINDOW = 2


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
    with ray_session(spec.address) as session:
        import ray

        gpus, n_actors = _placement(spec, session)
        started = time.perf_counter()
        threads = max(1, int(spec.cpus_per_actor))
        device = "cuda" if gpus else "cpu"
        options = {"num_cpus": spec.cpus_per_actor, **({"num_gpus": gpus} if gpus else {})}
        kwargs = {"card": card, "device": device, "allow_pickle": allow_pickle,
                  "decode_threads": threads}  # fmt: skip
        # A model folder is rebuilt by each actor from its card and its actors are kept for
        # the next audit of the same model; an in-memory module travels pickled, one-off.
        key = None
        if model_dir is not None:
            placement = {"device": device, "gpus": gpus, "cpus": spec.cpus_per_actor,
                         "threads": threads}  # fmt: skip
            key = pool_key(card, **placement)
            # The actor derives its key again from the files it loaded, so a kept actor whose
            # weights or code differ from this audit's is refused, not reused.
            kwargs["placement"] = placement
        else:
            kwargs["model"] = _shipped_model(ready)
        pool = acquire(ray, _actor_class(), key=key, n=n_actors, options=options, kwargs=kwargs)
        try:
            # The driver's own set-up while the actors start, then wait for them (a cold pool)
            # and check they hold this model before any batch is sent.
            gathered = _Gathered(ready, image_set, out_dir)
            calls = _calls(len(items), batch_size, n_actors)
            try:
                infos = _ready(ray, pool)
            except BaseException:
                gathered.outputs.abort()
                raise
            results = _dispatch(ray, pool, calls, image_set, batch_size)
            if progress:
                from audits.progress import tracked

                results = tracked(results, len(calls), f"{card.name} {card.version}", "call")
            _gather(results, gathered)
        finally:
            pool.end_if_one_off(ray)
        elapsed = time.perf_counter() - started
        first = (gathered.first_at or time.perf_counter()) - started
    hashes = gathered.digests
    frozen = check_freeze(image_set, hashes=hashes)
    preds = Predictions(
        rows=gathered.outputs.rows(items, card, hashes),
        probabilities=gathered.outputs.probabilities.finish(len(card.classes)),
        embeddings=gathered.outputs.embeddings.finish(gathered.outputs.emb_dim),
        skipped=gathered.skipped,
        device=json.loads(infos[0]["device"]),
        timings={
            "inference_s": round(elapsed, 4),
            "images_per_s": round(len(items) / elapsed, 2) if elapsed > 0 else 0.0,
        },
        embedding_source=_embedding_source(ready),
        hashes=hashes,
    )
    reused = all(info["audits"] > 1 for info in infos)
    record = {
        "name": "ray",
        "address": session.address,
        "ray_version": session.ray_version,
        "n_actors": n_actors,
        "cpus_per_actor": spec.cpus_per_actor,
        "gpus_per_actor": gpus,
        "cluster_cpus": session.cpus,
        "cluster_gpus": session.gpus,
        "batch_size": batch_size,
        # Until the first batch came back: actors started (Python, torch, the model) unless
        # reused, and the first batch done. The rest of inference_s is the steady rate.
        "first_result_s": round(first, 3),
        # Kept actors of an earlier audit of the same model (ray_pool), or started for this one.
        "actors_reused": reused,
        "actor_start_s": None
        if reused
        else max(info["imports_s"] + info["model_s"] for info in infos if info["audits"] == 1),
        "explain": "local",  # Grad-CAM runs in this process on the selected images
    }
    return PerImage(preds=preds, frozen=frozen, record=record)


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


def _calls(n: int, batch_size: int, n_actors: int) -> list[tuple[int, int]]:
    """(first row, end row) of each call: whole audit batches, one per call for each actor's
    first, then up to ``CALL_ROWS`` rows, but at least ``2 * WINDOW`` calls per actor."""
    n_batches = -(-n // batch_size)
    per_call = max(1, min(CALL_ROWS // batch_size, n_batches // (n_actors * 2 * WINDOW)))
    calls, batch = [], 0
    while batch < n_batches:
        take = 1 if len(calls) < n_actors else per_call
        calls.append((batch * batch_size, min(n, (batch + take) * batch_size)))
        batch += take
    return calls


def _dispatch(
    ray: Any, pool: Pool, calls: list[tuple[int, int]], image_set: ImageSet, batch_size: int
) -> Iterator[dict[str, Any]]:
    """The calls' results in call order; each actor has at most ``WINDOW`` calls queued, and
    the next call goes to the actor with the fewest."""
    paths = image_set.items["path"]
    root = str(image_set.root)
    queued = [0] * len(pool.actors)
    inflight: deque[tuple[int, Any]] = deque()
    todo = iter(calls)

    def submit() -> None:
        while min(queued) < WINDOW:
            call = next(todo, None)
            if call is None:
                return
            at = min(range(len(queued)), key=queued.__getitem__)
            rows = np.arange(call[0], call[1], dtype=np.int64)
            args = (root, rows, rows // batch_size, paths.iloc[call[0] : call[1]].tolist())
            inflight.append((at, pool.actors[at].run.remote(*args)))
            queued[at] += 1

    submit()
    while inflight:
        at, ref = inflight.popleft()
        result = _fetch(ray, ref)
        queued[at] -= 1
        submit()
        yield result


def _ready(ray: Any, pool: Pool) -> list[dict[str, Any]]:
    """``ray_pool.begin`` with Ray's failures (a model that cannot load in an actor) as one
    line."""
    try:
        return begin(ray, pool)
    except AuditError:
        raise
    except Exception as exc:
        return _fetch(ray, None, exc)


def _fetch(ray: Any, ref: Any, failed: Exception | None = None) -> Any:
    """``ray.get``; a failure of Ray is one line, an actor's ``AuditError`` its own line."""
    try:
        if failed is not None:
            raise failed
        return ray.get(ref)
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
    """The driver's side: the local engine's ``Outputs`` fed in data-set order. Per row it
    keeps numpy only (a seen flag, a 32-byte digest), as the local engine keeps its columns."""

    def __init__(self, ready: Prepared, image_set: ImageSet, out_dir: Path) -> None:
        items = image_set.items
        n = len(items)
        self.paths = items["path"].to_numpy()  # a view of the manifest's column, not a copy
        self.outputs = Outputs(
            ready.card, label_indices(items["label"], ready.card.classes), out_dir
        )
        self.digests = Digests(n)
        self.seen = np.zeros(n, dtype=bool)
        self.skipped: list[dict[str, str]] = []
        self.label = f"{ready.card.name}@{ready.card.version}"
        self.first_at: float | None = None

    def add(self, part: dict[str, Any]) -> None:
        """One call's rows (whole audit batches, in order)."""
        if part["error"]:  # the model's own failure in an actor: the local engine's line
            raise AuditError(part["error"])
        rows = part["row"]
        if self.seen[rows].any():
            raise AuditError(
                f"--engine ray: rows {rows[self.seen[rows]][:3].tolist()} came back twice"
            )
        self.seen[rows] = True
        self.digests.raw[rows] = part["sha256"]
        self.digests.present[rows] = part["hashed"]
        self.skipped += [{"path": str(self.paths[row]), "reason": why} for row, why in part["bad"]]
        ok = part["ok"]
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
        check_finite(logits, emb, batch, self.paths, self.label)  # type: ignore[arg-type]
        self.outputs.add(batch, logits, emb)


def _gather(results: Iterator[dict[str, Any]], gathered: _Gathered) -> None:
    """Feed every call's result to the writers, in call (data-set) order; refuse a row that
    never came back."""
    try:
        for part in results:
            if gathered.first_at is None:
                gathered.first_at = time.perf_counter()
            gathered.add(part)
    except BaseException:
        gathered.outputs.abort()
        raise
    if not gathered.seen.all():
        gathered.outputs.abort()
        missing = np.flatnonzero(~gathered.seen)[:3].tolist()
        raise AuditError(f"--engine ray: rows {missing} never came back from the Ray job")
