"""What the pipelines share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from audits.errors import AuditError, os_fault


def skip_reasons(skipped: Iterable[Mapping[str, str]]) -> str:
    """The first three distinct reasons images were skipped, joined by '; ', or 'no images'."""
    return "; ".join(sorted({s["reason"] for s in skipped})[:3]) or "no images"


@contextlib.contextmanager
def writing_run(store: str | Path) -> Iterator[None]:
    """Faults of writing a run (a full disk, a read-only store…) as one line naming the store.

    Wraps ``create_run``: by the time the error arrives here the run's temporary folder is
    gone, so the store is as it was.
    """
    try:
        yield
    except OSError as exc:
        cause, todo = os_fault(exc)
        name = Path(exc.filename).name if exc.filename else ""
        # The run's own staging folder is no name a user knows; a file in it is.
        file = f" (writing {name})" if name and not name.startswith(".") else ""
        raise AuditError(
            f"{store}: cannot write the run{file}: {cause}; "
            + (f"{todo}; " if todo else "")
            + "nothing was stored"
        ) from exc
