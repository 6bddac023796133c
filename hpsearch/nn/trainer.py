"""Mini-batch training of an `MLP` with per-epoch statistics (notes, part 3).

Reproducibility: epoch e (0-based) draws its shuffle and dropout masks from
`np.random.default_rng(np.random.SeedSequence([seed, e]))`, and the fixed
training-accuracy subsample comes from `SeedSequence([seed], spawn_key=(1,))`.
So a run resumed from the `TrainState` saved after epoch e gives exactly the
numbers of an uninterrupted run. The trainer never prints and never touches
numpy's global random state.

The update rule runs once per iteration on the model's whole flat parameter
vector (`MLP.param_vector`, gradients in `MLP.grad_vector`), with one optimizer
state for the vector; `TrainState.optimizer` splits it per parameter for
checkpoints.

Hot loop: `MLP.data_step` writes the data-loss gradients, then
`fused.PenalizedUpdate` adds the elastic-net gradient chunk by chunk inside
the update and returns the penalty of the updated weights. That penalty is the
one of the parameters the next iteration's forward pass uses, so the
iteration loss (data loss + penalty, used for the divergence check and the
loss history) is exact, and nothing is updated past a diverging iteration. The
penalty is recomputed after max-norm projection and at the start of every epoch.
The model's `grad_vector` therefore holds data-loss gradients only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpsearch.nn import schedules
from hpsearch.nn.fused import PenalizedUpdate
from hpsearch.nn.model import MLP
from hpsearch.nn.optim import UPDATE_RULES, make_config
from hpsearch.nn.regularization import max_norm_project
from hpsearch.nn.train_stats import epoch_statistics

__all__ = ["TrainResult", "TrainState", "TrainerConfig", "train"]

_SCHEDULES = ("constant", "step", "exponential", "inverse_time", "plateau")


@dataclass(frozen=True)
class TrainerConfig:
    """How to train; names as in `hpsearch.config` (Train-, Optimizer-, ScheduleConfig)."""

    epochs: int = 10
    batch_size: int = 64
    rule: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    decay_rate: float = 0.99
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    kind: str = "constant"
    step_epochs: int = 10
    step_factor: float = 0.5
    decay_k: float = 0.1
    plateau_patience: int = 1
    plateau_factor: float = 0.5
    momentum_start: float | None = None
    momentum_end: float = 0.99
    momentum_epochs: int = 10
    ema_decay: float | None = None
    train_accuracy_samples: int = 1000
    divergence_factor: float = 3.0
    loss_history_points: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "step_epochs", "plateau_patience", "momentum_epochs",
                     "train_accuracy_samples", "loss_history_points"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.rule not in UPDATE_RULES:
            raise ValueError(f"rule must be one of {sorted(UPDATE_RULES)}, got {self.rule!r}")
        if self.kind not in _SCHEDULES:
            raise ValueError(f"kind must be one of {list(_SCHEDULES)}, got {self.kind!r}")
        self.optimizer_config(self.learning_rate)  # validates the rule's hyperparameters
        for name in ("step_factor", "plateau_factor", "momentum_end"):
            _check_unit(name, getattr(self, name))
        if self.momentum_start is not None:
            _check_unit("momentum_start", self.momentum_start)
        if self.ema_decay is not None:
            _check_unit("ema_decay", self.ema_decay, open_low=True)
        if not (math.isfinite(self.decay_k) and self.decay_k >= 0):
            raise ValueError(f"decay_k must be finite and >= 0, got {self.decay_k!r}")
        if not (math.isfinite(self.divergence_factor) and self.divergence_factor > 1):
            raise ValueError(f"divergence_factor must be > 1, got {self.divergence_factor!r}")

    def optimizer_config(self, learning_rate: float) -> dict[str, Any]:
        """A fresh `optim.make_config` for this rule at `learning_rate`."""
        return make_config(self.rule, learning_rate, self.momentum, self.decay_rate,
                           self.beta1, self.beta2, self.epsilon)  # fmt: skip


def _check_unit(name: str, value: float, open_low: bool = False) -> None:
    low_ok = value > 0 if open_low else value >= 0
    if not (isinstance(value, int | float) and math.isfinite(value) and low_ok and value <= 1):
        raise ValueError(f"{name} must be in {'(' if open_low else '['}0, 1], got {value!r}")


@dataclass
class TrainState:
    """Everything a checkpoint needs to resume after `epoch` finished epochs.

    optimizer: {param name: {hyperparameters..., state arrays shaped like the param, "t"}};
    schedule: {"learning_rate": current rate, "plateau": plateau state dict or None};
    ema_params: running average of the params (or None); history: epoch records.
    """

    epoch: int
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    optimizer: dict[str, dict[str, Any]]
    schedule: dict[str, Any]
    ema_params: dict[str, np.ndarray] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    initial_loss: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """How training ended: status "completed" | "diverged" | "stopped" and why."""

    status: str
    reason: str
    history: list[dict[str, Any]]
    state: TrainState
    best_val_accuracy: float | None
    best_epoch: int | None
    ema_params: dict[str, np.ndarray] | None


class _Run:
    """The mutable state of one `train` call (flat optimizer state, EMA, schedule)."""

    def __init__(self, model: MLP, config: TrainerConfig, resume: TrainState | None) -> None:
        self.model, self.config = model, config
        self.opt = config.optimizer_config(config.learning_rate)
        self.ema: np.ndarray | None = None
        self.plateau = (
            schedules.plateau_state(config.learning_rate) if config.kind == "plateau" else None
        )
        self.history: list[dict[str, Any]] = []
        self.initial_loss: float | None = None
        self.start_epoch = 0
        self.penalty = 0.0  # elastic net of the current params (see the module doc)
        self.before = np.empty_like(model.param_vector)  # params before an epoch's last update
        if config.ema_decay is not None:
            self.ema = model.param_vector.copy()
        if resume is not None:
            self._restore(resume)
        self.step = PenalizedUpdate(
            config.rule, model.param_vector, model.grad_vector, self.opt,
            model.config.l1, model.config.l2, model.num_regularized,
        )  # fmt: skip

    def _restore(self, state: TrainState) -> None:
        model = self.model
        model.load_state(state.params, state.buffers)
        self.start_epoch = int(state.epoch)
        self.history = [dict(record) for record in state.history]
        self.initial_loss = state.initial_loss
        self.plateau = (
            dict(state.schedule["plateau"]) if state.schedule.get("plateau") else self.plateau
        )
        for key in next(iter(state.optimizer.values()), {}):
            values = [state.optimizer[name][key] for name in model.params]
            if isinstance(values[0], np.ndarray) and values[0].ndim > 0:
                self.opt[key] = np.concatenate([np.ravel(v) for v in values]).astype(model.dtype)
            else:
                self.opt[key] = values[0].item() if isinstance(values[0], np.ndarray) else values[0]
        if self.ema is not None and state.ema_params is not None:
            self.ema = np.concatenate([np.ravel(state.ema_params[n]) for n in model.params]).astype(
                model.dtype
            )

    def state(self, epoch: int) -> TrainState:
        model = self.model
        optimizer: dict[str, dict[str, Any]] = {}
        offset = 0
        for name, array in model.params.items():
            part: dict[str, Any] = {}
            for key, value in self.opt.items():
                is_state = isinstance(value, np.ndarray) and value.shape == model.param_vector.shape
                part[key] = (
                    value[offset : offset + array.size].reshape(array.shape).copy()
                    if is_state
                    else value
                )
            optimizer[name] = part
            offset += array.size
        ema = None if self.ema is None else _split(self.ema, model.params)
        return TrainState(
            epoch=epoch,
            params={name: array.copy() for name, array in model.params.items()},
            buffers={name: array.copy() for name, array in model.buffers.items()},
            optimizer=optimizer,
            schedule={"learning_rate": float(self.opt["learning_rate"]), "plateau": self.plateau},
            ema_params=ema,
            history=[dict(record) for record in self.history],
            initial_loss=self.initial_loss,
        )

    def set_epoch_hyperparameters(self, epoch: int) -> tuple[float, float | None]:
        config = self.config
        learning_rate = schedules.learning_rate_at(
            config.kind, config.learning_rate, epoch, step_epochs=config.step_epochs,
            step_factor=config.step_factor, decay_k=config.decay_k, plateau=self.plateau,
        )  # fmt: skip
        self.opt["learning_rate"] = learning_rate
        momentum = None
        if "momentum" in self.opt:
            momentum = config.momentum
            if config.momentum_start is not None:
                momentum = schedules.momentum_schedule(
                    epoch, config.momentum_start, config.momentum_end, config.momentum_epochs
                )
            self.opt["momentum"] = momentum
        return learning_rate, momentum

    def update(self) -> None:
        """One penalized update of the flat parameter vector, max-norm, then the EMA."""
        model, config = self.model, self.config
        self.penalty = self.step()
        max_norm = model.config.max_norm
        if max_norm is not None:
            for i in range(1, model.num_layers + 1):
                max_norm_project(model.params[f"W{i}"], max_norm)
            self.penalty = model.regularization_penalty()
        if self.ema is not None:
            decay = float(config.ema_decay)  # type: ignore[arg-type]
            self.ema *= decay
            self.ema += (1.0 - decay) * model.param_vector


def _split(vector: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    parts, offset = {}, 0
    for name, array in like.items():
        parts[name] = vector[offset : offset + array.size].reshape(array.shape).copy()
        offset += array.size
    return parts


def train(
    model: MLP,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    config: TrainerConfig,
    *,
    on_epoch: Callable[[dict[str, Any], TrainState], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: TrainState | None = None,
) -> TrainResult:
    """Train `model` in place for `config.epochs` epochs (see the module doc).

    Inputs are validated once here (ValueError naming X_train, y_train, X_val, y_val).
    `on_epoch(record, state)` is called after every epoch; `should_stop()` is
    polled between iterations. Returns a `TrainResult`.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be an MLP, got {type(model).__name__}")
    if not isinstance(config, TrainerConfig):
        raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
    X_train, y_train = model.check_inputs(X_train, y_train, "X_train", "y_train")
    X_val, y_val = model.check_inputs(X_val, y_val, "X_val", "y_val")
    assert y_train is not None and y_val is not None
    run = _Run(model, config, resume)
    subsample_rng = np.random.default_rng(np.random.SeedSequence([config.seed], spawn_key=(1,)))
    count = min(config.train_accuracy_samples, len(X_train))
    subsample = np.sort(subsample_rng.choice(len(X_train), size=count, replace=False))
    data = (X_train, y_train, X_val, y_val, X_train[subsample], y_train[subsample])
    status, reason = "completed", f"trained {config.epochs} epochs"
    epoch = run.start_epoch
    while epoch < config.epochs and status == "completed":
        status, why = _train_epoch(run, epoch, data, on_epoch, should_stop)
        if status == "completed":
            epoch += 1
        else:
            reason = why
    history = run.history
    best = max(history, key=lambda record: record["val_accuracy"], default=None)
    ema = None if run.ema is None else _split(run.ema, model.params)
    return TrainResult(
        status=status, reason=reason, history=history, state=run.state(epoch),
        best_val_accuracy=None if best is None else best["val_accuracy"],
        best_epoch=None if best is None else best["epoch"], ema_params=ema,
    )  # fmt: skip


