"""Which checkpoints of a trial to keep: its best KEEP_BEST_PER_TRIAL and its last.

The worker tracks its trial's checkpoints in memory (read once from the
database on a retry), so that dropping the surplus costs no query: the rows
go in the same transaction that stores the new checkpoint
(`Storage.commit_epoch(drop_checkpoint_ids=...)`), the files after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KEEP_BEST_PER_TRIAL", "CheckpointKeeper", "KeptCheckpoint"]

KEEP_BEST_PER_TRIAL = 2


@dataclass(frozen=True)
class KeptCheckpoint:
    id: int
    epoch: int
    path: str
    val_accuracy: float | None


@dataclass
class CheckpointKeeper:
    """The stored checkpoints of one trial, in epoch order."""

    kept: list[KeptCheckpoint] = field(default_factory=list)

    def surplus_with_new(self, val_accuracy: float | None) -> list[KeptCheckpoint]:
        """The stored checkpoints to drop once a newer one with `val_accuracy` is stored.

        Kept: the KEEP_BEST_PER_TRIAL highest val_accuracy (None counts as 0;
        ties go to the older) and the newest, which is the new one.
        """
        ranked = sorted([*self.kept, None], key=lambda c: -_accuracy_of(c, val_accuracy))
        best = ranked[:KEEP_BEST_PER_TRIAL]
        return [checkpoint for checkpoint in self.kept if checkpoint not in best]

    def replace(self, dropped: list[KeptCheckpoint], new: KeptCheckpoint) -> None:
        """Forget the `dropped` checkpoints and remember `new` (the newest)."""
        self.kept = [c for c in self.kept if c not in dropped and c.epoch != new.epoch] + [new]


def _accuracy_of(checkpoint: KeptCheckpoint | None, new_accuracy: float | None) -> float:
    value = new_accuracy if checkpoint is None else checkpoint.val_accuracy
    return value or 0.0
