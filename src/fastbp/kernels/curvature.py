"""Hessian-vector products: the tiled kernel's loop with Pearlmutter's R-pass beside it.

R{·} is the derivative along a direction V laid out like θ; ``literal.py`` writes each step of
the R-pass out one example at a time (1'-4'), and R{Δ}/m + (λ/m) V is H·V, the Hessian of J
times V (docs/design.md, "Hessian-vector products"). For every tile (``tiled.py``'s glossary):

    1.  a^(l), z^(L) as for the gradient;  1'. R{z^(l+1)} = V^(l) [1; a^(l)] + Θ^(l) [0; R{a^(l)}],
        R{a^(l+1)} = g' R{z^(l+1)}: one register block for both products (``product_pair``)
    2.  δ^(L) and the cost as for the gradient;  2'. R{δ^(L)} = s (∂h/∂z) R{z^(L)}
    4'. R{Δ^(l)} += R{δ^(l+1)} [1; a^(l)]ᵀ + δ^(l+1) [0; R{a^(l)}]ᵀ, two Δ updates in this order
    3'. b = (Θ^(l))ᵀ δ^(l+1), R{b} = (V^(l))ᵀ δ^(l+1) + (Θ^(l))ᵀ R{δ^(l+1)}, then
        δ^(l) = b .* g', R{δ^(l)} = R{b} .* g' + b .* c .* R{a^(l)} (``times_slope_r``)

The Gauss-Newton product G·V (``gauss_newton``) stops the R-pass at R{δ^(L)}: the backward pass
is the gradient's, run on R{δ^(L)}. Blocks, their sums and the thread-count independence are
the gradient's (:func:`fastbp.kernels.tiled.tiled_sums`).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._layout import ACT, COLS, IN, OUT, PADDED, ROWS, TRANSPOSED, G
from .activations import times_slope, times_slope_r
from .compile import jit, kernel_features
from .literal import normalize
from .outputs import output_curvature, output_layer, output_scratch
from .simd import TILE, block_shapes, product_block, product_pair
from .tiled import (
    block_buffers,
    example_major_layer,
    forward_tile,
    load_tile,
    pad_weights,
    unpad_sum,
    update_delta,
)

__all__ = ["tiled_hessp"]


def tiled_hessp(theta, v, layers, X, labels, Y, weights, hv, gauss_newton, n_blocks, m, lam):
    """Σ_i s_i cost_i over the rows of X, and hv = R{Δ}/m + (λ/m) V written: H·V, or G·V when
    ``gauss_newton``.

    v: (P,) the direction V, laid out like θ; hv: (P,), written. Other arguments as
    :func:`fastbp.kernels.tiled.tiled_sums`, with targets (labels or Y) and no proba. NaN when
    θ or V has a NaN or inf: the wrapper names the entry. The blocks run in a ``prange`` loop,
    each with its own R{Δ}, added in block order: the same bits for any thread count.
    """
    kernel_features()
    padded, finite = pad_weights(theta, layers)
    padded_v, finite_v = pad_weights(v, layers)
    if not (finite and finite_v):
        return np.nan
    RDeltas = np.empty((n_blocks, layers[layers.shape[0] - 1, PADDED]), theta.dtype)
    costs = np.zeros(n_blocks)
    for b in prange(n_blocks):
        costs[b] = hessp_block(
            np.int64(b), n_blocks, padded, padded_v, layers, X, labels, Y, weights, RDeltas,
            gauss_newton,
        )  # fmt: skip
    unpad_sum(RDeltas, layers, hv)
    normalize(v, layers, hv, m, lam, hv)
    cost = 0.0
    for b in range(n_blocks):
        cost += costs[b]
    return cost


@jit
def hessp_block(b, n_blocks, padded, padded_v, layers, X, labels, Y, weights, RDeltas, gn):
    """Block b of n_blocks: return Σ of its examples' costs (float64) and write its R{Δ} to
    RDeltas[b]; ``gn``: the Gauss-Newton product. padded, padded_v: Θ and V from
    ``pad_weights``. Buffers as ``tiled_block``'s, twice: the R-pass's own, with R{a}'s bias
    units 0 (R{1} = 0)."""
    kernel_features()
    m = X.shape[0]
    n_tiles = (m + TILE - 1) // TILE
    tile_start = b * n_tiles // n_blocks
    tile_stop = (b + 1) * n_tiles // n_blocks
    RDelta = RDeltas[b]
    zero = padded.dtype.type(0.0)
    for i in range(RDelta.shape[0]):
        RDelta[i] = zero
    R, TB = block_shapes(padded)[:2]
    n_sub = TILE // TB
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]
    act, xrows, actT, z_out, delta, delta_below = block_buffers(padded, layers)
    ract, _, ractT, rz_out, rdelta, rdelta_below = block_buffers(padded, layers)
    for p in range(n_sub):
        for l in range(n_layers):
            ract[p, layers[l, ACT], :] = zero
    columns, ys = output_scratch(padded, K)
    no_proba = np.zeros((0, K), padded.dtype)

    cost = 0.0
    for tile in range(tile_start, tile_stop):
        row0 = tile * TILE
        n = min(TILE, m - row0)
        load_tile(X, row0, layers, xrows, act)  # 1. a^(1) = x
        forward_tile(padded, layers, act, z_out)  # 1. a^(2) … a^(L−1), z^(L)
        r_forward_tile(padded, padded_v, layers, act, ract, rz_out)  # 1'.
        g = layers[n_layers - 1, G]
        cost = output_layer(
            g, z_out, delta, labels, Y, weights, no_proba, row0, n, columns, ys, cost
        )
        output_curvature(g, z_out, rz_out, rdelta, ys, columns)  # 2'.
        for k in range(K, layers[n_layers - 1, ROWS]):
            for p in range(n_sub):
                delta[p, k, :] = zero
                rdelta[p, k, :] = zero

        for l in range(n_layers - 1, -1, -1):
            rows, cols = layers[l, ROWS], layers[l, COLS]
            AT = xrows
            if l > 0:
                AT = example_major_layer(act, layers, l, actT)
            update_delta(RDelta, layers, l, rdelta, AT)  # 4'. R{δ^(l+1)} [1; a^(l)]ᵀ
            if l == 0:
                break  # R{a^(1)} = 0
            if not gn:  # 4'. δ^(l+1) [0; R{a^(l)}]ᵀ
                update_delta(RDelta, layers, l, delta, example_major_layer(ract, layers, l, ractT))
            # 3'. unit j of layer l is row 1 + j of the transposed copies of Θ^(l) and V^(l)
            WT = padded[layers[l, TRANSPOSED] : layers[l + 1, TRANSPOSED]].reshape((cols, rows))
            VT = padded_v[layers[l, TRANSPOSED] : layers[l + 1, TRANSPOSED]].reshape((cols, rows))
            below = layers[l - 1, ROWS]
            n_k = layers[l, OUT]
            for j in range(0, below, R):
                j0 = min(j, below - R)
                for p in range(n_sub):
                    if gn:
                        product_block(WT, 1 + j0, rdelta[p], n_k, rdelta_below[p, j0:])
                    else:
                        product_block(WT, 1 + j0, delta[p], n_k, delta_below[p, j0:])
                        product_pair(VT, WT, 1 + j0, delta[p], rdelta[p], n_k, rdelta_below[p, j0:])
            g = layers[l - 1, G]
            units = layers[l, IN]
            for p in range(n_sub):
                a_l = act[p, layers[l, ACT] + 1 : layers[l, ACT] + 1 + units]
                if gn:
                    times_slope(g, rdelta_below[p, :units], a_l)
                else:
                    ra_l = ract[p, layers[l, ACT] + 1 : layers[l, ACT] + 1 + units]
                    times_slope_r(g, delta_below[p, :units], rdelta_below[p, :units], a_l, ra_l)
            delta, delta_below = delta_below, delta
            rdelta, rdelta_below = rdelta_below, rdelta
    return cost


@jit
def r_forward_tile(padded, padded_v, layers, act, ract, rz_out):
    """Step 1' for a tile after its forward pass (``act``): R{z^(l+1)} = V^(l) [1; a^(l)] +
    Θ^(l) [0; R{a^(l)}] and R{a^(l+1)} = g' R{z^(l+1)} into ``ract``, R{z^(L)} into ``rz_out``;
    R{a^(1)} = 0, so the first layer's is V^(1) [1; x] alone."""
    kernel_features()
    R, TB = block_shapes(padded)[:2]
    n_layers = layers.shape[0] - 1
    for l in range(n_layers):
        rows = layers[l, ROWS]
        W = padded[layers[l, PADDED] : layers[l + 1, PADDED]].reshape((rows, layers[l, COLS]))
        U = padded_v[layers[l, PADDED] : layers[l + 1, PADDED]].reshape((rows, layers[l, COLS]))
        last = l == n_layers - 1
        n_k = layers[l, IN] + 1
        lo = layers[l, ACT]
        hi = layers[l + 1, ACT] + 1
        for r in range(0, rows, R):
            r0 = min(r, rows - R)
            for p in range(TILE // TB):
                out = rz_out[p, r0:] if last else ract[p, hi + r0 :]
                if l == 0:
                    product_block(U, r0, act[p, lo : lo + n_k], n_k, out)
                else:
                    product_pair(U, W, r0, act[p, lo : lo + n_k], ract[p, lo : lo + n_k], n_k, out)
        if not last:
            for p in range(TILE // TB):
                times_slope(
                    layers[l, G],
                    ract[p, hi : hi + layers[l, OUT]],
                    act[p, hi : hi + layers[l, OUT]],
                )
