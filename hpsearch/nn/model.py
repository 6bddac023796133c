"""The fully-connected network: `MLPConfig` and `MLP` (notes, parts 1 and 2).

Layer i (1-based) of a network with hidden sizes (H1, ..., Hk) is

    hidden:  affine (or maxout) -> batchnorm (optional) -> activation -> dropout
    output:  affine, then the data loss of `hpsearch.nn.losses`

Batchnorm sits between the affine map and the activation; with maxout, whose
affine map and max are one layer, it normalizes the maxout output instead.

Parameters live in `MLP.params` (W1, b1, ..., WL, bL; gamma{i}, beta{i} for
batchnorm; alpha{i} for PReLU, initialised to `leaky_alpha`). All of them are
views of one flat vector `MLP.param_vector` (weights first, then biases, then
the rest), so an update rule updates the whole network in one call and the
regularized weights are one contiguous prefix of it. Batchnorm running
statistics live in `MLP.buffers` (running_mean{i}, running_var{i}).

Two code paths give the same numbers: a general one (`hpsearch.nn.general`,
built from the layer functions of `hpsearch.nn.layers`), and a fused one
(`hpsearch.nn.fused`) for ReLU networks without batchnorm, which reuses
preallocated buffers and is what the trainer's hot loop runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.nn import fused, general
from hpsearch.nn.init import default_init, init_bias, init_weights
from hpsearch.nn.inputs import (
    ATTRIBUTE_LOSSES,
    CLASS_LOSSES,
    REGRESSION_LOSSES,
    check_features,
    check_targets,
)
from hpsearch.nn.losses import LOSSES, hierarchical_softmax_predict, num_outputs
from hpsearch.nn.regularization import elastic_net_value, weight_penalty

__all__ = ["ACTIVATIONS", "CLASS_LOSSES", "MLP", "REGRESSION_LOSSES", "MLPConfig"]

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "tanh", "sigmoid", "maxout")
_INITS = ("small", "calibrated", "glorot", "he", "sparse")


@dataclass(frozen=True)
class MLPConfig:
    """Everything that defines a network; field names match `hpsearch.config.ModelConfig`.

    `output_dim` is the number of classes C (attributes A, regression targets K);
    the hierarchical softmax uses C - 1 score units. `init=None` picks
    `hpsearch.nn.init.default_init(activation)`. `keep_prob` is the dropout keep
    probability (1.0 = no dropout).
    """

    input_dim: int
    output_dim: int
    hidden_sizes: tuple[int, ...] = (100,)
    activation: str = "relu"
    leaky_alpha: float = 0.01
    maxout_pieces: int = 2
    init: str | None = None
    init_scale: float = 0.01
    sparse_connections: int = 10
    bias_init: float = 0.0
    batchnorm: bool = False
    keep_prob: float = 1.0
    loss: str = "softmax"
    l2: float = 0.0
    l1: float = 0.0
    max_norm: float | None = None
    regularize_biases: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _positive_int("input_dim", self.input_dim)
        _positive_int("output_dim", self.output_dim)
        for index, width in enumerate(self.hidden_sizes):
            _positive_int(f"hidden_sizes[{index}]", width)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("loss", self.loss, tuple(LOSSES))
        _choice("dtype", self.dtype, ("float32", "float64"))
        if self.init is not None:
            _choice("init", self.init, _INITS)
        _number("leaky_alpha", self.leaky_alpha, low=0.0, high=1.0, high_open=True)
        _positive_int("maxout_pieces", self.maxout_pieces, minimum=2)
        _number("init_scale", self.init_scale, low=0.0, low_open=True)
        _positive_int("sparse_connections", self.sparse_connections)
        _number("bias_init", self.bias_init)
        _number("keep_prob", self.keep_prob, low=0.0, high=1.0, low_open=True)
        _number("l2", self.l2, low=0.0)
        _number("l1", self.l1, low=0.0)
        if self.max_norm is not None:
            _number("max_norm", self.max_norm, low=0.0, low_open=True)
        if self.loss == "hierarchical_softmax" and self.output_dim < 2:
            raise ValueError("output_dim must be >= 2 for loss 'hierarchical_softmax'")

    @property
    def num_scores(self) -> int:
        """Score units of the output layer (C - 1 for the hierarchical softmax)."""
        return num_outputs(self.loss, self.output_dim)

    @property
    def init_name(self) -> str:
        """The weight initializer actually used."""
        return self.init if self.init is not None else default_init(self.activation)

    def replace(self, **changes: Any) -> MLPConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    above = number > low or (not low_open and number == low)
    below = number < high or (not high_open and number == high)
    if not (math.isfinite(number) and above and below):
        raise ValueError(f"{name} must be a finite number in the allowed range, got {value!r}")


def _param_shapes(config: MLPConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter, in flat-vector order (W*, b*, then the rest)."""
    widths = (config.input_dim, *config.hidden_sizes, config.num_scores)
    depth = len(widths) - 1
    pieces = config.maxout_pieces if config.activation == "maxout" else 1
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, depth + 1):
        columns = widths[i] * (pieces if i < depth else 1)
        shapes[f"W{i}"] = (widths[i - 1], columns)
    for i in range(1, depth + 1):
        shapes[f"b{i}"] = (widths[i] * (pieces if i < depth else 1),)
    for i in range(1, depth):
        if config.batchnorm:
            shapes[f"gamma{i}"] = (widths[i],)
            shapes[f"beta{i}"] = (widths[i],)
        if config.activation == "prelu":
            shapes[f"alpha{i}"] = (widths[i],)
    return shapes


