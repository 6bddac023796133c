"""Search specs: the examples load; bad specs raise ConfigError naming the field."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from hpsearch.admission.caps import worst_widths
from hpsearch.errors import ConfigError
from hpsearch.search.spec import load_search_spec, parse_search_spec, trial_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def valid() -> dict[str, Any]:
    return {
        "name": "unit",
        "base": {"data": {"source": "spiral"}, "model": {"hidden_sizes": [32]}},
        "space": {
            "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1e-1},
            "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
        },
        "stages": [
            {"trials": 8, "epochs": 1},
            {"trials": 4, "epochs": 3, "keep": 2, "refine": "promote"},
        ],
    }


@pytest.mark.parametrize("name", ["search.toml", "search_spiral.toml"])
def test_examples_load(name: str) -> None:
    spec = load_search_spec(EXAMPLES / name)
    assert spec.planned_epochs() <= spec.budget


def test_planned_epochs_count_promotions_by_epochs_added() -> None:
    spec = parse_search_spec(valid())
    assert spec.promotion_slots(1) == 4
    assert spec.planned_epochs() == 8 * 1 + 4 * (3 - 1)
    both = valid()
    both["stages"][1] = {"trials": 4, "epochs": 3, "keep": 2, "refine": "both"}
    spec = parse_search_spec(both)
    assert spec.promotion_slots(1) == 2
    assert spec.planned_epochs() == 8 + 2 * 2 + 2 * 3


def mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(valid())
    node: Any = data
    parts = path.split("/")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[parts[-1]] = value
    return data


LR = "space/optimizer.learning_rate"


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (mutate(f"{LR}/low", 0.0), ["space.optimizer.learning_rate", "> 0", "low=0.0"]),
        (mutate(f"{LR}/low", -1e-3), ["space.optimizer.learning_rate", "low=-0.001"]),
        (mutate(f"{LR}/high", 1e-6), ["space.optimizer.learning_rate", "low must be < high"]),
        (mutate(f"{LR}/high", math.nan), ["space.optimizer.learning_rate", "finite", "nan"]),
        (mutate(f"{LR}/high", math.inf), ["space.optimizer.learning_rate", "inf"]),
        (
            mutate("space/optimizer.learning_rat", {"kind": "uniform", "low": 0, "high": 1}),
            ["space.optimizer.learning_rat", "unknown configuration field"],
        ),
        (
            mutate("space/model.keep_prob", {"kind": "uniform", "low": 0.5, "high": 1.5}),
            ["space.model.keep_prob", "1.5"],
        ),
        (
            mutate("space/model.keep_prob/when", {"model.activation": "relu"}),
            ["space.model.keep_prob.when", "model.activation", "not a parameter"],
        ),
        (mutate("stages/0/trials", 0), ["stages.0.trials", "greater than or equal to 1"]),
        (mutate("budget_epochs", 7), ["budget_epochs", "smaller than the first stage", "8"]),
        (mutate("stages/1/refine", "sideways"), ["stages.1.refine"]),
        (mutate("stages/1/epochs", 1), ["stages.1.epochs", "more epochs"]),
        (mutate("stages/1/trials", 9), ["stages.1.trials", "cannot promote 9"]),
        (mutate("stages/1/keep", 1.5), ["stages.1.keep", "(0, 1]"]),
        (mutate("stages/0/refine", "promote"), ["stages.0.refine"]),
        (mutate("stages", []), ["stages"]),
        (mutate("space", {}), ["space"]),
        (mutate("space/epochs", {"kind": "int", "low": 1, "high": 5}), ["space.epochs", "set by"]),
        (
            mutate("space/model.hidden_sizes.1", {"kind": "int", "low": 1, "high": 5}),
            ["space.model.hidden_sizes.1", "model.depth"],
        ),
        (
            mutate("space/model.depth", {"kind": "uniform", "low": 1, "high": 5}),
            ["space.model.depth", "int"],
        ),
        (mutate("sampler", "bayes"), ["sampler"]),
        (mutate("result", "worst"), ["result", "'best' or 'last'"]),
        (mutate("result", 3), ["result", "'best' or 'last'"]),
        (mutate("colour", "red"), ["colour", "Extra inputs"]),
        (mutate("concurrency", 0), ["concurrency"]),
    ],
)
def test_bad_specs_raise_config_error_naming_the_field(raw, fragments) -> None:
    with pytest.raises(ConfigError) as info:
        parse_search_spec(raw)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_load_toml_and_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(valid()))
    assert load_search_spec(path).name == "unit"
    toml = tmp_path / "bad.toml"
    toml.write_text('name = "x"\n[space."model.l2"]\nkind = "log_uniform"\nlow = 0.0\nhigh = 1.0\n')
    with pytest.raises(ConfigError, match=r"bad.toml: invalid search spec"):
        load_search_spec(toml)
    with pytest.raises(ConfigError, match="not found"):
        load_search_spec(tmp_path / "missing.json")


def test_round_trip_through_model_dump() -> None:
    spec = parse_search_spec(valid())
    again = parse_search_spec(json.loads(spec.model_dump_json()))
    assert again == spec and again.search_space == spec.search_space


def test_hard_limits_come_from_the_config_fields() -> None:
    spec = parse_search_spec(valid())
    keep_low, keep_high = spec.search_space["model.keep_prob"].limits
    assert keep_high == 1.0 and 0.0 < keep_low < 1e-300  # gt=0 -> just above 0


def test_trial_config_applies_depth_and_widths() -> None:
    raw = valid()
    raw["space"]["model.depth"] = {"kind": "int", "low": 1, "high": 3}
    raw["space"]["model.hidden_sizes.1"] = {"kind": "log_int", "low": 8, "high": 64}
    spec = parse_search_spec(raw)
    assert spec.search_space["model.hidden_sizes.1"].conditions[0].minimum == 2
    params = {
        "optimizer.learning_rate": 0.01,
        "model.keep_prob": 0.5,
        "model.depth": 3,
        "model.hidden_sizes.1": 16,
    }
    config = trial_config(spec, params, train_seed=123, epochs=4)
    assert config.model.hidden_sizes == [32, 16, 32]
    assert config.optimizer.learning_rate == 0.01 and config.model.keep_prob == 0.5
    assert (config.seed, config.epochs) == (123, 4)
    shallow = {k: v for k, v in params.items() if k != "model.hidden_sizes.1"}
    assert trial_config(spec, {**shallow, "model.depth": 1}).model.hidden_sizes == [32]
    with pytest.raises(ConfigError, match=r"model\.hidden_sizes\.1"):
        trial_config(spec, {"model.depth": 1, "model.hidden_sizes.1": 16})


def shared_width_spec() -> dict[str, Any]:
    raw = valid()
    raw["base"]["model"]["hidden_sizes"] = [32, 32]
    raw["space"]["model.hidden_sizes.*"] = {"kind": "log_int", "low": 8, "high": 64}
    return raw


def test_one_shared_width_sets_every_hidden_layer() -> None:
    spec = parse_search_spec(shared_width_spec())
    config = trial_config(spec, {"model.hidden_sizes.*": 16, "model.keep_prob": 0.5})
    assert config.model.hidden_sizes == [16, 16]
    raw = shared_width_spec()
    raw["space"]["model.depth"] = {"kind": "int", "low": 1, "high": 3}
    deeper = trial_config(parse_search_spec(raw), {"model.hidden_sizes.*": 12, "model.depth": 3})
    assert deeper.model.hidden_sizes == [12, 12, 12]


def test_shared_and_per_layer_widths_together_are_refused() -> None:
    raw = shared_width_spec()
    raw["space"]["model.hidden_sizes.1"] = {"kind": "int", "low": 8, "high": 9}
    with pytest.raises(ConfigError, match=r"space\.model\.hidden_sizes\.\*: one width shared"):
        parse_search_spec(raw)


def test_a_fixed_depth_is_a_one_value_choice() -> None:
    raw = shared_width_spec()
    del raw["space"]["model.hidden_sizes.*"]
    raw["space"]["model.depth"] = {"kind": "choice", "values": [2]}
    raw["space"]["model.hidden_sizes.1"] = {"kind": "log_int", "low": 8, "high": 64}
    spec = parse_search_spec(raw)
    params = {"model.depth": 2, "model.hidden_sizes.1": 10, "model.keep_prob": 0.5}
    assert spec.search_space.contains({**params, "optimizer.learning_rate": 0.01})
    assert trial_config(spec, params).model.hidden_sizes == [32, 10]


@pytest.mark.parametrize("form", ["json", "toml"])
def test_the_result_setting_round_trips_and_defaults_to_best(form: str, tmp_path: Path) -> None:
    assert parse_search_spec(valid()).result == "best"
    raw = {**valid(), "result": "last", "budget_epochs": 30}
    del raw["stages"]  # (the tiny TOML writer has no arrays of tables)
    spec = parse_search_spec(raw)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    path = tmp_path / f"spec.{form}"
    path.write_text(json.dumps(dumped) if form == "json" else _to_toml(dumped))
    again = load_search_spec(path)
    assert again.result == "last" and again == spec


@pytest.mark.parametrize("form", ["json", "toml"])
def test_shared_width_fixed_depth_and_automatic_plan_round_trip(form: str, tmp_path: Path) -> None:
    raw = shared_width_spec()
    raw["space"]["model.depth"] = {"kind": "choice", "values": [2]}
    del raw["stages"]
    raw["budget_epochs"] = 50
    spec = parse_search_spec(raw)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    path = tmp_path / f"spec.{form}"
    if form == "json":
        path.write_text(json.dumps(dumped))
    else:
        path.write_text(_to_toml(dumped))
    again = load_search_spec(path)
    assert again == spec and again.search_space == spec.search_space
    assert again.plan == spec.plan and again.auto_plan == spec.auto_plan


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for plain nested dicts of scalars and lists (tests only)."""
    lines, tables = [], []
    for key, value in data.items():
        name = json.dumps(key) if "." in key or "*" in key else key
        if isinstance(value, dict):
            tables.append((f"{prefix}{name}", value))
        else:
            lines.append(f"{name} = {json.dumps(value)}")
    text = "\n".join(lines) + "\n"
    for table, body in tables:
        text += f"\n[{table}]\n" + _to_toml(body, f"{table}.")
    return text


