"""`/datasets`: upload `.npz` data sets under the data root, and list them.

An upload is the raw bytes of an `.npz` file (`Content-Type:
application/octet-stream`), capped at `HPSEARCH_MAX_UPLOAD_BYTES` (413). It is
written to a temporary file, validated (an `.npz` archive read with
`allow_pickle=False`, the keys of `hpsearch.data`, numeric features, as many
labels as rows, an uncompressed size within 4x the cap), then linked under
`<data root>/datasets/<name>`; an existing name is a 409. A spec then uses it
with `data = {source = "npz", path = "datasets/<name>"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request

from api.auth import require_token
from api.deps import SettingsDep
from api.errors import ERROR_RESPONSES
from api.limits import body_too_large
from api.schemas import DatasetPublic, ErrorPublic
from hpsearch.data import resolve_data_path
from hpsearch.data.files import read_npz_arrays
from hpsearch.data.npz import read_npz_members
from hpsearch.errors import ConflictError, DataError

__all__ = ["DATASETS_DIR", "NAME_PATTERN", "router"]

DATASETS_DIR = "datasets"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.npz$"
UNCOMPRESSED_FACTOR = 4

router = APIRouter(
    prefix="/datasets",
    tags=["datasets"],
    dependencies=[Depends(require_token)],
    responses={code: {**body, "model": ErrorPublic} for code, body in ERROR_RESPONSES.items()},
)
DatasetName = Annotated[
    str, Query(pattern=NAME_PATTERN, description="file name: letters, digits, _ . -, ending .npz")
]
_NPZ_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def datasets_dir(data_root: Path) -> Path:
    folder = (Path(data_root) / DATASETS_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@router.post("", status_code=201, openapi_extra=_NPZ_BODY)
async def upload_dataset(
    request: Request, name: DatasetName, settings: SettingsDep
) -> DatasetPublic:
    """Upload an `.npz` data set (raw bytes); see the module docstring for the checks."""
    folder = datasets_dir(settings.data_root)
    target = folder / name
    if target.parent != folder or name in (".", ".."):
        raise DataError(f"name: {name!r} must be a plain file name")
    if target.exists():
        raise ConflictError(f"data set {name!r} exists already")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".upload", dir=folder)
    tmp = Path(tmp_name)
    try:
        received = 0
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.stream():
                received += len(chunk)
                if received > settings.max_upload_bytes:
                    raise body_too_large(settings.max_upload_bytes)
                handle.write(chunk)
        await asyncio.to_thread(validate_npz, tmp, name, settings.max_upload_bytes)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise ConflictError(f"data set {name!r} exists already") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dataset_public(target)


def validate_npz(path: Path, name: str, max_bytes: int) -> None:
    """Raise DataError naming `name` unless `path` is a usable `.npz` data set."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"body: {name} is not an .npz archive: {error}") from error
    if unpacked > UNCOMPRESSED_FACTOR * max_bytes:
        raise DataError(f"body: {name} unpacks to {unpacked} bytes, more than allowed")
    try:
        arrays = read_npz_arrays(path)
    except DataError as error:
        raise DataError(f"body: {str(error).replace(path.name, name)}") from None
    for key, array in arrays.items():
        kinds = "biuf" if key.startswith("X") else "biufUS"
        if array.dtype.kind not in kinds:
            raise DataError(f"body: {name}: {key} has unsupported dtype {array.dtype}")
        if key.startswith("X") and (array.ndim < 2 or array.shape[0] == 0):
            raise DataError(f"body: {name}: {key} must have shape (N, features), got {array.shape}")
        if key.startswith("X") and not np.all(np.isfinite(array)):
            raise DataError(f"body: {name}: {key} holds NaN or infinite values")
    for suffix in ("", "_train", "_val", "_test"):
        if f"X{suffix}" in arrays and len(arrays[f"X{suffix}"]) != len(arrays[f"y{suffix}"]):
            raise DataError(f"body: {name}: X{suffix} and y{suffix} have different lengths")


def dataset_public(path: Path) -> DatasetPublic:
    stat = path.stat()
    return DatasetPublic(
        name=path.name,
        path=f"{DATASETS_DIR}/{path.name}",
        size_bytes=stat.st_size,
        arrays={key: list(member.shape) for key, member in read_npz_members(path).items()},
        modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


@router.get("")
def list_datasets(settings: SettingsDep) -> list[DatasetPublic]:
    """The uploaded data sets, by name: only files that resolve inside the data root."""
    folder = datasets_dir(settings.data_root)
    names = sorted(entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")
                   and entry.name.endswith(".npz"))  # fmt: skip
    return [listed for name in names if (listed := _listed(settings.data_root, folder, name))]


def _listed(data_root: Path, folder: Path, name: str) -> DatasetPublic | None:
    """`datasets/<name>` if it resolves to a readable .npz file inside the root, else None."""
    try:
        if resolve_data_path(data_root, f"{DATASETS_DIR}/{name}").is_file():
            return dataset_public(folder / name)
    except DataError:
        pass
    return None
