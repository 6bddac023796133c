"""The search spec: a fixed base `TrainConfig`, a space, stages, budget (TOML or JSON).

    name = "digits-coarse-to-fine"
    budget_epochs = 120          # total epochs trained by all trials (default: what stages need)
    concurrency = 2              # trials queued + running at most
    seed = 0
    sampler = "random"           # "tpe" (model-based, see `tpe`), or "grid" for comparison
    asynchronous = true          # ASHA-style promotion; false = stage by stage (the notes)
    eta = 3.0                    # asynchronous promotion keeps the top 1/eta
    sanity_gate = true           # the notes' checks on the smallest and largest nets first
    result = "best"              # a trial's result: its best-validation epoch, or "last" epoch
    widen_on_border = true
    border_fraction = 0.1

    [base]                       # a TrainConfig; epochs and seed are set per trial
    data = {source = "digits"}

    [space."optimizer.learning_rate"]
    kind = "log_uniform"         # log_uniform | uniform | int | log_int | choice
    low = 1e-5
    high = 1e-1

    [[stages]]                   # stage 0: wide ranges, short runs
    trials = 16
    epochs = 1

    [[stages]]                   # stage k >= 1 is built from the best `keep` of stage k-1
    trials = 8
    epochs = 5
    keep = 0.25                  # count (int) or fraction (float) of stage k-1
    refine = "resample"          # resample | promote | both
    margin = 0.1                 # fraction of the old range width added on each side

    [ensembles]                  # built when the last stage ends (`hpsearch.ensembles.settings`)
    kinds = ["top_k", "snapshots", "polyak", "greedy"]

    [checkpoints]                # keep-policy of each trial: best k + last m
    keep_best = 2

Stage k's promotion slots (indexes 0..P-1) continue trials of stage k-1 from
their checkpoints to `epochs` total; its sample slots (P..trials-1) are new
samples in the refined space. "resample": P = 0; "promote": P = trials;
"both": P = min(trials, keep count of stage k-1).

`result` says which epoch of a trial is its result, everywhere trials are
ranked (promotions, refinement and border checks, the leaderboard, the best
trial of the search, the ensembles' members): "best", its epoch of highest
validation accuracy (and that checkpoint); "last", its last epoch's validation
accuracy (and its last checkpoint), for a schedule whose end is the model meant.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from hpsearch.config import (
    StrictModel,
    TrainConfig,
    format_validation_error,
    load_toml,
    with_overrides,
)
from hpsearch.ensembles.settings import CheckpointPolicy, EnsembleSpec
from hpsearch.errors import ConfigError
from hpsearch.search.distributions import Choice, NumericDistribution
from hpsearch.search.plan import AutoPlan, automatic_plan
from hpsearch.search.space import DEPTH, SHARED_WIDTH, Param, SearchSpace, check_conditions
from hpsearch.search.tpe import check_tpe_space

__all__ = [
    "SearchSpec",
    "StageSpec",
    "keep_of",
    "load_search_spec",
    "parse_search_spec",
    "parse_space",
    "trial_config",
]

RefineMode = Literal["resample", "promote", "both"]
_WIDTH = re.compile(r"^model\.hidden_sizes\.(\d+)$")
_RESERVED = {"epochs": "set by each stage", "seed": "derived per trial from the search seed"}
MAX_DEPTH = 64


class StageSpec(StrictModel):
    """One stage: `trials` trials of `epochs` epochs, built from the previous stage."""

    trials: int = Field(ge=1, le=100_000)
    epochs: int = Field(ge=1, le=10_000)
    keep: int | float = 0.25
    refine: RefineMode = "resample"
    margin: float = Field(0.1, ge=0.0, le=10.0)

    @field_validator("keep")
    @classmethod
    def _check_keep(cls, keep: int | float) -> int | float:
        if isinstance(keep, float) and keep.is_integer() and keep > 1:
            keep = int(keep)  # JSON has one number type: 3.0 is the count 3, as JSON Schema says
        if isinstance(keep, float) and not 0.0 < keep <= 1.0:
            raise ValueError(f"a fraction must be in (0, 1], got {keep!r}")
        if isinstance(keep, int) and keep < 1:
            raise ValueError(f"a count must be >= 1, got {keep!r}")
        return keep


class SearchSpec(StrictModel):
    """A whole coarse-to-fine search; `search_space` is the parsed `space` table."""

    name: str = Field(min_length=1, max_length=200)
    base: TrainConfig = Field(default_factory=TrainConfig)
    space: dict[str, dict[str, Any]] = Field(min_length=1)
    stages: list[StageSpec] | None = Field(None, min_length=1, max_length=50)
    budget_epochs: int | None = Field(None, ge=1, le=2**31 - 1)  # a 32-bit column
    min_epochs: int = Field(1, ge=1, le=10_000)
    max_epochs: int | None = Field(None, ge=1, le=10_000)
    concurrency: int = Field(4, ge=1, le=10_000)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    sampler: Literal["random", "grid", "tpe"] = "random"
    asynchronous: bool = True
    eta: float = Field(3.0, gt=1.0, le=100.0)
    sanity_gate: bool = True
    result: Literal["best", "last"] = "best"
    widen_on_border: bool = True
    border_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    ensembles: EnsembleSpec = Field(default_factory=EnsembleSpec)
    checkpoints: CheckpointPolicy = Field(default_factory=CheckpointPolicy)

    _search_space: SearchSpace = PrivateAttr()
    _auto_plan: AutoPlan | None = PrivateAttr(None)
    _plan: list[StageSpec] = PrivateAttr()

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: dict[str, dict[str, Any]], info: Any) -> dict[str, dict[str, Any]]:
        base = info.data.get("base")
        if base is not None:
            parse_space(space, base)
        return space

    @model_validator(mode="after")
    def _check_spec(self) -> SearchSpec:
        self._search_space = parse_space(self.space, self.base)
        if self.sampler == "tpe":
            check_tpe_space(self._search_space)
        if self.stages is None:
            if self.budget_epochs is None:
                raise ValueError("stages: give [[stages]], or budget_epochs for an automatic plan")
            if not self.asynchronous or self.sampler == "grid":
                field = "asynchronous" if not self.asynchronous else "sampler"
                raise ValueError(
                    f"{field}: the automatic plan samples at random, asynchronously; "
                    "write [[stages]] for a stage-by-stage or grid search"
                )
            seeds = self.ensembles.seeds if "seeds" in self.ensembles.kinds else 0
            self._auto_plan = automatic_plan(
                self.budget_epochs, self.eta, self.min_epochs, self.max_epochs, seeds
            )
            self._plan = _automatic_stages(self._auto_plan)
            return self
        if self.max_epochs is not None:
            raise ValueError("max_epochs: only an automatic plan (no [[stages]]) takes it")
        _check_stages(self.stages)
        self._plan = list(self.stages)
        first = self.stages[0].trials * self.stages[0].epochs
        if self.budget_epochs is not None and self.budget_epochs < first:
            raise ValueError(
                f"budget_epochs: {self.budget_epochs} is smaller than the first stage needs "
                f"({self.stages[0].trials} trials x {self.stages[0].epochs} epochs = {first})"
            )
        return self

    @property
    def search_space(self) -> SearchSpace:
        """The validated space of stage 0."""
        return self._search_space

    @property
    def plan(self) -> list[StageSpec]:
        """The stages run: `stages`, or those of the automatic plan (trial counts = caps)."""
        return self._plan

    @property
    def auto_plan(self) -> AutoPlan | None:
        """The automatic plan's rungs, None when the stages are written by hand."""
        return self._auto_plan

    def plan_lines(self) -> list[str]:
        """The chosen plan in words (for `hpsearch plan`)."""
        if self._auto_plan is not None:
            return self._auto_plan.lines()
        lines = [f"hand-written plan: {len(self._plan)} stages, budget {self.budget} epochs"]
        for k, stage in enumerate(self._plan):
            lines.append(
                f"  stage {k}: {stage.trials} trials x {stage.epochs} epochs"
                + (f", {stage.refine} keep {stage.keep} margin {stage.margin}" if k else "")
            )
        return lines

    @property
    def budget(self) -> int:
        """The total epoch budget: `budget_epochs`, or exactly what the stages plan."""
        return self.budget_epochs if self.budget_epochs is not None else self.planned_epochs()

    def promotion_slots(self, stage: int) -> int:
        """How many of `stage`'s indexes (the first ones) are promotions."""
        spec = self._plan[stage]
        if stage == 0 or spec.refine == "resample":
            return 0
        if spec.refine == "promote":
            return spec.trials
        return min(spec.trials, keep_of(spec.keep, self._plan[stage - 1].trials))

    def planned_trials(self) -> int:
        """Trials the plan expects: every stage's slots, or the automatic bracket's."""
        if self._auto_plan is not None:
            return sum(rung.planned_trials for rung in self._auto_plan.rungs)
        return sum(stage.trials for stage in self._plan)

    def planned_epochs(self) -> int:
        """Epochs all stages need when every slot is filled and trains fully, plus the seeds
        stage's (`ensembles.seeds` x the last stage's epochs) when "seeds" is asked for."""
        total = 0
        for stage, spec in enumerate(self._plan):
            promoted = self.promotion_slots(stage)
            previous = self._plan[stage - 1].epochs if stage else 0
            total += promoted * (spec.epochs - previous) + (spec.trials - promoted) * spec.epochs
        if "seeds" in self.ensembles.kinds:
            total += self.ensembles.seeds * self._plan[-1].epochs
        return total


