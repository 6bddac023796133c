"""CIFAR-10 in both official formats, on small batches written here."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hpsearch.config import DataConfig
from hpsearch.data import load_dataset
from hpsearch.data.cifar import SafeUnpickler, read_python_batch

from .conftest import cifar_images, write_cifar_binary, write_cifar_python

BATCH_SIZES = (20, 30)
TEST_SIZE = 10


def write_folder(
    folder: Path, binary: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two data batches and a test batch; returns (images, labels, test images, test labels)."""
    folder.mkdir()
    writer, suffix = (write_cifar_binary, ".bin") if binary else (write_cifar_python, "")
    images, labels, offset = [], [], 0
    for number, size in enumerate(BATCH_SIZES, start=1):
        batch_images, batch_labels = cifar_images(size, offset), (np.arange(size) + offset) % 10
        writer(folder / f"data_batch_{number}{suffix}", batch_images, batch_labels)
        images.append(batch_images)
        labels.append(batch_labels)
        offset += size
    test_images, test_labels = cifar_images(TEST_SIZE, 100), np.arange(TEST_SIZE) % 10
    writer(folder / f"test_batch{suffix}", test_images, test_labels)
    return np.concatenate(images), np.concatenate(labels), test_images, test_labels


def config(path: str = "cifar", **fields: object) -> DataConfig:
    return DataConfig(source="cifar10", path=path, val_fraction=0.2, **fields)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "python"])
def test_cifar_batches_load_as_images(data_root: Path, binary: bool) -> None:
    images, labels, test_images, test_labels = write_folder(data_root / "cifar", binary)
    dataset = load_dataset(config(), data_root)
    assert dataset.image_shape == (3, 32, 32) and dataset.num_classes == 10
    assert dataset.X_train.dtype == np.float32 and dataset.input_dim == 3072
    assert (len(dataset.X_train), len(dataset.X_val)) == (40, 10)
    assert np.array_equal(dataset.X_test, test_images.astype(np.float32))
    assert np.array_equal(dataset.y_test, test_labels)
    # row i of the written data starts with pixel value i: recover each example's origin
    for X, y in [(dataset.X_train, dataset.y_train), (dataset.X_val, dataset.y_val)]:
        origin = X[:, 0].astype(int)
        assert np.array_equal(X, images[origin].astype(np.float32))
        assert np.array_equal(y, labels[origin])
    everything = np.concatenate([dataset.X_train[:, 0], dataset.X_val[:, 0]]).astype(int)
    assert sorted(everything.tolist()) == list(range(50))


def test_both_formats_give_the_same_dataset(data_root: Path) -> None:
    write_folder(data_root / "bin", binary=True)
    write_folder(data_root / "py", binary=False)
    from_binary = load_dataset(config("bin"), data_root)
    from_python = load_dataset(config("py"), data_root)
    for field in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(from_binary, field), getattr(from_python, field))


def test_cifar_max_train(data_root: Path) -> None:
    write_folder(data_root / "cifar", binary=True)
    dataset = load_dataset(config(max_train=15), data_root)
    assert len(dataset.X_train) == 15 and len(dataset.X_val) == 10


class RunsShell:
    """Pickles as a call to os.system, as a malicious batch would."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def test_malicious_pickle_is_refused_without_running(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    folder = data_root / "cifar"
    folder.mkdir()
    marker = data_root.parent / "pwned"
    payload = {b"data": RunsShell(f"touch {marker}"), b"labels": [0]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=2))
    assert_refused(config(), r"data_batch_1: refusing to unpickle global (posix|nt)\.system")
    assert not marker.exists()


def test_unpickler_refuses_codecs_other_than_latin1(data_root: Path) -> None:
    path = data_root / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": b"\x00"}, protocol=2).replace(b"latin1", b"rot_13"))
    with pytest.raises(ValueError, match="only latin1 is allowed"):
        read_python_batch(path)


def test_safe_unpickler_reads_official_style_batches(data_root: Path) -> None:
    images, labels = cifar_images(3, 0), np.array([4, 5, 6])
    write_cifar_python(data_root / "b", images, labels)
    with (data_root / "b").open("rb") as handle:
        batch = SafeUnpickler(handle, encoding="bytes").load()
    assert batch[b"labels"] == [4, 5, 6] and np.array_equal(batch[b"data"], images)


def test_truncated_binary_batch(data_root: Path, assert_refused: Callable[..., object]) -> None:
    write_folder(data_root / "cifar", binary=True)
    path = data_root / "cifar" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    assert_refused(config(), r"data_batch_2\.bin: .* not a whole number of 3073-byte records")


def test_labels_outside_cifar_classes(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    folder = data_root / "cifar"
    folder.mkdir()
    write_cifar_python(folder / "data_batch_1", cifar_images(4, 0), np.array([0, 1, 2, 12]))
    assert_refused(config(), r"labels must be 0\.\.9, got 0\.\.12")


def test_wrong_pixel_count(data_root: Path, assert_refused: Callable[..., object]) -> None:
    folder = data_root / "cifar"
    folder.mkdir()
    write_cifar_python(folder / "data_batch_1", np.zeros((4, 100), dtype=np.uint8), np.arange(4))
    assert_refused(config(), "'data' has 100 columns, expected 3072")


def test_folder_without_batches(data_root: Path, assert_refused: Callable[..., object]) -> None:
    (data_root / "cifar").mkdir()
    (data_root / "cifar" / "readme.html").write_text("hi")
    assert_refused(config(), "holds no CIFAR-10 batches")


def test_batch_symlinked_out_of_root(
    data_root: Path, assert_refused: Callable[..., object]
) -> None:
    outside = data_root.parent / "elsewhere"
    write_folder(outside, binary=True)
    (data_root / "cifar").mkdir()
    (data_root / "cifar" / "data_batch_1.bin").symlink_to(outside / "data_batch_1.bin")
    assert_refused(config(), "outside the data root")
