"""The seed's loop, one example at a time: the readable reference of every kernel.

For every example i, with weight s_i (1 without sample weights; docs/design.md, "Gradient"):

    1. a^(1) = x^(i);  z^(l+1) = Θ^(l) [1; a^(l)];  a^(l+1) = g_l(z^(l+1))
    2. δ^(L) = s_i (h − y^(i));  cost += s_i cost_i, by the output (``layers[L−2, G]``):
         sigmoid   h = g(z),        cost_i = Σ_k softplus(z_k) − y_k z_k
         softmax   h = softmax(z),  cost_i = Σ_k y_k (logsumexp(z) − z_k), δ = s_i (h Σ_k y_k − y)
         identity  h = z,           cost_i = ½ Σ_k (z_k − y_k)²
    3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'_l, from a^(l):      for l = L−1 … 2
         sigmoid a (1 − a), tanh 1 − a², ReLU [a > 0], identity 1
    4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ

then 5. D = Δ/m + (λ/m) Θ over non-bias weights and the penalty (λ/2m) Σ Θ² (:func:`normalize`,
the last step of every entry point, with m = S = Σ s_i when weighted; m = 1, λ = 0 leave the sums
as they are). Entry points return (Σ cost, penalty); the caller forms J = Σ cost / m + penalty.

:func:`literal_hessp` runs Pearlmutter's R-pass beside steps 1-4: R{·} is the derivative along
a direction V (laid out like θ), and R{Δ}/m + (λ/m) V is the Hessian-vector product H·V of J
(docs/design.md, "Hessian-vector products"):

    1'. R{a^(1)} = 0;  R{z^(l+1)} = V^(l) [1; a^(l)] + Θ^(l) [0; R{a^(l)}];  R{a^(l+1)} = g' R{z^(l+1)}
    2'. R{δ^(L)} = s_i (∂h/∂z) R{z^(L)}: h(1 − h) .* R{z} (sigmoid), Σ_k y_k (h .* R{z} − h hᵀR{z})
        (softmax), R{z} (identity)
    3'. R{δ^(l)} = ((V^(l))ᵀ δ^(l+1) + (Θ^(l))ᵀ R{δ^(l+1)})_{1:} .* g' + ((Θ^(l))ᵀ δ^(l+1))_{1:} .* c .* R{a^(l)},
        c = g''/g' from a: 1 − 2a (sigmoid), −2a (tanh), 0 (ReLU, identity)
    4'. R{Δ^(l)} += R{δ^(l+1)} [1; a^(l)]ᵀ + δ^(l+1) [0; R{a^(l)}]ᵀ

The Gauss-Newton product G·V keeps only the terms through R{δ^(L)}: 3'. without V and c, 4'.
without its second term, which is steps 3-4 run on R{δ^(L)} in place of δ^(L).

Θ^(l) starts in the flat θ at ``layers[l, THETA]`` and is row-major with shape
``(s_{l+1}, s_l + 1)``; g_l is ``layers[l, G]`` (``fastbp._layout.layer_table``). ``tiled.py``
computes the same sums over tiles of examples, fast; this file is what it computes, line by line.
"""

from __future__ import annotations

import numpy as np

from .._layout import IDENTITY, IN, OUT, RELU, SIGMOID, SOFTMAX, TANH, THETA, G
from .compile import jit, kernel_features

__all__ = ["literal_hessp", "literal_sums", "normalize"]


