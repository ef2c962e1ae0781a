"""Gradient checking, as in the course: the analytic gradient beside central differences.

check_gradient()                        the course's debug problem (checkNNGradients)
check_gradient(X, y, layer_sizes, lam)  a few examples of real data
numerical_gradient(fun, theta)          central differences of any scalar function
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import dense
from ._inputs import prepare_examples
from ._layout import IDENTITY, layer_shapes, names_of, network, pack
from ._plan import evaluate
from ._values import check_lam, check_real, positive_number, prepare_theta

__all__ = ["THRESHOLD", "GradientCheck", "check_gradient", "numerical_gradient", "scaled_steps"]

# The course's gradient checker (checkNNGradients): 3 inputs, 5 hidden units, 3 classes, 5 examples.
DEBUG_LAYER_SIZES = (3, 5, 3)
DEBUG_EXAMPLES = 5
EPS = 1e-4  # the course's central-difference step
# A correct gradient checks at 1e-11 … 1e-8 (float64, steps of scaled_steps; the four bundled
# scikit-learn datasets, raw or standardized); the tests' wrong ones (1% off: 5e-3, without the
# regularization: 2e-2) far above: one threshold for every report, in the gap.
THRESHOLD = 1e-7


def numerical_gradient(
    fun: Callable[[np.ndarray], float], theta: Any, eps: Any = 1e-4
) -> np.ndarray:
    """Central differences of a scalar function: n_p = (f(θ + ε_p e_p) − f(θ − ε_p e_p)) / 2ε_p.

    ``fun`` takes an array of θ's shape and returns a real number (for a ``(J, grad)`` objective
    pass ``obj.fun``); it receives a read-only float64 array that changes between calls, so it
    must copy what it keeps. ``eps``: one step for every entry, or an array of θ's shape with a
    step per entry. ``theta`` is not modified. Returns a float64 array of θ's shape. Costs
    2·θ.size calls of ``fun``.
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {fun!r}")
    theta = np.asarray(theta)
    check_real(theta, "theta")
    steps = _steps(eps, theta.shape)
    work = np.array(theta, dtype=np.float64).ravel()
    view = work.reshape(theta.shape).view()
    view.flags.writeable = False
    grad = np.empty(work.shape[0])

    def value() -> float:
        out = fun(view)
        if isinstance(out, (tuple, list)) or np.ndim(out) != 0:
            raise TypeError(
                f"fun must return a scalar, got a {type(out).__name__} "
                "(for a (J, grad) objective pass obj.fun)"
            )
        return float(out)

    for p in range(work.shape[0]):
        old, step = work[p], steps[p]
        work[p] = old + step
        up = value()
        work[p] = old - step
        down = value()
        work[p] = old
        grad[p] = (up - down) / (2 * step)
    return grad.reshape(theta.shape)


