"""The spec's `[ensembles]` and `[checkpoints]` tables."""

from __future__ import annotations

import pytest

from hpsearch.ensembles.settings import CheckpointPolicy, EnsembleSpec
from hpsearch.errors import ConfigError
from hpsearch.search import parse_search_spec

SPEC = {
    "name": "s",
    "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
    "stages": [{"trials": 2, "epochs": 1}],
}


def test_defaults_build_four_kinds_and_keep_enough_snapshots() -> None:
    spec = parse_search_spec(SPEC)
    assert spec.ensembles.kinds == ["top_k", "snapshots", "polyak", "greedy"]
    assert spec.checkpoints.keep_best == 2
    assert spec.checkpoints.last_to_keep(spec.ensembles) == 5
    only_greedy = EnsembleSpec(kinds=["greedy"])
    assert CheckpointPolicy().last_to_keep(only_greedy) == 1
    assert CheckpointPolicy(keep_last=2).last_to_keep(EnsembleSpec(snapshots=7)) == 2
    assert CheckpointPolicy().last_to_keep(EnsembleSpec(polyak=8)) == 8


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"ensembles": {"kinds": ["bagging"]}}, "ensembles.kinds"),
        ({"ensembles": {"kinds": ["greedy", "greedy"]}}, "each kind at most once"),
        ({"ensembles": {"greedy": 51}}, "ensembles.greedy"),
        ({"ensembles": {"top_k": 0}}, "ensembles.top_k"),
        ({"ensembles": {"sizes": 3}}, "ensembles.sizes"),
        ({"checkpoints": {"keep_last": 0}}, "checkpoints.keep_last"),
    ],
)
def test_bad_tables_are_refused_naming_the_field(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_search_spec({**SPEC, **table})
