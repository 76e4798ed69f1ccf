"""Other audited versions of a model family as a second opinion on suspect labels.

Brodley & Friedl ("Identifying Mislabeled Training Data", JAIR 11, 1999) flag an example only
when a *consensus* of classifiers disagrees with its label: a label that some model predicts
is learnable, and random label noise is rarely predicted back. Here the classifiers are the
other audited versions of the same model (same name) on the same frozen held-out set (same
fingerprint), found in the store. A suspect that any of them predicts with its given label is
cleared; the others record how many versions agree against the label. With no other version
in the store (the first audit of a family) nothing changes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audits.datasets import fingerprint_rows
from audits.errors import AuditError
from audits.history_records import list_store
from audits.store import DamagedRun, open_checked, warn_damaged


def table_fingerprint(table: pd.DataFrame) -> str:
    """The fingerprint of the rows a predictions table holds (path, file sha256, label)."""
    labels = table["label"].where(table["label"].notna(), None)
    hashes = table["file_sha256"].astype(object).where(table["file_sha256"].notna(), None)
    return fingerprint_rows(
        zip(table["path"], hashes, labels, strict=True)  # type: ignore[arg-type]
    )


def other_versions(
    store: Path, name: str, version: str, fingerprint: str
) -> list[tuple[str, pd.Series]]:
    """(version, predicted class name by image path) of the newest audit of every other
    version of ``name`` on the data set with ``fingerprint``; unreadable runs are skipped."""
    seen: dict[str, pd.Series] = {}
    # Picked from the light listing (newest first); only the picks' tables are opened.
    listing = list_store(store, kind="audit")
    warn_damaged(listing.damaged)
    for summary in listing.runs:
        ident = summary.model
        if ident.name != name or ident.version == version or ident.version in seen:
            continue
        run = open_checked(summary.path)  # a run damaged in full is skipped, as before
        if isinstance(run, DamagedRun):
            warn_damaged([run])
            continue
        try:
            table = run.table
            if table_fingerprint(table) != fingerprint:
                continue
        except (AuditError, OSError, KeyError, ValueError):
            continue
        seen[ident.version] = pd.Series(table["pred"].to_numpy(), index=table["path"].to_numpy())
    return sorted(seen.items())
