"""The keep-policy of a trial's checkpoints (worker.keep), by hand-worked cases."""

from __future__ import annotations

from worker.keep import KEEP_BEST_PER_TRIAL, CheckpointKeeper, KeptCheckpoint


def _checkpoint(epoch: int, accuracy: float | None) -> KeptCheckpoint:
    return KeptCheckpoint(id=100 + epoch, epoch=epoch, path=f"e{epoch}.npz", val_accuracy=accuracy)


def test_nothing_is_dropped_while_at_most_the_best_and_the_last_exist() -> None:
    assert KEEP_BEST_PER_TRIAL == 2
    keeper = CheckpointKeeper([_checkpoint(1, 0.5), _checkpoint(2, 0.6)])
    assert keeper.surplus_with_new(0.1) == []


def test_the_best_two_and_the_newest_are_kept() -> None:
    # Stored: 0.5 (e1), 0.7 (e2), 0.6 (e3); new 0.55 -> best two are e2, e3; e1 goes.
    stored = [_checkpoint(1, 0.5), _checkpoint(2, 0.7), _checkpoint(3, 0.6)]
    keeper = CheckpointKeeper(list(stored))
    assert keeper.surplus_with_new(0.55) == [stored[0]]
    # A new best (0.9) pushes out the third best (e1 at 0.5) and e3 (0.6) too.
    assert keeper.surplus_with_new(0.9) == [stored[0], stored[2]]


def test_missing_accuracies_count_as_zero_and_ties_keep_the_older() -> None:
    stored = [_checkpoint(1, None), _checkpoint(2, 0.4), _checkpoint(3, 0.4)]
    assert CheckpointKeeper(list(stored)).surplus_with_new(None) == [stored[0]]
    tied = [_checkpoint(1, 0.4), _checkpoint(2, 0.4), _checkpoint(3, 0.4)]
    assert CheckpointKeeper(list(tied)).surplus_with_new(0.1) == [tied[2]]


def test_replace_forgets_the_dropped_and_appends_the_new() -> None:
    stored = [_checkpoint(1, 0.5), _checkpoint(2, 0.7), _checkpoint(3, 0.6)]
    keeper = CheckpointKeeper(list(stored))
    new = _checkpoint(4, 0.8)
    keeper.replace([stored[0]], new)
    assert keeper.kept == [stored[1], stored[2], new]
    again = _checkpoint(4, 0.8)  # the same epoch stored again replaces its entry
    keeper.replace([], again)
    assert keeper.kept == [stored[1], stored[2], again]


def test_a_longer_keep_last_keeps_the_newest_snapshots_too() -> None:
    stored = [_checkpoint(e, a) for e, a in ((1, 0.9), (2, 0.5), (3, 0.4), (4, 0.3))]
    keeper = CheckpointKeeper(list(stored), keep_best=1, keep_last=3)
    # Best 1: e1 (0.9); last 3: the new one, e4 and e3; e2 goes.
    assert keeper.surplus_with_new(0.2) == [stored[1]]
    assert CheckpointKeeper(list(stored), keep_best=0, keep_last=1).surplus_with_new(0.2) == stored
    everything = CheckpointKeeper(list(stored), keep_best=2, keep_last=10)
    assert everything.surplus_with_new(0.1) == []
    five = CheckpointKeeper(list(stored[1:]), keep_best=0, keep_last=5)
    assert five.surplus_with_new(0.1) == []  # 3 stored + the new one: all among the last 5
