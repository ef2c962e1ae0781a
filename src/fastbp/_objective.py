"""Public wrappers: validate and convert once, call a compiled kernel, normalize and regularize.

Regularization lives here and only here (DESIGN.md):

    J = (1/m) Σ_i cost_i + (λ / 2m) Σ_l Σ_i Σ_{j≥1} (Θ^(l)_ij)²
    D^(l)_ij = Δ^(l)_ij / m + (λ/m) Θ^(l)_ij  (j ≥ 1),   D^(l)_i0 = Δ^(l)_i0 / m
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _kernels, _threading
from ._layout import n_params, unpack, validate_layer_sizes

__all__ = ["Objective", "cost", "cost_and_grad", "predict_proba"]

COMPUTE_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_CHECK_ROWS = 65536  # rows per chunk when scanning X and Y for NaN/inf (bounded extra memory)


@dataclass(frozen=True)
class _Data:
    """Validated, converted training data in one compute dtype; never written to."""

    X: np.ndarray  # (m, s_1), C-contiguous, compute dtype
    labels: np.ndarray  # (m,) int64, or (0,) when Y holds the targets
    Y: np.ndarray  # (m, K) compute dtype, or (0, K) when labels hold the targets
    sizes: np.ndarray  # (L,) int64
    layer_sizes: tuple[int, ...]

    @property
    def m(self) -> int:
        return self.X.shape[0]


def _check_real(a: np.ndarray, name: str) -> None:
    if a.dtype.kind not in "biuf":
        hint = " (take the real part first)" if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}{hint}")


def _check_finite_rows(a: np.ndarray, name: str) -> None:
    """Raise ValueError if a float array has NaN or inf; scans in row chunks (bounded memory)."""
    if a.dtype.kind != "f":
        return
    for start in range(0, a.shape[0], _CHECK_ROWS):
        chunk = a[start : start + _CHECK_ROWS]
        if not np.isfinite(chunk).all():
            bad = np.argwhere(~np.isfinite(chunk))[0]
            bad[0] += start
            raise ValueError(
                f"{name} must be finite, but {name}[{', '.join(map(str, bad))}] is {a[tuple(bad)]}"
            )


def _compute_dtype(dtype: Any, name: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in COMPUTE_DTYPES:
        raise TypeError(f"{name} must be float64 or float32, got {dtype}")
    return dtype


def _check_lam(lam: float) -> float:
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise TypeError(f"lam must be a real number, got {lam!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    return value


def _prepare_theta(theta: Any, layer_sizes: tuple[int, ...], dtype: np.dtype | None) -> np.ndarray:
    """θ as a 1-D contiguous array of the compute dtype (float32 stays float32, else float64)."""
    theta = np.asarray(theta)
    _check_real(theta, "theta")
    if theta.ndim != 1:
        raise ValueError(f"theta must be a 1-D vector, got shape {theta.shape}")
    expected = n_params(layer_sizes)
    if theta.shape[0] != expected:
        raise ValueError(
            f"theta has length {theta.shape[0]}, but layer_sizes {layer_sizes} imply "
            f"{expected} parameters"
        )
    if dtype is None:
        dtype = theta.dtype if theta.dtype in COMPUTE_DTYPES else np.dtype(np.float64)
    theta = np.ascontiguousarray(theta, dtype=dtype)
    if not np.isfinite(theta).all():
        raise ValueError(
            f"theta must be finite, but theta[{np.argmin(np.isfinite(theta))}] is "
            f"{theta[np.argmin(np.isfinite(theta))]}"
        )
    return theta


def _prepare_X(X: Any, layer_sizes: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """X validated against the network and C-contiguous in ``dtype`` (no copy if it already is)."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    _check_real(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (examples × features), got shape {X.shape}")
    m, width = X.shape
    if width != layer_sizes[0]:
        raise ValueError(
            f"X has {width} columns, but layer_sizes[0] = {layer_sizes[0]} input features"
        )
    if m == 0:
        raise ValueError("X has no rows: at least one example is needed")
    _check_finite_rows(X, "X")
    return np.ascontiguousarray(X, dtype=dtype)


