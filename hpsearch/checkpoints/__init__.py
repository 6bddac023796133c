"""Checkpoints: atomic `.npz` files named by validation accuracy, under one root.

File name format (exact)::

    val<A.AAAA>_s<SSSS>_t<TTTTTT>_e<EEE>.npz      val0.8312_s0007_t000042_e005.npz

- ``A.AAAA``: the epoch's validation accuracy, clamped to [0, 1], rounded to
  4 decimals, always 6 characters ("0.0000" ... "1.0000"). NaN, inf and None
  are refused (ValueError): NaN never appears in a name.
- ``SSSS`` stage, ``TTTTTT`` trial, ``EEE`` epoch: zero-padded decimal ints
  (more digits when the number needs them).
- Regex: `CHECKPOINT_NAME_PATTERN`. Anything else in a folder (temporaries
  ".<name>.<random>.tmp", notes, other files) is ignored by listings.

Because the accuracy comes first with a fixed width, sorting the names sorts
the models by accuracy, worst to best; best first is a reverse sort::

    ls checkpoints/search_000012 | sort -r | head     # the ten best models

Ties on accuracy then order by stage, trial and epoch (reverse sort: the
latest stage and epoch first). `FileSystemCheckpointStorage.list` returns the
same best-first order.

Ensemble files (`hpsearch.ensembles`) live in the same folders, named
``val<A.AAAA>_ensemble_<IIIIII>_<kind>.npz`` so they sort with checkpoints by
accuracy; `list`, `prune` and the keep-policies never touch them, `save`,
`load` and `open_bytes` accept both kinds of names.

Layout on disk: ``<root>/<key_dir>/<name>``, one `key_dir` per search. A
checkpoint is one uncompressed `.npz` whose members are numeric arrays plus a
JSON `meta` document and a SHA-256 `checksum` (see `_format`); loading uses
`allow_pickle=False`, recomputes the checksum and raises `CheckpointError` on
any truncation or corruption. Writes go through a temporary file in the same
folder, fsync, `os.replace` and a folder fsync, so a file under a final name
is always complete.
"""

from hpsearch.checkpoints._format import (
    FORMAT_VERSION,
    Checkpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
)
from hpsearch.checkpoints._names import (
    CHECKPOINT_NAME_PATTERN,
    ENSEMBLE_NAME_PATTERN,
    CheckpointName,
    checkpoint_name,
    ensemble_name,
    is_checkpoint_name,
    is_ensemble_name,
    parse_checkpoint_name,
)
from hpsearch.checkpoints._storage import (
    CheckpointStorage,
    FileSystemCheckpointStorage,
    is_temporary_name,
    load_checkpoint,
    save_checkpoint,
)

__all__ = [
    "CHECKPOINT_NAME_PATTERN",
    "ENSEMBLE_NAME_PATTERN",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointName",
    "CheckpointStorage",
    "FileSystemCheckpointStorage",
    "checkpoint_from_bytes",
    "checkpoint_name",
    "checkpoint_to_bytes",
    "ensemble_name",
    "is_checkpoint_name",
    "is_ensemble_name",
    "is_temporary_name",
    "load_checkpoint",
    "parse_checkpoint_name",
    "save_checkpoint",
]
