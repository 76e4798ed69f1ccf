"""What a full audit costs over a plain forward pass, on the same images in one process.

(a) decode + plain forward: the same DataLoader reading and decoding, the model's forward
    pass and nothing else;
(b) the audit run (``auditapp.pipeline.audit.run_audit``): hashing, the freeze check, inference with
    top-5, losses and embeddings, metrics, and the run folder written atomically. The
    optional analyses (Grad-CAM, integrity) are timed separately as (c).

Usage: python bench/inference_overhead.py [--images 600] [--repeats 3]
Targets: (b)/(a) throughput ratio at most 1.3 on CPU, at most 1.15 on a GPU.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import audits.tv  # noqa: E402,F401
from auditapp.pipeline.audit import run_audit  # noqa: E402
from audits.datasets import load_dataset  # noqa: E402
from audits.inference import ImageReader, default_workers  # noqa: E402
from audits.model_card import load_card, load_model  # noqa: E402
from bench.common import add_device, add_repeats, make_parser, timed, torch_device  # noqa: E402


def plain_forward(model_dir: Path, data: Path, device: torch.device, batch_size: int) -> float:
    """Seconds for decode + normalise + forward over every image, nothing else."""
    card = load_card(model_dir)
    model = load_model(card, device)
    ds = load_dataset(data)
    reader = ImageReader(ds.root, ds.items["path"].tolist(), card.size, card.channels)
    loader = torch.utils.data.DataLoader(
        reader,
        batch_size=batch_size,
        num_workers=default_workers(device),
        pin_memory=device.type == "cuda",
    )
    mean = torch.tensor(card.mean, device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(card.std, device=device).view(1, -1, 1, 1) * 255
    amp = device.type == "cuda"
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast(device.type, enabled=amp, dtype=torch.bfloat16):
        for batch, *_ in loader:
            x = (batch.to(device, non_blocking=True).float() - mean) / std
            model(x).float().cpu()
    return time.perf_counter() - start


def make_case(root: Path, name: str, n_images: int, size: int) -> tuple[Path, Path]:
    """A resnet18 model folder (random weights) and a manifest of photo-sized JPEGs."""
    from audits.tv import torchvision

    model_dir = root / name
    model_dir.mkdir(parents=True)
    classes = [f"c{i}" for i in range(10)]
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=len(classes))
    save_file(net.state_dict(), str(model_dir / "w.safetensors"))
    (model_dir / "model.toml").write_text(
        f'name = "{name}"\nversion = "1"\narchitecture = "torchvision:resnet18"\n'
        f'weights = "w.safetensors"\nclasses = {classes!r}\n'.replace("'", '"')
        + f"[kwargs]\nnum_classes = {len(classes)}\n[input]\nsize = [{size}, {size}]\n"
    )
    data = root / f"{name}-data"
    (data / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["path,label"]
    for i in range(n_images):
        arr = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
        Image.fromarray(arr).save(data / "img" / f"{i:05d}.jpg", quality=85)
        rows.append(f"img/{i:05d}.jpg,c{i % 10}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    return model_dir, data / "manifest.csv"


def measure(
    label: str,
    model_dir: Path,
    data: Path,
    device: torch.device,
    batch: int,
    repeats: int,
    store: Path,
) -> dict:
    """Median plain, audit and audit-with-stages times of one case, as images/s and ratios."""
    n = len(load_dataset(data).items)

    def audit(skip: tuple[str, ...]) -> None:
        run_audit(model_dir, data, store=store, device=str(device), batch_size=batch, skip=skip)

    plain_forward(model_dir, data, device, batch)  # warm-up: page cache, kernels
    plain, full, extra = [], [], []
    for _ in range(repeats):  # interleaved so machine noise hits both alike
        plain.append(plain_forward(model_dir, data, device, batch))
        full.append(timed(lambda: audit(("explain", "integrity"))))
        extra.append(timed(lambda: audit(())))
    a, b, c = statistics.median(plain), statistics.median(full), statistics.median(extra)
    return {
        "case": label,
        "images": n,
        "plain_ips": n / a,
        "audit_ips": n / b,
        "ratio": b / a,
        "with_stages_ips": n / c,
        "stages_ratio": c / a,
    }


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--images", type=int, default=600)
    add_repeats(parser)
    add_device(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    device = torch_device(args.device)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = Path("fixtures/models/car-variants/1.0.0")
        heldout = Path("fixtures/data/heldout/manifest.csv")
        if demo.is_dir() and heldout.is_file():
            results.append(
                measure(
                    "demo CNN, held-out set (128 px PNG)",
                    demo,
                    heldout,
                    device,
                    args.batch_size,
                    args.repeats,
                    tmp / "s1",
                )
            )
        model_dir, data = make_case(tmp, "resnet18", args.images, 224)
        results.append(
            measure(
                "resnet18 @224, 400x300 JPEG",
                model_dir,
                data,
                device,
                args.batch_size,
                args.repeats,
                tmp / "s2",
            )
        )
    print(
        f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"{'case':42} {'images':>6} {'plain img/s':>12} {'audit img/s':>12} {'ratio':>6} "
        f"{'+stages img/s':>14} {'ratio':>6}"
    )
    for r in results:
        print(
            f"{r['case']:42} {r['images']:>6} {r['plain_ips']:>12.1f} {r['audit_ips']:>12.1f} "
            f"{r['ratio']:>6.2f} "
            f"{r['with_stages_ips']:>14.1f} {r['stages_ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
