"""Build an ensemble of one kind from members already loaded, and measure it.

`MemberPool` holds the checkpoints a search offers, loaded by the caller
(the worker reads them from the checkpoint storage; nothing here touches a
database or a queue). `OutputCache` computes each member's validation and
test outputs once and serves them to every kind built in the same job.
`build(kind, size, pool, data, cache)` returns the `Ensemble` and its figures:

- val_accuracy / test_accuracy of the ensemble (test None without a test split),
- best_single: the pool's best single checkpoint by validation accuracy,
  with its validation and test accuracy (the test split never chooses anything),
- diversity: mean pairwise disagreement of the distinct members (`combine.disagreement`),
- members / picks: distinct members and weighted picks, build_s: seconds spent
  in `build` on this kind (members' outputs included the first time they are
  computed; loading the members is the caller's),
- kind-specific facts: greedy's accuracy history, polyak's variants.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpsearch.checkpoints import Checkpoint
from hpsearch.data import Dataset
from hpsearch.ensembles.combine import accuracy_of_outputs, combine_outputs, disagreement
from hpsearch.ensembles.ensemble import Ensemble, Member, member_outputs
from hpsearch.ensembles.polyak import average_parameters, refit_batchnorm
from hpsearch.ensembles.selection import greedy_selection
from hpsearch.errors import EnsembleError

__all__ = ["BuiltEnsemble", "MemberPool", "OutputCache", "build"]


@dataclass(frozen=True)
class MemberPool:
    """Members on offer, each with source {"trial_id", "stage", "epoch", "path", "val_accuracy"}.

    - library: the best N checkpoints of the search by validation accuracy, best first.
    - per_configuration: the best checkpoint of each distinct configuration, best first.
    - best_trial: the best trial's checkpoints, in epoch order.
    - seeds: the best checkpoint of each finished seed trial.
    """

    library: Sequence[Member] = ()
    per_configuration: Sequence[Member] = ()
    best_trial: Sequence[Member] = ()
    seeds: Sequence[Member] = ()


@dataclass
class OutputCache:
    """Validation and test outputs of each member, computed once (keyed by its source path)."""

    data: Dataset
    val: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)

    def _key(self, member: Member) -> str:
        return str(member.source.get("path") or id(member))

    def outputs(self, member: Member) -> tuple[np.ndarray, np.ndarray | None]:
        key = self._key(member)
        if key not in self.val:
            model = member.loaded()
            self.val[key] = member_outputs(model, self.data.X_val)
            if self.data.X_test is not None:
                self.test[key] = member_outputs(model, self.data.X_test)
        return self.val[key], self.test.get(key)


@dataclass(frozen=True)
class BuiltEnsemble:
    ensemble: Ensemble
    figures: dict[str, Any]


def build(
    kind: str, size: int, pool: MemberPool, data: Dataset, cache: OutputCache
) -> BuiltEnsemble:
    """The ensemble of `kind` and `size` (already checked by `kinds.check_request`)."""
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if kind == "seeds":
        members, weights = _uniform(pool.seeds[:size])
    elif kind == "top_k":
        members, weights = _uniform(pool.per_configuration[:size])
    elif kind == "snapshots":
        members, weights = _uniform(_last(pool.best_trial, size))
    elif kind == "polyak":
        members, weights, extra = _polyak(_last(pool.best_trial, size), data, cache)
    elif kind == "greedy":
        members, weights, extra = _greedy(pool.library, size, data, cache)
    else:
        raise EnsembleError(f"kind: unknown ensemble kind {kind!r}")
    if not members:
        raise EnsembleError(f"kind {kind!r}: no checkpoints to build it from")
    ensemble = Ensemble(kind, members, weights)
    figures = _figures(ensemble, pool, data, cache)
    figures.update(extra, build_s=round(time.perf_counter() - started, 4), kind=kind)
    return BuiltEnsemble(ensemble, figures)


def _uniform(members: Sequence[Member]) -> tuple[list[Member], np.ndarray]:
    return list(members), np.full(len(members), 1.0 / max(len(members), 1))


def _last(checkpoints: Sequence[Member], count: int) -> list[Member]:
    return sorted(checkpoints, key=lambda m: m.checkpoint.epoch)[-count:]


def _greedy(
    library: Sequence[Member], size: int, data: Dataset, cache: OutputCache
) -> tuple[list[Member], np.ndarray, dict[str, Any]]:
    if not library:
        return [], np.zeros(0), {}
    val_outputs = np.stack([cache.outputs(member)[0] for member in library])
    kind = Ensemble("greedy", library[:1], [1.0]).output_kind
    selection = greedy_selection(val_outputs, data.y_val, kind, max_size=size)
    chosen = np.flatnonzero(selection.counts)
    extra = {"history": list(selection.history), "picks": int(selection.counts.sum()),
             "candidates": len(library)}  # fmt: skip
    return [library[int(i)] for i in chosen], selection.weights[chosen], extra


def _polyak(
    snapshots: list[Member], data: Dataset, cache: OutputCache
) -> tuple[list[Member], np.ndarray, dict[str, Any]]:
    """The better on validation of the uniform parameter mean and the last checkpoint's EMA."""
    if not snapshots:
        return [], np.zeros(0), {}
    last = snapshots[-1]
    variants = {"uniform": average_parameters([m.checkpoint.params for m in snapshots])}
    if last.checkpoint.ema is not None:
        variants["ema"] = dict(last.checkpoint.ema)
    epochs = [m.checkpoint.epoch for m in snapshots]
    scored = {}
    for name, params in variants.items():
        member = _averaged_member(last, params, data, name, epochs)
        val, test = cache.outputs(member)
        scored[name] = (accuracy_of_outputs(val, data.y_val, _kind_of(member)), member, test)
    best = max(scored, key=lambda name: (scored[name][0], name == "uniform"))
    facts = {
        name: {"val_accuracy": acc, "test_accuracy": _test_accuracy(test, data, _kind_of(m))}
        for name, (acc, m, test) in scored.items()
    }
    return [scored[best][1]], np.ones(1), {"variant": best, "variants": facts, "epochs": epochs}