def keep_of(keep: int | float, trials: int) -> int:
    """The count `keep` selects out of `trials` (at least 1)."""
    if isinstance(keep, float):
        return min(trials, max(1, math.ceil(keep * trials - 1e-9)))
    return min(trials, keep)


def _automatic_stages(plan: AutoPlan) -> list[StageSpec]:
    """Rung k as stage k; trial counts are caps the budget reaches first: at most
    3 * budget + 10 rung-0 trials (trials that diverge in their first epoch cost no
    epoch, so the cap ends a search where most do), and ASHA promotes at most 1/eta."""
    caps = [min(3 * plan.budget + 10, 100_000)]
    for _ in plan.rungs[1:]:
        caps.append(max(1, math.floor(caps[-1] / plan.eta)))
    stages = [StageSpec(trials=caps[0], epochs=plan.rungs[0].epochs)]
    for rung, cap in zip(plan.rungs[1:], caps[1:], strict=True):
        keep = 1.0 / plan.eta
        stages.append(StageSpec(trials=cap, epochs=rung.epochs, keep=keep, refine="promote"))
    return stages


def _check_stages(stages: list[StageSpec]) -> None:
    if stages[0].refine != "resample":
        raise ValueError("stages.0.refine: the first stage has nothing to promote; use 'resample'")
    for k in range(1, len(stages)):
        stage, previous = stages[k], stages[k - 1]
        if isinstance(stage.keep, int) and stage.keep > previous.trials:
            raise ValueError(
                f"stages.{k}.keep: keeps {stage.keep} of stage {k - 1}'s {previous.trials} trials"
            )
        if stage.refine != "resample" and stage.epochs <= previous.epochs:
            raise ValueError(
                f"stages.{k}.epochs: promoted trials continue to more epochs than stage {k - 1}'s "
                f"{previous.epochs}, got {stage.epochs}"
            )
        if stage.refine == "promote" and stage.trials > previous.trials:
            raise ValueError(
                f"stages.{k}.trials: cannot promote {stage.trials} of stage {k - 1}'s "
                f"{previous.trials} trials"
            )


