"""`load_dataset`: one entry point that dispatches on `DataConfig.source`."""

from __future__ import annotations

from pathlib import Path

from hpsearch.config import DataConfig
from hpsearch.data.builtin import load_blobs, load_digits, load_mnist1d, load_spiral
from hpsearch.data.cifar import load_cifar10
from hpsearch.data.datasets import Dataset
from hpsearch.data.files import load_csv, load_npz
from hpsearch.data.paths import resolve_data_path
from hpsearch.errors import DataError

__all__ = ["load_dataset"]


def load_dataset(config: DataConfig, data_root: Path) -> Dataset:
    """The data set `config` describes, split into train / val (/ test).

    Built-in sources (`spiral`, `blobs`, `digits`, `mnist1d`) ignore `data_root`; file
    sources read `config.path` inside it (see `resolve_data_path`).
    Raises `DataError` for any missing, malformed or out-of-root input.
    """
    if config.source == "spiral":
        return load_spiral(config)
    if config.source == "blobs":
        return load_blobs(config)
    if config.source == "digits":
        return load_digits(config)
    if config.source == "mnist1d":
        return load_mnist1d(config)
    if not config.path:
        raise DataError(f"data.path is required for source {config.source!r}")
    if config.source == "cifar10":
        return load_cifar10(Path(data_root), config.path, config)
    path = resolve_data_path(Path(data_root), config.path)
    if not path.is_file():
        raise DataError(f"data path {config.path!r} must be a file for source {config.source!r}")
    if config.source == "npz":
        return load_npz(path, config)
    if config.source == "csv":
        return load_csv(path, config)
    raise DataError(f"unknown data source {config.source!r}")
