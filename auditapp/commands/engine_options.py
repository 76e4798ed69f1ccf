"""``--engine local|ray`` and the ``--ray-*`` options of ``run``."""

from __future__ import annotations

import argparse

from auditapp.commands.options import positive_int
from auditapp.engines.spec import DECODE_CHOICES, ENGINES, EngineSpec, as_engine


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """The engine choice and the Ray engine's placement options."""
    g = p.add_argument_group("engine (where decoding, hashing and the forward pass run)")
    g.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process (default); ray: Ray actors, a local Ray or --ray-address",
    )
    g.add_argument(
        "--decode",
        choices=DECODE_CHOICES,
        default="auto",
        help="where JPEGs are decoded: auto (on the GPU with nvJPEG when on CUDA, else Pillow), "
        "cpu (Pillow in the reading workers), device (torchvision on the model's device)",
    )
    g.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="join a Ray cluster: auto, ray://host:port or host:port (default: start a local Ray)",
    )
    g.add_argument(
        "--ray-actors",
        type=positive_int,
        default=None,
        metavar="N",
        help="model actors (default: the cluster's GPUs, else its CPUs / --ray-cpus-per-actor)",
    )
    g.add_argument(
        "--ray-num-gpus-per-actor",
        type=_non_negative_float,
        default=None,
        metavar="G",
        help="GPUs per actor (default 1 where the cluster has GPUs, else 0: CPU actors)",
    )
    g.add_argument(
        "--ray-cpus-per-actor",
        type=_positive_float,
        default=1.0,
        metavar="C",
        help="CPUs per actor (default 1; also its decoding threads)",
    )


def engine_spec(args: argparse.Namespace) -> EngineSpec:
    """The ``EngineSpec`` the options name; ``--ray-*`` without ``--engine ray`` is refused."""
    ray_given = [
        flag
        for flag, value in (
            ("--ray-address", args.ray_address),
            ("--ray-actors", args.ray_actors),
            ("--ray-num-gpus-per-actor", args.ray_num_gpus_per_actor),
        )
        if value is not None
    ]
    if args.engine != "ray" and ray_given:
        from audits.errors import AuditError

        raise AuditError(f"{ray_given[0]} needs --engine ray")
    if args.engine == "ray" and args.ray_address is not None:
        from auditapp.engines.ray_session import check_reachable

        check_reachable(args.ray_address)  # before the model loads: a wrong address costs seconds
    return as_engine(
        EngineSpec(
            name=args.engine,
            address=args.ray_address,
            actors=args.ray_actors,
            num_gpus_per_actor=args.ray_num_gpus_per_actor,
            cpus_per_actor=args.ray_cpus_per_actor,
            decode=args.decode,
        )
    )
