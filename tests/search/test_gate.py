"""The sanity gate: the notes' checks on the smallest and largest networks of a space.

On by default: every search spec of examples/ passes it; a network too narrow
to fit 20 examples or an init scale far too large fails it with the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpsearch.db import open_storage
from hpsearch.executors import LocalExecutor
from hpsearch.master import create_search
from hpsearch.search import load_search_spec, parse_search_spec
from hpsearch.search.gate import extreme_params, sanity_gate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
    }
    raw.update(changes)
    return raw


def test_the_examples_are_found() -> None:
    assert {"search.toml", "search_spiral.toml", "mnist1d.toml"} <= set(SEARCH_EXAMPLES)


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
        (s, k)
        for s in ("smallest", "largest")
        for k in ("initial_loss", "init_scale", "overfit_20")
    }
    small_init = [c for c in result.checks if c["check"] == "initial_loss"]
    assert all(abs(c["measured"] - 2.302585) < 0.12 for c in small_init)
    for check in (c for c in result.checks if c["check"] == "overfit_20"):
        assert check["train_accuracy"] == 1.0
        assert check["final_loss"] <= 0.1 * check["initial_loss"]


SEARCH_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.toml") if "[space." in p.read_text())


@pytest.mark.parametrize("name", SEARCH_EXAMPLES)
def test_every_example_search_passes_the_gate_that_is_on_by_default(name: str) -> None:
    spec = load_search_spec(EXAMPLES / name)
    assert spec.sanity_gate
    result = sanity_gate(spec, Path("."))
    assert result.passed, result.reason


def test_an_init_scale_far_too_large_fails_with_its_numbers() -> None:
    raw = gate_spec(12)
    raw["base"]["data"] = {"source": "digits"}
    raw["base"]["preprocess"] = {"mean": "feature", "std": True}
    raw["base"]["model"] |= {"init": "small", "init_scale": 1.0}
    result = sanity_gate(parse_search_spec(raw), Path("."))
    assert not result.passed
    scale = next(c for c in result.checks if c["check"] == "init_scale" and not c["passed"])
    assert scale["measured"] > 20 * scale["chance"]
    assert (
        f"initial loss {scale['measured']:.4g} at its own init, over 20 x chance" in result.reason
    )


def test_a_network_too_narrow_to_overfit_20_examples_fails_and_stops_the_search(
    tmp_path: Path,
) -> None:
    raw = gate_spec(1)
    result = sanity_gate(parse_search_spec(raw), Path("."))
    assert not result.passed
    assert "smallest network [1, 1]: 20 examples not fit in 500 steps" in result.reason
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
