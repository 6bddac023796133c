"""Built-in data sets: the notes' spiral, gaussian blobs, and scikit-learn's digits.

None of them touches the network: the spiral and the blobs are generated from
`split_seed`, and the 1,797 digits are read from the CSV file that
scikit-learn ships inside its package.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from hpsearch.config import DataConfig
from hpsearch.data.datasets import GENERATE_STREAM, Dataset, assemble_dataset
from hpsearch.errors import DataError

__all__ = ["load_blobs", "load_digits", "load_spiral", "make_blobs", "make_spiral", "read_digits"]

DIGITS_IMAGE_SHAPE = (1, 8, 8)
BLOB_CENTER_RANGE = 5.0


def make_spiral(
    num_classes: int, points_per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The notes' spiral: K arms of N points in 2-D.

    For arm j: r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + 0.2 randn,
    x = (r sin t, r cos t).
    Returns X float32 (K*N, 2) and y int64 (K*N,), arm j at rows jN..(j+1)N-1.
    """
    radius = np.linspace(0.0, 1.0, points_per_class)
    X = np.empty((num_classes * points_per_class, 2), dtype=np.float64)
    for arm in range(num_classes):
        theta = np.linspace(arm * 4.0, (arm + 1) * 4.0, points_per_class)
        theta = theta + rng.standard_normal(points_per_class) * 0.2
        rows = slice(arm * points_per_class, (arm + 1) * points_per_class)
        X[rows, 0] = radius * np.sin(theta)
        X[rows, 1] = radius * np.cos(theta)
    y = np.repeat(np.arange(num_classes, dtype=np.int64), points_per_class)
    return X.astype(np.float32), y


def make_blobs(
    num_classes: int, points_per_class: int, num_features: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """K isotropic unit-variance gaussian blobs in D dimensions.

    Centres are drawn uniformly from [-5, 5]^D; each point is its class centre
    plus standard normal noise.
    Returns X float32 (K*N, D) and y int64 (K*N,), class k at rows kN..(k+1)N-1.
    """
    centers = rng.uniform(-BLOB_CENTER_RANGE, BLOB_CENTER_RANGE, (num_classes, num_features))
    y = np.repeat(np.arange(num_classes, dtype=np.int64), points_per_class)
    X = centers[y] + rng.standard_normal((len(y), num_features))
    return X.astype(np.float32), y


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digit images, read from its packaged CSV.

    Returns X float32 (1797, 64) with pixel values 0..16 (rows of the image in
    order) and y int64 (1797,) digits 0..9.
    """
    try:
        with gzip.open(_digits_file(), "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        raise DataError(f"cannot read scikit-learn's packaged digits data: {exc}") from exc
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


def _digits_file() -> Path:
    """scikit-learn's `datasets/data/digits.csv.gz`, found without importing sklearn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"


def load_spiral(config: DataConfig) -> Dataset:
    """The spiral with `num_classes` arms of `points_per_class` points, split."""
    rng = np.random.default_rng([config.split_seed, GENERATE_STREAM])
    X, y = make_spiral(config.num_classes, config.points_per_class, rng)
    return assemble_dataset("spiral", {"X": X, "y": y}, config)


def load_blobs(config: DataConfig) -> Dataset:
    """`num_classes` blobs of `points_per_class` points in `num_features` dims, split."""
    rng = np.random.default_rng([config.split_seed, GENERATE_STREAM])
    X, y = make_blobs(config.num_classes, config.points_per_class, config.num_features, rng)
    return assemble_dataset("blobs", {"X": X, "y": y}, config)


def load_digits(config: DataConfig) -> Dataset:
    """The digits as (1, 8, 8) images, split by the config's fractions."""
    X, y = read_digits()
    return assemble_dataset("digits", {"X": X, "y": y}, config, image_shape=DIGITS_IMAGE_SHAPE)
