"""MNIST-1D regenerated offline by the mnist1d package."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from mnist1d.data import get_dataset_args, make_dataset

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.data.builtin import make_mnist1d

NOWHERE = Path("/nonexistent-data-root")


@pytest.fixture
def global_rng_restored():
    """Restore NumPy's and Python's global generators after a test that seeds them."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def rows(X: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(X, dtype=np.float32)}


def test_mnist1d_has_the_standard_split_and_a_seeded_validation_split() -> None:
    dataset = load_dataset(DataConfig(source="mnist1d", val_fraction=0.2), NOWHERE)
    assert (len(dataset.X_train), len(dataset.X_val), len(dataset.X_test)) == (3200, 800, 1000)
    assert dataset.X_train.dtype == np.float32 and dataset.y_test.dtype == np.int64
    assert (dataset.input_dim, dataset.num_classes, dataset.task) == (40, 10, "classification")
    X_rest, y_rest, X_test, y_test = make_mnist1d()
    assert y_rest[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
    assert np.array_equal(dataset.X_test, X_test.astype(np.float32))
    assert np.array_equal(dataset.y_test, y_test)
    assert rows(dataset.X_train) | rows(dataset.X_val) == rows(X_rest)
    assert not rows(dataset.X_train) & rows(dataset.X_val)
    expected_val = np.round(np.bincount(y_rest) * 0.2)
    assert np.abs(np.bincount(dataset.y_val) - expected_val).max() <= 1
    again = load_dataset(DataConfig(source="mnist1d", val_fraction=0.2), NOWHERE)
    other = load_dataset(DataConfig(source="mnist1d", val_fraction=0.2, split_seed=1), NOWHERE)
    assert np.array_equal(dataset.X_val, again.X_val)
    assert not np.array_equal(dataset.X_val, other.X_val)
    assert np.array_equal(dataset.X_test, other.X_test)


@pytest.mark.usefixtures("global_rng_restored")
def test_mnist1d_is_the_package_generator_and_leaves_global_rng_state_alone() -> None:
    make_mnist1d.cache_clear()
    np.random.seed(1234)
    random.seed(99)
    expected_numpy, expected_python = np.random.random(3), random.random()
    np.random.seed(1234)
    random.seed(99)
    X_rest, y_rest, X_test, _ = make_mnist1d()
    assert np.array_equal(np.random.random(3), expected_numpy)
    assert random.random() == expected_python
    reference = make_dataset(get_dataset_args())
    assert np.array_equal(X_rest, reference["x"]) and np.array_equal(y_rest, reference["y"])
    assert np.array_equal(X_test, reference["x_test"])
    assert abs(float(np.concatenate([X_rest, X_test]).std()) - 1.0) < 1e-9


def test_mnist1d_is_generated_once_per_process_and_read_only() -> None:
    first, second = make_mnist1d(), make_mnist1d()
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert not any(array.flags.writeable for array in first)
