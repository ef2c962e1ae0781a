"""Compiled kernels: the per-example backpropagation loop of DESIGN.md, over flat weight buffers.

Every kernel takes arrays and scalars only. The layer sizes ``s_1 … s_L`` arrive as an int64
array ``sizes``; Θ^(l) starts in the flat vector ``theta`` at ``Σ_{k<l} s_{k+1} (s_k + 1)`` and is
row-major with shape ``(s_{l+1}, s_l + 1)``.

Examples are processed in tiles of ``TILE`` examples. Inside a tile each example keeps its own
activations and its own δ column; the tile only lets the innermost loops run across examples, so
that they vectorize. The result is the literal loop of DESIGN.md, example by example:

    a^(1) = x;  z^(l+1) = Θ^(l) [1; a^(l)];  a^(l+1) = g(z^(l+1))
    δ^(L) = a^(L) − y;  δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* a^(l) .* (1 − a^(l))
    Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
    cost  += Σ_k softplus(z_k^(L)) − y_k z_k^(L)

Parallelism is deterministic: the tiles are split into ``n_blocks`` contiguous blocks whose
boundaries depend only on ``m`` (see :func:`block_count`, which depends on ``m``, the parameter
count and the dtype); each block accumulates its own Δ and cost, and the blocks are added in
block order. The thread count never changes a single bit of the result.

Kernels are compiled lazily, one dtype at a time, with one explicit signature per dtype and
``cache=True`` (see :func:`kernel`).
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from numba import prange, types

TILE = 32  # examples per tile: the innermost loops run across a tile's examples
MIN_BLOCK_EXAMPLES = 128  # a parallel block holds at least this many examples
MAX_BLOCKS = 16
MAX_BLOCK_DELTA_BYTES = 32 * 2**20  # all per-block Δ copies together stay under this
REDUCE_CHUNK = 4096  # gradient entries per parallel task of the final block sum

# Compilation options shared by every kernel.
#  error_model="numpy": no zero-division branch in every float division, so the sigmoid loops
#  vectorize. fastmath={"contract"}: multiply-adds become FMAs; no reassociation, so the order of
#  every sum is the order written here.
_OPTIONS: dict[str, Any] = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"contract"},
    "nogil": True,
}


def block_count(m: int, n_params: int, dtype: np.dtype | type) -> int:
    """Number of parallel blocks for ``m`` examples: depends on m, the parameter count and dtype.

    At most ``MAX_BLOCKS``, at least ``MIN_BLOCK_EXAMPLES`` examples per block, and the blocks' Δ
    copies together within ``MAX_BLOCK_DELTA_BYTES``. A count of 1 means the serial kernel runs.
    """
    by_examples = m // MIN_BLOCK_EXAMPLES
    by_memory = MAX_BLOCK_DELTA_BYTES // (n_params * np.dtype(dtype).itemsize)
    return max(1, min(MAX_BLOCKS, by_examples, by_memory))


@numba.njit(inline="always", **_OPTIONS)
def _sigmoid(z, one):
    return one / (one + np.exp(-z))


@numba.njit(**_OPTIONS)
def _block(theta, sizes, X, labels, Y, tile_start, tile_stop, Delta, proba, want_grad):
    """Run tiles ``[tile_start, tile_stop)``; return Σ of the per-example costs (float64).

    theta: (P,) weights. sizes: (L,) int64. X: (m, s_1). labels: (m,) int64 or (0,). Y: (m, K) or
    (0, K): targets, used when labels is empty; with both empty no cost is computed.
    Delta: (P,) written: Δ += δ [1; a]ᵀ for these examples (when want_grad). proba: (m, K) or
    (0, K), written with h_Θ(x) when it has m rows.
    """
    F = theta.dtype.type
    zero = F(0.0)
    one = F(1.0)
    L = sizes.shape[0]
    m = X.shape[0]
    K = sizes[L - 1]
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    write_proba = proba.shape[0] > 0

    # Offsets: weights of layer l in theta, rows of layer l in act (bias row first), columns of
    # hidden layer l in the example-major copy actT.
    w_off = np.zeros(L, np.int64)
    a_off = np.zeros(L, np.int64)
    c_off = np.zeros(L, np.int64)
    widest = 1
    for l in range(L - 1):
        w_off[l + 1] = w_off[l] + sizes[l + 1] * (sizes[l] + 1)
        a_off[l + 1] = a_off[l] + sizes[l] + 1
        c_off[l + 1] = c_off[l] + (sizes[l] + 1 if l > 0 else 0)
        widest = max(widest, sizes[l + 1])
    act = np.empty((a_off[L - 1], TILE), theta.dtype)  # [unit, example], layers 1 … L−1
    actT = np.empty((TILE, max(c_off[L - 1], 1)), theta.dtype)  # [example, unit], hidden layers
    zL = np.empty((K, TILE), theta.dtype)
    delta = np.empty((widest, TILE), theta.dtype)
    delta_prev = np.empty((widest, TILE), theta.dtype)
    for l in range(L - 1):
        act[a_off[l], :] = one
        if l > 0:
            actT[:, c_off[l]] = one

    cost = 0.0
    for tile in range(tile_start, tile_stop):
        row0 = tile * TILE
        n = min(TILE, m - row0)
        # a^(1) = x, one column per example; the padding examples of a last tile are zeros.
        for t in range(n):
            for j in range(sizes[0]):
                act[1 + j, t] = X[row0 + t, j]
        for j in range(sizes[0]):
            for t in range(n, TILE):
                act[1 + j, t] = zero

        # Forward: z^(l+1) = Θ^(l) [1; a^(l)], a^(l+1) = g(z^(l+1)).
        for l in range(L - 1):
            n_in = sizes[l] + 1
            last = l == L - 2
            for r in range(sizes[l + 1]):
                w = w_off[l] + r * n_in
                out = zL[r] if last else act[a_off[l + 1] + 1 + r]
                out[:] = zero
                for j in range(n_in):
                    wj = theta[w + j]
                    inp = act[a_off[l] + j]
                    for t in range(TILE):
                        out[t] += wj * inp[t]
                if not last:
                    for t in range(TILE):
                        out[t] = _sigmoid(out[t], one)
                    for t in range(TILE):
                        actT[t, c_off[l + 1] + 1 + r] = out[t]

        # Output layer: cost from z^(L) (softplus(z) − y z, finite when saturated), δ^(L) = a − y.
        for t in range(n):
            row = row0 + t
            for k in range(K):
                z = zL[k, t]
                a = _sigmoid(z, one)
                if write_proba:
                    proba[row, k] = a
                if has_targets:
                    if use_labels:
                        y = F(labels[row]) if K == 1 else (one if labels[row] == k else zero)
                    else:
                        y = Y[row, k]
                    cost += max(z, zero) + np.log1p(np.exp(-abs(z))) - y * z
                    delta[k, t] = a - y
        if not want_grad:
            continue
        for k in range(K):
            for t in range(n, TILE):
                delta[k, t] = zero

        # Backward, layer by layer: Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ, then δ^(l) for hidden l.
        for l in range(L - 2, -1, -1):
            n_in = sizes[l] + 1
            for r in range(sizes[l + 1]):
                w = w_off[l] + r * n_in
                bias = zero
                for t in range(n):
                    bias += delta[r, t]
                Delta[w] += bias
                row_of_delta = Delta[w + 1 : w + n_in]
                if l == 0:  # a^(1) = x: read the examples straight from X, example-major
                    for t in range(n):
                        d = delta[r, t]
                        x = X[row0 + t]
                        for j in range(n_in - 1):
                            row_of_delta[j] += d * x[j]
                else:
                    c = c_off[l] + 1
                    for t in range(n):
                        d = delta[r, t]
                        for j in range(n_in - 1):
                            row_of_delta[j] += d * actT[t, c + j]
            if l == 0:
                break
            # δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* a^(l) .* (1 − a^(l)); padding columns stay zero.
            for j in range(n_in - 1):
                delta_prev[j, :] = zero
            for r in range(sizes[l + 1]):
                w = w_off[l] + r * n_in
                for j in range(n_in - 1):
                    wj = theta[w + 1 + j]
                    for t in range(TILE):
                        delta_prev[j, t] += wj * delta[r, t]
            for j in range(n_in - 1):
                a_row = act[a_off[l] + 1 + j]
                for t in range(TILE):
                    delta_prev[j, t] *= a_row[t] * (one - a_row[t])
            delta, delta_prev = delta_prev, delta
    return cost


def _sums_serial(theta, sizes, X, labels, Y, grad, proba):
    """All examples in one block: Σ_i cost_i is returned, Σ_i Δ_i written to grad (if len P)."""
    want_grad = grad.shape[0] > 0
    grad[:] = 0
    n_tiles = (X.shape[0] + TILE - 1) // TILE
    return _block(theta, sizes, X, labels, Y, 0, n_tiles, grad, proba, want_grad)


def _sums_parallel(theta, sizes, X, labels, Y, grad, proba, n_blocks):
    """As ``_sums_serial``, over ``n_blocks`` blocks in parallel, summed in block order."""
    want_grad = grad.shape[0] > 0
    P = grad.shape[0]
    n_tiles = (X.shape[0] + TILE - 1) // TILE
    Deltas = np.zeros((n_blocks, P), theta.dtype)
    costs = np.zeros(n_blocks)
    for b in prange(n_blocks):
        costs[b] = _block(
            theta,
            sizes,
            X,
            labels,
            Y,
            b * n_tiles // n_blocks,
            (b + 1) * n_tiles // n_blocks,
            Deltas[b],
            proba,
            want_grad,
        )
    n_chunks = (P + REDUCE_CHUNK - 1) // REDUCE_CHUNK
    for c in prange(n_chunks):
        for p in range(c * REDUCE_CHUNK, min(P, (c + 1) * REDUCE_CHUNK)):
            s = Deltas[0, p]
            for b in range(1, n_blocks):
                s += Deltas[b, p]
            grad[p] = s
    cost = 0.0
    for b in range(n_blocks):
        cost += costs[b]
    return cost


_compiled: dict[tuple[np.dtype, bool], numba.core.dispatcher.Dispatcher] = {}
_compile_lock = threading.Lock()


def _signature(dtype: np.dtype, parallel: bool) -> Any:
    F = numba.from_dtype(dtype)
    readonly_1d = types.Array(F, 1, "C", readonly=True)
    readonly_2d = types.Array(F, 2, "C", readonly=True)
    ints = types.Array(types.int64, 1, "C", readonly=True)
    args = [readonly_1d, ints, readonly_2d, ints, readonly_2d, F[::1], F[:, ::1]]
    if parallel:
        args.append(types.int64)
    return types.float64(*args)


def kernel(dtype: np.dtype | type, parallel: bool) -> numba.core.dispatcher.Dispatcher:
    """``_sums_parallel`` or ``_sums_serial`` for ``dtype`` (float64 or float32).

    Compiled, or loaded from numba's on-disk cache, on first use: one dtype and one entry point at
    a time, so a float64 user never waits for float32 kernels, nor a small problem for the
    parallel kernel. Writable arrays are accepted where the signature says read-only.
    """
    key = (np.dtype(dtype), parallel)
    dispatcher = _compiled.get(key)
    if dispatcher is None:
        with _compile_lock:
            dispatcher = _compiled.get(key)
            if dispatcher is None:
                if parallel:
                    dispatcher = numba.njit(_signature(key[0], True), parallel=True, **_OPTIONS)(
                        _sums_parallel
                    )
                else:
                    dispatcher = numba.njit(_signature(key[0], False), **_OPTIONS)(_sums_serial)
                _compiled[key] = dispatcher
    return dispatcher
