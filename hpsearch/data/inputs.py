"""New data for `hpsearch predict`: raw features (and labels when present).

- `.npz`: with a split named, `X_<split>` (and optionally `y_<split>`), an
  error when the file has no `X_<split>`; without one, `X` (and optionally
  `y`), else the test split `X_test` (and `y_test`). Loaded with
  `allow_pickle=False`. Images may be (N, C, H, W); they are flattened.
- `.csv`: a header row; the training configuration's label column is used
  as labels when present, every other column is a feature. A CSV is one
  table: naming a split is an error.

The path resolves inside the data root like every user path. Labels are
returned as they are; the checkpoint's class names map CSV text labels.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hpsearch.config import TrainConfig
from hpsearch.data.files import read_csv_table
from hpsearch.data.paths import resolve_data_path
from hpsearch.errors import DataError

__all__ = ["PredictionInputs", "SplitName", "read_prediction_inputs"]

SplitName = Literal["train", "val", "test"]


@dataclass(frozen=True)
class PredictionInputs:
    """What `hpsearch predict` scores.

    X: float32 (N, D) raw features; y: labels (N,) / (N, T) or None; split:
    "train" | "val" | "test" for an `.npz` split, None for a file's `X` or a
    CSV; scored: the arrays or file read, e.g. "X_test, y_test".
    """

    X: np.ndarray
    y: np.ndarray | None
    split: SplitName | None
    scored: str


def read_prediction_inputs(
    data_root: Path,
    user_path: str,
    config: TrainConfig,
    class_names: tuple[str, ...] | None = None,
    split: SplitName | None = None,
) -> PredictionInputs:
    """The features (and labels) of an `.npz` or `.csv` under `data_root` (module doc)."""
    path = resolve_data_path(Path(data_root), user_path)
    if path.suffix.lower() == ".npz":
        X, y, split, scored = _read_npz(path, split)
    elif path.suffix.lower() == ".csv":
        if split is not None:
            raise DataError(
                f"split: {path.name} is one CSV table; --split {split} needs an .npz holding "
                f"X_{split}"
            )
        X, y = _read_csv(path, config.data.label_column, class_names)
        scored = path.name
    else:
        raise DataError(f"{path.name}: expected a .npz or .csv file")
    X = X.reshape(len(X), -1)
    if X.dtype.kind not in "biuf" or not np.isfinite(X).all():
        raise DataError(f"{path.name}: features must be finite numbers")
    if y is not None and len(y) != len(X):
        raise DataError(f"{path.name}: {len(X)} feature rows but {len(y)} labels")
    return PredictionInputs(X.astype(np.float32), y, split, scored)


def _read_npz(
    path: Path, split: SplitName | None
) -> tuple[np.ndarray, np.ndarray | None, SplitName | None, str]:
    """(X, y or None, the split read, "X_key[, y_key]") from the archive."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if split is None and "X" not in keys and "X_test" in keys:
                split = "test"
            x_key, y_key = ("X", "y") if split is None else (f"X_{split}", f"y_{split}")
            if x_key in keys:
                y = archive[y_key] if y_key in keys else None
                scored = x_key if y is None else f"{x_key}, {y_key}"
                return archive[x_key], y, split, scored
    except ValueError as exc:
        raise DataError(f"{path.name}: contains pickled objects or is not an .npz archive") from exc
    except (OSError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise DataError(f"{path.name}: cannot be read as an .npz archive: {exc}") from exc
    listing = ", ".join(sorted(keys)) or "nothing"
    if split is not None:
        raise DataError(f"split: {path.name} has no {x_key} for --split {split}; has {listing}")
    raise DataError(
        f"{path.name}: needs key 'X' (and optionally 'y'), or 'X_train' / 'X_val' / 'X_test' "
        f"with --split; has {listing}"
    )


def _read_csv(
    path: Path, label_column: str | None, class_names: tuple[str, ...] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with path.open(encoding="utf-8") as handle:
            header = [name.strip() for name in handle.readline().split(",")]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: cannot be read as CSV: {exc}") from exc
    if label_column is None or label_column not in header:
        try:
            X = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise DataError(f"{path.name}: features must be numbers: {exc}") from exc
        return X, None
    X, labels, _ = read_csv_table(path, label_column)
    if class_names:
        index = {name: position for position, name in enumerate(class_names)}
        unknown = sorted({label for label in labels if label not in index})
        if unknown:
            raise DataError(f"{path.name}: labels {unknown[:5]} are not classes of the model")
        return X, np.array([index[label] for label in labels], dtype=np.int64)
    try:
        return X, np.array([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        return X, np.array([float(label) for label in labels], dtype=np.float32)
