"""The `Dataset` record and the helpers every source shares.

A source produces either whole arrays `X, y` (split here by seeded fractions)
or explicit splits. `assemble_dataset` turns either into a validated
`Dataset`: float32 features, targets encoded for their task, `max_train`
applied.

Targets and their task:
- 1-D integer (or bool) labels: "classification", class indices 0..C-1.
- 1-D string labels: "classification", indices into `class_names` (sorted).
- 2-D integer (or bool) with values in {0, 1} or {-1, +1}: "multilabel",
  one column per attribute.
- floating point, 1-D (N,) or 2-D (N, T): "regression", float32 (N, T).
  Labels stored as floats are regression targets, even when integer-valued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hpsearch.config import DataConfig
from hpsearch.errors import DataError

__all__ = [
    "Dataset",
    "Task",
    "assemble_dataset",
    "check_features",
    "encode_targets",
    "split_indices",
    "stratified_order",
]

Task = Literal["classification", "multilabel", "regression"]

SPLIT_NAMES = ("train", "val", "test")
TARGET_FAMILIES = {
    "b": "integer",
    "i": "integer",
    "u": "integer",
    "f": "float",
    "U": "string",
    "S": "string",
}

# Stream indices for np.random.default_rng([split_seed, stream]).
GENERATE_STREAM = 0
SPLIT_STREAM = 1
SUBSAMPLE_STREAM = 2


@dataclass(frozen=True)
class Dataset:
    """Train / validation (/ test) splits of one data set.

    - X_*: float32 (N, D); y_*: int64 (N,) class indices, int64 (N, A)
      attributes in {0, 1} or {-1, +1}, or float32 (N, T) regression targets.
    - num_classes: C classes, A attributes or T regression targets.
    - image_shape: (C, H, W) when each row of X is an image flattened in
      channel, row, column order; None otherwise.
    - class_names: the original label of each class index when the labels were
      strings (or remapped numbers); None otherwise.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int
    task: Task
    name: str
    image_shape: tuple[int, int, int] | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.X_test is None) != (self.y_test is None):
            raise DataError(f"{self.name}: X_test and y_test must be given together")
        for split in SPLIT_NAMES:
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if X is None:
                continue
            if X.dtype != np.float32 or X.ndim != 2 or X.shape[1] != self.input_dim:
                raise DataError(
                    f"{self.name}: X_{split} must be float32 (N, {self.input_dim}), "
                    f"got {X.dtype} {X.shape}"
                )
            if len(y) != len(X):
                raise DataError(
                    f"{self.name}: X_{split} has {len(X)} examples but y_{split} has {len(y)}"
                )
        if self.image_shape is not None and int(np.prod(self.image_shape)) != self.input_dim:
            raise DataError(
                f"{self.name}: image_shape {self.image_shape} does not match "
                f"{self.input_dim} features"
            )

    @property
    def input_dim(self) -> int:
        """D, the number of features per example."""
        return int(self.X_train.shape[1])

    @property
    def output_dim(self) -> int:
        """The number of network outputs: classes, attributes or targets."""
        return self.num_classes


def check_features(X: np.ndarray, key: str) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    """Validate a feature array and flatten images.

    Inputs: X of shape (N, D), (N, H, W) or (N, C, H, W), any numeric dtype.
    Returns (float32 (N, D), image_shape or None). Raises `DataError` naming
    `key` for a wrong ndim, a non-numeric dtype or NaN/inf values.
    """
    if X.dtype.kind not in "biuf":
        raise DataError(f"{key} must hold numbers, got dtype {X.dtype}")
    if X.ndim not in (2, 3, 4):
        raise DataError(
            f"{key} must be 2-D (N, D), 3-D (N, H, W) or 4-D (N, C, H, W), got shape {X.shape}"
        )
    image_shape: tuple[int, int, int] | None = None
    if X.ndim == 3:
        image_shape = (1, int(X.shape[1]), int(X.shape[2]))
    elif X.ndim == 4:
        image_shape = (int(X.shape[1]), int(X.shape[2]), int(X.shape[3]))
    flat = np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float32)
    if flat.shape[1] == 0:
        raise DataError(f"{key} has no features (shape {X.shape})")
    if not np.all(np.isfinite(flat)):
        bad = int(np.count_nonzero(~np.isfinite(flat)))
        raise DataError(f"{key} contains {bad} NaN or infinite values (after float32 conversion)")
    return flat, image_shape


