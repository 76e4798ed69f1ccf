"""In-memory inputs of the Python API turned into what the path-based pipeline reads.

- An ``nn.Module`` gets an ``InMemoryCard``: a ``ModelCard`` whose identity is computed from
  the module itself (weights sha256 over the state_dict's tensors, code sha256 of the file that
  defines its class) instead of from a model folder.
- A model reference string (``torchvision:resnet18``) with a ``weights`` file gets an ordinary
  ``model.toml`` written into the store's ``.inputs/`` folder, so it runs through ``load_card``
  like any card and later work on the run (compare's timing, explain) can rebuild it.
- A ``torch.utils.data.Dataset`` of ``(image, label)`` is written as PNG files and a
  ``manifest.csv`` under ``.inputs/data-<sha>/`` (the name is a hash of the images and labels,
  so the same data gives the same folder and the run stays reproducible from the store).
- A pandas DataFrame with ``path,label`` becomes a ``manifest.csv``: with ``root`` its paths are
  relative to ``root`` and the manifest is written there; without it, they are made absolute
  and the manifest goes into their common folder (the data-root check refuses paths outside
  the manifest's folder, so the manifest must sit above every image).
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audits.datasets import freeze, load_dataset
from audits.errors import AuditError
from audits.hashing import bytes_sha256, file_sha256
from audits.model_card import ModelCard

INPUTS = ".inputs"
IN_MEMORY = "in-memory"
_IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


@dataclass(frozen=True)
class InMemoryCard(ModelCard):
    """The card of a module given in memory: no folder, identity computed from the module."""

    weights_digest: str = ""
    code: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "weights_sha256": self.weights_digest,
            "code_commit": self.code_commit,
            "dir": None,
            "architecture": self.architecture,
            "classes": list(self.classes),
            "target_layer": self.target_layer,
            "input": {"size": list(self.size), "channels": self.channels},
            "training_manifest": None,
            "source": IN_MEMORY,
            **self.code,
        }


def state_sha256(model: nn.Module) -> str:
    """sha256 over the state_dict: each name, dtype, shape and the tensor's bytes, in order.

    Two modules with equal parameters and buffers get the same digest; it differs from the
    sha256 of a weights file, which also hashes the file format's header.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def code_block(model: nn.Module) -> dict[str, Any]:
    """``code_sha256``/``code_files`` of the file defining the module's class, when it has one."""
    cls = type(model)
    try:
        source = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        source = None
    if not source or not os.path.isfile(source):  # a class typed into a REPL has no file
        return {"code_sha256": None, "code_files": [], "code_library": None}
    sha = file_sha256(Path(source))
    return {
        "code_sha256": sha,
        "code_files": [{"path": str(Path(source).resolve()), "sha256": sha}],
        "code_library": None,
    }


def _check_classes(classes: Any) -> list[str]:
    if classes is None:
        raise AuditError("classes: missing; pass classes=[...] naming the model's outputs in order")
    names = [str(c) for c in classes]
    if len(names) < 2 or len(set(names)) != len(names):
        raise AuditError("classes: give at least two distinct class names, in output order")
    return names


def _size(input_size: Any) -> tuple[int, int]:
    if input_size is None:
        raise AuditError(
            "input_size: missing; an in-memory model needs input_size=(height, width) (e.g. 224)"
        )
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) != 2 or min(size) <= 0:
        raise AuditError(f"input_size: expected (height, width) in pixels, got {input_size!r}")
    return size  # type: ignore[return-value]


def module_card(
    model: nn.Module,
    *,
    classes: Any,
    input_size: Any,
    mean: list[float] | None,
    std: list[float] | None,
    channels: int | None,
    target_layer: str | None,
    name: str | None,
    version: str | None,
) -> InMemoryCard:
    """A card for ``model`` (checked with one dummy forward pass, like ``load_model``)."""
    from audits.model_card import check_forward, find_layer

    names = _check_classes(classes)
    size = _size(input_size)
    channels = int(channels or 3)
    if channels not in (1, 3):
        raise AuditError("channels: must be 1 (greyscale) or 3 (RGB)")
    default_mean, default_std = _IMAGENET if channels == 3 else ([0.5], [0.5])
    mean = [float(m) for m in (mean if mean is not None else default_mean)]
    std = [float(s) for s in (std if std is not None else default_std)]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise AuditError(f"mean/std: give {channels} value(s) each, std positive")
    if target_layer is not None:
        find_layer(model, target_layer)
    check_forward(
        model, channels, size, len(names), "model",
        inputs_hint="input_size and channels", classes_name="classes",
    )  # fmt: skip
    cls = type(model)
    return InMemoryCard(
        dir=Path(tempfile.gettempdir()),  # never read: the identity says dir None
        name=str(name or IN_MEMORY),
        version=str(version or "0"),
        architecture=f"{IN_MEMORY}:{cls.__module__}.{cls.__qualname__}",
        weights=Path(IN_MEMORY),
        classes=names,
        size=size,
        channels=channels,
        mean=mean,
        std=std,
        target_layer=target_layer,
        weights_digest=state_sha256(model),
        code=code_block(model),
    )


