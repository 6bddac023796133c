"""A data set loaded and preprocessed once, ready for training.

`prepare_data` loads the data set, fits the preprocessor on its training
split and transforms every split. `prepare_data_cached` keeps the last few
results per process, keyed by the JSON of both configs, the data root and
the size and modification time of the data file (or of every file in a
CIFAR-10 folder), so a worker that runs many trials on one data set loads
and preprocesses it once. Cached arrays are read-only: a trial that wants
to modify them must copy them first.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpsearch.config import DataConfig, PreprocessConfig
from hpsearch.data.datasets import Task
from hpsearch.data.loader import load_dataset
from hpsearch.data.paths import resolve_data_path
from hpsearch.data.preprocess import Preprocessor, fit_preprocessor
from hpsearch.errors import DataError

__all__ = ["PreparedData", "clear_prepared_cache", "prepare_data", "prepare_data_cached"]

CACHE_SIZE = 4


@dataclass(frozen=True)
class PreparedData:
    """Preprocessed splits plus what a model and a checkpoint need to know.

    - X_*: float32 (N, input_dim), already transformed; y_* as in `Dataset`.
    - input_dim: features after preprocessing (the network's input size).
    - output_dim: classes, attributes or regression targets.
    - image_shape: (C, H, W) when the transformed features are still images
      (no PCA/whitening), else None.
    """

    name: str
    task: Task
    num_classes: int
    class_names: tuple[str, ...] | None
    image_shape: tuple[int, int, int] | None
    preprocessor: Preprocessor
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def input_dim(self) -> int:
        """Features per example after preprocessing."""
        return self.preprocessor.output_dim

    @property
    def output_dim(self) -> int:
        """The number of network outputs."""
        return self.num_classes


def prepare_data(
    data_config: DataConfig, preprocess_config: PreprocessConfig, data_root: Path
) -> PreparedData:
    """Load the data set, fit preprocessing on its training split, transform all splits."""
    dataset = load_dataset(data_config, Path(data_root))
    preprocessor = fit_preprocessor(preprocess_config, dataset.X_train, dataset.image_shape)
    transform = preprocessor.transform
    keeps_images = preprocessor.components is None
    return PreparedData(
        name=dataset.name,
        task=dataset.task,
        num_classes=dataset.num_classes,
        class_names=dataset.class_names,
        image_shape=dataset.image_shape if keeps_images else None,
        preprocessor=preprocessor,
        X_train=transform(dataset.X_train),
        y_train=dataset.y_train,
        X_val=transform(dataset.X_val),
        y_val=dataset.y_val,
        X_test=None if dataset.X_test is None else transform(dataset.X_test),
        y_test=dataset.y_test,
    )


def prepare_data_cached(
    data_config: DataConfig, preprocess_config: PreprocessConfig, data_root: Path
) -> PreparedData:
    """`prepare_data`, reused across calls with the same inputs in this process."""
    key = json.dumps(
        {
            "data": data_config.model_dump(mode="json"),
            "preprocess": preprocess_config.model_dump(mode="json"),
            "data_root": str(Path(data_root).resolve()),
            "file": _file_signature(data_config, Path(data_root)),
        },
        sort_keys=True,
    )
    return _prepare_from_key(key)


def clear_prepared_cache() -> None:
    """Forget every cached `PreparedData` of this process."""
    _prepare_from_key.cache_clear()


def _file_signature(config: DataConfig, data_root: Path) -> list[list[object]] | None:
    """(name, size, mtime) of the data file, or of every entry of a data folder."""
    if not config.path or config.source not in ("npz", "csv", "cifar10"):
        return None
    path = resolve_data_path(data_root, config.path)
    entries = sorted(path.iterdir()) if path.is_dir() else [path]
    signature: list[list[object]] = []
    for entry in entries:
        stat = entry.stat()
        signature.append([entry.name, stat.st_size, stat.st_mtime_ns])
    return signature


@functools.lru_cache(maxsize=CACHE_SIZE)
def _prepare_from_key(key: str) -> PreparedData:
    parts = json.loads(key)
    try:
        data_config = DataConfig.model_validate(parts["data"])
        preprocess_config = PreprocessConfig.model_validate(parts["preprocess"])
    except ValueError as exc:  # cannot happen for keys built from valid configs
        raise DataError(f"invalid cached configuration: {exc}") from exc
    prepared = prepare_data(data_config, preprocess_config, Path(parts["data_root"]))
    for array in (
        prepared.X_train,
        prepared.y_train,
        prepared.X_val,
        prepared.y_val,
        prepared.X_test,
        prepared.y_test,
    ):
        if array is not None:
            array.flags.writeable = False
    return prepared