def _steps(eps: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``eps`` as a flat float64 array of positive, finite steps, one per entry of θ."""
    if np.ndim(eps) == 0:
        return np.full(math.prod(shape), positive_number(eps, "eps"))
    steps = np.asarray(eps)
    check_real(steps, "eps")
    if steps.shape != shape:
        raise ValueError(
            f"eps must be a number or an array of theta's shape {shape}, got {steps.shape}"
        )
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise ValueError("eps must hold positive, finite steps")
    return steps.astype(np.float64).ravel()


def scaled_steps(X: np.ndarray, layer_sizes: tuple[int, ...], eps: float = EPS) -> np.ndarray:
    """One central-difference step per weight: ε / max(1, max_i |x_ij|) for a first-layer weight
    of input j, ε for every other weight (it multiplies 1 or a hidden unit's output: a sigmoid's
    lies in [0, 1], a tanh's in [−1, 1]; ReLU and identity units are not bounded, but stay of
    the inputs' size on the few examples a check uses).

    The truncation error of a central difference grows with the third derivative, and along a
    first-layer weight of input j that scales with |x_j|³: a fixed ε = 1e-4 on features in the
    thousands (unscaled data) gives relative differences near 1e-4 for a correct gradient. Scaled
    so, the check sees the same function as on features in [−1, 1].
    """
    steps = [np.full(shape, eps) for shape in layer_shapes(layer_sizes)]
    largest = np.abs(X).max(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    steps[0][:, 1:] = eps / np.maximum(1.0, largest)
    return pack(steps)


@dataclass(frozen=True, repr=False, eq=False)
class GradientCheck:
    """The analytic gradient of J beside central differences, as in the course's checker.

    ``relative_difference`` is ‖a − n‖₂ / ‖a + n‖₂ (0 when both are zero); ``passed`` is whether
    it is at most ``threshold`` (default :data:`THRESHOLD`, 1e-7: a correct gradient gives
    1e-11 … 1e-8 in float64). ``activation`` (one name per hidden layer) and ``output`` are the
    network's.
    """

    analytic: np.ndarray
    numerical: np.ndarray
    relative_difference: float
    layer_sizes: tuple[int, ...]
    lam: float
    m: int
    threshold: float = THRESHOLD
    activation: tuple[str, ...] = ()
    output: str = "sigmoid"

    def _network(self) -> str:
        """The network's functions for the report (", hidden tanh, output softmax"); nothing for
        the course's network, all sigmoid."""
        if set(self.activation) <= {"sigmoid"} and self.output == "sigmoid":
            return ""
        return f", hidden {'/'.join(self.activation) or '-'}, output {self.output}"

    @property
    def passed(self) -> bool:
        return self.relative_difference <= self.threshold

    def __str__(self) -> str:
        difference = np.abs(self.analytic - self.numerical)
        worst = int(np.argmax(difference))
        verdict = "passes" if self.passed else "FAILS"
        return (
            f"Gradient check: layers {self.layer_sizes}, λ = {self.lam:g}, m = {self.m}, "
            f"{self.analytic.size} parameters{self._network()}\n"
            f"  relative difference ‖a − n‖₂ / ‖a + n‖₂ = {self.relative_difference:.3e} "
            f"({verdict}: threshold {self.threshold:g})\n"
            f"  largest |a − n| = {difference[worst]:.3e} at θ[{worst}]: "
            f"analytic {self.analytic[worst]:.10g}, numerical {self.numerical[worst]:.10g}"
        )

    def __repr__(self) -> str:
        return (
            f"GradientCheck(relative_difference={self.relative_difference:.3e}, "
            f"passed={self.passed}, layer_sizes={self.layer_sizes}, lam={self.lam:g}, m={self.m}, "
            f"activation={self.activation}, output={self.output!r})"
        )


def _debug_values(n: int) -> np.ndarray:
    """sin(1), …, sin(n) divided by 10: the course's ``debugInitializeWeights`` values."""
    return np.sin(np.arange(1, n + 1, dtype=np.float64)) / 10


def _debug_problem(sizes: tuple[int, ...], output: int) -> tuple[np.ndarray, np.ndarray]:
    """The debug problem's X and y for a network: labels (1 … 5) mod K, or for the identity
    output float targets sin(1 … 5K)/10 unrolled column-major."""
    K = sizes[-1]
    X = _debug_values(DEBUG_EXAMPLES * sizes[0]).reshape((DEBUG_EXAMPLES, sizes[0]), order="F")
    if output == IDENTITY:
        return X, _debug_values(DEBUG_EXAMPLES * K).reshape((DEBUG_EXAMPLES, K), order="F")
    return X, np.arange(1, DEBUG_EXAMPLES + 1) % (2 if K == 1 else K)


def check_gradient(
    X: Any = None,
    y: Any = None,
    layer_sizes: Sequence[int] | None = None,
    lam: float = 0.0,
    theta: Any = None,
    *,
    threshold: float = THRESHOLD,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> GradientCheck:
    """Compare the backpropagation gradient of J with central differences, in float64.

    The step is the course's ε = 1e-4, divided for a first-layer weight by the largest |x_j| of
    the input it multiplies when that exceeds 1 (:func:`scaled_steps`), so that unscaled
    features do not make a correct gradient look wrong. ``threshold``: the largest relative
    difference that ``passed`` accepts.

    With no data, builds the course's debug problem (``checkNNGradients``): for ``layer_sizes``
    (default (3, 5, 3)) 5 examples with X = sin(1 … 5·s_1)/10 unrolled column-major and labels
    y = (1 … 5) mod K (for the identity output, float targets sin(1 … 5K)/10 alike).
    ``theta`` defaults to the debug weights sin(1 … n)/10 of every Θ^(l), unrolled column-major
    like the course's. With data, ``X``, ``y`` (as for :func:`fastbp.cost_and_grad`) and
    ``layer_sizes`` are all needed; every parameter costs two cost evaluations, so use a few
    examples of a large data set.

    ``activation``, ``output`` and ``sample_weight`` are those of :func:`fastbp.cost_and_grad`.
    With ReLU hidden units the check holds away from the kink at z = 0, where J has no
    derivative: a pre-activation within a step of 0 makes a central difference straddle the
    kink and average the two slopes, while backpropagation takes the slope of z > 0 or z ≤ 0.
    The debug problem's pre-activations are far from 0; on real data, with many examples or
    units, a failure of a ReLU network with ``relative_difference`` near the threshold is more
    likely that than a wrong gradient (check again at another θ or on other examples).
    """
    if (X is None) != (y is None):
        raise ValueError("X and y go together: pass both, or neither for the debug problem")
    if X is None:
        sizes, functions = network(
            DEBUG_LAYER_SIZES if layer_sizes is None else layer_sizes, activation, output
        )
        X, y = _debug_problem(sizes, functions[-1])
    elif layer_sizes is None:
        raise ValueError("layer_sizes is needed with X and y, e.g. (X.shape[1], 25, K)")
    else:
        sizes, functions = network(layer_sizes, activation, output)
    if theta is None:
        theta = pack(
            [_debug_values(r * c).reshape((r, c), order="F") for r, c in layer_shapes(sizes)]
        )
    lam = check_lam(lam)
    threshold = float(threshold)
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be finite and >= 0, got {threshold!r}")
    theta = prepare_theta(theta, sizes, np.dtype(np.float64))
    data = prepare_examples(X, y, sizes, functions=functions, sample_weight=sample_weight)
    data = data.converted(np.dtype(np.float64))
    analytic = evaluate(theta, data, lam, want_grad=True)[1]
    steps = scaled_steps(dense(data.X), sizes)
    numerical = numerical_gradient(
        lambda t: evaluate(t, data, lam, want_grad=False)[0], theta, steps
    )
    norm_sum = float(np.linalg.norm(analytic + numerical))
    norm_difference = float(np.linalg.norm(analytic - numerical))
    relative = norm_difference / norm_sum if norm_sum > 0 else norm_difference
    hidden, output_name = names_of(functions)
    return GradientCheck(
        analytic, numerical, relative, sizes, lam, data.m, threshold, hidden, output_name
    )
