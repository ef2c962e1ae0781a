"""The public objective: cost_and_grad, cost, partial_sums, combine, predict_proba, Objective.

Each function validates and converts its arguments (``_inputs``), then runs the kernels through
``_plan``; nothing here touches a kernel directly. The math is docs/design.md's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _threading
from ._inputs import (
    Examples,
    check_lam,
    default_compute_dtype,
    float_dtype,
    prepare_examples,
    prepare_theta,
)
from ._layout import n_params, names_of, network, validate_layer_sizes
from ._plan import KernelCall, evaluate, forward, normalized, sums
from .kernels import KERNELS

__all__ = [
    "Objective",
    "ScipyObjective",
    "combine",
    "cost",
    "cost_and_grad",
    "partial_sums",
    "predict_proba",
]


def partial_sums(
    theta: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> tuple[float, np.ndarray, float]:
    """Unnormalized sums over a slice of the examples, for :func:`combine`.

    Returns ``(cost_sum, Delta, count)``: cost_sum = Σ_i s_i cost_i over the rows of X (the
    output's cost, unnormalized), Delta = Σ_i Δ_i, the backpropagation sums laid out like θ
    (float64 whatever θ's dtype, so that partial sums add without further rounding), and count
    = the number of rows (an int), or with ``sample_weight`` the slice's S = Σ_i s_i (a float).
    No regularization and no division: results for any split of the examples into slices,
    computed anywhere, add up to those of the whole set.

    Arguments as :func:`cost_and_grad`; X, y and the weights may be memory-mapped (streamed).
    """
    sizes, functions = network(layer_sizes, activation, output)
    theta = prepare_theta(theta, sizes, None)
    examples = prepare_examples(X, y, sizes, functions=functions, sample_weight=sample_weight)
    cost_sum, Delta = sums(theta, examples, want_grad=True)
    Delta = Delta.astype(np.float64, copy=False)  # float32 → float64: exact
    return cost_sum, Delta, examples.count(theta.dtype)


def combine(
    partials: Iterable[tuple[float, Any, int]],
    theta: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
) -> tuple[float, np.ndarray]:
    """``(J, grad)`` from the :func:`partial_sums` of slices that together hold every example.

    The partials are added in the order given (Delta in float64), then normalized by the total
    count m (S = Σ s_i with sample weights) and regularized once: J = Σ cost_sum / m + (λ/2m)
    Σ non-bias Θ², grad = Σ Delta / m + (λ/m) Θ on non-bias weights, returned in θ's dtype.
    ``combine([partial_sums(θ, X, y, s)], θ, s, lam)`` is bitwise ``cost_and_grad(θ, X, y, s,
    lam)`` (with the same keyword arguments to both); for several slices the result differs
    from it only by the rounding of the added partials. The activations and the output are in
    the partials already: ``combine`` needs only the layer sizes.
    """
    sizes = validate_layer_sizes(layer_sizes)
    lam = check_lam(lam)
    theta = prepare_theta(theta, sizes, None)
    P = theta.shape[0]
    cost_sum = 0.0
    Delta_sum = np.zeros(P, np.float64)
    m: float = 0
    i = -1
    for i, partial in enumerate(partials):
        try:
            part_cost, part_Delta, count = partial
            part_cost = float(part_cost)
        except (TypeError, ValueError):
            raise TypeError(
                f"partials[{i}] must be a (cost_sum, Delta, count) triple from partial_sums, "
                f"got {type(partial).__name__}"
            ) from None
        part_Delta = np.asarray(part_Delta)
        if part_Delta.shape != (P,) or part_Delta.dtype.kind != "f":
            raise ValueError(
                f"partials[{i}]: Delta must be a float vector of length {P} (like theta), "
                f"got shape {part_Delta.shape} and dtype {part_Delta.dtype}"
            )
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, float, np.number)):
            raise TypeError(
                f"partials[{i}]: count must be a number of rows or a sum of sample weights, "
                f"got {count!r}"
            )
        least = 1 if isinstance(count, (int, np.integer)) else 0  # rows, or a sum of weights
        if not (math.isfinite(count) and count >= least and math.isfinite(part_cost)):
            raise ValueError(
                f"partials[{i}]: count must be >= {least} and finite, and cost_sum finite, got "
                f"{count} and {part_cost}"
            )
        cost_sum += part_cost
        Delta_sum += part_Delta
        m += count
    if i < 0:
        raise ValueError("partials is empty: at least one (cost_sum, Delta, count) is needed")
    if m <= 0:
        raise ValueError("the partials' counts add up to 0: no example has a positive weight")
    return normalized(theta, cost_sum, Delta_sum, m, lam, sizes)


def predict_proba(
    theta: Any,
    X: Any,
    layer_sizes: Sequence[int],
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
) -> np.ndarray:
    """h_Θ(x) for every row of X: an (m, K) array of the output's values, in θ's dtype: g(z)
    for sigmoid outputs, softmax(z) (rows summing to 1), or z for the identity output.

    A forward pass only, through the same compiled kernels (parallel over blocks of examples);
    X may be memory-mapped (it is streamed); no m × s_l matrix is built beyond the (m, K) result.
    """
    sizes, functions = network(layer_sizes, activation, output)
    theta = prepare_theta(theta, sizes, None)
    return forward(theta, prepare_examples(X, None, sizes, targets=False, functions=functions))


def cost_and_grad(
    theta: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> tuple[float, np.ndarray]:
    """Cost J(θ) and its exact gradient D = ∂J/∂θ by per-example backpropagation.

    Parameters
    ----------
    theta : (P,) array
        Flat weights Θ^(1), …, Θ^(L−1), each row-major (see :func:`fastbp.pack`). Its dtype is the
        compute dtype: float32 stays float32, anything else is computed in float64.
    X : (m, s_1) array
        One example per row; may be read-only or memory-mapped (``numpy.memmap``, ``np.load(...,
        mmap_mode="r")``). C-contiguous in θ's dtype (and y in its layout), it is used as it is,
        in one kernel call, without a copy; otherwise (integer and bool X included) it is
        converted and run chunk by chunk, so extra memory never grows with m.
    y : (m,) integer labels in 0 … K−1, or (m, K) float targets
        Float targets lie in [0, 1] for the sigmoid output, are probability rows (summing to 1)
        for softmax, and are any finite numbers for the identity output, which takes no labels.
        With one output unit (K = 1), labels are 0 or 1 and a float (m,) vector is accepted.
        Streamed like X.
    layer_sizes : sequence of int
        ``(s_1, …, s_L)``, at least two entries.
    lam : float
        λ ≥ 0. The penalty is ``λ/(2m) Σ Θ²`` over non-bias weights; the course notes' λ (penalty
        ``(λ/2) Σ Θ²``, gradient term ``λΘ``) equals ``lam / m`` here.
    activation : "sigmoid" (default), "tanh", "relu" or "identity", or one name per hidden layer
        g of the hidden layers; g' is computed from a = g(z): a(1 − a), 1 − a², [a > 0], 1.
    output : "sigmoid" (default), "softmax" or "identity"
        The output and its cost (docs/design.md): sigmoid units with the cross-entropy
        ``Σ_k softplus(z_k) − y_k z_k``; softmax with the categorical cross-entropy
        ``Σ_k y_k (logsumexp(z) − z_k)`` (K ≥ 2); linear units with the squared error
        ``½ Σ_k (z_k − y_k)²``. Each gives δ^(L) = h − y.
    sample_weight : (m,) array, optional
        Weights s_i ≥ 0, finite, not all zero: J = (1/S) Σ_i s_i cost_i + (λ/2S) Σ Θ² with
        S = Σ_i s_i, the gradient to match (scikit-learn's definition). Integer weights equal
        repeating rows; all ones gives the unweighted result.

    Returns
    -------
    J : float
    grad : (P,) new array of θ's compute dtype, laid out like θ.

    The computation is :func:`partial_sums` over all rows followed by :func:`combine`; it runs
    the compiled kernels of :mod:`fastbp.kernels`, and its result is bitwise the same whatever
    the number of threads, and the same for data in memory and in a file stored alike.
    """
    theta, examples, lam = _checked(
        theta, X, y, layer_sizes, lam, activation, output, sample_weight
    )
    return evaluate(theta, examples, lam, want_grad=True)


def cost(
    theta: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> float:
    """Cost J(θ) alone (forward pass only); arguments as :func:`cost_and_grad`."""
    theta, examples, lam = _checked(
        theta, X, y, layer_sizes, lam, activation, output, sample_weight
    )
    return evaluate(theta, examples, lam, want_grad=False)[0]


def _checked(
    theta: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    lam: float,
    activation: Any,
    output: Any,
    sample_weight: Any,
) -> tuple[np.ndarray, Examples, float]:
    """θ, the examples and λ of :func:`cost_and_grad` and :func:`cost`, validated."""
    sizes, functions = network(layer_sizes, activation, output)
    lam = check_lam(lam)
    theta = prepare_theta(theta, sizes, None)
    examples = prepare_examples(X, y, sizes, functions=functions, sample_weight=sample_weight)
    return theta, examples, lam


class ScipyObjective:
    """``obj(θ) -> (J, grad)``, ``obj.fun`` and ``obj.jac`` over one evaluation per θ.

    Subclasses (:class:`Objective`, ``fastbp.dask.DaskObjective``) set ``_layer_sizes``,
    ``_functions`` (the codes of g), ``_dtype`` (the compute dtype) and ``_lam`` and implement
    ``_evaluate_at(theta)`` for a θ already in the compute dtype and of the right length; the
    kernels return NaN for a θ that is not finite, and the slow path then names the entry.
    """

    _layer_sizes: tuple[int, ...]
    _functions: tuple[int, ...]
    _dtype: np.dtype
    _lam: float
    _last: tuple[np.ndarray, float, np.ndarray] | None = None

    def _evaluate_at(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self._layer_sizes

    @property
    def activation(self) -> tuple[str, ...]:
        """The hidden layers' activations, one name per hidden layer."""
        return names_of(self._functions)[0]

    @property
    def output(self) -> str:
        return names_of(self._functions)[1]

    @functools.cached_property
    def n_params(self) -> int:
        return n_params(self._layer_sizes)

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype."""
        return self._dtype

    @property
    def lam(self) -> float:
        return self._lam

    def __call__(self, theta: Any) -> tuple[float, np.ndarray]:
        """Return ``(J, grad)`` at θ; grad is a new array of θ's float dtype (float64 for any
        other θ, a list included)."""
        if (
            type(theta) is np.ndarray
            and theta.dtype == self._dtype
            and theta.shape == (self.n_params,)
            and theta.flags.c_contiguous
        ):  # θ in the compute dtype: straight to the kernels, which check that it is finite
            J, grad = self._evaluate_at(theta)
            if math.isnan(J):
                prepare_theta(theta, self._layer_sizes, self._dtype)  # raises, naming the entry
            return J, grad
        J, grad = self._evaluate_checked(theta)
        dtype = float_dtype(theta)
        return J, grad if grad.dtype == dtype else grad.astype(dtype)

    def fun(self, theta: Any) -> float:
        """J(θ); computes the gradient too and keeps it for a following ``jac`` at the same θ."""
        return self._compute(theta)[0]

    def jac(self, theta: Any) -> np.ndarray:
        """∂J/∂θ as a new array of θ's float dtype; reuses the computation of ``fun`` at that θ."""
        _, grad, out_dtype = self._compute(theta)
        return grad.astype(out_dtype, copy=True)

    def _evaluate_checked(self, theta: Any) -> tuple[float, np.ndarray]:
        """(J, grad) for any θ: validated and converted to the compute dtype first."""
        theta = prepare_theta(theta, self._layer_sizes, self._dtype)
        return self._evaluate_at(theta)

    def _compute(self, theta: Any) -> tuple[float, np.ndarray, np.dtype]:
        theta = np.asarray(theta)
        out_dtype = float_dtype(theta)
        last = self._last  # one read: another thread may replace it meanwhile
        if (
            last is not None
            and last[0].shape == theta.shape
            and last[0].dtype == theta.dtype
            and np.array_equal(last[0], theta)
        ):
            return last[1], last[2], out_dtype
        J, grad = self._evaluate_checked(theta)
        grad.setflags(write=False)
        self._last = (theta.copy(), J, grad)
        return J, grad, out_dtype


class Objective(ScipyObjective):
    """``f(θ) -> (J, grad)`` for ``scipy.optimize.minimize(obj, theta0, jac=True)``.

    X and y are validated once. The compute dtype is ``dtype`` if given, else X's dtype when it is
    float32 or float64, else float64. In-memory X and y not already in the compute dtype and C
    order are converted once (a copy); memory-mapped X and y are never copied whole: every call
    streams them, converting chunk by chunk when needed, so extra memory stays bounded by the
    parameter count times the block count, never by m.

    ``obj(theta)`` accepts θ of either float dtype, computes in the compute dtype, and returns
    ``(J, grad)`` with J a Python float and grad a fresh array in θ's dtype. ``obj.fun(theta)``
    and ``obj.jac(theta)`` share one computation when called with the same θ (for optimizers that
    ask for them separately).

    Calls are pure: they change no state a caller can observe, and concurrent calls from several
    threads are safe and give the same results as serial calls. An Objective pickles (for
    spawn-based process pools); the pickle carries a copy of X and y (all of a memory-mapped X).

    Parameters
    ----------
    X, y, layer_sizes, lam
        As :func:`cost_and_grad`.
    dtype : float64 or float32, optional
        The compute dtype.
    threads : int, optional
        The number of threads of this objective's calls (default: numba's current count in the
        calling thread); set for each call and restored afterwards (see :func:`fastbp.threads`).
    kernel : "auto", "tiled" or "literal"
        ``"tiled"`` is the fast path. ``"literal"`` runs the seed's loop one example at a time,
        line by line as docs/design.md writes it, serially: the readable algorithm, to check
        against or to read; it agrees with the tiled kernel to rounding (1e-12 in float64).
        ``"auto"`` (default) is the tiled kernel, except on toy problems (m × n_params ≤ 256,
        such as XOR), where the literal loop's smaller fixed cost makes it the faster of the two.
    activation, output, sample_weight
        As :func:`cost_and_grad`; the weights are validated and converted once, like y.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        layer_sizes: Sequence[int],
        lam: float = 0.0,
        dtype: Any = None,
        *,
        threads: int | None = None,
        kernel: str = "auto",
        activation: str | Sequence[str] = "sigmoid",
        output: str = "sigmoid",
        sample_weight: Any = None,
    ) -> None:
        sizes, self._functions = network(layer_sizes, activation, output)
        self._layer_sizes = sizes
        self._dtype = default_compute_dtype(X, dtype)
        self._lam = check_lam(lam)
        self._threads = None if threads is None else _threading.check_thread_count(threads)
        if kernel not in ("auto", *KERNELS):
            raise ValueError(f"kernel must be one of {('auto', *KERNELS)}, got {kernel!r}")
        self._kernel = kernel
        examples = prepare_examples(
            X, y, sizes, functions=self._functions, sample_weight=sample_weight
        )
        self._examples = examples.converted(self._dtype)

    @property
    def m(self) -> int:
        """Number of training examples."""
        return self._examples.m

    @property
    def kernel(self) -> str:
        return self._kernel

    @property
    def threads(self) -> int | None:
        return self._threads

    @functools.cached_property
    def _call(self) -> KernelCall | None:
        """The kernel call on all the examples, when they are one chunk (in memory), else None."""
        whole = self._examples.whole(self._dtype)
        return None if whole is None else KernelCall(whole, self._dtype, self._kernel)

    def _evaluate_at(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        call = self._call
        if call is not None and (call.n_blocks == 1 or self._threads is None):
            return call.evaluate(theta, self._lam)  # no thread count to set
        with _threading.threads(self._threads):
            if call is not None:
                return call.evaluate(theta, self._lam)
            return evaluate(theta, self._examples, self._lam, True, self._kernel)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_last"] = None
        state.pop("_call", None)  # holds another view of the data: built again on first use
        return state

    def __repr__(self) -> str:
        return (
            f"Objective(m={self.m}, layer_sizes={self.layer_sizes}, lam={self._lam}, "
            f"activation={self.activation}, output={self.output!r}, "
            f"dtype={self._dtype}, threads={self._threads}, kernel={self._kernel!r})"
        )
