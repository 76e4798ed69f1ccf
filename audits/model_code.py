"""The trust boundary for model code: what a card's ``architecture`` may name, and its hashes.

A ``model.toml`` is data, so on its own it must not be able to run a command. The only things
ever called are an ``nn.Module`` subclass, a classmethod or staticmethod of one
(``net.py:Net.from_config``), or a registry builder (``torchvision:<name>``, ``timm:<name>``);
everything else is refused before any call. Importing a module runs its top level, which
cannot be avoided for ``package.module:attr``, so standard-library modules (they hold no
``nn.Module``) are refused before the import, and a ``file.py`` must lie inside the model
folder once symlinks are followed.

An audit records the sha256 of the architecture's source (``code_identity``) next to the
weights' sha256, so that later work on the run — compare's speed measurement, explain —
refuses code that changed since (``code_changes``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from audits.errors import AuditError
from audits.hashing import file_sha256
from audits.registries import REGISTRIES, check_registry, library_version, registry_builder

ALLOWED = (
    "allowed: an nn.Module subclass ('net.py:Net' or 'package.module:Net'), a classmethod or "
    "staticmethod of one ('net.py:Net.from_config'), or a registry builder "
    "('torchvision:resnet18', 'timm:<name>')"
)
#: More ``.py`` files than this in a model folder: only the architecture's file is hashed.
MAX_CODE_FILES = 200
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}


@dataclass(frozen=True)
class ArchitectureRef:
    """A parsed ``architecture`` value; nothing has been imported or called."""

    spec: str
    kind: Literal["file", "module", "registry"]
    target: str  # the file as written, the module's dotted name, or the registry
    attr: str  # the dotted attribute path, or the registry's model name
    file: Path | None = None  # kind "file": the file, symlinks resolved, inside the folder


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` lies in ``folder`` once both are resolved (symlinks followed)."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def _refuse(card_path: Path, spec: str, why: str) -> AuditError:
    return AuditError(f"{card_path}: field 'architecture' = '{spec}' is refused: {why}; {ALLOWED}")


def parse_reference(spec: str, model_dir: Path, card_path: Path) -> ArchitectureRef:
    """Check the form of ``architecture`` and where it points, without importing anything."""
    head, _, rest = spec.partition(":")
    if head in REGISTRIES:
        if not rest:
            raise _refuse(card_path, spec, f"name the {head} model after the colon")
        return ArchitectureRef(spec, "registry", head, rest)
    if ":" not in spec:
        raise AuditError(
            f"{card_path}: field 'architecture' = '{spec}' must look like 'net.py:SmallCNN', "
            "'package.module:attr' or 'torchvision:resnet18'"
        )
    target, attr = spec.rsplit(":", 1)
    parts = attr.split(".")
    if not all(p.isidentifier() for p in parts):
        raise _refuse(card_path, spec, f"'{attr}' is not a dotted Python name")
    if any(p.startswith("__") for p in parts):
        raise _refuse(card_path, spec, f"'{attr}' names a special (dunder) attribute")
    if target.endswith(".py"):
        path = Path(target) if Path(target).is_absolute() else model_dir / target
        real = Path(os.path.realpath(path))
        if not inside(real, model_dir):
            raise _refuse(
                card_path,
                spec,
                f"'{target}' resolves to {real}, outside the model folder {model_dir} "
                "(model code must live in the model folder: copy it there)",
            )
        if not real.is_file():
            raise AuditError(
                f"{card_path}: field 'architecture': file '{target}' not found in {model_dir}"
            )
        return ArchitectureRef(spec, "file", target, attr, real)
    if not all(p.isidentifier() for p in target.split(".")):
        raise _refuse(card_path, spec, f"'{target}' is neither a file.py nor a dotted module name")
    top = target.split(".")[0]
    if top in sys.stdlib_module_names or top == "__main__":
        raise _refuse(
            card_path, spec, f"'{top}' is a standard-library module, which holds no nn.Module"
        )
    return ArchitectureRef(spec, "module", target, attr)


def _import_file(file: Path, shown: str, card_path: Path) -> Any:
    """Import a model folder's ``.py`` file once per process (runs its top level)."""
    name = f"_audit_model_{hashlib.sha1(str(file).encode()).hexdigest()[:12]}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # model code may call sys.exit: an error, not an exit
        del sys.modules[name]
        raise AuditError(
            f"{card_path}: importing '{shown}' failed: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _import_module(target: str, card_path: Path) -> Any:
    try:
        if target.split(".")[0] == "torchvision":
            from audits.tv import torchvision  # noqa: F401 - CPU-torch import workaround first
        return importlib.import_module(target)
    except ImportError as exc:
        raise AuditError(
            f"{card_path}: field 'architecture': cannot import '{target}' ({exc}); is the package installed?"
        ) from None
    except (Exception, SystemExit) as exc:
        raise AuditError(
            f"{card_path}: importing '{target}' failed: {type(exc).__name__}: {exc}"
        ) from None


def _is_module_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, nn.Module)


