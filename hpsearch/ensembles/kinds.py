"""The five kinds of ensemble, what each needs, and the sizes they accept.

    kind       members                                               size (default)
    seeds      the best configuration retrained with K seeds         K = seed trials (5)
    top_k      best checkpoint of each of the k best configurations  k (5)
    snapshots  the last m checkpoints of the best trial              m (5)
    polyak     one network: the mean of the best trial's last m      m (5)
               checkpoints' parameters, or its trainer EMA
    greedy     Caruana selection with replacement over the best N    at most 50 picks
               checkpoints of the search (N = `candidates`)

`check_request(kind, size, available)` is the one check of a request, used
before anything is stored (API, CLI, the spec's `[ensembles]` table) and
again by the worker: an unknown kind, a size larger than the models that
exist, or a search without checkpoints raise `EnsembleError` naming the
problem. A greedy size counts picks, which may repeat a checkpoint, so it is
bounded by `GREEDY_MAX_SIZE`, not by the number of checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hpsearch.ensembles.selection import GREEDY_MAX_SIZE
from hpsearch.errors import EnsembleError

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_SIZES",
    "KINDS",
    "Availability",
    "Kind",
    "check_request",
    "default_size",
    "plan_requests",
]

Kind = Literal["seeds", "top_k", "snapshots", "polyak", "greedy"]
KINDS: tuple[str, ...] = ("seeds", "top_k", "snapshots", "polyak", "greedy")
DEFAULT_KINDS: tuple[Kind, ...] = ("top_k", "snapshots", "polyak", "greedy")
DEFAULT_SIZES = {"seeds": 5, "top_k": 5, "snapshots": 5, "polyak": 5, "greedy": GREEDY_MAX_SIZE}


@dataclass(frozen=True)
class Availability:
    """What a search has stored: checkpoints in all, configurations with a checkpoint,
    checkpoints of its best trial, finished seed trials (with a checkpoint)."""

    checkpoints: int
    configurations: int
    best_trial_checkpoints: int
    seed_trials: int


def default_size(kind: str) -> int:
    check_kind(kind)
    return DEFAULT_SIZES[kind]


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise EnsembleError(f"kind: unknown ensemble kind {kind!r}; expected one of {list(KINDS)}")
    return kind


def _available(kind: str, available: Availability) -> tuple[int, str]:
    if kind == "seeds":
        return available.seed_trials, "finished seed trials"
    if kind == "top_k":
        return available.configurations, "configurations with a checkpoint"
    if kind in ("snapshots", "polyak"):
        return available.best_trial_checkpoints, "checkpoints of the best trial"
    return GREEDY_MAX_SIZE, "picks at most (GREEDY_MAX_SIZE)"


def check_request(kind: str, size: int | None, available: Availability) -> int:
    """The size to build (`size`, or the kind's default capped by what exists); see the doc."""
    check_kind(kind)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise EnsembleError(f"size: must be an integer >= 1, got {size!r}")
    if available.checkpoints == 0:
        raise EnsembleError("the search stored no checkpoints: there is nothing to ensemble")
    limit, what = _available(kind, available)
    if limit == 0:
        raise EnsembleError(f"kind {kind!r}: the search has no {what}")
    if size is None:
        return min(DEFAULT_SIZES[kind], limit)
    if size > limit:
        raise EnsembleError(f"size: {kind} of size {size} needs {size} {what}; there are {limit}")
    return size


def plan_requests(
    requests: list[tuple[str, int]], available: Availability
) -> list[tuple[str, int]]:
    """The spec's requests (kind, size) that can be built, sizes capped by what exists.

    Used when a search ends by itself: a kind with nothing to build from is
    left out instead of failing (an explicit request goes through `check_request`).
    """
    if available.checkpoints == 0:
        return []
    planned = []
    for kind, size in requests:
        limit, _ = _available(check_kind(kind), available)
        if limit > 0:
            planned.append((kind, min(size, limit)))
    return planned
