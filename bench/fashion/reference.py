"""The reference a whole audit process is measured against: import torch, decode the same PNGs
with Pillow, run the same model in batches of 256. Nothing else.

Usage: python -m bench.fashion.reference MODEL_DIR MANIFEST [--batch-size 256]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    sys.path.insert(0, str(args.model_dir))
    from net import FashionCNN  # the model folder's own file

    model = FashionCNN()
    model.load_state_dict(load_file(str(args.model_dir / "weights.safetensors")))
    model.eval()
    with open(args.manifest, newline="", encoding="utf-8") as fh:
        paths = [args.manifest.parent / row["path"] for row in csv.DictReader(fh)]
    preds = []
    with torch.inference_mode():
        for start in range(0, len(paths), args.batch_size):
            batch = np.stack(
                [
                    np.asarray(Image.open(p).convert("L"))
                    for p in paths[start : start + args.batch_size]
                ]
            )
            x = (torch.from_numpy(batch).float().unsqueeze(1) / 255.0 - 0.2860) / 0.3530
            preds.append(model(x).argmax(1))
    print(len(torch.cat(preds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
