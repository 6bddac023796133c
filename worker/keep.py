"""Which checkpoints of a trial to keep: its best `keep_best` and its last `keep_last`.

The policy is the search spec's `[checkpoints]` table (`hpsearch.search.spec`;
defaults: the best KEEP_BEST_PER_TRIAL and the last one, or more last ones
when the spec's ensembles need snapshots). The worker tracks its trial's
checkpoints in memory (read once from the database on a retry), so that
dropping the surplus costs no query: the rows go in the same transaction
that stores the new checkpoint (`Storage.commit_epoch(drop_checkpoint_ids=...)`),
the files after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KEEP_BEST_PER_TRIAL", "KEEP_LAST_PER_TRIAL", "CheckpointKeeper", "KeptCheckpoint"]

KEEP_BEST_PER_TRIAL = 2
KEEP_LAST_PER_TRIAL = 1


@dataclass(frozen=True)
class KeptCheckpoint:
    id: int
    epoch: int
    path: str
    val_accuracy: float | None


@dataclass
class CheckpointKeeper:
    """The stored checkpoints of one trial, in epoch order, and the policy that prunes them."""

    kept: list[KeptCheckpoint] = field(default_factory=list)
    keep_best: int = KEEP_BEST_PER_TRIAL
    keep_last: int = KEEP_LAST_PER_TRIAL

    def surplus_with_new(self, val_accuracy: float | None) -> list[KeptCheckpoint]:
        """The stored checkpoints to drop once a newer one with `val_accuracy` is stored.

        Kept: the `keep_best` highest val_accuracy (None counts as 0; ties go to
        the older), the new one (always: it is the newest) and the
        `keep_last - 1` newest stored before it.
        """
        ranked = sorted([*self.kept, None], key=lambda c: -_accuracy_of(c, val_accuracy))
        best = ranked[: self.keep_best]
        by_epoch = sorted(self.kept, key=lambda c: c.epoch)
        newest = (
            by_epoch[max(0, len(by_epoch) - (self.keep_last - 1)) :] if self.keep_last > 1 else []
        )
        return [c for c in self.kept if c not in best and c not in newest]

    def replace(self, dropped: list[KeptCheckpoint], new: KeptCheckpoint) -> None:
        """Forget the `dropped` checkpoints and remember `new` (the newest)."""
        self.kept = [c for c in self.kept if c not in dropped and c.epoch != new.epoch] + [new]


def _accuracy_of(checkpoint: KeptCheckpoint | None, new_accuracy: float | None) -> float:
    value = new_accuracy if checkpoint is None else checkpoint.val_accuracy
    return value or 0.0
