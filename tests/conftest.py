"""Shared test set-up: the torchvision workaround first, few threads, temp stores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

import audits.tv  # noqa: E402,F401 - must run before anything imports torchvision

torch.set_num_threads(2)


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"
