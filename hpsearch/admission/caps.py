"""Caps on what one search may ask for, checked before anything is stored.

The spec is already valid (`SearchSpec`); these are the server's limits from
`Settings`: epochs per stage, trials in all, concurrency, batch size, hidden layers, layer
width, the size of the data set (features per example, and bytes of float32
features in all, `max_features` / `max_data_bytes`), and the total parameters
of the largest network the space allows (a memory estimate: float32
parameters, gradients and two optimizer buffers take 16 bytes each). Every
bound is checked at its worst case: the upper end of a searched range, the
largest choice. Problems are "field: problem" lines (a 422 naming the field).

`data_size` knows the data set's size without reading or generating it: the
generator's parameters (spiral: 2 features, blobs: `num_features`, K classes
of N points), fixed sizes (digits, MNIST-1D, CIFAR-10), the member headers of an `.npz`
(`hpsearch.data.npz`), the header row and byte size of a CSV. The number of
outputs of a file data set is only known once its labels are read
(`hpsearch.admission.check_data` checks the caps again with the real counts);
until then it is `y`'s second axis, else `OUTPUT_GUESS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hpsearch.config import DataConfig
from hpsearch.data import resolve_data_path
from hpsearch.data.files import wanted_npz_keys
from hpsearch.data.npz import check_npz_member, format_bytes, read_npz_members
from hpsearch.errors import ConfigError, DataError
from hpsearch.search import DEPTH, SHARED_WIDTH, Choice, NumericDistribution, SearchSpec
from hpsearch.settings import Settings

__all__ = [
    "OUTPUT_GUESS",
    "DataSize",
    "check_spec_caps",
    "data_size",
    "estimate_parameters",
    "upper_bound",
    "worst_widths",
]

OUTPUT_GUESS = 100
FEATURE_BYTES = 4  # float32
CSV_BYTES_PER_VALUE = 2  # the shortest CSV cell: one digit and a comma
_FIXED = {"digits": (1797, 64, 10), "mnist1d": (5000, 40, 10), "cifar10": (60_000, 3072, 10)}
_GENERATED_FIELD = {"spiral": "points_per_class", "blobs": "num_features"}


@dataclass(frozen=True)
class DataSize:
    """A data set's size: examples, features per example, network outputs (targets)."""

    examples: int
    features: int
    outputs: int

    @property
    def feature_bytes(self) -> int:
        """Bytes of the float32 features of every split together."""
        return self.examples * self.features * FEATURE_BYTES


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