def _averaged_member(
    last: Member, params: dict[str, np.ndarray], data: Dataset, variant: str, epochs: list[int]
) -> Member:
    """`last` with averaged `params` and batch-norm statistics refitted on the training split."""
    base = last.checkpoint
    shell = Member(Checkpoint(params=params, buffers=base.buffers, preprocessing=base.preprocessing,
                              config=base.config, epoch=base.epoch, extra=base.extra))  # fmt: skip
    loaded = shell.loaded()
    buffers = dict(base.buffers)
    if loaded.model.config.batchnorm:
        buffers = refit_batchnorm(loaded.model, loaded.preprocessor.transform(data.X_train))
    checkpoint = Checkpoint(params=params, buffers=buffers, preprocessing=base.preprocessing,
                            config=base.config, epoch=base.epoch, extra=base.extra)  # fmt: skip
    source = {**last.source, "path": f"{last.source.get('path')}#polyak-{variant}",
              "variant": variant, "epochs": epochs}  # fmt: skip
    return Member(checkpoint, source)


def _kind_of(member: Member) -> str:
    return Ensemble("one", [member], [1.0]).output_kind


def _test_accuracy(test: np.ndarray | None, data: Dataset, kind: str) -> float | None:
    if test is None or data.y_test is None:
        return None
    return accuracy_of_outputs(test, data.y_test, kind)


def _figures(
    ensemble: Ensemble, pool: MemberPool, data: Dataset, cache: OutputCache
) -> dict[str, Any]:
    kind = ensemble.output_kind
    outputs = [cache.outputs(member) for member in ensemble.members]
    val = combine_outputs([o[0] for o in outputs], ensemble.weights)
    test = None
    if data.X_test is not None:
        test = combine_outputs([o[1] for o in outputs if o[1] is not None], ensemble.weights)
    return {
        "val_accuracy": accuracy_of_outputs(val, data.y_val, kind),
        "test_accuracy": _test_accuracy(test, data, kind),
        "best_single": _best_single(pool, data, cache, kind),
        "diversity": disagreement([o[0] for o in outputs], kind),
        "members": len(ensemble.members),
    }


def _best_single(pool: MemberPool, data: Dataset, cache: OutputCache, kind: str) -> dict | None:
    """The best stored checkpoint by validation accuracy (the library's first, else any)."""
    candidates = list(pool.library[:1] or pool.per_configuration[:1] or pool.best_trial)
    if not candidates:
        return None
    best = max(candidates, key=lambda m: m.source.get("val_accuracy") or 0.0)
    val, test = cache.outputs(best)
    return {
        "val_accuracy": accuracy_of_outputs(val, data.y_val, kind),
        "test_accuracy": _test_accuracy(test, data, kind),
        "trial_id": best.source.get("trial_id"),
        "epoch": best.checkpoint.epoch,
        "path": best.source.get("path"),
    }
