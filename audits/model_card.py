"""Model directories: parse and validate ``model.toml``, build the module, load its weights.

A version is identified by (name, version, sha256 of the weights, code_commit), and an audit
also records the sha256 of the architecture's source (``audits.model_code``). Weights load
without unpickling arbitrary objects: safetensors, or a state_dict read with
``torch.load(weights_only=True)``. A pickled whole module is refused unless the caller passes
``allow_pickle=True``. What ``architecture`` may name, and so what a card can make us call, is
``audits.model_code``'s trust boundary. A relative ``weights`` or ``classes`` path must stay
inside the model folder (symlinks followed); an absolute one is the user's explicit choice and
is recorded with its sha256 (``external_files``). A card whose weights are a TorchScript,
``torch.export`` (.pt2) or ONNX file has no ``architecture``: the file carries its graph
(``audits.formats``), and ``embedding_output`` may name the output that holds embeddings.
"""

from __future__ import annotations

import os
import pickle
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audits.errors import AuditError
from audits.formats import STATE_DICT, detect_format, format_identity, load_format_model
from audits.hashing import file_sha256
from audits.images import MAX_INPUT_SIDE
from audits.model_code import code_identity, inside, parse_reference, resolve_builder

CARD_NAME = "model.toml"
_TOP_FIELDS = {
    "name",
    "version",
    "architecture",
    "weights",
    "classes",
    "target_layer",
    "code_commit",
    "training_manifest",
    "kwargs",
    "input",
    "description",
    "embedding_output",
}
_REQUIRED = ("name", "version", "weights", "classes")  # architecture: unless a graph format
_INPUT_FIELDS = {"size", "channels", "mean", "std"}
_IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated ``model.toml``; paths are absolute."""

    dir: Path
    name: str
    version: str
    architecture: str
    weights: Path
    classes: list[str]
    size: tuple[int, int]
    channels: int
    mean: list[float]
    std: list[float]
    target_layer: str | None = None
    code_commit: str = "unknown"
    training_manifest: Path | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: (card field, absolute path) of files named by an absolute path outside the folder.
    external: tuple[tuple[str, Path], ...] = ()
    #: ``state_dict`` (architecture + weights) or a graph format (``audits.formats``).
    format: str = STATE_DICT
    #: A graph format's output that holds the embeddings (None: the logits).
    embedding_output: str | None = None

    @property
    def card_path(self) -> Path:
        return self.dir / CARD_NAME

    def identity(self) -> dict[str, Any]:
        """The version block stored in every run (DESIGN.md ``model`` fields and more)."""
        return {
            "name": self.name,
            "version": self.version,
            "weights_sha256": weights_sha256(self.weights),
            "code_commit": self.code_commit,
            "dir": str(self.dir),
            "architecture": self.architecture,
            "classes": list(self.classes),
            "target_layer": self.target_layer,
            "input": {"size": list(self.size), "channels": self.channels},
            "training_manifest": str(self.training_manifest) if self.training_manifest else None,
            **(
                code_identity(self.architecture, self.dir, self.card_path, self.kwargs)
                if self.format == STATE_DICT
                else format_identity(self.format)
            ),
            **self._external_files(),
        }

    def _external_files(self) -> dict[str, Any]:
        if not self.external:
            return {}
        return {
            "external_files": [
                {"field": name, "path": str(path), "sha256": file_sha256(path)}
                for name, path in self.external
            ]
        }


def _fail(card: Path, what: str) -> AuditError:
    return AuditError(f"{card}: {what}")


def _card_file(model_dir: str | Path) -> tuple[Path, Path]:
    """(model folder, its model.toml); ``--model`` may also name the card itself."""
    model_dir = Path(model_dir).expanduser().resolve()
    card = model_dir / CARD_NAME
    if model_dir.is_file() and model_dir.name == CARD_NAME:
        model_dir, card = model_dir.parent, model_dir
    if not card.is_file():
        raise AuditError(f"{card}: not found; --model must be a folder holding a model.toml")
    return model_dir, card


def _read_raw(card: Path) -> dict[str, Any]:
    """The card's TOML with known fields only, the required ones present and non-empty."""
    try:
        raw = tomllib.loads(card.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(card, f"is not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - _TOP_FIELDS)
    if unknown:
        raise _fail(
            card,
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_FIELDS))}",
        )
    for key in _REQUIRED:
        if key not in raw:
            raise _fail(card, f"missing required field '{key}'")
    for key in ("name", "version", "architecture", "weights"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise _fail(card, f"field '{key}' must be a non-empty string")
    return raw


def _card_path(value: str, key: str, model_dir: Path, card: Path) -> tuple[Path, bool]:
    """(the file a card field names, whether it is external: absolute and outside the folder).

    A relative path must stay inside the model folder once symlinks are followed: a card that
    reads ``../other/w.safetensors`` or links out of its folder is refused. An absolute path is
    the user's explicit choice; it is allowed and recorded with its sha256.
    """
    given = Path(value).expanduser()
    path = Path(os.path.realpath(given if given.is_absolute() else model_dir / given))
    if inside(path, model_dir):
        return path, False
    if not given.is_absolute():
        raise _fail(
            card,
            f"field '{key}' = '{value}' resolves to {path}, outside the model folder {model_dir}; "
            "keep the file in the model folder, or give its absolute path to use it from there",
        )
    return path, True


def _read_weights(value: str, model_dir: Path, card: Path) -> tuple[Path, bool]:
    weights, external = _card_path(value, "weights", model_dir, card)
    if not weights.is_file():
        raise _fail(card, f"weights file '{value}' not found in {model_dir}")
    return weights, external


def load_card(model_dir: str | Path) -> ModelCard:
    """Read and validate ``<model_dir>/model.toml`` (no code is run)."""
    model_dir, card = _card_file(model_dir)
    raw = _read_raw(card)
    weights, weights_external = _read_weights(raw["weights"], model_dir, card)
    fmt = detect_format(weights, card)
    architecture = _read_architecture(raw, fmt, weights, model_dir, card)
    classes, classes_file = _read_classes(raw["classes"], model_dir, card)
    external = [("weights", weights)] if weights_external else []
    if classes_file is not None:
        external.append(("classes", classes_file))
    size, channels, mean, std = _read_input(raw.get("input", {}), card)

    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _fail(card, "[kwargs] must be a table of keyword arguments")

    training = raw.get("training_manifest")
    training_path = None
    if training is not None:
        # A missing training set only disables the imbalance and leakage checks that need it;
        # the audit itself does not depend on it, so it is reported there, not refused here.
        training_path = (model_dir / str(training)).resolve()

    target = raw.get("target_layer")
    if target is not None and (not isinstance(target, str) or not target):
        raise _fail(card, "field 'target_layer' must be a dotted module name such as 'features.6'")

    return ModelCard(
        dir=model_dir,
        name=raw["name"].strip(),
        version=raw["version"].strip(),
        architecture=architecture,
        weights=weights,
        classes=classes,
        size=size,
        channels=channels,
        mean=mean,
        std=std,
        target_layer=target,
        code_commit=str(raw.get("code_commit", "unknown")),
        training_manifest=training_path,
        kwargs=kwargs,
        external=tuple(external),
        format=fmt,
        embedding_output=raw.get("embedding_output"),
    )


def _read_architecture(
    raw: dict[str, Any], fmt: str, weights: Path, model_dir: Path, card: Path
) -> str:
    """The checked ``architecture``; for a graph format (which must not give one, nor
    [kwargs]) a label such as ``onnx:model.onnx`` that records what was audited."""
    emb = raw.get("embedding_output")
    if fmt == STATE_DICT:
        if "architecture" not in raw:
            raise _fail(
                card,
                f"missing required field 'architecture' (weights '{weights.name}' are a state_dict; "
                "a TorchScript .ts, torch.export .pt2 or .onnx file needs none)",
            )
        if emb is not None:
            raise _fail(
                card,
                "field 'embedding_output' applies to TorchScript, .pt2 and ONNX models only; "
                "an architecture's embeddings are its penultimate layer",
            )
        # The architecture's form and place are checked here, before any code is imported.
        parse_reference(raw["architecture"].strip(), model_dir, card)
        return raw["architecture"].strip()
    for key in ("architecture", "kwargs"):
        if key in raw:
            raise _fail(
                card,
                f"give no '{key}' with weights '{weights.name}' ({fmt}): the file carries its own "
                f"graph; remove '{key}', or give a state_dict as weights",
            )
    if emb is not None and (not isinstance(emb, str) or not emb):
        raise _fail(card, "field 'embedding_output' must be the name of one of the model's outputs")
    if raw.get("target_layer") is not None and fmt != "torch.export":
        raise _fail(
            card,
            f"field 'target_layer': a {fmt} model has no layers this tool can hook; remove it "
            "(heatmaps need a torch.export .pt2 or the eager model)",
        )
    return f"{fmt}:{weights.name}"


def _read_classes(value: Any, model_dir: Path, card: Path) -> tuple[list[str], Path | None]:
    """The class names, and the class list file when it is external (absolute, outside)."""
    external = None
    if isinstance(value, str):
        path, is_external = _card_path(value, "classes", model_dir, card)
        external = path if is_external else None
        if not path.is_file():
            raise _fail(card, f"field 'classes': class list file '{value}' not found")
        classes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        classes = [c for c in classes if c]
    elif isinstance(value, list) and all(isinstance(c, str) for c in value):
        classes = [c.strip() for c in value]
    else:
        raise _fail(card, "field 'classes' must be a list of names or a path to a text file")
    if len(classes) < 2:
        raise _fail(card, "field 'classes' must name at least two classes")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise _fail(card, f"field 'classes' repeats {', '.join(dupes)}")
    return classes, external


def _read_input(section: Any, card: Path) -> tuple[tuple[int, int], int, list[float], list[float]]:
    if not isinstance(section, dict):
        raise _fail(card, "[input] must be a table with size, channels, mean, std")
    unknown = sorted(set(section) - _INPUT_FIELDS)
    if unknown:
        raise _fail(card, f"unknown field(s) in [input]: {', '.join(unknown)}")
    size = section.get("size")
    if size is None:
        raise _fail(card, "missing [input] size = [height, width]")
    if isinstance(size, int):
        size = [size, size]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) and s > 0 for s in size)
    ):
        raise _fail(card, "[input] size must be [height, width] in pixels")
    if max(size) > MAX_INPUT_SIDE:
        raise _fail(
            card,
            f"[input] size {size} is over the limit of {MAX_INPUT_SIDE} pixels a side; "
            "give the model's input size (e.g. [224, 224])",
        )
    channels = section.get("channels", 3)
    if channels not in (1, 3):
        raise _fail(card, "[input] channels must be 1 (greyscale) or 3 (RGB)")
    default_mean, default_std = _IMAGENET if channels == 3 else ([0.5], [0.5])
    mean = section.get("mean", default_mean)
    std = section.get("std", default_std)
    for key, val in (("mean", mean), ("std", std)):
        if not (
            isinstance(val, list)
            and len(val) == channels
            and all(isinstance(v, int | float) for v in val)
        ):
            raise _fail(card, f"[input] {key} must list {channels} number(s), one per channel")
    if any(s <= 0 for s in std):
        raise _fail(card, "[input] std values must be positive")
    return (size[0], size[1]), channels, [float(m) for m in mean], [float(s) for s in std]


