"""Joining a Ray cluster or starting a local one, with one clear line when it cannot be reached.

``--ray-address auto|ray://host:port|host:port`` joins an existing cluster; without it a local
Ray is started on demand with this machine's cores and shut down afterwards. A session already
open in this process (a notebook, the tests) is used as it is and left open.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from audits.errors import AuditError

#: Seconds to wait for a cluster's port before saying it is unreachable.
CONNECT_TIMEOUT_S = float(os.environ.get("AUDITS_RAY_CONNECT_TIMEOUT", "5"))
#: Ray Client's default port, for ``ray://host`` without one.
CLIENT_PORT = 10001


@dataclass
class RaySession:
    """The session the engine runs in: the address as given and what the cluster holds."""

    address: str
    started_here: bool
    cpus: float
    gpus: float
    ray_version: str


def import_ray() -> Any:
    """``ray``, or one line saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise AuditError(
            f"--engine ray needs Ray ({exc}); install it with: "
            "pip install -r requirements-ray.txt  (ray==2.60.0)"
        ) from None
    return ray


def host_port(address: str) -> tuple[str, int] | None:
    """The TCP endpoint of ``ray://host[:port]`` or ``host:port``; None for ``auto``."""
    if address == "auto":
        return None
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    rest = rest.split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep:
        if address.startswith("ray://"):
            return rest, CLIENT_PORT
        raise AuditError(
            f"--ray-address {address}: expected auto, ray://host:port or host:port "
            "(the head node's GCS port, 6379 by default)"
        )
    if not host:
        raise AuditError(f"--ray-address {address}: no host name before the port")
    if not port.isdigit():
        raise AuditError(f"--ray-address {address}: {port!r} is not a port number")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address nothing answers on within ``timeout`` seconds (Ray itself retries
    for much longer before giving up)."""
    endpoint = host_port(address)
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise AuditError(
            f"--ray-address {address}: no Ray cluster answers at {host}:{port} ({why} after "
            f"at most {timeout:g} s); start one (ray start --head) or check the address, "
            "or leave --ray-address out to run a local Ray"
        ) from None


@contextmanager
def ray_session(address: str | None) -> Iterator[RaySession]:
    """Ray, initialised for the engine; shut down afterwards only if started here."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        _init(ray, address)
        started = True
    try:
        resources = ray.cluster_resources()
        yield RaySession(
            address=address or ("local" if started else "existing session"),
            started_here=started,
            cpus=float(resources.get("CPU", 0.0)),
            gpus=float(resources.get("GPU", 0.0)),
            ray_version=ray.__version__,
        )
    finally:
        if started:
            ray.shutdown()


def _init(ray: Any, address: str | None) -> None:
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,  # no INFO/notice lines around the audit's output
        "log_to_driver": False,  # a worker's failure reaches us as an exception, not log noise
        "configure_logging": True,
    }
    if address is None:
        # /dev/shm smaller than the object store makes Ray fall back to /tmp (slower, a warning).
        ray.init(num_cpus=os.cpu_count() or 1, **options)
        return
    check_reachable(address)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise AuditError(
            f"--ray-address {address}: cannot join the Ray cluster ({first}); check the "
            "address and that the cluster runs Ray 2.60.0 and this package"
        ) from None
