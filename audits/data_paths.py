"""Image paths that stay inside their data set's folder, symbolic links included.

A manifest row or an ImageFolder file may be a symbolic link, or sit under a linked folder;
what the audit reads is where the link lands. Every path is resolved (``os.path.realpath``,
on strings: ``Path.resolve`` per row costs several times more) and one that lands outside the
data set's real root is refused. Links that stay inside the root are fine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from audits.errors import AuditError

#: How many offending rows an error message shows.
SHOWN = 3


class Containment:
    """Resolves paths relative to one root and says whether they stay inside it.

    Each folder is resolved once and listed once (most rows share a handful of folders); a
    row's file is resolved only when that listing says it is a link, so a manifest costs no
    system call per row (an ``lstat`` per row cost about as much as reading the manifest).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._dirs: dict[str, str] = {}
        self._links: dict[str, frozenset[str]] = {}

    def _links_in(self, real_dir: str) -> frozenset[str]:
        """Names of the links in a folder (none when it cannot be listed)."""
        links = self._links.get(real_dir)
        if links is None:
            try:
                with os.scandir(real_dir) as entries:
                    links = frozenset(e.name for e in entries if e.is_symlink())
            except OSError:
                links = frozenset()
            self._links[real_dir] = links
        return links

    def inside(self, real: str) -> bool:
        """Whether an already resolved path is the root or below it."""
        return real == self.root or real.startswith(self._prefix)

    def resolve(self, rel: str) -> str:
        """Where ``rel`` (relative to the root, '/'-separated) really is."""
        head, _, name = rel.rpartition("/")
        real_dir = self._dirs.get(head)
        if real_dir is None:
            real_dir = os.path.realpath(os.path.join(self.root, head)) if head else self.root
            self._dirs[head] = real_dir
        if name in ("", ".", ".."):
            return os.path.realpath(os.path.join(real_dir, name))
        full = os.path.join(real_dir, name)
        return os.path.realpath(full) if name in self._links_in(real_dir) else full

    def outside(self, rels: Iterable[str]) -> list[tuple[str, str]]:
        """``(path, where it resolves)`` for every path that lands outside the root."""
        found = []
        safe: dict[str, frozenset[str] | None] = {}  # folder -> its links; None: it leaves
        for rel in rels:
            head, _, name = rel.rpartition("/")
            if head not in safe:
                real_dir = self.resolve(head) if head else self.root
                safe[head] = self._links_in(real_dir) if self.inside(real_dir) else None
            links = safe[head]
            # A plain file name in a folder inside the root is inside: no resolving needed.
            if links is None or name in links or name in ("", ".", ".."):
                real = self.resolve(rel)
                if not self.inside(real):
                    found.append((rel, real))
        return found


def refuse_outside(
    source: Path, root: Path, offending: list[tuple[str, str]], what_to_do: str
) -> None:
    """Raise the one-line error for paths that resolve outside ``root`` (nothing when none do)."""
    if not offending:
        return
    shown = ", ".join(f"'{rel}' → {real}" for rel, real in offending[:SHOWN])
    more = f" and {len(offending) - SHOWN} more" if len(offending) > SHOWN else ""
    raise AuditError(
        f"{source}: {len(offending)} path(s) lead outside the data set's folder {root} "
        f"through symbolic links ({shown}{more}); {what_to_do} "
        "(links that stay inside the folder are fine)"
    )


def walk_images(
    folder: Path, within: Containment, suffixes: set[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Image files under ``folder`` (paths relative to the root) and the links that leave it.

    Linked folders are followed when they stay inside the root (each real folder once, so a
    link cycle ends) and reported, not entered, when they lead outside it.
    """
    files: list[str] = []
    outside: list[tuple[str, str]] = []
    rel_start = os.path.relpath(folder, within.root).replace(os.sep, "/")
    start = os.path.realpath(folder)
    if not within.inside(start):
        return files, [(rel_start + "/", start)]
    seen = {start}
    pending = [(rel_start, start)]
    while pending:
        rel_dir, real_dir = pending.pop()
        try:
            entries = list(os.scandir(real_dir))
        except OSError:
            continue  # an unreadable folder lists no files, as before
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}"
            is_image = os.path.splitext(entry.name)[1].lower() in suffixes
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                is_dir = os.path.isdir(real)
                if not within.inside(real):
                    if is_dir or is_image:
                        outside.append((rel + "/" if is_dir else rel, real))
                    continue
                is_file = not is_dir and os.path.isfile(real)
            else:
                real = entry.path
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
            if is_dir:
                if real not in seen:
                    seen.add(real)
                    pending.append((rel, real))
            elif is_image and is_file:
                files.append(rel)
    return files, outside
