"""Preprocessing fitted on the training split only (notes, part 2).

The steps, in order, each optional:

1. mean subtraction: `feature` subtracts the per-feature mean (D,), `global`
   one value over all features, `channel` one value per colour channel of
   (C, H, W) images;
2. `std`: divide every feature by its training standard deviation; features
   that are constant on the training split (max == min) are divided by 1;
3. PCA: centre the result on its training mean, take the covariance
   `Xc^T Xc / N`, keep its top `pca_components` eigenvectors (all D when
   only `whiten` is set) and project: `Xrot = Xc U[:, :k]`;
4. `whiten`: divide each component by `sqrt(eigenvalue + whiten_epsilon)`.

Fitting computes the statistics in float64; `transform` applies them
unchanged to any split, in row chunks, and returns float32. `state()` gives
the statistics as plain arrays and `from_state` rebuilds an identical
preprocessor, so a checkpoint can carry it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from hpsearch.config import PreprocessConfig, format_validation_error
from hpsearch.errors import DataError

__all__ = ["Preprocessor", "fit_preprocessor"]

CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Preprocessor:
    """Fitted preprocessing statistics (float64) and the config that chose them.

    - mean: (D,) for `feature`, (1,) for `global`, (C,) for `channel`, else None.
    - image_shape: (C, H, W), kept for `channel` means, else None.
    - std: (D,) divisors (1 for constant features) when `std`, else None.
    - pca_mean: (D,) training mean after steps 1-2; components: (D, k)
      eigenvectors by decreasing eigenvalue; eigenvalues: (k,) >= 0.
      All three are None without PCA or whitening.
    """

    config: PreprocessConfig
    input_dim: int
    mean: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None
    std: np.ndarray | None = None
    pca_mean: np.ndarray | None = None
    components: np.ndarray | None = None
    eigenvalues: np.ndarray | None = None

    def __post_init__(self) -> None:
        expected = _expected_shapes(self.config, self.input_dim, self.image_shape)
        for key, shape in expected.items():
            value = getattr(self, key)
            if value is None or value.shape != shape:
                found = "missing" if value is None else f"shape {value.shape}"
                raise DataError(f"preprocessor {key} must have shape {shape}, {found}")
        for key in _ARRAY_KEYS:
            if key not in expected and getattr(self, key) is not None:
                raise DataError(
                    f"preprocessor has a {key} that its config {self.config} does not use"
                )

    @property
    def output_dim(self) -> int:
        """Features after preprocessing: k with PCA or whitening, else D."""
        return self.input_dim if self.components is None else int(self.components.shape[1])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted steps. X: (N, D) -> float32 (N, output_dim)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise DataError(
                f"X must have shape (N, {self.input_dim}) as the preprocessor was fitted on, "
                f"got {X.shape}"
            )
        out = np.empty((len(X), self.output_dim), dtype=np.float32)
        for rows in _chunks(len(X)):
            out[rows] = self._transform_chunk(X[rows])
        return out

    def _transform_chunk(self, X: np.ndarray) -> np.ndarray:
        Z = _scale(X, self._mean_vector(), self.std)
        if self.components is None or self.pca_mean is None or self.eigenvalues is None:
            return Z
        Z = (Z - self.pca_mean) @ self.components
        if self.config.whiten:
            Z /= np.sqrt(self.eigenvalues + self.config.whiten_epsilon)
        return Z

    def _mean_vector(self) -> np.ndarray | None:
        return _expand_mean(self.mean, self.image_shape)

    def state(self) -> dict[str, np.ndarray]:
        """The fitted statistics as plain arrays (float64, and int64 for sizes)."""
        state = {"input_dim": np.array(self.input_dim, dtype=np.int64)}
        if self.image_shape is not None:
            state["image_shape"] = np.array(self.image_shape, dtype=np.int64)
        for key in ("mean", "std", "pca_mean", "components", "eigenvalues"):
            value = getattr(self, key)
            if value is not None:
                state[key] = np.array(value, dtype=np.float64)
        return state

    @classmethod
    def from_state(
        cls, config: PreprocessConfig | Mapping[str, Any], state: Mapping[str, np.ndarray]
    ) -> Preprocessor:
        """Rebuild a fitted preprocessor from `config` (model or plain dict) and `state()`."""
        if not isinstance(config, PreprocessConfig):
            try:
                config = PreprocessConfig.model_validate(dict(config))
            except ValidationError as exc:
                raise DataError(
                    f"invalid preprocess config\n{format_validation_error(exc)}"
                ) from exc
        if "input_dim" not in state:
            raise DataError("preprocessor state is missing key 'input_dim'")
        image_shape = state.get("image_shape")
        arrays = {
            key: np.asarray(state[key], dtype=np.float64) for key in _ARRAY_KEYS if key in state
        }
        return cls(
            config=config,
            input_dim=int(state["input_dim"]),
            image_shape=None if image_shape is None else _image_shape(image_shape),
            **arrays,
        )


_ARRAY_KEYS = ("mean", "std", "pca_mean", "components", "eigenvalues")


def _image_shape(values: Any) -> tuple[int, int, int]:
    shape = tuple(int(value) for value in np.asarray(values).ravel())
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"image_shape must be three positive sizes (C, H, W), got {shape}")
    return (shape[0], shape[1], shape[2])


def _expected_shapes(
    config: PreprocessConfig,
    input_dim: int,
    image_shape: tuple[int, int, int] | None,
) -> dict[str, tuple[int, ...]]:
    """The statistics `config` needs and their shapes."""
    shapes: dict[str, tuple[int, ...]] = {}
    if config.mean == "feature":
        shapes["mean"] = (input_dim,)
    elif config.mean == "global":
        shapes["mean"] = (1,)
    elif config.mean == "channel":
        channels = _check_image_shape(image_shape, input_dim)
        shapes["mean"] = (channels,)
    if config.std:
        shapes["std"] = (input_dim,)
    if config.pca_components is not None or config.whiten:
        k = config.pca_components or input_dim
        shapes.update(pca_mean=(input_dim,), components=(input_dim, k), eigenvalues=(k,))
    return shapes


def _check_image_shape(image_shape: tuple[int, int, int] | None, input_dim: int) -> int:
    if image_shape is None:
        raise DataError(
            "preprocess.mean='channel' needs image-shaped features (C, H, W); this data set "
            "has no image_shape: use mean='feature' or 'global'"
        )
    if int(np.prod(image_shape)) != input_dim:
        raise DataError(f"image_shape {image_shape} does not match {input_dim} features")
    return image_shape[0]


def _expand_mean(
    mean: np.ndarray | None, image_shape: tuple[int, int, int] | None
) -> np.ndarray | None:
    """The mean as a (D,) vector (per-channel means repeated over pixels) or (1,)."""
    if mean is None or image_shape is None:
        return mean
    return np.repeat(mean, image_shape[1] * image_shape[2])


def _chunks(num_rows: int) -> Iterator[slice]:
    for start in range(0, num_rows, CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, num_rows))


def _scale(X: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None) -> np.ndarray:
    """Steps 1-2 on a chunk, in float64: (X - mean) / std."""
    Z = np.array(X, dtype=np.float64)
    if mean is not None:
        Z -= mean
    if std is not None:
        Z /= std
    return Z


def fit_preprocessor(
    config: PreprocessConfig, X_train: np.ndarray, image_shape: tuple[int, int, int] | None = None
) -> Preprocessor:
    """Fit the configured steps on the training features only.

    Inputs: X_train (N, D); image_shape (C, H, W) for `mean='channel'`.
    Returns a `Preprocessor`. Raises `DataError` for an empty or non-2-D
    X_train, `channel` without an image shape, or pca_components > D.
    """
    X_train = np.asarray(X_train)
    if X_train.ndim != 2 or len(X_train) == 0:
        raise DataError(f"X_train must be a non-empty (N, D) array, got shape {X_train.shape}")
    num_features = X_train.shape[1]
    if config.pca_components is not None and config.pca_components > num_features:
        raise DataError(
            f"preprocess.pca_components={config.pca_components} exceeds the "
            f"{num_features} input features"
        )
    feature_mean = X_train.mean(axis=0, dtype=np.float64)
    mean = _fit_mean(config, X_train, feature_mean, image_shape)
    kept_shape = image_shape if config.mean == "channel" else None
    std = _fit_std(X_train) if config.std else None
    pca: dict[str, np.ndarray] = {}
    if config.pca_components is not None or config.whiten:
        mean_vector = _expand_mean(mean, kept_shape)
        pca = _fit_pca(config, X_train, feature_mean, mean_vector, std)
    return Preprocessor(
        config=config,
        input_dim=num_features,
        mean=mean,
        image_shape=kept_shape,
        std=std,
        **pca,
    )


def _fit_mean(
    config: PreprocessConfig,
    X_train: np.ndarray,
    feature_mean: np.ndarray,
    image_shape: tuple[int, int, int] | None,
) -> np.ndarray | None:
    if config.mean == "feature":
        return feature_mean
    if config.mean == "global":
        return np.array([feature_mean.mean()])
    if config.mean == "channel":
        channels = _check_image_shape(image_shape, X_train.shape[1])
        return feature_mean.reshape(channels, -1).mean(axis=1)
    return None


def _fit_std(X_train: np.ndarray) -> np.ndarray:
    std = X_train.std(axis=0, dtype=np.float64)
    constant = X_train.max(axis=0) == X_train.min(axis=0)
    return np.where(constant, 1.0, std)


def _fit_pca(
    config: PreprocessConfig,
    X_train: np.ndarray,
    feature_mean: np.ndarray,
    mean_vector: np.ndarray | None,
    std: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """PCA statistics: eigenvectors of the covariance of steps 1-2's output."""
    num_features = X_train.shape[1]
    pca_mean = _scale(feature_mean[None, :], mean_vector, std)[0]
    covariance = np.zeros((num_features, num_features))
    for rows in _chunks(len(X_train)):
        centred = _scale(X_train[rows], mean_vector, std) - pca_mean
        covariance += centred.T @ centred
    covariance /= len(X_train)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    k = config.pca_components or num_features
    components = eigenvectors[:, order[:k]]
    largest = np.argmax(np.abs(components), axis=0)
    components = components * np.sign(components[largest, np.arange(k)])
    return {
        "pca_mean": pca_mean,
        "components": components,
        "eigenvalues": np.clip(eigenvalues[order[:k]], 0.0, None),
    }
