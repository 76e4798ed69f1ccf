"""The GPU figures of issue 16: audit/plain and heatmaps per second, measured only on a GPU.

    python bench/gpu.py [--repeats 3] [--write]

On a machine with CUDA it runs, on the GPU and in one process:

- audit/plain (``bench/inference_overhead.py``'s cases: the demo CNN on the held-out set and
  resnet18 on 224 px JPEGs): a plain DataLoader + forward against ``run_audit``, with and
  without the explain and integrity stages; target audit/plain <= 1.15;
- heatmaps/s (``bench/gradcam.py``'s ``bench_model``): our batched Grad-CAM against
  pytorch-grad-cam on the same model, images and layer;
- decode (issue 16 part 2): ``predict`` images/s with JPEGs decoded on the GPU (nvJPEG,
  ``--decode device``) against Pillow in the DataLoader workers (``--decode cpu``), same model,
  images and batch, interleaved, on 400x300 noise JPEGs and on 1280x960 photo-like JPEGs.

Without CUDA it says so and writes nothing: no GPU figure is ever estimated or carried over.
With ``--write`` the "## GPU (issue 16)" section of bench/RESULTS.md is replaced.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import add_repeats, add_write, make_parser, write_section  # noqa: E402

SECTION = "## GPU (issue 16)"


def main() -> int:
    parser = make_parser(__doc__, full=True)
    add_repeats(parser)
    add_write(parser, f"write the '{SECTION}' section of bench/RESULTS.md")
    parser.add_argument("--images", type=int, default=2000, help="resnet18 case size")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing measured, nothing written (run on a GPU machine)")
        return 0
    from audits.tv import torchvision
    from bench.gradcam import SmallCNN, bench_model
    from bench.inference_overhead import make_case, measure

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    lines = [
        SECTION,
        "",
        f"Machine: {name} ({torch.cuda.device_count()} visible), torch {torch.__version__}. "
        "Command: `python bench/gpu.py --write`.",
        "",
        "| case | images | plain img/s | audit img/s | audit/plain | + stages img/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cases = []
        demo, heldout = (
            Path("fixtures/models/car-variants/1.0.0"),
            Path("fixtures/data/heldout/manifest.csv"),
        )
        if demo.is_dir() and heldout.is_file():
            cases.append(("demo CNN, held-out set", demo, heldout))
        model_dir, data = make_case(tmp_path, "resnet18", args.images, 224)
        cases.append(("resnet18 @224, 400x300 JPEG", model_dir, data))
        for i, (label, mdir, manifest) in enumerate(cases):
            r = measure(label, mdir, manifest, device, 256, args.repeats, tmp_path / f"s{i}")
            lines.append(
                f"| {label} | {r['images']} | {r['plain_ips']:.0f} | {r['audit_ips']:.0f} | "
                f"**{r['ratio']:.2f}** | {r['with_stages_ips']:.0f} | {r['stages_ratio']:.2f} |"
            )
    lines += [
        "",
        "| Grad-CAM | ours heatmaps/s | pytorch-grad-cam batched | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    models = [
        ("small CNN, 3x28x28", SmallCNN(), (3, 28, 28), 4096, 512),
        ("resnet18, 3x224x224", torchvision.models.resnet18(weights=None, num_classes=10), (3, 224, 224), 1024, 128),
    ]  # fmt: skip
    for label, model, shape, n, batch in models:
        res = bench_model(label, model, shape, n, batch, args.repeats, device)
        ours = res["rates"]["ours (batched torch Grad-CAM)"]
        lib = res["rates"]["pytorch-grad-cam batched"]
        lines.append(f"| {label} | {ours:.0f} | {lib:.0f} | {ours / lib:.2f} |")
    lines += [
        "",
        "| decode (resnet18 @224, predict) | images | workers | Pillow img/s | nvJPEG img/s | "
        "ratio | on GPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model_dir, noise = make_case(tmp_path / "a", "resnet18", args.images, 224)
        photos = photo_set(tmp_path / "photos", args.images, (960, 1280))
        for label, data in (
            ("400x300 noise JPEG, q85", noise),
            ("1280x960 photo JPEG, q90", photos),
        ):
            r = decode_rates(model_dir, data, device, 256, args.repeats)
            lines.append(
                f"| {label} | {r['images']} | {r['workers']} | {r['cpu_ips']:.0f} | "
                f"{r['device_ips']:.0f} | **{r['ratio']:.2f}** | {r['on_device']} |"
            )
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(SECTION, text)
    return 0


def photo_set(root: Path, n: int, shape: tuple[int, int]) -> Path:
    """``n`` photo-like JPEGs (gradients, a tint, mild noise: a camera picture's file size,
    not noise's) of ``shape`` (height, width), quality 90, 4:2:0; ten classes."""
    import numpy as np
    from PIL import Image

    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rows = ["path,label"]
    for i in range(n):
        tint = rng.uniform(0, 255, 3).astype(np.float32)
        base = np.stack([xx * 255 / w, yy * 255 / h, np.full((h, w), tint[2])], -1)
        arr = base * 0.6 + tint * 0.4 + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
            root / "img" / f"{i:05d}.jpg", quality=90
        )
        rows.append(f"img/{i:05d}.jpg,c{i % 10}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def decode_rates(
    model_dir: Path, data: Path, device: torch.device, batch: int, repeats: int
) -> dict:
    """Median ``predict`` images/s with ``decode="cpu"`` and ``decode="device"``, interleaved."""
    import statistics

    from audits.datasets import load_dataset
    from audits.inference import default_workers, predict
    from audits.model_card import load_card, load_model
    from bench.common import timed

    card = load_card(model_dir)
    model = load_model(card, device)
    image_set = load_dataset(data)
    n = len(image_set.items)

    def run(decode: str):
        return predict(model, card, image_set, device, batch, decode=decode)

    on_device = run("device").device["decode"]["device_images"]  # warm-up: cache, nvJPEG, kernels
    run("cpu")
    cpu, dev = [], []
    for _ in range(repeats):  # interleaved so machine noise hits both alike
        cpu.append(timed(lambda: run("cpu")))
        dev.append(timed(lambda: run("device")))
    a, b = statistics.median(cpu), statistics.median(dev)
    return {
        "images": n,
        "workers": default_workers(device),
        "cpu_ips": n / a,
        "device_ips": n / b,
        "ratio": a / b,
        "on_device": f"{on_device}/{n}",
    }


if __name__ == "__main__":
    raise SystemExit(main())
