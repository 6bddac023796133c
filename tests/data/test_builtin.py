"""The built-in spiral, blobs and digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.data.builtin import make_blobs, make_spiral

NOWHERE = Path("/nonexistent-data-root")


def all_splits(dataset) -> tuple[np.ndarray, np.ndarray]:
    X = [dataset.X_train, dataset.X_val] + ([dataset.X_test] if dataset.X_test is not None else [])
    y = [dataset.y_train, dataset.y_val] + ([dataset.y_test] if dataset.y_test is not None else [])
    return np.concatenate(X), np.concatenate(y)


def test_spiral_points_follow_the_notes_formula() -> None:
    X, y = make_spiral(3, 50, np.random.default_rng(0))
    radius = np.linspace(0.0, 1.0, 50)
    for arm in range(3):
        points = X[y == arm].astype(np.float64)
        assert np.allclose(np.hypot(points[:, 0], points[:, 1]), radius, atol=1e-6)
        theta = np.arctan2(points[1:, 0], points[1:, 1])
        expected = np.linspace(arm * 4.0, (arm + 1) * 4.0, 50)[1:]
        wrapped = np.angle(np.exp(1j * (theta - expected)))
        assert np.max(np.abs(wrapped)) < 1.2  # noise is 0.2 * randn: 6 sigma


def test_spiral_dataset_is_seeded_split_and_float32() -> None:
    config = DataConfig(source="spiral", num_classes=4, points_per_class=60, val_fraction=0.25)
    dataset = load_dataset(config, NOWHERE)
    again = load_dataset(config, NOWHERE)
    other = load_dataset(config.model_copy(update={"split_seed": 1}), NOWHERE)
    assert dataset.X_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    assert (len(dataset.X_train), len(dataset.X_val)) == (180, 60)
    assert np.bincount(dataset.y_val).tolist() == [15, 15, 15, 15]
    assert (dataset.num_classes, dataset.task, dataset.image_shape) == (4, "classification", None)
    assert (dataset.input_dim, dataset.output_dim) == (2, 4)
    assert np.array_equal(dataset.X_val, again.X_val)
    assert not np.array_equal(dataset.X_val, other.X_val)


def test_blobs_cluster_around_their_centres() -> None:
    rng = np.random.default_rng(5)
    X, y = make_blobs(3, 400, 4, rng)
    assert X.shape == (1200, 4) and X.dtype == np.float32
    centres = np.random.default_rng(5).uniform(-5.0, 5.0, (3, 4))
    for label in range(3):
        assert np.allclose(X[y == label].mean(axis=0), centres[label], atol=0.25)
        assert np.allclose(X[y == label].std(axis=0), 1.0, atol=0.1)


def test_blobs_dataset_uses_num_features_and_test_fraction() -> None:
    config = DataConfig(
        source="blobs",
        num_classes=5,
        points_per_class=20,
        num_features=7,
        val_fraction=0.2,
        test_fraction=0.1,
    )
    dataset = load_dataset(config, NOWHERE)
    assert dataset.input_dim == 7 and dataset.num_classes == 5
    assert (len(dataset.X_train), len(dataset.X_val), len(dataset.X_test)) == (70, 20, 10)
    X, _ = all_splits(dataset)
    assert len(np.unique(X, axis=0)) == 100


def test_digits_are_the_packaged_images() -> None:
    dataset = load_dataset(DataConfig(source="digits"), NOWHERE)
    X, y = all_splits(dataset)
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert dataset.image_shape == (1, 8, 8)
    assert X.min() == 0.0 and X.max() == 16.0 and np.all(np.round(X) == X)
    assert np.bincount(y).sum() == 1797 and dataset.num_classes == 10
    assert len(dataset.X_val) == round(1797 * 0.2)


@pytest.mark.parametrize("source", ["spiral", "blobs", "digits"])
def test_max_train_caps_the_training_split_stratified(source: str) -> None:
    config = DataConfig(source=source, num_classes=3, points_per_class=100, max_train=30)
    dataset = load_dataset(config, NOWHERE)
    assert len(dataset.X_train) == 30 and len(dataset.y_train) == 30
    counts = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    assert counts.max() - counts.min() <= 1 + (source == "digits") * 3