def encode_targets(
    targets: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], Task, int, tuple[str, ...] | None]:
    """Encode the target arrays of all splits together (see the module doc).

    Inputs: {key: y} for every split, e.g. {"y_train": ..., "y_val": ...}.
    Returns ({key: encoded y}, task, num_classes, class_names or None).
    """
    keys = ", ".join(targets)
    families = {TARGET_FAMILIES.get(y.dtype.kind, str(y.dtype)) for y in targets.values()}
    ndims = {y.ndim for y in targets.values()}
    if len(families) > 1 or len(ndims) > 1:
        raise DataError(
            f"{keys} must share one kind of values and ndim, got {sorted(families)} / {ndims}"
        )
    family, ndim = families.pop(), ndims.pop()
    if ndim not in (1, 2):
        raise DataError(f"{keys} must be 1-D (N,) or 2-D (N, A), got ndim {ndim}")
    if family == "string":
        return _encode_string_labels(targets, ndim)
    if family == "float":
        return _encode_regression(targets)
    if family != "integer":
        raise DataError(f"{keys} must hold integers, booleans, floats or strings, got {family}")
    if ndim == 2:
        return _encode_multilabel(targets)
    return _encode_class_indices(targets)


def _encode_string_labels(
    targets: Mapping[str, np.ndarray], ndim: int
) -> tuple[dict[str, np.ndarray], Task, int, tuple[str, ...]]:
    if ndim != 1:
        raise DataError(f"string labels must be 1-D, got ndim {ndim} in {', '.join(targets)}")
    names = np.unique(np.concatenate([y.astype(str) for y in targets.values()]))
    if len(names) < 2:
        raise DataError(f"classification needs at least 2 classes, got {names.tolist()}")
    encoded = {
        key: np.searchsorted(names, y.astype(str)).astype(np.int64) for key, y in targets.items()
    }
    return encoded, "classification", len(names), tuple(str(name) for name in names)


def _encode_regression(
    targets: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], Task, int, None]:
    encoded = {}
    for key, y in targets.items():
        values = y.reshape(len(y), -1).astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{key} contains NaN or infinite regression targets")
        encoded[key] = values
    widths = {y.shape[1] for y in encoded.values()}
    if len(widths) != 1:
        raise DataError(f"regression targets disagree on their width: {sorted(widths)}")
    return encoded, "regression", widths.pop(), None


def _encode_multilabel(
    targets: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], Task, int, None]:
    widths = {y.shape[1] for y in targets.values()}
    if len(widths) != 1:
        raise DataError(f"multi-label targets disagree on their width: {sorted(widths)}")
    values = set(
        np.unique(np.concatenate([y.astype(np.int64).ravel() for y in targets.values()])).tolist()
    )
    if not (values <= {0, 1} or values <= {-1, 1}):
        raise DataError(
            f"multi-label targets ({', '.join(targets)}) must be in {{0, 1}} or {{-1, +1}}, "
            f"got values {sorted(values)[:10]}"
        )
    encoded = {key: y.astype(np.int64) for key, y in targets.items()}
    return encoded, "multilabel", widths.pop(), None


def _encode_class_indices(
    targets: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], Task, int, None]:
    encoded = {key: y.astype(np.int64) for key, y in targets.items()}
    for key, y in encoded.items():
        if len(y) and y.min() < 0:
            raise DataError(f"{key} must hold class indices 0..C-1, got {int(y.min())}")
    num_classes = 1 + max(int(y.max()) for y in encoded.values() if len(y))
    if num_classes < 2:
        raise DataError(
            f"classification needs at least 2 classes, got labels up to {num_classes - 1}"
        )
    return encoded, "classification", num_classes, None


