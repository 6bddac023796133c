"""Load + preprocess once: `prepare_data`, its per-process cache and the shared store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig, PreprocessConfig
from hpsearch.data import clear_prepared_cache, prepare_data, prepare_data_cached
from hpsearch.data import prepared as prepared_module
from hpsearch.data.prepared import load_stored, store_key, store_prepared


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


def test_the_store_holds_one_memory_mapped_copy_equal_to_a_fresh_preparation(
    data_root: Path, tmp_path: Path
) -> None:
    write_splits(data_root / "a.npz", X_val_scale=2.0)
    data = DataConfig(source="npz", path="a.npz")
    config = PreprocessConfig(mean="feature", std=True, pca_components=4)
    store = tmp_path / "prepared"
    stored = prepare_data_cached(data, config, data_root, store)
    fresh = prepare_data(data, config, data_root)
    (folder,) = store.iterdir()
    assert folder.name == store_key(data, config, data_root)
    for name in ("X_train", "y_train", "X_val", "y_val"):
        array = getattr(stored, name)
        assert isinstance(array, np.memmap) and not array.flags.writeable
        assert array.dtype == getattr(fresh, name).dtype
        assert np.array_equal(array, getattr(fresh, name))
    assert stored.X_test is None and stored.y_test is None
    assert (stored.name, stored.task, stored.num_classes, stored.input_dim) == (
        fresh.name, fresh.task, fresh.num_classes, fresh.input_dim)  # fmt: skip
    fresh_state, stored_state = fresh.preprocessor.state(), stored.preprocessor.state()
    assert fresh_state.keys() == stored_state.keys()
    assert all(np.array_equal(fresh_state[k], stored_state[k]) for k in fresh_state)


def test_another_process_maps_the_stored_copy_without_preparing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, config, store = DataConfig(source="digits"), PreprocessConfig(mean="channel"), tmp_path
    first = prepare_data_cached(data, config, Path("/nonexistent"), store)
    clear_prepared_cache()  # as a new worker process would start

    def refuse(*args: object) -> None:
        raise AssertionError("prepared again although the store holds it")

    monkeypatch.setattr(prepared_module, "prepare_data", refuse)
    second = prepare_data_cached(data, config, Path("/nonexistent"), store)
    assert second is not first and np.array_equal(second.X_train, first.X_train)
    assert second.image_shape == (1, 8, 8) and second.class_names == first.class_names
    assert len(list(store.iterdir())) == 1


def test_the_store_key_follows_the_file_contents_not_its_time(data_root: Path) -> None:
    path = data_root / "a.npz"
    write_splits(path, X_val_scale=1.0)
    data, config = DataConfig(source="npz", path="a.npz"), PreprocessConfig()
    key = store_key(data, config, data_root)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert store_key(data, config, data_root) == key
    write_splits(path, X_val_scale=3.0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    assert store_key(data, config, data_root) != key
    assert store_key(data, PreprocessConfig(std=True), data_root) != key


def test_a_half_written_copy_is_never_used_and_a_lost_race_keeps_the_winner(
    tmp_path: Path,
) -> None:
    data, config, root = DataConfig(source="spiral"), PreprocessConfig(), Path("/nonexistent")
    key = store_key(data, config, root)
    torn = tmp_path / key
    torn.mkdir()
    (torn / "X_train.npy").write_bytes(b"\x93NUMPY torn")  # no meta.json: a crashed writer
    with pytest.raises(OSError):
        store_prepared(prepare_data(data, config, root), config, tmp_path, key)
    shutil.rmtree(torn)
    winner = store_prepared(prepare_data(data, config, root), config, tmp_path, key)
    loser = store_prepared(prepare_data(data, config, root), config, tmp_path, key)
    assert loser == winner and [p.name for p in tmp_path.iterdir()] == [key]
    assert np.array_equal(load_stored(winner).X_train, prepare_data(data, config, root).X_train)


def test_an_unwritable_store_falls_back_to_a_private_copy(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    data, config, root = DataConfig(source="spiral"), PreprocessConfig(), Path("/nonexistent")
    prepared = prepare_data_cached(data, config, root, blocked)
    assert not isinstance(prepared.X_train, np.memmap)
    assert np.array_equal(prepared.X_train, prepare_data(data, config, root).X_train)
