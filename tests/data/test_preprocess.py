"""Preprocessing statistics against hand-worked numbers and covariance formulas."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.config import PreprocessConfig
from hpsearch.data import Preprocessor, fit_preprocessor
from hpsearch.errors import DataError


def correlated_data(num_rows: int = 2000, num_features: int = 5, seed: int = 0) -> np.ndarray:
    """Gaussian rows with a full, uneven covariance and a non-zero mean."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((num_features, num_features)) * np.linspace(3.0, 0.3, num_features)
    return (rng.standard_normal((num_rows, num_features)) @ mixing + 4.0).astype(np.float32)


def covariance(Z: np.ndarray) -> np.ndarray:
    """Xc^T Xc / N in float64."""
    centred = Z.astype(np.float64) - Z.mean(axis=0, dtype=np.float64)
    return centred.T @ centred / len(Z)


def test_feature_mean_hand_worked() -> None:
    X = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
    prep = fit_preprocessor(PreprocessConfig(mean="feature"), X)
    assert prep.state()["mean"].tolist() == [2.0, 20.0]
    out = prep.transform(X)
    assert out.dtype == np.float32 and out.tolist() == [[-1.0, -10.0], [1.0, 10.0]]


def test_global_mean_is_one_value() -> None:
    X = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
    prep = fit_preprocessor(PreprocessConfig(mean="global"), X)
    assert prep.state()["mean"].tolist() == [11.0]
    assert prep.transform(X).tolist() == [[-10.0, -1.0], [-8.0, 19.0]]


def test_channel_means_on_images() -> None:
    # two (2 channels, 2x2) images: channel 0 values {1, 3}, channel 1 values {10, 20}
    X = np.array([[1, 1, 1, 1, 10, 10, 10, 10], [3, 3, 3, 3, 20, 20, 20, 20]], dtype=np.float32)
    prep = fit_preprocessor(PreprocessConfig(mean="channel"), X, image_shape=(2, 2, 2))
    assert prep.state()["mean"].tolist() == [2.0, 15.0]
    assert prep.state()["image_shape"].tolist() == [2, 2, 2]
    assert prep.transform(X).tolist() == [[-1.0] * 4 + [-5.0] * 4, [1.0] * 4 + [5.0] * 4]


def test_channel_mean_needs_an_image_shape() -> None:
    with pytest.raises(DataError, match="mean='channel' needs image-shaped features"):
        fit_preprocessor(PreprocessConfig(mean="channel"), np.zeros((3, 4), dtype=np.float32))


def test_std_scaling_and_constant_features() -> None:
    X = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0], [4.0, 5.0, 8.0]], dtype=np.float32)
    prep = fit_preprocessor(PreprocessConfig(mean="feature", std=True), X)
    expected_std = np.sqrt([8.0 / 3.0, 0.0, 26.0 / 3.0])  # deviations (-2,0,2), (-3,-1,4)
    assert np.allclose(prep.state()["std"], [expected_std[0], 1.0, expected_std[2]])
    out = prep.transform(X)
    assert np.allclose(out[:, [0, 2]].std(axis=0), 1.0, atol=1e-6)
    assert np.all(out[:, 1] == 0.0)


def test_pca_hand_worked_on_a_line() -> None:
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [-2.0, -2.0], [2.0, 2.0]], dtype=np.float32)
    prep = fit_preprocessor(PreprocessConfig(mean="feature", pca_components=1), X)
    # covariance [[2.5, 2.5], [2.5, 2.5]]: eigenvalue 5 along (1, 1)/sqrt(2)
    assert np.allclose(prep.state()["eigenvalues"], [5.0])
    assert np.allclose(prep.state()["components"][:, 0], [2**-0.5, 2**-0.5])
    root2 = np.sqrt(2.0)
    assert np.allclose(prep.transform(X)[:, 0], [-root2, root2, -2 * root2, 2 * root2], atol=1e-6)
    assert prep.output_dim == 1


def test_pca_output_has_diagonal_decreasing_covariance() -> None:
    X = correlated_data()
    prep = fit_preprocessor(PreprocessConfig(mean="feature", pca_components=3), X)
    out = prep.transform(X)
    assert out.shape == (2000, 3) and prep.output_dim == 3
    cov = covariance(out)
    variances = np.diag(cov)
    assert np.all(np.abs(cov - np.diag(variances)) < 1e-4 * variances[0])
    assert np.all(np.diff(variances) < 0)
    top_eigenvalues = np.sort(np.linalg.eigvalsh(covariance(X)))[::-1][:3]
    assert np.allclose(variances, top_eigenvalues, rtol=1e-4)
    assert np.allclose(out.mean(axis=0), 0.0, atol=1e-3)


