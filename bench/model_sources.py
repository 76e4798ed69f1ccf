"""One network audited through each model source, as a ratio to the eager torch path.

A resnet18 (10 classes, random weights) at 224 px is saved five ways - a torchvision card
with its weights (the eager path, the reference), a timm card, TorchScript, a torch.export
archive (.pt2) and ONNX - and the core audit (``run_audit`` without explain and integrity:
hashing, decoding, inference with top-5, losses and embeddings, metrics, the run folder) runs
on the same images through each, interleaved repeat by repeat in one process; medians.

Usage: python bench/model_sources.py [--images 64] [--repeats 3] [--write]
Target: no source slower than 1.25x the eager path without a documented reason.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from auditapp.pipeline.audit import run_audit  # noqa: E402
from audits.tv import torchvision  # noqa: E402
from bench.common import (  # noqa: E402
    add_device,
    add_repeats,
    add_write,
    cpu_name,
    load_average,
    make_parser,
    timed,
    write_section,
)

SECTION = "## Model sources (issue 15): TorchScript, .pt2 and ONNX vs the eager path"
SIZE = 224
CLASSES = [f"c{i}" for i in range(10)]
INPUT = f"[input]\nsize = [{SIZE}, {SIZE}]\n"


def _card(folder: Path, weights: str, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "model.toml").write_text(
        f'name = "r18"\nversion = "{folder.name}"\nweights = "{weights}"\n'
        f"classes = {json.dumps(CLASSES)}\n{extra}{INPUT}"
    )
    return folder


def make_sources(root: Path) -> dict[str, Path]:
    """The five model folders of one resnet18."""
    import timm

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=len(CLASSES)).eval()
    kw = f"[kwargs]\nnum_classes = {len(CLASSES)}\n"
    out = {
        "eager": _card(root / "eager", "w.safetensors", 'architecture = "torchvision:resnet18"\n')
    }
    save_file(net.state_dict(), str(out["eager"] / "w.safetensors"))
    out["timm"] = _card(root / "timm", "w.safetensors", 'architecture = "timm:resnet18"\n')
    tnet = timm.create_model("resnet18", pretrained=False, num_classes=len(CLASSES))
    tnet.load_state_dict(net.state_dict())
    save_file(tnet.state_dict(), str(out["timm"] / "w.safetensors"))
    for name in ("eager", "timm"):
        card = out[name] / "model.toml"
        card.write_text(card.read_text() + kw)
    out["torchscript"] = _card(root / "torchscript", "model.ts")
    torch.jit.save(torch.jit.script(net), str(out["torchscript"] / "model.ts"))
    out["pt2"] = _card(root / "pt2", "model.pt2")
    example = (torch.randn(2, 3, SIZE, SIZE),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(net, example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(out["pt2"] / "model.pt2"))
    out["onnx"] = _card(root / "onnx", "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(out["onnx"] / "model.onnx"), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})  # fmt: skip
    return out


def make_images(root: Path, n: int) -> Path:
    """``n`` 256-px JPEGs of smooth random colour fields, labelled round-robin."""
    rng = np.random.default_rng(0)
    rows = ["path,label"]
    (root / "img").mkdir(parents=True)
    for i in range(n):
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((256, 256), Image.BILINEAR)
        img.save(root / "img" / f"{i}.jpg", quality=90)
        rows.append(f"img/{i}.jpg,{CLASSES[i % len(CLASSES)]}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--images", type=int, default=64)
    add_repeats(parser)
    add_device(parser)
    add_write(parser, "append the results section to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = make_sources(root / "models")
        data = make_images(root / "data", args.images)
        store = root / "store"
        skip = ("explain", "integrity")

        def audit(name: str) -> None:
            run_audit(sources[name], data, store, device=args.device, skip=skip)

        for name in sources:  # warm-up: imports, first-call costs
            audit(name)
        times: dict[str, list[float]] = {name: [] for name in sources}
        for _ in range(args.repeats):  # interleaved so machine noise hits every source alike
            for name in sources:
                times[name].append(timed(lambda name=name: audit(name)))
    med = {name: statistics.median(t) for name, t in times.items()}
    lines = [
        SECTION,
        "",
        f"`python bench/model_sources.py --images {args.images} --repeats {args.repeats}` on "
        f"{cpu_name()} ({torch.get_num_threads()} torch threads, load average "
        f"{load_average():.1f}), device {args.device}; resnet18, 10 classes, {SIZE} px, "
        f"{args.images} JPEGs; core audit (`--no-explain --no-integrity`), medians of "
        f"{args.repeats} interleaved repeats after one warm-up each.",
        "",
        "| source | median s | images/s | ratio to eager |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds in med.items():
        ratio = seconds / med["eager"]
        lines.append(f"| {name} | {seconds:.2f} | {args.images / seconds:.1f} | **{ratio:.2f}** |")
    text = "\n".join(lines) + "\n"
    print(text)
    print("all repeats (s):", {k: [round(v, 2) for v in t] for k, t in times.items()})
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
