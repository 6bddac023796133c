"""CIFAR-10 from a folder in either official format.

- Binary (`cifar-10-batches-bin`): `data_batch_1.bin` .. `data_batch_5.bin`
  and `test_batch.bin`; each record is 1 label byte then 3,072 pixel bytes
  (1,024 red, 1,024 green, 1,024 blue, rows in order).
- Python (`cifar-10-batches-py`): `data_batch_1` .. `data_batch_5` and
  `test_batch`, pickled dicts with `b"data"` uint8 (N, 3072) and `b"labels"`
  (N ints). They are read by `SafeUnpickler`, which resolves only the few
  globals those files need and refuses every other one without calling it.

The data batches (any number present, in numeric order) form the training
data, from which `val_fraction` is carved out (seeded, stratified); the test
batch, when present, is the test split (`test_fraction` is not used).
Pixels stay in 0..255 as float32; features are (3, 32, 32) images.
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config import DataConfig
from hpsearch.data.datasets import Dataset, assemble_dataset, split_indices
from hpsearch.data.paths import resolve_data_path
from hpsearch.errors import DataError

__all__ = [
    "CIFAR_IMAGE_SHAPE",
    "SafeUnpickler",
    "load_cifar10",
    "read_binary_batch",
    "read_python_batch",
]

CIFAR_IMAGE_SHAPE = (3, 32, 32)
PIXELS = 3 * 32 * 32
RECORD_BYTES = 1 + PIXELS
NUM_CLASSES = 10
BATCH_NAME = re.compile(r"^data_batch_(\d+)(\.bin)?$")

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 writes bytes in protocol 2, latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DataError(f"pickle asks for codec {encoding!r}; only latin1 is allowed")
    return text.encode("latin1")


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only `ALLOWED_GLOBALS` (numpy array rebuilding)."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise DataError(
                f"refusing to unpickle global {module}.{name}: a CIFAR-10 batch holds only "
                "numpy arrays, lists, ints and bytes"
            )
        return allowed


def _safe_unpickle(path: Path) -> Any:
    try:
        data = path.read_bytes()
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc
    except Exception as exc:  # any malformed pickle is bad input, never a crash
        raise DataError(f"{path.name}: not a readable CIFAR-10 python batch: {exc}") from exc


def _field(batch: dict[Any, Any], name: str, path: Path) -> Any:
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise DataError(f"{path.name}: batch has no {name!r} entry (found {sorted(map(str, batch))})")


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 3072) and labels int64 (N,) of one python batch."""
    batch = _safe_unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path.name}: expected a pickled dict, got {type(batch).__name__}")
    images = _field(batch, "data", path)
    labels = np.asarray(_field(batch, "labels", path))
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2:
        raise DataError(f"{path.name}: 'data' must be a uint8 (N, {PIXELS}) array")
    if images.shape[1] != PIXELS:
        raise DataError(f"{path.name}: 'data' has {images.shape[1]} columns, expected {PIXELS}")
    return images, _check_labels(labels, len(images), path)


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 3072) and labels int64 (N,) of one binary batch."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataError(
            f"{path.name}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte records"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    return np.ascontiguousarray(records[:, 1:]), _check_labels(records[:, 0], len(records), path)


def _check_labels(labels: np.ndarray, count: int, path: Path) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != count or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path.name}: expected {count} integer labels, got {labels.dtype} {labels.shape}"
        )
    if count and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path.name}: labels must be 0..9, got {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def _batch_files(folder: Path, user_path: str) -> tuple[list[str], str | None, bool]:
    """(data batch names in numeric order, test batch name or None, binary?)."""
    names = {entry.name for entry in folder.iterdir()}
    numbered = {name: BATCH_NAME.match(name) for name in names}
    found = {name: match for name, match in numbered.items() if match is not None}
    binary = any(match[2] for match in found.values())
    batches = sorted(
        (name for name, match in found.items() if bool(match[2]) == binary),
        key=lambda name: int(found[name][1]),
    )
    if not batches:
        raise DataError(
            f"data path {user_path!r} holds no CIFAR-10 batches: expected data_batch_1.bin.. "
            "(binary) or data_batch_1.. (python)"
        )
    test_name = "test_batch.bin" if binary else "test_batch"
    return batches, test_name if test_name in names else None, binary


def _read_batches(
    data_root: Path, user_path: str, names: list[str], binary: bool
) -> tuple[np.ndarray, np.ndarray]:
    reader = read_binary_batch if binary else read_python_batch
    parts = [reader(resolve_data_path(data_root, f"{user_path}/{name}")) for name in names]
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def load_cifar10(data_root: Path, user_path: str, config: DataConfig) -> Dataset:
    """CIFAR-10 from the folder `user_path` inside `data_root` (see module doc)."""
    folder = resolve_data_path(data_root, user_path)
    if not folder.is_dir():
        raise DataError(f"data path {user_path!r} must be a folder of CIFAR-10 batches")
    batches, test_name, binary = _batch_files(folder, user_path)
    images, labels = _read_batches(data_root, user_path, batches, binary)
    train, val, _ = split_indices(labels, len(labels), config.val_fraction, 0.0, config.split_seed)
    arrays = {
        "X_train": images[train],
        "y_train": labels[train],
        "X_val": images[val],
        "y_val": labels[val],
    }
    if test_name is not None:
        arrays["X_test"], arrays["y_test"] = _read_batches(
            data_root, user_path, [test_name], binary
        )
    dataset = assemble_dataset("cifar10", arrays, config, image_shape=CIFAR_IMAGE_SHAPE)
    return replace(dataset, num_classes=NUM_CLASSES)
