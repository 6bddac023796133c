"""Ensembles of real (small) members: combination, preprocessing, Polyak averages, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from hpsearch.ensembles import (
    Ensemble,
    Member,
    average_parameters,
    ensemble_from_checkpoint,
    ensemble_to_checkpoint,
    member_from_checkpoint,
    refit_batchnorm,
)
from hpsearch.ensembles.combine import outputs_from_scores
from hpsearch.errors import CheckpointError, DataError, EnsembleError
from hpsearch.training import load_model
from tests.ensembles.members import blobs_config, blobs_data, train_checkpoints, trained_member


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Member]:
    tmp = tmp_path_factory.mktemp("members")
    return [
        trained_member(tmp, "plain", seed=1),
        trained_member(tmp, "std", seed=2, preprocess={"mean": "feature", "std": True}),
        trained_member(tmp, "pca", seed=3, preprocess={"pca_components": 3}),
    ]


def test_combined_outputs_are_the_weighted_mean_of_member_probabilities(
    members: list[Member], tmp_path: Path
) -> None:
    data = blobs_data(tmp_path)
    weights = np.array([0.5, 0.3, 0.2])
    ensemble = Ensemble("top_k", members, weights)
    by_hand = sum(
        w * softmax(load_model(m.checkpoint).scores(data.X_val).astype(np.float64))
        for w, m in zip(weights, members, strict=True)
    )
    np.testing.assert_allclose(ensemble.outputs(data.X_val), by_hand, rtol=1e-12, atol=1e-15)
    assert np.array_equal(ensemble.predict(data.X_val), by_hand.argmax(axis=1))


def test_each_member_uses_its_own_preprocessing(members: list[Member], tmp_path: Path) -> None:
    data = blobs_data(tmp_path)
    plain, standardized, pca = (load_model(m.checkpoint) for m in members)
    assert standardized.preprocessor.std is not None and plain.preprocessor.std is None
    assert pca.preprocessor.output_dim == 3 and plain.preprocessor.output_dim == 5
    ensemble = Ensemble("top_k", members, [1 / 3] * 3)
    outputs = ensemble.member_outputs(data.X_val)
    own = softmax(standardized.model.scores(standardized.preprocessor.transform(data.X_val)))
    np.testing.assert_allclose(outputs[1], own, rtol=1e-6)
    wrong = softmax(standardized.model.scores(plain.preprocessor.transform(data.X_val)))
    assert not np.allclose(outputs[1], wrong, rtol=1e-3)


def test_svm_members_average_the_softmax_of_their_scores() -> None:
    scores = np.array([[2.0, -1.0, 0.5]])
    np.testing.assert_allclose(outputs_from_scores(scores, "svm", 3), softmax(scores))
    sigmoid = outputs_from_scores(np.array([[0.0, 3.0]]), "attribute_hinge", 2)
    np.testing.assert_allclose(sigmoid, [[0.5, 1 / (1 + np.exp(-3.0))]])


def test_predicting_on_data_of_the_wrong_width_names_the_width(members: list[Member]) -> None:
    ensemble = Ensemble("top_k", members, [1 / 3] * 3)
    with pytest.raises(DataError, match="take 5 features"):
        ensemble.predict(np.zeros((4, 7), dtype=np.float32))


def test_members_of_different_tasks_or_bad_weights_are_refused(
    members: list[Member], tmp_path: Path
) -> None:
    regression = trained_member(tmp_path, "wide", seed=4, data={"num_classes": 4})
    with pytest.raises(EnsembleError, match="outputs"):
        Ensemble("top_k", [members[0], regression], [0.5, 0.5])
    with pytest.raises(EnsembleError, match="sum to 1"):
        Ensemble("top_k", members, [0.5, 0.5, 0.5])


def test_polyak_average_of_identical_checkpoints_is_that_model_exactly(
    members: list[Member],
) -> None:
    params = members[0].checkpoint.params
    averaged = average_parameters([params, params, params])
    assert sorted(averaged) == sorted(params)
    for name, value in params.items():
        assert averaged[name].dtype == value.dtype and np.array_equal(averaged[name], value)
    two = average_parameters([params, {k: v + 2 for k, v in params.items()}])
    np.testing.assert_allclose(two["W1"], params["W1"] + 1, rtol=1e-6)


def test_batchnorm_statistics_are_refitted_on_the_training_split(tmp_path: Path) -> None:
    config = blobs_config(model={"hidden_sizes": [16, 8], "batchnorm": True})
    checkpoint = train_checkpoints(tmp_path, config, "bn")[-1]
    loaded = load_model(checkpoint)
    X = loaded.preprocessor.transform(blobs_data(tmp_path).X_train)
    buffers = refit_batchnorm(loaded.model, X)
    z1 = X @ loaded.model.params["W1"] + loaded.model.params["b1"]
    np.testing.assert_allclose(buffers["running_mean1"], z1.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(buffers["running_var1"], z1.var(axis=0), rtol=1e-4, atol=1e-5)
    assert not np.allclose(buffers["running_mean1"], checkpoint.buffers["running_mean1"])


def test_ensemble_file_round_trip_predicts_identically(
    members: list[Member], tmp_path: Path
) -> None:
    data = blobs_data(tmp_path)
    ensemble = Ensemble("greedy", members, [0.6, 0.2, 0.2])
    path = tmp_path / "val0.9000_ensemble_000001_greedy.npz"
    save_checkpoint(path, ensemble_to_checkpoint(ensemble, {"val_accuracy": 0.9}))
    again = ensemble_from_checkpoint(load_checkpoint(path))
    assert again.kind == "greedy" and again.weights.tolist() == [0.6, 0.2, 0.2]
    assert np.array_equal(again.outputs(data.X_test), ensemble.outputs(data.X_test))


def test_a_truncated_or_altered_ensemble_file_is_refused(
    members: list[Member], tmp_path: Path
) -> None:
    path = tmp_path / "val0.9000_ensemble_000001_top_k.npz"
    save_checkpoint(path, ensemble_to_checkpoint(Ensemble("top_k", members, [1 / 3] * 3), {}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    index = data.find(b"m001.W1") + 200
    path.write_bytes(data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_plain_checkpoint_is_not_an_ensemble(members: list[Member]) -> None:
    with pytest.raises(CheckpointError, match="not an ensemble"):
        ensemble_from_checkpoint(members[0].checkpoint)
    slim = member_from_checkpoint(members[0].checkpoint)
    assert isinstance(slim.checkpoint, Checkpoint) and slim.checkpoint.optimizer == {}
