"""The trial path without a master: resume from a checkpoint file, promotion, failures, advance.

`run_trial` runs in this process on SQLite with the worker's own context;
nothing plays the master but the worker itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_tools import parse, spiral_spec

from hpsearch.checkpoints import Checkpoint, FileSystemCheckpointStorage, load_checkpoint
from hpsearch.config import TrainConfig
from hpsearch.db import NewTrial
from hpsearch.executors import LocalExecutor
from hpsearch.master import create_search
from hpsearch.settings import Settings
from hpsearch.training import CheckpointTarget, prepare, run_training
from worker import trial as trial_module
from worker.context import WorkerContext, make_context
from worker.trial import run_trial

# Every piece of state a resume must restore: Adam moments and step, a step schedule,
# a momentum-free EMA of the parameters, batch-norm running statistics, dropout's RNG.
CONFIG = TrainConfig.model_validate({
    "data": {"source": "spiral", "num_classes": 3, "points_per_class": 60},
    "model": {"hidden_sizes": [16, 16], "batchnorm": True, "keep_prob": 0.8},
    "optimizer": {"rule": "adam", "learning_rate": 5e-3},
    "schedule": {"kind": "step", "step_epochs": 1, "step_factor": 0.7},
    "epochs": 4, "batch_size": 30, "seed": 7, "ema_decay": 0.9,
})  # fmt: skip


def _with_epochs(epochs: int) -> TrainConfig:
    return CONFIG.model_copy(update={"epochs": epochs})


def _train_to_files(root: Path, key_dir: str, config: TrainConfig, resume: Any = None) -> Path:
    """Train with checkpoints under root/key_dir; the path of the last epoch's file."""
    paths: list[str] = []
    target = CheckpointTarget(FileSystemCheckpointStorage(root), key_dir)
    run_training(config, prepare(config, root), target=target, resume=resume,
                 on_epoch=lambda record, path: paths.append(str(path)))  # fmt: skip
    return root / paths[-1]


def assert_same_state(resumed: Checkpoint, straight: Checkpoint) -> None:
    """Parameters, buffers, optimizer state, EMA, schedule and history, bit for bit."""
    assert resumed.epoch == straight.epoch
    for mine, theirs in ((resumed.params, straight.params), (resumed.buffers, straight.buffers),
                         (resumed.ema, straight.ema)):  # fmt: skip
        assert mine is not None and theirs is not None and mine.keys() == theirs.keys()
        for name in theirs:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
    assert straight.buffers, "batch norm keeps running statistics"
    assert resumed.optimizer.keys() == straight.optimizer.keys()
    for name, state in straight.optimizer.items():
        for key, value in state.items():
            np.testing.assert_array_equal(resumed.optimizer[name][key], value, err_msg=key)
    assert resumed.schedule_state == straight.schedule_state
    metrics = ("train_loss", "val_loss", "val_accuracy", "learning_rate", "ema_val_accuracy")
    assert [[r.get(k) for k in metrics] for r in resumed.history] == [
        [r.get(k) for k in metrics] for r in straight.history]  # fmt: skip


def test_resuming_from_a_checkpoint_file_gives_the_numbers_of_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    straight = load_checkpoint(_train_to_files(tmp_path, "straight", CONFIG))
    halfway = load_checkpoint(_train_to_files(tmp_path, "first", _with_epochs(2)))
    assert halfway.epoch == 2
    resumed = load_checkpoint(_train_to_files(tmp_path, "resumed", CONFIG, resume=halfway))
    assert_same_state(resumed, straight)
    learning_rates = [record["learning_rate"] for record in straight.history]
    assert learning_rates == sorted(learning_rates, reverse=True) and len(set(learning_rates)) == 4


class _NoAdvance:
    """Stands in for the worker's advancer where a test adds trials by hand."""

    def request(self, search_id: int) -> None:
        return None


@pytest.fixture
def context(tmp_path: Path) -> Iterator[WorkerContext]:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'trials.db'}")
    made = make_context(settings)
    try:
        yield made
    finally:
        if made.beat is not None:
            made.beat.stop()
        made.storage.close()


def _search(context: WorkerContext) -> int:
    """A running search whose spec the worker reads (keep-policy); trials come from the test."""
    spec = parse(spiral_spec([{"trials": 1, "epochs": 1}], concurrency=1))
    return context.storage.create_search(spec.name, spec.model_dump(mode="json"), seed=0).id


