"""`hpsearch predict ENSEMBLE_FILE DATA` and `hpsearch ensemble` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpsearch.checkpoints import save_checkpoint
from hpsearch.db import open_storage
from hpsearch.ensembles import Ensemble, ensemble_to_checkpoint
from hpsearch.settings import get_settings
from tests.cli_tools import invoke
from tests.ensembles.members import blobs_data, trained_member

pytestmark = pytest.mark.usefixtures("home")


def test_predict_with_an_ensemble_file_equals_the_in_process_ensemble(home: Path) -> None:
    members = [
        trained_member(home, "a", seed=1),
        trained_member(home, "b", seed=2, preprocess={"std": True}),
    ]
    ensemble = Ensemble("top_k", members, [0.7, 0.3])
    path = home / "val0.9000_ensemble_000001_top_k.npz"
    save_checkpoint(path, ensemble_to_checkpoint(ensemble, {}))
    data = blobs_data(home)
    np.savez(home / "data" / "new.npz", X=data.X_test, y=data.y_test)
    out = home / "predictions.npy"
    code, output = invoke("predict", str(path), "new.npz", "--output", str(out), "--json")
    assert code == 0, output
    expected = ensemble.predict(data.X_test)
    assert np.array_equal(np.load(out), expected)
    accuracy = json.loads(output.strip().splitlines()[-1])["accuracy"]
    assert accuracy == pytest.approx(float(np.mean(expected == data.y_test)))
    np.savez(home / "data" / "wide.npz", X=np.zeros((3, 9), dtype=np.float32))
    code, output = invoke("predict", str(path), "wide.npz")
    assert code == 2 and "take 5 features" in output
    code, output = invoke("predict", str(path), "new.npz", "--ema")
    assert code == 2 and "--ema" in output


def test_an_ensemble_of_a_search_without_checkpoints_is_refused_and_nothing_stored(
    home: Path,
) -> None:
    storage = open_storage(get_settings().resolved_database_url)
    try:
        spec = {"name": "empty", "stages": [{"trials": 1, "epochs": 1}],
                "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3,
                                                      "high": 1e-1}}}  # fmt: skip
        search = storage.create_search("empty", spec, seed=0)
        code, output = invoke("ensemble", str(search.id), "--kind", "top_k")
        assert code == 2 and "stored no checkpoints" in output
        assert storage.list_ensembles(search.id) == []
    finally:
        storage.close()
