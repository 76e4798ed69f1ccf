"""Which kind of model file a card's ``weights`` is, decided by its content, not only its name.

Zip archives are told apart by their entries (nothing in them is read as Python): TorchScript
(``torch.jit.save``) holds ``<root>/constants.pkl`` and ``<root>/code/``; a ``torch.export``
archive holds ``<root>/archive_format`` and ``<root>/models/``. A ``.pt``/``.pth`` zip with
neither is an ordinary ``torch.save`` checkpoint (a state_dict).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from audits.errors import AuditError

STATE_DICT = "state_dict"
TORCHSCRIPT = "torchscript"
EXPORTED = "torch.export"
ONNX = "onnx"

#: File suffixes a card's ``weights`` may have.
SUFFIXES = (".safetensors", ".pt", ".pth", ".ts", ".pt2", ".onnx")


def _zip_entries(path: Path) -> list[str] | None:
    """The entry names of a zip file, or None when it is not one."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def _zip_kind(entries: list[str]) -> str | None:
    """torchscript, torch.export, or None for another zip (torch.save's format)."""
    # Entries are "<root>/<name>"; the root is the file's stem when it was saved.
    tails = {e.split("/", 1)[1] for e in entries if "/" in e}
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return TORCHSCRIPT
    if "archive_format" in tails and any(t.startswith("models/") for t in tails):
        return EXPORTED
    return None


def detect_format(path: Path, card: Path) -> str:
    """``state_dict``, ``torchscript``, ``torch.export`` or ``onnx`` for a weights file.

    A ``.ts`` must be a TorchScript archive and a ``.pt2`` a ``torch.export`` one; a ``.pt``
    or ``.pth`` may be either of those or a checkpoint; ``.onnx`` is ONNX (checked when loaded).
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise AuditError(
            f"{card}: field 'weights': expected a .safetensors, .pt or .pth state_dict, a "
            f"TorchScript .ts, a torch.export .pt2 or an .onnx model, got '{path.name}'"
        )
    if suffix == ".safetensors":
        return STATE_DICT
    if suffix == ".onnx":
        return ONNX
    entries = _zip_entries(path)
    kind = _zip_kind(entries) if entries is not None else None
    if suffix == ".ts" and kind != TORCHSCRIPT:
        raise AuditError(
            f"{path}: not a TorchScript archive (no constants.pkl and code/ inside); save one "
            "with torch.jit.save(torch.jit.script(model), 'model.ts')"
        )
    if suffix == ".pt2" and kind != EXPORTED:
        raise AuditError(
            f"{path}: not a torch.export archive (no archive_format and models/ inside); save "
            "one with torch.export.save(torch.export.export(model, (example,)), 'model.pt2')"
        )
    return kind or STATE_DICT