@pytest.mark.parametrize("components", [3, None])
def test_whitened_output_has_identity_covariance(components: int | None) -> None:
    X = correlated_data()
    config = PreprocessConfig(
        mean="feature", pca_components=components, whiten=True, whiten_epsilon=1e-8
    )
    prep = fit_preprocessor(config, X)
    out = prep.transform(X)
    k = components or 5
    assert out.shape == (2000, k) and prep.output_dim == k
    assert np.allclose(covariance(out), np.eye(k), atol=1e-4)


def test_whitening_epsilon_shrinks_small_components() -> None:
    X = correlated_data()
    config = PreprocessConfig(whiten=True, whiten_epsilon=1.0)
    prep = fit_preprocessor(config, X)
    eigenvalues = prep.state()["eigenvalues"]
    assert np.allclose(
        np.diag(covariance(prep.transform(X))), eigenvalues / (eigenvalues + 1.0), rtol=1e-4
    )


def test_pca_centres_even_without_mean_subtraction() -> None:
    X = correlated_data()
    prep = fit_preprocessor(PreprocessConfig(mean="none", pca_components=2), X)
    assert np.allclose(prep.transform(X).mean(axis=0), 0.0, atol=1e-3)


def test_pca_components_beyond_features_is_refused() -> None:
    with pytest.raises(DataError, match=r"pca_components=6 exceeds the 5 input"):
        fit_preprocessor(PreprocessConfig(pca_components=6), correlated_data())


def test_statistics_come_from_the_fitted_rows_only() -> None:
    X_train = correlated_data(seed=1)
    prep = fit_preprocessor(PreprocessConfig(std=True, pca_components=2, whiten=True), X_train)
    before = {key: value.copy() for key, value in prep.state().items()}
    first = prep.transform(correlated_data(50, seed=2))
    prep.transform(correlated_data(50, seed=3) * 100.0)
    assert all(np.array_equal(before[key], value) for key, value in prep.state().items())
    assert np.array_equal(first, prep.transform(correlated_data(50, seed=2)))


@pytest.mark.parametrize(
    "config",
    [
        PreprocessConfig(mean="none"),
        PreprocessConfig(mean="global", std=True),
        PreprocessConfig(mean="channel", pca_components=4, whiten=True, whiten_epsilon=0.1),
    ],
)
def test_state_round_trip_through_plain_values(config: PreprocessConfig) -> None:
    X = np.random.default_rng(0).random((40, 12), dtype=np.float32)
    prep = fit_preprocessor(config, X, image_shape=(3, 2, 2))
    state = prep.state()
    assert all(
        isinstance(value, np.ndarray) and value.dtype.kind in "fi" for value in state.values()
    )
    copies = {key: np.array(value) for key, value in state.items()}
    rebuilt = Preprocessor.from_state(config.model_dump(), copies)
    assert np.array_equal(rebuilt.transform(X), prep.transform(X))
    assert rebuilt.output_dim == prep.output_dim


def test_from_state_missing_statistic_is_named() -> None:
    prep = fit_preprocessor(PreprocessConfig(std=True), correlated_data())
    state = prep.state()
    del state["std"]
    with pytest.raises(DataError, match="preprocessor std must have shape"):
        Preprocessor.from_state(PreprocessConfig(std=True), state)


def test_from_state_invalid_config_is_refused() -> None:
    with pytest.raises(DataError, match="invalid preprocess config"):
        Preprocessor.from_state({"mean": "median"}, {"input_dim": np.array(3)})


def test_transform_with_wrong_width_is_refused() -> None:
    prep = fit_preprocessor(PreprocessConfig(), correlated_data())
    with pytest.raises(DataError, match=r"X must have shape \(N, 5\)"):
        prep.transform(np.zeros((2, 4), dtype=np.float32))


def test_transform_in_chunks_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    X = correlated_data()
    prep = fit_preprocessor(PreprocessConfig(std=True, pca_components=3), X)
    whole = prep.transform(X)
    monkeypatch.setattr("hpsearch.data.preprocess.CHUNK_ROWS", 7)
    assert np.allclose(prep.transform(X), whole, atol=1e-6)
    refit = fit_preprocessor(PreprocessConfig(std=True, pca_components=3), X)
    assert np.allclose(refit.state()["components"], prep.state()["components"], atol=1e-9)
