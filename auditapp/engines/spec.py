"""The engine's choice and options (``EngineSpec``) and what the per-image stage returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audits.errors import AuditError

if TYPE_CHECKING:  # kept out of the CLI's start-up (``--help`` imports this module)
    from audits.inference import Predictions
    from audits.prepare import FrozenCheck

ENGINES = ("local", "ray")
DECODE_CHOICES = ("auto", "cpu", "device")  # audits.device_decode's, kept out of --help's imports


@dataclass(frozen=True)
class EngineSpec:
    """The engine and its options (``--engine``, ``--ray-*``)."""

    name: str = "local"
    #: ``auto``, ``ray://host:port`` or ``host:port`` joins a cluster; None starts a local Ray.
    address: str | None = None
    #: Actors running the model; None: as many as the cluster's GPUs (or CPUs) allow.
    actors: int | None = None
    #: GPUs per actor; None: 1 where the cluster has GPUs and the device allows it, else 0.
    num_gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    #: ``--decode``: ``auto`` (JPEGs on the GPU with nvJPEG on CUDA), ``cpu`` (Pillow) or
    #: ``device`` (``audits.device_decode``); the local engine's choice.
    decode: str = "auto"


@dataclass
class PerImage:
    """What the per-image stage hands the rest of the audit."""

    preds: Predictions
    frozen: FrozenCheck
    #: ``audit.json``'s ``engine`` block; None for the local engine (the default, not recorded).
    record: dict[str, Any] | None = None


def as_engine(engine: str | EngineSpec | None) -> EngineSpec:
    """An ``EngineSpec`` from a name or a spec; an unknown name is one clear line."""
    if engine is None:
        return EngineSpec()
    if isinstance(engine, EngineSpec):
        spec = engine
    else:
        spec = EngineSpec(name=str(engine).strip().lower())
    if spec.name not in ENGINES:
        raise AuditError(f"--engine {spec.name}: expected one of {', '.join(ENGINES)}")
    if spec.actors is not None and spec.actors < 1:
        raise AuditError(f"--ray-actors {spec.actors}: must be at least 1")
    if spec.num_gpus_per_actor is not None and spec.num_gpus_per_actor < 0:
        raise AuditError(f"--ray-num-gpus-per-actor {spec.num_gpus_per_actor}: must be 0 or more")
    if spec.decode not in DECODE_CHOICES:
        raise AuditError(f"--decode {spec.decode}: expected one of {', '.join(DECODE_CHOICES)}")
    if spec.name == "ray" and spec.decode == "device":
        raise AuditError("--decode device needs --engine local (Ray actors decode with Pillow)")
    if spec.cpus_per_actor <= 0:
        raise AuditError(f"--ray-cpus-per-actor {spec.cpus_per_actor}: must be more than 0")
    return spec
