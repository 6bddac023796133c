"""The checkpoint record and its `.npz` encoding (format version 1).

Member keys of the archive:

    param/<name>            model parameters (W1, b1, gamma1, ...)
    buffer/<name>           batchnorm running statistics
    optim/<param>/<key>     optimizer state arrays (optim/W1/m, optim/W1/v)
    prep/<name>             fitted preprocessing statistics (mean, std, components)
    ema/<name>              running-average parameters (only when `ema` is not None)
    meta                    1-d uint8 array: UTF-8 JSON document (never a pickle)
    checksum                0-d unicode array: SHA-256 hex digest (see `_checksum`)

Non-array values of `optimizer` (learning_rate, t) and `preprocessing`
(mode, epsilon) travel in the meta document, which also holds the
configuration, history, epoch, metrics, schedule state, extra ids,
created_at and the sorted list of array keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hpsearch.errors import CheckpointError

__all__ = ["FORMAT_VERSION", "Checkpoint", "checkpoint_from_bytes", "checkpoint_to_bytes"]

FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex: never object, never str
_GROUPS = ("param", "buffer", "optim", "prep", "ema")

ArrayOrScalar = np.ndarray | bool | int | float | str | None


@dataclass(frozen=True, eq=False, kw_only=True)
class Checkpoint:
    """Everything needed to resume a trial or predict with its model.

    - params, buffers, ema: name -> array of any shape and numeric dtype; kept
      bit-exact (dtype, shape and bytes). `ema` is None when not tracked.
    - optimizer: param name -> update-rule state: arrays (m, v, cache) and
      JSON scalars (learning_rate, t); scalars come back as Python values.
    - preprocessing: fitted statistics (arrays) and their settings (scalars).
    - config, metrics, schedule_state, extra: JSON objects (str keys;
      tuples come back as lists; NaN is allowed). `extra` holds search_id,
      stage, trial_id and the like.
    - history: one JSON object per finished epoch.
    - created_at: ISO-8601 UTC; None means "stamp when encoded".
    """

    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    optimizer: dict[str, dict[str, ArrayOrScalar]] = field(default_factory=dict)
    preprocessing: dict[str, ArrayOrScalar] = field(default_factory=dict)
    ema: dict[str, np.ndarray] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    schedule_state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.epoch, bool) or not isinstance(self.epoch, int) or self.epoch < 0:
            raise CheckpointError(f"epoch must be an int >= 0, got {self.epoch!r}")
        _check_arrays("params", self.params)
        _check_arrays("buffers", self.buffers)
        if self.ema is not None:
            _check_arrays("ema", self.ema)
        _check_names("preprocessing", self.preprocessing)
        _check_names("optimizer", self.optimizer)
        for param, state in self.optimizer.items():
            _check_names(f"optimizer[{param!r}]", state)
        for label in ("config", "metrics", "schedule_state", "extra"):
            if not isinstance(getattr(self, label), dict):
                raise CheckpointError(f"{label} must be a dict, got {type(getattr(self, label))}")
        if not isinstance(self.history, list) or not all(isinstance(r, dict) for r in self.history):
            raise CheckpointError("history must be a list of dicts (one per epoch)")


def _check_names(label: str, mapping: object) -> None:
    if not isinstance(mapping, Mapping):
        raise CheckpointError(f"{label} must be a dict, got {type(mapping).__name__}")
    for name, value in mapping.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise CheckpointError(f"{label} key {name!r} must match [A-Za-z0-9_.-]+")
        if isinstance(value, np.ndarray) and value.dtype.kind not in _ARRAY_KINDS:
            raise CheckpointError(
                f"{label}[{name!r}] has dtype {value.dtype}; only numeric and bool arrays "
                "are stored (object arrays would need pickle)"
            )


def _check_arrays(label: str, mapping: object) -> None:
    _check_names(label, mapping)
    assert isinstance(mapping, Mapping)
    for name, value in mapping.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"{label}[{name!r}] must be a numpy array, got {type(value)}")


def _split(arrays: dict[str, np.ndarray], prefix: str, values: Mapping[str, Any]) -> dict:
    """Move the arrays of `values` into `arrays` under `prefix/`; return the scalars."""
    scalars = {}
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            arrays[f"{prefix}/{name}"] = value
        else:
            scalars[name] = value
    return scalars


def _encode(checkpoint: Checkpoint) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split a checkpoint into (array members, meta document)."""
    arrays: dict[str, np.ndarray] = {}
    _split(arrays, "param", checkpoint.params)
    _split(arrays, "buffer", checkpoint.buffers)
    if checkpoint.ema is not None:
        _split(arrays, "ema", checkpoint.ema)
    optimizer_scalars = {
        param: _split(arrays, f"optim/{param}", state)
        for param, state in checkpoint.optimizer.items()
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "created_at": checkpoint.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "epoch": checkpoint.epoch,
        "metrics": checkpoint.metrics,
        "config": checkpoint.config,
        "history": checkpoint.history,
        "schedule_state": checkpoint.schedule_state,
        "extra": checkpoint.extra,
        "optimizer_scalars": optimizer_scalars,
        "preprocessing_scalars": _split(arrays, "prep", checkpoint.preprocessing),
        "has_ema": checkpoint.ema is not None,
        "array_keys": sorted(arrays),
    }
    return arrays, meta


