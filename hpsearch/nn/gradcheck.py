"""Gradient checking as the notes describe it (part 3, "gradient checks").

* Centered differences (f(x+h) - f(x-h)) / 2h, in float64 only.
* Relative error |a - n| / max(|a|, |n|), 0 when both are 0, read in the
  notes' bands: > 1e-2 probably wrong; 1e-4..1e-2 uncomfortable; 1e-7..1e-4
  acceptable only for objectives with kinks; <= 1e-7 good.
* A random sample of coordinates from EVERY parameter array, biases included
  (never a sample of one concatenated vector, where biases would be missed).
* Kinks: the caller may pass `kink_detector`, a function of no arguments that
  returns the current "kink indicators" (for example the boolean masks
  `pre_activation > 0` of every ReLU and `margin > 0` of every hinge, or the
  winning piece of every maxout unit) as an array, or a tuple/list/dict of
  arrays. A coordinate crossed a kink when the indicators at x-h and at x+h
  differ. Such coordinates are reported (flag and count), and `passed` does
  not judge them; they are never dropped from the report.
* Dropout and other randomness: the caller's loss function re-creates its
  generator from a fixed seed on every evaluation
  (`rng = np.random.default_rng(seed)` inside f), so every evaluation, and the
  analytic pass, sees the same masks.
* Data loss and regularization are checked separately: the caller passes one
  function (and analytic gradients) for the data loss alone and one for the
  regularization loss alone to `check_data_and_regularization`, so a large
  regularization gradient cannot hide a wrong data gradient.

Loss functions take no arguments: they read the parameter arrays, which the
checker shifts in place (and restores) between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BANDS",
    "CoordinateCheck",
    "GradCheckReport",
    "check_data_and_regularization",
    "check_gradient",
    "error_band",
    "numerical_gradient",
    "relative_error",
]

LossFunction = Callable[[], float]
KinkDetector = Callable[[], Any]

BANDS = ("good", "ok_for_kinks", "uncomfortable", "probably_wrong")


def relative_error(analytic: float, numeric: float) -> float:
    """|a - n| / max(|a|, |n|); 0 when both are exactly 0."""
    scale = max(abs(analytic), abs(numeric))
    return 0.0 if scale == 0.0 else abs(analytic - numeric) / scale


def error_band(rel: float) -> str:
    """The notes' reading of a relative error, one of `BANDS`.

    "probably_wrong" > 1e-2 >= "uncomfortable" > 1e-4 >= "ok_for_kinks"
    (fine with kinks, too high for smooth functions) > 1e-7 >= "good".
    """
    if rel > 1e-2:
        return "probably_wrong"
    if rel > 1e-4:
        return "uncomfortable"
    if rel > 1e-7:
        return "ok_for_kinks"
    return "good"


def _same_indicators(first: Any, second: Any) -> bool:
    if isinstance(first, Mapping):
        return (
            isinstance(second, Mapping)
            and first.keys() == second.keys()
            and all(_same_indicators(first[key], second[key]) for key in first)
        )
    if isinstance(first, list | tuple):
        return (
            isinstance(second, list | tuple)
            and len(first) == len(second)
            and all(_same_indicators(a, b) for a, b in zip(first, second, strict=True))
        )
    return bool(np.array_equal(first, second))


def _centered_difference(
    f: LossFunction, x: np.ndarray, index: tuple[int, ...], h: float, kinks: KinkDetector | None
) -> tuple[float, bool]:
    """Numeric derivative along x[index] and whether a kink lies in [x-h, x+h]."""
    saved = x[index]
    try:
        x[index] = saved + h
        plus = float(f())
        plus_kinks = kinks() if kinks is not None else None
        x[index] = saved - h
        minus = float(f())
        minus_kinks = kinks() if kinks is not None else None
    finally:
        x[index] = saved
    crossed = kinks is not None and not _same_indicators(plus_kinks, minus_kinks)
    return (plus - minus) / (2 * h), crossed


def numerical_gradient(
    f: LossFunction, x: np.ndarray, index: tuple[int, ...], h: float = 1e-5
) -> float:
    """Centered difference (f(x+h) - f(x-h)) / 2h along coordinate x[index].

    f takes no arguments and reads x, which is shifted in place and restored.
    """
    return _centered_difference(f, x, index, h, None)[0]


@dataclass(frozen=True)
class CoordinateCheck:
    """One checked coordinate of one parameter array."""

    param: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    relative_error: float
    band: str
    kink_crossed: bool


@dataclass(frozen=True)
class GradCheckReport:
    """Every checked coordinate, with per-parameter summaries."""

    checks: tuple[CoordinateCheck, ...]

    @property
    def max_error(self) -> dict[str, float]:
        """Largest relative error per parameter over all checked coordinates."""
        worst: dict[str, float] = {}
        for check in self.checks:
            worst[check.param] = max(worst.get(check.param, 0.0), check.relative_error)
        return worst

    @property
    def max_error_without_kinks(self) -> dict[str, float]:
        """Largest relative error per parameter over coordinates that crossed no kink."""
        smooth = GradCheckReport(tuple(c for c in self.checks if not c.kink_crossed))
        return smooth.max_error

    @property
    def kinks_crossed(self) -> int:
        """How many checked coordinates had a kink between x-h and x+h."""
        return sum(check.kink_crossed for check in self.checks)

    def passed(self, threshold: float = 1e-7) -> bool:
        """True when every coordinate that crossed no kink has relative error <= threshold."""
        return all(c.relative_error <= threshold for c in self.checks if not c.kink_crossed)


def _validate(
    params: Mapping[str, np.ndarray],
    analytic_grads: Mapping[str, np.ndarray],
    samples_per_param: int,
    h: float,
) -> None:
    if not params:
        raise ValueError("params must hold at least one parameter array")
    for name, array in params.items():
        if not isinstance(array, np.ndarray) or array.dtype != np.float64:
            kind = getattr(array, "dtype", type(array).__name__)
            raise TypeError(
                f"params[{name!r}] must be a float64 array (check in double), got {kind}"
            )
        grad = analytic_grads.get(name)
        if grad is None or np.shape(grad) != array.shape:
            shape = None if grad is None else np.shape(grad)
            raise ValueError(f"analytic_grads[{name!r}] must have shape {array.shape}, got {shape}")
    if samples_per_param < 1:
        raise ValueError(f"samples_per_param must be >= 1, got {samples_per_param}")
    if not h > 0:
        raise ValueError(f"h must be positive, got {h}")


def check_gradient(
    f: LossFunction,
    params: Mapping[str, np.ndarray],
    analytic_grads: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    samples_per_param: int = 10,
    h: float = 1e-5,
    kink_detector: KinkDetector | None = None,
) -> GradCheckReport:
    """Compare analytic gradients with centered differences on sampled coordinates.

    Inputs: f() -> loss at the current values of `params` (float64 arrays, shifted
    in place and restored); analytic_grads with the same names and shapes,
    computed at the unshifted point; rng picks min(samples_per_param, size)
    distinct coordinates of every array; kink_detector as in the module doc.
    Returns: a GradCheckReport with one CoordinateCheck per sampled coordinate.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    _validate(params, analytic_grads, samples_per_param, h)
    checks = []
    for name, array in params.items():
        flat = rng.choice(array.size, size=min(samples_per_param, array.size), replace=False)
        for position in np.sort(flat):
            index = tuple(int(i) for i in np.unravel_index(position, array.shape))
            numeric, crossed = _centered_difference(f, array, index, h, kink_detector)
            analytic = float(analytic_grads[name][index])
            error = relative_error(analytic, numeric)
            checks.append(
                CoordinateCheck(name, index, analytic, numeric, error, error_band(error), crossed)
            )
    return GradCheckReport(tuple(checks))


def check_data_and_regularization(
    data_loss: LossFunction,
    data_grads: Mapping[str, np.ndarray],
    regularization_loss: LossFunction,
    regularization_grads: Mapping[str, np.ndarray],
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    **options: Any,
) -> dict[str, GradCheckReport]:
    """Check the data loss and the regularization loss each on its own.

    The caller passes the data loss without any regularization term and its
    gradients, and the regularization loss alone and its gradients (only the
    parameters it touches need entries; biases are usually absent). `options`
    go to `check_gradient`. Returns {"data": report, "regularization": report}.
    """
    unknown = sorted(set(regularization_grads) - set(params))
    if unknown:
        raise ValueError(f"regularization_grads names parameters not in params: {unknown}")
    regularized = {name: params[name] for name in regularization_grads}
    return {
        "data": check_gradient(data_loss, params, data_grads, rng, **options),
        "regularization": check_gradient(
            regularization_loss, regularized, regularization_grads, rng, **options
        ),
    }
