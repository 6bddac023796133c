"""The sanity gate: the notes' checks on the smallest and largest networks of a space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.db import open_storage
from hpsearch.executors import LocalExecutor
from hpsearch.master import create_search
from hpsearch.search import parse_search_spec
from hpsearch.search.gate import extreme_params, sanity_gate


def gate_spec(low_width: int, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "gate",
        "base": {
            "data": {
                "source": "blobs",
                "num_classes": 10,
                "points_per_class": 10,
                "num_features": 4,
            },
            "model": {"hidden_sizes": [8, 8]},
        },
        "space": {
            "model.hidden_sizes.*": {"kind": "log_int", "low": low_width, "high": 32},
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 1.0},
        },
        "budget_epochs": 10,
        "sanity_gate": True,
    }
    raw.update(changes)
    return raw


def test_the_extremes_are_the_low_and_high_ends_of_every_range() -> None:
    extremes = extreme_params(parse_search_spec(gate_spec(4)))
    assert extremes["smallest"]["model.hidden_sizes.*"] == 4
    assert extremes["largest"]["model.hidden_sizes.*"] == 32
    assert extremes["largest"]["optimizer.learning_rate"] < 1.0


def test_a_sound_space_passes_with_its_numbers() -> None:
    result = sanity_gate(parse_search_spec(gate_spec(12)), Path("."))
    assert result.passed and result.reason == ""
    kinds = {(c["config"], c["check"]) for c in result.checks}
    assert kinds == {
        (s, k) for s in ("smallest", "largest") for k in ("initial_loss", "overfit_20")
    }
    assert all(abs(c["measured"] - 2.302585) < 0.12 for c in result.checks if "measured" in c)


def test_a_network_too_narrow_to_overfit_20_examples_fails_and_stops_the_search(
    tmp_path: Path,
) -> None:
    raw = gate_spec(1)
    result = sanity_gate(parse_search_spec(raw), Path("."))
    assert not result.passed
    assert "smallest network [1, 1]: 20 examples not overfit" in result.reason
    assert "training accuracy" in result.reason
    storage = open_storage(f"sqlite:///{tmp_path / 'gate.db'}")
    search_id = create_search(storage, parse_search_spec(raw), LocalExecutor())
    search = storage.get_search(search_id)
    assert search.status == "failed" and search.reason == result.reason
    assert storage.search_snapshot(search_id).trials == [] and not storage.list_stages(search_id)
    unchecked = create_search(
        storage, parse_search_spec({**raw, "sanity_gate": False}), LocalExecutor()
    )
    assert storage.get_search(unchecked).status == "running"