def literal_sums(theta, layers, X, labels, Y, weights, grad, proba, m, lam):
    """(Σ_i s_i cost_i, penalty) over the rows of X, and grad = Σ_i Δ_i / m + (λ/m) Θ written,
    one example at a time, serially. Arguments as ``tiled.tiled_sums`` (there is one block);
    (NaN, NaN) when θ is not finite.
    """
    kernel_features()
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]
    want_grad = grad.shape[0] > 0
    has_targets = labels.shape[0] > 0 or Y.shape[0] > 0
    a_off = unit_offsets(layers)  # a^(l) is a[a_off[l] : a_off[l + 1]], δ^(l) alike
    a = np.zeros(a_off[n_layers + 1], theta.dtype)
    delta = np.zeros(a_off[n_layers + 1], theta.dtype)
    y = np.zeros(K, theta.dtype)
    grad[:] = theta.dtype.type(0.0)
    if not finite(theta):
        return np.nan, np.nan
    cost = 0.0
    for i in range(X.shape[0]):
        forward_example(theta, layers, a_off, X[i], a)  # 1.
        cost = output_example(theta, layers, a_off, labels, Y, weights, i, a, y, delta, cost)  # 2.
        if proba.shape[0] > 0:  # no targets: δ^(L) holds h
            for k in range(K):
                proba[i, k] = delta[a_off[n_layers] + k]
        if has_targets and want_grad:
            backward_example(theta, layers, a_off, a, delta, grad)  # 3., 4.
    # 5. D = Δ/m + (λ/m) Θ and the penalty (λ/2m) Σ Θ², over non-bias weights
    return cost, normalize(theta, layers, grad, m, lam, grad)


def literal_hessp(theta, v, layers, X, labels, Y, weights, hv, gauss_newton, m, lam):
    """Σ_i s_i cost_i over the rows of X, and hv = R{Δ}/m + (λ/m) V written: H·V of J, or the
    Gauss-Newton product G·V when ``gauss_newton``; one example at a time, serially.

    v: (P,) the direction V, laid out like θ. hv: (P,), written. Other arguments as
    :func:`literal_sums` (with targets; no proba). NaN when θ or V is not finite.
    """
    kernel_features()
    n_layers = layers.shape[0] - 1
    a_off = unit_offsets(layers)
    a = np.zeros(a_off[n_layers + 1], theta.dtype)
    delta = np.zeros(a_off[n_layers + 1], theta.dtype)
    ra = np.zeros(a_off[n_layers + 1], theta.dtype)  # R{a^(l)}, then R{z^(L)} in its place
    rdelta = np.zeros(a_off[n_layers + 1], theta.dtype)
    y = np.zeros(layers[n_layers, IN], theta.dtype)
    hv[:] = theta.dtype.type(0.0)
    if not (finite(theta) and finite(v)):
        return np.nan
    cost = 0.0
    for i in range(X.shape[0]):
        forward_example(theta, layers, a_off, X[i], a)  # 1.
        r_forward_example(theta, v, layers, a_off, a, ra)  # 1'.
        cost = output_example(theta, layers, a_off, labels, Y, weights, i, a, y, delta, cost)  # 2.
        s_i = weights[i] if weights.shape[0] > 0 else theta.dtype.type(1.0)
        r_output_example(layers, a_off, a, ra, y, s_i, rdelta)  # 2'.
        if gauss_newton:
            backward_example(theta, layers, a_off, a, rdelta, hv)
        else:
            r_backward_example(theta, v, layers, a_off, a, ra, delta, rdelta, hv)  # 3'., 4'.
    normalize(v, layers, hv, m, lam, hv)
    return cost


@jit
def unit_offsets(layers):
    """a_off, (L + 1,): the units of layer l are a_off[l] … a_off[l + 1] − 1 of a flat buffer."""
    kernel_features()
    n_layers = layers.shape[0] - 1
    a_off = np.zeros(n_layers + 2, np.int64)
    for l in range(n_layers + 1):
        a_off[l + 1] = a_off[l] + layers[l, IN]
    return a_off


@jit
def finite(theta):
    """Whether every entry of θ is finite."""
    kernel_features()
    for p in range(theta.shape[0]):
        if not np.isfinite(theta[p]):
            return False
    return True