def parse_space(raw: dict[str, dict[str, Any]], base: TrainConfig) -> SearchSpace:
    """Parse the `[space]` table and check every name and bound against `base`."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("space: needs at least one parameter")
    params = []
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ValueError(f"space.{name}: must be a table with a kind, got {body!r}")
        param = Param.from_dict(name, body)
        params.append(_with_limits(param, _field_limits(name)))
    space = SearchSpace(tuple(params))
    per_layer = [name for name in space.names if _WIDTH.match(name)]
    if SHARED_WIDTH in space and per_layer:
        raise ValueError(
            f"space.{SHARED_WIDTH}: one width shared by every hidden layer cannot be searched "
            f"together with per-layer widths {per_layer}"
        )
    check_conditions(space)
    max_depth = _max_depth(space)
    for param in space.params:
        _check_against_config(param, base, max_depth)
    return space


def _max_depth(space: SearchSpace) -> int | None:
    if DEPTH not in space:
        return None
    distribution = space[DEPTH].distribution
    if isinstance(distribution, NumericDistribution) and distribution.is_int:
        return int(distribution.high)
    if isinstance(distribution, Choice) and all(_is_whole(v) for v in distribution.values):
        return max(int(v) for v in distribution.values)
    raise ValueError(f"space.{DEPTH}: must be an int, log_int or choice of ints")


def _is_whole(value: Any) -> bool:
    """An int, or a float with no fraction (JSON Schema's integer: 3.0 is 3)."""
    return type(value) is int or (type(value) is float and value.is_integer())


def _extremes(param: Param) -> list[Any]:
    distribution = param.distribution
    if isinstance(distribution, Choice):
        return list(distribution.values)
    assert isinstance(distribution, NumericDistribution)
    if distribution.is_int:
        return [distribution.low, distribution.high]
    return [distribution.low, math.nextafter(distribution.high, distribution.low)]


def _check_against_config(param: Param, base: TrainConfig, max_depth: int | None) -> None:
    name = param.name
    if name in _RESERVED:
        raise ValueError(f"space.{name}: cannot be searched, it is {_RESERVED[name]}")
    width = _WIDTH.match(name)
    if width and max_depth is None and int(width.group(1)) >= len(base.model.hidden_sizes):
        raise ValueError(
            f"space.{name}: the base has {len(base.model.hidden_sizes)} hidden layers; "
            f"add {DEPTH} to the space to search deeper networks"
        )
    if width and max_depth is not None and int(width.group(1)) >= max_depth:
        raise ValueError(f"space.{name}: {DEPTH} is at most {max_depth}")
    for value in _extremes(param):
        if name == DEPTH and not 1 <= value <= MAX_DEPTH:
            raise ValueError(f"space.{DEPTH}: must lie in [1, {MAX_DEPTH}], got {value!r}")
        overrides = {name: value}
        if name != DEPTH and max_depth is not None:
            overrides[DEPTH] = max_depth
        try:
            _apply(base, overrides)
        except ConfigError as exc:
            raise ValueError(f"space.{name}: value {value!r} is refused: {exc}") from None


def _field_limits(name: str) -> tuple[float | None, float | None]:
    """Hard bounds of a config field from its declared constraints (ge, gt, le, lt)."""
    if name == DEPTH:
        return 1, MAX_DEPTH
    if _WIDTH.match(name) or name == SHARED_WIDTH:
        return 1, None
    node: Any = TrainConfig
    info: Any = None
    for part in name.split("."):
        fields = getattr(node, "model_fields", None)
        if fields is None or part not in fields:
            return None, None
        info = fields[part]
        node = info.annotation
    low: float | None = None
    high: float | None = None
    for item in info.metadata:
        if getattr(item, "ge", None) is not None:
            low = item.ge
        if getattr(item, "gt", None) is not None:
            low = math.nextafter(item.gt, math.inf)
        if getattr(item, "le", None) is not None:
            high = item.le
        if getattr(item, "lt", None) is not None:
            high = math.nextafter(item.lt, -math.inf)
    return low, high


def _with_limits(param: Param, declared: tuple[float | None, float | None]) -> Param:
    user_low, user_high = param.limits
    low = _tighter(user_low, declared[0], max)
    high = _tighter(user_high, declared[1], min)
    distribution = param.distribution
    if isinstance(distribution, NumericDistribution):
        if user_low is not None and user_low > distribution.low:
            raise ValueError(f"space.{param.name}.limit_low: {user_low!r} is above low")
        if user_high is not None and user_high < distribution.high:
            raise ValueError(f"space.{param.name}.limit_high: {user_high!r} is below high")
    return Param(param.name, param.distribution, param.conditions, (low, high))


def _tighter(a: float | None, b: float | None, pick: Any) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return float(pick(a, b))


def _apply(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    overrides = dict(params)
    sizes = list(base.model.hidden_sizes)
    depth = overrides.pop(DEPTH, None)
    if depth is not None:
        sizes = (sizes + sizes[-1:] * int(depth))[: int(depth)]
    shared = overrides.pop(SHARED_WIDTH, None)
    if shared is not None:
        sizes = [shared] * len(sizes)
    widths = {int(m.group(1)): overrides.pop(n) for n in list(overrides) if (m := _WIDTH.match(n))}
    for index, width in widths.items():
        if index >= len(sizes):
            raise ConfigError(f"model.hidden_sizes.{index}: the network has {len(sizes)} layers")
        sizes[index] = width
    if depth is not None or widths or shared is not None:
        overrides["model.hidden_sizes"] = sizes
    return with_overrides(base, overrides)


def trial_config(
    spec: SearchSpec,
    params: dict[str, Any],
    train_seed: int | None = None,
    epochs: int | None = None,
) -> TrainConfig:
    """The validated `TrainConfig` of one trial: the base with `params` applied.

    `model.depth` truncates `model.hidden_sizes`, or extends it by repeating
    its last width; then `model.hidden_sizes.*` sets every width, or
    `model.hidden_sizes.i` set one each. `train_seed` and
    `epochs`, when given, set `seed` and `epochs`. Raises `ConfigError`.
    """
    overrides = dict(params)
    if train_seed is not None:
        overrides["seed"] = train_seed
    if epochs is not None:
        overrides["epochs"] = epochs
    return _apply(spec.base, overrides)


def load_search_spec(path: str | Path) -> SearchSpec:
    """Read and validate a spec from TOML (or JSON for a `.json` file)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"search spec not found: {path}") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON: {exc}") from exc
    else:
        raw = load_toml(path)
    return parse_search_spec(raw, source=str(path))


def parse_search_spec(raw: Any, source: str = "search spec") -> SearchSpec:
    """Validate a plain dict (from TOML, JSON or a REST body); raises `ConfigError`."""
    try:
        return SearchSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid search spec\n{format_validation_error(exc)}") from exc
