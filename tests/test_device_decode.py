"""Decoding JPEGs on the inference device (``audits.device_decode``) against the Pillow path.

torchvision's image extension cannot load under the CPU build of torch used here
(pytorch/vision#9085), so the CPU tests drive the device path with a stand-in decoder of the
same contract: OpenCV's ``imdecode`` (its own libjpeg-turbo build), a decoder independent of
Pillow's. Everything after the decode call (header probe, worker split, resize, grey
conversion, fallbacks, hashes, batching, the record) is the code that runs on CUDA. Tests with
the real ``torchvision.io.decode_jpeg`` run where it loads (CPU) and where CUDA is present.

Tolerances: the two paths differ in the resize (Pillow: fixed point with a uint8 intermediate
between passes; here float32 in one ``interpolate``), by at most one level of 255 per value,
and on CUDA also in nvJPEG's IDCT and chroma upsampling against libjpeg-turbo's. One level is
1/(255 * std) in model input units, so probabilities move by around 1e-4 (float16 storage is
~5e-4 at 1); top-1 changes only for images within that distance of a tie. Asserted: top-1
identical on >= 99% of images and max |Δp| <= 0.01 (CPU) / 0.05 (CUDA, where nvJPEG's own
decode adds its IDCT's difference).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

import audits.device_decode as dd
from auditapp.engines.spec import DECODE_CHOICES, EngineSpec, as_engine
from audits.datasets import hash_files, load_dataset
from audits.errors import AuditError
from audits.images import load_for_model
from audits.inference import predict
from audits.model_card import load_card, load_model
from tests.builders import make_model_dir

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["a", "b", "c"]
CUDA = torch.cuda.is_available()


def cv2_decode(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """``decode_jpeg``'s contract (RGB, no EXIF rotation, raises on a bad image) with OpenCV."""
    out = []
    for t in datas:
        arr = cv2.imdecode(t.numpy(), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if arr is None:
            raise RuntimeError("cv2.imdecode failed")
        out.append(torch.from_numpy(arr[:, :, ::-1].copy()).permute(2, 0, 1).to(device))
    return out


@pytest.fixture
def stand_in(monkeypatch):
    """The device path with OpenCV decoding, wherever torchvision's decoder does not load."""
    monkeypatch.setattr(dd, "torchvision_decode", cv2_decode)
    monkeypatch.setattr(dd, "decoder_problem", lambda device: None)


def photo(rng: np.random.Generator, w: int, h: int, k: int) -> Image.Image:
    """A JPEG-like scene: gradients, a class tint, noise and a few solid ellipses."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255.0 / w, yy * 255.0 / h, np.full((h, w), 60.0 + 70 * k)], -1)
    img = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, x0 + int(rng.integers(5, 60)), y0 + int(rng.integers(5, 60))]
        draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def jpeg_set(root: Path, n: int, seed: int = 0, extra: dict[str, bytes] | None = None) -> Path:
    """``n`` JPEGs of 48..480 px a side, qualities 70..95, 4:4:4 / 4:2:2 / 4:2:0, some
    progressive; ``extra`` adds files by name (label ``a``)."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        w, h, k = int(rng.integers(48, 480)), int(rng.integers(48, 480)), i % 3
        rel = f"img/{i}.jpg"
        photo(rng, w, h, k).save(
            root / rel,
            quality=int(rng.integers(70, 96)),
            subsampling=int(rng.integers(0, 3)),
            progressive=bool(i % 5 == 0),
        )
        rows.append({"path": rel, "label": CLASSES[k]})
    for name, data in (extra or {}).items():
        (root / "img" / name).write_bytes(data)
        rows.append({"path": f"img/{name}", "label": "a"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def encoded(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def odd_files() -> dict[str, bytes]:
    """Files the device path must hand to Pillow, each by its own rule."""
    rng = np.random.default_rng(7)
    rgb = photo(rng, 120, 90, 1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    whole = encoded(rgb, quality=90)
    return {
        "png.png": encoded(rgb, "PNG"),
        "grey.jpg": encoded(rgb.convert("L"), quality=90),
        "cmyk.jpg": encoded(rgb.convert("CMYK"), quality=90),
        "rotated.jpg": encoded(rgb, quality=90, exif=exif),
        "truncated.jpg": whole[: len(whole) // 2],
        "junk.jpg": b"\xff\xd8\xff\xe0 this is not a JPEG at all",
        "empty.jpg": b"",
    }


def model_for(tmp_path: Path, size=(64, 64), channels: int = 3):
    card = load_card(make_model_dir(tmp_path / "model", CLASSES, channels=channels, size=size))
    return card, load_model(card, torch.device("cpu"))


# --- the header probe ---------------------------------------------------------------------


def test_probe_takes_plain_colour_jpegs_and_names_why_not_for_the_rest():
    rng = np.random.default_rng(1)
    img = photo(rng, 131, 77, 0)
    assert dd.probe_jpeg(encoded(img, quality=80)) == (131, 77)
    assert dd.probe_jpeg(encoded(img, quality=80, progressive=True)) == (131, 77)
    for sub in (0, 1, 2):  # 4:4:4, 4:2:2, 4:2:0
        assert dd.probe_jpeg(encoded(img, quality=80, subsampling=sub)) == (131, 77)
    upright = Image.Exif()
    upright[0x0112] = 1
    assert dd.probe_jpeg(encoded(img, exif=upright)) == (131, 77)
    odd = odd_files()
    assert dd.probe_jpeg(odd["png.png"]) == "not a JPEG"
    assert dd.probe_jpeg(odd["grey.jpg"]) == "greyscale JPEG"
    assert dd.probe_jpeg(odd["cmyk.jpg"]) == "CMYK/YCCK JPEG"
    assert dd.probe_jpeg(odd["rotated.jpg"]) == "EXIF orientation 6"
    assert dd.probe_jpeg(odd["truncated.jpg"]) == "no end-of-image marker (truncated?)"
    assert isinstance(dd.probe_jpeg(odd["junk.jpg"]), str)
    assert dd.probe_jpeg(b"") == "not a JPEG"


def test_probe_refuses_a_frame_over_the_decompression_bomb_limit():
    data = bytearray(encoded(Image.new("RGB", (16, 16)), quality=90))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # 60000 x 60000 = 3.6e9 pixels
    assert dd.probe_jpeg(bytes(data)) == "more pixels than Pillow's decompression-bomb limit"


def test_probe_never_raises_on_cut_or_flipped_bytes():
    data = encoded(photo(np.random.default_rng(2), 64, 48, 2), quality=85)
    rng = np.random.default_rng(3)
    for cut in range(0, 700, 3):  # every cut through the headers
        result = dd.probe_jpeg(data[:cut])
        assert isinstance(result, str), cut  # cut short: never taken as a whole image
    for _ in range(400):
        flipped = bytearray(data)
        for pos in rng.integers(0, 700, 4):
            flipped[pos] = int(rng.integers(0, 256))
        result = dd.probe_jpeg(bytes(flipped))
        assert isinstance(result, (str, tuple))


# --- resize and mode: tensor ops against Pillow ---------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst"), [((480, 320), (224, 224)), ((77, 131), (64, 64)), ((40, 50), (64, 96))]
)
def test_resize_is_within_one_level_of_pillow_bilinear(src, dst):
    rng = np.random.default_rng(4)
    img = photo(rng, src[1], src[0], 1)
    ours = dd.resize_like_pillow(torch.from_numpy(np.array(img)).permute(2, 0, 1)[None], dst)[0]
    pil = np.array(img.resize((dst[1], dst[0]), Image.Resampling.BILINEAR))
    diff = np.abs(ours.permute(1, 2, 0).numpy().astype(int) - pil.astype(int))
    assert diff.max() <= 1
    assert diff.mean() < 0.3


def test_same_size_is_returned_unchanged():
    x = torch.randint(0, 256, (2, 3, 20, 30), dtype=torch.uint8)
    assert torch.equal(dd.resize_like_pillow(x, (20, 30)), x)


def test_grey_conversion_is_pillows_bit_for_bit():
    rgb = np.random.default_rng(5).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ours = dd.rgb_to_l(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.array_equal(ours, np.array(Image.fromarray(rgb).convert("L")))


# --- predict: the device path against the Pillow path ----------------------------------------


def agreement(a, b) -> tuple[float, float]:
    top1 = float((a.table["pred_idx"].to_numpy() == b.table["pred_idx"].to_numpy()).mean())
    pa = np.asarray(a.probabilities, dtype=np.float32)
    pb = np.asarray(b.probabilities, dtype=np.float32)
    return top1, float(np.abs(pa - pb).max())


def test_device_path_on_cpu_agrees_with_pillow_and_hashes_the_same(tmp_path, stand_in):
    image_set = load_dataset(jpeg_set(tmp_path / "data", 240))
    card, model = model_for(tmp_path)
    pil = predict(model, card, image_set, "cpu", batch_size=32, workers=0, decode="cpu")
    dev = predict(model, card, image_set, "cpu", batch_size=32, workers=2, decode="device")
    top1, max_dp = agreement(pil, dev)
    assert top1 >= 0.99 and max_dp <= 0.01, (top1, max_dp)
    assert dev.hashes == pil.hashes == hash_files(image_set)
    assert dev.table["path"].tolist() == pil.table["path"].tolist()
    assert dev.table[["width", "height"]].equals(pil.table[["width", "height"]])
    assert dev.device["decode"] == {
        "path": "device",
        "requested": "device",
        "why": "asked for",
        "device_images": 240,
        "pillow_images": 0,
    }
    assert pil.device["decode"]["path"] == "cpu" and pil.device["decode"]["device_images"] == 0


def test_odd_and_hostile_files_fall_back_to_pillow_with_the_same_reasons(tmp_path, stand_in):
    odd = odd_files()
    image_set = load_dataset(jpeg_set(tmp_path / "data", 20, extra=odd))
    card, model = model_for(tmp_path)
    pil = predict(model, card, image_set, "cpu", batch_size=8, workers=0, decode="cpu")
    dev = predict(model, card, image_set, "cpu", batch_size=8, workers=0, decode="device")
    assert dev.skipped == pil.skipped
    assert {s["path"] for s in pil.skipped} == {
        "img/truncated.jpg",
        "img/junk.jpg",
        "img/empty.jpg",
    }
    assert (
        "truncated image"
        in dict((s["path"], s["reason"]) for s in dev.skipped)["img/truncated.jpg"]
    )
    assert dev.hashes == pil.hashes
    # The files Pillow decodes on both paths give the same numbers bit for bit.
    fallback = dev.table["path"].isin(
        ["img/png.png", "img/grey.jpg", "img/cmyk.jpg", "img/rotated.jpg"]
    )
    rows = np.flatnonzero(fallback.to_numpy())
    assert len(rows) == 4
    assert np.array_equal(np.asarray(dev.probabilities)[rows], np.asarray(pil.probabilities)[rows])
    assert dev.device["decode"]["device_images"] == 20
    assert dev.device["decode"]["pillow_images"] == 4
    top1, max_dp = agreement(pil, dev)
    assert top1 >= 0.99 and max_dp <= 0.01


def test_an_image_the_device_decoder_fails_on_goes_to_pillow_alone(tmp_path, monkeypatch):
    image_set = load_dataset(jpeg_set(tmp_path / "data", 12))
    poisoned = (tmp_path / "data" / "img" / "5.jpg").read_bytes()
    calls: list[int] = []

    def picky(datas, device):
        calls.append(len(datas))
        if any(bytes(t.numpy()) == poisoned for t in datas):
            raise RuntimeError("nvjpeg: unsupported")  # no partial results, like decode_jpeg
        return cv2_decode(datas, device)

    monkeypatch.setattr(dd, "torchvision_decode", picky)
    monkeypatch.setattr(dd, "decoder_problem", lambda device: None)
    card, model = model_for(tmp_path)
    pil = predict(model, card, image_set, "cpu", batch_size=6, workers=0, decode="cpu")
    dev = predict(model, card, image_set, "cpu", batch_size=6, workers=0, decode="device")
    assert calls[:2] == [6, 1]  # the batch, then each of its images alone
    assert dev.device["decode"]["device_images"] == 11
    assert dev.device["decode"]["pillow_images"] == 1
    row = dev.table.index[dev.table["path"] == "img/5.jpg"][0]
    assert np.array_equal(np.asarray(dev.probabilities)[row], np.asarray(pil.probabilities)[row])


def test_greyscale_model_on_the_device_path(tmp_path, stand_in):
    image_set = load_dataset(jpeg_set(tmp_path / "data", 30))
    card, model = model_for(tmp_path, size=(28, 28), channels=1)
    pil = predict(model, card, image_set, "cpu", batch_size=16, workers=0, decode="cpu")
    dev = predict(model, card, image_set, "cpu", batch_size=16, workers=0, decode="device")
    top1, max_dp = agreement(pil, dev)
    assert top1 >= 0.99 and max_dp <= 0.01
    assert dev.device["decode"]["device_images"] == 30


def test_the_decoder_input_equals_pillows_within_one_level(tmp_path):
    """What the model sees: the device path's uint8 input against ``load_for_model``'s."""
    manifest = jpeg_set(tmp_path / "data", 40, seed=9)
    decoder = dd.DeviceDecoder(torch.device("cpu"), (96, 80), 3, cv2_decode)
    for path in pd.read_csv(manifest)["path"]:
        data = (manifest.parent / path).read_bytes()
        arr, _w, _h = load_for_model(data, (96, 80), 3)
        out = decoder([data], [dd.probe_jpeg(data)])[0]
        diff = np.abs(out.permute(1, 2, 0).numpy().astype(int) - arr.astype(int))
        assert diff.max() <= 1, path


# --- the choice -------------------------------------------------------------------------------


def test_auto_is_the_pillow_path_on_the_cpu_and_the_numbers_do_not_move(tmp_path):
    image_set = load_dataset(jpeg_set(tmp_path / "data", 12))
    card, model = model_for(tmp_path)
    auto = predict(model, card, image_set, "cpu", batch_size=5, workers=0)
    cpu = predict(model, card, image_set, "cpu", batch_size=5, workers=0, decode="cpu")
    assert auto.device["decode"]["path"] == "cpu"
    assert auto.device["decode"]["why"] == "no CUDA device (cpu)"
    assert np.array_equal(np.asarray(auto.probabilities), np.asarray(cpu.probabilities))
    assert np.array_equal(np.asarray(auto.embeddings), np.asarray(cpu.embeddings))


def test_choose_decode(monkeypatch):
    cuda = torch.device("cuda")  # only its type is read
    jpegs, pngs = ["a.jpg", "b.JPEG", "c.png"], ["a.png", "b.png", "c.jpg"]
    monkeypatch.setattr(dd, "decoder_problem", lambda device: None)
    assert dd.choose_decode("auto", cuda, jpegs) == ("device", "2 of 3 files are JPEGs")
    assert dd.choose_decode("auto", cuda, pngs) == ("cpu", "1 of 3 files are JPEGs")
    assert dd.choose_decode("AUTO", torch.device("cpu"), jpegs)[0] == "cpu"
    assert dd.choose_decode("cpu", cuda, jpegs) == ("cpu", "asked for")
    monkeypatch.setattr(dd, "decoder_problem", lambda device: "no nvJPEG here")
    assert dd.choose_decode("auto", cuda, jpegs) == ("cpu", "no nvJPEG here")
    with pytest.raises(AuditError, match="--decode device: no nvJPEG here; use --decode cpu"):
        dd.choose_decode("device", cuda, jpegs)
    with pytest.raises(AuditError, match="--decode gpu: expected one of auto, cpu, device"):
        dd.choose_decode("gpu", cuda, jpegs)


def test_engine_spec_checks_decode():
    assert DECODE_CHOICES == dd.DECODE_CHOICES
    assert as_engine(EngineSpec(decode="device")).decode == "device"
    with pytest.raises(AuditError, match="--decode device needs --engine local"):
        as_engine(EngineSpec(name="ray", decode="device"))
    with pytest.raises(AuditError, match="--decode nvjpeg: expected"):
        as_engine(EngineSpec(decode="nvjpeg"))


def test_run_records_the_decode_path(tmp_path, stand_in):
    from auditapp.pipeline.audit import run_audit
    from audits.store import load_run

    manifest = jpeg_set(tmp_path / "data", 24)
    model_dir = make_model_dir(tmp_path / "model", CLASSES, size=(32, 32))
    path = run_audit(
        model_dir,
        manifest,
        store=tmp_path / "store",
        device="cpu",
        workers=0,
        skip=("explain", "integrity", "embedding_map"),
        engine=EngineSpec(decode="device"),
    )
    decode = load_run(path).audit.device.decode
    assert decode.path == "device" and decode.device_images == 24 and decode.pillow_images == 0


@pytest.mark.skipif(dd.decoder_problem("cpu") is None, reason="torchvision decodes JPEGs here")
def test_cli_decode_device_without_a_decoder_is_one_line(tmp_path):
    manifest = jpeg_set(tmp_path / "data", 3)
    model_dir = make_model_dir(tmp_path / "model", CLASSES)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "audits", "run", "--model", str(model_dir), "--data", str(manifest),
         "--store", str(tmp_path / "store"), "--device", "cpu", "--decode", "device",
         "--no-explain", "--no-integrity"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "--decode device: torchvision cannot decode JPEGs" in errors[0]
    assert "Traceback" not in proc.stderr


# --- the real torchvision.io.decode_jpeg --------------------------------------------------------


def _real_agreement(tmp_path: Path, device: str) -> tuple[float, float, float]:
    image_set = load_dataset(jpeg_set(tmp_path / "data", 300, seed=11, extra=odd_files()))
    card, model = model_for(tmp_path, size=(96, 96))
    pil = predict(model, card, image_set, device, batch_size=64, decode="cpu")
    dev = predict(model, card, image_set, device, batch_size=64, decode="device")
    assert dev.hashes == pil.hashes and dev.skipped == pil.skipped
    assert dev.device["decode"]["device_images"] == 300
    top1, max_dp = agreement(pil, dev)
    pa = np.asarray(pil.probabilities, dtype=np.float32)
    pb = np.asarray(dev.probabilities, dtype=np.float32)
    return top1, max_dp, float(np.abs(pa - pb).mean())


@pytest.mark.skipif(
    dd.decoder_problem("cpu") is not None, reason="torchvision's image extension does not load"
)
def test_torchvision_cpu_decode_agrees_with_pillow(tmp_path):
    top1, max_dp, _mean = _real_agreement(tmp_path, "cpu")
    assert top1 >= 0.99 and max_dp <= 0.01, (top1, max_dp)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_nvjpeg_decode_agrees_with_pillow(tmp_path):
    assert dd.decoder_problem("cuda") is None
    top1, max_dp, _mean = _real_agreement(tmp_path, "cuda")
    assert top1 >= 0.99 and max_dp <= 0.05, (top1, max_dp)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_nvjpeg_input_is_within_a_few_levels_of_pillows(tmp_path):
    manifest = jpeg_set(tmp_path / "data", 60, seed=12)
    decoder = dd.DeviceDecoder(torch.device("cuda"), (96, 96), 3)
    for path in pd.read_csv(manifest)["path"]:
        data = (manifest.parent / path).read_bytes()
        arr, _w, _h = load_for_model(data, (96, 96), 3)
        out = decoder([data], [dd.probe_jpeg(data)])[0]
        diff = np.abs(out.permute(1, 2, 0).cpu().numpy().astype(int) - arr.astype(int))
        assert diff.mean() < 1.0 and diff.max() <= 8, (path, diff.mean(), diff.max())


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_auto_on_cuda_takes_the_device_path_for_jpegs(tmp_path):
    image_set = load_dataset(jpeg_set(tmp_path / "data", 20))
    card, model = model_for(tmp_path)
    preds = predict(model, card, image_set, "cuda", batch_size=8)
    assert preds.device["decode"]["path"] == "device"
    assert preds.device["decode"]["device_images"] == 20


# --- the CUDA loop's bookkeeping, with CUDA's stream and event calls as no-ops -------------------


class _NoStream:
    def wait_event(self, _event) -> None:
        pass


class _NoEvent:
    def record(self, _stream=None) -> None:
        pass

    def synchronize(self) -> None:
        pass


def test_overlapped_loop_gives_the_plain_loops_rows_in_order(tmp_path, monkeypatch):
    """``_overlapped`` (copies one batch ahead, rows written one batch behind) against the plain
    loop on the same batches: same rows, same numbers. Streams, events and pinning are what
    only a GPU can check; here they are no-ops so the order and the hand-over are tested."""
    import contextlib

    import audits.inference as inf

    image_set = load_dataset(jpeg_set(tmp_path / "data", 23, extra=odd_files()))
    card, model = model_for(tmp_path)
    paths = image_set.items["path"].tolist()
    cpu = torch.device("cpu")

    def run(loop) -> inf.Outputs:
        outputs = inf.Outputs(card, inf.label_indices(image_set.items["label"], CLASSES), None)
        batches = inf.ImageBatches(image_set.root, paths, card, cpu, batch_size=5, workers=0)
        predictor = inf.BatchPredictor(model, card, cpu)
        loop(batches, predictor, outputs)
        return outputs

    def plain(batches, predictor, outputs):
        for batch in batches:
            logits, emb = predictor(batch.images)
            outputs.add(batch, logits, emb)

    expected = run(plain)
    monkeypatch.setattr(torch.cuda, "Stream", lambda *_a, **_k: _NoStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda _s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Event", _NoEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *_a: _NoStream())
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda self, _s: None)
    monkeypatch.setattr(inf, "_pinned_like", lambda t: torch.empty_like(t))
    got = run(lambda b, p, o: inf._overlapped(b, p, o, paths, cpu))
    table = got.table(image_set.items, card, None)
    assert table.equals(expected.table(image_set.items, card, None))
    assert len(table) == 23 + 4  # the three unreadable files are skipped on both
    assert np.array_equal(got.probabilities.finish(3), expected.probabilities.finish(3))
