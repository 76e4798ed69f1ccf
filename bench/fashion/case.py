"""Build (once, cached under ``bench/out/fashion``) the Fashion-MNIST benchmark case.

The images are the real test set from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``; ``$FASHION_MNIST_DIR`` overrides), written as PNGs with
a manifest; the model is :class:`bench.fashion.net.FashionCNN` trained for two epochs on the
training set with a fixed seed, saved as safetensors with a ``model.toml``.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np

CLASSES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")


def source_dir() -> Path | None:
    """Where the idx files are, or None (install the Debian package ``dataset-fashion-mnist``)."""
    folder = Path(os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR))
    return folder if (folder / "t10k-images-idx3-ubyte.gz").is_file() else None


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _write_images(images: np.ndarray, labels: np.ndarray, folder: Path) -> Path:
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["path,label"]
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        rel = f"images/{i:05d}.png"
        Image.fromarray(img, mode="L").save(folder / rel)
        lines.append(f"{rel},{CLASSES[lab]}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _train(src: Path, model_dir: Path, epochs: int = 2) -> None:
    import torch
    from safetensors.torch import save_file

    from bench.fashion.net import FashionCNN

    torch.manual_seed(0)
    x = torch.from_numpy(_idx(src / "train-images-idx3-ubyte.gz").copy()).float().unsqueeze(1)
    x = (x / 255.0 - 0.2860) / 0.3530
    y = torch.from_numpy(_idx(src / "train-labels-idx1-ubyte.gz").astype(np.int64))
    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 256):
            idx = order[start : start + 256]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model_dir.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(model_dir / "weights.safetensors"))
    shutil.copy(Path(__file__).with_name("net.py"), model_dir / "net.py")
    (model_dir / "model.toml").write_text(
        'name = "fashion-cnn"\nversion = "1.0.0"\narchitecture = "net.py:FashionCNN"\n'
        'weights = "weights.safetensors"\n'
        f"classes = {CLASSES!r}\n".replace("'", '"')
        + 'code_commit = "bench"\n'
        "[input]\nsize = [28, 28]\nchannels = 1\nmean = [0.2860]\nstd = [0.3530]\n",
        encoding="utf-8",
    )


def build(out: Path) -> tuple[Path, Path]:
    """(model folder, manifest) of the case, built on first use."""
    src = source_dir()
    if src is None:
        raise SystemExit(
            "Fashion-MNIST not found: install the Debian package dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR"
        )
    data, model_dir = out / "data", out / "model"
    manifest = data / "manifest.csv"
    if not manifest.is_file():
        images = _idx(src / "t10k-images-idx3-ubyte.gz")
        labels = _idx(src / "t10k-labels-idx1-ubyte.gz")
        _write_images(images, labels, data)
    if not (model_dir / "model.toml").is_file():
        _train(src, model_dir)
    return model_dir, manifest
