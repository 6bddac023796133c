"""`hpsearch.training`: the settings of a `TrainConfig` reach the trainer and its checkpoints."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hpsearch.checkpoints import FileSystemCheckpointStorage
from hpsearch.config import TrainConfig, load_train_config
from hpsearch.errors import ConfigError
from hpsearch.training import CheckpointTarget, load_model, prepare, run_training, trainer_config


def fast_sgd_config(**fields: Any) -> TrainConfig:
    """Plain SGD at learning rate 5 on a small spiral: in epoch 1 an iteration's loss
    reaches 3.94 against a first loss of 1.85 (2.1x), then training settles."""
    return TrainConfig.model_validate({
        "data": {"source": "spiral", "points_per_class": 50},
        "model": {"hidden_sizes": [8]},
        "optimizer": {"rule": "sgd", "learning_rate": 5.0},
        "epochs": 3,
        "batch_size": 10,
        **fields,
    })  # fmt: skip


def test_divergence_factor_decides_when_a_run_diverges(tmp_path: Path) -> None:
    default = fast_sgd_config()
    assert default.divergence_factor == 3.0 and trainer_config(default).divergence_factor == 3.0
    _, completed = run_training(default, prepare(default, tmp_path))
    assert completed.status == "completed"
    strict = fast_sgd_config(divergence_factor=1.5)
    _, diverged = run_training(strict, prepare(strict, tmp_path))
    assert diverged.status == "diverged"
    assert "above 1.5 x the initial loss 1.84" in diverged.reason
    assert "epoch 1, iteration 3" in diverged.reason


def test_divergence_factor_is_kept_in_checkpoints(tmp_path: Path) -> None:
    config = fast_sgd_config(divergence_factor=40.0, epochs=1)
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    written: list[str | None] = []
    run_training(config, prepare(config, tmp_path), target=CheckpointTarget(storage, "run"),
                 on_epoch=lambda record, path: written.append(path))  # fmt: skip
    (path,) = written
    assert path is not None
    checkpoint = storage.load(path)
    assert checkpoint.config["divergence_factor"] == 40.0
    assert load_model(checkpoint).config.divergence_factor == 40.0
    older = {key: value for key, value in checkpoint.config.items() if key != "divergence_factor"}
    assert TrainConfig.model_validate(older).divergence_factor == 3.0


@pytest.mark.parametrize("bad", [1.0, 0.5, -3.0, float("inf"), float("nan"), "high"])
def test_bad_divergence_factor_names_the_field(bad: object) -> None:
    with pytest.raises(ValidationError, match="divergence_factor"):
        TrainConfig.model_validate({"divergence_factor": bad})


def test_bad_divergence_factor_in_toml_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text("epochs = 2\ndivergence_factor = 1.0\n")
    with pytest.raises(ConfigError, match="divergence_factor"):
        load_train_config(path)
    path.write_text("epochs = 2\ndivergence_factor = 10\n")
    assert load_train_config(path).divergence_factor == 10.0


def test_checkpoint_history_holds_each_epochs_scalars_and_its_own_epochs_statistics(
    tmp_path: Path,
) -> None:
    config = fast_sgd_config(epochs=3, optimizer={"rule": "adam", "learning_rate": 1e-2})
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    written: list[str | None] = []
    _, result = run_training(config, prepare(config, tmp_path),
                             target=CheckpointTarget(storage, "run"),
                             on_epoch=lambda record, path: written.append(path))  # fmt: skip
    assert len(written) == 3 and all(written)
    full = json.loads(json.dumps(result.history))
    assert "activation_histograms" in full[0] and "loss_history" in full[0]
    for epoch, path in enumerate(written, start=1):
        history = storage.load(str(path)).history
        assert [record["epoch"] for record in history] == list(range(1, epoch + 1))
        assert history[-1] == full[epoch - 1]  # its own epoch: the whole record
        for record, whole in zip(history[:-1], full, strict=False):
            assert record == {k: v for k, v in whole.items() if not isinstance(v, dict | list)}
            assert {"train_loss", "val_accuracy", "learning_rate", "iterations"} <= record.keys()


def test_the_next_epoch_trains_while_an_epochs_checkpoint_and_callback_run(
    tmp_path: Path,
) -> None:
    config = fast_sgd_config(epochs=3, optimizer={"rule": "adam", "learning_rate": 1e-2})
    prepared = prepare(config, tmp_path)
    per_epoch = -(-len(prepared.X_train) // config.batch_size)  # iterations, each polls
    assert per_epoch >= 3
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    in_callback, trained_meanwhile = threading.Event(), threading.Event()
    polls: list[int] = []
    calls: list[tuple[int, bool]] = []

    def should_stop() -> bool:  # polled before every iteration (and maybe at hand-over)
        polls.append(1)
        if len(polls) == per_epoch + 2 and in_callback.wait(10):  # inside epoch 2
            trained_meanwhile.set()
        return False

    def on_epoch(record: dict[str, Any], path: str | None) -> None:
        calls.append(
            (record["epoch"], path is not None and storage.load(path).epoch == len(calls) + 1)
        )
        if record["epoch"] == 1:
            in_callback.set()
            assert trained_meanwhile.wait(10), "epoch 2 did not start during epoch 1's callback"

    _, result = run_training(config, prepared, target=CheckpointTarget(storage, "run"),
                             on_epoch=on_epoch, should_stop=should_stop)  # fmt: skip
    assert result.status == "completed" and len(polls) >= 3 * per_epoch
    assert calls == [(1, True), (2, True), (3, True)]  # in order, each after its file, all done


def test_one_writer_thread_serves_every_epoch_of_a_run_and_ends_with_it(tmp_path: Path) -> None:
    config = fast_sgd_config(epochs=4, optimizer={"rule": "adam", "learning_rate": 1e-2})
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    writers: list[threading.Thread] = []

    def on_epoch(record: dict[str, Any], path: str | None) -> None:
        writers.append(threading.current_thread())

    before = set(threading.enumerate())
    run_training(config, prepare(config, tmp_path), target=CheckpointTarget(storage, "run"),
                 on_epoch=on_epoch)  # fmt: skip
    assert len(writers) == 4 and len(set(writers)) == 1
    assert writers[0] is not threading.main_thread() and writers[0].name == "epoch-writer"
    assert not writers[0].is_alive() and set(threading.enumerate()) <= before


def test_a_failing_epoch_callback_stops_training_and_raises_from_run_training(
    tmp_path: Path,
) -> None:
    config = fast_sgd_config(epochs=50, optimizer={"rule": "adam", "learning_rate": 1e-2})
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    seen: list[int] = []

    def on_epoch(record: dict[str, Any], path: str | None) -> None:
        seen.append(record["epoch"])
        if record["epoch"] == 2:
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="the database went away"):
        run_training(config, prepare(config, tmp_path), target=CheckpointTarget(storage, "run"),
                     on_epoch=on_epoch)  # fmt: skip
    assert seen == [1, 2]
    epochs = sorted(int(name.rsplit("_e", 1)[1].split(".")[0]) for name in storage.list("run"))
    assert epochs == [1, 2]  # nothing written after the failure


@pytest.mark.parametrize("epochs", [2, 3])
def test_an_epoch_ending_after_a_stop_request_is_not_written_and_the_run_stops(
    tmp_path: Path, epochs: int
) -> None:
    """A callback that asks to stop (a commit reporting a cancel), even before the last epoch."""
    config = fast_sgd_config(epochs=epochs, optimizer={"rule": "adam", "learning_rate": 1e-2})
    storage = FileSystemCheckpointStorage(tmp_path / "checkpoints")
    cancel = threading.Event()
    seen: list[int] = []

    def on_epoch(record: dict[str, Any], path: str | None) -> None:
        seen.append(record["epoch"])
        if record["epoch"] == epochs - 1:
            cancel.set()

    _, result = run_training(config, prepare(config, tmp_path),
                             target=CheckpointTarget(storage, "run"),
                             on_epoch=on_epoch, should_stop=cancel.is_set)  # fmt: skip
    assert result.status == "stopped" and "stop requested" in result.reason
    assert seen == list(range(1, epochs))
    assert len(storage.list("run")) == epochs - 1
