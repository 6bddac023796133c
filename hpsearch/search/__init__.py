"""The search core: spaces, reproducible sampling, coarse-to-fine refinement, scheduling.

Pure: no database, no queue, no clock, no global random state. The master
feeds `next_actions` the spec and the trials so far and applies what it returns.
"""

from hpsearch.search.distributions import (
    Choice,
    Distribution,
    IntUniform,
    LogInt,
    LogUniform,
    NumericDistribution,
    Uniform,
    distribution_from_dict,
)
from hpsearch.search.plan import AutoPlan, Rung, automatic_plan
from hpsearch.search.refine import (
    BorderWarning,
    RefinePolicy,
    TrialResult,
    keep_count,
    rank_results,
    refine,
)
from hpsearch.search.scheduler import (
    Action,
    FinishSearch,
    PromoteTrial,
    SampleTrial,
    SearchState,
    StartStage,
    TrialView,
    next_actions,
)
from hpsearch.search.space import (
    DEPTH,
    SHARED_WIDTH,
    Condition,
    Param,
    SearchSpace,
    grid_params,
    sample_params,
    train_seed,
)
from hpsearch.search.spec import (
    SearchSpec,
    StageSpec,
    load_search_spec,
    parse_search_spec,
    trial_config,
)

__all__ = [
    "DEPTH",
    "SHARED_WIDTH",
    "Action",
    "AutoPlan",
    "BorderWarning",
    "Choice",
    "Condition",
    "Distribution",
    "FinishSearch",
    "IntUniform",
    "LogInt",
    "LogUniform",
    "NumericDistribution",
    "Param",
    "PromoteTrial",
    "RefinePolicy",
    "Rung",
    "SampleTrial",
    "SearchSpace",
    "SearchSpec",
    "SearchState",
    "StageSpec",
    "StartStage",
    "TrialResult",
    "TrialView",
    "Uniform",
    "automatic_plan",
    "distribution_from_dict",
    "grid_params",
    "keep_count",
    "load_search_spec",
    "next_actions",
    "parse_search_spec",
    "rank_results",
    "refine",
    "sample_params",
    "train_seed",
    "trial_config",
]
