"""Batched, streaming inference: predictions, top-5, losses and penultimate embeddings.

``BatchPredictor`` is a pure function over a batch of decoded uint8 images (the unit a
distributed engine such as Ray Data's ``map_batches`` would call); ``predict`` streams an
``ImageSet`` through it with ``ImageBatches`` (a DataLoader), so memory holds only a few batches
of images. The reading (``ImageBatches``), the normalisation (``pixel_scale``, ``normalise``) and
the autocast choice (``amp_dtype``) are shared with the explain stage.

On CUDA, JPEGs can be decoded on the GPU (``audits.device_decode``: the workers only read and
hash, ``ByteReader``/``RawBatch``), and the loop overlaps work (``_overlapped``): the next
batch's copy runs on a side stream while this batch's forward pass does, and a batch's rows are
written while the next one computes. The CPU loop is unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from audits.arrow_columns import list_column, string_column
from audits.datasets import TABLE_COLUMNS, ImageSet
from audits.device_decode import DeviceDecoder, choose_decode, probe_jpeg
from audits.errors import AuditError
from audits.hashing import Digests, bytes_sha256
from audits.images import BadImage, load_for_model, read_file
from audits.model_card import ModelCard
from audits.npy_writer import NpyRows
from audits.worker_errors import worker_failure

TOP_K = 5


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else CPU; a device that is not here is an error.

    Accepted: auto, cpu, cuda, cuda:N, mps.
    """
    device = str(device).strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise AuditError("--device mps: no Apple GPU (MPS) is available here; use cpu or auto")
        return torch.device("mps")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise AuditError(
                f"--device {device}: no CUDA device is available here; use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        if device != "cuda" and int(device[5:]) >= count:
            raise AuditError(
                f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
        return torch.device(device)
    raise AuditError(f"--device {device}: expected auto, cpu, cuda, cuda:N or mps")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the GPU supports it, fp16 on older GPUs, none on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def classifier_head(model: nn.Module, n_classes: int) -> nn.Module | None:
    """The last ``nn.Linear`` producing the class scores; its input is the embedding."""
    head = None
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.out_features == n_classes:
            head = module
    return head


def pixel_scale(card: ModelCard, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The card's mean and std in 0..255 pixel units, shaped ``[1, C, 1, 1]`` on ``device``."""
    shape = (1, card.channels, 1, 1)
    mean = torch.tensor(card.mean, device=device).view(shape) * 255.0
    std = torch.tensor(card.std, device=device).view(shape) * 255.0
    return mean, std


def normalise(
    batch_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = False
) -> torch.Tensor:
    """A uint8 NCHW batch as float model input on the device of ``mean`` (see ``pixel_scale``)."""
    x = batch_u8.to(mean.device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x.float() - mean) / std


class BatchPredictor:
    """Callable over uint8 NCHW batches: normalise on the device, forward, capture embeddings."""

    def __init__(self, model: nn.Module, card: ModelCard, device: torch.device) -> None:
        self.label = f"{card.name}@{card.version}"
        self.n_classes = len(card.classes)
        self.model = model.to(device).eval()
        self.device = device
        self.amp = amp_dtype(device)
        self.channels_last = device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.mean, self.std = pixel_scale(card, device)
        self._captured: torch.Tensor | None = None
        head = classifier_head(model, len(card.classes))
        # A graph format (audits.formats) says where its embeddings come from itself.
        self.embedding_source = getattr(model, "embedding_source", None) or (
            "penultimate" if head is not None else "logits"
        )
        self._hook = head.register_forward_pre_hook(self._capture) if head is not None else None

    def _capture(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._captured = args[0]

    def close(self) -> None:
        """Release the hook (the model stays usable)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def normalise(self, batch_u8: torch.Tensor) -> torch.Tensor:
        return normalise(batch_u8, self.mean, self.std, self.channels_last)

    @torch.inference_mode()
    def __call__(self, batch_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (float32 logits, float32 embeddings) for a uint8 NCHW batch."""
        x = self.normalise(batch_u8)
        self._captured = None
        try:
            logits = self._forward(x)
        except SystemExit as exc:  # model code must raise, not end the process
            raise AuditError(
                f"{self.label}: the model's code called sys.exit({exc.code!r}) in the forward "
                "pass; it must raise an exception instead (fix the model's forward)"
            ) from None
        except Exception as exc:
            raise self._forward_error(exc, x) from exc
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(x), self.n_classes):
            shape = (
                tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            )
            raise AuditError(
                f"{self.label}: the model returned {shape} for a batch of {len(x)} images; "
                f"expected ({len(x)}, {self.n_classes}): one row of class scores per image"
            )
        emb = self._captured
        if emb is None:  # a graph format's named embedding output, else the logits
            emb = getattr(self.model, "last_embedding", None)
            emb = logits if emb is None else emb
        return logits.float(), emb.flatten(1).float()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            return self.model(x)

    def _forward_error(self, exc: Exception, x: torch.Tensor) -> AuditError:
        """One line for a forward pass that raised: out of memory, batch-only, or the model's."""
        n, what = len(x), _first_line(exc)
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return AuditError(
                f"{self.label}: out of GPU memory on a batch of {n} images; use a smaller --batch-size"
            )
        if n > 1:
            try:
                self._forward(x[:1])
            except Exception:
                pass
            else:
                return AuditError(
                    f"{self.label}: the forward pass fails on a batch of {n} images ({what}) but "
                    "works on one image, so the model does not handle batches; rerun with "
                    "--batch-size 1"
                )
        return AuditError(
            f"{self.label}: the model's forward pass raised on a batch of {n} image(s) "
            f"of {tuple(x.shape[1:])} ({what}); the model's code failed on this input"
        )


#: Pixels per batch the automatic batch size aims at: 64 images of 224 x 224 RGB, the size every
#: ImageNet-style model has run at since the first release. Small inputs (28 x 28 greyscale)
#: get bigger batches, because per-batch work (Python, thread wake-ups, writes) then dominates.
AUTO_BATCH_PIXELS = 64 * 224 * 224 * 3
AUTO_BATCH_MAX = 512


def resolve_batch_size(batch_size: int | None, card: ModelCard) -> int:
    """``batch_size`` as given, or (None: automatic) the power of two in 1..512 whose batch holds
    at most ``AUTO_BATCH_PIXELS`` input values; 64 for 224 x 224 RGB, 512 for 28 x 28 grey."""
    if batch_size is not None:
        if batch_size < 1:
            raise AuditError(f"--batch-size {batch_size}: must be at least 1")
        return int(batch_size)
    per_image = max(1, card.size[0] * card.size[1] * card.channels)
    fits = max(1, AUTO_BATCH_PIXELS // per_image)
    return int(min(AUTO_BATCH_MAX, 1 << (fits.bit_length() - 1)))


def default_workers(device: torch.device) -> int:
    """DataLoader workers for decoding: one core left to the main process, at most 4 (8 on CUDA)."""
    cores = os.cpu_count() or 1
    return max(0, min(8, cores - 1)) if device.type == "cuda" else max(0, min(4, cores - 1))


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (messages of torch errors run over many lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def check_finite(
    logits: torch.Tensor, emb: torch.Tensor, batch: ImageBatch, paths: list[str], label: str
) -> None:
    """Refuse NaN/Inf outputs, naming the model, how many images and the first few paths."""
    bad_out = ~torch.isfinite(logits).all(dim=1)
    bad_emb = ~torch.isfinite(emb).all(dim=1)
    bad = (bad_out | bad_emb).cpu().numpy()
    if not bad.any():
        return
    where = "outputs (logits)" if bool(bad_out.any()) else "penultimate-layer features"
    shown = [str(paths[i]) for i in batch.index[bad][:3]]
    raise AuditError(
        f"{label}: the model's {where} are NaN/Inf (not numbers) for {int(bad.sum())} of the "
        f"{len(bad)} images of a batch, e.g. {', '.join(shown)}; check the weights (a training run "
        "that diverged?) and the card's [input] mean and std"
    )


class ImageReader(torch.utils.data.Dataset):
    """Reads and decodes one image for the model; a failure is a reason, never an exception.

    Items are ``(uint8 CHW, position, reason, width, height, sha256)``; ``reason`` is "" for a
    good image; ``sha256`` is the hash of the bytes that were decoded ("" when the file could not
    be read), so each file is read once for both. With ``expected_sha256`` (one per path, None to
    skip) a changed file is refused.
    """

    def __init__(
        self,
        root: Path,
        paths: list[str],
        size: tuple[int, int],
        channels: int,
        expected_sha256: list[str | None] | None = None,
    ) -> None:
        self.root, self.paths, self.size, self.channels = root, paths, size, channels
        self.expected = expected_sha256

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, i: int) -> tuple[bytes | None, str, str]:
        """File ``i``'s bytes, their sha256 and ``""``; or None, the sha256 when the file was
        read (else ``""``) and why it cannot be used."""
        try:
            data = read_file(os.path.join(self.root, self.paths[i]))
        except BadImage as exc:
            return None, "", str(exc)
        sha = bytes_sha256(data)
        expected = self.expected[i] if self.expected is not None else None
        if expected and sha != expected:
            return None, sha, "changed since the run (sha256 differs)"
        return data, sha, ""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str, int, int, str]:
        data, sha, reason = self._read(i)
        if data is not None:
            try:
                arr, width, height = load_for_model(data, self.size, self.channels)
            except BadImage as exc:
                reason = str(exc)
            else:
                image = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
                return image, i, "", width, height, sha
        blank = torch.zeros(self.channels, *self.size, dtype=torch.uint8)
        return blank, i, reason, 0, 0, sha


class ByteReader(ImageReader):
    """The device-decode path's reader: a JPEG the device decoder takes comes back as its bytes
    (read and hashed here, decoded in the main process); anything else is decoded here with
    Pillow exactly as ``ImageReader`` does.

    Items are ``(bytes or uint8 CHW, position, reason, width, height, sha256)``; for bytes the
    size is the JPEG header's."""

    def __getitem__(self, i: int) -> tuple[Any, int, str, int, int, str]:
        data, sha, reason = self._read(i)
        if data is None:
            return None, i, reason, 0, 0, sha
        probed = probe_jpeg(data)
        if not isinstance(probed, str):
            return data, i, "", probed[0], probed[1], sha
        try:
            arr, width, height = load_for_model(data, self.size, self.channels)
        except BadImage as exc:
            return None, i, str(exc), 0, 0, sha
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), i, "", width, height, sha


@dataclass
class RawBatch:
    """One batch from ``ByteReader``: Pillow-decoded images and JPEG bytes, by position."""

    images: torch.Tensor  # uint8 [k, C, H, W]: the ones decoded by Pillow in a worker
    image_pos: list[int]
    jpegs: list[bytes]
    jpeg_pos: list[int]
    index: torch.Tensor
    reasons: list[str]
    width: torch.Tensor
    height: torch.Tensor
    shas: list[str]

    def pin_memory(self) -> RawBatch:
        """The DataLoader's pinning thread calls this: only the decoded images are copied to
        the device by us; the JPEG bytes go to the decoder, which stages them itself."""
        return dataclasses.replace(self, images=self.images.pin_memory())


def collate_raw(
    items: list[tuple[Any, int, str, int, int, str]], shape: tuple[int, ...]
) -> RawBatch:
    """``ByteReader`` items as one ``RawBatch`` (``shape``: one image's C, H, W)."""
    images, image_pos, jpegs, jpeg_pos = [], [], [], []
    for pos, (payload, *_rest) in enumerate(items):
        if isinstance(payload, torch.Tensor):
            images.append(payload)
            image_pos.append(pos)
        elif isinstance(payload, bytes):
            jpegs.append(payload)
            jpeg_pos.append(pos)
    return RawBatch(
        images=torch.stack(images) if images else torch.zeros((0, *shape), dtype=torch.uint8),
        image_pos=image_pos,
        jpegs=jpegs,
        jpeg_pos=jpeg_pos,
        index=torch.tensor([it[1] for it in items], dtype=torch.int64),
        reasons=[it[2] for it in items],
        width=torch.tensor([it[3] for it in items], dtype=torch.int64),
        height=torch.tensor([it[4] for it in items], dtype=torch.int64),
        shas=[it[5] for it in items],
    )


@dataclass
class ImageBatch:
    """The readable images of one batch: uint8 NCHW, their positions and original sizes."""

    images: torch.Tensor
    index: np.ndarray
    width: np.ndarray
    height: np.ndarray


class ImageBatches:
    """Streams the readable images of ``paths`` (relative to ``root``) in batches.

    Reading runs in DataLoader workers; unreadable images are left out of the batches and
    listed in ``skipped`` as ``{"path", "reason"}``. A progress bar on stderr with ``progress``.
    """

    def __init__(
        self,
        root: Path,
        paths: list[str],
        card: ModelCard,
        device: torch.device,
        *,
        batch_size: int,
        workers: int | None = None,
        expected_sha256: list[str | None] | None = None,
        progress: bool = False,
        desc: str = "",
        decoder: DeviceDecoder | None = None,
    ) -> None:
        self.paths = paths
        self.decoder = decoder
        self.size, self.channels = card.size, card.channels
        extra: dict[str, Any] = {}
        if decoder is None:
            reader = ImageReader(root, paths, card.size, card.channels, expected_sha256)
        else:  # workers read and hash; JPEGs are decoded on the device in this process
            reader = ByteReader(root, paths, card.size, card.channels, expected_sha256)
            extra["collate_fn"] = partial(collate_raw, shape=(card.channels, *card.size))
        self.loader = torch.utils.data.DataLoader(
            reader,
            batch_size=batch_size,
            shuffle=False,
            num_workers=default_workers(device) if workers is None else workers,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
            **extra,
        )
        self.progress, self.desc = progress, desc
        self.skipped: list[dict[str, str]] = []
        #: sha256 of every file as read for decoding (None: unreadable), filled while iterating.
        self.hashes = Digests(len(paths))
        #: Images decoded by the device decoder and by Pillow (workers, or fallbacks here).
        self.decoded = {"device": 0, "pillow": 0}

    def __iter__(self) -> Iterator[ImageBatch]:
        bar = tqdm(
            total=len(self.paths),
            unit="img",
            desc=self.desc,
            file=sys.stderr,
            disable=None if self.progress else True,  # None: off unless stderr is a terminal
        )
        try:
            if self.decoder is not None:
                for raw in _unwrapped(self.loader):
                    bar.update(len(raw.index))
                    batch = self._device_batch(raw)
                    if batch is not None:
                        yield batch
                return
            for images, index, reasons, width, height, shas in _unwrapped(self.loader):
                bar.update(len(index))
                index = index.numpy()
                self.hashes.set_many(index, shas)
                ok = np.array([r == "" for r in reasons], dtype=bool)
                self.decoded["pillow"] += int(ok.sum())
                for i in np.flatnonzero(~ok):
                    self.skipped.append({"path": str(self.paths[index[i]]), "reason": reasons[i]})
                if ok.any():
                    # All good: keep the loader's (pinned) tensor rather than copying it.
                    kept = images if ok.all() else images[torch.from_numpy(ok)]
                    yield ImageBatch(kept, index[ok], width.numpy()[ok], height.numpy()[ok])
        finally:
            bar.close()

    def _device_batch(self, raw: RawBatch) -> ImageBatch | None:
        """Decode a ``RawBatch``'s JPEGs on the device; a JPEG the device decoder fails on is
        decoded here with Pillow, whose reason (truncated, unreadable…) is the one recorded."""
        assert self.decoder is not None
        dev = self.decoder.device
        index = raw.index.numpy()
        self.hashes.set_many(index, raw.shas)
        reasons = list(raw.reasons)
        width, height = raw.width.numpy().copy(), raw.height.numpy().copy()
        slots: dict[int, torch.Tensor] = {}
        if raw.image_pos:
            on_device = raw.images.to(dev, non_blocking=True)  # pinned by the loader on CUDA
            slots.update(zip(raw.image_pos, on_device, strict=True))
        shapes = [(int(width[p]), int(height[p])) for p in raw.jpeg_pos]
        results = self.decoder(raw.jpegs, shapes)
        for pos, data, result in zip(raw.jpeg_pos, raw.jpegs, results, strict=True):
            if isinstance(result, torch.Tensor):
                slots[pos] = result
                self.decoded["device"] += 1
                continue
            try:  # the Pillow path, for its image or its reason
                arr, width[pos], height[pos] = load_for_model(data, self.size, self.channels)
            except BadImage as exc:
                reasons[pos] = str(exc)
                continue
            slots[pos] = torch.from_numpy(arr).permute(2, 0, 1).to(dev)
            self.decoded["pillow"] += 1
        self.decoded["pillow"] += len(raw.image_pos)
        ok = [p for p in range(len(index)) if reasons[p] == ""]
        for p in range(len(index)):
            if reasons[p]:
                self.skipped.append({"path": str(self.paths[index[p]]), "reason": reasons[p]})
        if not ok:
            return None
        images = torch.stack([slots[p] for p in ok])
        return ImageBatch(images, index[ok], width[ok], height[ok])


def _unwrapped(loader: torch.utils.data.DataLoader) -> Iterator[Any]:
    """The loader's batches; a worker's failure becomes one line (``worker_failure``)."""
    try:
        yield from loader
    except Exception as exc:
        failure = worker_failure(exc)
        if failure is None:
            raise
        raise failure from exc


class _RowWriter:
    """Appends float16 rows to a .npy on disk (plain writes: flat memory) or to a list in memory."""

    def __init__(self, path: Path | None) -> None:
        self.parts: list[np.ndarray] = []
        self.file = NpyRows(path, np.float16) if path is not None else None

    def add(self, rows: np.ndarray) -> None:
        rows = rows.astype(np.float16)
        if self.file is None:
            self.parts.append(rows)
        else:
            self.file.append(rows)

    def finish(self, width: int) -> np.ndarray:
        if self.file is None:
            return np.concatenate(self.parts) if self.parts else np.zeros((0, width), np.float16)
        path = self.file.close(row_shape=(width,))
        return np.load(path, mmap_mode="r")  # read-only: a map never writes, so never SIGBUS

    def abort(self) -> None:
        if self.file is not None:
            self.file.abort()


@dataclass
class Predictions:
    """What inference produces for one data set."""

    #: The predictions table's rows; ``table`` builds the whole table from them on first use.
    rows: PredictionRows
    probabilities: np.ndarray  # float16 [n, n_classes]
    embeddings: np.ndarray  # float16 [n, d]
    skipped: list[dict[str, str]]
    device: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    embedding_source: str = "penultimate"
    #: sha256 of every listed file (data-set order; None: unreadable): the ones given to
    #: ``predict``, else those of the bytes it decoded (as ``Digests``).
    hashes: Sequence[str | None] = field(default_factory=list)
    _table: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """The predictions table (ARCHITECTURE.md), built on first use. In memory,
        ``topk_idx``/``topk_prob`` and ``file_sha256`` are Arrow-backed (cells are lists and
        str; a missing hash is ``pd.NA``); the stored ``predictions.parquet`` reads back as
        numpy arrays, str and None."""
        if self._table is None:
            self._table = self.rows.frame()
        return self._table


def predict(
    model: nn.Module,
    card: ModelCard,
    image_set: ImageSet,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    hashes: Sequence[str | None] | None = None,
    out_dir: Path | None = None,
    progress: bool = False,
    decode: str = "auto",
) -> Predictions:
    """Run the model over every image of the set; unreadable images are skipped with a reason.

    With ``out_dir``, probabilities and embeddings stream to ``probabilities.npy`` and
    ``embeddings.npy`` there (memory stays flat however large the set). Without ``hashes``, each
    file's sha256 is taken from the bytes read for decoding (``Predictions.hashes``), so a set is
    read once, not once to hash and again to decode. ``decode``: ``auto`` (JPEGs decoded on the
    GPU with nvJPEG on CUDA, Pillow elsewhere), ``cpu`` (Pillow in the workers) or ``device``
    (``audits.device_decode``); the path that ran is ``Predictions.device["decode"]``.
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    batch_size = resolve_batch_size(batch_size, card)
    if workers is not None and workers < 0:
        raise AuditError(f"--workers {workers}: must be 0 or more (0 reads images in this process)")
    items = image_set.items
    path_list = items["path"].tolist()
    decode_path, decode_why = choose_decode(decode, dev, path_list)
    predictor = BatchPredictor(model, card, dev)
    batches = ImageBatches(
        image_set.root,
        path_list,
        card,
        dev,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        desc=f"{card.name} {card.version}",
        decoder=DeviceDecoder(dev, card.size, card.channels) if decode_path == "device" else None,
    )
    outputs = Outputs(card, label_indices(items["label"], card.classes), out_dir)
    started = time.perf_counter()
    paths = batches.paths
    try:
        if dev.type == "cuda":
            # cuda:N made current, so the loop's events and streams are that device's.
            with torch.cuda.device(dev):
                _overlapped(batches, predictor, outputs, paths, dev)
        else:  # the CPU loop as it always was: results bit for bit the same
            for batch in batches:
                logits, emb = predictor(batch.images)
                check_finite(logits, emb, batch, paths, predictor.label)
                outputs.add(batch, logits, emb)
    except BaseException:
        outputs.abort()  # close the half-written arrays; the caller removes their folder
        raise
    finally:
        predictor.close()
    elapsed = time.perf_counter() - started
    if hashes is None:
        hashes = batches.hashes
    return Predictions(
        hashes=hashes,
        rows=outputs.rows(items, card, hashes),
        probabilities=outputs.probabilities.finish(len(card.classes)),
        embeddings=outputs.embeddings.finish(outputs.emb_dim),
        skipped=batches.skipped,
        device={
            **describe_device(dev, predictor.amp),
            "decode": {
                "path": decode_path,
                "requested": decode,
                "why": decode_why,
                "device_images": batches.decoded["device"],
                "pillow_images": batches.decoded["pillow"],
            },
        },
        timings={
            "inference_s": round(elapsed, 4),
            "images_per_s": round(len(items) / elapsed, 2) if elapsed > 0 else 0.0,
        },
        embedding_source=predictor.embedding_source,
    )


def _overlapped(
    batches: Iterable[ImageBatch],
    predictor: BatchPredictor,
    outputs: Outputs,
    paths: list[str],
    device: torch.device,
) -> None:
    """The CUDA loop: copies, forward passes and the bookkeeping of the batch before overlap.

    A batch still on the CPU (pinned by the loader) is copied on a side stream one batch ahead,
    so its copy runs while the previous batch's forward pass does. Each batch's outputs come
    back with a non-blocking copy into pinned memory and an event; the rows of batch k are
    written while batch k+1's forward pass runs, so the GPU is not left idle during them."""
    pending: tuple[ImageBatch, torch.Tensor, torch.Tensor, torch.cuda.Event] | None = None
    for batch in _copied_ahead(batches, device):
        logits, emb = predictor(batch.images)
        host_logits, host_emb = _pinned_like(logits), _pinned_like(emb)
        host_logits.copy_(logits, non_blocking=True)
        host_emb.copy_(emb, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(device))
        if pending is not None:
            _finish(pending, outputs, paths, predictor.label)
        pending = (batch, host_logits, host_emb, done)
    if pending is not None:
        _finish(pending, outputs, paths, predictor.label)


def _pinned_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, pin_memory=True)


def _finish(
    pending: tuple[ImageBatch, torch.Tensor, torch.Tensor, torch.cuda.Event],
    outputs: Outputs,
    paths: list[str],
    label: str,
) -> None:
    batch, logits, emb, done = pending
    done.synchronize()  # this batch's copies only, not the forward pass queued after it
    check_finite(logits, emb, batch, paths, label)
    outputs.add(batch, logits, emb)


def _copied_ahead(batches: Iterable[ImageBatch], device: torch.device) -> Iterator[ImageBatch]:
    """Batches with their images on ``device``; CPU images are copied on a side stream one
    batch ahead (the device-decode path's batches are already there and pass straight on)."""
    stream = torch.cuda.Stream(device)
    ahead: tuple[ImageBatch, torch.cuda.Event] | None = None
    for batch in batches:
        if batch.images.device.type != "cpu":  # decoded on the device: nothing to copy
            if ahead is not None:
                yield _arrived(*ahead)
                ahead = None
            yield batch
            continue
        with torch.cuda.stream(stream):
            moved = batch.images.to(device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(stream)
        if ahead is not None:
            yield _arrived(*ahead)
        ahead = (dataclasses.replace(batch, images=moved), ready)
    if ahead is not None:
        yield _arrived(*ahead)


def _arrived(batch: ImageBatch, ready: torch.cuda.Event) -> ImageBatch:
    current = torch.cuda.current_stream(batch.images.device)
    current.wait_event(ready)
    # Allocated on the side stream, used on this one: keep the allocator from reusing it early.
    batch.images.record_stream(current)
    return batch


def label_indices(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Each label's position in ``classes``; -1 for a missing or unknown label."""
    class_index = {c: i for i, c in enumerate(classes)}
    return np.array(
        [class_index.get(lab, -1) if lab is not None else -1 for lab in labels], dtype=np.int64
    )


class Outputs:
    """What ``predict`` gathers batch by batch: per-row columns, image sizes and the arrays.

    The per-row columns are allocated once for the whole set and filled by position: kept
    per-batch pieces would pin the heap between the model's freed activations, and the
    process would grow with the set (a tiny model over 200,000 images: 455 MB more, 426 MB of
    it freed but never returned)."""

    def __init__(self, card: ModelCard, label_idx: np.ndarray, out_dir: Path | None) -> None:
        n = len(label_idx)
        self.k = k = min(TOP_K, len(card.classes))
        self.label_idx = label_idx
        self.order = np.zeros(n, dtype=np.int64)  # data-set positions, in reading order
        self.filled = 0
        self.pred_idx = np.zeros(n, dtype=np.int64)
        self.confidence = np.zeros(n, dtype=np.float32)
        self.loss = np.zeros(n, dtype=np.float32)
        self.topk_idx = np.zeros((n, k), dtype=np.int64)
        self.topk_prob = np.zeros((n, k), dtype=np.float32)
        self.width = np.zeros(n, dtype=np.int64)
        self.height = np.zeros(n, dtype=np.int64)
        self.probabilities = _RowWriter(out_dir / "probabilities.npy" if out_dir else None)
        self.embeddings = _RowWriter(out_dir / "embeddings.npy" if out_dir else None)
        self.emb_dim = 0

    def add(self, batch: ImageBatch, logits: torch.Tensor, emb: torch.Tensor) -> None:
        """Top-k, confidence and loss (NaN without a known label) of one batch's logits."""
        idx = batch.index
        self.width[idx] = batch.width
        self.height[idx] = batch.height
        log_p = torch.log_softmax(logits, dim=1)
        probs = log_p.exp()
        top_p, top_i = probs.topk(self.k, dim=1)
        labels = torch.from_numpy(self.label_idx[idx]).to(log_p.device)
        picked = log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
        row_loss = torch.where(labels >= 0, -picked, torch.full_like(picked, float("nan")))
        top_i_np, top_p_np = top_i.cpu().numpy(), top_p.cpu().numpy()
        self.order[self.filled : self.filled + len(idx)] = idx
        self.filled += len(idx)
        self.pred_idx[idx] = top_i_np[:, 0]
        self.confidence[idx] = top_p_np[:, 0]
        self.loss[idx] = row_loss.cpu().numpy()
        self.topk_idx[idx] = top_i_np
        self.topk_prob[idx] = top_p_np
        self.probabilities.add(probs.cpu().numpy())
        emb_np = emb.cpu().numpy()
        self.emb_dim = emb_np.shape[1]
        self.embeddings.add(emb_np)

    def abort(self) -> None:
        self.probabilities.abort()
        self.embeddings.abort()

    def rows(
        self, items: pd.DataFrame, card: ModelCard, hashes: Sequence[str | None] | None
    ) -> PredictionRows:
        """The predictions table's rows (one per readable image, in reading order), not yet
        built into a frame."""
        return PredictionRows(self, items, card, hashes)

    def table(
        self, items: pd.DataFrame, card: ModelCard, hashes: Sequence[str | None] | None
    ) -> pd.DataFrame:
        """The predictions table: one row per readable image, in reading order."""
        return self.rows(items, card, hashes).frame()


class PredictionRows:
    """The predictions table before it is built: the columns ``Outputs`` filled, the manifest
    and the hashes, with the order of the readable rows. ``frame(start, stop)`` builds one
    slice of the table. Neither the metrics (``metric_table``: four numeric columns) nor
    storing it (``write_predictions``, a row group at a time) needs the whole table, so an
    audit builds it only when an analysis asks (``Predictions.table``)."""

    def __init__(
        self,
        outputs: Outputs,
        items: pd.DataFrame,
        card: ModelCard,
        hashes: Sequence[str | None] | None,
    ) -> None:
        self.outputs = outputs
        self.items = items
        self.hashes = hashes
        self.classes = np.asarray(card.classes, dtype=object)
        self.order = outputs.order[: outputs.filled]
        # Every row, in data-set order (the local engine's usual case): slices are views.
        self.in_place = outputs.filled == len(outputs.pred_idx) and bool(
            (self.order == np.arange(outputs.filled)).all()
        )
        extra = [c for c in items.columns if c not in ("path", "label")]
        self.columns = [*TABLE_COLUMNS, *extra]

    def __len__(self) -> int:
        return len(self.order)

    def _at(self, values: np.ndarray, start: int, stop: int) -> np.ndarray:
        return values[start:stop] if self.in_place else values[self.order[start:stop]]

    def column(self, name: str, start: int = 0, stop: int | None = None) -> Any:
        """One column of rows ``start:stop`` (default all), in the form the table holds it."""
        stop = len(self) if stop is None else min(stop, len(self))
        start = min(start, stop)
        n = stop - start
        out = self.outputs
        if name == "row":
            return np.arange(start, stop, dtype=np.int64)
        if name in ("path", "label") or name not in TABLE_COLUMNS:
            return self.items[name].to_numpy()[self.order[start:stop]]
        if name == "pred":
            return self.classes[self._at(out.pred_idx, start, stop)] if n else np.zeros(0, object)
        if name == "correct":
            p_idx, l_idx = (
                self.column("pred_idx", start, stop),
                self.column("label_idx", start, stop),
            )
            return (p_idx == l_idx) & (l_idx >= 0)
        if name in ("topk_idx", "topk_prob"):
            # Arrow-backed: two buffers per column, not two numpy arrays per row.
            return list_column(self._at(getattr(out, name), start, stop)) if n else []
        if name == "file_sha256":
            return _sha_column(self.hashes, self.order[start:stop])
        return self._at(getattr(out, name), start, stop)  # a numeric column of Outputs

    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Rows ``start:stop`` (default all) of the predictions table."""
        return pd.DataFrame({name: self.column(name, start, stop) for name in self.columns})

    def metric_table(self) -> pd.DataFrame:
        """The columns ``audits.metrics.audit_metrics`` reads, without the rest of the table."""
        return pd.DataFrame(
            {
                name: self.column(name)
                for name in ("label_idx", "pred_idx", "confidence", "topk_idx")
            }
        )

    def n_labelled(self) -> int:
        return int((self.column("label_idx") >= 0).sum())


def _sha_column(hashes: Sequence[str | None] | None, rows: np.ndarray) -> Any:
    """The table's ``file_sha256``: from ``Digests`` an Arrow string column (no Python string
    per row), else the given hex strings."""
    if isinstance(hashes, Digests) and len(rows):
        return string_column(hashes.to_arrow(rows))
    return [hashes[i] for i in rows] if hashes is not None else [None] * len(rows)


def describe_device(device: torch.device, amp: torch.dtype | None) -> dict[str, Any]:
    """What ran the inference, for the run's record."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "type": device.type,
        "name": name,
        "torch": torch.__version__.split("+")[0],
        "threads": torch.get_num_threads(),
        "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "none"),
    }


def cpu_name(fallback: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``); else ``fallback``, else the platform's word."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return fallback or platform.processor() or "cpu"
