"""Fused hot-loop pieces: the penalized update against penalty-then-rule, the fused step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hpsearch.nn.fused import PenalizedUpdate
from hpsearch.nn.optim import UPDATE_RULES, make_config
from hpsearch.nn.regularization import elastic_net_penalty

SIZE, REGULARIZED = 33, 20


def vectors(dtype: Any = np.float64) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(4)
    w = rng.standard_normal(SIZE).astype(dtype)
    w[3] = 0.0  # sign(0) = 0: no L1 subgradient there
    return w, [rng.standard_normal(SIZE).astype(dtype) for _ in range(3)]


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
@pytest.mark.parametrize(("l1", "l2"), [(0.0, 0.1), (0.02, 0.0), (0.02, 0.1)])
def test_penalized_update_equals_the_penalty_gradient_then_the_rule(
    rule: str, l1: float, l2: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hpsearch.nn.fused.UPDATE_CHUNK", 7)  # [14, 21) straddles 20
    w, gradients = vectors()
    reference, fused_w = w.copy(), w.copy()
    config_ref, config_fused = make_config(rule, 0.05), make_config(rule, 0.05)
    for gradient in gradients:
        total = gradient.copy()
        elastic_net_penalty(reference[:REGULARIZED], l1, l2, accumulate_into=total[:REGULARIZED])
        UPDATE_RULES[rule](reference, total, config_ref)
        untouched = gradient.copy()
        penalty = PenalizedUpdate(rule, fused_w, gradient, config_fused, l1, l2, REGULARIZED)()
        np.testing.assert_array_equal(gradient, untouched)
        np.testing.assert_allclose(fused_w, reference, rtol=1e-14, atol=1e-15)
        head = fused_w[:REGULARIZED]  # the penalty of the UPDATED weights
        assert penalty == pytest.approx(l1 * np.abs(head).sum() + 0.5 * l2 * (head**2).sum())
    assert config_fused.keys() == config_ref.keys()


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_without_penalty_it_is_the_rule_and_returns_zero(rule: str) -> None:
    w, gradients = vectors(np.float32)
    reference, config_ref, config = w.copy(), make_config(rule, 0.1), make_config(rule, 0.1)
    UPDATE_RULES[rule](reference, gradients[0], config_ref)
    assert PenalizedUpdate(rule, w, gradients[0], config, 0.0, 0.0)() == 0.0
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, reference)


def test_momentum_step_with_l2_by_hand() -> None:
    w = np.array([1.0, -2.0, 3.0])
    dw = np.array([0.5, 0.5, 0.5])
    config = {"learning_rate": 0.1, "momentum": 0.9}
    penalty = PenalizedUpdate("momentum", w, dw, config, l2=1.0, regularized=2)()
    # gradient [1.5, -1.5, 0.5]; v = -0.1 * gradient; w = [0.85, -1.85, 2.95]
    np.testing.assert_allclose(w, [0.85, -1.85, 2.95])
    np.testing.assert_allclose(config["velocity"], [-0.15, 0.15, -0.05])
    assert penalty == pytest.approx(0.5 * (0.85**2 + 1.85**2))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"rule": "lbfgs"}, "rule"), ({"regularized": 40}, "regularized"),
     ({"regularized": -1}, "regularized"), ({"l2": -1.0}, "l2"), ({"l1": float("nan")}, "l1"),
     ({"l2": "big"}, "l2"),
     ({"w": np.zeros((3, 11))}, "w must"), ({"dw": np.zeros(SIZE, np.float32)}, "dw")],
)  # fmt: skip
def test_bad_arguments_raise_naming_them(kwargs: dict[str, Any], argument: str) -> None:
    w, gradients = vectors()
    call: dict[str, Any] = {"rule": "sgd", "w": w, "dw": gradients[0], "config": {}}
    call.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        PenalizedUpdate(**call)


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_float32_stays_float32_with_a_penalty(rule: str) -> None:
    w, gradients = vectors(np.float32)
    config = make_config(rule, 0.1)
    penalty = PenalizedUpdate(rule, w, gradients[0], config, 0.01, 0.1, REGULARIZED)()
    assert w.dtype == np.float32 and isinstance(penalty, float)
    states = [value for value in config.values() if isinstance(value, np.ndarray)]
    assert len(states) == {"sgd": 0, "adam": 2}.get(rule, 1)
    assert all(state.dtype == np.float32 for state in states)


def test_a_bound_update_follows_new_hyperparameters_and_new_state_arrays() -> None:
    w, gradients = vectors()
    reference, config_ref = w.copy(), make_config("momentum", 0.05)
    config = make_config("momentum", 0.05)
    step = PenalizedUpdate("momentum", w, gradients[0], config, 0.0, 0.1, REGULARIZED)
    step()
    PenalizedUpdate("momentum", reference, gradients[0], config_ref, 0.0, 0.1, REGULARIZED)()
    for target in (config, config_ref):  # a schedule step, then a resume's new state array
        target["learning_rate"] = 0.01
        target["velocity"] = target["velocity"] * 0.5
    step()
    PenalizedUpdate("momentum", reference, gradients[0], config_ref, 0.0, 0.1, REGULARIZED)()
    np.testing.assert_array_equal(w, reference)
    np.testing.assert_array_equal(config["velocity"], config_ref["velocity"])
