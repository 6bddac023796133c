"""The general path: caches, activations, batchnorm running statistics, every gradient."""

from __future__ import annotations

import numpy as np

from hpsearch.nn import general
from hpsearch.nn.model import MLP, MLPConfig


def bn_model() -> MLP:
    config = MLPConfig(input_dim=4, output_dim=3, hidden_sizes=(5, 6), batchnorm=True,
                       activation="tanh", dtype="float64")  # fmt: skip
    return MLP(config, np.random.default_rng(0))


def test_activations_have_the_hidden_shapes_and_give_the_test_scores() -> None:
    model = bn_model()
    X = np.random.default_rng(1).standard_normal((7, 4))
    scores, activations = general.forward_with_activations(model, X)
    assert {name: a.shape for name, a in activations.items()} == {
        "layer1": (7, 5), "layer2": (7, 6),
    }  # fmt: skip
    np.testing.assert_array_equal(scores, general.forward(model, X, "test", None)[0])
    assert np.abs(activations["layer1"]).max() < 1.0  # tanh outputs


def test_running_statistics_move_in_train_mode_only() -> None:
    model = bn_model()
    X = np.random.default_rng(1).standard_normal((7, 4)) + 3.0
    general.forward(model, X, "test", None)
    np.testing.assert_array_equal(model.buffers["running_mean1"], 0.0)
    _, caches = general.forward(model, X, "train", None)
    assert len(caches) == 3 and np.abs(model.buffers["running_mean1"]).max() > 0.0


def test_backward_writes_every_gradient() -> None:
    model = bn_model()
    X = np.random.default_rng(1).standard_normal((7, 4))
    model.grad_vector[...] = np.nan
    scores, caches = general.forward(model, X, "train", None)
    general.backward(model, np.ones_like(scores) / 7, caches)
    assert np.isfinite(model.grad_vector).all()
