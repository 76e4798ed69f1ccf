"""The Ray Data ``map_batches`` unit: one actor holds the model and, per audit batch, reads each
file once (sha256 of its bytes, then decode), preprocesses and runs ``BatchPredictor``.

It runs in Ray's worker processes. Its output per row: ``row``, ``batch``, ``ok``, ``reason``,
``width``, ``height``, ``sha256``, float32 ``logits``/``emb`` (zeros for an unreadable row),
``device`` (the actor's, on a batch's first row) and ``error`` (the model's failure, or "");
the driver turns them into the run's table and arrays with the local engine's own code.
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

import audits.tv  # noqa: F401 - the torchvision workaround before any model code imports it
from audits.errors import AuditError
from audits.hashing import bytes_sha256
from audits.images import BadImage, load_for_model, read_file
from audits.inference import BatchPredictor, describe_device, resolve_device
from audits.model_card import ModelCard, load_model

#: Test hook of the fault suite: ``<batch>:<marker file>`` makes the actor that receives that
#: audit batch kill its own process (SIGKILL) once, to prove Ray retries it without losing or
#: duplicating rows. Unset in normal use.
FAULT_ENV = "AUDITS_RAY_KILL_AT_BATCH"


class AuditActor:
    """Callable class for ``map_batches``: the model loaded once per actor."""

    def __init__(
        self,
        card: ModelCard,
        device: str,
        model: nn.Module | None = None,
        allow_pickle: bool = False,
        decode_threads: int = 1,
    ) -> None:
        self.device = resolve_device(device)
        if model is None:  # a model folder: each actor builds it from the card on its device
            model = load_model(card, self.device, allow_pickle=allow_pickle)
        self.card = card
        self.predictor = BatchPredictor(model, card, self.device)
        # The embedding width, so that a batch of unreadable images has the right shape.
        blank = torch.zeros(1, card.channels, *card.size, dtype=torch.uint8)
        self.emb_dim = int(self.predictor(blank)[1].shape[1])
        self.pool = ThreadPoolExecutor(max(1, decode_threads)) if decode_threads > 1 else None
        self.described = json.dumps(describe_device(self.device, self.predictor.amp))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One or more whole audit batches in; one output row per input row, same order."""
        ids = np.asarray(batch["batch"])
        parts = [
            self._one_batch(batch, np.flatnonzero(ids == b)) for b in dict.fromkeys(ids.tolist())
        ]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _one_batch(self, batch: dict[str, np.ndarray], at: np.ndarray) -> dict[str, np.ndarray]:
        _maybe_fault(int(batch["batch"][at[0]]))
        paths = [str(p) for p in batch["path"][at]]
        read = list(self.pool.map(self._read, paths) if self.pool else map(self._read, paths))
        n, c = len(at), len(self.card.classes)
        ok = np.array([r[0] is not None for r in read], dtype=bool)
        logits = np.zeros((n, c), dtype=np.float32)
        emb = np.zeros((n, self.emb_dim), dtype=np.float32)
        error = ""
        if ok.any():
            images = torch.from_numpy(np.stack([r[0] for r in read if r[0] is not None]))
            try:
                out, features = self.predictor(images.permute(0, 3, 1, 2).contiguous())
            except AuditError as exc:
                # Returned as data, not raised: Ray would wrap it in its own traceback (and
                # log the abort), and the driver must fail on it in batch order, as locally.
                error = str(exc)
            else:
                logits[ok] = out.cpu().numpy()
                emb[ok] = features.cpu().numpy()
        return {
            "row": np.asarray(batch["row"][at], dtype=np.int64),
            "batch": np.asarray(batch["batch"][at], dtype=np.int64),
            "ok": ok,
            "reason": np.array([r[3] for r in read], dtype=object),
            "width": np.array([r[1] for r in read], dtype=np.int64),
            "height": np.array([r[2] for r in read], dtype=np.int64),
            "sha256": np.array([r[4] for r in read], dtype=object),
            "logits": logits,
            "emb": emb,
            "device": np.array([self.described] + [""] * (n - 1), dtype=object),
            "error": np.array([error] * n, dtype=object),
        }

    def _read(self, path: str) -> tuple[np.ndarray | None, int, int, str, str | None]:
        """(HxWxC uint8 or None, width, height, reason, sha256): the file read once."""
        try:
            data = read_file(Path(path))
        except BadImage as exc:
            return None, 0, 0, str(exc), None
        sha = bytes_sha256(data)
        try:
            arr, width, height = load_for_model(data, self.card.size, self.card.channels)
        except BadImage as exc:
            return None, 0, 0, str(exc), sha
        return arr, width, height, "", sha


def _maybe_fault(batch_id: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    at, _, marker = spec.partition(":")
    if int(at) != batch_id or not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only the first time
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
