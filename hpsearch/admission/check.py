"""The data of a search, read with the loader the workers use, checked against the spec.

`check_data(spec, data_root)` loads the base data set (`hpsearch.data.load_dataset`:
file present and inside the data root, keys and arrays right, finite
features, labels encoded, X and y of equal lengths), then checks what only the
loaded data can tell: the class count its labels imply, and that every loss
the space can pick accepts its targets (`hpsearch.nn.inputs.check_targets`,
the model's own check). Returns the data set's real `DataSize`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpsearch.admission.caps import DataSize
from hpsearch.config import DataConfig
from hpsearch.data import Dataset, load_dataset
from hpsearch.errors import DataError
from hpsearch.nn.inputs import check_targets
from hpsearch.nn.losses import num_outputs
from hpsearch.search import Choice, SearchSpec

__all__ = ["MAX_CLASSES", "check_data", "losses_of"]

MAX_CLASSES = 100_000
_SPLITS = ("train", "val", "test")


def losses_of(spec: SearchSpec) -> list[str]:
    """Every loss a trial of the spec can train with: the base's and any searched choice."""
    losses: list[str] = [spec.base.model.loss]
    if "model.loss" in spec.search_space:
        distribution = spec.search_space["model.loss"].distribution
        if isinstance(distribution, Choice):
            losses += [str(value) for value in distribution.values if value not in losses]
    return losses


def check_data(spec: SearchSpec, data_root: Path) -> DataSize:
    """Load and check the spec's data set; raise DataError ("base.data...: problem")."""
    data = spec.base.data
    where = _field(data)
    try:
        dataset = load_dataset(data, Path(data_root))
    except DataError as error:
        raise DataError(f"{where}: {error}") from None
    if dataset.task == "classification" and dataset.num_classes > MAX_CLASSES:
        raise DataError(
            f"{where}: {_label_range(dataset)} make {dataset.num_classes:,} classes, above "
            f"the cap of {MAX_CLASSES:,} (class labels must be indices 0..C-1)"
        )
    outputs = 0
    for loss in losses_of(spec):
        _check_loss(dataset, loss, where)
        outputs = max(outputs, num_outputs(loss, dataset.num_classes))
    splits = (dataset.X_train, dataset.X_val, dataset.X_test)
    examples = sum(len(X) for X in splits if X is not None)
    return DataSize(examples, dataset.input_dim, outputs)


def _field(data: DataConfig) -> str:
    return "base.data.path" if data.path is not None else "base.data"


def _label_range(dataset: Dataset) -> str:
    top = max(int(np.max(y)) for y in (dataset.y_train, dataset.y_val) if len(y))
    return f"{dataset.name}: labels up to {top:,}"


def _check_loss(dataset: Dataset, loss: str, where: str) -> None:
    for split in _SPLITS:
        y = getattr(dataset, f"y_{split}")
        if y is None:
            continue
        try:
            check_targets(y, loss, dataset.num_classes, len(y), f"y_{split}", np.dtype(np.float32))
        except ValueError as error:
            raise DataError(
                f"{where}: {dataset.name}: {dataset.task} targets do not fit loss {loss!r}: {error}"
            ) from None