def _add(context: WorkerContext, search_id: int, config: TrainConfig, stage: int = 0,
         parent: int | None = None) -> int:  # fmt: skip
    new = NewTrial(stage, 0, {}, config.model_dump(mode="json"), config.seed, config.epochs,
                   parent_trial_id=parent)  # fmt: skip
    (trial_id,) = context.storage.insert_new_trials(search_id, [new])
    return trial_id


def _last_file(context: WorkerContext, trial_id: int) -> Checkpoint:
    record = context.storage.latest_checkpoint(trial_id)
    assert record is not None
    return load_checkpoint(context.settings.resolved_checkpoint_root / record.path)


def test_a_promoted_trial_continues_its_parents_weights_and_optimizer_state(
    context: WorkerContext, tmp_path: Path
) -> None:
    context.advancer = _NoAdvance()
    search_id = _search(context)
    parent = _add(context, search_id, _with_epochs(2))
    assert run_trial(parent, context) == "completed"
    child = _add(context, search_id, CONFIG, stage=1, parent=parent)
    assert run_trial(child, context) == "completed"
    assert [e.epoch for e in context.storage.trial_curves(child)] == [3, 4]
    straight = load_checkpoint(_train_to_files(tmp_path / "peer", "straight", CONFIG))
    assert_same_state(_last_file(context, child), straight)


def test_a_failing_trial_is_requeued_within_its_budget_then_fails(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    context.advancer = _NoAdvance()
    search_id = _search(context)
    errors = [MemoryError(), MemoryError(), RuntimeError("bad luck")]

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise errors.pop(0)

    monkeypatch.setattr(trial_module, "run_training", failing)
    oom = _add(context, search_id, CONFIG)
    assert run_trial(oom, context) == "queued"  # out of memory: one retry
    assert run_trial(oom, context) == "failed"
    failed = context.storage.get_trial(oom)
    assert (failed.failure_kind, failed.error, failed.attempts) == ("oom", "out of memory", 2)
    broken = _add(context, search_id, CONFIG, stage=1)
    assert run_trial(broken, context) == "failed"  # an error: no retry
    assert "RuntimeError: bad luck" in (context.storage.get_trial(broken).error or "")
    assert [e.event for e in context.storage.trial_events(oom)] == [
        "created", "claimed", "requeued", "claimed", "failed"]  # fmt: skip


def test_a_trial_taken_away_mid_run_commits_nothing_more(context: WorkerContext) -> None:
    context.advancer = _NoAdvance()
    search_id = _search(context)
    trial_id = _add(context, search_id, CONFIG)
    storage = context.storage
    commit_epoch = storage.commit_epoch

    def requeue_before_epoch_2(trial: int, worker_id: str, epoch: int, *args: Any,
                               **kwargs: Any) -> Any:  # fmt: skip
        if epoch == 2:
            storage.requeue_trial(trial, "taken away by an operator")
        return commit_epoch(trial, worker_id, epoch, *args, **kwargs)

    storage.commit_epoch = requeue_before_epoch_2  # type: ignore[method-assign]
    try:
        assert run_trial(trial_id, context) == "lost"
    finally:
        del storage.commit_epoch
    after = storage.get_trial(trial_id)
    assert (after.status, after.worker_id, after.last_epoch) == ("queued", None, 1)
    assert [e.epoch for e in storage.trial_curves(trial_id)] == [1]
    assert [c.epoch for c in storage.list_checkpoints(trial_id)] == [1]


def test_the_worker_advances_the_search_itself_to_its_end(context: WorkerContext) -> None:
    stages = [{"trials": 2, "epochs": 1}, {"trials": 1, "epochs": 2, "keep": 0.5}]
    search_id = create_search(context.storage, parse(spiral_spec(stages, concurrency=2)),
                              LocalExecutor())  # fmt: skip
    ran: list[int] = []
    while context.storage.get_search(search_id).status == "running" and len(ran) < 10:
        queued = context.storage.queued_trial_ids(search_id)
        if queued:
            ran.append(queued[0])
            run_trial(queued[0], context)
        else:  # the worker's advancer thread decides what comes next
            assert context.advancer is not None and context.advancer.wait_idle(30)
            if not context.storage.queued_trial_ids(search_id):
                break
    search = context.storage.get_search(search_id)
    assert search.status == "completed", (search, ran)
    stages_run = [context.storage.get_trial(trial_id).stage for trial_id in ran]
    assert stages_run == [0, 0, 1]
    assert all(context.storage.get_trial(trial_id).status == "completed" for trial_id in ran)
    assert context.storage.list_stages(search_id)[1].stage == 1  # recorded by the worker
