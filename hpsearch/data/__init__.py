"""Data sets and the preprocessing fitted on their training split.

- `load_dataset(config, data_root)`: spiral, blobs, digits, MNIST-1D, `.npz`, CSV or
  CIFAR-10 (binary or python batches), split into train / val (/ test).
- `resolve_data_path(data_root, user_path)`: user paths stay inside the root.
- `fit_preprocessor(config, X_train, image_shape)` -> `Preprocessor`: mean
  subtraction, std division, PCA, whitening; `state()` / `from_state()`.
- `prepare_data` / `prepare_data_cached`: load + preprocess once per process.

This package imports neither the database nor the queue.
"""

from hpsearch.data.datasets import Dataset, Task
from hpsearch.data.loader import load_dataset
from hpsearch.data.paths import resolve_data_path
from hpsearch.data.prepared import (
    PreparedData,
    clear_prepared_cache,
    prepare_data,
    prepare_data_cached,
)
from hpsearch.data.preprocess import Preprocessor, fit_preprocessor

__all__ = [
    "Dataset",
    "PreparedData",
    "Preprocessor",
    "Task",
    "clear_prepared_cache",
    "fit_preprocessor",
    "load_dataset",
    "prepare_data",
    "prepare_data_cached",
    "resolve_data_path",
]