def _prepare_data(X: Any, y: Any, layer_sizes: tuple[int, ...], dtype: np.dtype) -> _Data:
    """Validate X and y against the network and convert them to ``dtype`` (no copy if possible)."""
    X = _prepare_X(X, layer_sizes, dtype)
    m = X.shape[0]
    K = layer_sizes[-1]
    y = np.asarray(y)
    _check_real(y, "y")
    if y.shape[:1] != (m,):
        raise ValueError(
            f"y must have one entry per example: expected length {m}, got shape {y.shape}"
        )
    no_labels = np.zeros(0, np.int64)
    if y.ndim == 1 and (y.dtype.kind in "biu"):
        labels = np.ascontiguousarray(y, dtype=np.int64)
        lo, hi = int(labels.min()), int(labels.max())
        top = 1 if K == 1 else K - 1
        if lo < 0 or hi > top:
            what = "0 or 1 (one output unit)" if K == 1 else f"0 … {K - 1} (K = {K} outputs)"
            raise ValueError(f"labels y must be in {what}, got values from {lo} to {hi}")
        return _Data(X, labels, np.zeros((0, K), dtype), _sizes(layer_sizes), layer_sizes)
    if y.ndim == 1:
        if K != 1:
            raise TypeError(
                f"y of shape ({m},) must hold integer labels 0 … {K - 1}, got dtype {y.dtype}; "
                f"convert with y.astype(int), or pass float targets of shape ({m}, {K})"
            )
        y = y.reshape(m, 1)
    if y.ndim != 2 or y.shape[1] != K:
        raise ValueError(
            f"float targets y must have shape (m, K) = ({m}, {K}), got shape {y.shape}"
        )
    _check_finite_rows(y, "y")
    Y = np.ascontiguousarray(y, dtype=dtype)
    if Y.min() < 0 or Y.max() > 1:
        raise ValueError(
            f"float targets y must lie in [0, 1], got values from {Y.min()} to {Y.max()}"
        )
    return _Data(X, no_labels, Y, _sizes(layer_sizes), layer_sizes)


def _sizes(layer_sizes: tuple[int, ...]) -> np.ndarray:
    sizes = np.array(layer_sizes, dtype=np.int64)
    sizes.setflags(write=False)
    return sizes


def _run_kernel(theta: np.ndarray, data: _Data, Delta: np.ndarray, proba: np.ndarray) -> float:
    """The one call site of the compiled kernels: parallel over blocks where that is allowed.

    The serial kernel runs the same blocks, so the choice never changes the result.
    """
    layout = _padded_layout(data.layer_sizes, theta.dtype)
    n_blocks = _kernels.block_count(data.m, data.layer_sizes, theta.dtype)
    args = (theta, data.sizes, layout, data.X, data.labels, data.Y, Delta, proba, n_blocks)
    if n_blocks == 1 or not _threading.parallel_allowed():
        return _kernels.kernel(theta.dtype, parallel=False)(*args)  # same blocks, same bits
    compiled = _kernels.kernel(theta.dtype, parallel=True)
    with _threading.launching():
        return compiled(*args)


