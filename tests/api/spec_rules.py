"""The rules of a search spec that JSON Schema cannot state, applied to generated bodies.

The OpenAPI schema of `POST /searches` (`api.openapi`) describes every field,
path, kind and bound; what it cannot say is a relation between two values or
a fact about the server's files. schemathesis's positive phase generates
bodies from the schema; `satisfy_server_rules` then makes each of these
relations hold, changing as little as it can, so that a rejected positive
request is a real disagreement between schema and server:

- a range has low < high (an empty range is dropped); `when` conditions and
  `limit_low` / `limit_high` are dropped (they relate one parameter to another);
- a layer width is searched only below the network's depth;
- losses fit the data's labels (the built-in data sets are classification);
- a file data source names a file that exists (the test's `fuzz.npz`), the
  validation and test fractions leave a training split, a generated data set
  fits `max_data_bytes` and has enough examples to split;
- stage k keeps at most stage k-1's trials, promotes to more epochs and no
  more trials than stage k-1 had; the budget covers the first stage;
  `max_epochs` goes with no stages only;
- with no stages (an automatic plan): a budget, a random asynchronous search,
  min_epochs <= max_epochs <= the server's cap (the plan's rungs fit the cap);
- a shared width (`model.hidden_sizes.*`) is not searched with per-layer ones;
- `sampler = "tpe"` has a parameter that takes two values at least.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

from hpsearch.nn.inputs import CLASS_LOSSES
from hpsearch.settings import Settings

__all__ = ["FUZZ_DATASET", "satisfy_server_rules"]

FUZZ_DATASET = "datasets/fuzz.npz"
MAX_HELD_OUT = 0.9  # with >= MIN_EXAMPLES examples, the training split keeps one
MIN_EXAMPLES = 10
SHARED_WIDTH = "model.hidden_sizes.*"
_WIDTH = re.compile(r"^model\.hidden_sizes\.(\d+)$")


def satisfy_server_rules(body: Any, settings: Settings) -> Any:
    """`body` with the relations above made true (non-dict bodies are left alone)."""
    if not isinstance(body, dict):
        return body
    base = body.setdefault("base", {})
    if isinstance(base, dict):
        _fix_base(base, settings)
    if isinstance(body.get("space"), dict):
        body["space"] = _fix_space(body["space"], base if isinstance(base, dict) else {})
    if body.get("sampler") == "tpe" and not _some_varies(body.get("space")):
        body["sampler"] = "random"
    stages = body.get("stages")
    if stages is None:
        _fix_automatic_plan(body, settings)
    elif isinstance(stages, list) and stages and all(isinstance(s, dict) for s in stages):
        body.pop("max_epochs", None)
        _fix_stages(stages)
        first = _whole(stages[0].get("trials"), 1) * _whole(stages[0].get("epochs"), 1)
        if body.get("budget_epochs") is not None and _whole(body["budget_epochs"], 0) < first:
            body["budget_epochs"] = first  # a whole float (552.0) is an integer to the schema
    return body


def _fix_automatic_plan(body: dict[str, Any], settings: Settings) -> None:
    body.update(asynchronous=True, sampler="random")
    low = _whole(body.get("min_epochs"), 1)
    high = _whole(body.get("max_epochs"), settings.max_epochs)
    body["max_epochs"] = max(low, min(high, settings.max_epochs))
    if _whole(body.get("budget_epochs"), 0) < low:
        body["budget_epochs"] = max(low, 10)


def _some_varies(space: Any) -> bool:
    """Whether a parameter of `space` takes more than one value (a range, or a choice of 2+)."""
    bodies = space.values() if isinstance(space, dict) else []
    return any(b.get("kind") != "choice" or len(b.get("values") or []) > 1 for b in bodies)


def _whole(value: Any, default: int) -> int:
    """A JSON Schema integer (3 or 3.0) as an int, `default` for anything else."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return int(value) if is_number and math.isfinite(value) else default


def _fix_space(space: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    depth = len((base.get("model") or {}).get("hidden_sizes", [100]))
    searched_depth = space.get("model.depth")
    if isinstance(searched_depth, dict):
        depth = max([*(searched_depth.get("values") or []), searched_depth.get("high", depth)])
    shared = SHARED_WIDTH in space
    fixed: dict[str, Any] = {}
    for name, body in space.items():
        if not isinstance(body, dict) or name == "model.loss":
            continue
        width = _WIDTH.match(name)
        if width and (shared or int(width.group(1)) >= depth):
            continue
        body = {k: v for k, v in body.items() if k not in ("when", "limit_low", "limit_high")}
        if "low" in body and "high" in body:
            low, high = sorted((body["low"], body["high"]))
            if not low < high or not math.isfinite(high - low):
                continue
            body.update(low=low, high=high)
        fixed[name] = body
    return fixed or {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-4, "high": 0.1}}


def _fix_base(base: dict[str, Any], settings: Settings) -> None:
    model = base.get("model")
    if isinstance(model, dict) and model.get("loss", "softmax") not in CLASS_LOSSES:
        model["loss"] = "softmax"
    data = base.get("data")
    if not isinstance(data, dict):
        return
    if data.get("source") in ("npz", "csv", "cifar10"):
        data.update(source="npz", path=FUZZ_DATASET)
        data.pop("label_column", None)
    if data.get("val_fraction", 0.2) + data.get("test_fraction", 0.0) > MAX_HELD_OUT:
        data.update(val_fraction=0.2, test_fraction=0.0)
    if data.get("source") in ("spiral", "blobs"):
        features = 2 if data["source"] == "spiral" else data.get("num_features", 2)
        classes = data.get("num_classes", 3)
        room = settings.max_data_bytes // (4 * features * classes)
        if room < 1:
            data.update(num_classes=2, num_features=2)
            room = settings.max_data_bytes // 16
        enough = math.ceil(MIN_EXAMPLES / data.get("num_classes", 3))
        data["points_per_class"] = max(enough, min(data.get("points_per_class", 100), room))


def _fix_stages(stages: list[dict[str, Any]]) -> None:
    for previous, stage in itertools.pairwise(stages):
        before = previous.get("trials", 1)
        keep = stage.get("keep")
        if isinstance(keep, int | float) and keep > max(1, before):  # a count (3.0 is 3)
            stage["keep"] = before
        if stage.get("refine", "resample") != "resample":
            stage["epochs"] = max(stage.get("epochs", 1), previous.get("epochs", 1) + 1)
        if stage.get("refine") == "promote":
            stage["trials"] = min(stage.get("trials", 1), before)
