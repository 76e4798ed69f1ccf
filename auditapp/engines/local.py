"""The local engine: ``audits.inference.predict`` in this process (a DataLoader)."""

from __future__ import annotations

from pathlib import Path

from auditapp.engines.spec import PerImage
from audits.datasets import ImageSet
from audits.inference import predict
from audits.prepare import Prepared, check_freeze


def local_per_image(
    ready: Prepared,
    image_set: ImageSet,
    *,
    batch_size: int | None,
    workers: int | None,
    out_dir: Path,
    progress: bool,
    decode: str = "auto",
) -> PerImage:
    """``predict`` over the set; the freeze is checked with the hashes of the decoded bytes."""
    preds = predict(
        ready.model,
        ready.card,
        image_set,
        ready.device,
        batch_size,
        workers,
        out_dir=out_dir,
        progress=progress,
        decode=decode,
    )
    return PerImage(preds=preds, frozen=check_freeze(image_set, hashes=preds.hashes))
