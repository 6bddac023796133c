"""User paths must resolve inside the data root."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.data import resolve_data_path
from hpsearch.errors import DataError


@pytest.fixture
def outside_file(data_root: Path) -> Path:
    path = data_root.parent / "secret.npz"
    path.write_bytes(b"not yours")
    return path


def test_relative_path_inside_root_resolves(data_root: Path) -> None:
    (data_root / "sets").mkdir()
    (data_root / "sets" / "a.csv").write_text("x,label\n1,0\n")
    assert resolve_data_path(data_root, "sets/a.csv") == (data_root / "sets" / "a.csv").resolve()


def test_inner_dotdot_that_stays_inside_is_allowed(data_root: Path) -> None:
    (data_root / "sets").mkdir()
    (data_root / "a.csv").write_text("x\n")
    assert resolve_data_path(data_root, "sets/../a.csv") == (data_root / "a.csv").resolve()


def test_absolute_path_inside_root_is_allowed(data_root: Path) -> None:
    (data_root / "a.csv").write_text("x\n")
    assert resolve_data_path(data_root, str(data_root / "a.csv")) == (data_root / "a.csv").resolve()


def test_dotdot_escape_is_refused(data_root: Path, outside_file: Path) -> None:
    with pytest.raises(DataError, match=r"'\.\./secret\.npz' resolves outside the data root"):
        resolve_data_path(data_root, "../secret.npz")


def test_absolute_path_elsewhere_is_refused(data_root: Path, outside_file: Path) -> None:
    with pytest.raises(DataError, match="outside the data root"):
        resolve_data_path(data_root, str(outside_file))


def test_symlink_pointing_out_is_refused(data_root: Path, outside_file: Path) -> None:
    (data_root / "link.npz").symlink_to(outside_file)
    with pytest.raises(DataError, match=r"'link\.npz' resolves outside the data root"):
        resolve_data_path(data_root, "link.npz")


def test_symlinked_folder_pointing_out_is_refused(data_root: Path, outside_file: Path) -> None:
    (data_root / "linked").symlink_to(outside_file.parent, target_is_directory=True)
    with pytest.raises(DataError, match="outside the data root"):
        resolve_data_path(data_root, "linked/secret.npz")


def test_symlink_inside_root_is_followed(data_root: Path) -> None:
    (data_root / "real.csv").write_text("x\n")
    (data_root / "alias.csv").symlink_to(data_root / "real.csv")
    assert resolve_data_path(data_root, "alias.csv") == (data_root / "real.csv").resolve()


def test_missing_file_is_not_found(data_root: Path) -> None:
    with pytest.raises(DataError, match=r"not found: 'missing\.npz'"):
        resolve_data_path(data_root, "missing.npz")


def test_missing_data_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data root not found"):
        resolve_data_path(tmp_path / "nowhere", "a.npz")


@pytest.mark.parametrize("user_path", ["", "a\x00b"])
def test_empty_or_nul_path_is_refused(data_root: Path, user_path: str) -> None:
    with pytest.raises(DataError, match="non-empty path"):
        resolve_data_path(data_root, user_path)