def test_a_searched_depth_over_no_hidden_layer_has_no_layer_to_repeat() -> None:
    raw = valid()
    raw["base"]["model"]["hidden_sizes"] = []
    raw["space"]["model.depth"] = {"kind": "int", "low": 1, "high": 3}
    spec = parse_search_spec(raw)  # was an IndexError (a 500 from POST /searches)
    assert trial_config(spec, {"model.depth": 3}).model.hidden_sizes == []
    assert worst_widths(spec) == []


def test_whole_number_floats_are_keep_counts_and_depths() -> None:
    raw = valid()
    raw["stages"][1]["keep"] = 2.0
    raw["space"]["model.depth"] = {"kind": "choice", "values": [1.0, 2.0]}
    spec = parse_search_spec(raw)
    assert spec.plan[1].keep == 2 and isinstance(spec.plan[1].keep, int)
    assert trial_config(spec, {"model.depth": 2.0}).model.hidden_sizes == [32, 32]
    raw["stages"][1]["keep"] = 1.5
    with pytest.raises(ConfigError, match=r"stages\.1\.keep"):
        parse_search_spec(raw)


def test_budget_epochs_fits_a_32_bit_column() -> None:
    assert parse_search_spec({**valid(), "budget_epochs": 2**31 - 1}).budget == 2**31 - 1
    with pytest.raises(ConfigError, match="budget_epochs"):
        parse_search_spec({**valid(), "budget_epochs": 2**31})
