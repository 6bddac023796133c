"""Train one `TrainConfig`: the one code path shared by `hpsearch train` and the workers.

It joins the pieces: prepared data (`hpsearch.data`), the network and trainer
(`hpsearch.nn`), and checkpoints (`hpsearch.checkpoints`). A checkpoint is
written after every epoch; it holds the parameters, optimizer and schedule
state, preprocessing statistics, the configuration, the history and the
model's input/output sizes, so it resumes a run exactly and predicts on its own
(the history: every epoch's scalars, and the file's own epoch's statistics; see
`checkpoint_history`).

Seeds: the network's initial weights come from `SeedSequence([seed],
spawn_key=(2,))`; shuffling and dropout of epoch e from `SeedSequence([seed, e])`
(see `hpsearch.nn.trainer`). `config.seed` therefore determines the run.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.checkpoints import Checkpoint, CheckpointStorage, checkpoint_name
from hpsearch.config import TrainConfig
from hpsearch.data import PreparedData, prepare_data_cached
from hpsearch.data.preprocess import Preprocessor
from hpsearch.errors import CheckpointError
from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.train_stats import SCALAR_METRICS
from hpsearch.nn.trainer import TrainerConfig, TrainResult, TrainState, train

__all__ = [
    "CheckpointTarget",
    "LoadedModel",
    "build_model",
    "checkpoint_history",
    "load_model",
    "model_config",
    "prepare",
    "run_training",
    "state_from_checkpoint",
    "trainer_config",
]

EpochCallback = Callable[[dict[str, Any], str | None], None]


def prepare(config: TrainConfig, data_root: Path, store_root: Path | None = None) -> PreparedData:
    """The config's data set, preprocessed, loaded once per process (memory-mapped from
    `store_root`, shared by the processes of a host, when given)."""
    return prepare_data_cached(config.data, config.preprocess, Path(data_root), store_root)


def model_config(config: TrainConfig, input_dim: int, output_dim: int) -> MLPConfig:
    return MLPConfig(input_dim=input_dim, output_dim=output_dim, **config.model.model_dump())


def trainer_config(config: TrainConfig) -> TrainerConfig:
    return TrainerConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        **config.optimizer.model_dump(),
        **config.schedule.model_dump(),
        ema_decay=config.ema_decay,
        train_accuracy_samples=config.train_accuracy_samples,
        divergence_factor=config.divergence_factor,
        seed=config.seed,
    )


def build_model(config: TrainConfig, prepared: PreparedData) -> MLP:
    """A freshly initialized network for this config and data."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed], spawn_key=(2,)))
    return MLP(model_config(config, prepared.input_dim, prepared.output_dim), rng)


@dataclass(frozen=True)
class CheckpointTarget:
    """Where a run writes its checkpoints: `<storage root>/<key_dir>/<name>`."""

    storage: CheckpointStorage
    key_dir: str
    stage: int = 0
    trial: int = 0
    extra: dict[str, Any] | None = None


def run_training(
    config: TrainConfig,
    prepared: PreparedData,
    *,
    target: CheckpointTarget | None = None,
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: Checkpoint | None = None,
) -> tuple[MLP, TrainResult]:
    """Train `config` on `prepared`, checkpointing every epoch to `target`.

    `on_epoch(record, checkpoint_path)` runs after the epoch's checkpoint is
    written (path relative to the storage root, None without a target).
    Both run on a writer thread while the next epoch trains (`_EpochWriter`):
    in epoch order, at most one epoch behind, all done when this returns. An
    error in either stops training and is raised here. An epoch that ends
    once `should_stop()` holds (a cancel the previous epoch's commit
    reported) is not written, and the run ends "stopped".
    `resume` continues from a checkpoint of the same architecture.
    """
    model = build_model(config, prepared)
    state = None if resume is None else state_from_checkpoint(resume)

    def write(record: dict[str, Any], train_state: TrainState) -> None:
        path = None
        if target is not None:
            path = _save(target, config, prepared, record, train_state)
        if on_epoch is not None:
            on_epoch(record, path)

    def asked_to_stop() -> bool:
        return should_stop is not None and should_stop()

    writer = None
    if target is not None or on_epoch is not None:
        writer = _EpochWriter(write, asked_to_stop)

    def stop() -> bool:
        return (writer is not None and writer.halted) or asked_to_stop()

    try:
        result = train(
            model,
            prepared.X_train,
            prepared.y_train,
            prepared.X_val,
            prepared.y_val,
            trainer_config(config),
            on_epoch=None if writer is None else writer.submit,
            should_stop=stop,
            resume=state,
        )
    finally:
        if writer is not None:
            writer.join()
    if writer is not None:
        writer.raise_failure()
        if writer.skipped is not None and result.status == "completed":
            why = f"stop requested before epoch {writer.skipped} was written"
            result = dataclasses.replace(result, status="stopped", reason=why)
    return model, result


