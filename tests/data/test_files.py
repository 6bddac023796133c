"""`.npz` and CSV data sets, and their refusals of bad input."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset


def npz_config(path: str = "data.npz", **fields: object) -> DataConfig:
    return DataConfig(source="npz", path=path, **fields)


def csv_config(
    path: str = "table.csv", label_column: str = "label", **fields: object
) -> DataConfig:
    return DataConfig(source="csv", path=path, label_column=label_column, **fields)


def split_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "X_train": rng.standard_normal((30, 4)),
        "y_train": np.arange(30) % 3,
        "X_val": rng.standard_normal((9, 4)),
        "y_val": np.arange(9) % 3,
    }


def test_npz_with_explicit_splits_is_used_as_given(data_root: Path) -> None:
    arrays = split_arrays(np.random.default_rng(0))
    arrays.update(X_test=np.ones((5, 4), dtype=np.int32), y_test=np.zeros(5, dtype=np.int64))
    np.savez(data_root / "data.npz", **arrays)
    dataset = load_dataset(npz_config(), data_root)
    assert dataset.X_train.dtype == np.float32
    assert np.array_equal(dataset.X_train, arrays["X_train"].astype(np.float32))
    assert np.array_equal(dataset.y_val, arrays["y_val"])
    assert np.array_equal(dataset.X_test, np.ones((5, 4), dtype=np.float32))
    assert (dataset.name, dataset.num_classes, dataset.task) == ("data", 3, "classification")


def test_npz_with_whole_arrays_is_split_by_seeded_fractions(data_root: Path) -> None:
    X = np.arange(200, dtype=np.float64).reshape(100, 2)
    np.savez(data_root / "data.npz", X=X, y=np.arange(100) % 2)
    config = npz_config(val_fraction=0.3, test_fraction=0.1, split_seed=4)
    dataset = load_dataset(config, data_root)
    assert (len(dataset.X_train), len(dataset.X_val), len(dataset.X_test)) == (60, 30, 10)
    rows = np.concatenate([dataset.X_train, dataset.X_val, dataset.X_test])[:, 0]
    assert sorted(rows.tolist()) == X[:, 0].tolist()
    assert np.array_equal(dataset.X_val, load_dataset(config, data_root).X_val)


def test_npz_image_arrays_are_flattened_with_their_shape(data_root: Path) -> None:
    X = np.arange(20 * 2 * 3 * 3, dtype=np.uint8).reshape(20, 2, 3, 3)
    np.savez(data_root / "data.npz", X=X, y=np.arange(20) % 2)
    dataset = load_dataset(npz_config(max_train=10), data_root)
    assert dataset.image_shape == (2, 3, 3) and dataset.input_dim == 18
    assert len(dataset.X_train) == 10


def test_npz_multilabel_and_regression_targets(data_root: Path) -> None:
    X = np.zeros((10, 3))
    np.savez(data_root / "multi.npz", X=X, y=np.tile([[1, -1]], (10, 1)))
    np.savez(data_root / "reg.npz", X=X, y=np.linspace(0, 1, 20).reshape(10, 2))
    multi = load_dataset(npz_config("multi.npz"), data_root)
    regression = load_dataset(npz_config("reg.npz"), data_root)
    assert (multi.task, multi.output_dim, multi.y_train.dtype) == ("multilabel", 2, np.int64)
    assert (regression.task, regression.output_dim) == ("regression", 2)
    assert regression.y_train.dtype == np.float32


def test_missing_npz_file(assert_refused: Callable[..., object]) -> None:
    assert_refused(npz_config("absent.npz"), r"not found: 'absent\.npz'")


def test_npz_missing_keys_are_named(data_root: Path, assert_refused: Callable[..., object]) -> None:
    arrays = split_arrays(np.random.default_rng(0))
    del arrays["y_val"]
    np.savez(data_root / "data.npz", **arrays)
    assert_refused(npz_config(), r"missing key\(s\) y_val \(found X_train, X_val, y_train\)")


def test_npz_half_test_split_is_refused(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    np.savez(
        data_root / "data.npz", X_test=np.zeros((2, 4)), **split_arrays(np.random.default_rng(0))
    )
    assert_refused(npz_config(), "has X_test but is missing key y_test")


def test_npz_count_mismatch_is_named(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    arrays = split_arrays(np.random.default_rng(0))
    arrays["y_train"] = arrays["y_train"][:-1]
    np.savez(data_root / "data.npz", **arrays)
    assert_refused(npz_config(), "X_train has 30 examples but y_train has 29")


def test_npz_whole_count_mismatch_is_named(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    np.savez(data_root / "data.npz", X=np.zeros((10, 2)), y=np.zeros(9, dtype=int))
    assert_refused(npz_config(), "X has 10 examples but y has 9")


def test_npz_nan_features_are_named(data_root: Path, assert_refused: Callable[..., object]) -> None:
    arrays = split_arrays(np.random.default_rng(0))
    arrays["X_val"][2, 1] = np.nan
    arrays["X_val"][3, 1] = np.inf
    np.savez(data_root / "data.npz", **arrays)
    assert_refused(npz_config(), "X_val contains 2 NaN or infinite values")


def test_npz_wrong_ndim_is_named(data_root: Path, assert_refused: Callable[..., object]) -> None:
    arrays = split_arrays(np.random.default_rng(0))
    arrays["X_train"] = np.zeros(30)
    np.savez(data_root / "data.npz", **arrays)
    assert_refused(npz_config(), r"X_train must be 2-D \(N, D\)")


def test_npz_object_array_is_refused_unread(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    arrays: dict[str, np.ndarray] = split_arrays(np.random.default_rng(0))
    arrays["X_train"] = np.array([{"payload": 1}] * 30, dtype=object)
    np.savez(data_root / "data.npz", **arrays)  # np.savez pickles object arrays
    assert_refused(npz_config(), "key X_train contains pickled objects")


def test_single_npy_file_is_refused(data_root: Path, assert_refused: Callable[..., object]) -> None:
    np.save(data_root / "data.npy", np.zeros(3))
    assert_refused(npz_config("data.npy"), r"single \.npy array")


def test_non_archive_is_refused(data_root: Path, assert_refused: Callable[..., object]) -> None:
    (data_root / "data.npz").write_bytes(b"PK\x03\x04 this is not really a zip")
    assert_refused(npz_config(), r"data\.npz")


def test_csv_numeric_labels_are_class_indices(data_root: Path) -> None:
    lines = ["a,label,b"] + [f"{i},{i % 3},{2 * i}" for i in range(30)]
    (data_root / "table.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(csv_config(), data_root)
    X = np.concatenate([dataset.X_train, dataset.X_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    assert dataset.X_train.dtype == np.float32 and dataset.input_dim == 2
    assert np.array_equal(X[:, 1], 2 * X[:, 0]) and np.array_equal(y, X[:, 0].astype(int) % 3)
    assert (dataset.num_classes, dataset.class_names) == (3, None)


def test_csv_string_labels_are_sorted_class_names(data_root: Path) -> None:
    names = ["setosa", "virginica", "versicolor"]
    lines = ["x,species"] + [f"{i},{names[i % 3]}" for i in range(12)]
    (data_root / "table.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(csv_config(label_column="species"), data_root)
    assert dataset.class_names == ("setosa", "versicolor", "virginica")
    for X, y in [(dataset.X_train, dataset.y_train), (dataset.X_val, dataset.y_val)]:
        original = [names[int(value) % 3] for value in X[:, 0]]
        assert [dataset.class_names[label] for label in y] == original


def test_csv_signed_labels_map_in_numeric_order(data_root: Path) -> None:
    lines = ["x,label"] + [f"{i},{1 if i % 2 else -1}" for i in range(10)]
    (data_root / "table.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(csv_config(), data_root)
    assert dataset.class_names == ("-1", "1") and dataset.num_classes == 2
    assert np.array_equal(dataset.y_train, dataset.X_train[:, 0].astype(int) % 2)


def test_csv_without_label_column(data_root: Path, assert_refused: Callable[..., object]) -> None:
    (data_root / "table.csv").write_text("a,b,target\n1,2,0\n3,4,1\n")
    assert_refused(csv_config(), "no label column 'label'; columns present: 'a', 'b', 'target'")


def test_csv_non_numeric_feature_is_located(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    (data_root / "table.csv").write_text("a,label\n1,0\nseven,1\n3,1\n")
    assert_refused(csv_config(), "line 3, column 'a': 'seven' is not a number")


def test_csv_ragged_row_is_located(data_root: Path, assert_refused: Callable[..., object]) -> None:
    (data_root / "table.csv").write_text("a,b,label\n1,2,0\n3,1\n")
    assert_refused(csv_config(), "line 3 has 2 fields, header has 3")


def test_csv_empty_label_is_located(data_root: Path, assert_refused: Callable[..., object]) -> None:
    (data_root / "table.csv").write_text("a,label\n1,0\n2,\n3,1\n")
    assert_refused(csv_config(), "line 3 has an empty 'label' label")


def npz_with_lying_header(path: Path, shape: tuple[int, ...]) -> None:
    """An .npz whose X_train header declares `shape` (float64) but holds 8 bytes of data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in split_arrays(np.random.default_rng(0)).items():
            member = io.BytesIO()
            if key == "X_train":
                header = {"descr": "<f8", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(member, header)
                member.write(b"\0" * 8)
            else:
                np.save(member, array)
            archive.writestr(f"{key}.npy", member.getvalue())


@pytest.mark.parametrize(
    ("shape", "declared"),
    [((2**37, 7), r"\(7\.0 TiB\)"), ((2**31, 1), r"\(16\.0 GiB\)")],
)
def test_npz_header_declaring_more_than_it_holds_is_refused_unread(
    data_root: Path, assert_refused: Callable[..., object], shape: tuple[int, ...], declared: str
) -> None:
    npz_with_lying_header(data_root / "data.npz", shape)
    message = assert_refused(npz_config(), rf"data\.npz: key X_train declares shape .*{declared}")
    assert "pickled" not in str(message)
