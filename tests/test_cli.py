"""`hpsearch train / predict / check` through the real command line (Typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpsearch.checkpoints import load_checkpoint
from hpsearch.cli import app
from hpsearch.config import load_train_config, with_overrides
from hpsearch.data import Dataset, load_dataset
from hpsearch.training import load_model, prepare, run_training
from tests.cli_tools import invoke, runner

pytestmark = pytest.mark.usefixtures("home")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_train_digits_example_reaches_97_percent(home: Path) -> None:
    code, output = invoke("train", str(EXAMPLES / "digits.toml"), "--json")
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert summary["epochs"] == 50
    assert summary["best_val_accuracy"] >= 0.97
    best = Path(summary["best_checkpoint"])
    assert best.name.startswith(f"val{summary['best_val_accuracy']:.4f}"[:9])
    # Keep-policy of `train`: the best 3 epochs by validation accuracy (as the names sort),
    # plus the last epoch (which may be among them): exactly these files, 3 or 4 of them.
    history = load_checkpoint(best).history
    assert [record["epoch"] for record in history] == list(range(1, 51))
    ranked = sorted(history, key=lambda r: (f"{r['val_accuracy']:.4f}", r["epoch"]), reverse=True)
    wanted = {record["epoch"] for record in ranked[:3]} | {50}
    kept = {int(p.stem.rsplit("_e", 1)[1]) for p in best.parent.glob("*.npz")}
    assert kept == wanted
    assert len(kept) == (3 if 50 in {record["epoch"] for record in ranked[:3]} else 4)


def test_predict_equals_in_process_predictions_exactly(home: Path) -> None:
    config = with_overrides(load_train_config(EXAMPLES / "digits.toml"), {"epochs": 3})
    prepared = prepare(config, home / "data")
    from hpsearch.checkpoints import FileSystemCheckpointStorage
    from hpsearch.training import CheckpointTarget

    storage = FileSystemCheckpointStorage(home / "ckpt")
    model, _ = run_training(config, prepared, target=CheckpointTarget(storage, "run"))
    final = next(name for name in storage.list("run") if name.endswith("_e003.npz"))
    raw = load_dataset(config.data, home / "data")
    np.savez(home / "data" / "new.npz", X=raw.X_val, y=raw.y_val)

    out = home / "predictions.npy"
    code, output = invoke(
        "predict", str(home / "ckpt" / "run" / final), "new.npz", "--output", str(out), "--json"
    )
    assert code == 0, output
    expected = model.predict(prepared.X_val)
    assert np.array_equal(np.load(out), expected)
    accuracy = json.loads(output.strip().splitlines()[-1])["accuracy"]
    assert accuracy == pytest.approx(float(np.mean(expected == raw.y_val)))
    loaded = load_model(load_checkpoint(home / "ckpt" / "run" / final))
    assert np.array_equal(loaded.predict(raw.X_val), expected)


def one_epoch_digits_checkpoint(home: Path) -> tuple[Path, Dataset]:
    """A 1-epoch digits checkpoint under `home` and the config's raw data set."""
    from hpsearch.checkpoints import FileSystemCheckpointStorage
    from hpsearch.training import CheckpointTarget

    config = with_overrides(load_train_config(EXAMPLES / "digits.toml"), {"epochs": 1})
    storage = FileSystemCheckpointStorage(home / "ckpt")
    run_training(config, prepare(config, home / "data"), target=CheckpointTarget(storage, "r"))
    return home / "ckpt" / "r" / storage.list("r")[0], load_dataset(config.data, home / "data")


def test_predict_scores_the_split_it_is_told_and_says_which(home: Path) -> None:
    checkpoint, raw = one_epoch_digits_checkpoint(home)
    loaded = load_model(load_checkpoint(checkpoint))
    X_test, y_test = raw.X_val[:100], raw.y_val[:100]  # a third, distinct split
    splits = {"train": (raw.X_train, raw.y_train), "val": (raw.X_val[100:], raw.y_val[100:]),
              "test": (X_test, y_test)}  # fmt: skip
    arrays = {f"{key}_{split}": array for split, pair in splits.items()
              for key, array in zip("Xy", pair, strict=True)}  # fmt: skip
    np.savez(home / "data" / "all.npz", **arrays)
    for split, (X, y) in splits.items():
        code, output = invoke("predict", str(checkpoint), "all.npz", "--split", split, "--json")
        assert code == 0, output
        summary = json.loads(output.strip().splitlines()[-1])
        assert (summary["split"], summary["scored"]) == (split, f"X_{split}, y_{split}")
        assert summary["examples"] == len(X)
        assert summary["accuracy"] == pytest.approx(float(np.mean(loaded.predict(X) == y)))
    code, output = invoke("predict", str(checkpoint), "all.npz")
    assert code == 0 and "split: test" in output and "scored: X_test, y_test" in output
    np.savez(home / "data" / "plain.npz", X=X_test)
    code, output = invoke("predict", str(checkpoint), "plain.npz", "--json")
    summary = json.loads(output.strip().splitlines()[-1])
    assert (summary["split"], summary["scored"], summary["accuracy"]) == (None, "X", None)


