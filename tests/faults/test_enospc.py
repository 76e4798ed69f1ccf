"""A full disk and the file-size limit: one clear line, exit 2, the store unchanged.

Arrays used to be written through writable memory maps, so a full disk killed the run with
SIGBUS and no message; ``ulimit -f`` leaked a DataLoader worker's traceback. Each case here is
real: a small tmpfs (when this machine lets us mount one) or ``RLIMIT_FSIZE`` in the child
process (works for any user).
"""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import numpy as np
import pytest

from audits.npy_writer import HEADER_BYTES, NpyRows
from tests.builders import make_manifest, make_model_dir
from tests.faults.faultkit import CLASSES, listing, one_line_error, run_cli, tmpfs

#: Images in the set: float16 embeddings of 300 x 16 are 9.6 KB, over the limits below.
N_PER_CLASS = 100
LIMIT_BYTES = 8 * 1024


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("enospc")
    model = make_model_dir(root / "model", classes=CLASSES)
    data = make_manifest(root / "data", CLASSES, per_class=N_PER_CLASS)
    return model, data


def _file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


def _run(model: Path, data: Path, store: Path, *extra: str, preexec=None):  # noqa: ANN001, ANN202
    return run_cli(
        ["run", "--model", str(model), "--data", str(data), "--store", str(store), "--quiet",
         "--device", "cpu", "--batch-size", "64", *extra],
        preexec=preexec,
    )  # fmt: skip


def _check_clean_failure(result, store: Path, before: list[str]) -> str:  # noqa: ANN001
    assert result.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert result.returncode == 2, result.stderr
    line = one_line_error(result.stderr)
    assert "a bug" not in line
    assert "nothing was stored" in line
    assert listing(store) == before, "the store changed"
    return line


@pytest.mark.parametrize("free_kb", [16, 20])
def test_full_disk_is_one_line_and_leaves_the_store(tmp_path, case, free_kb):
    """16 KB free: the old memory-mapped embeddings died of SIGBUS (and left a temporary
    folder); 20 KB: they fit and the Parquet writer met the full disk."""
    model, data = case
    mount = tmp_path / "disk"
    with tmpfs(mount, "256k") as mounted:
        if not mounted:
            pytest.skip("no tmpfs can be mounted here (needs root); the ulimit case covers EFBIG")
        store = mount / "store"
        store.mkdir()
        (store / "keep.txt").write_text("x")
        stat = os.statvfs(mount)
        free = stat.f_bavail * stat.f_frsize
        (mount / "filler").write_bytes(b"\0" * (free - free_kb * 1024))
        before = listing(store)
        result = _run(model, data, store, "--workers", "0")
        line = _check_clean_failure(result, store, before)
    assert str(store) in line and "no space left on the device" in line


def test_file_size_limit_is_one_line_and_leaves_the_store(tmp_path, case):
    model, data = case
    store = tmp_path / "store"
    store.mkdir()
    before = listing(store)
    result = _run(model, data, store, "--workers", "0", preexec=_file_limit)
    line = _check_clean_failure(result, store, before)
    assert str(store) in line and "file too large" in line and "ulimit -f" in line


def test_file_size_limit_in_a_dataloader_worker_is_one_line(tmp_path, case):
    """A worker cannot hand a batch over in shared memory past ``ulimit -f``."""
    model, data = case
    store = tmp_path / "store"
    store.mkdir()
    before = listing(store)
    result = _run(model, data, store, "--workers", "1", preexec=_file_limit)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result.stderr)
    assert "DataLoader worker" in line and "File too large" in line and "--workers 0" in line
    assert "Original Traceback" not in result.stderr
    assert listing(store) == before


def test_streamed_rows_equal_numpy_save(tmp_path):
    """The plain-write .npy equals numpy's own file for the same array (header aside)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(1000, 37)).astype(np.float16)
    writer = NpyRows(tmp_path / "streamed.npy", np.float16)
    for start in range(0, 1000, 64):
        writer.append(rows[start : start + 64])
    writer.close()
    np.save(tmp_path / "numpy.npy", rows)
    streamed = np.load(tmp_path / "streamed.npy")
    assert streamed.dtype == np.float16 and streamed.shape == (1000, 37)
    np.testing.assert_array_equal(streamed, rows)
    # Same data bytes after the header; the header differs only in its padding.
    ours, theirs = (tmp_path / "streamed.npy").read_bytes(), (tmp_path / "numpy.npy").read_bytes()
    assert ours[HEADER_BYTES:] == theirs[len(theirs) - rows.nbytes :]


def test_rows_put_at_positions_leave_gaps_as_fill(tmp_path):
    """Heatmaps of unreadable images stay NaN, as the memory-mapped file had them."""
    maps = np.arange(5 * 2 * 3 * 3, dtype=np.float16).reshape(5, 2, 3, 3)
    writer = NpyRows(tmp_path / "h.npy", np.float16, row_shape=(2, 3, 3), fill=np.nan)
    writer.put(np.array([1, 2, 5]), maps[:3])
    writer.put(np.array([6]), maps[3:4])
    writer.close(rows=9)
    expected = np.full((9, 2, 3, 3), np.nan, dtype=np.float16)
    expected[[1, 2, 5, 6]] = maps[:4]
    np.testing.assert_array_equal(np.load(tmp_path / "h.npy"), expected)


def test_a_failed_write_raises_and_close_keeps_that_error(tmp_path, monkeypatch):
    """ENOSPC from ``write`` is an OSError (no SIGBUS); a later close() does not mask it."""
    writer = NpyRows(tmp_path / "x.npy", np.float16)
    writer.append(np.zeros((2, 4)))

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device", str(tmp_path / "x.npy"))

        def close(self) -> None:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_file", FullDisk())
    with pytest.raises(OSError) as info:
        writer.append(np.zeros((2, 4)))
    assert info.value.errno == 28
    assert writer.close() == tmp_path / "x.npy"  # nothing more written, nothing raised
