"""The installed layout: what the wheel holds, and the import rewrite that puts it there.

The repository keeps its top-level folders (``audits``, ``auditapp``, ``reports``,
``dashboard``, ``explain``, ``fixtures``). Installed, only ``audits`` (the public API:
``from audits import audit``) stays a top-level import name; the others move under one
package, ``model_audit``, so that a user's own ``reports`` or ``dashboard`` is never shadowed
and never shadows ours (``docs/ARCHITECTURE.md``, "Installed layout").

Moving a package is not enough: its modules say ``from reports.content import ...``. At build
time every absolute import of a moved package, and every string literal that is exactly a
module path of one (``importlib.import_module("reports.export")``), is rewritten to
``model_audit.<name>...``. The rewrite replaces single tokens, so line numbers (and
tracebacks) stay those of the repository. A form it cannot rewrite safely fails the build.

Used by ``setup.py`` (its ``build_py``) and by ``tests/test_install.py``.
"""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

TOP = "model_audit"
#: Packages installed under ``model_audit``; ``audits`` stays top-level (the public API).
RELOCATED = ("auditapp", "reports", "dashboard", "explain", "fixtures")
PACKAGES = ("audits", *RELOCATED)
#: Files besides ``*.py`` that the installed package reads, per package (globs).
DATA = {
    "audits": ("runs/schemas/*.json",),
    "reports": ("templates/*", "schema/*.json"),
    "dashboard": ("assets/*",),
    "fixtures": ("models/**/*", "claims/*.toml", "fingerprints.json"),
}
#: Folders whose files are data, copied as they are (model code is the user's, not ours).
VERBATIM = ("fixtures/models", "fixtures/data")
#: Never shipped: generated demo data (built into a cache folder by ``model-audit demo``).
EXCLUDED = ("fixtures/data",)
#: Repository files the installed package needs beside its packages: the Streamlit entry
#: point (it must sit where ``dashboard/pages/*.py`` resolve) and the dashboard's theme.
EXTRA_FILES = ("streamlit_app.py", ".streamlit/config.toml")
#: The build's git commit, for ``auditor.commit`` in stored runs (read by audits/runs/stamp.py).
COMMIT_FILE = "audits/build_commit.txt"

#: Put first in the installed ``streamlit_app.py``: Streamlit adds the script's folder
#: (``model_audit/``) to ``sys.path``, which would make ``reports`` & co. top-level names again.
STREAMLIT_HEADER = (
    "import os as _os, sys as _sys; "
    "_here = _os.path.dirname(_os.path.abspath(__file__)); "
    "_sys.path[:] = [_p for _p in _sys.path if _os.path.abspath(_p or _os.curdir) != _here]; "
    "del _os, _sys, _here  # the installed layout (docs/ARCHITECTURE.md)\n"
)

_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.?")


class LayoutError(ValueError):
    """A source file uses an import form the build cannot rewrite safely."""


@dataclass
class Rewrite:
    """The rewritten text of one module and what changed (``line: before -> after``)."""

    text: str
    changes: list[str] = field(default_factory=list)


def known_modules(root: Path) -> set[str]:
    """Dotted names of every module and package under the relocated folders of ``root``."""
    names: set[str] = set()
    for package in RELOCATED:
        for path in (root / package).rglob("*.py"):
            rel = path.relative_to(root)
            if any(rel.as_posix().startswith(v + "/") for v in VERBATIM):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            for i in range(1, len(parts) + 1):
                names.add(".".join(parts[:i]))
    return names


def _docstring_starts(tree: ast.Module) -> set[tuple[int, int]]:
    starts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                starts.add((body[0].value.lineno, body[0].value.col_offset))
    return starts


def _string_edit(token: tokenize.TokenInfo, modules: set[str]) -> str | None:
    """The token with ``model_audit.`` inserted when its text is exactly a moved module path."""
    text = token.string
    prefix = re.match(r"[A-Za-z]*", text).group(0)
    if "b" in prefix.lower():
        return None
    quote = (
        text[len(prefix) :][:3] if text[len(prefix) :][:3] in ('"""', "'''") else text[len(prefix)]
    )
    body = text[len(prefix) + len(quote) : len(text) - len(quote)]
    match = _MODULE_PATH.match(body)
    if not match:
        return None
    path = match.group(0)
    rest = body[len(path) :]
    if rest and not ("f" in prefix.lower() and rest.startswith("{")):
        return None  # a sentence or a file name that starts like a module, not a module path
    name = path.rstrip(".")
    if name.split(".")[0] not in RELOCATED or "." not in path or name not in modules:
        return None
    start = len(prefix) + len(quote)
    return text[:start] + f"{TOP}." + text[start:]


