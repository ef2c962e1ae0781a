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

Θ^(l) starts in the flat θ at ``layers[l, THETA]`` and is row-major with shape
``(s_{l+1}, s_l + 1)``; g_l is ``layers[l, G]`` (``fastbp._layout.layer_table``). ``tiled.py``
computes the same sums over tiles of examples, fast; this file is what it computes, line by line.
"""

from __future__ import annotations

import numpy as np

from .._layout import IDENTITY, IN, OUT, RELU, SIGMOID, SOFTMAX, TANH, THETA, G
from .compile import jit, kernel_features

__all__ = ["literal_sums", "normalize"]


def literal_sums(theta, layers, X, labels, Y, weights, grad, proba, m, lam):
    """(Σ_i s_i cost_i, penalty) over the rows of X, and grad = Σ_i Δ_i / m + (λ/m) Θ written,
    one example at a time, serially. Arguments as ``tiled.tiled_sums`` (there is one block);
    (NaN, NaN) when θ is not finite.
    """
    kernel_features()
    F = theta.dtype.type
    one = F(1.0)
    zero = F(0.0)
    n_layers = layers.shape[0] - 1
    K = layers[n_layers, IN]
    output = layers[n_layers - 1, G]
    want_grad = grad.shape[0] > 0
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    a_off = np.zeros(n_layers + 2, np.int64)  # a^(l) is a[a_off[l] : a_off[l + 1]]
    for l in range(n_layers + 1):
        a_off[l + 1] = a_off[l] + layers[l, IN]
    a = np.zeros(a_off[n_layers + 1], theta.dtype)
    z_L = np.zeros(K, theta.dtype)
    y = np.zeros(K, theta.dtype)
    delta = np.zeros(a_off[n_layers + 1], theta.dtype)  # δ^(l) is delta[a_off[l] : a_off[l+1]]
    grad[:] = zero
    for p in range(theta.shape[0]):
        if not np.isfinite(theta[p]):
            return np.nan, np.nan
    cost = 0.0
    for i in range(X.shape[0]):
        # 1. a^(1) = x^(i); forward pass to a^(L) (z^(L) kept, the output's h comes in 2.).
        for j in range(layers[0, IN]):
            a[j] = X[i, j]
        for l in range(n_layers):
            n_in = layers[l, IN] + 1
            g = layers[l, G]
            for r in range(layers[l, OUT]):
                w = layers[l, THETA] + r * n_in
                z = theta[w]
                for j in range(layers[l, IN]):
                    z += theta[w + 1 + j] * a[a_off[l] + j]
                if l == n_layers - 1:
                    z_L[r] = z
                elif g == SIGMOID:
                    a[a_off[l + 1] + r] = one / (one + np.exp(-z))
                elif g == TANH:
                    a[a_off[l + 1] + r] = np.tanh(z)
                elif g == RELU:
                    a[a_off[l + 1] + r] = max(z, zero)
                else:
                    a[a_off[l + 1] + r] = z
        # 2. the targets y^(i), δ^(L) = s_i (h − y^(i)) and the example's cost, from z^(L)
        s_i = weights[i] if weights.shape[0] > 0 else one
        for k in range(K):
            if use_labels:
                y[k] = F(labels[i]) if K == 1 else (one if labels[i] == k else zero)
            elif has_targets:
                y[k] = Y[i, k]
        d_L = delta[a_off[n_layers] : a_off[n_layers + 1]]
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
                if use_labels and labels[i] != k:
                    rest += e
                y_sum += y[k]
                cost += s_i * (y[k] * (z_max - z_L[k]))
            cost += s_i * (y_sum * np.log1p(small + ties))  # log1p(…) = logsumexp(z) − max z
            for k in range(K):
                e = d_L[k]
                if use_labels:  # h_k − y_k = e_k / total for k ≠ label, −rest / total for it
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
        if proba.shape[0] > 0:  # no targets: δ^(L) holds h
            for k in range(K):
                proba[i, k] = d_L[k]
        if not has_targets:
            continue
        if weights.shape[0] > 0:
            for k in range(K):
                d_L[k] *= s_i
        if not want_grad:
            continue
        for l in range(n_layers - 1, -1, -1):
            n_in = layers[l, IN] + 1
            # 4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
            for r in range(layers[l, OUT]):
                d = delta[a_off[l + 1] + r]
                w = layers[l, THETA] + r * n_in
                grad[w] += d
                for j in range(layers[l, IN]):
                    grad[w + 1 + j] += d * a[a_off[l] + j]
            # 3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'(z^(l)), g' from a^(l)
            if l > 0:
                g = layers[l - 1, G]
                for j in range(layers[l, IN]):
                    s = zero
                    for r in range(layers[l, OUT]):
                        s += theta[layers[l, THETA] + r * n_in + 1 + j] * delta[a_off[l + 1] + r]
                    a_j = a[a_off[l] + j]
                    if g == SIGMOID:
                        s = s * a_j * (one - a_j)
                    elif g == TANH:
                        s = s * (one - a_j * a_j)
                    elif g == RELU:
                        s = s if a_j > zero else zero
                    delta[a_off[l] + j] = s
    # 5. D = Δ/m + (λ/m) Θ and the penalty (λ/2m) Σ Θ², over non-bias weights
    return cost, normalize(theta, layers, grad, m, lam, grad)


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