def weights_sha256(path: Path) -> str:
    """sha256 of the weights file's bytes."""
    return file_sha256(path)


def resolve_architecture(card: ModelCard) -> Any:
    """The callable that builds the module, checked against the trust boundary (not called)."""
    return resolve_builder(card.architecture, card.dir, card.card_path, card.kwargs)


def read_state_dict(
    card: ModelCard, allow_pickle: bool = False
) -> dict[str, torch.Tensor] | nn.Module:
    """Read the weights without unpickling code (unless ``allow_pickle``)."""
    path = card.weights
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AuditError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError:
        raise AuditError(
            f"{path}: holds pickled Python objects (likely a whole model saved with torch.save(model)); "
            "refused because unpickling can run arbitrary code. Save the weights instead: "
            "torch.save(model.state_dict(), 'weights.pt') or "
            "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors'); "
            "or pass --allow-pickle if you trust this file"
        ) from None
    except (RuntimeError, OSError, EOFError) as exc:
        raise AuditError(f"{path}: cannot be read as a PyTorch checkpoint ({exc})") from None
    except Exception as exc:  # --allow-pickle: unpickling runs the file's code, which may fail
        if not allow_pickle:
            raise
        raise AuditError(
            f"{path}: unpickling the whole model failed ({type(exc).__name__}: {exc}); the "
            "classes it was saved with must be importable here; better, save a state_dict or "
            "a .safetensors file and name the class in 'architecture'"
        ) from None
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    raise AuditError(f"{path}: expected a state_dict (a dict of tensors), got {type(obj).__name__}")


