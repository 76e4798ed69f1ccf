"""The corrections file: expert decisions on a frozen set's labels, kept beside it, never in it.

One CSV row per decision, appended (never rewritten) under an exclusive ``flock`` so that two
reviewers working at once lose nothing. Users and other tools may write the file by hand; the
header is part of the external contract (``shared/DESIGN.md``). ``check_corrections`` refuses
decisions that no longer describe the frozen set (path gone, file changed, old label wrong,
unknown class), naming the rows. Cells are data: one starting with ``=``, ``+``, ``-`` or
``@`` (a spreadsheet formula, "CSV injection") is kept as text and never evaluated here; a
spreadsheet opening the file may, so import it as text there.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from audits.errors import AuditError

if TYPE_CHECKING:
    from audits.datasets import ImageSet

HEADER = ("path", "sha256", "old_label", "decision", "new_label", "reviewer", "reason", "time")
DECISIONS = ("keep", "relabel", "exclude")
HEADER_LINE = ",".join(HEADER)


def utc_now() -> str:
    """Now as UTC ISO 8601 with a ``Z`` (the ``time`` column's format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Decision:
    """One expert decision on one image of a frozen set."""

    path: str
    sha256: str
    old_label: str
    decision: str  # keep | relabel | exclude
    new_label: str = ""  # the new class for ``relabel``; empty otherwise
    reviewer: str = ""
    reason: str = ""
    time: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}: {self.decision!r}")
        if self.decision == "relabel" and not self.new_label:
            raise ValueError("a relabel decision needs new_label")


def corrections_file(source: Path, kind: str) -> Path:
    """Where a data set's corrections live: ``<stem>.corrections.csv`` beside a manifest, or
    ``corrections.csv`` in an ImageFolder root (``source``/``kind`` as on ``ImageSet``)."""
    source = Path(source)
    if kind == "manifest":
        return source.with_name(source.stem + ".corrections.csv")
    return source / "corrections.csv"