@jit
def forward_example(theta, layers, a_off, x, a):
    """1. a^(1) = x; z^(l+1) = Θ^(l) [1; a^(l)], a^(l+1) = g_l(z^(l+1)), into ``a``; z^(L) in
    a^(L)'s place (the output's h comes in 2.)."""
    kernel_features()
    F = theta.dtype.type
    one = F(1.0)
    zero = F(0.0)
    n_layers = layers.shape[0] - 1
    for j in range(layers[0, IN]):
        a[j] = x[j]
    for l in range(n_layers):
        n_in = layers[l, IN] + 1
        g = layers[l, G]
        for r in range(layers[l, OUT]):
            w = layers[l, THETA] + r * n_in
            z = theta[w]
            for j in range(layers[l, IN]):
                z += theta[w + 1 + j] * a[a_off[l] + j]
            if l == n_layers - 1:
                a[a_off[n_layers] + r] = z
            elif g == SIGMOID:
                a[a_off[l + 1] + r] = one / (one + np.exp(-z))
            elif g == TANH:
                a[a_off[l + 1] + r] = np.tanh(z)
            elif g == RELU:
                a[a_off[l + 1] + r] = max(z, zero)
            else:
                a[a_off[l + 1] + r] = z


@jit
def output_example(theta, layers, a_off, labels, Y, weights, i, a, y, delta, cost):
    """2. example i's targets into y, and δ^(L) = s_i (h − y^(i)) into ``delta`` (h without
    targets), from z^(L) in ``a``; returns ``cost`` + s_i cost_i."""
    kernel_features()
    F = theta.dtype.type
    one = F(1.0)
    zero = F(0.0)
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    s_i = weights[i] if weights.shape[0] > 0 else one
    for k in range(K):
        if use_labels:
            y[k] = F(labels[i]) if K == 1 else (one if labels[i] == k else zero)
        elif has_targets:
            y[k] = Y[i, k]
    d_L = delta[a_off[n_layers] : a_off[n_layers + 1]]
    z_L = a[a_off[n_layers] : a_off[n_layers + 1]]
    label = labels[i] if use_labels else -1
    cost = output_delta(layers[n_layers - 1, G], z_L, y, label, has_targets, s_i, d_L, cost)
    if has_targets and weights.shape[0] > 0:
        for k in range(K):
            d_L[k] *= s_i
    return cost


@jit
def backward_example(theta, layers, a_off, a, delta, Delta):
    """3. and 4., from δ^(L) in ``delta``: Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ into Delta (laid out like
    θ), then δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'_l, for l = L−1 … 1."""
    kernel_features()
    n_layers = layers.shape[0] - 1
    for l in range(n_layers - 1, -1, -1):
        n_in = layers[l, IN] + 1
        # 4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
        for r in range(layers[l, OUT]):
            d = delta[a_off[l + 1] + r]
            w = layers[l, THETA] + r * n_in
            Delta[w] += d
            for j in range(layers[l, IN]):
                Delta[w + 1 + j] += d * a[a_off[l] + j]
        # 3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'(z^(l)), g' from a^(l)
        if l > 0:
            for j in range(layers[l, IN]):
                s = theta.dtype.type(0.0)
                for r in range(layers[l, OUT]):
                    s += theta[layers[l, THETA] + r * n_in + 1 + j] * delta[a_off[l + 1] + r]
                delta[a_off[l] + j] = by_slope(layers[l - 1, G], s, a[a_off[l] + j])


@jit
def by_slope(g, s, a):
    """s .* g'(z), from a = g(z): s a (1 − a) (sigmoid), s (1 − a²) (tanh), s [a > 0] (ReLU,
    so dead units give exact zeros), s (identity)."""
    kernel_features()
    one = type(a)(1.0)
    if g == SIGMOID:
        return s * a * (one - a)
    if g == TANH:
        return s * (one - a * a)
    if g == RELU:
        return s if a > type(a)(0.0) else type(a)(0.0)
    return s


@jit
def curvature(g, a):
    """c = g''(z) / g'(z) from a = g(z): 1 − 2a (sigmoid), −2a (tanh), 0 (ReLU, identity);
    R{g'(z)} = c R{a}. ReLU's g'' is 0 on both sides of its kink and taken 0 at it."""
    kernel_features()
    two = type(a)(2.0)
    if g == SIGMOID:
        return type(a)(1.0) - two * a
    if g == TANH:
        return -two * a
    return type(a)(0.0)


