"""The one set-up every path shares: model card → data set(s) → labels checked → device → model.

The audit, drift, explain and speed paths all start here, so a card, a data set or a device
is refused the same way, with the same message, wherever it is used. ``reopen_audited`` is the
variant for work on a stored run (explain, speed): it rebuilds the exact model that was
audited and refuses weights or classes that changed since.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audits.datasets import ImageSet, check_labels, fingerprint, freeze_status, hash_files
from audits.datasets import load_dataset as _load_dataset
from audits.errors import AuditError
from audits.freezing import FreezeStatus
from audits.inference import resolve_device
from audits.model_card import ModelCard, load_card, load_model, weights_sha256


@dataclass
class Prepared:
    """A loaded model (eval mode, on ``device``) and the data sets it will see, in order given."""

    card: ModelCard
    device: torch.device
    model: nn.Module
    sets: list[ImageSet] = field(default_factory=list)
    #: ``reopen_audited`` only: the model code's changes since the run (None: not recorded).
    code_changes: list[dict[str, Any]] | None = field(default_factory=list)

    @property
    def image_set(self) -> ImageSet:
        """The first (often the only) data set."""
        return self.sets[0]


@dataclass
class FrozenCheck:
    """File hashes of a data set, whether it matches its freeze record, and its fingerprint.

    ``status`` says what the freeze covers and lists metadata changed since it.
    """

    hashes: Sequence[str | None]
    frozen: bool
    fingerprint: str
    status: FreezeStatus | None = None

    def record_fields(self) -> dict[str, Any]:
        """Optional fields for a run's data set block: ``freeze`` (coverage, changes)."""
        return {} if self.status is None else {"freeze": self.status.record_block()}


def prepare(
    model_dir: str | Path,
    data: list[str | Path] | tuple[str | Path, ...] = (),
    *,
    device: str | torch.device = "auto",
    allow_pickle: bool = False,
    require_labels: bool = False,
) -> Prepared:
    """Load the card and the data sets, check their labels against the card, load the model.

    Data sets are loaded before the model so a wrong path fails before the slow part.
    ``require_labels`` refuses an unlabelled set (an audit needs labels; drift does not).
    """
    card = load_card(model_dir)
    sets = [load_labelled(path, card, required=require_labels) for path in data]
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = load_model(card, dev, allow_pickle=allow_pickle)
    return Prepared(card=card, device=dev, model=model, sets=sets)


def load_labelled(path: str | Path, card: ModelCard, *, required: bool) -> ImageSet:
    """A data set whose labels (when it has them) are all among the card's classes."""
    image_set = _load_dataset(path)
    if required and not image_set.labelled:
        raise AuditError(
            f"{image_set.source}: no labels; an audit needs a labelled held-out set "
            "(for an unlabelled production batch use: python -m audits drift)"
        )
    if image_set.labelled:
        check_labels(image_set, card.classes)
    return image_set


def check_freeze(
    image_set: ImageSet, warn: bool = True, hashes: Sequence[str | None] | None = None
) -> FrozenCheck:
    """Hash every file (unless ``hashes`` are given: those of the bytes inference decoded),
    compare with the freeze record (refusing a set that moved), fingerprint.

    An unfrozen set is allowed, with a warning on stderr that says how to freeze it; so is a
    set whose metadata changed since it was frozen (recorded as not frozen, each change listed)
    and one frozen before metadata was covered (a note says to re-freeze).
    """
    hashes = hash_files(image_set) if hashes is None else hashes
    status = freeze_status(image_set, hashes)
    if warn:
        message = freeze_message(image_set, status)
        if message:
            print(message, file=sys.stderr)
    return FrozenCheck(
        hashes=hashes,
        frozen=status.frozen,
        fingerprint=fingerprint(image_set, hashes),
        status=status,
    )


def freeze_message(image_set: ImageSet, status: FreezeStatus) -> str | None:
    """The one line to print about a set's freeze, or None when it is frozen and covered."""
    source = image_set.source
    if not status.recorded:
        return (
            f"warning: {source} is not frozen; freeze it so later runs can prove it did not move: "
            f"python -m audits freeze {source}"
        )
    if status.metadata_changed:
        return (
            f"warning: {source}: metadata changed since it was frozen "
            f"({image_set.freeze_file.name}): {status.describe_changes()}. Slices, claims and "
            "group leakage read these columns, so this set is NOT frozen: restore the values, or "
            f"freeze it again as a new held-out set (python -m audits freeze {source} --force)"
        )
    if status.covers_metadata is False:
        return (
            f"note: {image_set.freeze_file} predates metadata coverage: files and labels are "
            "frozen, groups, ROIs and other columns are not; re-freeze to cover metadata: "
            f"python -m audits freeze {source} --force"
        )
    return None


def reopen_audited(
    record: dict[str, Any],
    run_label: str,
    *,
    device: str | torch.device = "auto",
    allow_pickle: bool = False,
    purpose: str = "rebuild the model",
    hint: str = "audit it again",
    with_data: bool = True,
    unusable_hint: str | None = None,
    allow_code_change: bool = False,
) -> Prepared:
    """The exact model (and, with ``with_data``, the data set) an audit run used.

    ``record`` is the run's ``audit.json``; ``run_label`` names the run in messages; ``purpose``
    and ``hint`` finish the messages ("cannot time car-variants 1.1.0 … use --no-speed");
    ``unusable_hint`` (default ``hint``) ends the one for a model folder that can no longer be
    loaded. Refuses a model folder that is gone, weights whose sha256 changed, classes that
    changed, and model code that changed (before importing it) unless ``allow_code_change``.
    """
    from audits.code_guard import check_run_code

    ident = record.get("model") or {}
    label = f"{ident.get('name', '?')} {ident.get('version', '?')}"
    model_dir, recorded = ident.get("dir"), ident.get("weights_sha256")
    if not model_dir:
        raise AuditError(
            f"{run_label}: the run does not record its model folder; cannot {purpose} ({hint})"
        )
    try:
        card = load_card(model_dir)
    except AuditError as exc:
        raise AuditError(
            f"model {label} of run {run_label} is no longer usable at {model_dir} ({exc}); "
            f"put it back, or {unusable_hint or hint}"
        ) from None
    actual = weights_sha256(card.weights)
    if recorded and actual != recorded:
        raise AuditError(
            f"{card.weights}: weights changed since run {run_label} (sha256 {actual[:12]}, the run "
            f"recorded {recorded[:12]}); the model moved or was retrained: {hint}"
        )
    if card.classes != ident.get("classes", card.classes):
        raise AuditError(
            f"{card.card_path}: classes differ from run {run_label}'s; restore the card that was audited"
        )
    changes = check_run_code(ident, card, run_label, allow_change=allow_code_change, hint=hint)
    sets = []
    if with_data:
        data_path = (record.get("dataset") or {}).get("path")
        if not data_path:
            raise AuditError(f"{run_label}: audit.json records no data set path")
        sets.append(_load_dataset(data_path))
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = load_model(card, dev, allow_pickle=allow_pickle)
    return Prepared(card=card, device=dev, model=model, sets=sets, code_changes=changes)
