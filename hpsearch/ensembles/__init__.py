"""Ensembles built from a search's checkpoints: pure NumPy, no database, no queue.

- `combine`: what a member's outputs are per loss (class probabilities,
  attribute sigmoids, regression outputs), their weighted mean, accuracy,
  loss and the diversity figure.
- `ensemble`: `Member` (a checkpoint with its own preprocessing and
  configuration) and `Ensemble` (members + weights; predicts on raw features).
- `selection`: Caruana's greedy selection with replacement on validation outputs.
- `polyak`: parameter averages of one run, batch norm refitted on the training split.
- `kinds`: the five kinds, their sizes and the request check.
- `build`: build one kind from loaded members, with its figures.
- `files`: the self-contained ensemble file (checkpoint format, checksum, atomic).

The worker (`worker.ensembles`) loads the members and runs the builds; the
API and the CLI only read the results.
"""

from hpsearch.ensembles.build import BuiltEnsemble, MemberPool, OutputCache, build
from hpsearch.ensembles.combine import (
    accuracy_of_outputs,
    combine_outputs,
    disagreement,
    outputs_from_scores,
)
from hpsearch.ensembles.ensemble import Ensemble, Member, member_from_checkpoint, member_outputs
from hpsearch.ensembles.files import ensemble_from_checkpoint, ensemble_to_checkpoint, is_ensemble
from hpsearch.ensembles.kinds import (
    DEFAULT_KINDS,
    DEFAULT_SIZES,
    KINDS,
    Availability,
    check_request,
    default_size,
    plan_requests,
)
from hpsearch.ensembles.polyak import average_parameters, refit_batchnorm
from hpsearch.ensembles.selection import GREEDY_MAX_SIZE, Selection, greedy_selection

__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_SIZES",
    "GREEDY_MAX_SIZE",
    "KINDS",
    "Availability",
    "BuiltEnsemble",
    "Ensemble",
    "Member",
    "MemberPool",
    "OutputCache",
    "Selection",
    "accuracy_of_outputs",
    "average_parameters",
    "build",
    "check_request",
    "combine_outputs",
    "default_size",
    "disagreement",
    "ensemble_from_checkpoint",
    "ensemble_to_checkpoint",
    "greedy_selection",
    "is_ensemble",
    "member_from_checkpoint",
    "member_outputs",
    "outputs_from_scores",
    "plan_requests",
    "refit_batchnorm",
]