@functools.lru_cache(maxsize=64)
def _padded_layout(layer_sizes: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    layout = _kernels.padded_layout(layer_sizes, dtype)
    layout.setflags(write=False)
    return layout


def _sums(theta: np.ndarray, data: _Data, want_grad: bool) -> tuple[float, np.ndarray]:
    """Σ_i cost_i and Σ_i Δ_i (unnormalized, unregularized) through the compiled kernels."""
    Delta = np.empty(theta.shape[0] if want_grad else 0, theta.dtype)
    no_proba = np.zeros((0, data.layer_sizes[-1]), theta.dtype)
    return _run_kernel(theta, data, Delta, no_proba), Delta


def predict_proba(theta: Any, X: Any, layer_sizes: Sequence[int]) -> np.ndarray:
    """h_Θ(x) for every row of X: an (m, K) array of output activations, in θ's dtype.

    A forward pass only, through the same compiled kernels (parallel over blocks of examples);
    no m × s_l matrix is built beyond the (m, K) result.
    """
    sizes = validate_layer_sizes(layer_sizes)
    theta = _prepare_theta(theta, sizes, None)
    X = _prepare_X(X, sizes, theta.dtype)
    K = sizes[-1]
    data = _Data(X, np.zeros(0, np.int64), np.zeros((0, K), theta.dtype), _sizes(sizes), sizes)
    proba = np.empty((X.shape[0], K), theta.dtype)
    _run_kernel(theta, data, np.empty(0, theta.dtype), proba)
    return proba


def _penalty(theta: np.ndarray, layer_sizes: tuple[int, ...]) -> float:
    """Σ_l Σ_i Σ_{j≥1} (Θ^(l)_ij)², accumulated in float64."""
    return float(
        sum(np.square(W[:, 1:], dtype=np.float64).sum() for W in unpack(theta, layer_sizes))
    )


def _evaluate(
    theta: np.ndarray, data: _Data, lam: float, want_grad: bool
) -> tuple[float, np.ndarray]:
    """(J, D) of DESIGN.md; D is a new array in θ's dtype (empty when not want_grad)."""
    total, grad = _sums(theta, data, want_grad)
    m = data.m
    J = total / m
    if lam:
        J += lam / (2 * m) * _penalty(theta, data.layer_sizes)
    if want_grad:
        grad *= grad.dtype.type(1.0 / m)
        if lam:
            scale = grad.dtype.type(lam / m)
            for D, W in zip(
                unpack(grad, data.layer_sizes), unpack(theta, data.layer_sizes), strict=True
            ):
                D[:, 1:] += scale * W[:, 1:]
    return float(J), grad


def cost_and_grad(
    theta: Any, X: Any, y: Any, layer_sizes: Sequence[int], lam: float = 0.0
) -> tuple[float, np.ndarray]:
    """Cost J(θ) and its exact gradient D = ∂J/∂θ by per-example backpropagation.

    Parameters
    ----------
    theta : (P,) array
        Flat weights Θ^(1), …, Θ^(L−1), each row-major (see :func:`fastbp.pack`). Its dtype is the
        compute dtype: float32 stays float32, anything else is computed in float64.
    X : (m, s_1) array
        One example per row. Used without a copy when it is C-contiguous in θ's dtype; converted
        otherwise (integer and bool X included). May be read-only or memory-mapped.
    y : (m,) integer labels in 0 … K−1, or (m, K) float targets in [0, 1]
        With one output unit (K = 1), labels are 0 or 1 and a float (m,) vector is accepted.
    layer_sizes : sequence of int
        ``(s_1, …, s_L)``, at least two entries.
    lam : float
        λ ≥ 0. The penalty is ``λ/(2m) Σ Θ²`` over non-bias weights; the course notes' λ (penalty
        ``(λ/2) Σ Θ²``, gradient term ``λΘ``) equals ``lam / m`` here.

    Returns
    -------
    J : float
    grad : (P,) new array of θ's compute dtype, laid out like θ.

    The computation runs the compiled kernels of :mod:`fastbp._kernels`; its result is bitwise the
    same whatever the number of threads.
    """
    sizes = validate_layer_sizes(layer_sizes)
    lam = _check_lam(lam)
    theta = _prepare_theta(theta, sizes, None)
    return _evaluate(theta, _prepare_data(X, y, sizes, theta.dtype), lam, want_grad=True)


def cost(theta: Any, X: Any, y: Any, layer_sizes: Sequence[int], lam: float = 0.0) -> float:
    """Cost J(θ) alone (forward pass only); arguments as :func:`cost_and_grad`."""
    sizes = validate_layer_sizes(layer_sizes)
    lam = _check_lam(lam)
    theta = _prepare_theta(theta, sizes, None)
    return _evaluate(theta, _prepare_data(X, y, sizes, theta.dtype), lam, want_grad=False)[0]


class Objective:
    """``f(θ) -> (J, grad)`` for ``scipy.optimize.minimize(obj, theta0, jac=True)``.

    X and y are validated and converted once, to the compute dtype: ``dtype`` if given, else X's
    dtype when it is float32 or float64, else float64. ``obj(theta)`` accepts θ of either float
    dtype, computes in the compute dtype, and returns ``(J, grad)`` with J a Python float and grad
    a fresh array in θ's dtype. ``obj.fun(theta)`` and ``obj.jac(theta)`` share one computation
    when called with the same θ (for optimizers that ask for them separately).

    Calls are pure: they change no state a caller can observe, and concurrent calls from several
    threads are safe and give the same results as serial calls. An Objective pickles (for
    spawn-based process pools); the pickle carries a copy of X and y.

    Parameters
    ----------
    X, y, layer_sizes, lam
        As :func:`cost_and_grad`.
    dtype : float64 or float32, optional
        The compute dtype.
    """

    def __init__(
        self, X: Any, y: Any, layer_sizes: Sequence[int], lam: float = 0.0, dtype: Any = None
    ) -> None:
        sizes = validate_layer_sizes(layer_sizes)
        if dtype is None:
            x_dtype = getattr(X, "dtype", None)
            dtype = x_dtype if x_dtype in COMPUTE_DTYPES else np.float64
        self._dtype = _compute_dtype(dtype, "dtype")
        self._lam = _check_lam(lam)
        self._data = _prepare_data(X, y, sizes, self._dtype)
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self._data.layer_sizes

    @property
    def n_params(self) -> int:
        return n_params(self._data.layer_sizes)

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype."""
        return self._dtype

    @property
    def lam(self) -> float:
        return self._lam

    @property
    def m(self) -> int:
        """Number of training examples."""
        return self._data.m

    def __call__(self, theta: Any) -> tuple[float, np.ndarray]:
        """Return ``(J, grad)`` at θ; grad is a new array of θ's float dtype."""
        J, grad, out_dtype = self._compute(theta)
        return J, grad.astype(out_dtype, copy=True)

    def fun(self, theta: Any) -> float:
        """J(θ); computes the gradient too and keeps it for a following ``jac`` at the same θ."""
        return self._compute(theta)[0]

    def jac(self, theta: Any) -> np.ndarray:
        """∂J/∂θ as a new array of θ's float dtype; reuses the computation of ``fun`` at that θ."""
        _, grad, out_dtype = self._compute(theta)
        return grad.astype(out_dtype, copy=True)

    def _compute(self, theta: Any) -> tuple[float, np.ndarray, np.dtype]:
        theta = np.asarray(theta)
        out_dtype = theta.dtype if theta.dtype in COMPUTE_DTYPES else np.dtype(np.float64)
        last = self._last  # one read: another thread may replace it meanwhile
        if (
            last is not None
            and last[0].shape == theta.shape
            and last[0].dtype == theta.dtype
            and np.array_equal(last[0], theta)
        ):
            return last[1], last[2], out_dtype
        converted = _prepare_theta(theta, self.layer_sizes, self._dtype)
        J, grad = _evaluate(converted, self._data, self._lam, want_grad=True)
        grad.setflags(write=False)
        self._last = (theta.copy(), J, grad)
        return J, grad, out_dtype

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_last"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"Objective(m={self.m}, layer_sizes={self.layer_sizes}, lam={self._lam}, "
            f"dtype={self._dtype})"
        )
