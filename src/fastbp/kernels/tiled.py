"""The fast kernel: the literal loop of ``literal.py``, run over tiles of examples.

Glossary (one name per concept, here and in every module):

- **example**: one row of X, with its own activations a^(l) and its own δ column throughout;
- **tile**: TILE (32) consecutive examples that go through the loop together, so that the
  innermost loops run across examples (and vectorize) and a weight loaded once serves them all;
  a tile is stored as sub-tiles of TB examples, the width of a product block (``simd.py``);
- **block**: a contiguous range of tiles with its own Δ and cost sum, the unit of parallel work;
  their number depends only on m, the layer sizes and the dtype (:func:`block_count`), and the
  blocks are added in block order, so the thread count never changes a bit of the result;
- **chunk**: the rows the Python wrapper converts and passes in one kernel call;
- **column strip**: C (then CL) consecutive columns of a Δ, the width of a Δ-update block.

For every example of a tile the kernel computes what ``literal.py`` does one example at a time
(there, each output's cost and each activation's g' are written out):

    1. a^(1) = x;  z^(l+1) = Θ^(l) [1; a^(l)];  a^(l+1) = g_l(z^(l+1))
    2. δ^(L) = s (h − y);  cost += s cost(z^(L), y), by the output
    3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'_l, from a^(l)
    4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ

then (5) the blocks' Δ are added and normalized (``literal.normalize``). Weights, activations and
Δ live in zero-padded buffers (shapes from ``_layout.layer_table``) so that register blocks need
no tail code: padding contributes exact zeros.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from numba import prange

from .._layout import ACT, COLS, IN, OUT, PADDED, ROWS, THETA, TRANSPOSED, G, layer_table
from .activations import activate_rows, times_slope
from .compile import OVERLOAD_OPTIONS, jit, kernel_features
from .literal import normalize
from .outputs import output_layer, output_scratch
from .simd import (
    BLOCK_SHAPES,
    TILE,
    TRANSPOSE_BYTES,
    block_shapes,
    delta_update,
    example_major,
    product_block,
    transpose_block,
)

__all__ = ["block_count", "padded_table", "tiled_sums"]

# Enough blocks for 16 threads, few enough to keep their Δ copies small
# (docs/decisions.md#block-limits, #block-delta-bytes).
MIN_BLOCK_EXAMPLES = 128  # a block holds at least this many examples
MAX_BLOCKS = 16
MAX_BLOCK_DELTA_BYTES = 32 * 2**20  # all blocks' padded Δ together stay under this


@functools.lru_cache(maxsize=256)
def padded_table(
    layer_sizes: tuple[int, ...], dtype: Any, functions: tuple[int, ...] | None = None
) -> np.ndarray:
    """:func:`fastbp._layout.layer_table` with the padding of ``dtype``'s register blocks, for
    the activations and output ``functions`` (codes; None: all sigmoid).

    Rows of Θ^(l) are padded to a multiple of RP and to at least R (docs/decisions.md#padding),
    columns to a multiple of CL.
    """
    R, _, _, _, CL, RP, _ = BLOCK_SHAPES[np.dtype(dtype)]
    return layer_table(layer_sizes, RP, R, CL, functions)


@functools.lru_cache(maxsize=256)
def block_count(m: int, layer_sizes: Sequence[int], dtype: Any) -> int:
    """Number of blocks for ``m`` examples; depends on m, the layer sizes and dtype only.

    The largest power of two with at most ``MAX_BLOCKS`` blocks, at least ``MIN_BLOCK_EXAMPLES``
    examples per block, and the blocks' padded Δ copies together within
    ``MAX_BLOCK_DELTA_BYTES``. A power of two splits evenly over 2, 4, 8 or 16 threads
    (docs/decisions.md#blocks). A count of 1 means the serial kernel runs.
    """
    table = padded_table(tuple(layer_sizes), np.dtype(dtype))
    delta_bytes = int(table[-1, PADDED]) * np.dtype(dtype).itemsize
    by_examples = m // MIN_BLOCK_EXAMPLES
    by_memory = MAX_BLOCK_DELTA_BYTES // delta_bytes
    most = max(1, min(MAX_BLOCKS, by_examples, by_memory))
    return 1 << (most.bit_length() - 1)


# ------------------------------------------------------------------------- the entry point


def tiled_sums(theta, layers, X, labels, Y, weights, grad, proba, n_blocks, m, lam):
    """(Σ_i s_i cost_i, penalty) over the rows of X, and grad = Σ_i Δ_i / m + (λ/m) Θ written.

    theta: (P,) flat weights. layers: the network's ``padded_table`` (its G column: the hidden
    activations and the output). X: (m_rows, s_1). labels: (m_rows,) int64, or (0,) when Y holds
    the targets; Y: (m_rows, K), or (0, K); with both empty no cost is computed. weights: the
    sample weights s_i, (m_rows,), or (0,) for s_i = 1. grad: (P,) or (0,) for no gradient; written. proba: (m_rows, K)
    to receive h_Θ(x) (only without targets), or (0, K). n_blocks: :func:`block_count`. m, lam:
    the normalization (``literal.normalize``; m = 1, λ = 0 leave the plain sums). (NaN, NaN)
    when θ has a NaN or inf: the wrapper names the entry.

    The blocks run in a ``prange`` loop: compiled with ``parallel``, on numba's threads, split
    evenly (docs/decisions.md#chunksize); without, one after another (a single block runs so,
    with no launch: docs/decisions.md#single-block-serial). Either way each block fills its own
    Δ and cost, and they are added in block order: the same bits. J = Σ cost / m + penalty is
    left to the caller, so that it is formed exactly as after ``fastbp.partial_sums``.
    """
    kernel_features()
    padded, finite = pad_weights(theta, layers)
    if not finite:
        return np.nan, np.nan
    n_layers = layers.shape[0] - 1
    Deltas = np.empty((n_blocks, layers[n_layers, PADDED] if grad.shape[0] else 0), theta.dtype)
    costs = np.zeros(n_blocks)
    for b in prange(n_blocks):
        costs[b] = tiled_block(
            np.int64(b), n_blocks, padded, layers, X, labels, Y, weights, Deltas, proba
        )
    if grad.shape[0]:
        unpad_sum(Deltas, layers, grad)
    cost = 0.0
    for b in range(n_blocks):
        cost += costs[b]
    return cost, normalize(theta, layers, grad, m, lam, grad)


# ------------------------------------------------------------------- weights in, gradient out


@jit
def pad_weights(theta, layers):
    """θ → (padded, all θ finite): every Θ^(l) zero-padded at ``layers[l, PADDED]``, then
    Θ^(l)ᵀ padded alike at ``layers[l, TRANSPOSED]`` for l ≥ 1: the δ products read rows of Θᵀ,
    not Θ by columns (docs/decisions.md#transposed-theta)."""
    kernel_features()
    n_layers = layers.shape[0] - 1
    padded = np.zeros(layers[n_layers, TRANSPOSED], theta.dtype)
    finite = True
    for i in range(theta.shape[0]):
        finite &= np.isfinite(theta[i])
    CL = block_shapes(padded)[4]
    for l in range(n_layers):
        n_in = layers[l, IN] + 1
        rows, cols = layers[l, ROWS], layers[l, COLS]
        W = padded[layers[l, PADDED] : layers[l + 1, PADDED]].reshape((rows, cols))
        start = layers[l, THETA]
        for r in range(layers[l, OUT]):
            w = W[r]
            source = theta[start + r * n_in : start + (r + 1) * n_in]
            for j in range(n_in):
                w[j] = source[j]
        if l > 0:  # by strips of CL columns, so that Θᵀ is written line by line
            WT = padded[layers[l, TRANSPOSED] : layers[l + 1, TRANSPOSED]].reshape((cols, rows))
            for j0 in range(0, cols, CL):
                for r in range(rows):
                    for j in range(CL):
                        WT[j0 + j, r] = W[r, j0 + j]
    return padded, finite


@jit
def unpad_sum(Deltas, layers, grad):
    """grad = Σ_b Deltas[b] in the flat layout, the blocks added in block order for every entry.

    Strip by strip, each block's segment of a row added along j (a vectorized loop per block),
    so that every block's strip is read as one contiguous stretch (docs/decisions.md#unpad-sum).
    A padded Δ is row-major, or stored by strips of C columns, then of CL (PANELS): the strip
    of columns p0 … p0 + width − 1 starts p0 × rows entries into the layer's Δ. Serial: a
    parallel sum cost seconds of cold compile for little (docs/decisions.md#unpad-sum-serial).
    """
    kernel_features()
    n_blocks = Deltas.shape[0]
    _, _, _, C, CL, _, PANELS = block_shapes(Deltas)
    for l in range(layers.shape[0] - 1):
        n_in = layers[l, IN] + 1
        rows, cols = layers[l, ROWS], layers[l, COLS]
        start = layers[l, THETA]
        p0 = 0
        while p0 < n_in:
            width = cols if not PANELS else C if p0 + C <= cols else CL
            for r in range(layers[l, OUT]):
                target = start + r * n_in
                source = layers[l, PADDED] + p0 * rows + r * width - p0
                row = grad[target + p0 : target + min(p0 + width, n_in)]
                first = Deltas[0, source + p0 : source + p0 + row.shape[0]]
                for j in range(row.shape[0]):
                    row[j] = first[j]
                for b in range(1, n_blocks):
                    block = Deltas[b, source + p0 : source + p0 + row.shape[0]]
                    for j in range(row.shape[0]):
                        row[j] += block[j]
            p0 += width


# ------------------------------------------------------------------------------ one block


@jit
def block_buffers(padded, layers):
    """A block's zeroed per-tile buffers (padding units stay finite): ``act``, the activations
    [1; a^(l)] unit-major by sub-tiles, ``act[p, layers[l, ACT] + unit, t]``, for the products;
    ``xrows`` and ``actT``, example-major [1; x] and [1; a^(l)] of one hidden layer at a time,
    for the Δ update (docs/decisions.md#sub-tiles, #scratch-zeroing); ``z_out``, the output
    layer's z; ``delta`` and ``delta_below``, δ of two adjacent layers by sub-tiles. Row or
    column 0 of the activations is the bias unit (ones).
    """
    kernel_features()
    TB, C = block_shapes(padded)[1], block_shapes(padded)[3]
    n_layers = layers.shape[0] - 1
    most_rows = 0  # of any Θ^(l): the δ buffers hold that many units
    hidden_cols = C  # of any Θ^(l) with l ≥ 1: actT holds that many columns
    for l in range(n_layers):
        most_rows = max(most_rows, layers[l, ROWS])
        if l > 0:
            hidden_cols = max(hidden_cols, layers[l, COLS])
    n_sub = TILE // TB  # sub-tile p holds the tile's examples p TB … p TB + TB − 1
    act = np.zeros((n_sub, layers[n_layers, ACT], TB), padded.dtype)
    for l in range(n_layers):
        act[:, layers[l, ACT], :] = padded.dtype.type(1.0)
    xrows = example_major(layers[0, COLS], padded, C)
    actT = example_major(hidden_cols, padded, C)
    z_out = np.zeros((n_sub, layers[n_layers - 1, ROWS], TB), padded.dtype)
    delta = np.zeros((n_sub, most_rows, TB), padded.dtype)
    delta_below = np.zeros((n_sub, most_rows, TB), padded.dtype)
    return act, xrows, actT, z_out, delta, delta_below


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def load_tile(X, row0, layers, xrows, act):
    """Step 1's a^(1) = x for the tile at row0: X's rows, in order, into ``xrows`` (the first Δ
    update reads them there), then transposed into ``act``; a last tile's padding examples are
    zeros. Element loops: a slice assignment compiles numba's shape-mismatch error path
    (docs/decisions.md#x-copy)."""
    zero = xrows.dtype.type(0.0)
    TB = block_shapes(xrows)[1]
    V = TRANSPOSE_BYTES // xrows.itemsize  # a transposed block is V × V (``transpose_block``)
    n = min(TILE, X.shape[0] - row0)
    for t in range(TILE):
        x_t = xrows[t, 1 : 1 + layers[0, IN]]
        if t < n:
            x = X[row0 + t]
            for j in range(layers[0, IN]):
                x_t[j] = x[j]
        else:
            for j in range(layers[0, IN]):
                x_t[j] = zero
    for j0 in range(0, layers[0, IN] + 1, V):  # the bias column and the padding come along
        for t0 in range(0, TILE, V):
            transpose_block(xrows, t0, j0, act[t0 // TB], j0, t0 % TB)


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def update_delta(Delta, layers, l, delta, AT):
    """Step 4, Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ for the tile, ``AT`` its example-major [1; a^(l)].

    Column strips outermost, so that a strip's TILE × C activations stay in L1 while every row
    block passes (docs/decisions.md#strips); strips of C columns, then of CL; in each, blocks of
    RD rows, then of RP. With PANELS, D is the strip's own (rows, C or CL) stretch of Δ, its
    column d0 = 0.
    """
    _, _, RD, C, CL, RP, PANELS = block_shapes(Delta)
    rows, cols = layers[l, ROWS], layers[l, COLS]
    D = Delta[layers[l, PADDED] : layers[l + 1, PADDED]].reshape((rows, cols))
    whole_blocks = rows - rows % RD
    whole_strips = cols - cols % C
    for c0 in range(0, whole_strips, C):
        d0 = c0
        if PANELS:
            strip = layers[l, PADDED] + c0 * rows
            D = Delta[strip : strip + rows * C].reshape((rows, C))
            d0 = 0
        delta_update(D, 0, whole_blocks, d0, delta, AT, c0, RD, C)
        delta_update(D, whole_blocks, rows, d0, delta, AT, c0, RP, C)
    for c0 in range(whole_strips, cols, CL):
        d0 = c0
        if PANELS:
            strip = layers[l, PADDED] + c0 * rows
            D = Delta[strip : strip + rows * CL].reshape((rows, CL))
            d0 = 0
        delta_update(D, 0, whole_blocks, d0, delta, AT, c0, RD, CL)
        delta_update(D, whole_blocks, rows, d0, delta, AT, c0, RP, CL)


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def forward_tile(padded, layers, act, z_out):
    """Step 1 for a tile whose a^(1) is in ``act``: z^(l+1) = Θ^(l) [1; a^(l)], a^(l+1) =
    g(z^(l+1)) into ``act``, z^(L) into ``z_out``, R units × TB examples at once; the last block
    ends at the last row (rows ≥ R), overlapping the one before
    (docs/decisions.md#overlap-last-block)."""
    R, TB = block_shapes(padded)[:2]
    n_layers = layers.shape[0] - 1
    for l in range(n_layers):
        rows = layers[l, ROWS]
        W = padded[layers[l, PADDED] : layers[l + 1, PADDED]].reshape((rows, layers[l, COLS]))
        last = l == n_layers - 1
        n_k = layers[l, IN] + 1
        lo = layers[l, ACT]  # [1; a^(l)] is act[p, lo : lo + n_k], a^(l+1) starts at hi
        hi = layers[l + 1, ACT] + 1
        for r in range(0, rows, R):
            r0 = min(r, rows - R)
            for p in range(TILE // TB):
                out = z_out[p, r0:] if last else act[p, hi + r0 :]
                product_block(W, r0, act[p, lo : lo + n_k], n_k, out)
        if not last:
            for p in range(TILE // TB):
                activate_rows(layers[l, G], act[p, hi : hi + layers[l, OUT]])


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def example_major_layer(act, layers, l, AT):
    """AT ← the tile's [1; a^(l)] from ``act``, example-major (TILE, ≥ COLS), for the Δ update;
    returns AT."""
    TB = block_shapes(act)[1]
    V = TRANSPOSE_BYTES // act.itemsize  # a transposed block is V × V (``transpose_block``)
    for p in range(TILE // TB):
        for j0 in range(0, layers[l, COLS], V):
            for t0 in range(0, TB, V):
                transpose_block(act[p], layers[l, ACT] + j0, t0, AT, p * TB + t0, j0)
    return AT


@jit
def tiled_block(b, n_blocks, padded, layers, X, labels, Y, weights, Deltas, proba):
    """Block b of n_blocks, a contiguous range of tiles: return Σ of its examples' costs
    (float64), write its Δ to Deltas[b] (and h_Θ(x) to proba, when it has rows).

    padded: from :func:`pad_weights`. Deltas: (n_blocks, padded Δ length), or (n_blocks, 0)
    for no gradient. Other arguments as :func:`tiled_sums`. Both entry points call this
    function directly (docs/decisions.md#call-depth). Its buffers are allocated once per block
    (:func:`block_buffers`), never per tile.
    """
    kernel_features()
    m = X.shape[0]
    n_tiles = (m + TILE - 1) // TILE
    tile_start = b * n_tiles // n_blocks
    tile_stop = (b + 1) * n_tiles // n_blocks
    want_grad = Deltas.shape[1] > 0
    Delta = Deltas[b]
    zero = padded.dtype.type(0.0)
    for i in range(Delta.shape[0]):  # by the thread that fills it (docs/decisions.md#zeroing)
        Delta[i] = zero
    R, TB = block_shapes(padded)[:2]
    n_sub = TILE // TB  # sub-tile p holds the tile's examples p TB … p TB + TB − 1
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]

    act, xrows, actT, z_out, delta, delta_below = block_buffers(padded, layers)
    columns, ys = output_scratch(padded, K)

    cost = 0.0
    for tile in range(tile_start, tile_stop):
        row0 = tile * TILE
        n = min(TILE, m - row0)
        load_tile(X, row0, layers, xrows, act)  # 1. a^(1) = x
        forward_tile(padded, layers, act, z_out)  # 1. a^(2) … a^(L−1), z^(L)

        g = layers[n_layers - 1, G]
        cost = output_layer(g, z_out, delta, labels, Y, weights, proba, row0, n, columns, ys, cost)
        if not want_grad:
            continue
        for k in range(K, layers[n_layers - 1, ROWS]):
            for p in range(n_sub):
                delta[p, k, :] = zero

        # Backward, layer by layer: 4. then 3. for the hidden layers.
        for l in range(n_layers - 1, -1, -1):
            rows, cols = layers[l, ROWS], layers[l, COLS]
            AT = xrows
            if l > 0:
                AT = example_major_layer(act, layers, l, actT)
            update_delta(Delta, layers, l, delta, AT)  # 4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
            if l == 0:
                break
            # 3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'(z^(l)), from a^(l): unit j of layer l is
            # column 1 + j of Θ^(l), row 1 + j of its transposed copy WT; padding units get
            # δ = 0 from zero weights.
            WT = padded[layers[l, TRANSPOSED] : layers[l + 1, TRANSPOSED]].reshape((cols, rows))
            below = layers[l - 1, ROWS]
            for j in range(0, below, R):
                j0 = min(j, below - R)
                for p in range(n_sub):
                    product_block(WT, 1 + j0, delta[p], layers[l, OUT], delta_below[p, j0:])
            for p in range(n_sub):
                a_l = act[p, layers[l, ACT] + 1 : layers[l, ACT] + 1 + layers[l, IN]]
                times_slope(layers[l - 1, G], delta_below[p, : layers[l, IN]], a_l)
            delta, delta_below = delta_below, delta
    return cost
