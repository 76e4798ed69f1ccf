"""Speed of two model versions, measured the same way on the same device in one process.

Both models are rebuilt from their runs' model folders (the weights and the architecture's
source must still hash to what the run recorded; ``allow_code_change`` times changed code,
recorded as ``code_changed``) and timed on the same decoded held-out images, kept in memory so decoding
and resizing are never timed. What is timed is what inference does per batch
(``BatchPredictor``: transfer, normalise, forward, with autocast on CUDA), followed by a device
synchronisation so asynchronous CUDA work is counted.

Noise control, because a shared CPU is noisy: a warm-up, then the models run in short blocks
(one untimed call, then a few timed ones, so every timed call follows a call of the same model
as in serving) and the blocks alternate A B, B A, ... so a burst of load from another process
hits both alike. Each model's time per call is the median over its calls, which ignores bursts.
On a CPU both run with one intra-op thread by default (see ``measure_speed``).
Latency is the median time of one image at batch size 1 (in ms); throughput is the batch size
over the median time of one batch (images/s). The B/A ratios come from pairs of adjacent blocks
(load that lasts longer than a block slows both and cancels in their ratio): each repeat gives
the median pair ratio, and the reported ratio is the median over repeats, with the
interquartile range as its spread. The ratios decide "no slower"; the per-model medians are
shown beside them.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from audits.errors import AuditError
from audits.progress import tracked
from audits.store import Run

if TYPE_CHECKING:  # torch is imported where it is used: reading a stored result needs none
    import torch

DEFAULT_IMAGES = 64
DEFAULT_LATENCY_IMAGES = 32
DEFAULT_BATCH_SIZE = 32
DEFAULT_REPEATS = 5
DEFAULT_MIN_TIME = 0.5  # seconds per measurement and model, at least
DEFAULT_CPU_THREADS = 1
MIN_CALLS = 8  # timed calls per model and repeat, at least
BLOCK = 4  # timed calls in a row per model, after one untimed call
SAMPLE_SEED = 20261123


@dataclass(frozen=True)
class ModelSpeed:
    """One model's measurements (medians over repeats) and size."""

    latency_ms: float  # median milliseconds per image at batch size 1
    latency_ms_iqr: tuple[float, float]
    throughput: float  # images per second at the batch size
    throughput_iqr: tuple[float, float]
    params: int | None = None
    weights_bytes: int | None = None
    latency_ms_repeats: tuple[float, ...] = ()
    throughput_repeats: tuple[float, ...] = ()


@dataclass(frozen=True)
class SpeedResult:
    """A against B. Ratios are B over A, medians of per-repeat ratios of adjacent runs."""

    a: ModelSpeed
    b: ModelSpeed
    latency_ratio: float  # > 1: B takes longer per image
    latency_ratio_iqr: tuple[float, float]
    throughput_ratio: float  # < 1: B processes fewer images per second
    throughput_ratio_iqr: tuple[float, float]
    device: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Whether either model's code changed since its audit (timed under --allow-code-change);
    #: None when a run recorded no code hash or nothing was rebuilt.
    code_changed: bool | None = None
    code_changes: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.code_changes:
            out.pop("code_changes")
        if self.settings.get("source") == "given":
            out.pop("code_changed")
        return out

    @classmethod
    def from_numbers(
        cls,
        latency_ms: tuple[float, float],
        throughput: tuple[float, float],
        params: tuple[int, int] | None = None,
    ) -> SpeedResult:
        """Measurements given rather than measured (tests, or numbers from a benchmark rig)."""

        def one(i: int) -> ModelSpeed:
            return ModelSpeed(
                latency_ms=float(latency_ms[i]),
                latency_ms_iqr=(float(latency_ms[i]), float(latency_ms[i])),
                throughput=float(throughput[i]),
                throughput_iqr=(float(throughput[i]), float(throughput[i])),
                params=None if params is None else int(params[i]),
            )

        lat = latency_ms[1] / latency_ms[0]
        thr = throughput[1] / throughput[0]
        return cls(one(0), one(1), lat, (lat, lat), thr, (thr, thr), settings={"source": "given"})


def _iqr(values: Sequence[float]) -> tuple[float, float]:
    q25, q75 = np.quantile(np.asarray(values, dtype=np.float64), [0.25, 0.75])
    return float(q25), float(q75)