class _EpochWriter:
    """Runs `write(record, state)` for each epoch on one thread of its own, one epoch at a time.

    The trainer hands over an epoch and trains the next one meanwhile: the
    checkpoint's encoding, its fsyncs and the epoch's commit overlap training
    instead of adding to it. `submit` first waits for the previous epoch, so
    writes keep their order and at most one epoch is unwritten. A failure, or
    `stop_requested()` at hand-over (the epoch is then `skipped`), sets
    `halted`, which stops the trainer at its next iteration; a failure is
    raised in the training thread by `submit` or `raise_failure`. The thread
    starts with the first epoch and lives until `join` (starting one per epoch
    made the trainer wait for each start, about 6% of a worker's time on
    epochs of 20-30 ms with two workers on two cores).
    """

    def __init__(
        self,
        write: Callable[[dict[str, Any], TrainState], None],
        stop_requested: Callable[[], bool],
    ) -> None:
        self._write, self._stop_requested = write, stop_requested
        self._thread: threading.Thread | None = None
        self._epochs: queue.Queue[tuple[dict[str, Any], TrainState] | None] = queue.Queue()
        self._error: BaseException | None = None
        self.skipped: int | None = None  # the first epoch not written, after a stop request
        self.halted = False

    def submit(self, record: dict[str, Any], state: TrainState) -> None:
        self._epochs.join()  # the previous epoch is written
        self.raise_failure()
        if self.halted or self._stop_requested():
            self.skipped = self.skipped or int(record["epoch"])
            self.halted = True
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="epoch-writer", daemon=True)
            self._thread.start()
        self._epochs.put((record, state))

    def _serve(self) -> None:
        while True:
            epoch = self._epochs.get()
            try:
                if epoch is None:  # from `join`
                    return
                self._write(*epoch)
            except BaseException as error:  # handed to the training thread
                self._error = error
                self.halted = True
            finally:
                self._epochs.task_done()

    def join(self) -> None:
        """Wait for the epoch in hand, then end the thread."""
        self._epochs.join()
        if self._thread is not None:
            self._epochs.put(None)
            self._thread.join()
            self._thread = None

    def raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _save(
    target: CheckpointTarget,
    config: TrainConfig,
    prepared: PreparedData,
    record: dict[str, Any],
    state: TrainState,
) -> str:
    checkpoint = Checkpoint(
        params=state.params,
        buffers=state.buffers,
        optimizer=state.optimizer,
        preprocessing=dict(prepared.preprocessor.state()),
        ema=state.ema_params,
        config=config.model_dump(mode="json"),
        history=checkpoint_history(state.history),
        epoch=state.epoch,
        metrics={key: record.get(key) for key in SCALAR_METRICS},
        schedule_state={**state.schedule, "initial_loss": state.initial_loss},
        extra={
            **(target.extra or {}),
            "input_dim": prepared.input_dim,
            "output_dim": prepared.output_dim,
            "task": prepared.task,
            "class_names": list(prepared.class_names or []),
        },
    )
    name = checkpoint_name(record["val_accuracy"], target.stage, target.trial, state.epoch)
    return target.storage.save(target.key_dir, name, checkpoint)


def checkpoint_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history a checkpoint stores: each epoch's scalar values (losses, accuracies,
    learning rate, iterations, duration), and its own (last) epoch's record whole.

    The statistics of earlier epochs (histograms, update ratios, the loss curve
    within the epoch) are left out: a search keeps them in its epoch rows (the
    dashboard's source), and copying them into every later file made a trial's
    checkpoint writes grow with the square of its epochs (1.5 MB of JSON per
    file after 243 epochs).
    """
    scalars = [
        {key: value for key, value in record.items() if not isinstance(value, dict | list)}
        for record in history[:-1]
    ]
    return scalars + [dict(record) for record in history[-1:]]


def state_from_checkpoint(checkpoint: Checkpoint) -> TrainState:
    """The trainer state saved in a checkpoint, to resume from it."""
    schedule = dict(checkpoint.schedule_state)
    initial_loss = schedule.pop("initial_loss", None)
    return TrainState(
        epoch=checkpoint.epoch,
        params=dict(checkpoint.params),
        buffers=dict(checkpoint.buffers),
        optimizer={name: dict(state) for name, state in checkpoint.optimizer.items()},
        schedule=schedule,
        ema_params=None if checkpoint.ema is None else dict(checkpoint.ema),
        history=[dict(record) for record in checkpoint.history],
        initial_loss=initial_loss,
    )


@dataclass(frozen=True)
class LoadedModel:
    """A network and its fitted preprocessing, rebuilt from a checkpoint alone."""

    config: TrainConfig
    model: MLP
    preprocessor: Preprocessor
    class_names: tuple[str, ...] | None

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """Predictions for raw (unpreprocessed) features (N, D)."""
        X, _ = self.model.check_inputs(self.preprocessor.transform(np.asarray(X_raw)), None)
        return self.model.predict(X)

    def scores(self, X_raw: np.ndarray) -> np.ndarray:
        X, _ = self.model.check_inputs(self.preprocessor.transform(np.asarray(X_raw)), None)
        return self.model.scores(X)


def load_model(checkpoint: Checkpoint, use_ema: bool = False) -> LoadedModel:
    """Rebuild the network (or its running average with `use_ema`) from a checkpoint."""
    try:
        config = TrainConfig.model_validate(checkpoint.config)
        input_dim = int(checkpoint.extra["input_dim"])
        output_dim = int(checkpoint.extra["output_dim"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint does not describe its model: {error}") from error
    if use_ema and checkpoint.ema is None:
        raise CheckpointError("checkpoint has no running-average parameters")
    params = checkpoint.ema if use_ema and checkpoint.ema is not None else checkpoint.params
    model = MLP.from_state(model_config(config, input_dim, output_dim), params, checkpoint.buffers)
    statistics = {k: v for k, v in checkpoint.preprocessing.items() if isinstance(v, np.ndarray)}
    preprocessor = Preprocessor.from_state(config.preprocess, statistics)
    names = tuple(checkpoint.extra.get("class_names") or ()) or None
    return LoadedModel(config, model, preprocessor, names)