def _encode(decisions: list[Decision]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for d in decisions:
        writer.writerow(astuple(d))
    return buf.getvalue().encode("utf-8")


def append_decisions(file: str | Path, decisions: list[Decision]) -> None:
    """Append decisions to the corrections file (created with its header when new).

    The whole append is one ``write`` under an exclusive lock, so concurrent reviewers'
    rows never interleave or overwrite each other.
    """
    file = Path(file)
    if not decisions:
        return
    payload = _encode(list(decisions))
    try:
        fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise AuditError(f"{file}: cannot write the corrections file ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size == 0:
            payload = (HEADER_LINE + "\n").encode("utf-8") + payload
        else:
            with open(file, "rb") as fh:
                first = fh.readline().decode("utf-8", "replace").strip().lstrip("\ufeff")
                fh.seek(max(size - 1, 0))
                ends_with_newline = fh.read(1) in (b"\n", b"")
            if first != HEADER_LINE:
                raise AuditError(
                    f"{file}: the header must be exactly '{HEADER_LINE}'; fix the first line"
                )
            if not ends_with_newline:  # a hand-edited file without a final newline
                payload = b"\n" + payload
        os.write(fd, payload)
        os.fsync(fd)
    except OSError as exc:
        raise AuditError(f"{file}: cannot write the corrections file ({exc.strerror})") from exc
    finally:
        os.close(fd)  # releases the lock


def read_corrections(file: str | Path) -> pd.DataFrame:
    """The decisions in file order, validated; a bad row is refused naming its line and field."""
    return parse_corrections(read_corrections_bytes(file), file)


def read_corrections_bytes(file: str | Path) -> bytes:
    """The corrections file's bytes (read once, so a caller can hash what it parsed)."""
    file = Path(file)
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise AuditError(
            f"{file}: corrections file not found; review the set first (dashboard review page) "
            "or give the file with --corrections"
        ) from None
    except IsADirectoryError:
        raise AuditError(f"{file}: is a folder, not a corrections file") from None
    except OSError as exc:
        raise AuditError(f"{file}: cannot read the corrections file ({exc.strerror})") from None


def parse_corrections(data: bytes, file: str | Path) -> pd.DataFrame:
    """Parse a corrections file's bytes (see ``read_corrections``).

    Hand-written files load: a UTF-8 byte-order mark, CRLF line ends, quoted fields (with
    commas or line breaks inside), blank lines. A cell that starts with ``=``, ``+``, ``-`` or
    ``@`` (a spreadsheet formula) is kept as text: it is data, nothing here evaluates it.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditError(
            f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise AuditError(f"{file}, line 1: not valid CSV ({exc})") from None
    if header is None or tuple(c.strip() for c in header) != HEADER:
        raise AuditError(f"{file}: the header must be exactly '{HEADER_LINE}'; fix the first line")
    records = []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: name where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise AuditError(f"{file}, line {start}: not valid CSV ({exc})") from None
        if not row or all(not c.strip() for c in row):
            continue
        records.append(_record(file, start, row))
    return pd.DataFrame(records, columns=[*HEADER, "line"])


def _record(file: str | Path, line: int, row: list[str]) -> dict[str, object]:
    """One row as a dict, checked: field count, decision, new_label, path and time."""
    if len(row) != len(HEADER):
        raise AuditError(
            f"{file}, line {line}: {len(row)} fields, expected {len(HEADER)} ({HEADER_LINE})"
        )
    rec: dict[str, object] = dict(zip(HEADER, (c.strip() for c in row), strict=True))
    if rec["decision"] not in DECISIONS:
        raise AuditError(
            f"{file}, line {line}: decision {rec['decision']!r} is not one of "
            f"{', '.join(DECISIONS)}"
        )
    if rec["decision"] == "relabel" and not rec["new_label"]:
        raise AuditError(f"{file}, line {line}: a relabel decision needs new_label")
    if not rec["path"]:
        raise AuditError(f"{file}, line {line}: path is empty")
    rec["path"] = str(rec["path"]).replace("\\", "/")
    try:
        when = datetime.fromisoformat(str(rec["time"]).replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None or when.utcoffset().total_seconds() != 0:
        raise AuditError(
            f"{file}, line {line}: time {rec['time']!r} is not UTC ISO 8601 "
            "(e.g. 2026-12-01T09:30:00Z)"
        )
    rec["line"] = line
    return rec


def latest_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decision in force for each path: the last one in the file wins."""
    return decisions.drop_duplicates("path", keep="last").reset_index(drop=True)


#: Rows named in a refusal (the count is always exact).
SHOWN_ROWS = 5


def check_corrections(
    image_set: ImageSet,
    decisions: pd.DataFrame,
    hashes: list[str | None],
    classes: list[str] | None = None,
    file: str | Path | None = None,
) -> None:
    """Refuse decisions that do not describe this frozen set, naming up to five rows.

    A row is refused when its path is not in the set, its sha256 is not the file's sha256 now
    (the image changed after the review), its old_label is not the set's label, or (when
    ``classes`` is given) its new_label is not one of them. ``hashes`` are the set's file
    hashes in item order (``audits.datasets.hash_files``).
    """
    where = file if file is not None else corrections_file(image_set.source, image_set.kind)
    items = image_set.items
    known = {p: (h, lab) for p, h, lab in zip(items["path"], hashes, items["label"], strict=True)}
    allowed = set(classes) if classes is not None else None
    problems: list[str] = []
    for rec in decisions.itertuples(index=False):
        line = f"line {rec.line} '{rec.path}'"
        if rec.path not in known:
            problems.append(f"{line}: not in the set")
            continue
        sha, label = known[rec.path]
        if rec.sha256 != sha:
            problems.append(f"{line}: sha256 no longer matches the file")
        if rec.old_label != ("" if label is None else label):
            problems.append(f"{line}: old_label {rec.old_label!r} but the set says {label!r}")
        if rec.decision == "relabel" and allowed is not None and rec.new_label not in allowed:
            problems.append(f"{line}: new_label {rec.new_label!r} is not a known class")
    if problems:
        shown = "; ".join(problems[:SHOWN_ROWS]) + (" …" if len(problems) > SHOWN_ROWS else "")
        raise AuditError(
            f"{where}: {len(problems)} decision(s) do not match the frozen set "
            f"{image_set.source} ({shown}); the file describes another version of the set: fix "
            "or remove those rows, or review those images again"
        )