def load_run_model(
    run: Run, device: torch.device, allow_pickle: bool = False, allow_code_change: bool = False
) -> tuple[Any, torch.nn.Module, list[dict[str, Any]] | None]:
    """The run's model card, module and code changes (None: not recorded), refusing weights
    that no longer match the run and, unless ``allow_code_change``, code that changed."""
    from audits.prepare import reopen_audited

    record = run.audit
    label = f"{record.model.name} {record.model.version}"
    if not record.model.dir:  # named by its folder here, by its run id below
        raise AuditError(
            f"{run.path}: the run does not record its model folder; cannot time {label} (use --no-speed)"
        )
    prepared = reopen_audited(
        record.as_dict(),
        run.run_id,
        device=device,
        allow_pickle=allow_pickle,
        purpose=f"time {label}",
        hint="audit it again, or use --no-speed",
        unusable_hint="compare without timing: --no-speed",
        with_data=False,
        allow_code_change=allow_code_change,
    )
    return prepared.card, prepared.model, prepared.code_changes


def _code_summary(
    per_run: list[tuple[str, list[dict[str, Any]] | None]],
) -> tuple[bool | None, tuple[dict[str, Any], ...]]:
    """(code_changed, the changes with their run): True if any changed, None if unknown."""
    changes = tuple({"run": run_id, **c} for run_id, found in per_run for c in found or [])
    if changes:
        return True, changes
    if any(found is None for _, found in per_run):
        return None, ()
    return False, ()


def load_images(
    root: Any, paths: Sequence[str], size: tuple[int, int], channels: int
) -> torch.Tensor:
    """Decode and resize images into one uint8 NCHW tensor (done once, never timed)."""
    import torch

    from audits.images import BadImage, load_for_model

    arrays = []
    for rel in paths:
        try:
            arr, _, _ = load_for_model((root / rel).read_bytes(), size, channels)
        except (OSError, BadImage):
            continue  # decoded fine during the audit; a file gone since is simply not timed
        arrays.append(torch.from_numpy(arr).permute(2, 0, 1))
    if not arrays:
        raise AuditError(
            f"{root}: none of the {len(paths)} sampled held-out images can be read now; use --no-speed"
        )
    return torch.stack(arrays).contiguous()


def sample_paths(paths: Sequence[str], n: int, seed: int = SAMPLE_SEED) -> list[str]:
    """A fixed sample of ``n`` paths (the same on every machine), in data-set order."""
    if len(paths) <= n:
        return list(paths)
    pick = np.sort(np.random.default_rng(seed).choice(len(paths), size=n, replace=False))
    return [paths[i] for i in pick]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _timed(
    call: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds for one call on ``clock``, device work included."""
    _sync(device)
    start = clock()
    call(x)
    _sync(device)
    return clock() - start


def interleaved_blocks(
    calls: tuple[Callable[[torch.Tensor], Any], Callable[[torch.Tensor], Any]],
    inputs: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    device: torch.device,
    min_time: float = 0.0,
    min_calls: int = 1,
    block: int = BLOCK,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[list[float]], list[list[float]]]:
    """Per-call seconds of A and B, in blocks of ``block`` calls, blocks in order A B, B A, ...

    Each block first makes one untimed call, so every timed call follows a call of the same
    model, as in serving (alternating single calls would time every other call with the other
    model's weights in the cache). Block ``i`` of A and block ``i`` of B are adjacent in time:
    compare them as a pair. Inputs are used in turn, round the list. Blocks repeat until each
    model has run ``min_time`` seconds and ``min_calls`` timed calls: a fast model's single
    pass is too short to time (as ``timeit`` repeats), and a median of two slow calls is no
    median.
    """
    blocks: tuple[list[list[float]], list[list[float]]] = ([], [])
    totals = [0.0, 0.0]
    n_inputs = min(len(inputs[0]), len(inputs[1]))
    position = 0
    while not blocks[0] or min(totals) < min_time or sum(map(len, blocks[0])) < min_calls:
        picks = [(position + j) % n_inputs for j in range(block + 1)]
        position = (position + block + 1) % n_inputs
        for m in (0, 1) if len(blocks[0]) % 2 == 0 else (1, 0):
            calls[m](inputs[m][picks[0]])  # warm-up: leave the other model's state behind
            times = [_timed(calls[m], inputs[m][i], device, clock) for i in picks[1:]]
            blocks[m].append(times)
            totals[m] += sum(times)
    return blocks


def _paired_ratio(blocks_a: list[list[float]], blocks_b: list[list[float]]) -> float:
    """B/A time: the median over adjacent block pairs of their median call times."""
    return statistics.median(
        statistics.median(tb) / statistics.median(ta)
        for ta, tb in zip(blocks_a, blocks_b, strict=True)
    )


def _flat(blocks: list[list[float]]) -> list[float]:
    return [t for b in blocks for t in b]


@dataclass
class _Timings:
    """Per repeat: each model's latency (ms) and throughput (images/s), and the B/A ratios."""

    latency: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))
    throughput: tuple[list[float], list[float]] = field(default_factory=lambda: ([], []))
    latency_ratio: list[float] = field(default_factory=list)
    throughput_ratio: list[float] = field(default_factory=list)


