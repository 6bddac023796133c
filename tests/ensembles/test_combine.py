"""What is averaged per loss, and how averaged outputs are scored, by hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.ensembles import accuracy_of_outputs, combine_outputs, disagreement
from hpsearch.ensembles.combine import loss_of_outputs, output_kind, outputs_from_scores
from hpsearch.nn.losses import hierarchical_softmax_log_probs


def test_each_loss_has_its_output_kind() -> None:
    assert [output_kind(loss) for loss in ("softmax", "svm", "hierarchical_softmax")] == [
        "class"
    ] * 3
    assert output_kind("attribute_logistic") == "attribute" and output_kind("l1") == "regression"
    with pytest.raises(ValueError, match="loss must be one of"):
        output_kind("huber")


def test_hierarchical_softmax_members_average_their_path_products() -> None:
    scores = np.array([[0.3, -1.2, 2.0]])
    outputs = outputs_from_scores(scores, "hierarchical_softmax", 4)
    np.testing.assert_allclose(outputs, np.exp(hierarchical_softmax_log_probs(scores, 4)))
    assert outputs.sum() == pytest.approx(1.0)


def test_regression_members_are_the_weighted_mean_of_their_outputs_scored_by_r2() -> None:
    a, b = np.array([[1.0], [2.0], [3.0]]), np.array([[3.0], [2.0], [1.0]])
    mean = combine_outputs([a, b], np.array([0.75, 0.25]))
    np.testing.assert_allclose(mean, [[1.5], [2.0], [2.5]])
    y = np.array([1.0, 2.0, 3.0])
    assert accuracy_of_outputs(mean, y, "regression") == pytest.approx(1 - 0.5 / 2.0)
    assert loss_of_outputs(mean, y, "regression") == pytest.approx(0.5 / 3)
    assert disagreement([a, b], "regression") is None


def test_attribute_members_average_sigmoids_and_count_correct_bits() -> None:
    first = outputs_from_scores(np.array([[2.0, -2.0]]), "attribute_logistic", 2)
    second = outputs_from_scores(np.array([[-1.0, -3.0]]), "attribute_hinge", 2)
    mean = combine_outputs([first, second], np.array([0.5, 0.5]))
    assert (mean > 0.5).tolist() == [[True, False]]
    assert accuracy_of_outputs(mean, np.array([[1, -1]]), "attribute") == 1.0
    assert accuracy_of_outputs(mean, np.array([[0, 0]]), "attribute") == 0.5
    assert disagreement([first, second], "attribute") == 0.5


def test_disagreement_is_the_mean_over_pairs() -> None:
    one_hot = np.eye(3)
    members = [one_hot[[0, 1, 2, 0]], one_hot[[0, 1, 2, 1]], one_hot[[1, 1, 2, 1]]]
    # pairs: (0,1) 1/4, (0,2) 2/4, (1,2) 1/4
    assert disagreement(members, "class") == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert disagreement(members[:1], "class") == 0.0


def test_weights_must_be_a_distribution() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        combine_outputs([np.ones((2, 2))] * 2, np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="weights"):
        combine_outputs([np.ones((2, 2))] * 2, np.array([1.0]))
