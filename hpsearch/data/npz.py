"""The members of an `.npz` archive, known from their headers before any data is read.

An `.npz` file is a zip archive of `.npy` files. Each `.npy` member starts
with a header declaring its shape and dtype; the data that follows must be
exactly shape x itemsize bytes. `read_npz_members` reads only the headers and
the zip directory, so a member that declares more data than it holds (a 7 TiB
header in a 1 KiB file) or an object array is refused before `np.load`
allocates anything for it.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from hpsearch.errors import DataError

NPY_MAGIC = b"\x93NUMPY"

__all__ = ["NpzMember", "check_npz_member", "format_bytes", "read_npz_members"]


@dataclass(frozen=True)
class NpzMember:
    """One `.npy` member: its key (file name without `.npy`), header and sizes in bytes.

    - declared_bytes: prod(shape) * dtype.itemsize, what the header promises.
    - stored_bytes: the member's uncompressed size minus its header.
    """

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    declared_bytes: int
    stored_bytes: int


def format_bytes(count: float) -> str:
    """A byte count for people: `512 B`, `3.0 KiB`, `7.0 TiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def read_npz_members(path: Path) -> dict[str, NpzMember]:
    """Key -> `NpzMember` for every `.npy` member of the archive at `path`.

    Raises `DataError` naming the file when it is not a zip archive or a
    member's header cannot be read.
    """
    members: dict[str, NpzMember] = {}
    _refuse_single_npy(path)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    key = info.filename[: -len(".npy")]
                    members[key] = _member(archive, info, key)
    except DataError as error:
        raise DataError(f"{path.name}: {error}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path.name}: is not an .npz archive ({error})") from error
    return members


def _refuse_single_npy(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
    except OSError as error:
        raise DataError(f"{path.name}: cannot be read: {error}") from error
    if magic == NPY_MAGIC:
        raise DataError(f"{path.name}: is a single .npy array, expected an .npz archive")


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> NpzMember:
    with archive.open(info) as handle:
        try:
            shape, dtype = _read_header(handle)
        except (ValueError, EOFError) as error:
            raise DataError(f"key {key}: unreadable .npy header ({error})") from None
        header_bytes = handle.tell()
    count = math.prod(int(n) for n in shape)
    return NpzMember(
        key=key,
        shape=tuple(int(n) for n in shape),
        dtype=dtype,
        declared_bytes=count * dtype.itemsize,
        stored_bytes=info.file_size - header_bytes,
    )


def _read_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    return shape, dtype


def check_npz_member(member: NpzMember, file_name: str) -> None:
    """Raise `DataError` naming the file and key for an object array or a lying header."""
    if member.dtype.hasobject:
        raise DataError(
            f"{file_name}: key {member.key} contains pickled objects (object arrays are "
            "refused; save numeric or string arrays)"
        )
    if member.declared_bytes != member.stored_bytes:
        raise DataError(
            f"{file_name}: key {member.key} declares shape {member.shape} of {member.dtype} "
            f"({format_bytes(member.declared_bytes)}) but holds "
            f"{format_bytes(max(0, member.stored_bytes))} of data"
        )