def test_predict_refuses_a_split_the_file_does_not_hold(home: Path) -> None:
    checkpoint, raw = one_epoch_digits_checkpoint(home)
    np.savez(home / "data" / "train_only.npz", X_train=raw.X_train, y_train=raw.y_train)
    code, output = invoke("predict", str(checkpoint), "train_only.npz", "--split", "val")
    assert code == 2 and "X_val" in output and "has X_train, y_train" in output
    code, output = invoke("predict", str(checkpoint), "train_only.npz")
    assert code == 2 and "--split" in output
    (home / "data" / "table.csv").write_text("a,b\n1,2\n")
    code, output = invoke("predict", str(checkpoint), "table.csv", "--split", "test")
    assert code == 2 and "split" in output and "CSV" in output
    code, output = invoke("predict", str(checkpoint), "train_only.npz", "--split", "dev")
    assert code == 2 and "dev" in output


def test_check_reports_gradients_and_sanity(home: Path) -> None:
    code, output = invoke("check", str(EXAMPLES / "digits.toml"), "--json")
    assert code == 0, output
    report = json.loads(output.strip().splitlines()[-1])
    assert report["passed"]
    assert report["initial_loss"]["expected"] == pytest.approx(np.log(10))
    assert report["regularization"]["loss_with"] > report["regularization"]["loss_without"]
    assert report["overfit"]["accuracy"] == 1.0
    for part in ("data", "regularization"):
        errors = report["gradient"][part]["max_relative_error"]
        assert set(errors) >= {"W1", "W2"}
        assert all(error < report["gradient"]["threshold"] for error in errors.values())


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("epochs = 0\n", "epochs"),
        ("[model]\nhiden_sizes = [10]\n", "hiden_sizes"),
        ("[optimizer]\nlearning_rate = -1.0\n", "learning_rate"),
        ("[model]\nkeep_prob = 1.5\n", "keep_prob"),
        ("[data]\nsource = 'npz'\npath = '../outside.npz'\n", "outside"),
        ("[data]\nsource = 'csv'\npath = 'x.csv'\n", "label_column"),
        ("epochs = \n", "invalid TOML"),
    ],
)
def test_train_refuses_bad_config_and_writes_nothing(home: Path, toml: str, message: str) -> None:
    path = home / "bad.toml"
    path.write_text(toml)
    code, output = invoke("train", str(path))
    assert code == 2
    assert message in output
    assert not (home / "home").exists() or not any((home / "home").rglob("*.npz"))


def test_train_missing_config_file(home: Path) -> None:
    code, output = invoke("train", str(home / "nope.toml"))
    assert code == 2
    assert "not found" in output


def test_predict_refuses_bad_inputs(home: Path) -> None:
    config = with_overrides(load_train_config(EXAMPLES / "digits.toml"), {"epochs": 1})
    from hpsearch.checkpoints import FileSystemCheckpointStorage
    from hpsearch.training import CheckpointTarget

    storage = FileSystemCheckpointStorage(home / "ckpt")
    run_training(config, prepare(config, home / "data"), target=CheckpointTarget(storage, "r"))
    checkpoint = home / "ckpt" / "r" / storage.list("r")[0]
    np.savez(home / "data" / "ok.npz", X=np.zeros((2, 64)))

    code, output = invoke("predict", str(checkpoint), "../../etc/passwd.npz")
    assert code == 2 and "outside" in output
    np.savez(home / "data" / "wrong.npz", X=np.zeros((2, 5)))
    code, output = invoke("predict", str(checkpoint), "wrong.npz")
    assert code == 2 and "64" in output
    # np.savez pickles object arrays by default: a file a careless loader would unpickle
    np.savez(home / "data" / "pickled.npz", X=np.array([{"a": 1}, {"b": 2}], dtype=object))
    code, output = invoke("predict", str(checkpoint), "pickled.npz")
    assert code == 2 and "pickled" in output
    torn = home / "torn.npz"
    torn.write_bytes(checkpoint.read_bytes()[:-100])
    code, output = invoke("predict", str(torn), "ok.npz")
    assert code == 2 and "torn.npz" in output
    code, output = invoke("predict", str(checkpoint), "ok.npz", "--json")
    assert code == 0 and json.loads(output.strip().splitlines()[-1])["examples"] == 2


def test_plan_prints_the_automatic_rungs_and_runs_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HPSEARCH_HOME", str(tmp_path / "home"))
    spec = tmp_path / "auto.toml"
    spec.write_text(
        'name = "auto"\nbudget_epochs = 300\n[base.data]\nsource = "spiral"\n'
        '[space."optimizer.learning_rate"]\nkind = "log_uniform"\nlow = 1e-4\nhigh = 1.0\n'
    )
    result = runner.invoke(app, ["plan", str(spec)])
    assert result.exit_code == 0, result.output
    assert "rungs 1/3/9/27/81" in result.output
    document = json.loads(runner.invoke(app, ["plan", "--json", str(spec)]).stdout)
    assert [r["epochs"] for r in document["rungs"]] == [1, 3, 9, 27, 81]
    assert not (tmp_path / "home").exists()
    spec.write_text(spec.read_text().replace("300", "0"))
    refused = runner.invoke(app, ["plan", str(spec)])
    assert refused.exit_code == 2 and "budget_epochs" in refused.output
