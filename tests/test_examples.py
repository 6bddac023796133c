"""The files in examples/ parse; the MNIST-1D one is a budget-only search spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.config import load_toml, load_train_config
from hpsearch.search import load_search_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda path: path.name)
def test_every_example_parses(path: Path) -> None:
    if "space" in load_toml(path):
        load_search_spec(path)
    else:
        load_train_config(path)


def test_mnist1d_example_is_budget_only_on_the_builtin_data_set() -> None:
    spec = load_search_spec(EXAMPLES / "mnist1d.toml")
    assert spec.stages is None and spec.auto_plan is not None
    assert spec.budget == 300 and spec.base.data.source == "mnist1d"
    assert spec.base.model.hidden_sizes == [64, 64]
