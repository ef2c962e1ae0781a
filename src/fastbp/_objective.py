"""The public objective: cost_and_grad, cost, hessp, Objective.

Each function validates and converts its arguments (``_values``, ``_inputs``), then runs the
kernels through ``_plan``; nothing here touches a kernel directly. The math is docs/design.md's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _threading
from ._inputs import Examples, prepare_examples
from ._layout import n_params, names_of, network
from ._plan import KernelCall, evaluate, hessian_product
from ._values import check_lam, default_compute_dtype, float_dtype, prepare_theta
from .kernels import KERNELS

__all__ = [
    "Objective",
    "ScipyObjective",
    "cost",
    "cost_and_grad",
    "hessp",
]


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

    The computation is :func:`fastbp.partial_sums` over all rows followed by :func:`fastbp.combine`; it runs
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


HESSIAN_KINDS = ("exact", "gauss-newton")


def hessp(
    theta: Any,
    v: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
    *,
    kind: str = "exact",
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> np.ndarray:
    """The Hessian of J at θ times v, exactly: H(θ)·v, for scipy's ``hessp=``.

    Pearlmutter's R-operator: a forward and a backward R-pass beside backpropagation's, in the
    same per-example loop (docs/design.md, "Hessian-vector products"), about 2-3 gradient calls
    of work and no m × s matrices. The regularization's (λ/m) v on non-bias weights is included.

    ``kind="gauss-newton"`` gives the Gauss-Newton product G·v instead, G = J_fᵀ H_ℓ J_f + the
    regularization's λ/m on non-bias weights (J_f the Jacobian of z^(L) in θ, H_ℓ the output
    cost's Hessian in z^(L)): positive semidefinite, so vᵀ G v ≥ 0, the usual choice for
    CG-based solvers on non-convex problems; about 1.5-2 gradient calls.

    v: (P,) laid out like θ, real and finite (a clear error names ``v`` otherwise); computed in
    θ's compute dtype and returned as a new array of it. Other arguments as
    :func:`cost_and_grad`; y must hold targets. ReLU's g'' is 0 away from its kink; at z = 0
    exactly g' is taken as 0 (as in the gradient) and g'' as 0: H·v is then the derivative of
    the gradient fastbp computes, from the side of z < 0. Bitwise the same for any number of
    threads, like the gradient.
    """
    theta, examples, lam = _checked(
        theta, X, y, layer_sizes, lam, activation, output, sample_weight
    )
    v = prepare_theta(v, examples.layer_sizes, theta.dtype, "v")
    return hessian_product(theta, v, examples, lam, check_kind(kind))


def check_kind(kind: Any, name: str = "kind") -> bool:
    """Whether ``kind`` (validated; ``name`` names it in the error) asks for the Gauss-Newton
    product."""
    if not isinstance(kind, str) or kind not in HESSIAN_KINDS:
        raise ValueError(f"{name} must be one of {HESSIAN_KINDS}, got {kind!r}")
    return bool(kind == "gauss-newton")


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

    def _hessp_at(self, theta: np.ndarray, v: np.ndarray, gauss_newton: bool) -> np.ndarray:
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

    def hessp(self, theta: Any, v: Any, kind: str = "exact") -> np.ndarray:
        """H(θ)·v, the Hessian of J times v (``kind="gauss-newton"``: G·v), as
        :func:`fastbp.hessp`: a new array of θ's float dtype. ``hessp=obj.hessp`` is scipy's
        argument for Newton-CG, trust-ncg, trust-krylov and trust-constr. Every call runs the
        forward pass again: keeping it per θ would grow memory with m
        (docs/decisions.md#hessp-reuse)."""
        gauss_newton = check_kind(kind)
        out_dtype = float_dtype(theta)
        theta = prepare_theta(theta, self._layer_sizes, self._dtype)
        v = prepare_theta(v, self._layer_sizes, self._dtype, "v")
        hv = self._hessp_at(theta, v, gauss_newton)
        return hv if hv.dtype == out_dtype else hv.astype(out_dtype)

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

    def _hessp_at(self, theta: np.ndarray, v: np.ndarray, gauss_newton: bool) -> np.ndarray:
        with _threading.threads(self._threads):
            call = self._call
            if call is None:
                return hessian_product(
                    theta, v, self._examples, self._lam, gauss_newton, self._kernel
                )
            hv = np.empty(call.n_params, self._dtype)
            call.hessp(theta, v, hv, gauss_newton, float(call.count), self._lam)
            return hv

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