def build_model(card: ModelCard, allow_pickle: bool = False) -> nn.Module:
    """Instantiate the architecture and load the weights strictly (on the CPU)."""
    state = read_state_dict(card, allow_pickle=allow_pickle)
    if isinstance(state, nn.Module):
        model = state
    else:
        factory = resolve_architecture(card)
        try:
            model = factory(**card.kwargs)
        except (Exception, SystemExit) as exc:  # model code may call sys.exit
            raise _fail(
                card.card_path,
                f"building '{card.architecture}' with [kwargs] {card.kwargs} failed: {type(exc).__name__}: {exc}",
            ) from None
        if not isinstance(model, nn.Module):
            raise _fail(
                card.card_path,
                f"'{card.architecture}' returned {type(model).__name__}, not a torch.nn.Module",
            )
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches raise even with strict=False
            details = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
            raise AuditError(
                f"{card.weights}: weights do not match '{card.architecture}' ({_few(details, 2)}); "
                "check the architecture's [kwargs] (e.g. num_classes, channels)"
            ) from None
        if result.missing_keys or result.unexpected_keys:
            parts = []
            if result.missing_keys:
                parts.append(f"missing keys {_few(result.missing_keys)}")
            if result.unexpected_keys:
                parts.append(f"unexpected keys {_few(result.unexpected_keys)}")
            raise AuditError(
                f"{card.weights}: weights do not match '{card.architecture}' ({'; '.join(parts)}); "
                "check the architecture, its [kwargs], or strip a wrapper prefix when saving"
            )
    return model.eval()