def stratified_order(labels: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded permutation of range(n) whose every prefix is close to stratified.

    Each class is shuffled, its members get evenly spaced positions in (0, 1),
    and all examples are sorted by position, so taking the first k examples
    takes about the same fraction of every class. labels: (n,) int or None
    (then a plain permutation).
    """
    if labels is None:
        return rng.permutation(n)
    position = np.empty(n, dtype=np.float64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.lexsort((rng.random(n), position))


def split_indices(
    labels: np.ndarray | None, n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, disjoint (train, val, test) index arrays covering range(n).

    Stratified by `labels` (n,) when given. The validation split gets
    round(n * val_fraction) examples (at least 1), the test split
    round(n * test_fraction) (at least 1 when the fraction is positive).
    """
    num_val = max(1, round(n * val_fraction))
    num_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - num_val - num_test < 1:
        raise DataError(
            f"{n} examples are too few for val_fraction={val_fraction} and "
            f"test_fraction={test_fraction}: the training split would be empty"
        )
    order = stratified_order(labels, n, np.random.default_rng([seed, SPLIT_STREAM]))
    val = np.sort(order[:num_val])
    test = np.sort(order[num_val : num_val + num_test])
    train = np.sort(order[num_val + num_test :])
    return train, val, test


def assemble_dataset(
    name: str,
    arrays: Mapping[str, np.ndarray],
    config: DataConfig,
    image_shape: tuple[int, int, int] | None = None,
) -> Dataset:
    """Build a `Dataset` from `{"X", "y"}` or `{"X_train", "y_train", "X_val", ...}`.

    Whole arrays are split by the config's seeded fractions (stratified for
    class labels); explicit splits are used as given. `max_train` then caps
    the training split with a seeded, stratified subsample.
    """
    if "X" in arrays:
        splits = _split_whole(arrays["X"], arrays["y"], config)
    else:
        splits = {key: arrays[key] for key in arrays if key[:2] in ("X_", "y_")}
    features, found_shape = _check_split_features(splits)
    targets, task, num_classes, class_names = encode_targets(
        {f"y_{split}": splits[f"y_{split}"] for split in features}
    )
    X_train, y_train = _cap_train(features["train"], targets["y_train"], task, config)
    return Dataset(
        X_train=X_train,
        y_train=y_train,
        X_val=features["val"],
        y_val=targets["y_val"],
        X_test=features.get("test"),
        y_test=targets.get("y_test"),
        num_classes=num_classes,
        task=task,
        name=name,
        image_shape=image_shape or found_shape,
        class_names=class_names,
    )


def _check_split_features(
    splits: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], tuple[int, int, int] | None]:
    """float32 (N, D) features per split name, and the image shape of 3-D/4-D X."""
    features: dict[str, np.ndarray] = {}
    image_shape = None
    for split in SPLIT_NAMES:
        if f"X_{split}" not in splits:
            continue
        features[split], found_shape = check_features(splits[f"X_{split}"], f"X_{split}")
        image_shape = image_shape or found_shape
        num_labels = len(splits[f"y_{split}"])
        if len(features[split]) != num_labels:
            raise DataError(
                f"X_{split} has {len(features[split])} examples but y_{split} has {num_labels}"
            )
    return features, image_shape


def _split_whole(X: np.ndarray, y: np.ndarray, config: DataConfig) -> dict[str, np.ndarray]:
    if len(X) != len(y):
        raise DataError(f"X has {len(X)} examples but y has {len(y)}")
    stratify = y if y.ndim == 1 and y.dtype.kind in "biuUS" else None
    train, val, test = split_indices(
        stratify, len(X), config.val_fraction, config.test_fraction, config.split_seed
    )
    splits = {"X_train": X[train], "y_train": y[train], "X_val": X[val], "y_val": y[val]}
    if len(test):
        splits.update(X_test=X[test], y_test=y[test])
    return splits


def _cap_train(
    X: np.ndarray, y: np.ndarray, task: Task, config: DataConfig
) -> tuple[np.ndarray, np.ndarray]:
    if config.max_train is None or len(X) <= config.max_train:
        return X, y
    labels = y if task == "classification" else None
    rng = np.random.default_rng([config.split_seed, SUBSAMPLE_STREAM])
    keep = np.sort(stratified_order(labels, len(X), rng)[: config.max_train])
    return X[keep], y[keep]
