"""Run the per-image stage on the chosen engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from auditapp.engines.spec import EngineSpec, PerImage

if TYPE_CHECKING:
    from audits.datasets import ImageSet
    from audits.prepare import Prepared


def run_per_image(
    spec: EngineSpec,
    ready: Prepared,
    image_set: ImageSet,
    *,
    model_dir: Path | None,
    batch_size: int | None,
    workers: int | None,
    allow_pickle: bool,
    out_dir: Path,
    progress: bool,
) -> PerImage:
    """Decode, forward and hash every image with the chosen engine, then check the freeze.

    Both engines hash each file from the bytes they decode (one read per file, not one to hash
    and another to decode), so a set that moved since it was frozen is refused after the pass;
    nothing is stored for it."""
    if spec.name == "ray":
        from auditapp.engines.ray_engine import ray_per_image

        return ray_per_image(
            spec,
            ready,
            image_set,
            model_dir=model_dir,
            batch_size=batch_size,
            allow_pickle=allow_pickle,
            out_dir=out_dir,
            progress=progress,
        )
    from auditapp.engines.local import local_per_image

    return local_per_image(
        ready,
        image_set,
        batch_size=batch_size,
        workers=workers,
        out_dir=out_dir,
        progress=progress,
        decode=spec.decode,
    )
