"""Every kind built from a small pool of real checkpoints, and the request check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.ensembles import (
    KINDS,
    Availability,
    MemberPool,
    OutputCache,
    build,
    check_request,
    member_from_checkpoint,
)
from hpsearch.errors import EnsembleError
from tests.ensembles.members import blobs_config, blobs_data, train_checkpoints


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> MemberPool:
    tmp = tmp_path_factory.mktemp("pool")
    runs = {
        trial: train_checkpoints(
            tmp, blobs_config(seed=trial, ema_decay=0.9, epochs=4), f"t{trial}"
        )
        for trial in range(1, 4)
    }
    members = {
        trial: [
            member_from_checkpoint(
                c,
                trial_id=trial,
                epoch=c.epoch,
                path=f"t{trial}/e{c.epoch}",
                val_accuracy=c.metrics["val_accuracy"],
            )
            for c in checkpoints
        ]
        for trial, checkpoints in runs.items()
    }
    everything = sorted(
        (m for ms in members.values() for m in ms), key=lambda m: -m.source["val_accuracy"]
    )
    per_trial = sorted(
        (max(ms, key=lambda m: m.source["val_accuracy"]) for ms in members.values()),
        key=lambda m: -m.source["val_accuracy"],
    )
    best_trial = members[per_trial[0].source["trial_id"]]
    return MemberPool(everything, per_trial, best_trial, per_trial)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_and_reports_its_figures(
    kind: str, pool: MemberPool, tmp_path: Path
) -> None:
    data = blobs_data(tmp_path)
    cache = OutputCache(data)
    built = build(kind, 3, pool, data, cache)
    figures = built.figures
    assert 0.0 <= figures["val_accuracy"] <= 1.0 and figures["test_accuracy"] is not None
    assert figures["best_single"]["val_accuracy"] == pytest.approx(
        pool.library[0].source["val_accuracy"], abs=1e-6
    )
    assert built.ensemble.weights.sum() == pytest.approx(1.0)
    assert 0.0 <= figures["diversity"] <= 1.0
    assert np.array_equal(built.ensemble.predict(data.X_val).shape, data.y_val.shape)
    if kind == "polyak":
        assert len(built.ensemble.members) == 1 and set(figures["variants"]) == {"uniform", "ema"}
        assert figures["epochs"] == [2, 3, 4]
    if kind == "greedy":
        assert figures["val_accuracy"] >= figures["best_single"]["val_accuracy"]
        assert figures["picks"] <= 3
    if kind == "snapshots":
        assert [m.checkpoint.epoch for m in built.ensemble.members] == [2, 3, 4]


def test_outputs_of_each_member_are_computed_once(pool: MemberPool, tmp_path: Path) -> None:
    cache = OutputCache(blobs_data(tmp_path))
    build("greedy", 10, pool, cache.data, cache)
    computed = dict(cache.val)
    build("top_k", 3, pool, cache.data, cache)
    assert all(cache.val[key] is value for key, value in computed.items())


AVAILABLE = Availability(checkpoints=12, configurations=3, best_trial_checkpoints=4, seed_trials=0)


def test_request_check_gives_sizes_and_clear_errors() -> None:
    assert check_request("top_k", None, AVAILABLE) == 3  # default 5, capped by what exists
    assert check_request("greedy", 50, AVAILABLE) == 50  # picks may repeat a checkpoint
    assert check_request("polyak", 4, AVAILABLE) == 4
    with pytest.raises(EnsembleError, match="unknown ensemble kind 'bagging'"):
        check_request("bagging", None, AVAILABLE)
    with pytest.raises(EnsembleError, match="size: top_k of size 4 needs 4 configurations"):
        check_request("top_k", 4, AVAILABLE)
    with pytest.raises(EnsembleError, match="size: greedy of size 51"):
        check_request("greedy", 51, AVAILABLE)
    with pytest.raises(EnsembleError, match="no finished seed trials"):
        check_request("seeds", None, AVAILABLE)
    with pytest.raises(EnsembleError, match="stored no checkpoints"):
        check_request("top_k", None, Availability(0, 0, 0, 0))
    with pytest.raises(EnsembleError, match="size: must be an integer >= 1"):
        check_request("snapshots", 0, AVAILABLE)
