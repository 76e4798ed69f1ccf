"""``torch.export`` archives (``.pt2``), loaded with ``torch.export.load`` after a safety scan.

``torch.export.load`` (torch 2.13) is not safe on a crafted archive by itself: weights or
constants flagged ``use_pickle`` are read with ``torch.load(weights_only=False)`` and opaque
constants with ``pickle.loads``; sample inputs fall back to ``weights_only=False`` when the
safe read fails; symbolic shapes are parsed with ``sympy.sympify`` (which evaluates Python);
and ``guards_code`` strings are compiled into a Python guard. ``scan_archive`` reads the
archive as JSON and zip entries first and refuses any of these, so what loads is tensors, a
graph of registered operators, and shape expressions built from sympy classes only.

The program is unflattened (``torch.export.unflatten``) so that its submodules keep their
names (``layer4``) and take forward hooks: Grad-CAM works on a ``.pt2``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from audits.errors import AuditError
from audits.formats.base import CardLike, FormatModule
from audits.formats.detect import EXPORTED

#: Words a shape expression may use besides sympy class names: assumptions and constants.
_EXPR_WORDS = {"True", "False", "None", "oo", "zoo", "nan"}
_TOKEN = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/%(),=<> ]")


def _refuse(path: Path, why: str) -> AuditError:
    return AuditError(
        f"{path}: refused: {why}; loading it could run Python from the file. Export the model "
        "again with plain tensors (torch.export.save), or audit its ONNX export"
    )


def _safe_words() -> set[str]:
    """Names a sympy ``srepr`` of a shape may use: sympy's classes, torch's sympy functions,
    the assumption keywords (``positive=True``) - never a builtin such as ``__import__``."""
    import sympy
    import torch.utils._sympy.functions as fns
    from sympy.core.assumptions import _assume_defined

    names = {n for n in dir(sympy) if isinstance(getattr(sympy, n, None), type)}
    names |= {n for n in dir(fns) if isinstance(getattr(fns, n, None), type)}
    return {n for n in names | set(_assume_defined) | _EXPR_WORDS if not n.startswith("_")}


def _check_expressions(program: Any, path: Path) -> None:
    """Refuse a shape expression (``expr_str``) that is more than sympy constructors."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "expr_str" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(program)
    words = _safe_words() if found else set()
    for expr in found:
        tokens = _TOKEN.findall(expr)
        if "".join(tokens) != expr:
            raise _refuse(
                path, f"a shape expression holds characters outside sympy's: {expr[:80]!r}"
            )
        bad = [t for t in tokens if t[:1].isalpha() or t[:1] == "_"]
        bad = [t for t in bad if t not in words]
        if bad:
            raise _refuse(path, f"a shape expression names {bad[0]!r}, not a sympy class")


def _payload_flags(archive: zipfile.ZipFile, name: str, path: Path) -> None:
    """Refuse pickled weights or constants and opaque (pickled) objects in a payload config."""
    config = json.loads(archive.read(name)).get("config", {})
    for fqn, meta in config.items():
        if meta.get("use_pickle"):
            raise _refuse(path, f"'{fqn}' is stored as a pickle")
        stored = str(meta.get("path_name", ""))
        if stored.startswith(("custom_obj", "opaque_obj")):
            raise _refuse(path, f"'{fqn}' is a pickled Python or TorchBind object")


def scan_archive(path: Path) -> None:
    """Check a .pt2 before ``torch.export.load`` touches it (see the module doc)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise AuditError(f"{path}: not a readable .pt2 archive ({exc})") from None
    with archive:
        names = archive.namelist()
        tails = {n.split("/", 1)[1]: n for n in names if "/" in n}
        models = [t for t in tails if t.startswith("models/") and t.endswith(".json")]
        if not models:
            raise AuditError(f"{path}: a .pt2 archive without a models/<name>.json program")
        for tail, name in tails.items():
            if re.fullmatch(r"data/(weights|constants)/[^/]+\.pt", tail):
                raise _refuse(path, f"'{tail}' is a legacy pickled payload")
            if re.fullmatch(r"data/(weights|constants)/[^/]+_config\.json", tail):
                _payload_flags(archive, name, path)
            if tail.startswith("data/sample_inputs/"):
                try:  # torch would retry a failed safe read with full unpickling
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception:
                    raise _refuse(path, f"'{tail}' needs full unpickling") from None
        for tail in models:
            program = json.loads(archive.read(tails[tail]))
            if program.get("guards_code"):
                raise _refuse(path, "it carries guard code (Python source compiled at load)")
            _check_expressions(program, path)


class ExportedModule(FormatModule):
    """An unflattened exported program; its submodules are this module's own, by name."""

    audit_format = EXPORTED

    def __init__(self, program: torch.nn.Module, label: str, embedding_output: str | None):
        super().__init__(label, embedding_output)
        object.__setattr__(self, "program", program)  # not a child: no "program." prefix
        self._modules = program._modules  # same names and objects: target_layer, hooks

    def run(self, x: torch.Tensor) -> Any:
        return self.program(x)

    def _apply(self, fn: Any, recurse: bool = True) -> ExportedModule:
        self.program._apply(fn, recurse)
        return self


def _last_conv(program: torch.export.ExportedProgram) -> str | None:
    """The last 2-D convolution with a spatial output, in graph order (Grad-CAM's default)."""
    last = None
    for node in program.graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        target = str(node.target)
        if node.op == "call_function" and ("conv2d" in target or "convolution" in target) and stack:
            fqn, kind = list(stack.values())[-1]
            shape = getattr(node.meta.get("val"), "shape", ())
            spatial = len(shape) == 4 and int(shape[2]) * int(shape[3]) > 1
            if str(kind).endswith("Conv2d") and spatial:
                last = fqn
    return last


def load_exported(card: CardLike) -> ExportedModule:
    """The card's exported program, unflattened, on the CPU."""
    scan_archive(card.weights)
    try:
        program = torch.export.load(str(card.weights))
        module = torch.export.unflatten(program)
    except Exception as exc:  # torch raises many kinds on a damaged or foreign archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditError(
            f"{card.weights}: cannot be loaded as a torch.export archive ({first})"
        ) from None
    wrapped = ExportedModule(module, f"{card.name}@{card.version}", card.embedding_output)
    wrapped.default_layer = _last_conv(program)
    return wrapped.eval()
