"""The one small exception tree of hpsearch.

Every error hpsearch raises on purpose derives from `HpsearchError`. The
subclasses that describe bad input also derive from `ValueError`, so callers
that only know the standard library still catch them.

    HpsearchError
    ├── ConfigError        a configuration or search spec is invalid (ValueError)
    ├── DataError          a data set is missing, malformed or outside the data root (ValueError)
    ├── CheckpointError    a checkpoint is missing, truncated or corrupted (ValueError)
    ├── EnsembleError      an ensemble cannot be built or used as asked (ValueError)
    ├── StorageError       the database refused or failed an operation
    │   ├── NotFoundError  the record does not exist
    │   └── ConflictError  the operation lost a race or breaks a constraint
    └── QueueError         the job queue (Redis) failed

`hpsearch.nn` depends on numpy only, so it raises plain `ValueError` /
`TypeError` with messages that name the offending argument.
"""

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "EnsembleError",
    "HpsearchError",
    "NotFoundError",
    "QueueError",
    "StorageError",
]


class HpsearchError(Exception):
    """Base class of every error hpsearch raises on purpose."""


class ConfigError(HpsearchError, ValueError):
    """A configuration or search spec is invalid."""


class DataError(HpsearchError, ValueError):
    """A data set is missing, malformed, or outside the data root."""


class CheckpointError(HpsearchError, ValueError):
    """A checkpoint is missing, truncated or corrupted."""


class StorageError(HpsearchError):
    """The database refused or failed an operation."""


class NotFoundError(StorageError):
    """The requested record does not exist."""


class ConflictError(StorageError):
    """The operation lost a race or would break a constraint."""


class QueueError(HpsearchError):
    """The job queue failed."""


class EnsembleError(HpsearchError, ValueError):
    """An ensemble cannot be built or used as asked (kind, size, members, no checkpoints)."""
