"""Checkpoint storage: a small protocol and its filesystem implementation."""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from hpsearch.checkpoints._format import Checkpoint, checkpoint_from_bytes, checkpoint_to_bytes
from hpsearch.checkpoints._names import (
    CheckpointName,
    is_checkpoint_name,
    is_ensemble_name,
    parse_checkpoint_name,
)
from hpsearch.errors import CheckpointError

__all__ = [
    "CheckpointStorage",
    "FileSystemCheckpointStorage",
    "is_temporary_name",
    "load_checkpoint",
    "save_checkpoint",
]

_TMP_PREFIX = "."
_TMP_SUFFIX = ".tmp"
_FILE_MODE = 0o644


class CheckpointStorage(Protocol):
    """Where workers put checkpoints and the master reads them.

    Paths are relative, '/'-separated: `key_dir` is a folder (one per search,
    e.g. "search_000012"), a path is "<key_dir>/<checkpoint name>".
    """

    def save(self, key_dir: str, name: str, checkpoint: Checkpoint) -> str:
        """Write `checkpoint` atomically under `name`; return its relative path."""
        ...

    def load(self, path: str) -> Checkpoint:
        """Read and verify a checkpoint; CheckpointError when absent or corrupted."""
        ...

    def list(self, key_dir: str) -> list[str]:
        """Final checkpoint names in `key_dir`, best first; [] for a missing folder."""
        ...

    def delete(self, path: str) -> None:
        """Remove one checkpoint; CheckpointError when absent."""
        ...

    def open_bytes(self, path: str) -> BinaryIO:
        """Open a checkpoint's raw bytes for reading (downloads); the caller closes it."""
        ...


def is_temporary_name(name: str) -> bool:
    """True for the temporary files `save_checkpoint` writes before renaming."""
    return name.startswith(_TMP_PREFIX) and name.endswith(_TMP_SUFFIX)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write `checkpoint` to `path` so that `path` is either complete or untouched.

    The bytes go to ".<name>.<random>.tmp" in the same folder, are flushed and
    fsynced, then `os.replace` renames the file (replacing an older file of the
    same name) and the folder is fsynced. Encoding happens first, so a bad
    checkpoint raises CheckpointError before anything is written.
    """
    data = checkpoint_to_bytes(checkpoint)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{_TMP_PREFIX}{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as tmp_file:
            os.fchmod(tmp_file.fileno(), _FILE_MODE)
            tmp_file.write(data)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify the checkpoint file at `path` (any location, e.g. user-given)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    return checkpoint_from_bytes(data, source=str(path))


class FileSystemCheckpointStorage:
    """Checkpoints as files under one root folder (a shared volume in the cluster).

    Every relative path must stay inside `root`: absolute paths, '..' parts and
    symlinks that resolve outside raise CheckpointError before any I/O.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _resolve(self, relative: str, label: str) -> Path:
        if not isinstance(relative, str) or not relative.strip():
            raise CheckpointError(f"{label} must be a non-empty relative path, got {relative!r}")
        pure = PurePosixPath(relative.replace("\\", "/"))
        if pure.is_absolute() or Path(relative).is_absolute() or ".." in pure.parts:
            raise CheckpointError(f"{label} {relative!r} must be relative and without '..'")
        resolved = (self.root / pure).resolve()
        if not resolved.is_relative_to(self.root):
            raise CheckpointError(f"{label} {relative!r} resolves outside {self.root}")
        return resolved

    def _checkpoint_path(self, path: str) -> Path:
        resolved = self._resolve(path, "path")
        if not _is_stored_name(PurePosixPath(path).name):
            raise CheckpointError(f"path {path!r} does not end in a checkpoint name")
        return resolved

    def save(self, key_dir: str, name: str, checkpoint: Checkpoint) -> str:
        """Write `checkpoint` as `<key_dir>/<name>` atomically; return that relative path."""
        if not _is_stored_name(name):
            raise CheckpointError(f"name {name!r} is not a checkpoint name; use checkpoint_name()")
        directory = self._resolve(key_dir, "key_dir")
        directory.mkdir(parents=True, exist_ok=True)
        save_checkpoint(directory / name, checkpoint)
        return (PurePosixPath(key_dir) / name).as_posix()

    def load(self, path: str) -> Checkpoint:
        """Read and verify `<key_dir>/<name>`."""
        return load_checkpoint(self._checkpoint_path(path))

    def list(self, key_dir: str) -> list[str]:
        """Final checkpoint names in `key_dir`, best first (like `ls | sort -r`)."""
        directory = self._resolve(key_dir, "key_dir")
        if not directory.is_dir():
            return []
        names = [entry.name for entry in os.scandir(directory) if is_checkpoint_name(entry.name)]
        return sorted(names, key=parse_checkpoint_name, reverse=True)

    def delete(self, path: str) -> None:
        """Remove `<key_dir>/<name>`; CheckpointError when it does not exist."""
        resolved = self._checkpoint_path(path)
        try:
            resolved.unlink()
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {path!r}") from None

    def open_bytes(self, path: str) -> BinaryIO:
        """Open `<key_dir>/<name>` for reading bytes; the caller closes the file."""
        resolved = self._checkpoint_path(path)
        try:
            return resolved.open("rb")
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {path!r}") from None

    def clean_temporaries(self, key_dir: str, older_than_s: float = 3600.0) -> builtins.list[str]:
        """Delete temporaries in `key_dir` last modified more than `older_than_s` ago.

        A temporary younger than that may belong to a save in progress. Returns
        the removed names.
        """
        if older_than_s < 0:
            raise ValueError(f"older_than_s must be >= 0, got {older_than_s}")
        directory = self._resolve(key_dir, "key_dir")
        if not directory.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = []
        for entry in os.scandir(directory):
            if not is_temporary_name(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed.append(entry.name)
        return sorted(removed)

    def prune(
        self, key_dir: str, keep_best: int, keep_last_per_trial: bool = True
    ) -> builtins.list[str]:
        """Keep the best `keep_best` checkpoints of `key_dir` (+ the last of every trial).

        With `keep_last_per_trial` (the default) each trial's highest-epoch
        checkpoint survives too, so a trial's only checkpoint is never deleted;
        without it only the best `keep_best` remain. Returns the removed names.
        """
        if isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 0:
            raise ValueError(f"keep_best must be an int >= 0, got {keep_best!r}")
        names = self.list(key_dir)
        keep = set(names[:keep_best])
        if keep_last_per_trial:
            keep |= _last_per_trial(names)
        removed = [name for name in names if name not in keep]
        directory = self._resolve(key_dir, "key_dir")
        for name in removed:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
        return removed


def _is_stored_name(name: str) -> bool:
    """A checkpoint or an ensemble file name (what `save`, `load` and `open_bytes` accept)."""
    return is_checkpoint_name(name) or is_ensemble_name(name)


def _last_per_trial(names: list[str]) -> set[str]:
    """The highest-epoch name of every (stage, trial); ties go to the better accuracy."""
    last: dict[tuple[int, int], tuple[CheckpointName, str]] = {}
    for name in names:
        parsed = parse_checkpoint_name(name)
        key = (parsed.stage, parsed.trial)
        current = last.get(key)
        if current is None or (parsed.epoch, parsed.val_accuracy) > (
            current[0].epoch,
            current[0].val_accuracy,
        ):
            last[key] = (parsed, name)
    return {name for _, name in last.values()}
