"""The spec's `result`: which epoch of each stored trial the search core ranks by.

The stored trials have a best epoch and a worse last one; the master's
`search_state` hands the core each trial's result under the spec's `result`,
so promotions, refined ranges and the final best trial change with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from hpsearch.db.records import TrialView as StoredTrial
from hpsearch.master import search_state
from hpsearch.search import FinishSearch, PromoteTrial, StartStage, next_actions, parse_search_spec

LEARNING_RATES = (1e-4, 1e-3, 1e-2, 1e-1)
# (best, last) per trial: trial 1 peaks early (0.9 at its best epoch, 0.55 at its last).
RESULTS = ((0.5, 0.5), (0.9, 0.55), (0.7, 0.7), (0.6, 0.6))


def spec(result: str, promote: int = 1) -> Any:
    return parse_search_spec({
        "name": "result",
        "base": {"data": {"source": "spiral"}},
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1.0}},
        "stages": [
            {"trials": 4, "epochs": 3},
            {"trials": promote, "epochs": 9, "keep": promote, "refine": "promote"},
        ],
        "asynchronous": False,
        "result": result,
    })  # fmt: skip


def stored(stage: int = 0) -> list[StoredTrial]:
    trials = []
    for index, (lr, (best, last)) in enumerate(zip(LEARNING_RATES, RESULTS, strict=True)):
        params = {"optimizer.learning_rate": lr}
        trials.append(
            StoredTrial(index + 1, stage, index, "completed", params, best, last, 3, None)
        )
    return trials


@pytest.mark.parametrize(("result", "promoted"), [("best", 2), ("last", 3)])
def test_the_promoted_trial_is_the_best_by_the_specs_result(result: str, promoted: int) -> None:
    state = search_state(spec(result), stored(), [])
    assert [t.val_accuracy for t in state.trials] == [
        best if result == "best" else last for best, last in RESULTS
    ]
    actions = next_actions(spec(result), state)
    (promotion,) = [a for a in actions if isinstance(a, PromoteTrial)]
    assert promotion.parent_trial_id == promoted


def test_the_refined_range_follows_the_specs_result() -> None:
    ranges = {}
    for result in ("best", "last"):
        state = search_state(spec(result, promote=2), stored(), [])
        (start,) = [a for a in next_actions(spec(result, promote=2), state)
                    if isinstance(a, StartStage) and a.stage == 1]  # fmt: skip
        ranges[result] = start.space["optimizer.learning_rate"].distribution
    assert ranges["best"] != ranges["last"]
    assert ranges["best"].low <= 1e-3 <= ranges["best"].high  # the top 2 by best: 1e-3, 1e-2
    assert ranges["last"].low > 1e-3  # by last: 1e-2, 1e-1


@pytest.mark.parametrize(("result", "best"), [("best", 2), ("last", 3)])
def test_the_finished_search_names_the_best_trial_by_the_specs_result(
    result: str, best: int
) -> None:
    one_stage = parse_search_spec({**spec(result).model_dump(), "stages": [spec(result).stages[0]]})
    state = search_state(one_stage, stored(), [])
    state = type(state)(trials=state.trials, spaces={0: one_stage.search_space})
    (finished,) = [a for a in next_actions(one_stage, state) if isinstance(a, FinishSearch)]
    assert finished.best_trial_id == best