def rewrite_source(text: str, modules: set[str], filename: str = "<source>") -> Rewrite:
    """Rewrite one module's imports of (and module-path strings naming) the moved packages."""
    tree = ast.parse(text, filename)
    lines = text.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    at = {tok.start: i for i, tok in enumerate(tokens)}
    edits: dict[tuple[int, int], tuple[int, str]] = {}  # start -> (end col, new text)

    def replace(tok: tokenize.TokenInfo, new: str) -> None:
        edits[tok.start] = (tok.end[1], new)

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root in RELOCATED:
                i = at[(node.lineno, node.col_offset)] + 1  # the token after ``from``
                replace(tokens[i], f"{TOP}.{tokens[i].string}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root not in RELOCATED:
                    continue
                tok = tokens[at[(alias.lineno, alias.col_offset)]]
                if alias.asname:
                    replace(tok, f"{TOP}.{root}")
                elif alias.name == root:
                    replace(tok, f"{TOP}.{root} as {root}")
                else:
                    raise LayoutError(
                        f"{filename}, line {alias.lineno}: `import {alias.name}` cannot be "
                        f"relocated; write `from {alias.name.rsplit('.', 1)[0]} import "
                        f"{alias.name.rsplit('.', 1)[1]}` or `import {alias.name} as NAME`"
                    )
    docstrings = _docstring_starts(tree)
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.STRING and tok.start not in docstrings:
            new = _string_edit(tok, modules)
            if new is not None:
                replace(tok, new)
        elif fstring_start is not None and tok.type == fstring_start and i + 2 < len(tokens):
            middle, after = tokens[i + 1], tokens[i + 2]
            if middle.type == tokenize.FSTRING_MIDDLE and after.string == "{":
                new = _string_edit(middle._replace(string=f'f"{middle.string}{{"'), modules)
                if new is not None:
                    replace(middle, f"{TOP}.{middle.string}")
    changes = []
    for (row, col), (end, new) in sorted(edits.items(), reverse=True):
        line = lines[row - 1]
        changes.append(f"{row}: {line[col:end]} -> {new}")
        lines[row - 1] = line[:col] + new + line[end:]
    out = "".join(lines)
    ast.parse(out, filename)  # the rewrite must leave valid Python
    return Rewrite(out, sorted(changes, key=lambda c: int(c.split(":")[0])))


def _with_header(text: str, header: str) -> str:
    """``header`` before the module's first statement that may follow ``__future__`` imports."""
    futures = [
        n.end_lineno
        for n in ast.parse(text).body
        if isinstance(n, ast.ImportFrom) and n.module == "__future__"
    ]
    lines = text.splitlines(keepends=True)
    at = max(futures, default=0)
    return "".join(lines[:at]) + header + "".join(lines[at:])


def source_files(root: Path) -> list[Path]:
    """Every repository file the wheel ships, relative to ``root``."""
    found: set[Path] = set()
    for package in PACKAGES:
        base = root / package
        for path in base.rglob("*.py"):
            found.add(path.relative_to(root))
        for pattern in DATA.get(package, ()):
            found.update(p.relative_to(root) for p in base.glob(pattern) if p.is_file())
    for name in EXTRA_FILES:
        if (root / name).is_file():
            found.add(Path(name))
    return sorted(
        p
        for p in found
        if "__pycache__" not in p.parts
        and p.suffix != ".pyc"
        and not any(p.as_posix().startswith(e + "/") for e in EXCLUDED)
    )


def installed_path(rel: Path) -> Path:
    """Where a repository file goes in the wheel."""
    first = rel.parts[0]
    return rel if first == "audits" else Path(TOP, *rel.parts)


def build_commit(root: Path) -> str:
    """``<12 hex>`` (``+dirty`` with uncommitted edits) of the checkout, else ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if head.returncode != 0 or not (root / ".git").exists():
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_tree(root: Path, out: Path) -> list[Path]:
    """Write the installed layout of the repository at ``root`` into ``out``; returns its files."""
    root, out = Path(root), Path(out)
    modules = known_modules(root)
    written = []
    for rel in source_files(root):
        target = out / installed_path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = root / rel
        verbatim = any(rel.as_posix().startswith(v + "/") for v in VERBATIM)
        if rel.suffix == ".py" and not verbatim:
            text = rewrite_source(src.read_text(encoding="utf-8"), modules, str(rel)).text
            if rel.as_posix() == "streamlit_app.py":
                text = _with_header(text, STREAMLIT_HEADER)
            target.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(src, target)
        written.append(target)
    init = out / TOP / "__init__.py"
    init.write_text(
        '"""model-audit\'s application packages, installed under one name (docs/ARCHITECTURE.md).\n\n'
        "The public API is ``audits``; ``model_audit.auditapp``, ``.reports``, ``.dashboard``,\n"
        "``.explain`` and ``.fixtures`` are the repository's top-level folders of those names.\n"
        '"""\n',
        encoding="utf-8",
    )
    commit = out / COMMIT_FILE
    commit.write_text(build_commit(root) + "\n", encoding="utf-8")
    return [*written, init, commit]