def reference_card(
    ref: str,
    weights: str | Path | None,
    inputs: Path,
    *,
    classes: Any,
    input_size: Any,
    mean: list[float] | None,
    std: list[float] | None,
    channels: int | None,
    target_layer: str | None,
    name: str | None,
    version: str | None,
) -> Path:
    """A model folder with a ``model.toml`` for a registry reference and a weights file."""
    import json

    names = _check_classes(classes)
    size = _size(input_size or 224)
    if weights is None:
        raise AuditError(
            f"weights: '{ref}' needs weights='path/to/weights.safetensors' (a state_dict); "
            "an audit of untrained weights measures nothing, and nothing is downloaded"
        )
    weights = Path(weights).expanduser().resolve()
    if not weights.is_file():
        raise AuditError(f"{weights}: weights file not found")
    channels = int(channels or 3)
    lines = [
        f"name = {json.dumps(name or ref.split(':', 1)[-1])}",
        f"version = {json.dumps(str(version or '0'))}",
        f"architecture = {json.dumps(ref)}",
        f"weights = {json.dumps(str(weights))}",
        f"classes = {json.dumps(names)}",
    ]
    if target_layer:
        lines.append(f"target_layer = {json.dumps(target_layer)}")
    lines += ["", "[kwargs]", f"num_classes = {len(names)}", "", "[input]"]
    lines.append(f"size = [{size[0]}, {size[1]}]")
    lines.append(f"channels = {channels}")
    if mean is not None:
        lines.append(f"mean = {json.dumps([float(m) for m in mean])}")
    if std is not None:
        lines.append(f"std = {json.dumps([float(s) for s in std])}")
    text = "\n".join(lines) + "\n"
    folder = inputs / f"model-{bytes_sha256(text.encode())[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.toml").write_text(text, encoding="utf-8")
    return folder


def _png(image: Any, index: int) -> bytes:
    """PNG bytes of a PIL image or a raw-pixel tensor/array (CHW or HWC; uint8 or 0..1 floats)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        pil = image
    else:
        arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # CHW → HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
            raise AuditError(
                f"data: item {index} is an image of shape {tuple(arr.shape)}; expected a PIL "
                "image or a 1- or 3-channel tensor (C,H,W) or array (H,W,C)"
            )
        if arr.dtype != np.uint8:
            if arr.size and (arr.min() < 0 or arr.max() > 1):
                raise AuditError(
                    f"data: item {index} holds values outside 0..1 (range {arr.min():.3g} to "
                    f"{arr.max():.3g}); yield un-normalised images and pass mean/std to audit()"
                )
            arr = np.round(arr.astype(np.float64) * 255).astype(np.uint8)
        pil = Image.fromarray(arr)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _label(label: Any, classes: list[str], index: int) -> str:
    if isinstance(label, torch.Tensor):
        label = label.item()
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise AuditError(
            f"data: item {index} has label {label!r}; expected a class index or a class name"
        )
    if isinstance(label, int):
        if not 0 <= label < len(classes):
            raise AuditError(
                f"data: item {index} has label {label}, outside 0..{len(classes) - 1} of classes"
            )
        return classes[label]
    if label not in classes:
        raise AuditError(f"data: item {index} has label '{label}', not one of classes")
    return label


def dataset_manifest(dataset: Any, classes: list[str], inputs: Path) -> Path:
    """Write a Dataset of (image, label) as PNGs and a manifest under ``inputs``; its path."""
    try:
        n = len(dataset)
    except TypeError:
        raise AuditError("data: the Dataset has no len(); pass a map-style Dataset") from None
    if n == 0:
        raise AuditError("data: the Dataset is empty")
    inputs.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".data-", dir=inputs))
    rows, digest = [], hashlib.sha256()
    try:
        (stage / "images").mkdir()
        for i in range(n):
            item = dataset[i]
            if not isinstance(item, tuple | list) or len(item) < 2:
                raise AuditError(
                    f"data: item {i} is {type(item).__name__}; the Dataset must yield (image, label)"
                )
            png, label = _png(item[0], i), _label(item[1], classes, i)
            rel = f"images/{i:06d}.png"
            (stage / rel).write_bytes(png)
            digest.update(hashlib.sha256(png).digest() + label.encode() + b"\n")
            rows.append((rel, label))
        with open(stage / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label"])
            writer.writerows(rows)
        # Frozen as written, so the run records a frozen set and later work can prove it.
        freeze(load_dataset(stage / "manifest.csv"))
        final = inputs / f"data-{digest.hexdigest()[:16]}"
        if final.is_dir():  # the same images and labels were written before
            shutil.rmtree(stage)
        else:
            stage.rename(final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final / "manifest.csv"


def frame_manifest(frame: Any, classes: list[str], root: str | Path | None) -> Path:
    """Write a DataFrame with ``path,label`` as a manifest; its path (see the module's notes)."""
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise AuditError(
            f"data: the DataFrame lacks column(s) {', '.join(missing)}; it needs path,label"
        )
    out = frame.copy()
    out["label"] = [_label(v, classes, i) for i, v in enumerate(out["label"].tolist())]
    if root is not None:
        base = Path(root).expanduser().resolve()
        paths = [Path(p) for p in out["path"].astype(str)]
    else:
        paths = [Path(p).expanduser().resolve() for p in out["path"].astype(str)]
        if not paths:
            raise AuditError("data: the DataFrame has no rows")
        base = Path(os.path.commonpath([str(p.parent) for p in paths]))
    rels = [
        str(p.relative_to(base)) if p.is_absolute() and p.is_relative_to(base) else str(p)
        for p in paths
    ]
    out["path"] = rels
    text = out.to_csv(index=False)
    name = f"manifest-api-{bytes_sha256(text.encode())[:12]}.csv"
    target = base / name
    try:
        if not target.is_file():
            target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AuditError(
            f"{base}: cannot write the manifest for the DataFrame ({exc.strerror}); "
            "pass root= a writable folder holding the images, or write a manifest.csv yourself"
        ) from None
    return target
