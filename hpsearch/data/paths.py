"""User-given data paths, confined to the data root.

Every path a user writes in a configuration (`data.path`) is relative to the
data root (`HPSEARCH_DATA_ROOT`). `resolve_data_path` follows symlinks and
refuses anything whose final target lies outside the resolved root: `..`
escapes, absolute paths elsewhere, and symlinks pointing out.
"""

from __future__ import annotations

from pathlib import Path

from hpsearch.errors import DataError

__all__ = ["resolve_data_path"]


def resolve_data_path(data_root: Path, user_path: str) -> Path:
    """The real location of `user_path` inside `data_root`.

    Inputs:
    - data_root: the configured data root; must exist.
    - user_path: a path relative to the root (an absolute path is accepted only
      when it lies inside the root).

    Returns the resolved path (symlinks followed), an existing file or folder.
    Raises `DataError` when the path escapes the root or does not exist.
    """
    if not user_path or "\x00" in user_path:
        raise DataError(f"data path must be a non-empty path without NUL bytes, got {user_path!r}")
    try:
        root = Path(data_root).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise DataError(f"data root not found: {data_root}") from exc
    if not root.is_dir():
        raise DataError(f"data root is not a folder: {data_root}")
    try:
        target = (root / user_path).resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"data path {user_path!r} cannot be resolved: {exc}") from exc
    if not target.is_relative_to(root):
        raise DataError(
            f"data path {user_path!r} resolves outside the data root {root} "
            "(paths must stay inside HPSEARCH_DATA_ROOT; '..', absolute paths "
            "elsewhere and symlinks pointing out are refused)"
        )
    if not target.exists():
        raise DataError(f"data file not found: {user_path!r} (looked in {root})")
    return target
