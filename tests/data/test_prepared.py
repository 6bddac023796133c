"""Load + preprocess once: `prepare_data` and its per-process cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig, PreprocessConfig
from hpsearch.data import clear_prepared_cache, prepare_data, prepare_data_cached


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    clear_prepared_cache()
    yield
    clear_prepared_cache()


def write_splits(path: Path, X_val_scale: float) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        X_train=rng.standard_normal((60, 6)),
        y_train=np.arange(60) % 3,
        X_val=rng.standard_normal((15, 6)) * X_val_scale + X_val_scale,
        y_val=np.arange(15) % 3,
    )


def test_changing_validation_data_does_not_change_the_statistics(data_root: Path) -> None:
    write_splits(data_root / "a.npz", X_val_scale=1.0)
    write_splits(data_root / "b.npz", X_val_scale=50.0)
    config = PreprocessConfig(mean="feature", std=True, pca_components=4, whiten=True)
    first = prepare_data(DataConfig(source="npz", path="a.npz"), config, data_root)
    second = prepare_data(DataConfig(source="npz", path="b.npz"), config, data_root)
    first_state, second_state = first.preprocessor.state(), second.preprocessor.state()
    assert first_state.keys() == second_state.keys()
    assert all(np.array_equal(first_state[key], second_state[key]) for key in first_state)
    assert np.array_equal(first.X_train, second.X_train)
    assert not np.allclose(first.X_val, second.X_val)


def test_prepared_digits_with_pca() -> None:
    prepared = prepare_data(
        DataConfig(source="digits", test_fraction=0.1),
        PreprocessConfig(mean="feature", pca_components=20),
        Path("/nonexistent-data-root"),
    )
    assert (prepared.input_dim, prepared.output_dim) == (20, 10)
    assert prepared.X_train.shape[1] == prepared.X_val.shape[1] == prepared.X_test.shape[1] == 20
    assert prepared.X_train.dtype == np.float32 and prepared.image_shape is None
    assert np.allclose(prepared.X_train.mean(axis=0), 0.0, atol=1e-4)


def test_prepared_digits_keep_their_image_shape_without_pca() -> None:
    prepared = prepare_data(
        DataConfig(source="digits"), PreprocessConfig(mean="channel"), Path("/nonexistent")
    )
    assert prepared.image_shape == (1, 8, 8) and prepared.input_dim == 64
    assert abs(float(prepared.X_train.mean())) < 1e-4


def test_cache_reuses_one_result_per_configuration() -> None:
    data, root = DataConfig(source="spiral"), Path("/nonexistent")
    first = prepare_data_cached(data, PreprocessConfig(), root)
    assert prepare_data_cached(data.model_copy(), PreprocessConfig(), root) is first
    assert prepare_data_cached(data, PreprocessConfig(std=True), root) is not first
    assert (
        prepare_data_cached(data.model_copy(update={"split_seed": 2}), PreprocessConfig(), root)
        is not first
    )


def test_cached_arrays_are_read_only() -> None:
    prepared = prepare_data_cached(
        DataConfig(source="spiral"), PreprocessConfig(), Path("/nonexistent")
    )
    with pytest.raises(ValueError, match="read-only"):
        prepared.X_train[0, 0] = 1.0


def test_cache_notices_a_replaced_file(data_root: Path) -> None:
    path = data_root / "a.npz"
    write_splits(path, X_val_scale=1.0)
    config = DataConfig(source="npz", path="a.npz")
    first = prepare_data_cached(config, PreprocessConfig(), data_root)
    write_splits(path, X_val_scale=3.0)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = prepare_data_cached(config, PreprocessConfig(), data_root)
    assert second is not first
    assert not np.allclose(first.X_val, second.X_val)
