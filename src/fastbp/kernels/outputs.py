"""Step 2 of the tiled kernel, by output: δ^(L) = s (h − y) and each example's cost from z^(L).

``tiled.tiled_block`` calls :func:`output_layer` once per tile, with the tile's z^(L) unit by
unit across its examples (``z_out[p, k, t]``: sub-tile p, unit k, example t of the sub-tile).
Every loop runs across examples, so that it vectorizes. The sigmoid output (the course's
network) is inlined into the tile loop; the softmax and identity outputs are functions of their
own, compiled for size (docs/decisions.md#compact-outputs). ``literal.py`` writes each rule out
one example at a time.
"""

from __future__ import annotations

import numba
import numpy as np

from .._layout import IDENTITY, SOFTMAX
from .activations import exp, fma, log1p
from .compile import OVERLOAD_OPTIONS, compact_code, jit, kernel_features
from .simd import TILE, block_shapes

__all__ = ["output_curvature", "output_layer", "output_scratch"]


@jit
def output_scratch(like, K):
    """A block's scratch for :func:`output_layer`: ``columns``, TILE-long label (int64), weight,
    linear, q, logs (float64), and the softmax's z_max, total, ties, rest, y_sum; ``ys``, the
    tile's targets unit by unit, (K, TILE). In ``like``'s dtype but where said."""
    kernel_features()
    scratch = np.zeros((8, TILE), like.dtype)
    columns = (
        np.zeros(TILE, np.int64),
        *(scratch[0], scratch[1], scratch[2]),
        np.zeros(TILE, np.float64),
        *(scratch[3], scratch[4], scratch[5], scratch[6], scratch[7]),
    )
    return columns, np.zeros((K, TILE), like.dtype)


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def output_layer(g, z_out, delta, labels, Y, weights, proba, row0, n, columns, ys, cost):
    """Step 2 for the tile of n examples at row0, output code g: δ^(L) = s (h − y) into ``delta``
    from z^(L) in ``z_out`` (zero for a last tile's padding examples, whose weight s is 0), h_Θ(x)
    into ``proba`` when it has rows (then there are no targets: δ holds h); returns ``cost`` plus
    the tile's examples' s cost_i, added example by example. ``columns``: the TILE-long scratch
    (label, weight, linear, q, logs, and the softmax's five); ``ys``: (K, TILE), the targets.

    Unit by unit across the tile's examples, so that the loops vectorize; each unit's targets
    first, in loops of their own (docs/decisions.md#targets-loop), 0 without targets.
    """
    label, weight, linear, q, logs = columns[:5]
    F = z_out.dtype.type
    zero = F(0.0)
    one = F(1.0)
    K = ys.shape[0]
    TB = block_shapes(z_out)[1]
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    for t in range(TILE):
        label[t] = labels[min(row0 + t, labels.shape[0] - 1)] if use_labels else 0
        s = weights[min(row0 + t, weights.shape[0] - 1)] if weights.shape[0] > 0 else one
        weight[t] = s if t < n else zero
        linear[t] = zero
        q[t] = zero
        logs[t] = 0.0
    for k in range(K):
        y_k = ys[k]
        if use_labels and K == 1:
            for t in range(TILE):
                y_k[t] = F(label[t])
        elif use_labels:
            for t in range(TILE):
                y_k[t] = F(label[t] == k)
        elif has_targets:
            for t in range(TILE):
                y_k[t] = Y[min(row0 + t, Y.shape[0] - 1), k]
    if g == SOFTMAX:
        softmax_output(z_out, delta, ys, use_labels, has_targets, columns)
    elif g == IDENTITY:
        identity_output(z_out, delta, ys, columns)
    else:
        sigmoid_output(z_out, delta, ys, columns)
    if proba.shape[0] > 0:
        for k in range(K):
            for t in range(n):
                proba[row0 + t, k] = delta[t // TB, k, t % TB]
    if has_targets:
        for t in range(n):
            cost += (linear[t] + logs[t]) * weight[t]
    return cost


@numba.njit(inline="always", **OVERLOAD_OPTIONS)
def sigmoid_output(z_out, delta, ys, columns):
    """:func:`output_layer` for sigmoid outputs: cost_i = Σ_k softplus(z_k) − y_k z_k.

    With e = exp(−|z|): softplus(z) − y z = max(z, 0) − y z + log(1 + e), and with s = [z ≥ 0],
    a − y = ((s − y) + (1 − s) e − y e) / (1 + e): no cancellation when a saturates. The
    logs are taken once per example, of q = Π_k (1 + e_k) − 1, kept exact for small values by
    q ← q + e + q e, folded every 64 units so that Π stays below 2^64
    (docs/decisions.md#output-layer, #log1p-loop, #saturated-delta).
    """
    _, weight, linear, q, logs = columns[:5]
    F = z_out.dtype.type
    zero = F(0.0)
    one = F(1.0)
    cap = F(708.0) if z_out.itemsize == 8 else F(87.0)  # e^−cap is still a normal number
    TB = block_shapes(z_out)[1]
    for k in range(ys.shape[0]):
        y_k = ys[k]
        for p in range(TILE // TB):
            z_k = z_out[p, k]
            d_k = delta[p, k]
            for t in range(TB):
                z = z_k[t]
                e = exp(-min(abs(z), cap))
                y = y_k[p * TB + t]
                linear[p * TB + t] += max(z, zero) - y * z
                q[p * TB + t] += e + q[p * TB + t] * e
                s = F(z >= zero)
                e_a = e * F(abs(z) <= cap)  # beyond ±cap, a is exactly 0 or 1
                d = ((s - y) + (one - s) * e_a - y * e_a) / (one + e_a)
                d_k[t] = d * weight[p * TB + t]
        if k % 64 == 63:
            for t in range(TILE):
                logs[t] += log1p(q[t])
                q[t] = zero
    for t in range(TILE):
        logs[t] += log1p(q[t])


@jit
def softmax_output(z_out, delta, ys, use_labels, has_targets, columns):
    """:func:`output_layer` for a softmax output: cost_i = Σ_k y_k (logsumexp(z) − z_k), h the
    softmax of z, δ = h Σ_k y_k − y (h − y for labels and probability rows).

    Two passes over the units, across the tile's examples, after their max: e_k = exp(z_k − max)
    with their total (ties to the max counted apart, so that log(total) = log1p(small + ties − 1)
    keeps its digits when one unit dominates), the Σ y_k (max − z_k) part of the cost, and for
    labels the total over the other units, so that the label's δ = −rest / total needs no
    1 − h; then δ. Finite for any finite z: the exponents are ≤ 0.
    """
    kernel_features()
    compact_code()  # off the sigmoid path: a separate, compact function
    _, weight, linear, small, logs, z_max, total, ties, rest, y_sum = columns
    F = z_out.dtype.type
    zero = F(0.0)
    one = F(1.0)
    cap = F(708.0) if z_out.itemsize == 8 else F(87.0)
    TB = block_shapes(z_out)[1]
    K = ys.shape[0]
    for t in range(TILE):
        z_max[t] = z_out[t // TB, 0, t % TB]
        total[t] = zero
        ties[t] = -one
        rest[t] = zero
        y_sum[t] = zero if has_targets else one  # no targets: δ = h
    for k in range(1, K):
        for p in range(TILE // TB):
            z_k = z_out[p, k]
            for t in range(TB):
                z_max[p * TB + t] = max(z_max[p * TB + t], z_k[t])
    for k in range(K):
        y_k = ys[k]
        for p in range(TILE // TB):
            z_k = z_out[p, k]
            d_k = delta[p, k]
            for t in range(TB):
                u = p * TB + t
                x = z_k[t] - z_max[u]
                e = exp(max(x, -cap)) * F(x >= -cap)
                d_k[t] = e
                total[u] += e
                tie = F(x == zero)
                ties[u] += tie
                small[u] += e * (one - tie)
                rest[u] += e * (one - y_k[u])
                y_sum[u] += y_k[u]
                linear[u] -= y_k[u] * x
    # δ_k = (e_k (Σ y − y_k) − y_k R_k) / total, R_k = Σ_{j≠k} e_j: for labels `rest` (e_k / total
    # off the label, −rest / total on it), for float targets total − e_k (a blend, not a branch);
    # sums of two products by fma, the same bits however the loop vectorizes
    # (docs/decisions.md#hessp-fma)
    by_label = F(use_labels)
    for k in range(K):
        y_k = ys[k]
        for p in range(TILE // TB):
            d_k = delta[p, k]
            for t in range(TB):
                u = p * TB + t
                e = d_k[t]
                y = y_k[u]
                others = fma(by_label, rest[u], (one - by_label) * (total[u] - e))
                d = fma(e, y_sum[u] - y, -(y * others)) / total[u]
                d_k[t] = d * weight[u]
    for t in range(TILE):
        logs[t] = y_sum[t] * log1p(small[t] + ties[t])


@jit
def identity_output(z_out, delta, ys, columns):
    """:func:`output_layer` for a linear output: h = z, cost_i = ½ Σ_k (z_k − y_k)², δ = z − y."""
    kernel_features()
    compact_code()  # off the sigmoid path: a separate, compact function
    _, weight, linear = columns[:3]
    half = z_out.dtype.type(0.5)
    TB = block_shapes(z_out)[1]
    for k in range(ys.shape[0]):
        y_k = ys[k]
        for p in range(TILE // TB):
            z_k = z_out[p, k]
            d_k = delta[p, k]
            for t in range(TB):
                d = z_k[t] - y_k[p * TB + t]
                linear[p * TB + t] += half * d * d
                d_k[t] = d * weight[p * TB + t]


@jit
def output_curvature(g, z_out, rz_out, rdelta, ys, columns):
    """The R-pass's step 2' for a tile, after :func:`output_layer` (whose ``columns`` hold the
    tile's weights s, 0 for padding examples, and ``ys`` its targets): R{δ^(L)} = s (∂h/∂z)
    R{z^(L)} into ``rdelta``, from z^(L) in ``z_out`` and R{z^(L)} in ``rz_out``:

        sigmoid   h(1 − h) R{z} = e / (1 + e)² R{z},  e = exp(−|z|)
        softmax   Σ_k y_k (h .* R{z} − h (hᵀ R{z})),  h = softmax(z)
        identity  R{z}
    """
    kernel_features()
    _, weight, _, _, _, z_max, total, h_rz, _, y_sum = columns
    F = z_out.dtype.type
    zero = F(0.0)
    one = F(1.0)
    cap = F(708.0) if z_out.itemsize == 8 else F(87.0)
    TB = block_shapes(z_out)[1]
    K = ys.shape[0]
    if g == SOFTMAX:
        for t in range(TILE):
            z_max[t] = z_out[t // TB, 0, t % TB]
            total[t] = zero
            h_rz[t] = zero
            y_sum[t] = zero
        for k in range(1, K):
            for t in range(TILE):
                z_max[t] = max(z_max[t], z_out[t // TB, k, t % TB])
        for k in range(K):  # e_k = exp(z_k − max z) into R{δ}, then h_k = e_k / Σ e
            for t in range(TILE):
                x = z_out[t // TB, k, t % TB] - z_max[t]
                e = exp(max(x, -cap)) * F(x >= -cap)
                rdelta[t // TB, k, t % TB] = e
                total[t] += e
                y_sum[t] += ys[k, t]
        for k in range(K):
            for t in range(TILE):
                h = rdelta[t // TB, k, t % TB] / total[t]
                rdelta[t // TB, k, t % TB] = h
                h_rz[t] += h * rz_out[t // TB, k, t % TB]
        for k in range(K):
            for t in range(TILE):
                h = rdelta[t // TB, k, t % TB]
                r = weight[t] * (y_sum[t] * (h * (rz_out[t // TB, k, t % TB] - h_rz[t])))
                rdelta[t // TB, k, t % TB] = r
    elif g == IDENTITY:
        for k in range(K):
            for t in range(TILE):
                rdelta[t // TB, k, t % TB] = weight[t] * rz_out[t // TB, k, t % TB]
    else:
        for k in range(K):
            for p in range(TILE // TB):
                z_k = z_out[p, k]
                for t in range(TB):
                    e = exp(-min(abs(z_k[t]), cap)) * F(abs(z_k[t]) <= cap)
                    curve = e / ((one + e) * (one + e))
                    rdelta[p, k, t] = weight[p * TB + t] * (curve * rz_out[p, k, t])
