"""Small models and image sets built on the fly for tests (no downloads)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

TINY_NET = '''
from torch import nn


class TinyNet(nn.Module):
    """Two convolutions, global pooling, a linear head: enough for Grad-CAM and embeddings."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 2, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
'''


def make_model_dir(
    root: Path,
    classes: list[str] | None = None,
    channels: int = 3,
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
    weights_format: str = "safetensors",
    extra_toml: str = "",
    target_layer: str | None = "features.2",
    name: str = "tiny",
    version: str = "1.0.0",
) -> Path:
    """A model folder per the contract: net.py + weights + model.toml."""
    classes = classes or ["cat", "dog", "fox"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "net.py").write_text(TINY_NET)
    namespace: dict = {}
    exec(TINY_NET, namespace)  # the same source the card points to
    torch.manual_seed(seed)
    model = namespace["TinyNet"](num_classes=len(classes), in_channels=channels)
    state = model.state_dict()
    weights = "weights.safetensors" if weights_format == "safetensors" else "weights.pt"
    if weights_format == "safetensors":
        save_file(state, str(root / weights))
    else:
        torch.save(state, root / weights)
    mean = [0.5] * channels
    std = [0.25] * channels
    layer = f'target_layer = "{target_layer}"\n' if target_layer else ""
    (root / "model.toml").write_text(
        textwrap.dedent(
            f"""\
            name = "{name}"
            version = "{version}"
            architecture = "net.py:TinyNet"
            weights = "{weights}"
            classes = {classes!r}
            code_commit = "abc1234"
            """
        ).replace("'", '"')
        + layer
        + extra_toml
        + textwrap.dedent(
            f"""
            [kwargs]
            num_classes = {len(classes)}
            in_channels = {channels}

            [input]
            size = [{size[0]}, {size[1]}]
            channels = {channels}
            mean = {mean}
            std = {std}
            """
        )
    )
    return root


def make_imagefolder(
    root: Path, classes: list[str], per_class: int = 4, size: int = 24, seed: int = 0
) -> Path:
    """An ImageFolder of random PNGs; each class has its own mean colour so models can differ."""
    rng = np.random.default_rng(seed)
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.full((size, size, 3), 40 + 60 * k, dtype=np.int16)
            arr = np.clip(base + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / cls / f"{cls}_{i}.png")
    return root


def make_manifest(
    root: Path,
    classes: list[str],
    per_class: int = 4,
    size: int = 24,
    seed: int = 0,
    extra: dict | None = None,
) -> Path:
    """A manifest.csv over generated images, with group/roi/source metadata columns."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    (root / "img").mkdir(parents=True, exist_ok=True)
    for k, cls in enumerate(classes):
        for i in range(per_class):
            arr = np.clip(40 + 60 * k + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(
                np.uint8
            )
            rel = f"img/{cls}_{i}.png"
            Image.fromarray(arr).save(root / rel)
            rows.append(
                {"path": rel, "label": cls, "group": f"g{k}_{i // 2}", "roi_x0": 2, "roi_y0": 2, "roi_x1": 12,
                 "roi_y1": 12, "source": "dealer" if i % 2 else "fan"}
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    for key, val in (extra or {}).items():
        frame[key] = val
    frame.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"