@jit
def r_forward_example(theta, v, layers, a_off, a, ra):
    """1'. R{z^(l+1)} = V^(l) [1; a^(l)] + Θ^(l) [0; R{a^(l)}], R{a^(l+1)} = g' R{z^(l+1)},
    from the forward pass's ``a``, into ``ra`` (R{a^(1)} = 0); R{z^(L)} in R{a^(L)}'s place."""
    kernel_features()
    n_layers = layers.shape[0] - 1
    for j in range(layers[0, IN]):
        ra[j] = theta.dtype.type(0.0)
    for l in range(n_layers):
        n_in = layers[l, IN] + 1
        for r in range(layers[l, OUT]):
            w = layers[l, THETA] + r * n_in
            rz = v[w]
            for j in range(layers[l, IN]):
                rz += v[w + 1 + j] * a[a_off[l] + j] + theta[w + 1 + j] * ra[a_off[l] + j]
            if l < n_layers - 1:
                rz = by_slope(layers[l, G], rz, a[a_off[l + 1] + r])
            ra[a_off[l + 1] + r] = rz


@jit
def r_output_example(layers, a_off, a, ra, y, s_i, rdelta):
    """2'. R{δ^(L)} = s_i (∂h/∂z) R{z^(L)} into ``rdelta``, from z^(L) in ``a`` and R{z^(L)} in
    ``ra``: h(1 − h) = e / (1 + e)², e = exp(−|z|), times R{z} (sigmoid); Σ_k y_k (h .* R{z} −
    h (hᵀ R{z})) with h = softmax(z) (softmax); R{z} (identity)."""
    kernel_features()
    F = ra.dtype.type
    one = F(1.0)
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]
    output = layers[n_layers - 1, G]
    z = a[a_off[n_layers] : a_off[n_layers + 1]]
    rz = ra[a_off[n_layers] : a_off[n_layers + 1]]
    rd = rdelta[a_off[n_layers] : a_off[n_layers + 1]]
    if output == SOFTMAX:
        z_max = z.max()
        total = F(0.0)
        y_sum = F(0.0)
        for k in range(K):
            total += np.exp(z[k] - z_max)
            y_sum += y[k]
        h_rz = F(0.0)  # hᵀ R{z}
        for k in range(K):
            h_rz += np.exp(z[k] - z_max) / total * rz[k]
        for k in range(K):
            rd[k] = s_i * (y_sum * (np.exp(z[k] - z_max) / total * (rz[k] - h_rz)))
    elif output == IDENTITY:
        for k in range(K):
            rd[k] = s_i * rz[k]
    else:
        for k in range(K):
            e = np.exp(-abs(z[k]))
            rd[k] = s_i * (e / ((one + e) * (one + e)) * rz[k])


@jit
def r_backward_example(theta, v, layers, a_off, a, ra, delta, rdelta, RDelta):
    """3'. and 4'., from δ^(L) and R{δ^(L)}: R{Δ^(l)} += R{δ^(l+1)} [1; a^(l)]ᵀ + δ^(l+1)
    [0; R{a^(l)}]ᵀ into RDelta (laid out like θ), then with b = ((Θ^(l))ᵀ δ^(l+1))_{1:}:
    R{δ^(l)} = ((V^(l))ᵀ δ^(l+1) + (Θ^(l))ᵀ R{δ^(l+1)})_{1:} .* g' + b .* c .* R{a^(l)} and
    δ^(l) = b .* g', for l = L−1 … 1."""
    kernel_features()
    n_layers = layers.shape[0] - 1
    for l in range(n_layers - 1, -1, -1):
        n_in = layers[l, IN] + 1
        for r in range(layers[l, OUT]):
            d = delta[a_off[l + 1] + r]
            rd = rdelta[a_off[l + 1] + r]
            w = layers[l, THETA] + r * n_in
            RDelta[w] += rd
            for j in range(layers[l, IN]):
                RDelta[w + 1 + j] += rd * a[a_off[l] + j] + d * ra[a_off[l] + j]
        if l > 0:
            g = layers[l - 1, G]
            for j in range(layers[l, IN]):
                b = theta.dtype.type(0.0)
                rb = theta.dtype.type(0.0)
                for r in range(layers[l, OUT]):
                    w = layers[l, THETA] + r * n_in + 1 + j
                    d = delta[a_off[l + 1] + r]
                    b += theta[w] * d
                    rb += v[w] * d + theta[w] * rdelta[a_off[l + 1] + r]
                a_j = a[a_off[l] + j]
                rdelta[a_off[l] + j] = (
                    by_slope(g, rb, a_j) + b * curvature(g, a_j) * ra[a_off[l] + j]
                )
                delta[a_off[l] + j] = by_slope(g, b, a_j)


