"""Progress bars for the slow stages (hashing, leakage, image properties, speed, exports).

On stderr only, so ``--json`` output on stdout stays one object; shown only when stderr is a
terminal (CI logs and captured output stay clean) and only for a stage still running after a
second. ``--quiet`` turns them off for the whole process through :func:`set_enabled`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

_enabled = True
#: Seconds a stage runs before its bar appears: a quick stage never draws one.
DELAY_S = 1.0


def set_enabled(enabled: bool) -> None:
    """Turn every bar of this process on or off (the CLI's ``--quiet``)."""
    global _enabled
    _enabled = enabled


def tracked(items: Iterable[T], total: int | None, desc: str, unit: str = "img") -> Iterator[T]:
    """``items`` unchanged, with a bar on stderr while they are consumed."""
    # disable=None: tqdm turns itself off when stderr is not a terminal.
    with tqdm(
        items,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=None if _enabled else True,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        yield from bar
