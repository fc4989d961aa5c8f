"""Shared pytest fixtures and markers."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The real datasets: $AUTOSAMPLE_DATA_DIR, else ../shared/data beside the project root."""
    return Path(os.environ.get("AUTOSAMPLE_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path} (set AUTOSAMPLE_DATA_DIR)")
    return path


def cuda_available() -> bool:
    import autosample_ext

    return torch.cuda.is_available() and autosample_ext.cuda_compiled()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device and a CUDA build")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cuda" in item.keywords and not cuda_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device and a CUDA build"))


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests run with the CI machine's thread count so results do not depend on the host."""
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)
