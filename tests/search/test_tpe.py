"""The Parzen-estimator sampler: reproducible from recorded results, inside the space."""

from __future__ import annotations

import math
import random

import pytest

from hpsearch.errors import ConfigError
from hpsearch.search import SearchSpace, parse_search_spec, sample_params
from hpsearch.search.tpe import RecordedResult, min_results, tpe_params

SPACE = SearchSpace.from_dict(
    {
        "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1.0},
        "model.activation": {"kind": "choice", "values": ["relu", "leaky_relu"]},
        "model.leaky_alpha": {
            "kind": "uniform", "low": 0.01, "high": 0.3, "when": {"model.activation": "leaky_relu"},
        },
        "batch_size": {"kind": "log_int", "low": 16, "high": 256},
    }
)  # fmt: skip


def recorded(count: int, seed: int = 0) -> list[RecordedResult]:
    """Results of random draws scored by closeness of log10 lr to -3 (two stages)."""
    results = []
    for index in range(count):
        params = sample_params(SPACE, seed, 0, index)
        score = 0.9 - 0.1 * abs(math.log10(params["optimizer.learning_rate"]) + 3.0)
        results.append(RecordedResult(index % 2, index, params, score))
    return results


def test_the_same_recorded_results_give_the_same_samples_in_any_order() -> None:
    results = recorded(30)
    shuffled = list(results)
    random.Random(4).shuffle(shuffled)
    first = [tpe_params(SPACE, results, 7, 1, index) for index in range(5)]
    again = [tpe_params(SPACE, shuffled, 7, 1, index) for index in range(5)]
    assert first == again
    assert first != [tpe_params(SPACE, recorded(30, seed=1), 7, 1, index) for index in range(5)]


def test_draws_stay_inside_the_conditional_space() -> None:
    results = recorded(40)
    draws = [tpe_params(SPACE, results, 3, 2, index) for index in range(60)]
    assert all(SPACE.contains(draw) for draw in draws)
    leaky = [d for d in draws if d["model.activation"] == "leaky_relu"]
    assert leaky and all("model.leaky_alpha" in d for d in leaky)
    assert all("model.leaky_alpha" not in d for d in draws if d["model.activation"] == "relu")


def test_draws_concentrate_where_the_good_results_are() -> None:
    results = recorded(60)

    def distance(draw: dict) -> float:
        return abs(math.log10(draw["optimizer.learning_rate"]) + 3.0)

    model = sorted(distance(tpe_params(SPACE, results, 1, 1, i)) for i in range(40))
    plain = sorted(distance(sample_params(SPACE, 1, 1, i)) for i in range(40))
    assert model[20] < 0.5 * plain[20]


def test_too_few_results_fall_back_to_random_draws() -> None:
    results = recorded(min_results(SPACE) - 1)
    assert tpe_params(SPACE, results, 2, 0, 5) == sample_params(SPACE, 2, 0, 5)


def test_a_space_tpe_cannot_model_is_refused_naming_the_sampler() -> None:
    raw = {
        "name": "fixed",
        "base": {"data": {"source": "spiral"}},
        "space": {"model.activation": {"kind": "choice", "values": ["relu"]}},
        "budget_epochs": 20,
        "sampler": "tpe",
    }
    with pytest.raises(ConfigError, match="sampler: tpe models parameters"):
        parse_search_spec(raw)
    raw["space"]["optimizer.learning_rate"] = {"kind": "log_uniform", "low": 1e-4, "high": 1.0}
    assert parse_search_spec(raw).sampler == "tpe"
