"""Storing checked claims with an audit run, the one way both the CLI and the dashboard do it.

A run stays immutable: each checked set of claims goes to a new sub-folder
``claims-<first 12 hex of the claims' sha256>/`` (added atomically) holding ``claims.json``
(the results, through ``write_record``), a copy of the claims as given (``claims.toml`` /
``claims.yaml`` from a file, ``typed-claims.json`` from the dashboard) and small thumbnails of
the images behind each claim (``thumbs/<row>.jpg``), so that the dashboard and the exports can
show them after the data set moves. Checking the same claims again returns the stored results.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audits.claims import evaluate_claims, load_claims, validate_claim
from audits.errors import AuditError
from audits.hashing import bytes_sha256
from audits.images import BadImage, decode, to_mode
from audits.runs import utc_stamp, write_record
from audits.runs.models_claims import ClaimsRecord
from audits.runs.reader import read_json_file
from audits.store import Run, add_to_run, load_run

PREFIX = "claims-"
TYPED_FILE = "typed-claims.json"
THUMB_SIDE = 160


@dataclass
class SavedClaims:
    """A stored ``claims-*/`` folder; ``existed``: the same claims had been checked before."""

    folder: Path
    record: ClaimsRecord
    existed: bool


def _run(run: Run | str | Path) -> Run:
    run = run if isinstance(run, Run) else load_run(run)
    if run.kind != "audit":
        raise AuditError(f"{run.path}: claims need an audit run, not a {run.kind} run")
    return run


def check_claims_file(run: Run | str | Path, file: str | Path) -> SavedClaims:
    """Check a claims file (TOML, YAML or JSON) against a run and store the results."""
    file = Path(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise AuditError(f"{file}: cannot read the claims file ({exc.strerror or exc})") from None
    copy = f"claims{file.suffix.lower() or '.toml'}"
    if copy == "claims.json":
        copy = TYPED_FILE  # claims.json is the results file
    return _save(_run(run), lambda: load_claims(file), data, copy, file.name, "cli")


def check_typed_claims(
    run: Run | str | Path, claims: Sequence[Mapping[str, Any]], source: str = "dashboard"
) -> SavedClaims:
    """Check claims given as dicts (typed in the dashboard) and store them like a file."""
    checked = [validate_claim(c, i) for i, c in enumerate(claims, start=1)]
    data = (json.dumps({"claims": checked}, indent=2, sort_keys=True) + "\n").encode()
    return _save(_run(run), lambda: checked, data, TYPED_FILE, TYPED_FILE, source)


def _save(run: Run, parse: Any, data: bytes, copy: str, name: str, source: str) -> SavedClaims:
    digest = bytes_sha256(data)
    folder = run.path / f"{PREFIX}{digest[:12]}"
    if (folder / "claims.json").is_file():
        record = ClaimsRecord.from_dict(read_json_file(folder / "claims.json"))
        return SavedClaims(folder, record, existed=True)
    results = evaluate_claims(run, parse())
    with add_to_run(run.path, folder.name) as tmp:
        (tmp / copy).write_bytes(data)
        for result in results:
            for example in result["examples"]:
                example["thumb"] = _thumb(run, example, tmp, folder.name)
        record = write_record(
            tmp,
            {
                "kind": "claims",
                "run_id": run.run_id,
                "created": utc_stamp(),
                "claims_file": name,
                "claims_sha256": digest,
                "results": results,
                "source": source,
            },
            "claims",
        )
    return SavedClaims(folder, record, existed=False)


def data_root(run: Run) -> Path | None:
    """The folder the predictions' paths are relative to, when it is still there."""
    info = run.audit.dataset
    if not info.path:
        return None
    path = Path(info.path)
    root = path if info.kind == "imagefolder" or path.is_dir() else path.parent
    return root if root.is_dir() else None


def _thumb(run: Run, example: dict[str, Any], tmp: Path, folder: str) -> str | None:
    """A thumbnail of one image behind a claim, from the data set or the run's own thumbnail;
    its path inside the run, or None when neither is readable."""
    row, rel = int(example["row"]), example.get("path")
    dst = tmp / "thumbs" / f"{row}.jpg"
    dst.parent.mkdir(exist_ok=True)
    root = data_root(run)
    src = root / rel if root is not None and isinstance(rel, str) else None
    if src is not None and src.is_file():
        try:
            img = to_mode(decode(src.read_bytes()), 3)
        except (OSError, BadImage):
            img = None
        if img is not None:
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            img.save(dst, format="JPEG", quality=85)
            return f"{folder}/thumbs/{row}.jpg"
    stored = run.row_thumb(row)
    if stored is not None:
        shutil.copyfile(stored, dst)
        return f"{folder}/thumbs/{row}.jpg"
    return None
