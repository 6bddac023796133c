"""The OpenAPI document: the real search spec, the server's caps, links between resources.

Pydantic describes `SearchCreate` field by field, but a spec's `space` is a
plain table there. `describe_search_spec` replaces it with what
`hpsearch.search` accepts:

- `space`: names are dotted paths (`propertyNames` pattern); each known path
  of the training config is a property whose value is a discriminated union
  on `kind` (`log_uniform`, `uniform`, `int`, `log_int`, `choice`) of the
  kinds its field type allows, with `low` / `high` / `values` bounded by the
  field's own constraints; `model.depth`, `model.hidden_sizes.<i>` and the
  one width shared by every layer, `model.hidden_sizes.*`, too.
- `stages`: the first stage must `resample` (`prefixItems`); or no stages and
  `budget_epochs` for an automatic plan (`min_epochs` / `max_epochs` bound
  its rungs).
- the server's caps (`Settings`): epochs per stage and per rung, batch size,
  hidden layers and widths, concurrency.

What JSON Schema cannot state is said in the descriptions and checked by
the server (a 422 naming the field): `low < high`, `limit_low <= low`,
conditions (`when`) naming parameters of the space, layer indexes below the
depth, a shared width not searched with per-layer widths, stage-to-stage
rules, `budget_epochs` when `stages` is omitted (random, asynchronous; and
`max_epochs` only then), a budget that covers the first stage, the total of
trials, the data set (its file, its size, losses that fit its labels) and the
parameter count.

`add_links` adds OpenAPI links: a launched search to its detail, trials and
controls; a page of trials to each trial and its controls.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hpsearch.search.spec import SearchSpec
from hpsearch.settings import Settings

__all__ = ["SEARCHABLE_SECTIONS", "add_links", "describe_search_spec", "space_schema"]

MAX_SEED = int(SearchSpec.model_fields["seed"].metadata[-1].le)
NO_NUL = "^[^\\x00]*$"  # strings of a spec never hold NUL (api.routes.searches.reject_nul)
NAME = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"  # and a name is not blank (storage refuses it)
SEARCHABLE_SECTIONS = ("preprocess", "model", "optimizer", "schedule")
_RESERVED = frozenset({"epochs", "seed", "data"})
_WIDTH_PATTERN = r"model\.hidden_sizes\.(?:[0-9]|[1-5][0-9]|6[0-3])"
_SHARED_WIDTH = "model.hidden_sizes.*"
_BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_CONDITION = {
    "type": "object",
    "description": "parent parameter -> a value, a list of values, or {min, max}: the "
    "parameter is sampled only when its parents match (parents must be in the space)",
}
_KEEP_COUNT = {"type": "integer", "minimum": 1, "description": "a count of the previous stage"}
_KEEP_FRACTION = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 1,
    "description": "a fraction",
}
_LIMIT = {"type": "number", "description": "a hard bound for widening on the border"}


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _without_null(field: dict[str, Any]) -> dict[str, Any]:
    branches = [b for b in field.get("anyOf", []) if b.get("type") != "null"]
    return branches[0] if len(branches) == 1 else field


def _searchable_fields(components: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Dotted path -> JSON schema of every scalar field of TrainConfig a space may search."""
    train = components["TrainConfig"]["properties"]
    fields: dict[str, dict[str, Any]] = {}
    for name, field in train.items():
        if name in _RESERVED:
            continue
        if "$ref" in field and name in SEARCHABLE_SECTIONS:
            section = components[_ref_name(field)]["properties"]
            for inner, inner_field in section.items():
                fields[f"{name}.{inner}"] = _without_null(inner_field)
        elif "$ref" not in field:
            fields[name] = _without_null(field)
    return {path: field for path, field in fields.items() if _scalar_type(field) is not None}


def _scalar_type(field: dict[str, Any]) -> str | None:
    if "enum" in field:
        return "enum"
    kind = field.get("type")
    return kind if kind in ("number", "integer", "boolean") else None


def _bounded(field: dict[str, Any], kind: str, log: bool) -> dict[str, Any]:
    bound = {key: field[key] for key in _BOUND_KEYS if key in field}
    bound["type"] = kind
    if log and kind == "integer":
        bound["minimum"] = max(1, bound.get("minimum", 1))
        bound.pop("exclusiveMinimum", None)
    elif log and not (bound.get("minimum", 0) > 0 or bound.get("exclusiveMinimum", -1) >= 0):
        bound.pop("minimum", None)
        bound["exclusiveMinimum"] = 0
    if "exclusiveMaximum" in bound:  # high is exclusive already: high = the field's bound is fine
        bound["maximum"] = bound.pop("exclusiveMaximum")
    return bound


def _range_kind(kind: str, field: dict[str, Any], number: str) -> dict[str, Any]:
    log = kind.startswith("log")
    bound = _bounded(field, number, log)
    return {
        "type": "object",
        "properties": {
            "kind": {"const": kind},
            "low": bound,
            "high": bound,
            "when": _CONDITION,
            "limit_low": _LIMIT,
            "limit_high": _LIMIT,
        },
        "required": ["kind", "low", "high"],
        "additionalProperties": False,
        "description": f"{kind}: low < high (the server checks it)",
    }


def _choice_kind(field: dict[str, Any]) -> dict[str, Any]:
    values = {key: value for key, value in field.items() if key not in ("title", "default")}
    return {
        "type": "object",
        "properties": {
            "kind": {"const": "choice"},
            "values": {"type": "array", "items": values, "minItems": 1, "uniqueItems": True},
            "when": _CONDITION,
        },
        "required": ["kind", "values"],
        "additionalProperties": False,
    }