def _heldout_root(run: Run) -> Any:
    """The folder of the held-out set the run was audited on (its images are timed)."""
    from audits.datasets import load_dataset

    data_path = run.audit.dataset.path
    if not data_path:
        raise AuditError(
            f"{run.path}: the run does not record its held-out set's path; use --no-speed"
        )
    try:
        return load_dataset(data_path).root
    except AuditError as exc:
        raise AuditError(
            f"the held-out set is needed to time the models ({exc}); use --no-speed"
        ) from None


def _time_repeats(
    calls: tuple[Callable[[torch.Tensor], Any], Callable[[torch.Tensor], Any]],
    workloads: tuple[tuple[list[torch.Tensor], ...], tuple[list[torch.Tensor], ...]],
    device: torch.device,
    repeats: int,
    min_time: float,
    clock: Callable[[], float],
) -> _Timings:
    """Warm up, then ``repeats`` rounds of interleaved latency and throughput blocks.

    B/A per repeat is the median over pairs of adjacent blocks: load that lasts longer than a
    block slows both blocks of a pair and cancels in their ratio.
    """
    singles, batches = workloads
    n_lat, batch = len(singles[0]), len(batches[0][0])
    out = _Timings()
    # Warm-up: allocator, kernels, cuDNN autotuning, caches.
    interleaved_blocks(calls, singles, device)
    interleaved_blocks(calls, batches, device)
    for _ in tracked(range(repeats), repeats, "timing", unit="repeat"):
        ba, bb = interleaved_blocks(
            calls, singles, device, min_time, max(MIN_CALLS, n_lat), clock=clock
        )
        out.latency[0].append(1000.0 * statistics.median(_flat(ba)))
        out.latency[1].append(1000.0 * statistics.median(_flat(bb)))
        out.latency_ratio.append(_paired_ratio(ba, bb))
        ba, bb = interleaved_blocks(calls, batches, device, min_time, MIN_CALLS, clock=clock)
        out.throughput[0].append(batch / statistics.median(_flat(ba)))
        out.throughput[1].append(batch / statistics.median(_flat(bb)))
        out.throughput_ratio.append(1.0 / _paired_ratio(ba, bb))
    return out


