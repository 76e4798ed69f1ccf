"""Batched, streaming inference: predictions, top-5, losses and penultimate embeddings.

``BatchPredictor`` is a pure function over a batch of decoded uint8 images (the unit a
distributed engine such as Ray Data's ``map_batches`` would call); ``predict`` streams an
``ImageSet`` through it with a DataLoader, so memory holds only a few batches of images.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from audits.datasets import ImageSet
from audits.errors import AuditError
from audits.images import BadImage, load_for_model
from audits.model_card import ModelCard

TOP_K = 5


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AuditError(
            "--device cuda: no CUDA device is available here; use --device cpu or auto"
        )
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise AuditError(f"--device {device}: expected auto, cpu or cuda")
    return torch.device(device)


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


class BatchPredictor:
    """Callable over uint8 NCHW batches: normalise on the device, forward, capture embeddings."""

    def __init__(self, model: nn.Module, card: ModelCard, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.amp = amp_dtype(device)
        self.channels_last = device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        shape = (1, card.channels, 1, 1)
        self.mean = torch.tensor(card.mean, device=device).view(shape) * 255.0
        self.std = torch.tensor(card.std, device=device).view(shape) * 255.0
        self._captured: torch.Tensor | None = None
        head = classifier_head(model, len(card.classes))
        self.embedding_source = "penultimate" if head is not None else "logits"
        self._hook = head.register_forward_pre_hook(self._capture) if head is not None else None

    def _capture(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._captured = args[0]

    def close(self) -> None:
        """Release the hook (the model stays usable)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def normalise(self, batch_u8: torch.Tensor) -> torch.Tensor:
        x = batch_u8.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x.float() - self.mean) / self.std

    @torch.inference_mode()
    def __call__(self, batch_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (float32 logits, float32 embeddings) for a uint8 NCHW batch."""
        x = self.normalise(batch_u8)
        self._captured = None
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            logits = self.model(x)
        emb = self._captured if self._captured is not None else logits
        return logits.float(), emb.flatten(1).float()


class _Reader(torch.utils.data.Dataset):
    """Reads and decodes one image; failures come back as a reason, never an exception."""

    def __init__(self, root: Path, paths: list[str], size: tuple[int, int], channels: int) -> None:
        self.root, self.paths, self.size, self.channels = root, paths, size, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str, int, int]:
        blank = torch.zeros(self.channels, *self.size, dtype=torch.uint8)
        try:
            data = (self.root / self.paths[i]).read_bytes()
        except FileNotFoundError:
            return blank, i, "file not found", 0, 0
        except OSError as exc:
            return blank, i, f"cannot read file ({exc.strerror or exc})", 0, 0
        try:
            arr, width, height = load_for_model(data, self.size, self.channels)
        except BadImage as exc:
            return blank, i, str(exc), 0, 0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), i, "", width, height


class _RowWriter:
    """Appends float16 rows to a .npy on disk (flat memory) or to a list in memory."""

    def __init__(self, capacity: int, path: Path | None) -> None:
        self.capacity, self.path, self.n = capacity, path, 0
        self.parts: list[np.ndarray] = []
        self.mm: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        rows = rows.astype(np.float16)
        if self.path is None:
            self.parts.append(rows)
        else:
            if self.mm is None:
                self.mm = np.lib.format.open_memmap(
                    self.path, mode="w+", dtype=np.float16, shape=(self.capacity, rows.shape[1])
                )
            self.mm[self.n : self.n + len(rows)] = rows
        self.n += len(rows)

    def finish(self, width: int) -> np.ndarray:
        if self.path is None:
            return np.concatenate(self.parts) if self.parts else np.zeros((0, width), np.float16)
        if self.mm is None:
            np.save(self.path, np.zeros((0, width), np.float16))
        elif self.n < self.capacity:
            full = self.mm
            tmp = self.path.with_suffix(".trim.npy")
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float16, shape=(self.n, full.shape[1])
            )
            for start in range(0, self.n, 65536):
                stop = min(start + 65536, self.n)
                out[start:stop] = full[start:stop]
            out.flush()
            del out, full
            self.mm = None
            os.replace(tmp, self.path)
        else:
            self.mm.flush()
            self.mm = None
        return np.load(self.path, mmap_mode="r")


@dataclass
class Predictions:
    """What inference produces for one data set."""

    table: pd.DataFrame
    probabilities: np.ndarray  # float16 [n, n_classes]
    embeddings: np.ndarray  # float16 [n, d]
    skipped: list[dict[str, str]]
    device: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    embedding_source: str = "penultimate"


def default_workers(device: torch.device) -> int:
    cores = os.cpu_count() or 1
    return max(0, min(8, cores - 1)) if device.type == "cuda" else max(0, min(4, cores - 1))


def predict(
    model: nn.Module,
    card: ModelCard,
    image_set: ImageSet,
    device: str | torch.device = "auto",
    batch_size: int = 64,
    workers: int | None = None,
    hashes: list[str | None] | None = None,
    out_dir: Path | None = None,
    progress: bool = False,
) -> Predictions:
    """Run the model over every image of the set; unreadable images are skipped with a reason.

    With ``out_dir``, probabilities and embeddings stream to ``probabilities.npy`` and
    ``embeddings.npy`` there (memory stays flat however large the set).
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if batch_size < 1:
        raise AuditError("--batch-size must be at least 1")
    predictor = BatchPredictor(model, card, dev)
    items = image_set.items
    paths = items["path"].tolist()
    reader = _Reader(image_set.root, paths, card.size, card.channels)
    n_workers = default_workers(dev) if workers is None else workers
    loader = torch.utils.data.DataLoader(
        reader,
        batch_size=batch_size,
        shuffle=False,
        num_workers=n_workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )
    class_index = {c: i for i, c in enumerate(card.classes)}
    label_idx_all = np.array(
        [class_index.get(lab, -1) if lab is not None else -1 for lab in items["label"]],
        dtype=np.int64,
    )
    k = min(TOP_K, len(card.classes))

    kept: list[np.ndarray] = []
    pred_idx: list[np.ndarray] = []
    conf: list[np.ndarray] = []
    loss: list[np.ndarray] = []
    top_idx: list[np.ndarray] = []
    top_prob: list[np.ndarray] = []
    widths = np.zeros(len(paths), dtype=np.int64)
    heights = np.zeros(len(paths), dtype=np.int64)
    skipped: list[dict[str, str]] = []
    probs_out = _RowWriter(len(paths), out_dir / "probabilities.npy" if out_dir else None)
    emb_out = _RowWriter(len(paths), out_dir / "embeddings.npy" if out_dir else None)
    emb_dim = 0

    started = time.perf_counter()
    bar = tqdm(
        total=len(paths),
        unit="img",
        desc=f"{card.name} {card.version}",
        file=sys.stderr,
        disable=not progress,
    )
    try:
        for batch, index, reasons, width, height in loader:
            index = index.numpy()
            ok = np.array([r == "" for r in reasons], dtype=bool)
            for i, reason in zip(index[~ok], np.asarray(reasons, dtype=object)[~ok], strict=True):
                skipped.append({"path": paths[i], "reason": reason})
            bar.update(len(index))
            if not ok.any():
                continue
            idx = index[ok]
            widths[idx] = width.numpy()[ok]
            heights[idx] = height.numpy()[ok]
            logits, emb = predictor(batch[torch.from_numpy(ok)])
            log_p = torch.log_softmax(logits, dim=1)
            probs = log_p.exp()
            top_p, top_i = probs.topk(k, dim=1)
            labels = torch.from_numpy(label_idx_all[idx]).to(log_p.device)
            picked = log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
            row_loss = torch.where(labels >= 0, -picked, torch.full_like(picked, float("nan")))
            kept.append(idx)
            pred_idx.append(top_i[:, 0].cpu().numpy())
            conf.append(top_p[:, 0].cpu().numpy())
            loss.append(row_loss.cpu().numpy())
            top_idx.append(top_i.cpu().numpy())
            top_prob.append(top_p.cpu().numpy())
            probs_out.add(probs.cpu().numpy())
            emb_np = emb.cpu().numpy()
            emb_dim = emb_np.shape[1]
            emb_out.add(emb_np)
    finally:
        bar.close()
        predictor.close()
    elapsed = time.perf_counter() - started

    rows = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    table = _table(
        items,
        rows,
        label_idx_all,
        card,
        pred_idx,
        conf,
        loss,
        top_idx,
        top_prob,
        widths,
        heights,
        hashes,
    )
    probabilities = probs_out.finish(len(card.classes))
    embeddings = emb_out.finish(emb_dim)
    return Predictions(
        table=table,
        probabilities=probabilities,
        embeddings=embeddings,
        skipped=skipped,
        device=describe_device(dev, predictor.amp),
        timings={
            "inference_s": round(elapsed, 4),
            "images_per_s": round(len(paths) / elapsed, 2) if elapsed > 0 else 0.0,
        },
        embedding_source=predictor.embedding_source,
    )


def _table(
    items: pd.DataFrame,
    rows: np.ndarray,
    label_idx_all: np.ndarray,
    card: ModelCard,
    pred_idx: list[np.ndarray],
    conf: list[np.ndarray],
    loss: list[np.ndarray],
    top_idx: list[np.ndarray],
    top_prob: list[np.ndarray],
    widths: np.ndarray,
    heights: np.ndarray,
    hashes: list[str | None] | None,
) -> pd.DataFrame:
    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    classes = np.asarray(card.classes, dtype=object)
    p_idx = cat(pred_idx, np.int64)
    l_idx = label_idx_all[rows]
    meta = items.iloc[rows].reset_index(drop=True)
    table = pd.DataFrame(
        {
            "row": np.arange(len(rows), dtype=np.int64),
            "path": meta["path"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "label_idx": l_idx,
            "pred": classes[p_idx] if len(p_idx) else np.zeros(0, dtype=object),
            "pred_idx": p_idx,
            "confidence": cat(conf, np.float32),
            "loss": cat(loss, np.float32),
            "correct": (p_idx == l_idx) & (l_idx >= 0),
            "topk_idx": list(cat(top_idx, np.int64).reshape(len(rows), -1)) if len(rows) else [],
            "topk_prob": list(cat(top_prob, np.float32).reshape(len(rows), -1))
            if len(rows)
            else [],
            "width": widths[rows],
            "height": heights[rows],
            "file_sha256": [hashes[i] for i in rows] if hashes is not None else [None] * len(rows),
        }
    )
    for column in meta.columns:
        if column not in ("path", "label"):
            table[column] = meta[column].to_numpy()
    return table


def describe_device(device: torch.device, amp: torch.dtype | None) -> dict[str, Any]:
    """What ran the inference, for the run's record."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "type": device.type,
        "name": name,
        "torch": torch.__version__.split("+")[0],
        "threads": torch.get_num_threads(),
        "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "none"),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"