def check_spec_caps(spec: SearchSpec, settings: Settings, size: DataSize) -> None:
    """Raise ConfigError ("field: problem" lines) for every cap the spec exceeds."""
    problems = _run_caps(spec, settings) + _data_caps(spec.base.data, settings, size)
    widths = worst_widths(spec)
    if len(widths) > settings.max_layers:
        problems.append(f"model.hidden_sizes: {len(widths)} hidden layers is above the cap of "
                        f"{settings.max_layers}")  # fmt: skip
    for index, width in enumerate(widths):
        if width > settings.max_width:
            problems.append(f"model.hidden_sizes.{index}: width {width} is above the cap of "
                            f"{settings.max_width}")  # fmt: skip
    if not problems:
        total = estimate_parameters(spec, widths, size.features, size.outputs)
        if total > settings.max_parameters:
            problems.append(
                f"model: the largest network has about {total:,} parameters "
                f"(~{16 * total / 2**20:,.0f} MiB to train), above the cap of "
                f"{settings.max_parameters:,}"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _run_caps(spec: SearchSpec, settings: Settings) -> list[str]:
    problems = []
    where = "stages.{}.epochs" if spec.auto_plan is None else "max_epochs (rung {})"
    for number, stage in enumerate(spec.plan):
        if stage.epochs > settings.max_epochs:
            problems.append(f"{where.format(number)}: {stage.epochs} is above the cap of "
                            f"{settings.max_epochs} epochs")  # fmt: skip
    if spec.concurrency > settings.max_concurrency:
        problems.append(f"concurrency: {spec.concurrency} is above the cap of "
                        f"{settings.max_concurrency}")  # fmt: skip
    trials = spec.planned_trials()
    if trials > settings.max_trials:
        problems.append(f"stages: {trials} trials in all is above the cap of {settings.max_trials}")
    batch = upper_bound(spec, "batch_size", spec.base.batch_size)
    if batch > settings.max_batch_size:
        problems.append(f"batch_size: {batch:g} is above the cap of {settings.max_batch_size}")
    return problems


def _data_caps(data: DataConfig, settings: Settings, size: DataSize) -> list[str]:
    field = "base.data." + _GENERATED_FIELD.get(data.source, "path")
    what = f"{data.source} data" if data.path is None else f"{data.path!r}"
    problems = []
    if size.features > settings.max_features:
        problems.append(f"{'base.data.num_features' if data.source == 'blobs' else field}: "
                        f"{what} has {size.features:,} features per example, above the cap "
                        f"of {settings.max_features:,}")  # fmt: skip
    if size.feature_bytes > settings.max_data_bytes:
        problems.append(f"{field}: {what} holds {size.examples:,} examples x "
                        f"{size.features:,} features = {format_bytes(size.feature_bytes)} "
                        f"of float32 features, above the cap of "
                        f"{format_bytes(settings.max_data_bytes)}")  # fmt: skip
    return problems


def worst_widths(spec: SearchSpec) -> list[int]:
    """The hidden widths of the largest network the space allows, layer by layer."""
    sizes = list(spec.base.model.hidden_sizes)
    depth = int(upper_bound(spec, DEPTH, len(sizes)))
    sizes = (sizes + sizes[-1:] * depth)[:depth]
    sizes = [int(upper_bound(spec, SHARED_WIDTH, w)) for w in sizes]
    return [int(upper_bound(spec, f"model.hidden_sizes.{i}", w)) for i, w in enumerate(sizes)]


def estimate_parameters(spec: SearchSpec, widths: list[int], inputs: int, outputs: int) -> int:
    """Weights and biases of the largest network for `inputs` features and `outputs` units."""
    base = spec.base
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


def data_size(data: DataConfig, data_root: Path) -> DataSize:
    """The size of the data set `data` describes, reading no data (see the module doc).

    Raises DataError naming `base.data.path` for a missing, out-of-root or
    unreadable file.
    """
    if data.source in ("spiral", "blobs"):
        features = 2 if data.source == "spiral" else data.num_features
        return DataSize(data.num_classes * data.points_per_class, features, data.num_classes)
    if data.source in _FIXED:
        if data.source == "cifar10":
            _resolve(data, data_root)
        return DataSize(*_FIXED[data.source])
    path = _resolve(data, data_root)
    if not path.is_file():
        raise DataError(f"base.data.path: {data.path!r} is not a file")
    return _npz_size(path) if data.source == "npz" else _csv_size(path)


def _resolve(data: DataConfig, data_root: Path) -> Path:
    try:
        return resolve_data_path(data_root, data.path or "")
    except DataError as error:
        raise DataError(f"base.data.path: {error}") from None


def _npz_size(path: Path) -> DataSize:
    """(examples, features, outputs) from the member headers of an .npz, reading no data."""
    try:
        members = read_npz_members(path)
        wanted = wanted_npz_keys(path, set(members))
        for key in wanted:
            check_npz_member(members[key], path.name)
    except DataError as error:
        raise DataError(f"base.data.path: {error}") from None
    features = [members[key].shape for key in wanted if key.startswith("X")]
    if any(len(shape) < 2 for shape in features):
        return DataSize(0, 0, 0)  # the loader names the problem (`check_data`)
    targets = members[wanted[1]].shape
    outputs = targets[1] if len(targets) == 2 else OUTPUT_GUESS
    return DataSize(sum(shape[0] for shape in features), math.prod(features[0][1:]), outputs)


def _csv_size(path: Path) -> DataSize:
    with path.open(encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    columns = len(header.split(","))
    if columns < 2:
        raise DataError(f"base.data.path: {path.name} has fewer than 2 columns in its header")
    values = max(1, path.stat().st_size // CSV_BYTES_PER_VALUE)
    return DataSize(max(1, values // columns), columns - 1, OUTPUT_GUESS)