def _few(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def check_forward(
    model: nn.Module,
    channels: int,
    size: tuple[int, int],
    n_classes: int,
    where: str,
    inputs_hint: str,
    classes_name: str,
) -> None:
    """One dummy forward pass on the model's device: it must run and give ``n_classes``
    scores per image; otherwise one line naming ``where`` and what to check."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, channels, *size, device=device))
    except Exception as exc:
        raise AuditError(
            f"{where}: a {channels}x{size[0]}x{size[1]} input fails in the model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"check {inputs_hint}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != n_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AuditError(
            f"{where}: the model outputs {shape} per batch but {classes_name} lists "
            f"{n_classes}; the output width must equal the number of classes"
        )


def load_model(
    card: ModelCard, device: str | torch.device = "cpu", allow_pickle: bool = False
) -> nn.Module:
    """Build, load and validate the model with one dummy forward pass; returns it in eval mode."""
    if card.format == STATE_DICT:
        model = build_model(card, allow_pickle=allow_pickle)
    else:
        model = load_format_model(card, device)
    if card.target_layer is not None:
        find_layer(model, card.target_layer, card.card_path)
    check_forward(
        model, card.channels, card.size, len(card.classes), str(card.card_path),
        inputs_hint="[input] size and channels", classes_name="'classes'",
    )  # fmt: skip
    return model.to(device)


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the convolution modules, in definition order."""
    return [
        name
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]


def find_layer(model: nn.Module, name: str, card_path: Path | None = None) -> nn.Module:
    """The module at a dotted name; a wrong name lists the convolution layers to choose from."""
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    candidates = conv_layers(model)[-6:]
    where = f"{card_path}: " if card_path else ""
    hint = (
        f"; convolution layers: {', '.join(candidates)}"
        if candidates
        else "; the model has no convolution layer"
    )
    raise AuditError(f"{where}target_layer '{name}' is not a module of the model{hint}")