def _group(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    start = len(prefix) + 1
    return {key[start:]: value for key, value in arrays.items() if key.startswith(prefix + "/")}


def _decode(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Checkpoint:
    """Rebuild a checkpoint from (array members, meta document); inverse of `_encode`."""
    optimizer_scalars = meta["optimizer_scalars"]
    optimizer = {
        param: {**scalars, **_group(arrays, f"optim/{param}")}
        for param, scalars in optimizer_scalars.items()
    }
    return Checkpoint(
        params=_group(arrays, "param"),
        buffers=_group(arrays, "buffer"),
        optimizer=optimizer,
        preprocessing={**meta["preprocessing_scalars"], **_group(arrays, "prep")},
        ema=_group(arrays, "ema") if meta["has_ema"] else None,
        config=meta["config"],
        history=meta["history"],
        epoch=meta["epoch"],
        metrics=meta["metrics"],
        schedule_state=meta["schedule_state"],
        extra=meta["extra"],
        created_at=meta["created_at"],
    )


def _hash_chunk(digest: Any, chunk: bytes | np.ndarray, nbytes: int) -> None:
    digest.update(nbytes.to_bytes(8, "little"))
    digest.update(chunk)


def _checksum(meta_bytes: bytes, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the meta bytes, then per key in sorted order: key, dtype, shape, bytes.

    Every piece is preceded by its length (8 bytes, little-endian), so no two
    different contents hash the same stream.
    """
    digest = hashlib.sha256()
    _hash_chunk(digest, meta_bytes, len(meta_bytes))
    for key in sorted(arrays):
        array = arrays[key]
        header = f"{key}|{array.dtype.str}|{array.shape}".encode()
        _hash_chunk(digest, header, len(header))
        _hash_chunk(digest, np.ascontiguousarray(array), array.nbytes)
    return digest.hexdigest()


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable: {value!r}")


def _pack(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """Return every archive member: the arrays, `meta` and `checksum`."""
    arrays, meta = _encode(checkpoint)
    try:
        text = json.dumps(meta, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not plain JSON: {exc}") from exc
    meta_bytes = text.encode("utf-8")
    members = dict(arrays)
    members["meta"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    members["checksum"] = np.array(_checksum(meta_bytes, arrays))
    return members


def checkpoint_to_bytes(checkpoint: Checkpoint) -> bytes:
    """Encode a checkpoint as the bytes of an uncompressed `.npz` archive."""
    members = _pack(checkpoint)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **members)
    return buffer.getvalue()


def _read_members(data: bytes) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        broken = archive.testzip()
    if broken is not None:
        raise CheckpointError(f"archive member {broken!r} fails its CRC check")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        members = {key: npz[key] for key in npz.files}
    for key, value in members.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"archive member {key!r} is not a .npy array")
    return members


def _unpack(members: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Check meta and checksum; return (array members, meta document)."""
    for required in ("meta", "checksum"):
        if required not in members:
            raise CheckpointError(f"the archive has no {required!r} member")
    meta_array = members.pop("meta")
    stored_checksum = members.pop("checksum")
    if meta_array.dtype != np.uint8 or meta_array.ndim != 1:
        raise CheckpointError("the 'meta' member is not a 1-d uint8 array")
    if stored_checksum.dtype.kind != "U" or stored_checksum.ndim != 0:
        raise CheckpointError("the 'checksum' member is not a 0-d string array")
    meta_bytes = meta_array.tobytes()
    if _checksum(meta_bytes, members) != str(stored_checksum):
        raise CheckpointError("checksum mismatch: the checkpoint is corrupted or was modified")
    meta = json.loads(meta_bytes.decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"checkpoint format_version {version!r} is not supported (this hpsearch reads "
            f"{FORMAT_VERSION})"
        )
    if sorted(members) != meta["array_keys"]:
        raise CheckpointError("the archive's array members differ from meta['array_keys']")
    return members, meta


def checkpoint_from_bytes(data: bytes, source: str = "checkpoint") -> Checkpoint:
    """Decode and verify `.npz` bytes; any defect raises CheckpointError naming `source`."""
    try:
        arrays, meta = _unpack(_read_members(data))
        return _decode(arrays, meta)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    except Exception as exc:  # untrusted bytes: every parser failure means "corrupted"
        raise CheckpointError(
            f"{source}: not a valid checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
