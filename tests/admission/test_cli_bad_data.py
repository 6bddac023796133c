"""`hpsearch run` / `hpsearch submit` refuse a bad data set before anything is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpsearch.cli import app
from hpsearch.db import open_storage
from tests.cli_tools import runner

pytestmark = pytest.mark.usefixtures("home")

Writer = Callable[[Path], None]


def npz_spec(path: str, loss: str = "softmax") -> dict[str, Any]:
    return {
        "name": "bad-data",
        "base": {
            "data": {"source": "npz", "path": path},
            "model": {"hidden_sizes": [8], "loss": loss},
        },
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": [{"trials": 2, "epochs": 1}],
    }


def saved(**arrays: Any) -> Writer:
    return lambda path: np.savez(path, **arrays)


def features(rows: int = 20) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, 3))


def labels(rows: int = 20) -> np.ndarray:
    return np.arange(rows) % 2


def with_value(value: float) -> np.ndarray:
    X = features()
    X[3, 1] = value
    return X


BAD_DATA: dict[str, tuple[Writer | None, str, str]] = {
    "missing file": (None, "softmax", "data file not found: 'data.npz'"),
    "missing key": (saved(X=features()), "softmax", "missing key(s) y"),
    "wrong keys": (saved(A=features(), b=labels()), "softmax", "missing key(s) X_train, y_train"),
    "NaN in X": (saved(X=with_value(np.nan), y=labels()), "softmax", "NaN or infinite"),
    "Inf in X": (saved(X=with_value(np.inf), y=labels()), "softmax", "NaN or infinite"),
    "negative label": (
        saved(X=features(), y=labels() - 1),
        "softmax",
        "class indices 0..C-1, got -1",
    ),
    "float labels": (
        saved(X=features(), y=labels() + 0.5),
        "softmax",
        "regression targets do not fit loss",
    ),
    "out-of-range labels": (
        saved(X=features(), y=np.stack([labels(), 3 * labels()], axis=1)),
        "attribute_logistic",
        r"must be in {0, 1} or {-1, +1}, got values [0, 1, 3]",
    ),
    "length mismatch": (saved(X=features(20), y=labels(19)), "softmax", "X has 20 examples but y"),
    "object array": (
        saved(X=np.array([{"a": 1}] * 20, dtype=object), y=labels()),
        "softmax",
        "pickled objects",
    ),
    "not an npz": (lambda path: path.write_text("a,b\n1,2\n"), "softmax", "not an .npz archive"),
    "label 10**12": (
        saved(X=features(), y=np.where(labels() == 1, 10**12, 0)),
        "softmax",
        "labels up to 1,000,000,000,000 make 1,000,000,000,001 classes",
    ),
}


def assert_refused(home: Path, command: str, spec: dict[str, Any], message: str) -> None:
    spec_path = home / "spec.json"
    spec_path.write_text(json.dumps(spec))
    result = runner.invoke(app, [command, str(spec_path)])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, output
    assert message in output
    database = home / "home" / "hpsearch.db"
    if database.exists():
        storage = open_storage(f"sqlite:///{database}")
        assert storage.list_searches() == []
        storage.close()


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_run_refuses_bad_data_and_stores_nothing(home: Path, case: str) -> None:
    writer, loss, message = BAD_DATA[case]
    if writer is not None:
        writer(home / "data" / "data.npz")
    assert_refused(home, "run", npz_spec("data.npz", loss), message)


@pytest.mark.parametrize("case", ["NaN in X", "label 10**12"])
def test_submit_refuses_bad_data_and_stores_nothing(home: Path, case: str) -> None:
    writer, loss, message = BAD_DATA[case]
    assert writer is not None
    writer(home / "data" / "data.npz")
    assert_refused(home, "submit", npz_spec("data.npz", loss), message)


def test_path_outside_the_data_root_is_refused(home: Path) -> None:
    np.savez(home / "outside.npz", X=features(), y=labels())
    assert_refused(home, "run", npz_spec("../outside.npz"), "resolves outside the data root")
    (home / "data" / "link.npz").symlink_to(home / "outside.npz")
    assert_refused(home, "submit", npz_spec("link.npz"), "resolves outside the data root")


def test_every_refusal_names_the_field_and_the_file(home: Path) -> None:
    np.savez(home / "data" / "data.npz", X=with_value(np.nan), y=labels())
    assert_refused(home, "run", npz_spec("data.npz"), "base.data.path: data.npz: X_train")


def _run_after_the_data_vanishes(
    home: Path, monkeypatch: pytest.MonkeyPatch, sanity_gate: bool
) -> tuple[Any, Any]:
    """`hpsearch run` of a search whose data file is deleted once admitted and prepared
    for the workers (`prepare_for_workers`), before the search is stored."""
    import hpsearch.runner

    prepare = hpsearch.runner.prepare_for_workers

    def prepare_then_delete(*args: Any) -> None:
        prepare(*args)
        (home / "data" / "data.npz").unlink()

    monkeypatch.setattr(hpsearch.runner, "prepare_for_workers", prepare_then_delete)
    np.savez(home / "data" / "data.npz", X=features(), y=labels())
    spec_path = home / "spec.json"
    spec_path.write_text(json.dumps({**npz_spec("data.npz"), "sanity_gate": sanity_gate}))
    result = runner.invoke(app, ["run", str(spec_path), "--workers", "1", "--json"])
    storage = open_storage(f"sqlite:///{home / 'home' / 'hpsearch.db'}")
    (search,) = storage.list_searches()
    trials = storage.search_state(search.id)
    storage.close()
    return result, (search, trials)


def test_search_whose_trials_all_fail_ends_failed_and_run_exits_1(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the gate, every trial fails for that one reason."""
    result, (search, _) = _run_after_the_data_vanishes(home, monkeypatch, sanity_gate=False)
    assert result.exit_code == 1, result.output
    assert search.status == "failed"
    assert search.reason is not None
    assert search.reason.startswith("all 2 trials failed: ")
    assert "data file not found: 'data.npz'" in search.reason


def test_a_sanity_gate_that_cannot_load_the_data_fails_the_search_before_any_trial(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, (search, trials) = _run_after_the_data_vanishes(home, monkeypatch, sanity_gate=True)
    assert result.exit_code == 1, result.output
    assert search.status == "failed" and trials == []
    assert search.reason is not None
    assert search.reason.startswith("sanity gate could not run: data file not found: 'data.npz'")
