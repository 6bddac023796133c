"""Learning-rate and momentum schedules against hand-worked numbers."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from hpsearch.nn.schedules import (
    SCHEDULE_KINDS,
    exponential_decay,
    inverse_time_decay,
    learning_rate_at,
    momentum_schedule,
    plateau_state,
    plateau_update,
    step_decay,
)


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [(0, 0.1), (4, 0.1), (5, 0.05), (9, 0.05), (10, 0.025), (14, 0.025), (15, 0.0125)],
)
def test_step_decay_halves_every_five_epochs(epoch, expected):
    assert step_decay(0.1, epoch, 5, 0.5) == pytest.approx(expected, rel=1e-12)


def test_step_decay_tenth_every_twenty_epochs():
    assert step_decay(1.0, 39, 20, 0.1) == pytest.approx(0.1, rel=1e-12)
    assert step_decay(1.0, 40, 20, 0.1) == pytest.approx(0.01, rel=1e-12)


def test_exponential_decay():
    assert exponential_decay(0.1, 0, 0.5) == pytest.approx(0.1, rel=1e-12)
    assert exponential_decay(1.0, 2, 0.5) == pytest.approx(0.36787944117144233, rel=1e-12)
    assert exponential_decay(2.0, 3, 0.0) == pytest.approx(2.0, rel=1e-12)


def test_inverse_time_decay():
    assert inverse_time_decay(0.1, 0, 0.25) == pytest.approx(0.1, rel=1e-12)
    assert inverse_time_decay(0.1, 4, 0.25) == pytest.approx(0.05, rel=1e-12)
    assert inverse_time_decay(1.0, 9, 1.0) == pytest.approx(0.1, rel=1e-12)


def test_plateau_halves_after_patience_epochs_without_improvement():
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7, 0.7, 0.7]
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.0125]
    state = plateau_state(0.1)
    rates = []
    for accuracy in accuracies:
        rate, state = plateau_update(state, accuracy, patience=2, factor=0.5)
        rates.append(rate)
    assert rates == pytest.approx(expected, rel=1e-12)
    assert state == {"best": 0.7, "epochs_since_best": 0, "learning_rate": 0.0125}


def test_plateau_update_is_pure_and_its_state_is_checkpointable():
    state = plateau_state(0.1)
    _, state = plateau_update(state, 0.5, patience=1, factor=0.5)
    before = dict(state)
    rate, after = plateau_update(state, 0.4, patience=1, factor=0.5)
    assert state == before
    assert rate == pytest.approx(0.05)
    assert json.loads(json.dumps(after)) == after
    handle = io.BytesIO()
    np.savez(handle, **after)
    handle.seek(0)
    with np.load(handle, allow_pickle=False) as archive:
        restored = {key: archive[key] for key in archive.files}
    rate, _ = plateau_update(restored, 0.4, patience=1, factor=0.5)
    assert rate == pytest.approx(0.025)


@pytest.mark.parametrize(
    ("epoch", "expected"), [(0, 0.5), (1, 0.549), (5, 0.745), (10, 0.99), (25, 0.99)]
)
def test_momentum_rises_linearly_then_stays(epoch, expected):
    assert momentum_schedule(epoch, 0.5, 0.99, 10) == pytest.approx(expected, rel=1e-12)


def test_learning_rate_at_dispatches_every_kind():
    assert learning_rate_at("constant", 0.1, 7) == pytest.approx(0.1)
    assert learning_rate_at("step", 0.1, 5, step_epochs=5, step_factor=0.5) == pytest.approx(0.05)
    assert learning_rate_at("exponential", 1.0, 2, decay_k=0.5) == pytest.approx(0.36787944117)
    assert learning_rate_at("inverse_time", 0.1, 4, decay_k=0.25) == pytest.approx(0.05)
    plateau = {"best": 0.7, "epochs_since_best": 1, "learning_rate": 0.025}
    assert learning_rate_at("plateau", 0.1, 9, plateau=plateau) == pytest.approx(0.025)


def test_kinds_match_the_schedule_config():
    from hpsearch.config import ScheduleConfig

    assert set(SCHEDULE_KINDS) == set(ScheduleConfig.model_fields["kind"].annotation.__args__)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: step_decay(0.1, -1, 5, 0.5), "epoch"),
        (lambda: step_decay(0.1, 1.5, 5, 0.5), "epoch"),
        (lambda: step_decay(0.1, 1, 0, 0.5), "step_epochs"),
        (lambda: step_decay(0.1, 1, 5, 0.0), "factor"),
        (lambda: step_decay(0.0, 1, 5, 0.5), "lr0"),
        (lambda: exponential_decay(0.1, 1, -0.1), "k"),
        (lambda: inverse_time_decay(float("nan"), 1, 0.1), "lr0"),
        (lambda: plateau_update({}, 0.5, 1, 0.5), "state"),
        (lambda: plateau_update(plateau_state(0.1), 1.5, 1, 0.5), "val_accuracy"),
        (lambda: plateau_update(plateau_state(0.1), 0.5, 0, 0.5), "patience"),
        (lambda: plateau_update(plateau_state(0.1), 0.5, 1, 1.0), "factor"),
        (lambda: plateau_state(-0.1), "learning_rate"),
        (lambda: momentum_schedule(0, 0.5, 1.0, 10), "end"),
        (lambda: momentum_schedule(0, -0.5, 0.9, 10), "start"),
        (lambda: momentum_schedule(0, 0.5, 0.9, 0), "epochs"),
        (lambda: learning_rate_at("cosine", 0.1, 0), "kind"),
        (lambda: learning_rate_at("plateau", 0.1, 0), "plateau"),
        (lambda: learning_rate_at("constant", "fast", 0), "lr0"),
    ],
)
def test_bad_arguments_raise_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
