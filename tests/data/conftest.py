"""Factories for data-set tests: a data root and files written in each format."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.errors import DataError


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """An empty data root folder, with `tmp_path` itself outside it."""
    root = tmp_path / "root"
    root.mkdir()
    return root


def cifar_images(count: int, offset: int) -> np.ndarray:
    """Distinct uint8 (count, 3072) images: row i is (offset + i + column) % 256."""
    rows = np.arange(count)[:, None] + offset
    return ((rows + np.arange(3072)[None, :]) % 256).astype(np.uint8)


def write_cifar_binary(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """A binary batch: per record, one label byte then 3,072 pixel bytes."""
    records = np.concatenate([labels.astype(np.uint8)[:, None], images], axis=1)
    path.write_bytes(records.tobytes())


def write_cifar_python(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """A python batch as the official files store it: protocol 2, bytes keys."""
    batch = {
        b"batch_label": b"testing batch",
        b"labels": [int(label) for label in labels],
        b"data": images,
        b"filenames": [b"img_%d.png" % index for index in range(len(labels))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def folder_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def assert_refused(data_root: Path) -> Callable[..., DataError]:
    """Load `config`, expect a DataError matching `match`, and that nothing was written."""

    def check(config: DataConfig, match: str) -> DataError:
        before = folder_snapshot(data_root.parent)
        with pytest.raises(DataError, match=match) as caught:
            load_dataset(config, data_root)
        assert folder_snapshot(data_root.parent) == before
        return caught.value

    return check
