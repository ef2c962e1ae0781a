"""From validated examples to compiled code: the one path every evaluation takes.

A :class:`KernelCall` is one kernel call on one chunk of examples with everything but θ bound
once: the kernel (``"auto"`` resolved), the block count, the layer table and the data. An
:class:`fastbp.Objective` builds one for its data and keeps it; the functions below build one per
chunk. Both then call :meth:`KernelCall.sums` (or :meth:`KernelCall.hessp` for H·v), which
picks the serial or parallel entry point.

The objective is a sum over examples, computed in two steps that can run apart
(docs/design.md, "Partial sums"):

    partial sums over a subset S of the examples:  c_S = Σ_{i∈S} cost_i,  Δ_S = Σ_{i∈S} Δ_i
    combination:  J = (1/m) Σ_S c_S + (λ/2m) Σ non-bias Θ²,  D = Σ_S Δ_S / m + (λ/m) Θ

Data that is one chunk takes one kernel call, which normalizes too, in the same float64 steps
(the kernels end with the same compiled ``normalize``): bitwise the result of the two steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _threading, kernels
from ._inputs import Chunk, Examples, chunk_rows, prepare_examples
from ._layout import THETA, n_params

__all__ = [
    "KernelCall",
    "evaluate",
    "forward",
    "hessian_product",
    "hessian_sums",
    "load_kernels",
    "normalized",
    "sums",
]

# kernel="auto" runs the literal loop where m × P is at most this: there its ~1 µs of work beats
# the tiled kernel's fixed ~3.5 µs (docs/decisions.md#literal-max-work).
LITERAL_MAX_WORK = 256


class KernelCall:
    """One kernel call on ``chunk``, everything but θ and the outputs bound once: the lookups
    were most of a toy problem's time (docs/decisions.md#bound-serial).

    ``kernel``: "tiled", "literal" or "auto" (the literal loop when m × P ≤ ``LITERAL_MAX_WORK``,
    a choice that depends on m and the network only). The compiled entry points load on first
    use. The serial entry point runs the same blocks as the parallel one, so the choice between
    them (one block, one thread, a forked child that must not launch threads) never changes a bit.
    """

    def __init__(self, chunk: Chunk, dtype: np.dtype, kernel: str = "auto") -> None:
        sizes = chunk.layer_sizes
        layers = kernels.padded_table(sizes, dtype, chunk.functions)
        self.m = chunk.X.shape[0]
        self.n_params = int(layers[-1, THETA])
        if kernel == "auto":
            kernel = "literal" if self.m * self.n_params <= LITERAL_MAX_WORK else "tiled"
        self.kernel = kernel
        self.dtype = dtype
        self.n_blocks = kernels.block_count(self.m, sizes, dtype) if kernel == "tiled" else 1
        self.no_proba = np.zeros((0, sizes[-1]), dtype)
        self._data = (layers, chunk.X, chunk.labels, chunk.Y, chunk.weights)
        self.count = chunk.count  # m, or S = Σ s_i with sample weights
        self._blocks = (self.n_blocks,) if kernel == "tiled" else ()
        self._compiled: dict[tuple[bool, str], Any] = {}

    def _kernel(self, what: str) -> tuple[Any, bool]:
        """The compiled entry point of ``what`` ("sums", "hessp"), and whether it is parallel."""
        parallel = self.n_blocks > 1 and _threading.parallel_allowed()
        compiled = self._compiled.get((parallel, what))
        if compiled is None:
            compiled = kernels.kernel(self.dtype, parallel, self.kernel, what)
            self._compiled[parallel, what] = compiled
        return compiled, parallel

    def sums(
        self,
        theta: np.ndarray,
        grad: np.ndarray,
        proba: np.ndarray,
        m: float = 1.0,
        lam: float = 0.0,
    ) -> tuple[float, float]:
        """(Σ s_i cost_i, penalty (λ/2m) Σ Θ²), grad = Σ Δ / m + (λ/m) Θ written (when it has a
        length) and h_Θ(x) into proba (when it has rows). m = 1, λ = 0 give the plain sums,
        exactly.
        (NaN, NaN) when θ is not finite (the kernels check every weight)."""
        compiled, parallel = self._kernel("sums")
        args = (theta, *self._data, grad, proba, *self._blocks, m, lam)
        if parallel:
            return _threading.launch(compiled, *args)  # type: ignore[no-any-return]
        return compiled(*args)  # type: ignore[no-any-return]

    def hessp(
        self,
        theta: np.ndarray,
        v: np.ndarray,
        hv: np.ndarray,
        gauss_newton: bool,
        m: float = 1.0,
        lam: float = 0.0,
    ) -> float:
        """Σ s_i cost_i, and hv = R{Δ} / m + (λ/m) V written: H·V (G·V with ``gauss_newton``)
        over the chunk; m = 1, λ = 0 give the plain sums R{Δ}, exactly. NaN when θ or V is not
        finite."""
        compiled, parallel = self._kernel("hessp")
        args = (theta, v, *self._data, hv, gauss_newton, *self._blocks, m, lam)
        if parallel:
            return _threading.launch(compiled, *args)  # type: ignore[no-any-return]
        return compiled(*args)  # type: ignore[no-any-return]

    def evaluate(
        self, theta: np.ndarray, lam: float, want_grad: bool = True
    ) -> tuple[float, np.ndarray]:
        """(J, D) over the chunk's examples: a new gradient, normalized by S = Σ s_i (m without
        sample weights) and regularized (empty when not ``want_grad``: the forward pass and the
        cost only)."""
        grad = np.empty(self.n_params if want_grad else 0, self.dtype)
        S = float(self.count)
        cost_sum, penalty = self.sums(theta, grad, self.no_proba, S, lam)
        return cost_sum / S + penalty, grad

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_compiled": {}}  # compiled code is loaded again on first use


def sums(
    theta: np.ndarray, examples: Examples, want_grad: bool, kernel: str = "auto"
) -> tuple[float, np.ndarray]:
    """Σ_i s_i cost_i and Σ_i Δ_i over the examples (unnormalized, unregularized), chunk by chunk.

    The chunk sums are added in row order, Δ in float64 (an empty Δ when not ``want_grad``).
    Data that is one chunk comes back as the kernel wrote it, in θ's dtype.
    """
    P = theta.shape[0] if want_grad else 0
    whole = examples.whole(theta.dtype)
    if whole is not None:
        call = KernelCall(whole, theta.dtype, kernel)
        Delta = np.empty(P, theta.dtype)
        return call.sums(theta, Delta, call.no_proba)[0], Delta
    cost_sum = 0.0
    Delta_sum = np.zeros(P, np.float64)
    Delta = np.empty(P, theta.dtype)
    for _, chunk in examples.chunks(theta.dtype):
        call = KernelCall(chunk, theta.dtype, kernel)
        cost_sum += call.sums(theta, Delta, call.no_proba)[0]
        Delta_sum += Delta
    return cost_sum, Delta_sum


def hessian_sums(
    theta: np.ndarray, v: np.ndarray, examples: Examples, gauss_newton: bool, kernel: str = "auto"
) -> np.ndarray:
    """Σ_i R{Δ_i} over the examples along V (unnormalized, unregularized), chunk by chunk, like
    :func:`sums`: in float64 when added over chunks, else as the kernel wrote it."""
    whole = examples.whole(theta.dtype)
    if whole is not None:
        RDelta = np.empty(theta.shape[0], theta.dtype)
        KernelCall(whole, theta.dtype, kernel).hessp(theta, v, RDelta, gauss_newton)
        return RDelta
    RDelta_sum = np.zeros(theta.shape[0], np.float64)
    RDelta = np.empty(theta.shape[0], theta.dtype)
    for _, chunk in examples.chunks(theta.dtype):
        KernelCall(chunk, theta.dtype, kernel).hessp(theta, v, RDelta, gauss_newton)
        RDelta_sum += RDelta
    return RDelta_sum


def hessian_product(
    theta: np.ndarray,
    v: np.ndarray,
    examples: Examples,
    lam: float,
    gauss_newton: bool,
    kernel: str = "auto",
) -> np.ndarray:
    """H·V (G·V with ``gauss_newton``) over all the examples, a new array in θ's dtype:
    Σ R{Δ} / m + (λ/m) V on non-bias weights, m = S = Σ s_i. One chunk takes one kernel call,
    which normalizes too (the same compiled step)."""
    whole = examples.whole(theta.dtype)
    if whole is not None:
        call = KernelCall(whole, theta.dtype, kernel)
        hv = np.empty(theta.shape[0], theta.dtype)
        call.hessp(theta, v, hv, gauss_newton, float(call.count), lam)
        return hv
    RDelta = hessian_sums(theta, v, examples, gauss_newton, kernel)
    return normalized(v, 0.0, RDelta, examples.count(theta.dtype), lam, examples.layer_sizes)[1]


def normalized(
    theta: np.ndarray,
    cost_sum: float,
    Delta: np.ndarray,
    m: float,
    lam: float,
    layer_sizes: tuple[int, ...],
) -> tuple[float, np.ndarray]:
    """(J, D) from the sums over m examples (m = S = Σ s_i with sample weights); D is new, in
    θ's dtype (empty if Δ is).

    J = cost_sum / m + (λ/2m) Σ non-bias Θ²;  D = Δ / m + (λ/m) Θ on non-bias weights
    (:func:`fastbp.kernels.normalize`, one compiled pass; the penalty in float64).
    """
    grad = np.empty(Delta.shape[0], theta.dtype)
    layers = kernels.padded_table(layer_sizes, theta.dtype)  # normalize reads offsets only
    penalty = kernels.normalize(theta, layers, Delta, float(m), lam, grad)
    return cost_sum / m + penalty, grad


def evaluate(
    theta: np.ndarray, examples: Examples, lam: float, want_grad: bool, kernel: str = "auto"
) -> tuple[float, np.ndarray]:
    """(J, D) over all the examples: their partial sums, normalized (D empty if not want_grad).

    Data that is one chunk takes one kernel call, which normalizes too (the same float64 step
    as :func:`normalized`, so the same bits).
    """
    whole = examples.whole(theta.dtype)
    if whole is None:
        cost_sum, Delta = sums(theta, examples, want_grad, kernel)
        S = examples.count(theta.dtype)
        return normalized(theta, cost_sum, Delta, S, lam, examples.layer_sizes)
    return KernelCall(whole, theta.dtype, kernel).evaluate(theta, lam, want_grad)


def forward(theta: np.ndarray, examples: Examples) -> np.ndarray:
    """h_Θ(x) for every example, an (m, K) array of θ's dtype, chunk by chunk."""
    proba = np.empty((examples.m, examples.layer_sizes[-1]), theta.dtype)
    no_grad = np.empty(0, theta.dtype)
    for start, chunk in examples.chunks(theta.dtype):
        KernelCall(chunk, theta.dtype).sums(theta, no_grad, proba[start : start + chunk.m])
    return proba


def load_kernels(layer_sizes: tuple[int, ...], dtype: np.dtype, what: str = "sums") -> None:
    """Compile, or load from numba's disk cache, the kernels this network runs in ``dtype``:
    those of the cost and gradient, or with ``what="hessp"`` those of H·v.

    Runs every entry point a later call may take: the literal and the serial tiled kernel on one
    example, the parallel one on a full chunk of zeros, so that they are in this process and on
    disk. Other processes started afterwards then only read the cache: none compiles while
    another writes it (the race of numba issue 4807). The calls run with every thread numba
    may use, as a new process does: under the caller's own count (``fastbp.threads(1)``, say)
    they would take the serial entry point only and leave the parallel one for the workers.
    """
    theta = np.zeros(n_params(layer_sizes), dtype)
    with _threading.threads(_threading.most_threads()):
        for m, kernel in ((1, "literal"), (1, "tiled"), (chunk_rows(layer_sizes, dtype), "auto")):
            X = np.zeros((m, layer_sizes[0]), dtype)
            examples = prepare_examples(X, np.zeros(m, np.int64), layer_sizes)
            if what == "hessp":
                hessian_sums(theta, theta, examples, False, kernel)
            else:
                sums(theta, examples, True, kernel)
