"""Babysitting statistics against hand-worked cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hpsearch.nn.stats import (
    ACTIVATION_EDGES,
    GRADIENT_EDGES,
    dead_fraction,
    first_layer_images,
    histogram,
    linear_edges,
    loss_history_decimate,
    symmetric_log_edges,
    update_ratio,
    update_ratios,
)


def test_update_ratio_by_hand():
    before = np.array([3.0, 4.0], dtype=np.float32)
    after = np.array([3.003, 4.004], dtype=np.float32)
    ratio = update_ratio(before, after)
    assert type(ratio) is float
    assert ratio == pytest.approx(0.005 / 5.0, rel=1e-4)


def test_update_ratio_of_zero_parameters_is_finite():
    zeros = np.zeros(3)
    assert update_ratio(zeros, np.array([0.1, 0.0, 0.0])) == pytest.approx(1.0)
    assert update_ratio(zeros, zeros) == 0.0


def test_update_ratios_per_parameter():
    before = {"W1": np.ones(4), "b1": np.zeros(2)}
    after = {"W1": np.full(4, 1.5), "b1": np.array([0.0, 2.0])}
    assert update_ratios(before, after) == pytest.approx({"W1": 0.5, "b1": 1.0})


def test_histogram_with_fixed_edges_by_hand():
    values = np.array([-5, -1, -0.5, 0, 0.5, 1, 1, 2, 5, np.nan, np.inf, -np.inf], dtype=np.float32)
    result = histogram(values, [-1.0, 0.0, 1.0, 2.0])
    assert result == {
        "edges": [-1.0, 0.0, 1.0, 2.0],
        "counts": [2, 2, 3],
        "underflow": 2,
        "overflow": 2,
        "nan": 1,
    }
    assert json.loads(json.dumps(result)) == result


def test_histogram_accepts_any_shape_and_integer_values():
    result = histogram(np.array([[0, 1], [2, 3]]), [0.0, 2.0, 4.0])
    assert result["counts"] == [2, 2]


def test_default_edges():
    assert len(ACTIVATION_EDGES) == 61
    assert ACTIVATION_EDGES[0] == -3.0 and ACTIVATION_EDGES[-1] == 3.0
    assert ACTIVATION_EDGES[30] == 0.0
    assert len(GRADIENT_EDGES) == 34
    assert GRADIENT_EDGES[16:18] == pytest.approx((-1e-8, 1e-8))
    assert GRADIENT_EDGES[0] == -1.0 and GRADIENT_EDGES[-1] == 1.0
    dead = histogram(np.zeros((4, 5), dtype=np.float32))
    assert dead["counts"][30] == 20 and sum(dead["counts"]) == 20
    zero_gradients = histogram(np.zeros(7), GRADIENT_EDGES)
    assert zero_gradients["counts"][16] == 7


def test_edge_helpers():
    assert linear_edges(0.0, 1.0, 4) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert symmetric_log_edges(0.01, 1.0, 1) == pytest.approx((-1.0, -0.1, -0.01, 0.01, 0.1, 1.0))


def test_dead_fraction_counts_columns_zero_for_every_example():
    activations = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 3.0]], dtype=np.float32)
    fraction = dead_fraction(activations)
    assert type(fraction) is float
    assert fraction == pytest.approx(0.5)
    assert dead_fraction(np.ones((3, 2))) == 0.0


@pytest.mark.parametrize(
    ("count", "max_points", "expected"),
    [
        (10, 4, [0, 3, 6, 9]),
        (11, 4, [0, 4, 8, 10]),
        (3, 5, [0, 1, 2]),
        (5, 1, [4]),
        (7, 2, [0, 6]),
    ],
)
def test_loss_history_decimate_by_hand(count, max_points, expected):
    losses = [float(index) for index in range(count)]
    assert loss_history_decimate(losses, max_points) == [float(index) for index in expected]


def test_loss_history_decimate_bounds_and_keeps_last():
    for count in range(1, 60):
        losses = np.arange(count, dtype=np.float32) * 0.5
        for max_points in range(1, 12):
            kept = loss_history_decimate(losses, max_points)
            assert 1 <= len(kept) <= max_points
            assert kept[-1] == float(losses[-1])
            assert all(type(value) is float for value in kept)


def test_first_layer_images_scales_each_image_to_0_255():
    w = np.array([[0.0, 2.0], [1.0, 2.0], [2.0, 2.0], [3.0, 2.0]], dtype=np.float32)
    images = first_layer_images(w, (2, 2))
    assert images.dtype == np.uint8 and images.shape == (2, 2, 2)
    np.testing.assert_array_equal(images[0], [[0, 85], [170, 255]])
    np.testing.assert_array_equal(images[1], [[0, 0], [0, 0]])


def test_first_layer_images_channels_first_and_global_scaling():
    w = np.arange(12, dtype=np.float64).reshape(12, 1)
    images = first_layer_images(w, (3, 2, 2))
    assert images.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(images[0, 1], [[93, 116], [139, 162]])  # 4..7 * 255 / 11
    pair = np.array([[0.0, 4.0], [1.0, 5.0], [2.0, 6.0], [3.0, 7.0]])
    global_images = first_layer_images(pair, (2, 2), per_image=False)
    np.testing.assert_array_equal(global_images[1], [[146, 182], [219, 255]])


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: update_ratio(np.ones(2), np.ones(3)), "param_after"),
        (lambda: update_ratio(np.array([np.nan, 1.0]), np.ones(2)), "param_before"),
        (lambda: update_ratio(np.ones(2), np.array([1.0, np.inf])), "param_after"),
        (lambda: update_ratios({}, {"W1": np.ones(2)}), "params_before"),
        (lambda: histogram(np.ones(3), [1.0]), "bins"),
        (lambda: histogram(np.ones(3), [0.0, 2.0, 1.0]), "bins"),
        (lambda: histogram(np.array(["a"]), [0.0, 1.0]), "values"),
        (lambda: dead_fraction(np.ones(3)), "activations"),
        (lambda: loss_history_decimate([1.0], 0), "max_points"),
        (lambda: first_layer_images(np.ones((5, 2)), (2, 2)), "w"),
        (lambda: first_layer_images(np.ones((4, 2)), (4,)), "image_shape"),
        (lambda: linear_edges(1.0, 0.0, 3), "low"),
        (lambda: symmetric_log_edges(1.0, 1e-3, 2), "smallest"),
    ],
)
def test_bad_arguments_raise_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()