@jit
def output_delta(output, z_L, y, label, has_targets, s_i, d_L, cost):
    """Step 2 for one example: d_L = h − y (h without targets) from z^(L), by the output code;
    returns ``cost`` + s_i cost_i, added unit by unit. y: the example's targets (K,); label: its
    label, or −1 for float targets."""
    kernel_features()
    F = z_L.dtype.type
    one = F(1.0)
    zero = F(0.0)
    K = z_L.shape[0]
    if output == SOFTMAX:
        z_max = z_L.max()
        total = zero  # Σ_k e_k, e_k = exp(z_k − max z)
        small = zero  # Σ e_k over z_k < max z: total = ties + small, exactly
        ties = -one  # how many z_k equal max z, less one
        rest = zero  # Σ e_k over k ≠ label: 1 − h_label without cancellation
        y_sum = zero if has_targets else one  # no targets: δ = h
        for k in range(K):
            e = np.exp(z_L[k] - z_max)
            d_L[k] = e
            total += e
            if z_L[k] == z_max:
                ties += one
            else:
                small += e
            if label >= 0 and label != k:
                rest += e
            y_sum += y[k]
            cost += s_i * (y[k] * (z_max - z_L[k]))
        cost += s_i * (y_sum * np.log1p(small + ties))  # log1p(…) = logsumexp(z) − max z
        for k in range(K):
            e = d_L[k]
            if label >= 0:  # h_k − y_k = e_k / total for k ≠ label, −rest / total for it
                d_L[k] = (e * (one - y[k]) - rest * y[k]) / total
            else:
                d_L[k] = (e * y_sum - y[k] * total) / total
    elif output == IDENTITY:
        for k in range(K):
            d_L[k] = z_L[k] - y[k]
            cost += s_i * (0.5 * d_L[k] * d_L[k])
    else:
        for k in range(K):
            e = np.exp(-abs(z_L[k]))
            # the small term last
            cost += s_i * ((max(z_L[k], zero) - y[k] * z_L[k]) + np.log1p(e))
            # a − y over a's denominator: no cancellation when a saturates
            s = one if z_L[k] >= zero else zero
            d_L[k] = ((s - y[k]) + (one - s) * e - y[k] * e) / (one + e)
    return cost


@jit
def normalize(theta, layers, Delta, m, lam, grad):
    """Step 5, in one pass: grad = Δ/m + (λ/m) Θ on non-bias weights (column 0 of every Θ^(l)
    is not regularized); returns the penalty (λ/2m) Σ_{j≥1} Θ², in float64.

    theta: (P,) in the compute dtype. Delta: (P,) sums over the m examples (any float dtype), or
    (0,) for no gradient; it may be grad itself. grad: (P,) or (0,), written, in θ's dtype.
    Computed in float64. With m = 1 and λ = 0, grad = Δ and the penalty is 0, exactly. With
    λ = 0 the penalty is 0 whatever θ (Σ Θ² may overflow for finite weights beyond 1e154).
    """
    kernel_features()
    want_grad = grad.shape[0] > 0
    F = grad.dtype.type
    scale = lam / m
    penalty = 0.0
    for l in range(layers.shape[0] - 1):
        n_in = layers[l, IN] + 1
        for r in range(layers[l, OUT]):
            row = layers[l, THETA] + r * n_in
            if want_grad:
                grad[row] = F(Delta[row] / m)  # the bias weight
            for p in range(row + 1, row + n_in):
                w = np.float64(theta[p])
                penalty += w * w
                if want_grad:
                    grad[p] = F(Delta[p] / m + scale * w)
    return lam / (2 * m) * penalty if lam > 0 else 0.0
