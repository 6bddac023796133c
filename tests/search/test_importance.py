"""Importance: the share of accuracy variance a parameter's main effect explains."""

from __future__ import annotations

import math

import numpy as np

from hpsearch.search import SearchSpace, sample_params
from hpsearch.search.importance import importance

SPACE = SearchSpace.from_dict(
    {
        "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1.0},
        "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
        "model.activation": {"kind": "choice", "values": ["relu", "tanh"]},
    }
)


def rows(count: int, noise: float = 0.01) -> list:
    rng = np.random.default_rng(0)
    out = []
    for index in range(count):
        params = sample_params(SPACE, 1, index % 2, index)
        accuracy = 0.8 - 0.05 * abs(math.log10(params["optimizer.learning_rate"]) + 3)
        accuracy += 0.02 * (params["model.activation"] == "relu") + noise * rng.standard_normal()
        out.append((index % 2, params, accuracy + 0.1 * (index % 2)))  # stage 1 is better
    return out


def test_the_parameter_that_drives_accuracy_explains_most_and_noise_little() -> None:
    shares = importance(SPACE, rows(200))
    assert (
        next(iter(shares)) == "optimizer.learning_rate" and shares["optimizer.learning_rate"] > 0.6
    )
    assert shares["model.keep_prob"] < 0.05
    assert 0.02 < shares["model.activation"] < shares["optimizer.learning_rate"]


def test_pure_noise_explains_about_nothing_and_few_results_give_no_figures() -> None:
    noise_only = [(0, p, 0.5 + 0.01 * np.sin(7.0 * i)) for i, (_, p, _) in enumerate(rows(200))]
    assert max(importance(SPACE, noise_only).values()) < 0.1
    assert importance(SPACE, rows(5)) == {}
