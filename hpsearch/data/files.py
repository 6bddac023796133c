"""Data sets from user files: `.npz` archives and CSV tables.

`.npz` archives hold either explicit splits (`X_train, y_train, X_val, y_val`
and optionally `X_test, y_test`) or whole arrays `X, y` that are split by the
config's seeded fractions. They are read with `allow_pickle=False`: an archive
holding an object (pickled) array is refused.

CSV files have a header row; the column named `label_column` holds the
labels and every other column a numeric feature. Labels that are all
non-negative integers are class indices; negative integers and non-numeric
strings are mapped to class indices in sorted order (numerically for
integers), their original text kept in `Dataset.class_names`; labels with a
decimal point or exponent are regression targets.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from hpsearch.config import DataConfig
from hpsearch.data.datasets import Dataset, assemble_dataset
from hpsearch.data.npz import check_npz_member, read_npz_members
from hpsearch.errors import DataError

__all__ = [
    "load_csv",
    "load_npz",
    "parse_labels",
    "read_csv_table",
    "read_npz_arrays",
    "wanted_npz_keys",
]

SPLIT_KEYS = ("X_train", "y_train", "X_val", "y_val")
TEST_KEYS = ("X_test", "y_test")
WHOLE_KEYS = ("X", "y")


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The data arrays of an `.npz` archive, validated for their key set.

    Returns {"X", "y"} or {"X_train", "y_train", "X_val", "y_val"[, "X_test",
    "y_test"]}. Raises `DataError` for a file that is not an `.npz` archive,
    missing keys, or a wanted member that holds pickled objects or declares
    more (or less) data than it holds; members are checked from their headers
    (`hpsearch.data.npz`) before any data is read.
    """
    members = read_npz_members(path)
    wanted = wanted_npz_keys(path, set(members))
    for key in wanted:
        check_npz_member(members[key], path.name)
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path.name}: is not an .npz archive: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path.name}: cannot be read as an .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name}: is a single .npy array, expected an .npz archive")
    with archive:
        return {key: _read_member(archive, key, path) for key in wanted}


def wanted_npz_keys(path: Path, present: set[str]) -> tuple[str, ...]:
    """The keys a data set reads from an archive holding `present`; DataError if incomplete."""
    listing = ", ".join(sorted(present)) or "nothing"
    if "X" in present or "y" in present:
        missing = [key for key in WHOLE_KEYS if key not in present]
        if missing:
            raise DataError(f"{path.name}: missing key(s) {', '.join(missing)} (found {listing})")
        return WHOLE_KEYS
    missing = [key for key in SPLIT_KEYS if key not in present]
    if missing:
        raise DataError(
            f"{path.name}: missing key(s) {', '.join(missing)} (found {listing}); an .npz "
            "data set holds X_train, y_train, X_val, y_val[, X_test, y_test] or X, y"
        )
    test_present = [key for key in TEST_KEYS if key in present]
    if len(test_present) == 1:
        missing_test = "y_test" if test_present[0] == "X_test" else "X_test"
        raise DataError(f"{path.name}: has {test_present[0]} but is missing key {missing_test}")
    return SPLIT_KEYS + (TEST_KEYS if test_present else ())


def _read_member(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        raise DataError(
            f"{path.name}: key {key} contains pickled objects (object arrays are refused; "
            "save numeric or string arrays)"
        ) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path.name}: key {key} cannot be read: {exc}") from exc


def load_npz(path: Path, config: DataConfig) -> Dataset:
    """A `Dataset` from an `.npz` archive (see `read_npz_arrays`)."""
    arrays = read_npz_arrays(path)
    for key in arrays:
        if key.startswith("y") and arrays[key].dtype.kind not in "biufUS":
            raise DataError(f"{path.name}: {key} has unsupported dtype {arrays[key].dtype}")
    try:
        return assemble_dataset(path.stem, arrays, config)
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc


def read_csv_table(path: Path, label_column: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Features and raw label strings of a CSV file with a header row.

    Returns (X float64 (N, D), labels as N strings, feature column names).
    Raises `DataError` naming the column and line of the first bad cell.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name}: cannot be read as CSV: {exc}") from exc
    if not rows:
        raise DataError(f"{path.name}: is empty, expected a header row")
    header = [name.strip() for name in rows[0]]
    if label_column not in header:
        raise DataError(
            f"{path.name}: has no label column {label_column!r}; columns present: "
            f"{', '.join(repr(name) for name in header)}"
        )
    body = [row for row in rows[1:] if row]
    if not body:
        raise DataError(f"{path.name}: has a header but no data rows")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path.name}: line {line} has {len(row)} fields, header has {len(header)}"
            )
    label_index = header.index(label_column)
    feature_names = [name for index, name in enumerate(header) if index != label_index]
    if not feature_names:
        raise DataError(f"{path.name}: has no feature columns besides {label_column!r}")
    cells = [[cell for index, cell in enumerate(row) if index != label_index] for row in body]
    labels = [row[label_index].strip() for row in body]
    for line, label in enumerate(labels, start=2):
        if not label:
            raise DataError(f"{path.name}: line {line} has an empty {label_column!r} label")
    return _parse_features(cells, feature_names, path), labels, feature_names


def _parse_features(cells: list[list[str]], names: list[str], path: Path) -> np.ndarray:
    try:
        return np.array(cells, dtype=np.str_).astype(np.float64)
    except ValueError:
        pass
    for line, row in enumerate(cells, start=2):
        for name, cell in zip(names, row, strict=True):
            try:
                float(cell)
            except ValueError:
                raise DataError(
                    f"{path.name}: line {line}, column {name!r}: {cell!r} is not a number"
                ) from None
    raise DataError(f"{path.name}: features could not be parsed as numbers")


def parse_labels(labels: list[str]) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Typed label array and class names for CSV label strings (see module doc)."""
    try:
        integers = np.array([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        integers = None
    if integers is not None:
        if integers.min() >= 0:
            return integers, None
        values = np.unique(integers)
        return np.searchsorted(values, integers), tuple(str(value) for value in values)
    try:
        return np.array([float(label) for label in labels], dtype=np.float64), None
    except ValueError:
        return np.array(labels, dtype=np.str_), None


def load_csv(path: Path, config: DataConfig) -> Dataset:
    """A `Dataset` from a CSV file, split by the config's seeded fractions."""
    if config.label_column is None:
        raise DataError("data.label_column is required for source 'csv'")
    X, labels, _ = read_csv_table(path, config.label_column)
    y, class_names = parse_labels(labels)
    try:
        dataset = assemble_dataset(path.stem, {"X": X, "y": y}, config)
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc
    if class_names is None:
        return dataset
    return _with_class_names(dataset, class_names)


def _with_class_names(dataset: Dataset, class_names: tuple[str, ...]) -> Dataset:
    return replace(dataset, num_classes=len(class_names), class_names=class_names)
