"""Factories for ensemble tests: small real members trained on gaussian blobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.checkpoints import Checkpoint, FileSystemCheckpointStorage
from hpsearch.config import TrainConfig, with_overrides
from hpsearch.data import Dataset, load_dataset
from hpsearch.ensembles import Member, member_from_checkpoint
from hpsearch.training import CheckpointTarget, prepare, run_training

BLOBS = {
    "data": {"source": "blobs", "num_classes": 3, "points_per_class": 60, "num_features": 5,
             "test_fraction": 0.2},
    "model": {"hidden_sizes": [16]},
    "optimizer": {"learning_rate": 0.01},
    "epochs": 3,
    "batch_size": 32,
}  # fmt: skip


def blobs_config(**overrides: Any) -> TrainConfig:
    return with_overrides(TrainConfig.model_validate(BLOBS), overrides)


def blobs_data(tmp_path: Path) -> Dataset:
    return load_dataset(blobs_config().data, tmp_path)


def train_checkpoints(tmp_path: Path, config: TrainConfig, key: str) -> list[Checkpoint]:
    """Every epoch's checkpoint of one run of `config`, in epoch order."""
    storage = FileSystemCheckpointStorage(tmp_path / "ckpt")
    run_training(config, prepare(config, tmp_path), target=CheckpointTarget(storage, key))
    names = sorted(storage.list(key), key=lambda name: name[-7:])
    return [storage.load(f"{key}/{name}") for name in names]


def trained_member(tmp_path: Path, key: str, **overrides: Any) -> Member:
    checkpoint = train_checkpoints(tmp_path, blobs_config(**overrides), key)[-1]
    return member_from_checkpoint(checkpoint, path=f"{key}/e{checkpoint.epoch}", trial_id=0)