def _train_epoch(
    run: _Run,
    epoch: int,
    data: tuple[np.ndarray, ...],
    on_epoch: Callable[[dict[str, Any], TrainState], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[str, str]:
    """Run one epoch; returns (status, reason) with status "completed" when it finished."""
    config = run.config
    started = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, epoch]))
    learning_rate, momentum = run.set_epoch_hyperparameters(epoch)
    status, reason, losses, before = _iterate(run, epoch, rng, data[0], data[1], should_stop)
    if status != "completed":
        return status, reason
    record = epoch_statistics(run.model, run, epoch, losses, before, data)
    record.update(learning_rate=learning_rate, momentum=momentum, iterations=len(losses),
                  duration_s=time.perf_counter() - started)  # fmt: skip
    if run.plateau is not None:
        _, run.plateau = schedules.plateau_update(
            run.plateau, min(max(record["val_accuracy"], 0.0), 1.0),
            config.plateau_patience, config.plateau_factor,
        )  # fmt: skip
    run.history.append(record)
    if on_epoch is not None:
        on_epoch(record, run.state(epoch + 1))
    return "completed", ""


def _iterate(
    run: _Run,
    epoch: int,
    rng: np.random.Generator,
    X_train: np.ndarray,
    y_train: np.ndarray,
    should_stop: Callable[[], bool] | None,
) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The epoch's iterations (the hot loop): (status, reason, losses, params before
    the last update); status "completed", "stopped" or "diverged"."""
    model, config = run.model, run.config
    run.penalty = model.regularization_penalty()
    order = rng.permutation(len(X_train))
    batch = min(config.batch_size, len(X_train))
    losses = np.empty(-(-len(X_train) // batch))
    x_buffer = np.empty((batch, X_train.shape[1]), X_train.dtype)
    before = run.before
    for it in range(len(losses)):
        if should_stop is not None and should_stop():
            return "stopped", f"stop requested at {_at(epoch, it)}", losses, before
        index = order[it * batch : (it + 1) * batch]
        # mode="clip": with the default mode="raise" numpy gathers into a hidden
        # temporary and copies it into `out` (2.4x slower); the indices are valid
        x_batch = np.take(X_train, index, axis=0, out=x_buffer[: len(index)], mode="clip")
        loss = model.data_step(x_batch, y_train[index], rng) + run.penalty
        if run.initial_loss is None:
            run.initial_loss = loss
        limit = config.divergence_factor * run.initial_loss
        if not math.isfinite(loss) or loss > limit:
            return "diverged", (
                f"loss {loss:.6g} at {_at(epoch, it)} is not finite or above "
                f"{config.divergence_factor:g} x the initial loss {run.initial_loss:.6g}"
            ), losses, before  # fmt: skip
        losses[it] = loss
        if it == len(losses) - 1:
            np.copyto(before, model.param_vector)
        run.update()
    return "completed", "", losses, before


def _at(epoch: int, it: int) -> str:
    return f"epoch {epoch + 1}, iteration {it + 1}"
