"""New data for `hpsearch predict`: raw features (and labels when present).

- `.npz`: `X` (and optionally `y`), or `X_test` (and `y_test`); loaded with
  `allow_pickle=False`. Images may be (N, C, H, W); they are flattened.
- `.csv`: a header row; the training configuration's label column is used
  as labels when present, every other column is a feature.

The path resolves inside the data root like every user path. Labels are
returned as they are; the checkpoint's class names map CSV text labels.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from hpsearch.config import TrainConfig
from hpsearch.data.files import read_csv_table
from hpsearch.data.paths import resolve_data_path
from hpsearch.errors import DataError

__all__ = ["read_prediction_inputs"]

_KEY_PAIRS = (("X", "y"), ("X_test", "y_test"))


def read_prediction_inputs(
    data_root: Path, user_path: str, config: TrainConfig, class_names: tuple[str, ...] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(X (N, D) float32, y or None) from an `.npz` or `.csv` under `data_root`."""
    path = resolve_data_path(Path(data_root), user_path)
    if path.suffix.lower() == ".npz":
        X, y = _read_npz(path)
    elif path.suffix.lower() == ".csv":
        X, y = _read_csv(path, config.data.label_column, class_names)
    else:
        raise DataError(f"{path.name}: expected a .npz or .csv file")
    X = X.reshape(len(X), -1)
    if X.dtype.kind not in "biuf" or not np.isfinite(X).all():
        raise DataError(f"{path.name}: features must be finite numbers")
    if y is not None and len(y) != len(X):
        raise DataError(f"{path.name}: {len(X)} feature rows but {len(y)} labels")
    return X.astype(np.float32), y


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            for x_key, y_key in _KEY_PAIRS:
                if x_key in archive.files:
                    y = archive[y_key] if y_key in archive.files else None
                    return archive[x_key], y
            listing = ", ".join(sorted(archive.files)) or "nothing"
    except ValueError as exc:
        raise DataError(f"{path.name}: contains pickled objects or is not an .npz archive") from exc
    except (OSError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise DataError(f"{path.name}: cannot be read as an .npz archive: {exc}") from exc
    raise DataError(f"{path.name}: needs key 'X' (and optionally 'y') or 'X_test'; has {listing}")


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
