"""Train one configuration: one Pydantic model, read from TOML or JSON.

A `TrainConfig` fully describes one training run: the data, the preprocessing
fitted on its training split, the network, the update rule, the learning-rate
schedule, the number of epochs, the batch size and the seed. The search spec
embeds one as its fixed base and the search space overrides fields of it by
dotted path (`optimizer.learning_rate`, `model.hidden_sizes.1`), see
`with_overrides`.

Every model forbids unknown fields, so a typo in a TOML file is an error that
names the field instead of a silently ignored setting.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpsearch.errors import ConfigError

__all__ = [
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PreprocessConfig",
    "ScheduleConfig",
    "StrictModel",
    "TrainConfig",
    "format_validation_error",
    "load_toml",
    "load_train_config",
    "with_overrides",
]

DataSource = Literal["spiral", "blobs", "digits", "mnist1d", "npz", "csv", "cifar10"]
Activation = Literal["relu", "leaky_relu", "prelu", "tanh", "sigmoid", "maxout"]
InitName = Literal["small", "calibrated", "glorot", "he", "sparse"]
LossName = Literal[
    "softmax",
    "svm",
    "squared_hinge",
    "hierarchical_softmax",
    "attribute_hinge",
    "attribute_logistic",
    "l2",
    "l1",
]
RuleName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
ScheduleName = Literal["constant", "step", "exponential", "inverse_time", "plateau"]


class StrictModel(BaseModel):
    """Base of every configuration model: unknown fields and NaN are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


class DataConfig(StrictModel):
    """Where the examples come from and how they are split.

    `path` is relative to the data root (`HPSEARCH_DATA_ROOT`) and required for
    `npz`, `csv` and `cifar10`; `label_column` is required for `csv`. The
    built-in generators (`spiral`, `blobs`) use `num_classes`,
    `points_per_class` and `num_features` (blobs only). `mnist1d` and
    `cifar10` bring their own test split and ignore `test_fraction`.
    """

    source: DataSource = "digits"
    path: str | None = None
    label_column: str | None = None
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    split_seed: int = Field(0, ge=0)
    num_classes: int = Field(3, ge=2, le=100_000)
    points_per_class: int = Field(100, ge=1, le=1_000_000)
    num_features: int = Field(2, ge=1, le=100_000)
    max_train: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check_source_fields(self) -> DataConfig:
        if self.source in ("npz", "csv", "cifar10") and not self.path:
            raise ValueError(f"data.path is required for source {self.source!r}")
        if self.source == "csv" and not self.label_column:
            raise ValueError("data.label_column is required for source 'csv'")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"data.val_fraction + data.test_fraction must be < 1, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


class PreprocessConfig(StrictModel):
    """Preprocessing fitted on the training split only (notes, part 2).

    `mean`: subtract the per-feature mean, one global value, or the per-channel
    mean of images. `std`: then divide by the per-feature standard deviation.
    `pca_components`: project onto the top-k principal components.
    `whiten`: divide the PCA projection by sqrt(eigenvalue + whiten_epsilon).
    """

    mean: Literal["none", "feature", "global", "channel"] = "feature"
    std: bool = False
    pca_components: int | None = Field(None, ge=1)
    whiten: bool = False
    whiten_epsilon: float = Field(1e-5, gt=0.0)


class ModelConfig(StrictModel):
    """The fully-connected network; input and output sizes come from the data.

    `init=None` picks He for the ReLU family and Maxout, calibrated
    `randn/sqrt(n)` for tanh and sigmoid. `keep_prob` is the probability of
    keeping a unit in inverted dropout (1.0 = no dropout). L1 and L2 together
    are the elastic net; `max_norm` projects each unit's incoming weight vector
    onto the ball of that radius after every update.
    """

    hidden_sizes: list[int] = Field(default_factory=lambda: [100], max_length=64)
    activation: Activation = "relu"
    leaky_alpha: float = Field(0.01, ge=0.0, lt=1.0)
    maxout_pieces: int = Field(2, ge=2, le=16)
    init: InitName | None = None
    init_scale: float = Field(0.01, gt=0.0)
    sparse_connections: int = Field(10, ge=1)
    bias_init: float = 0.0
    batchnorm: bool = False
    keep_prob: float = Field(1.0, gt=0.0, le=1.0)
    loss: LossName = "softmax"
    l2: float = Field(0.0, ge=0.0)
    l1: float = Field(0.0, ge=0.0)
    max_norm: float | None = Field(None, gt=0.0)
    regularize_biases: bool = False
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _check_widths(self) -> ModelConfig:
        for index, width in enumerate(self.hidden_sizes):
            if width < 1:
                raise ValueError(f"model.hidden_sizes[{index}] must be >= 1, got {width}")
        return self


class OptimizerConfig(StrictModel):
    """The update rule and its hyperparameters (notes, part 3)."""

    rule: RuleName = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    decay_rate: float = Field(0.99, gt=0.0, lt=1.0)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: float = Field(1e-8, gt=0.0)


class ScheduleConfig(StrictModel):
    """Learning-rate annealing per epoch t, and an optional momentum schedule.

    step: lr0 * step_factor ** (t // step_epochs); exponential: lr0 * exp(-decay_k t);
    inverse_time: lr0 / (1 + decay_k t); plateau: multiply by plateau_factor when
    validation accuracy has not improved for plateau_patience epochs.
    Momentum rises linearly from momentum_start to momentum_end over
    momentum_epochs when momentum_start is set.
    """

    kind: ScheduleName = "constant"
    step_epochs: int = Field(10, ge=1)
    step_factor: float = Field(0.5, gt=0.0, le=1.0)
    decay_k: float = Field(0.1, ge=0.0)
    plateau_patience: int = Field(1, ge=1)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    momentum_start: float | None = Field(None, ge=0.0, lt=1.0)
    momentum_end: float = Field(0.99, ge=0.0, lt=1.0)
    momentum_epochs: int = Field(10, ge=1)


class TrainConfig(StrictModel):
    """Everything needed to train one network, reproducibly.

    A run stops as diverged at the first iteration whose loss is not finite or
    above `divergence_factor` times the run's first iteration loss.
    """

    data: DataConfig = Field(default_factory=DataConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    seed: int = Field(0, ge=0)
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    train_accuracy_samples: int = Field(1000, ge=1)
    divergence_factor: float = Field(3.0, gt=1.0)


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem: `field.path: message (got value)`."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "<root>"
        if prefix:
            location = f"{prefix}.{location}" if location != "<root>" else prefix
        lines.append(f"{location}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict, with errors that name the file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a `TrainConfig` from a TOML file."""
    raw = load_toml(path)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid configuration\n{format_validation_error(exc)}") from exc


def with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A new, validated config with dotted-path fields replaced.

    Paths name nested fields (`optimizer.learning_rate`) and list items by
    index (`model.hidden_sizes.1`); an index equal to the list's length
    appends. Unknown paths and invalid values raise `ConfigError` naming the path.
    """
    data = config.model_dump()
    for path, value in overrides.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: value must be finite, got {value!r}")
        _set_path(data, path, value)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid overrides\n{format_validation_error(exc)}") from exc


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, dict):
            if part not in node:
                raise ConfigError(f"{path}: unknown configuration field {where!r}")
            if last:
                node[part] = value
            else:
                node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                raise ConfigError(f"{path}: {where!r} is not an index of a list of {len(node)}")
            index = int(part)
            if not last:
                node = node[index]
            elif index == len(node):
                node.append(value)
            else:
                node[index] = value
        else:
            raise ConfigError(f"{path}: {where!r} is not a nested field")
