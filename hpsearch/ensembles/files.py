"""The ensemble file: one checkpoint-format `.npz` holding every member and the weights.

Name (under the search's checkpoint folder, `hpsearch.checkpoints.ensemble_name`)::

    val<A.AAAA>_ensemble_<IIIIII>_<kind>.npz       val0.9650_ensemble_000003_greedy.npz

The validation accuracy comes first with the checkpoints' fixed width, so
`ls search_000001 | sort -r` lists ensembles and checkpoints together, best
first. Checkpoint listings, keep-policies and pruning ignore these names.

Content: a `Checkpoint` (same archive, SHA-256 checksum and atomic write as
checkpoints) whose arrays are the members' arrays under `m<index>.`
prefixes: params `m000.W1`, buffers `m000.running_mean1`, preprocessing
`m000.mean`. Its `config` holds {"kind", "weights", "members": [{"config",
"extra", "source", "epoch"}]}, its `metrics` the figures, and its `extra`
{"ensemble_format": 1} plus search and ensemble ids. `hpsearch predict` reads
it alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpsearch.checkpoints import Checkpoint
from hpsearch.ensembles.ensemble import Ensemble, Member
from hpsearch.errors import CheckpointError

__all__ = ["ENSEMBLE_FORMAT", "ensemble_from_checkpoint", "ensemble_to_checkpoint", "is_ensemble"]

ENSEMBLE_FORMAT = 1


def _prefixed(index: int, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    return {f"m{index:03d}.{name}": value for name, value in arrays.items()}


def _member_part(arrays: dict[str, Any], index: int) -> dict[str, Any]:
    prefix = f"m{index:03d}."
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}


def ensemble_to_checkpoint(
    ensemble: Ensemble, figures: dict[str, Any], extra: dict[str, Any] | None = None
) -> Checkpoint:
    """The self-contained checkpoint-format record of `ensemble` (see the module doc)."""
    params: dict[str, np.ndarray] = {}
    buffers: dict[str, np.ndarray] = {}
    preprocessing: dict[str, Any] = {}
    described = []
    for index, member in enumerate(ensemble.members):
        checkpoint = member.checkpoint
        params |= _prefixed(index, checkpoint.params)
        buffers |= _prefixed(index, checkpoint.buffers)
        arrays = {k: v for k, v in checkpoint.preprocessing.items() if isinstance(v, np.ndarray)}
        preprocessing |= _prefixed(index, arrays)
        described.append({"config": checkpoint.config, "extra": checkpoint.extra,
                          "source": member.source, "epoch": checkpoint.epoch})  # fmt: skip
    return Checkpoint(
        params=params,
        buffers=buffers,
        preprocessing=preprocessing,
        config={"kind": ensemble.kind, "weights": ensemble.weights.tolist(), "members": described},
        epoch=0,
        metrics=dict(figures),
        extra={**(extra or {}), "ensemble_format": ENSEMBLE_FORMAT},
    )


def is_ensemble(checkpoint: Checkpoint) -> bool:
    """True for a record written by `ensemble_to_checkpoint`."""
    return "ensemble_format" in checkpoint.extra


def ensemble_from_checkpoint(checkpoint: Checkpoint) -> Ensemble:
    """Rebuild the ensemble of an ensemble file's record (CheckpointError if it is none)."""
    if checkpoint.extra.get("ensemble_format") != ENSEMBLE_FORMAT:
        raise CheckpointError(
            f"not an ensemble file of format {ENSEMBLE_FORMAT} "
            f"(extra.ensemble_format = {checkpoint.extra.get('ensemble_format')!r})"
        )
    try:
        described = checkpoint.config["members"]
        members = [
            Member(
                Checkpoint(
                    params=_member_part(checkpoint.params, index),
                    buffers=_member_part(checkpoint.buffers, index),
                    preprocessing=_member_part(checkpoint.preprocessing, index),
                    config=entry["config"],
                    epoch=int(entry["epoch"]),
                    extra=entry["extra"],
                ),
                dict(entry["source"]),
            )
            for index, entry in enumerate(described)
        ]
        return Ensemble(checkpoint.config["kind"], members, checkpoint.config["weights"])
    except (KeyError, TypeError) as error:
        message = f"the ensemble file does not describe its members: {error}"
        raise CheckpointError(message) from error
