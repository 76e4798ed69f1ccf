"""Warm model actors, kept between audits in one Ray session.

Starting an actor costs seconds (a Python process, ``import torch`` and torchvision, the model);
an audit of a few thousand images costs less. So the actors of an audit stay alive when it ends,
as named actors (``audits-pool-<key>-<i>``) in the driver's Ray namespace, and the next audit
of the **same model** in the same session takes them over. The key is a sha256 over everything
an actor's numbers depend on: the card as written (classes, input size, channels, mean, std,
kwargs, format), the weights' sha256, the model code's sha256 (``code_identity``), the device and
the actor's resources. Any difference gives a new key, and a new pool; an actor reports its key
and the driver refuses one whose key differs, so a pool is never used for another model.

Only one pool is kept: an audit first ends the kept actors of other keys (they hold the CPUs
or GPUs its own actors need). A model from memory (the Python API's ``nn.Module``) gets a
one-off pool, ended with its audit: its identity is not a file's sha256. The actors are not detached:
they end with the driver's Ray session (``ray.shutdown()``, or the process's exit), or with
``shutdown_pools()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audits.errors import AuditError
from audits.model_card import ModelCard

#: Name prefix of the pool's actors (``ray list actors`` shows them).
PREFIX = "audits-pool-"
#: The kept actors' handles, by name, with the session they belong to: a non-detached actor
#: ends when its creator drops the handle it got at creation (a handle found by name does not
#: keep it alive), so the driver holds that one between audits.
_KEPT: dict[str, tuple[str, Any]] = {}
#: Ray's fault tolerance for the actors: a dead actor is restarted and its calls retried.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3


def pool_key(card: ModelCard, **placement: Any) -> str:
    """sha256 over the card, the weights' and the code's sha256 and the actors' placement."""
    blob = json.dumps(
        {"identity": card.identity(), "card": repr(card), "placement": placement},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Pool:
    """The actors one audit runs on."""

    actors: list[Any]
    #: None: a one-off pool (a model from memory), ended after its audit.
    key: str | None
    names: list[str] = field(default_factory=list)
    #: Starts (or finds) the actor of a name and keeps its handle.
    start: Callable[[str], Any] | None = None

    def restart(self, name: str) -> Any:
        """A new actor under ``name`` (the old one is dead)."""
        assert self.start is not None
        return self.start(name)

    def end_if_one_off(self, ray: Any) -> None:
        """End a one-off pool's actors (a kept pool stays for the next audit)."""
        if self.key is None:
            for actor in self.actors:
                ray.kill(actor)


def acquire(
    ray: Any, actor_class: type, *, key: str | None, n: int, options: dict, kwargs: dict
) -> Pool:
    """The pool for ``key``: its live actors, started where missing; other pools are ended."""
    remote = ray.remote(actor_class)
    common = {"max_restarts": MAX_RESTARTS, "max_task_retries": MAX_TASK_RETRIES, **options}
    names = [f"{PREFIX}{key[:24]}-{i}" for i in range(n)] if key is not None else []
    for name in pool_names(ray):
        if name not in names:  # another model's pool, or more actors than asked for now:
            _kill(ray, name)  # they hold the CPUs/GPUs the new actors need
    if key is None:
        return Pool([remote.options(**common).remote(**kwargs) for _ in range(n)], None)
    session = _session_id(ray)

    def start(name: str) -> Any:
        actor = remote.options(name=name, get_if_exists=True, **common).remote(**kwargs, key=key)
        _KEPT[name] = (session, actor)
        return actor

    actors = []
    for name in names:
        kept = _KEPT.get(name)
        actors.append(kept[1] if kept is not None and kept[0] == session else start(name))
    return Pool(actors, key, names, start)


def begin(ray: Any, pool: Pool) -> list[dict[str, Any]]:
    """Each actor's ``begin`` (waits until the actors are up); a kept actor that died since its
    last audit (its restarts spent) is started again, once."""
    from ray.exceptions import RayActorError

    infos: list[dict[str, Any] | None] = [None] * len(pool.actors)
    for attempt in range(2):
        refs = [a.begin.remote() if infos[i] is None else None for i, a in enumerate(pool.actors)]
        for i, ref in enumerate(refs):
            if ref is None:
                continue
            try:
                infos[i] = ray.get(ref)
            except RayActorError:
                if attempt or pool.key is None:
                    raise
                _KEPT.pop(pool.names[i], None)
                pool.actors[i] = pool.restart(pool.names[i])
        if all(info is not None for info in infos):
            break
    check_keys(ray, pool, infos)  # type: ignore[arg-type]
    return infos  # type: ignore[return-value]


def check_keys(ray: Any, pool: Pool, infos: list[dict[str, Any]]) -> None:
    """Refuse (and end) a pool whose actors were built for another key: a 24-hex-digit prefix
    collision, or an actor started under the same name by other code."""
    if pool.key is None:
        return
    wrong = [name for name, info in zip(pool.names, infos, strict=True) if info["key"] != pool.key]
    for name in wrong:
        _kill(ray, name)
    if wrong:
        raise AuditError(
            f"--engine ray: actors {', '.join(wrong)} were started for another model; they "
            "were ended, rerun the audit"
        )


def pool_names(ray: Any) -> list[str]:
    """Names of this package's pool actors in the current Ray namespace."""
    from ray.util import list_named_actors

    return [name for name in list_named_actors() if str(name).startswith(PREFIX)]


def shutdown_pools() -> int:
    """End every kept model actor of this Ray session (the CPUs/GPUs they hold are freed);
    returns how many. A no-op without a Ray session."""
    import ray

    if not ray.is_initialized():
        return 0
    names = pool_names(ray)
    for name in names:
        _kill(ray, name)
    return len(names)


def _session_id(ray: Any) -> str:
    context = ray.get_runtime_context()
    return f"{context.get_job_id()}/{context.get_node_id()}"


def _kill(ray: Any, name: str) -> None:
    _KEPT.pop(name, None)
    with contextlib.suppress(ValueError):  # already gone
        ray.kill(ray.get_actor(name), no_restart=True)
