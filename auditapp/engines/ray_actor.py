"""The Ray actor that runs the model: it loads the model once and, per call, takes one or more
whole audit batches (row numbers and paths), reads each file once (sha256 of its bytes, then
decode), preprocesses and runs ``BatchPredictor``.

It runs in Ray's worker processes and is kept warm between audits (``ray_pool``). A call's
output is columnar numpy, never a Python object per row, so it crosses the object store without
per-row pickling: ``row``, ``ok``, ``width``, ``height``, ``sha256`` (raw 32-byte digests,
``uint8 [n, 32]``) with ``hashed`` (False where the file could not be read), float32
``logits``/``emb`` (zeros for an unreadable row); ``bad`` lists ``(row, reason)`` of the rows
that could not be decoded and ``error`` is the model's failure on a batch, or "". The driver turns
them into the run's table and arrays with the local engine's own code.
"""

from __future__ import annotations

import time

#: When this module's import began in the worker (before torch): ``begin`` reports how long the
#: actor's start took, imports and then the model.
_IMPORTED_AT = time.perf_counter()

import hashlib  # noqa: E402 - after the clock above
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import audits.tv  # noqa: E402, F401 - the torchvision workaround before any model code imports it
from auditapp.engines.ray_pool import pool_key  # noqa: E402
from audits.errors import AuditError  # noqa: E402
from audits.images import BadImage, load_for_model, read_file  # noqa: E402
from audits.inference import BatchPredictor, describe_device, resolve_device  # noqa: E402
from audits.model_card import ModelCard, load_model  # noqa: E402

#: Test hook of the fault suite: ``<batch>:<marker file>`` makes the actor that receives that
#: audit batch kill its own process (SIGKILL) once, to prove Ray retries it without losing or
#: duplicating rows. Unset in normal use.
FAULT_ENV = "AUDITS_RAY_KILL_AT_BATCH"


class AuditActor:
    """One model on one device, kept between audits of the same model (``ray_pool``)."""

    def __init__(
        self,
        card: ModelCard,
        device: str,
        model: nn.Module | None = None,
        allow_pickle: bool = False,
        decode_threads: int = 1,
        key: str = "",
        placement: dict[str, Any] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.device = resolve_device(device)
        if model is None:  # a model folder: each actor builds it from the card on its device
            model = load_model(card, self.device, allow_pickle=allow_pickle)
        self.card = card
        # A kept actor's key from the weights and code as it loaded them (``ray_pool``), not
        # the one it was sent: the driver refuses an actor whose key is not this audit's.
        self.key = pool_key(card, **placement) if placement is not None else key
        self.predictor = BatchPredictor(model, card, self.device)
        # The embedding width, so that a batch of unreadable images has the right shape.
        blank = torch.zeros(1, card.channels, *card.size, dtype=torch.uint8)
        self.emb_dim = int(self.predictor(blank)[1].shape[1])
        self.pool = ThreadPoolExecutor(max(1, decode_threads)) if decode_threads > 1 else None
        self.described = json.dumps(describe_device(self.device, self.predictor.amp))
        self.audits = 0
        self.calls = 0
        self.start_s = {
            "imports_s": round(started - _IMPORTED_AT, 3),
            "model_s": round(time.perf_counter() - started, 3),
        }

    def begin(self) -> dict[str, Any]:
        """Called once per audit before its first batch: who this actor is and how many audits
        it has served (the driver records whether the pool was reused)."""
        import ray

        self.audits += 1
        return {
            "actor_id": ray.get_runtime_context().get_actor_id(),
            "pid": os.getpid(),
            "key": self.key,
            "audits": self.audits,
            "device": self.described,
            **self.start_s,
        }

    def run(self, root: str, rows: np.ndarray, batches: np.ndarray, paths: list[str]) -> dict:
        """Whole audit batches in (``rows``/``batches``/``paths`` aligned, batch ids ascending);
        one output row per input row, in the same order."""
        self.calls += 1
        parts = []
        for b in dict.fromkeys(batches.tolist()):
            at = np.flatnonzero(batches == b)
            parts.append(self._one_batch(root, int(b), rows[at], [paths[i] for i in at]))
        error = next((p["error"] for p in parts if p["error"]), "")
        return {
            **{key: np.concatenate([p[key] for p in parts]) for key in _ARRAYS},
            "bad": [item for p in parts for item in p["bad"]],
            "error": error,
        }

    def _one_batch(self, root: str, batch_id: int, rows: np.ndarray, paths: list[str]) -> dict:
        _maybe_fault(batch_id)
        files = [os.path.join(root, p) for p in paths]
        read = list(self.pool.map(self._read, files) if self.pool else map(self._read, files))
        n, c = len(rows), len(self.card.classes)
        ok = np.array([r[0] is not None for r in read], dtype=bool)
        digests = np.zeros((n, 32), dtype=np.uint8)
        hashed = np.zeros(n, dtype=bool)
        for i, r in enumerate(read):
            if r[4] is not None:
                digests[i] = np.frombuffer(r[4], dtype=np.uint8)
                hashed[i] = True
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
            "row": np.asarray(rows, dtype=np.int64),
            "ok": ok,
            "width": np.array([r[1] for r in read], dtype=np.int64),
            "height": np.array([r[2] for r in read], dtype=np.int64),
            "sha256": digests,
            "hashed": hashed,
            "logits": logits,
            "emb": emb,
            "bad": [(int(rows[i]), read[i][3]) for i in np.flatnonzero(~ok)],
            "error": error,
        }

    def _read(self, path: str) -> tuple[np.ndarray | None, int, int, str, bytes | None]:
        """(HxWxC uint8 or None, width, height, reason, sha256 digest): the file read once.
        The digest is the local engine's ``bytes_sha256`` as 32 raw bytes (no str per row)."""
        try:
            data = read_file(Path(path))
        except BadImage as exc:
            return None, 0, 0, str(exc), None
        sha = hashlib.sha256(data).digest()
        try:
            arr, width, height = load_for_model(data, self.card.size, self.card.channels)
        except BadImage as exc:
            return None, 0, 0, str(exc), sha
        return arr, width, height, "", sha


#: The per-row columns of a call's output.
_ARRAYS = ("row", "ok", "width", "height", "sha256", "hashed", "logits", "emb")


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