def _union(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"oneOf": list(variants.values()), "discriminator": {"propertyName": "kind"}}


def _distribution(field: dict[str, Any]) -> dict[str, Any]:
    """The discriminated union of the distributions a field of this type accepts."""
    kind = _scalar_type(field)
    variants: dict[str, dict[str, Any]] = {}
    if kind == "number":
        variants = {k: _range_kind(k, field, "number") for k in ("log_uniform", "uniform")}
    elif kind == "integer":
        variants = {k: _range_kind(k, field, "integer") for k in ("int", "log_int")}
    variants["choice"] = _choice_kind(field)
    return _union(variants)


def space_schema(components: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The JSON schema of a spec's `space` table (see the module doc)."""
    fields = _searchable_fields(components)
    if "batch_size" in fields:
        fields["batch_size"]["maximum"] = settings.max_batch_size
    width = {"type": "integer", "minimum": 1, "maximum": settings.max_width}
    depth = {"type": "integer", "minimum": 1, "maximum": settings.max_layers}
    names = [re.escape(path) for path in (*sorted(fields), "model.depth", _SHARED_WIDTH)]
    return {
        "type": "object",
        "minProperties": 1,
        "description": "parameter (a dotted path of the training config) -> its distribution",
        "propertyNames": {"pattern": f"^(?:{'|'.join(names)}|{_WIDTH_PATTERN})$"},
        "properties": {
            **{path: _distribution(field) for path, field in fields.items()},
            "model.depth": _distribution(depth),
            _SHARED_WIDTH: _distribution(width),
        },
        "patternProperties": {f"^{_WIDTH_PATTERN}$": _distribution(width)},
        "additionalProperties": False,
    }


def describe_search_spec(openapi: dict[str, Any], settings: Settings) -> None:
    """Replace `SearchCreate.space` and apply the server's caps, in place."""
    components = openapi["components"]["schemas"]
    spec = components["SearchCreate"]["properties"]
    spec["space"] = space_schema(components, settings)
    spec["concurrency"]["maximum"] = settings.max_concurrency
    spec["seed"]["maximum"] = MAX_SEED  # exact: pydantic writes 2**63 - 1 as a float
    spec["name"]["pattern"] = NAME
    for field in ("path", "label_column"):
        for branch in components["DataConfig"]["properties"][field].get("anyOf", []):
            if branch.get("type") == "string":
                branch["pattern"] = NO_NUL
    for epochs in ("min_epochs", "max_epochs"):
        _not_null(spec[epochs])["maximum"] = settings.max_epochs
    _describe_stages(components, settings)
    ensembles = components.get("EnsembleSpec", {}).get("properties", {})
    if "kinds" in ensembles:
        ensembles["kinds"]["uniqueItems"] = True  # each kind at most once
    train = components["TrainConfig"]["properties"]
    train["batch_size"]["maximum"] = settings.max_batch_size
    sizes = components["ModelConfig"]["properties"]["hidden_sizes"]
    sizes["maxItems"] = min(sizes.get("maxItems", settings.max_layers), settings.max_layers)
    sizes["items"] = {"type": "integer", "minimum": 1, "maximum": settings.max_width}


def _not_null(field: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field's schema (the field itself if required)."""
    branches = [b for b in field.get("anyOf", [field]) if b.get("type") != "null"]
    return branches[0]


def _describe_stages(components: dict[str, Any], settings: Settings) -> None:
    """Stages: the epoch cap, keep as a count or a fraction, a resampling first stage."""
    stage = components["StageSpec"]["properties"]
    stage["epochs"]["maximum"] = min(stage["epochs"]["maximum"], settings.max_epochs)
    stage["keep"]["anyOf"] = [_KEEP_COUNT, _KEEP_FRACTION]
    first = copy.deepcopy(components["StageSpec"])
    first["properties"]["refine"] = {"const": "resample", "default": "resample"}
    stages = components["SearchCreate"]["properties"]["stages"]
    _not_null(stages)["prefixItems"] = [first]
    stages["description"] = (
        "the stages, or none (null) for an automatic plan from budget_epochs "
        "(then sampler 'random' and asynchronous; max_epochs only then)"
    )


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


_SEARCH_LINKS = {
    "GetSearch": "get_search",
    "ListTrials": "list_trials",
    "UpdateSearch": "update_search",
    "PauseSearch": "pause_search",
    "ResumeSearch": "resume_search",
    "CancelSearch": "cancel_search",
}
_TRIAL_LINKS = {
    "GetTrial": "get_trial",
    "CancelTrial": "cancel_trial",
    "RequeueTrial": "requeue_trial",
}


def add_links(openapi: dict[str, Any]) -> None:
    """Links from a launched search to its routes, and from a page of trials to each trial."""
    operations = {
        operation["operationId"]: operation
        for path in openapi["paths"].values()
        for operation in path.values()
        if "operationId" in operation
    }
    linked = (*_SEARCH_LINKS.values(), *_TRIAL_LINKS.values())
    by_name = {name: _operation_id(operations, name) for name in linked}
    launched = operations[_operation_id(operations, "launch_search")]["responses"]["201"]
    launched["links"] = {
        link: _link(by_name[name], search_id="$response.body#/id")
        for link, name in _SEARCH_LINKS.items()
    }
    page = operations[by_name["list_trials"]]["responses"]["200"]
    page["links"] = {
        link: _link(by_name[name], trial_id="$response.body#/0/id")
        for link, name in _TRIAL_LINKS.items()
    }


def _operation_id(operations: dict[str, Any], function: str) -> str:
    """FastAPI's operation id of the route function named `function`."""
    return next(op_id for op_id in operations if op_id.startswith(f"{function}_"))
