"""The search spec's `[ensembles]` and `[checkpoints]` tables.

    [ensembles]
    kinds = ["top_k", "snapshots", "polyak", "greedy"]   # the default; add "seeds" to retrain
    top_k = 5          # k best configurations
    snapshots = 5      # last m checkpoints of the best trial
    polyak = 5         # last m checkpoints averaged
    greedy = 50        # most picks of Caruana's selection
    seeds = 5          # K retrainings of the best configuration (a final stage)
    candidates = 50    # greedy selects among the best N checkpoints of the search

    [checkpoints]      # the keep-policy of every trial's checkpoints
    keep_best = 2      # its best k by validation accuracy
    keep_last = 5      # and its last m (default: what snapshots/polyak need, else 1)

The ensembles are built by a worker when the last stage ends; sizes larger
than what the search stored are capped there (an explicit request, by
`hpsearch ensemble` or the API, is refused instead).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from hpsearch.config import StrictModel
from hpsearch.ensembles.kinds import DEFAULT_KINDS, KINDS, Kind
from hpsearch.ensembles.selection import GREEDY_MAX_SIZE

__all__ = ["CheckpointPolicy", "EnsembleSpec"]


class EnsembleSpec(StrictModel):
    """Which ensembles a search builds when it ends, and their sizes."""

    kinds: list[Kind] = Field(default_factory=lambda: [*DEFAULT_KINDS], max_length=len(KINDS))
    top_k: int = Field(5, ge=1, le=1000)
    snapshots: int = Field(5, ge=1, le=1000)
    polyak: int = Field(5, ge=1, le=1000)
    greedy: int = Field(GREEDY_MAX_SIZE, ge=1, le=GREEDY_MAX_SIZE)
    seeds: int = Field(5, ge=1, le=100)
    candidates: int = Field(50, ge=1, le=10_000)

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[str]) -> list[str]:
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"each kind at most once, got {kinds}")
        return kinds

    def size_of(self, kind: str) -> int:
        size: int = getattr(self, kind)
        return size


class CheckpointPolicy(StrictModel):
    """Each trial keeps its best `keep_best` checkpoints and its last `keep_last`."""

    keep_best: int = Field(2, ge=0, le=10_000)
    keep_last: int | None = Field(None, ge=1, le=10_000)

    def last_to_keep(self, ensembles: EnsembleSpec) -> int:
        """`keep_last`, or by default as many as the requested snapshots/polyak sizes (>= 1)."""
        if self.keep_last is not None:
            return self.keep_last
        needs = [ensembles.size_of(k) for k in ("snapshots", "polyak") if k in ensembles.kinds]
        return max([1, *needs])
