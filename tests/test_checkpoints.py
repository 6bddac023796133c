"""Checkpoint names, format, verification, storage, pruning, and the kill test."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpsearch.checkpoints import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointName,
    FileSystemCheckpointStorage,
    _format,
    checkpoint_from_bytes,
    checkpoint_name,
    checkpoint_to_bytes,
    is_checkpoint_name,
    load_checkpoint,
    parse_checkpoint_name,
)
from hpsearch.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[1]
WRITER_SCRIPT = Path(__file__).with_name("_checkpoint_writer.py")
KEY = "search_000001"


# ---------------------------------------------------------------- factories


def make_arrays() -> dict[str, np.ndarray]:
    """Arrays that stress dtype, shape, byte order, memory order and NaN payloads."""
    rng = np.random.default_rng(0)
    return {
        "W1": rng.standard_normal((3, 4)).astype(np.float32),
        "b1": np.zeros(4, dtype=np.float32),
        "W2": np.asfortranarray(rng.standard_normal((4, 2))),
        "gamma1": np.array([1.0, np.nan, -np.inf, -0.0], dtype=np.float64),
        "half": np.array([1.5, -2.25], dtype=np.float16),
        "counts": np.array([1, -(2**40)], dtype=np.int64),
        "mask": np.array([[True, False]]),
        "big_endian": np.array([1.0, 2.0], dtype=">f4"),
        "scalar": np.array(3.25),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "complex": np.array([1 + 2j], dtype=np.complex64),
    }


def make_checkpoint(**changes: object) -> Checkpoint:
    rng = np.random.default_rng(1)
    fields: dict[str, object] = {
        "params": make_arrays(),
        "buffers": {"running_mean1": rng.standard_normal(4).astype(np.float32)},
        "optimizer": {
            "W1": {"m": np.ones((3, 4), np.float32), "t": 7, "learning_rate": 1e-3, "b": True},
            "b1": {},
        },
        "preprocessing": {
            "mean": rng.standard_normal(3),
            "components": rng.standard_normal((3, 2)).astype(np.float32),
            "mode": "per_feature",
            "epsilon": 1e-5,
            "k": None,
        },
        "ema": {"W1": np.full((3, 4), 0.5, np.float32)},
        "config": {"model": {"hidden_sizes": [100, 10]}, "optimizer": {"rule": "adam"}},
        "history": [{"epoch": 1, "train_loss": 2.3, "val_accuracy": 0.1}, {"loss": math.nan}],
        "epoch": 5,
        "metrics": {"val_accuracy": 0.8312, "val_loss": 0.51, "train_loss": 0.42},
        "schedule_state": {"name": "plateau", "best": 0.83, "bad_epochs": 1},
        "extra": {"search_id": 12, "stage": 7, "trial_id": 42, "note": "é ✓"},
        "created_at": "2024-01-02T03:04:05+00:00",
    }
    fields.update(changes)
    return Checkpoint(**fields)  # type: ignore[arg-type]


def assert_arrays_identical(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert isinstance(actual[name], np.ndarray), name
        assert actual[name].dtype.str == value.dtype.str, name
        assert actual[name].shape == value.shape, name
        assert actual[name].tobytes() == value.tobytes(), name


def assert_values_identical(actual: dict, expected: dict) -> None:
    """Arrays bit-exact, scalars equal with the same Python type."""
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            assert_arrays_identical({name: actual[name]}, {name: value})
        else:
            assert type(actual[name]) is type(value) and actual[name] == value, name


def assert_checkpoints_identical(actual: Checkpoint, expected: Checkpoint) -> None:
    assert_arrays_identical(actual.params, expected.params)
    assert_arrays_identical(actual.buffers, expected.buffers)
    assert (actual.ema is None) == (expected.ema is None)
    if expected.ema is not None:
        assert actual.ema is not None
        assert_arrays_identical(actual.ema, expected.ema)
    assert sorted(actual.optimizer) == sorted(expected.optimizer)
    for param, state in expected.optimizer.items():
        assert_values_identical(actual.optimizer[param], state)
    assert_values_identical(actual.preprocessing, expected.preprocessing)
    for field in ("config", "history", "metrics", "schedule_state", "extra"):
        # json.dumps compares NaN as the token NaN, which `==` cannot
        assert json.dumps(getattr(actual, field)) == json.dumps(getattr(expected, field)), field
    assert type(actual.epoch) is int and actual.epoch == expected.epoch
    assert actual.created_at == expected.created_at


@pytest.fixture
def storage(tmp_path: Path) -> FileSystemCheckpointStorage:
    return FileSystemCheckpointStorage(tmp_path / "root")


# ---------------------------------------------------------------- names


def test_name_matches_the_documented_example() -> None:
    assert checkpoint_name(0.8312, 7, 42, 5) == "val0.8312_s0007_t000042_e005.npz"
    assert parse_checkpoint_name("val0.8312_s0007_t000042_e005.npz") == CheckpointName(
        0.8312, 7, 42, 5
    )


@pytest.mark.parametrize(
    ("val_accuracy", "text"),
    [(1.0, "1.0000"), (0.0, "0.0000"), (-0.0, "0.0000"), (-0.25, "0.0000"), (1.7, "1.0000"),
     (0.99996, "1.0000"), (0.12344, "0.1234"), (np.float32(0.5), "0.5000"), (1, "1.0000")],
)  # fmt: skip
def test_accuracy_is_clamped_and_has_four_decimals(val_accuracy: float, text: str) -> None:
    assert checkpoint_name(val_accuracy, 0, 0, 0) == f"val{text}_s0000_t000000_e000.npz"


def test_sorting_names_sorts_by_accuracy_and_sort_r_is_best_first() -> None:
    accuracies = [0.5, 1.0, 0.0, 0.83125, 0.9, 0.05, 0.1, 0.09999, 0.8312, 0.999]
    names = [checkpoint_name(a, 1, i, 1) for i, a in enumerate(accuracies)]
    ascending = [parse_checkpoint_name(n).val_accuracy for n in sorted(names)]
    # 0.83125 is stored as 0.83125000000000004 in binary, so it rounds up
    assert ascending == [0.0, 0.05, 0.1, 0.1, 0.5, 0.8312, 0.8313, 0.9, 0.999, 1.0]
    # the coreutils `sort -r` a user runs on `ls` output gives the same best-first order
    shell = subprocess.run(
        ["sort", "-r"], input="\n".join(names), capture_output=True, text=True, check=True
    )
    assert shell.stdout.split() == sorted(names, reverse=True)
    assert shell.stdout.split()[0].startswith("val1.0000")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "0.9", True])
def test_name_refuses_nan_and_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="val_accuracy"):
        checkpoint_name(bad, 1, 1, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("argument", ["stage", "trial", "epoch"])
@pytest.mark.parametrize("bad", [-1, 1.0, "3", None])
def test_name_refuses_bad_counters(argument: str, bad: object) -> None:
    counters: dict[str, object] = {"stage": 1, "trial": 2, "epoch": 3, argument: bad}
    with pytest.raises(ValueError, match=argument):
        checkpoint_name(0.5, **counters)  # type: ignore[arg-type]


def test_wide_counters_still_parse() -> None:
    name = checkpoint_name(0.25, 12345, 1234567, 1000)
    assert name == "val0.2500_s12345_t1234567_e1000.npz"
    assert parse_checkpoint_name(name) == CheckpointName(0.25, 12345, 1234567, 1000)


@pytest.mark.parametrize(
    "name",
    ["val1.5000_s0007_t000042_e005.npz", "val0.83_s0007_t000042_e005.npz",
     ".val0.8312_s0007_t000042_e005.npz.x1y2.tmp", "val0.8312_s0007_t000042_e005.npz.tmp",
     "val0.8312_s7_t42_e5.npz", "valnan_s0007_t000042_e005.npz", "notes.txt", ""],
)  # fmt: skip
def test_other_names_are_not_checkpoint_names(name: str) -> None:
    assert not is_checkpoint_name(name)
    with pytest.raises(ValueError, match="not a checkpoint name"):
        parse_checkpoint_name(name)


# ---------------------------------------------------------------- format


def test_round_trip_keeps_every_field_bit_exact(storage: FileSystemCheckpointStorage) -> None:
    original = make_checkpoint()
    path = storage.save(KEY, checkpoint_name(0.8312, 7, 42, 5), original)
    assert path == f"{KEY}/val0.8312_s0007_t000042_e005.npz"
    loaded = storage.load(path)
    assert_checkpoints_identical(loaded, original)
    assert loaded.params["W1"].dtype == np.float32
    assert_checkpoints_identical(load_checkpoint(storage.root / path), original)


def test_round_trip_distinguishes_no_ema_from_empty_ema() -> None:
    emas: tuple[dict[str, np.ndarray] | None, ...] = (None, {})
    for ema in emas:
        loaded = checkpoint_from_bytes(checkpoint_to_bytes(make_checkpoint(ema=ema)))
        assert loaded.ema == ema


def test_created_at_is_stamped_when_missing() -> None:
    loaded = checkpoint_from_bytes(checkpoint_to_bytes(make_checkpoint(created_at=None)))
    assert loaded.created_at is not None and loaded.created_at.endswith("+00:00")


def test_meta_is_json_bytes_with_the_documented_checksum(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    path.write_bytes(checkpoint_to_bytes(make_checkpoint()))
    with np.load(path, allow_pickle=False) as npz:
        members = {key: npz[key] for key in npz.files}
    meta_bytes = members.pop("meta").tobytes()
    checksum = str(members.pop("checksum"))
    meta = json.loads(meta_bytes)
    assert meta["format_version"] == FORMAT_VERSION == 1
    assert meta["array_keys"] == sorted(members)
    assert "optim/W1/m" in members and "prep/mean" in members and "ema/W1" in members
    assert meta["optimizer_scalars"]["W1"] == {"t": 7, "learning_rate": 1e-3, "b": True}
    # recompute the documented recipe: length-prefixed meta, then key|dtype|shape, bytes
    digest = hashlib.sha256()
    for chunk in [meta_bytes] + [
        part
        for key in sorted(members)
        for part in (
            f"{key}|{members[key].dtype.str}|{members[key].shape}".encode(),
            np.ascontiguousarray(members[key]).tobytes(),
        )
    ]:
        digest.update(len(chunk).to_bytes(8, "little") + chunk)
    assert checksum == digest.hexdigest()


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"params": {"W1": np.array([object()])}}, "object"),
     ({"params": {"W1": np.array(["a"])}}, "dtype"),
     ({"params": {"W/1": np.zeros(2)}}, "W/1"),
     ({"params": {"W1": [1.0, 2.0]}}, "numpy array"),
     ({"epoch": -1}, "epoch"),
     ({"epoch": 1.0}, "epoch"),
     ({"config": [1]}, "config"),
     ({"history": [1]}, "history"),
     ({"optimizer": {"W1": {"m": np.array([None])}}}, "object")],
)  # fmt: skip
def test_invalid_checkpoint_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        make_checkpoint(**changes)


def test_unserializable_metadata_writes_nothing(storage: FileSystemCheckpointStorage) -> None:
    bad = make_checkpoint(config={"seen": {1, 2}})
    with pytest.raises(CheckpointError, match="not plain JSON"):
        storage.save(KEY, checkpoint_name(0.5, 1, 1, 1), bad)
    assert list((storage.root / KEY).iterdir()) == []


# ---------------------------------------------------------------- corruption


def _saved(storage: FileSystemCheckpointStorage, checkpoint: Checkpoint) -> Path:
    return storage.root / storage.save(KEY, checkpoint_name(0.5, 1, 1, 1), checkpoint)


def _assert_refused(path: Path, match: str | None = None) -> None:
    before = sorted(os.listdir(path.parent))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)
    assert sorted(os.listdir(path.parent)) == before  # a failed load writes nothing


@pytest.mark.parametrize("keep_fraction", [0.0, 0.01, 0.5, 0.9, 0.9999])
def test_truncated_checkpoint_is_refused(
    storage: FileSystemCheckpointStorage, keep_fraction: float
) -> None:
    path = _saved(storage, make_checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    _assert_refused(path, str(path))


def test_flipped_byte_in_array_data_is_refused(storage: FileSystemCheckpointStorage) -> None:
    marker = np.arange(64, dtype=np.float64) + 1e6
    path = _saved(storage, make_checkpoint(params={"W1": marker}))
    data = bytearray(path.read_bytes())
    position = bytes(data).index(marker.tobytes()) + 100
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    _assert_refused(path)


def test_every_single_byte_flip_is_refused_or_harmless() -> None:
    """Flip each byte of a small checkpoint: it fails to load, or loads identical.

    (A zip timestamp, for example, may change without changing the content.)
    """
    original = make_checkpoint(created_at="2024-01-01T00:00:00+00:00")
    data = checkpoint_to_bytes(original)
    refused = 0
    for position in range(0, len(data), 3):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x10
        try:
            loaded = checkpoint_from_bytes(bytes(corrupted))
        except CheckpointError:
            refused += 1
            continue
        assert_checkpoints_identical(loaded, original)
    assert refused > len(data) // 3 / 2  # most bytes are content (here ~80%)


def test_missing_meta_or_checksum_is_refused(tmp_path: Path) -> None:
    members = dict(_format._pack(make_checkpoint()))
    for missing in ("meta", "checksum"):
        path = tmp_path / f"no_{missing}.npz"
        np.savez(path, allow_pickle=False, **{k: v for k, v in members.items() if k != missing})
        _assert_refused(path, f"no '{missing}' member")


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    members = dict(_format._pack(make_checkpoint()))
    members["param/evil"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **members)  # savez pickles object arrays by default
    _assert_refused(path, "pickle")


def test_future_format_version_is_refused(tmp_path: Path) -> None:
    arrays, meta = _format._encode(make_checkpoint())
    meta["format_version"] = 2
    meta_bytes = json.dumps(meta).encode()
    path = tmp_path / "v2.npz"
    np.savez(
        path,
        allow_pickle=False,
        meta=np.frombuffer(meta_bytes, np.uint8),
        checksum=np.array(_format._checksum(meta_bytes, arrays)),
        **arrays,
    )
    _assert_refused(path, "format_version 2")


@pytest.mark.parametrize(
    "content", [b"", b"hello, not a zip", b"\x93NUMPY\x01\x00", b"PK\x03\x04garbage"]
)
def test_non_npz_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    _assert_refused(path, "not a valid checkpoint")


def test_plain_npy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "array.npz"
    with path.open("wb") as handle:
        np.save(handle, np.arange(3))
    _assert_refused(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.npz")


# ---------------------------------------------------------------- storage paths


@pytest.mark.parametrize(
    "key_dir", ["../outside", "/tmp", "a/../../outside", "..", "", "  ", "a\\..\\..\\x"]
)
def test_key_dirs_escaping_the_root_are_refused(
    storage: FileSystemCheckpointStorage, key_dir: str
) -> None:
    name = checkpoint_name(0.5, 1, 1, 1)
    with pytest.raises(CheckpointError, match="key_dir"):
        storage.save(key_dir, name, make_checkpoint())
    with pytest.raises(CheckpointError, match="key_dir"):
        storage.list(key_dir)
    assert list(storage.root.parent.iterdir()) == [storage.root]
    assert list(storage.root.iterdir()) == []


def test_paths_escaping_the_root_are_refused(storage: FileSystemCheckpointStorage) -> None:
    name = checkpoint_name(0.5, 1, 1, 1)
    outside = storage.root.parent / name
    outside.write_bytes(checkpoint_to_bytes(make_checkpoint()))
    for path in (f"../{name}", str(outside), f"{KEY}/../../{name}"):
        for operation in (storage.load, storage.delete, storage.open_bytes):
            with pytest.raises(CheckpointError, match="path"):
                operation(path)
    assert outside.exists()


def test_symlinks_escaping_the_root_are_refused(
    storage: FileSystemCheckpointStorage, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = checkpoint_name(0.5, 1, 1, 1)
    (elsewhere / name).write_bytes(checkpoint_to_bytes(make_checkpoint()))
    (storage.root / "linked_dir").symlink_to(elsewhere)
    (storage.root / KEY).mkdir()
    (storage.root / KEY / name).symlink_to(elsewhere / name)
    with pytest.raises(CheckpointError, match="outside"):
        storage.save("linked_dir", checkpoint_name(0.6, 1, 1, 2), make_checkpoint())
    with pytest.raises(CheckpointError, match="outside"):
        storage.list("linked_dir")
    with pytest.raises(CheckpointError, match="outside"):
        storage.load(f"{KEY}/{name}")
    assert os.listdir(elsewhere) == [name]


def test_save_refuses_names_that_are_not_checkpoint_names(
    storage: FileSystemCheckpointStorage,
) -> None:
    for name in ("model.npz", ".x.tmp", "sub/val0.5000_s0001_t000001_e001.npz"):
        with pytest.raises(CheckpointError, match="name"):
            storage.save(KEY, name, make_checkpoint())
    assert not (storage.root / KEY).exists()


def test_non_checkpoint_paths_are_refused(storage: FileSystemCheckpointStorage) -> None:
    (storage.root / KEY).mkdir()
    (storage.root / KEY / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="checkpoint name"):
        storage.delete(f"{KEY}/notes.txt")
    assert (storage.root / KEY / "notes.txt").exists()


# ---------------------------------------------------------------- storage operations


def test_list_is_best_first_and_ignores_other_files(
    storage: FileSystemCheckpointStorage,
) -> None:
    small = make_checkpoint(params={"W1": np.zeros(2)})
    for accuracy, epoch in [(0.5, 1), (0.9, 2), (0.7, 3), (0.9, 4)]:
        storage.save(KEY, checkpoint_name(accuracy, 1, 3, epoch), small)
    directory = storage.root / KEY
    (directory / ".val0.9900_s0001_t000003_e009.npz.abc.tmp").write_bytes(b"partial")
    (directory / "notes.txt").write_text("")
    assert storage.list(KEY) == [
        "val0.9000_s0001_t000003_e004.npz",
        "val0.9000_s0001_t000003_e002.npz",
        "val0.7000_s0001_t000003_e003.npz",
        "val0.5000_s0001_t000003_e001.npz",
    ]
    assert storage.list("never_written") == []


def test_save_replaces_same_name_and_leaves_no_temporary(
    storage: FileSystemCheckpointStorage,
) -> None:
    name = checkpoint_name(0.5, 1, 1, 1)
    storage.save(KEY, name, make_checkpoint(epoch=1))
    path = storage.save(KEY, name, make_checkpoint(epoch=2))
    assert storage.load(path).epoch == 2
    assert os.listdir(storage.root / KEY) == [name]
    assert (os.stat(storage.root / path).st_mode & 0o777) == 0o644


def test_delete_and_open_bytes(storage: FileSystemCheckpointStorage) -> None:
    path = storage.save(KEY, checkpoint_name(0.5, 1, 1, 1), make_checkpoint())
    with storage.open_bytes(path) as handle:
        assert handle.read() == (storage.root / path).read_bytes()
    storage.delete(path)
    assert storage.list(KEY) == []
    with pytest.raises(CheckpointError, match="no checkpoint"):
        storage.delete(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        storage.open_bytes(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        storage.load(path)


def test_clean_temporaries_removes_only_old_temporaries(
    storage: FileSystemCheckpointStorage,
) -> None:
    directory = storage.root / KEY
    directory.mkdir()
    final = checkpoint_name(0.5, 1, 1, 1)
    for name in (".old.tmp", ".new.tmp", "old_but_not_temporary.tmp", final):
        (directory / name).write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    for name in (".old.tmp", "old_but_not_temporary.tmp", final):
        os.utime(directory / name, (an_hour_ago, an_hour_ago))
    assert storage.clean_temporaries(KEY, older_than_s=600) == [".old.tmp"]
    assert sorted(os.listdir(directory)) == sorted([".new.tmp", "old_but_not_temporary.tmp", final])
    assert storage.clean_temporaries(KEY, older_than_s=0) == [".new.tmp"]
    with pytest.raises(ValueError, match="older_than_s"):
        storage.clean_temporaries(KEY, older_than_s=-1)


def _touch_checkpoints(storage: FileSystemCheckpointStorage, entries: list) -> dict:
    """Create empty files named like checkpoints (prune reads names only)."""
    (storage.root / KEY).mkdir(parents=True, exist_ok=True)
    names = {}
    for label, (accuracy, trial, epoch) in entries:
        names[label] = checkpoint_name(accuracy, 1, trial, epoch)
        (storage.root / KEY / names[label]).touch()
    return names


PRUNE_ENTRIES = [
    ("t1e1", (0.50, 1, 1)), ("t1e2", (0.60, 1, 2)), ("t1e3", (0.55, 1, 3)), ("t1e4", (0.52, 1, 4)),
    ("t2e1", (0.70, 2, 1)), ("t2e2", (0.65, 2, 2)),
    ("t3e1", (0.30, 3, 1)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("keep_best", "keep_last", "kept"),
    [(2, True, {"t2e1", "t2e2", "t1e4", "t3e1"}),
     (3, True, {"t2e1", "t2e2", "t1e2", "t1e4", "t3e1"}),
     (0, True, {"t1e4", "t2e2", "t3e1"}),
     (2, False, {"t2e1", "t2e2"}),
     (10, False, {label for label, _ in PRUNE_ENTRIES})],
)  # fmt: skip
def test_prune_keeps_best_k_and_last_of_every_trial(
    storage: FileSystemCheckpointStorage, keep_best: int, keep_last: bool, kept: set
) -> None:
    names = _touch_checkpoints(storage, PRUNE_ENTRIES)
    (storage.root / KEY / ".partial.tmp").touch()
    removed = storage.prune(KEY, keep_best, keep_last_per_trial=keep_last)
    assert sorted(removed) == sorted(names[label] for label in names if label not in kept)
    assert sorted(storage.list(KEY)) == sorted(names[label] for label in kept)
    assert (storage.root / KEY / ".partial.tmp").exists()


@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_prune_refuses_bad_keep_best(storage: FileSystemCheckpointStorage, bad: object) -> None:
    with pytest.raises(ValueError, match="keep_best"):
        storage.prune(KEY, bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the kill test

KILLS = 200


class WriterProcess:
    """Drives tests/_checkpoint_writer.py: one forked writer child per kill."""

    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OPENBLAS_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER_SCRIPT), str(root), KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.save_s = float(self.ask(None, "ready"))

    def ask(self, command: str | None, reply: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline().split()
        assert line and line[0] == reply, f"writer replied {line!r} to {command!r}"
        return line[1]

    def kill_after(self, first_epoch: int, delay_s: float) -> int:
        """Start a writer at `first_epoch`, SIGKILL it after `delay_s`; return its exit code."""
        pid = int(self.ask(f"spawn {first_epoch}", "pid"))
        time.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
        return int(self.ask(f"reap {pid}", "exit"))

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _assert_checkpoint_of_its_name(storage: FileSystemCheckpointStorage, name: str) -> int:
    """Load (checksum verified) and check the content the writer put under `name`."""
    parsed = parse_checkpoint_name(name)
    checkpoint = storage.load(f"{KEY}/{name}")
    weights = checkpoint.params["W1"]
    assert checkpoint.epoch == parsed.epoch
    assert checkpoint_name(checkpoint.metrics["val_accuracy"], 1, 42, parsed.epoch) == name
    assert weights.dtype == np.float32 and weights.shape == (500, 1000)
    assert weights[0, 0] == parsed.epoch and weights[-1, -1] == 499_999 + parsed.epoch
    m = checkpoint.optimizer["W1"]["m"]
    assert isinstance(m, np.ndarray) and np.array_equal(m, -weights)
    return parsed.epoch


def test_killed_writer_never_leaves_a_torn_checkpoint(
    storage: FileSystemCheckpointStorage,
) -> None:
    """SIGKILL a process saving 4 MB checkpoints at random moments, KILLS times.

    After every kill: each file under a final name loads, verifies and holds
    its own epoch's content; the checkpoint kept from before still loads.
    """
    rng = np.random.default_rng(20240601)
    writer = WriterProcess(storage.root)
    rounds_with_new_saves = rounds_with_temporaries = 0
    try:
        max_delay_s = min(max(0.03, 2.5 * writer.save_s), 0.12)
        (previous,) = storage.list(KEY)
        for _ in range(KILLS):
            first_epoch = parse_checkpoint_name(previous).epoch + 1
            assert writer.kill_after(first_epoch, rng.uniform(0, max_delay_s)) == -signal.SIGKILL
            names = storage.list(KEY)
            assert previous in names
            epochs = {_assert_checkpoint_of_its_name(storage, name): name for name in names}
            rounds_with_new_saves += len(names) > 1
            rounds_with_temporaries += len(storage.clean_temporaries(KEY, older_than_s=0)) > 0
            previous = epochs[max(epochs)]
            for name in names:
                if name != previous:
                    storage.delete(f"{KEY}/{name}")
    finally:
        writer.close()
    assert sorted(os.listdir(storage.root / KEY)) == [previous]
    # the random delays really landed both after completed saves and inside writes
    assert rounds_with_new_saves > 0 and rounds_with_temporaries > 0
    print(f"kills={KILLS} save_s={writer.save_s:.4f} new={rounds_with_new_saves} "
          f"torn_temporaries={rounds_with_temporaries}")  # fmt: skip
