"""A data set loaded and preprocessed once, ready for training.

`prepare_data` loads the data set, fits the preprocessor on its training
split and transforms every split. `prepare_data_cached` keeps the last few
results per process, keyed by the JSON of both configs, the data root and
the size and modification time of the data file (or of every file in a
CIFAR-10 folder), so a worker that runs many trials on one data set loads
and preprocesses it once. Cached arrays are read-only: a trial that wants
to modify them must copy them first.

With a `store_root` (the workers pass `Settings.resolved_prepared_root`, on
the cluster's data volume) the prepared arrays are also kept on disk, once
per data set and preprocessing: `<store_root>/<key>/` holds one `.npy` per
split, the preprocessor's statistics and `meta.json`, where `key` is the
SHA-256 of both configs and of the data files' contents. The folder is
written under a temporary name and renamed into place (complete or absent;
of two processes preparing it at once, one rename wins), and every process
memory-maps it read-only, so N workers on one host share one copy in the
page cache. A store that cannot be written (read-only, full) only costs
that process its own in-memory copy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from hpsearch.config import DataConfig, PreprocessConfig
from hpsearch.data.datasets import Task
from hpsearch.data.loader import load_dataset
from hpsearch.data.paths import resolve_data_path
from hpsearch.data.preprocess import Preprocessor, fit_preprocessor
from hpsearch.errors import DataError

__all__ = [
    "PreparedData",
    "clear_prepared_cache",
    "load_stored",
    "prepare_data",
    "prepare_data_cached",
    "store_key",
    "store_prepared",
]

CACHE_SIZE = 4
STORE_FORMAT = 1
_SPLITS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
_META = "meta.json"
_PREPROCESSOR = "preprocessor.npz"


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
    data_config: DataConfig,
    preprocess_config: PreprocessConfig,
    data_root: Path,
    store_root: Path | None = None,
) -> PreparedData:
    """`prepare_data`, reused across calls with the same inputs in this process,
    and memory-mapped from `store_root` (shared by every process) when given."""
    key = json.dumps(
        {
            "data": data_config.model_dump(mode="json"),
            "preprocess": preprocess_config.model_dump(mode="json"),
            "data_root": str(Path(data_root).resolve()),
            "file": _file_signature(data_config, Path(data_root)),
            "store_root": None if store_root is None else str(Path(store_root).resolve()),
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
    data_root = Path(parts["data_root"])
    if parts["store_root"] is not None:
        return _prepare_through_store(
            data_config, preprocess_config, data_root, Path(parts["store_root"])
        )
    prepared = prepare_data(data_config, preprocess_config, data_root)
    for name in _SPLITS:
        array = getattr(prepared, name)
        if array is not None:
            array.flags.writeable = False
    return prepared


def _prepare_through_store(
    data_config: DataConfig, preprocess_config: PreprocessConfig, data_root: Path, root: Path
) -> PreparedData:
    """The stored copy, memory-mapped; prepared and stored first if absent."""
    key = store_key(data_config, preprocess_config, data_root)
    directory = root / key
    if not (directory / _META).is_file():
        prepared = prepare_data(data_config, preprocess_config, data_root)
        try:
            store_prepared(prepared, preprocess_config, root, key)
        except OSError as error:
            print(f"event=prepared_store_failed key={key[:16]} root={root} error={error!r}",
                  file=sys.stderr, flush=True)  # fmt: skip
            return prepared
    return load_stored(directory)


def store_key(data_config: DataConfig, preprocess_config: PreprocessConfig, data_root: Path) -> str:
    """SHA-256 (hex) of both configs and the contents of the data file(s), if any."""
    digest = hashlib.sha256()
    parts = {
        "format": STORE_FORMAT,
        "data": data_config.model_dump(mode="json"),
        "preprocess": preprocess_config.model_dump(mode="json"),
    }
    digest.update(json.dumps(parts, sort_keys=True).encode())
    signature = _file_signature(data_config, Path(data_root))
    if signature is not None:
        path = resolve_data_path(Path(data_root), data_config.path or "")
        entries = sorted(path.iterdir()) if path.is_dir() else [path]
        for entry, (name, size, mtime_ns) in zip(entries, signature, strict=True):
            digest.update(f"{name}\0".encode())
            digest.update(_file_digest(str(entry), int(size), int(mtime_ns)).encode())  # type: ignore[call-overload]
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of one file's bytes, once per (path, size, mtime) in this process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_prepared(
    prepared: PreparedData, preprocess_config: PreprocessConfig, root: Path, key: str
) -> Path:
    """Write `prepared` as `<root>/<key>/`, complete or not at all; returns the folder.

    Written and fsynced under a temporary name, then renamed: when another
    process renamed its copy first, that copy is kept and this one dropped.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=root))
    try:
        for name in _SPLITS:
            array = getattr(prepared, name)
            if array is not None:
                _write_synced(
                    temporary / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False)
                )
        state = prepared.preprocessor.state()
        _write_synced(
            temporary / _PREPROCESSOR, lambda f: np.savez(f, **cast(dict[str, Any], state))
        )
        meta = _meta(prepared, preprocess_config)
        _write_synced(temporary / _META, lambda f: f.write(json.dumps(meta).encode()))
        _fsync_directory(temporary)
        try:
            os.rename(temporary, final)
        except OSError:
            if not (final / _META).is_file():
                raise
        _fsync_directory(root)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def load_stored(directory: Path) -> PreparedData:
    """A stored `PreparedData`, its splits memory-mapped read-only."""
    meta = json.loads((directory / _META).read_text())
    with np.load(directory / _PREPROCESSOR, allow_pickle=False) as state:
        preprocessor = Preprocessor.from_state(meta["preprocess"], dict(state))
    splits = {name: _map_split(directory / f"{name}.npy") for name in _SPLITS}
    X_train, y_train, X_val, y_val = (splits[name] for name in _SPLITS[:4])
    if X_train is None or y_train is None or X_val is None or y_val is None:
        raise DataError(f"stored prepared data {directory} lacks a training or validation split")
    image_shape = meta["image_shape"]
    class_names = meta["class_names"]
    return PreparedData(
        name=meta["name"],
        task=meta["task"],
        num_classes=int(meta["num_classes"]),
        class_names=None if class_names is None else tuple(class_names),
        image_shape=None if image_shape is None else tuple(image_shape),
        preprocessor=preprocessor,
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        X_test=splits["X_test"],
        y_test=splits["y_test"],
    )


def _map_split(path: Path) -> np.ndarray | None:
    return np.load(path, mmap_mode="r", allow_pickle=False) if path.is_file() else None


def _meta(prepared: PreparedData, preprocess_config: PreprocessConfig) -> dict[str, Any]:
    return {
        "format": STORE_FORMAT,
        "name": prepared.name,
        "task": prepared.task,
        "num_classes": prepared.num_classes,
        "class_names": None if prepared.class_names is None else list(prepared.class_names),
        "image_shape": None if prepared.image_shape is None else list(prepared.image_shape),
        "preprocess": preprocess_config.model_dump(mode="json"),
    }


def _write_synced(path: Path, write: Any) -> None:
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