def _what(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "a module"
    if inspect.isclass(obj):
        return f"class {obj.__name__}, which is not an nn.Module subclass"
    if inspect.isroutine(obj):
        return f"a function ({getattr(obj, '__qualname__', type(obj).__name__)})"
    return f"a {type(obj).__name__} value"


def _walk(ref: ArchitectureRef, module: Any, card_path: Path) -> tuple[Any, Any, str]:
    """(the object ``ref.attr`` names, its parent, its last name), reading class attributes
    statically so that no property or descriptor of the user's runs."""
    obj, parent, name = module, None, ""
    for part in ref.attr.split("."):
        if inspect.isclass(obj):
            try:
                raw = inspect.getattr_static(obj, part)
            except AttributeError:
                raw = None
            if raw is None:
                raise AuditError(
                    f"{card_path}: field 'architecture': '{ref.target}' has no attribute '{ref.attr}'"
                )
            # Binding a classmethod runs none of the user's code; other attributes stay raw.
            value = getattr(obj, part) if isinstance(raw, classmethod | staticmethod) else raw
        elif inspect.ismodule(obj):
            if not hasattr(obj, part):
                raise AuditError(
                    f"{card_path}: field 'architecture': '{ref.target}' has no attribute '{ref.attr}'"
                )
            value = getattr(obj, part)
        else:
            raise _refuse(card_path, ref.spec, f"'{name}' is {_what(obj)}, not a class or module")
        obj, parent, name = value, obj, part
    return obj, parent, name


def _check_builder(ref: ArchitectureRef, obj: Any, parent: Any, name: str, card_path: Path) -> None:
    """Allow an nn.Module subclass, or a public classmethod/staticmethod of one."""
    if _is_module_class(obj):
        return
    if (
        _is_module_class(parent)
        and not name.startswith("_")
        and isinstance(inspect.getattr_static(parent, name), classmethod | staticmethod)
    ):
        return
    why = f"it names {_what(obj)}, which is never called"
    top = ref.target.split(".")[0]
    if top in REGISTRIES and inspect.isroutine(obj):
        why += f" (for a {top} model write '{top}:{name}')"
    elif inspect.isroutine(obj) and ref.kind == "file":
        why += " (make it a classmethod or staticmethod of the nn.Module class)"
    raise _refuse(card_path, ref.spec, why)


def resolve_builder(
    spec: str, model_dir: Path, card_path: Path, kwargs: dict[str, Any]
) -> Callable[..., Any]:
    """The callable that builds the module, checked to be one the boundary allows; not called."""
    ref = parse_reference(spec, model_dir, card_path)
    if ref.kind == "registry":
        check_registry(ref.target, ref.attr, kwargs, card_path)
        return registry_builder(ref.target, ref.attr)
    if ref.kind == "file":
        assert ref.file is not None
        module = _import_file(ref.file, ref.target, card_path)
    else:
        module = _import_module(ref.target, card_path)
    obj, parent, name = _walk(ref, module, card_path)
    _check_builder(ref, obj, parent, name, card_path)
    return obj


# -- hashes of the code ---------------------------------------------------------------------


def folder_code_files(model_dir: Path) -> list[Path] | None:
    """The model folder's ``.py`` files (regular files inside it), sorted; None if too many."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(model_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            if fname.endswith(".py") and path.is_file() and inside(path, model_dir):
                found.append(path)
                if len(found) > MAX_CODE_FILES:
                    return None
    return found


def _entry(path: Path, model_dir: Path) -> dict[str, str]:
    shown = path.relative_to(model_dir).as_posix() if inside(path, model_dir) else str(path)
    return {"path": shown, "sha256": file_sha256(path)}


def _source_file(obj: Any) -> Path | None:
    try:
        found = inspect.getsourcefile(obj)
    except TypeError:
        return None
    return Path(found).resolve() if found and Path(found).is_file() else None


def code_identity(
    spec: str, model_dir: Path, card_path: Path, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """``code_sha256`` (the architecture's source file), ``code_files`` and ``code_library``.

    ``file.py:attr``: that file, plus every ``.py`` file of the model folder (paths relative
    to it); ``package.module:attr``: the module's file and the file defining the class
    (absolute paths); a registry: its package and version (``code_sha256`` is null).
    """
    ref = parse_reference(spec, model_dir, card_path)
    if ref.kind == "registry":
        return {"code_sha256": None, "code_files": [], "code_library": library_version(ref.target)}
    if ref.kind == "file":
        assert ref.file is not None
        files = folder_code_files(model_dir) or [ref.file]
        main = ref.file
    else:
        obj = resolve_builder(spec, model_dir, card_path, kwargs)
        main = _source_file(obj)
        module_file = _source_file(sys.modules.get(ref.target))
        files = list(dict.fromkeys(f for f in (main, module_file) if f is not None))
    entries = [_entry(f, model_dir) for f in files]
    main_sha = file_sha256(main) if main is not None else None
    return {"code_sha256": main_sha, "code_files": entries, "code_library": None}


def code_changes(
    recorded: dict[str, Any], spec: str, model_dir: Path
) -> list[dict[str, Any]] | None:
    """What differs from the code an audit recorded; None when the run recorded none (older run).

    Each change is ``{"path", "recorded", "actual"}`` (a hash, a value, or null when a file is
    missing or new). Nothing is imported: only files are hashed.
    """
    if "code_files" not in recorded and "code_library" not in recorded:
        return None
    changes: list[dict[str, Any]] = []
    if recorded.get("architecture") not in (None, spec):
        changes.append(
            {
                "path": "model.toml architecture",
                "recorded": recorded["architecture"],
                "actual": spec,
            }
        )
    listed = {e["path"]: e["sha256"] for e in recorded.get("code_files") or []}
    for shown, sha in listed.items():
        path = Path(shown) if Path(shown).is_absolute() else model_dir / shown
        actual = file_sha256(path) if path.is_file() else None
        if actual != sha:
            changes.append({"path": str(path), "recorded": sha, "actual": actual})
    head = spec.partition(":")[0]
    if spec.rsplit(":", 1)[0].endswith(".py"):
        for path in folder_code_files(model_dir) or []:
            if path.relative_to(model_dir).as_posix() not in listed:
                changes.append({"path": str(path), "recorded": None, "actual": file_sha256(path)})
    library = recorded.get("code_library")
    if library and head in REGISTRIES and library_version(head) != library:
        changes.append({"path": head, "recorded": library, "actual": library_version(head)})
    return changes


def describe_change(change: dict[str, Any]) -> str:
    """One change in words: ``<path> (sha256 now 1a2b…, the run recorded 3c4d…)``."""

    def short(value: Any) -> str:
        if value is None:
            return "absent"
        text = str(value)
        return text[:12] if len(text) == 64 else f"'{text}'"

    return f"{change['path']} (now {short(change['actual'])}, the run recorded {short(change['recorded'])})"