def _views(vector: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        views[name] = vector[offset : offset + size].reshape(shape)
        offset += size
    return views


class MLP:
    """A fully-connected network: `params`, `buffers` and `loss(X, y=None, rng=None)`.

    Arrays handed out by `loss`, `scores`, `data_loss_and_grads` are fresh; the
    gradients `train_step` writes into `grad_vector` / `grads` are owned by the
    model and overwritten by the next call.
    """

    def __init__(self, config: MLPConfig, rng: np.random.Generator) -> None:
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(config).__name__}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.config = config
        self.dtype = np.dtype(config.dtype)
        self.num_layers = len(config.hidden_sizes) + 1
        self._shapes = _param_shapes(config)
        self.param_vector = np.empty(sum(map(math.prod, self._shapes.values())), self.dtype)
        self.params = _views(self.param_vector, self._shapes)
        self._initialize(rng)
        self.buffers: dict[str, np.ndarray] = {}
        if config.batchnorm:
            for i, width in enumerate(config.hidden_sizes, start=1):
                self.buffers[f"running_mean{i}"] = np.zeros(width, self.dtype)
                self.buffers[f"running_var{i}"] = np.ones(width, self.dtype)
        self.grad_vector = np.zeros_like(self.param_vector)
        self.grads = _views(self.grad_vector, self._shapes)
        weights = sum(math.prod(self._shapes[f"W{i}"]) for i in range(1, self.num_layers + 1))
        biases = sum(math.prod(self._shapes[f"b{i}"]) for i in range(1, self.num_layers + 1))
        self.num_regularized = weights + (biases if config.regularize_biases else 0)
        self._fast = config.activation == "relu" and not config.batchnorm
        self._workspaces: dict[int, fused.Workspace] = {}

    def _initialize(self, rng: np.random.Generator) -> None:
        config = self.config
        for name, shape in self._shapes.items():
            if name.startswith("W"):
                self.params[name][...] = init_weights(
                    config.init_name, shape[0], shape[1], rng, self.dtype,
                    config.init_scale, config.sparse_connections,
                )  # fmt: skip
            elif name.startswith("b"):
                self.params[name][...] = init_bias(shape[0], config.bias_init, self.dtype)
            elif name.startswith(("gamma",)):
                self.params[name][...] = 1.0
            elif name.startswith("beta"):
                self.params[name][...] = 0.0
            else:
                self.params[name][...] = config.leaky_alpha

    @classmethod
    def from_state(
        cls, config: MLPConfig, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]
    ) -> MLP:
        """Rebuild a network from saved `params` and `buffers` (copied, shapes checked)."""
        model = cls(config, np.random.default_rng(0))
        model.load_state(params, buffers)
        return model

    def load_state(self, params: dict[str, np.ndarray], buffers: dict[str, np.ndarray]) -> None:
        """Copy saved arrays into this model's params and buffers; names and shapes must match."""
        for label, own, given in (
            ("params", self.params, params),
            ("buffers", self.buffers, buffers),
        ):
            if set(own) != set(given):
                raise ValueError(f"{label} must have keys {sorted(own)}, got {sorted(given)}")
            for name, array in own.items():
                value = np.asarray(given[name])
                if value.shape != array.shape:
                    raise ValueError(
                        f"{label}[{name!r}] must have shape {array.shape}, got {value.shape}"
                    )
                if not np.isfinite(value).all():
                    raise ValueError(f"{label}[{name!r}] contains NaN or infinite values")
                array[...] = value

    # ----- input validation (once, at the edge) -----

    def check_inputs(
        self, X: Any, y: Any = None, x_name: str = "X", y_name: str = "y"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate and convert data: X (N, input_dim) finite -> model dtype, C-contiguous.

        y: class losses (N,) ints in [0, C); attribute_hinge (N, A) in {-1, +1};
        attribute_logistic (N, A) in {0, 1}; regression (N, K) (or (N,) when K == 1)
        finite. Raises ValueError naming `x_name` / `y_name`.
        """
        X = check_features(X, self.config.input_dim, self.dtype, x_name)
        if y is None:
            return X, None
        config = self.config
        return X, check_targets(y, config.loss, config.output_dim, len(X), y_name, self.dtype)

    # ----- forward / loss -----

    def scores(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Test-mode scores (N, num_scores) of validated inputs X (N, D), in chunks."""
        chunks = [
            general.forward(self, X[i : i + batch_size], "test", None)[0]
            for i in range(0, len(X), batch_size)
        ]
        return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]

    def loss(
        self, X: np.ndarray, y: np.ndarray | None = None, rng: np.random.Generator | None = None
    ) -> Any:
        """Scores (test mode) without y; (loss, grads) in train mode with y.

        loss = data loss + regularization; grads maps every param name to a fresh
        array. `rng` draws the dropout masks (required when keep_prob < 1).
        """
        if y is None:
            return self.scores(X)
        data_loss, grads = self.data_loss_and_grads(X, y, rng)
        reg_loss, reg_grads = self.regularization_loss_and_grads()
        for name, grad in reg_grads.items():
            grads[name] += grad
        return data_loss + reg_loss, grads

    def data_loss_and_grads(
        self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Train-mode data loss and its gradients (fresh arrays), no regularization."""
        loss = self.data_step(X, y, rng)
        return loss, {name: grad.copy() for name, grad in self.grads.items()}

    def regularization_loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        """Elastic net over the weights (and biases if regularize_biases), exactly
        `hpsearch.nn.regularization.weight_penalty`:

        loss = 0.5 * l2 * sum(w**2) + l1 * sum(|w|); grad = l2 * w + l1 * sign(w).
        Returns the loss and a fresh gradient array for every param (zeros elsewhere).
        """
        grads = {name: np.zeros_like(param) for name, param in self.params.items()}
        config = self.config
        loss, _ = weight_penalty(self.params, config.l1, config.l2, config.regularize_biases, grads)
        return loss, grads

    def regularization_penalty(self) -> float:
        """The value of the elastic net alone (no gradient, no temporary the size of W)."""
        weights = self.param_vector[: self.num_regularized]
        return elastic_net_value(weights, self.config.l1, self.config.l2)

    def train_step(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None) -> float:
        """Loss (data + regularization) with gradients written into `grad_vector`.

        X, y must already be validated (`check_inputs`); nothing is checked here.
        """
        loss = self.data_step(X, y, rng)
        config = self.config
        penalty, _ = weight_penalty(
            self.params, config.l1, config.l2, config.regularize_biases, self.grads
        )
        return loss + penalty

    def data_step(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator | None) -> float:
        """Hot path: data loss only, its gradients written into `grad_vector`.

        The trainer adds the penalty gradient inside the update
        (`hpsearch.nn.fused.PenalizedUpdate`). X, y must already be validated.
        """
        if self.config.keep_prob < 1.0 and not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator when keep_prob < 1 (dropout)")
        if self._fast:
            workspace = self._workspace(X.shape[0])
            return fused.relu_train_step(self, workspace, X, y, rng)
        scores, caches = general.forward(self, X, "train", rng)
        loss, dscores = LOSSES[self.config.loss](scores, y)
        general.backward(self, dscores, caches)
        return loss

    def _workspace(self, batch: int) -> fused.Workspace:
        workspace = self._workspaces.get(batch)
        if workspace is None:
            if len(self._workspaces) >= 4:
                self._workspaces.clear()
            workspace = self._workspaces[batch] = fused.Workspace(self, batch)
        return workspace

    # ----- predictions and statistics -----

    def forward_with_stats(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Test-mode scores and every hidden layer's output: {"layer{i}": (N, H_i)}."""
        return general.forward_with_activations(self, X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class ids (N,); attribute losses: booleans (N, A); regression: the scores."""
        return self._predict_scores(self.scores(X))

    def _predict_scores(self, scores: np.ndarray) -> np.ndarray:
        loss = self.config.loss
        if loss == "hierarchical_softmax":
            return hierarchical_softmax_predict(scores, self.config.output_dim)
        if loss in CLASS_LOSSES:
            return scores.argmax(axis=1)
        if loss in ATTRIBUTE_LOSSES:
            return scores > 0
        return scores

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(data loss, accuracy) in test mode of validated X, y (see `accuracy`)."""
        return self.evaluate_scores(self.scores(X), y)

    def evaluate_scores(self, scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(data loss, accuracy) of test-mode scores (N, num_scores) against validated y."""
        loss, _ = LOSSES[self.config.loss](scores, y)
        return float(loss), self._accuracy_from_scores(scores, y)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction correct; attributes: fraction of correct (example, attribute) bits;
        regression: R^2 = 1 - SSE / SST (1 is perfect; 1.0 or 0.0 when SST is 0)."""
        return self._accuracy_from_scores(self.scores(X), y)

    def _accuracy_from_scores(self, scores: np.ndarray, y: np.ndarray) -> float:
        predicted = self._predict_scores(scores)
        if self.config.loss in CLASS_LOSSES:
            return float(np.mean(predicted == y))
        if self.config.loss in ATTRIBUTE_LOSSES:
            return float(np.mean(predicted == (y > 0)))
        residual = float(np.square(scores - y, dtype=np.float64).sum())
        total = float(np.square(y - y.mean(axis=0), dtype=np.float64).sum())
        if total == 0.0:
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total
