"""Caps on what one launched search may ask for (422 naming the field).

The spec is already valid (`SearchSpec`); these are the server's limits from
`Settings`: epochs per stage, trials in all, batch size, hidden layers, layer
width, and the total parameters of the largest network the space allows (a
memory estimate: float32 parameters, gradients and two optimizer buffers take
16 bytes each). Every bound is checked at its worst case: the upper end of a
searched range, the largest choice.

The input size comes from the data: 2 (spiral), `num_features` (blobs), 64
(digits), 40 (MNIST-1D), 3072 (CIFAR-10), the header of an uploaded `.npz`'s `X`/`X_train`,
the header row of a CSV; PCA caps it. The output size is the class count of
generated data, 10 for digits, MNIST-1D and CIFAR-10, `y`'s second axis for multi-output
`.npz` targets, else at most `CSV_OUTPUT_GUESS`.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.config import TrainConfig
from hpsearch.data import resolve_data_path
from hpsearch.errors import ConfigError, DataError
from hpsearch.search import DEPTH, Choice, NumericDistribution, SearchSpec
from hpsearch.settings import Settings

__all__ = [
    "CSV_OUTPUT_GUESS",
    "check_spec_caps",
    "estimate_parameters",
    "npz_shapes",
    "upper_bound",
]

CSV_OUTPUT_GUESS = 100
_FIXED_INPUT = {"spiral": 2, "digits": 64, "mnist1d": 40, "cifar10": 3072}
_FIXED_OUTPUT = {"digits": 10, "mnist1d": 10, "cifar10": 10}


def upper_bound(spec: SearchSpec, name: str, base_value: float) -> float:
    """The largest value `name` can take: its range's top or largest choice, else the base."""
    if name not in spec.search_space:
        return base_value
    distribution = spec.search_space[name].distribution
    if isinstance(distribution, NumericDistribution):
        return max(base_value, float(distribution.high))
    assert isinstance(distribution, Choice)
    numbers = [v for v in distribution.values if isinstance(v, int | float) and v is not True]
    return max([base_value, *numbers])


def check_spec_caps(spec: SearchSpec, settings: Settings) -> None:
    """Raise ConfigError ("field: problem" lines) for every cap the spec exceeds."""
    problems: list[str] = []
    for number, stage in enumerate(spec.stages):
        if stage.epochs > settings.max_epochs:
            problems.append(f"stages.{number}.epochs: {stage.epochs} is above the cap of "
                            f"{settings.max_epochs} epochs")  # fmt: skip
    trials = sum(stage.trials for stage in spec.stages)
    if trials > settings.max_trials:
        problems.append(f"stages: {trials} trials in all is above the cap of {settings.max_trials}")
    batch = upper_bound(spec, "batch_size", spec.base.batch_size)
    if batch > settings.max_batch_size:
        problems.append(f"batch_size: {batch:g} is above the cap of {settings.max_batch_size}")
    widths = _worst_widths(spec)
    if len(widths) > settings.max_layers:
        problems.append(f"model.hidden_sizes: {len(widths)} hidden layers is above the cap of "
                        f"{settings.max_layers}")  # fmt: skip
    for index, width in enumerate(widths):
        if width > settings.max_width:
            problems.append(f"model.hidden_sizes.{index}: width {width} is above the cap of "
                            f"{settings.max_width}")  # fmt: skip
    if not problems:
        total = estimate_parameters(spec, widths, Path(settings.data_root))
        if total > settings.max_parameters:
            problems.append(
                f"model: the largest network has about {total:,} parameters "
                f"(~{16 * total / 2**20:,.0f} MiB to train), above the cap of "
                f"{settings.max_parameters:,}"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _worst_widths(spec: SearchSpec) -> list[int]:
    sizes = list(spec.base.model.hidden_sizes)
    depth = int(upper_bound(spec, DEPTH, len(sizes)))
    sizes = (sizes + [sizes[-1]] * depth)[:depth]
    return [int(upper_bound(spec, f"model.hidden_sizes.{i}", w)) for i, w in enumerate(sizes)]


def estimate_parameters(spec: SearchSpec, widths: list[int], data_root: Path) -> int:
    """Weights and biases of the largest network the spec allows (see module docstring)."""
    base = spec.base
    inputs, outputs = _data_sizes(base, data_root)
    pca = base.preprocess.pca_components
    if pca is not None:
        inputs = min(inputs, int(upper_bound(spec, "preprocess.pca_components", pca)))
    pieces = 1
    activations = [base.model.activation]
    if "model.activation" in spec.search_space:
        distribution = spec.search_space["model.activation"].distribution
        activations += list(getattr(distribution, "values", []))
    if "maxout" in activations:
        pieces = int(upper_bound(spec, "model.maxout_pieces", base.model.maxout_pieces))
    total, fan_in = 0, inputs
    for width in widths:
        total += (fan_in * width + width) * pieces
        fan_in = width
    return total + fan_in * outputs + outputs


def _data_sizes(base: TrainConfig, data_root: Path) -> tuple[int, int]:
    data = base.data
    if data.source in _FIXED_INPUT:
        inputs = _FIXED_INPUT[data.source]
    elif data.source == "blobs":
        inputs = data.num_features
    else:
        inputs = 0
    outputs = _FIXED_OUTPUT.get(data.source, data.num_classes)
    if data.source in ("npz", "csv"):
        path = resolve_data_path(data_root, data.path or "")
        if not path.is_file():
            raise DataError(f"data.path: {data.path!r} is not a file")
        inputs, outputs = _npz_sizes(path) if data.source == "npz" else _csv_sizes(path)
    elif data.source == "cifar10":
        resolve_data_path(data_root, data.path or "")
    return inputs, outputs


def _npz_sizes(path: Path) -> tuple[int, int]:
    """(features, outputs) from the array headers of an .npz, reading no data."""
    shapes = npz_shapes(path)
    x_shape = shapes.get("X", shapes.get("X_train"))
    y_shape = shapes.get("y", shapes.get("y_train"))
    if x_shape is None or y_shape is None or len(x_shape) < 2:
        raise DataError(f"data.path: {path.name} holds no 2-D X / X_train with y / y_train")
    outputs = y_shape[1] if len(y_shape) == 2 else CSV_OUTPUT_GUESS
    return math.prod(x_shape[1:]), outputs


def npz_shapes(path: Path) -> dict[str, list[int]]:
    """Array name -> shape of every member of an .npz file, from headers only."""
    shapes: dict[str, list[int]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    shape, _, _ = _read_header(handle, version)
                shapes[member[: -len(".npy")]] = [int(n) for n in shape]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path.name}: cannot read .npz headers: {error}") from error
    return shapes


def _read_header(handle: Any, version: tuple[int, int]) -> tuple[Any, bool, Any]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def _csv_sizes(path: Path) -> tuple[int, int]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    columns = len(header.split(","))
    if columns < 2:
        raise DataError(f"data.path: {path.name} has fewer than 2 columns in its header")
    return columns - 1, CSV_OUTPUT_GUESS