def _workloads(
    inputs: list[torch.Tensor], latency_images: int, batch_size: int
) -> tuple[tuple[list[torch.Tensor], ...], tuple[list[torch.Tensor], ...]]:
    """Per model: single images for latency, and whole batches for throughput."""
    n = min(len(x) for x in inputs)
    n_lat = min(latency_images, n)
    batch = min(batch_size, n)
    singles = tuple([x[i : i + 1] for i in range(n_lat)] for x in inputs)
    batches = tuple([x[i * batch : (i + 1) * batch] for i in range(n // batch)] for x in inputs)
    return singles, batches


def _model_speed(timings: _Timings, m: int, size: tuple[int, int]) -> ModelSpeed:
    lat, thr = timings.latency[m], timings.throughput[m]
    return ModelSpeed(
        latency_ms=statistics.median(lat),
        latency_ms_iqr=_iqr(lat),
        throughput=statistics.median(thr),
        throughput_iqr=_iqr(thr),
        params=int(size[0]),
        weights_bytes=int(size[1]),
        latency_ms_repeats=tuple(round(v, 4) for v in lat),
        throughput_repeats=tuple(round(v, 2) for v in thr),
    )


def _settings(
    n_images: int, n_lat: int, batch: int, repeats: int, min_time: float, cpu_clock: bool
) -> dict[str, Any]:
    return {
        "source": "measured",
        "images": int(n_images),
        "latency_images": int(n_lat),
        "batch_size": int(batch),
        "repeats": int(repeats),
        "warmup": 1,
        "min_time_s": float(min_time),
        "order": f"blocks of 1 untimed + {BLOCK} timed calls per model, in order A B, B A, ...",
        "min_calls": MIN_CALLS,
        "clock": "thread CPU time" if cpu_clock else "wall time",
        "statistic": "per repeat: median call time, and B/A as the median over adjacent "
        "block pairs of their median call times; reported: medians over repeats",
    }


@contextlib.contextmanager
def _quiet_process(device: torch.device, threads: int | None) -> Iterator[bool]:
    """Fix the CPU thread count and hold the garbage collector while timing; yields whether
    the timing thread's CPU time is the clock (one CPU thread does all the work)."""
    import torch

    previous_threads = torch.get_num_threads()
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    # One CPU thread does all the work in this thread: its CPU time is the model's compute,
    # without the time the scheduler gave to other processes. Anything else is wall time.
    cpu_clock = device.type == "cpu" and torch.get_num_threads() == 1
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one model's call would bias that model
    try:
        yield cpu_clock
    finally:
        torch.set_num_threads(previous_threads)
        if gc_was_enabled:
            gc.enable()


def measure_speed(
    run_a: Run,
    run_b: Run,
    paths: Sequence[str],
    device: str | torch.device = "auto",
    n_images: int = DEFAULT_IMAGES,
    latency_images: int = DEFAULT_LATENCY_IMAGES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    repeats: int = DEFAULT_REPEATS,
    min_time: float = DEFAULT_MIN_TIME,
    threads: int | None = DEFAULT_CPU_THREADS,
    allow_pickle: bool = False,
    allow_code_change: bool = False,
) -> SpeedResult:
    """Time both runs' models on a fixed sample of ``paths`` (held-out images both runs decoded).

    On a CPU both models run with ``threads`` intra-op threads (None: leave torch's setting).
    One thread is the default because it is what makes the B/A ratio reproducible on a shared
    machine: with two threads on two busy cores a call waits whenever one of its threads is
    descheduled, and batch timings swing by a factor of two; with one they agree within ~1%.
    """
    import torch

    from audits.inference import BatchPredictor, describe_device, resolve_device

    if min(n_images, latency_images, batch_size, repeats) < 1:
        raise AuditError(
            "speed settings (images, latency images, batch size, repeats) must be at least 1"
        )
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    root = _heldout_root(run_a)
    sample = sample_paths(list(paths), n_images)
    predictors, sizes, inputs, code = [], [], [], []
    for run in (run_a, run_b):
        card, model, changes = load_run_model(run, dev, allow_pickle, allow_code_change)
        code.append((run.run_id, changes))
        predictors.append(BatchPredictor(model, card, dev))
        sizes.append((sum(p.numel() for p in model.parameters()), card.weights.stat().st_size))
        inputs.append(load_images(root, sample, card.size, card.channels))
    singles, batches = _workloads(inputs, latency_images, batch_size)
    try:
        with _quiet_process(dev, threads) as cpu_clock:
            device_info = describe_device(dev, predictors[0].amp)
            clock = time.thread_time if cpu_clock else time.perf_counter
            calls = (predictors[0], predictors[1])
            timings = _time_repeats(calls, (singles, batches), dev, repeats, min_time, clock)
    finally:
        for p in predictors:
            p.close()
    code_changed, code_changes = _code_summary(code)
    return SpeedResult(
        a=_model_speed(timings, 0, sizes[0]),
        b=_model_speed(timings, 1, sizes[1]),
        latency_ratio=statistics.median(timings.latency_ratio),
        latency_ratio_iqr=_iqr(timings.latency_ratio),
        throughput_ratio=statistics.median(timings.throughput_ratio),
        throughput_ratio_iqr=_iqr(timings.throughput_ratio),
        device=device_info,
        settings=_settings(
            len(inputs[0]), len(singles[0]), len(batches[0][0]), repeats, min_time, cpu_clock
        ),
        code_changed=code_changed,
        code_changes=code_changes,
    )
