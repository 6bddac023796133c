"""`run_trial` in this process on SQLite: one commit per epoch, the keep-policy, the finish."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_tools import checkpoint_files, parse, spiral_spec

from hpsearch.executors import LocalExecutor
from hpsearch.master import create_search
from hpsearch.settings import Settings
from worker.context import make_context
from worker.trial import run_trial


@pytest.mark.parametrize(("keep_best", "keep_last"), [(2, 1), (1, 3)])
def test_a_trial_keeps_its_best_checkpoints_and_its_last_and_finishes_in_its_last_commit(
    tmp_path: Path, keep_best: int, keep_last: int
) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'trial.db'}")
    context = make_context(settings)
    policy = {"keep_best": keep_best, "keep_last": keep_last}
    try:
        spec = parse(spiral_spec([{"trials": 1, "epochs": 6}], concurrency=1, checkpoints=policy))
        search_id = create_search(context.storage, spec, LocalExecutor())
        (trial_id,) = context.storage.queued_trial_ids(search_id)
        assert run_trial(trial_id, context) == "completed"
        trial = context.storage.get_trial(trial_id)
        curve = context.storage.trial_curves(trial_id)
        kept = context.storage.list_checkpoints(trial_id)
        assert [epoch.epoch for epoch in curve] == [1, 2, 3, 4, 5, 6]
        assert trial.finished_at is not None and trial.last_epoch == 6
        assert len(kept) <= keep_best + keep_last
        by_accuracy = sorted(curve, key=lambda epoch: -(epoch.val_accuracy or 0.0))
        expected = {epoch.epoch for epoch in by_accuracy[:keep_best]}
        expected |= {epoch.epoch for epoch in curve[-keep_last:]}
        assert {checkpoint.epoch for checkpoint in kept} == expected
        on_disk = {path.relative_to(settings.resolved_checkpoint_root).as_posix()
                   for path in checkpoint_files(settings.resolved_checkpoint_root)}  # fmt: skip
        assert on_disk == {checkpoint.path for checkpoint in kept}
    finally:
        if context.beat is not None:
            context.beat.stop()
        context.storage.close()


def test_a_trial_diverges_at_the_divergence_factor_of_its_spec(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'trial.db'}")
    context = make_context(settings)
    try:
        raw = spiral_spec([{"trials": 1, "epochs": 3}], concurrency=1)
        raw["base"].update(divergence_factor=1.05, batch_size=10, optimizer={"rule": "sgd"})
        raw["space"] = {"optimizer.learning_rate": {"kind": "choice", "values": [5.0]}}
        search_id = create_search(context.storage, parse(raw), LocalExecutor())
        (trial_id,) = context.storage.queued_trial_ids(search_id)
        assert run_trial(trial_id, context) == "diverged"
        trial = context.storage.get_trial(trial_id)
        assert trial.config["divergence_factor"] == 1.05
        assert trial.error is not None and "above 1.05 x the initial loss" in trial.error
    finally:
        if context.beat is not None:
            context.beat.stop()
        context.storage.close()
