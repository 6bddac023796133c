"""An ensemble: members (each a model with its own preprocessing and configuration) and weights.

A member is a `Checkpoint` holding what `hpsearch.training.load_model`
needs (parameters, batch-norm buffers, fitted preprocessing statistics, the
`TrainConfig` and the model's sizes in `extra`) plus a `source` naming where
it came from. Each member transforms the raw features with its own
preprocessor, so members of different configurations and preprocessing
combine correctly; their outputs (`hpsearch.ensembles.combine`) are averaged
with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpsearch.checkpoints import Checkpoint
from hpsearch.ensembles.combine import (
    accuracy_of_outputs,
    combine_outputs,
    output_kind,
    outputs_from_scores,
    predictions_of_outputs,
)
from hpsearch.errors import DataError, EnsembleError
from hpsearch.training import LoadedModel, load_model

__all__ = ["Ensemble", "Member", "member_from_checkpoint", "member_outputs"]


@dataclass(frozen=True, eq=False)
class Member:
    """One model of an ensemble: a checkpoint (read-only) and where it came from.

    source: JSON facts such as {"trial_id": 42, "stage": 2, "epoch": 5,
    "path": "search_000001/val0.9...npz", "val_accuracy": 0.93}.
    """

    checkpoint: Checkpoint
    source: dict[str, Any] = field(default_factory=dict)

    def loaded(self) -> LoadedModel:
        return load_model(self.checkpoint)


def member_from_checkpoint(checkpoint: Checkpoint, **source: Any) -> Member:
    """A member keeping what prediction (and Polyak averaging: `ema`) needs; no optimizer
    state, no history."""
    slim = Checkpoint(
        params=checkpoint.params,
        buffers=checkpoint.buffers,
        preprocessing={
            k: v for k, v in checkpoint.preprocessing.items() if isinstance(v, np.ndarray)
        },
        ema=checkpoint.ema,
        config=checkpoint.config,
        epoch=checkpoint.epoch,
        metrics=checkpoint.metrics,
        extra=checkpoint.extra,
    )
    return Member(slim, dict(source))


def member_outputs(model: LoadedModel, X_raw: np.ndarray) -> np.ndarray:
    """Averageable outputs (N, K) of one member on raw features (N, D)."""
    config = model.model.config
    return outputs_from_scores(model.scores(X_raw), config.loss, config.output_dim)


class Ensemble:
    """`kind`, members and weights (M,) >= 0 summing to 1; predicts on raw features.

    All members must agree on the task (classes, attributes or regression),
    the number of outputs, the class names and the raw input width.
    """

    def __init__(
        self, kind: str, members: Sequence[Member], weights: Sequence[float] | np.ndarray
    ) -> None:
        if not members:
            raise EnsembleError("an ensemble needs at least one member")
        weights_array = np.asarray(weights, dtype=np.float64)
        if weights_array.shape != (len(members),):
            raise EnsembleError(f"{len(members)} members but {weights_array.size} weights")
        if (weights_array < 0).any() or abs(weights_array.sum() - 1.0) > 1e-9:
            raise EnsembleError(f"weights must be >= 0 and sum to 1, got {weights_array.tolist()}")
        self.kind = kind
        self.members = tuple(members)
        self.weights = weights_array
        self.models = [member.loaded() for member in self.members]
        self.output_kind = _common(self.models, lambda m: output_kind(m.model.config.loss), "task")
        self.num_outputs = _common(self.models, lambda m: m.model.config.output_dim, "outputs")
        self.class_names = _common(self.models, lambda m: m.class_names, "class names")
        self.input_dim = _common(self.models, lambda m: m.preprocessor.input_dim, "input width")

    def check_features(self, X_raw: np.ndarray) -> np.ndarray:
        """X_raw as a 2-d array of the width the members were trained on (DataError if not)."""
        X = np.asarray(X_raw)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise DataError(
                f"the ensemble's members take {self.input_dim} features per example; "
                f"the data has shape {X.shape}"
            )
        return X

    def member_outputs(self, X_raw: np.ndarray) -> np.ndarray:
        """Every member's outputs: (M, N, K)."""
        X = self.check_features(X_raw)
        return np.stack([member_outputs(model, X) for model in self.models])

    def outputs(self, X_raw: np.ndarray) -> np.ndarray:
        """The weighted mean of the members' outputs (N, K)."""
        return combine_outputs(self.member_outputs(X_raw), self.weights)

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """Class ids (N,), attribute booleans (N, A) or regression values (N, K)."""
        return predictions_of_outputs(self.outputs(X_raw), self.output_kind)

    def accuracy(self, X_raw: np.ndarray, y: np.ndarray) -> float:
        return accuracy_of_outputs(self.outputs(X_raw), y, self.output_kind)


def _common(models: list[LoadedModel], key: Any, what: str) -> Any:
    values = [key(model) for model in models]
    if any(value != values[0] for value in values[1:]):
        raise EnsembleError(f"the members disagree on their {what}: {values}")
    return values[0]
