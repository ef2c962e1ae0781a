"""Slow, plainly correct NumPy version of docs/design.md. Shares no code with fastbp.

Everything here is written for clarity, in float64 unless told otherwise, one example at a time
for the gradient and with whole matrices for the cost.
"""

from __future__ import annotations

import numpy as np


def shapes(layer_sizes):
    return [(layer_sizes[i + 1], layer_sizes[i] + 1) for i in range(len(layer_sizes) - 1)]


def split(theta, layer_sizes):
    """θ → [Θ^(1), …]: each matrix row-major, one after another."""
    mats, start = [], 0
    for r, c in shapes(layer_sizes):
        mats.append(np.array(theta[start : start + r * c]).reshape(r, c))
        start += r * c
    assert start == len(theta)
    return mats


def targets(y, m, K):
    """The (m, K) target matrix for integer labels or float targets."""
    y = np.asarray(y)
    if y.ndim == 1 and y.dtype.kind in "biu":
        if K == 1:
            return y.reshape(m, 1).astype(np.float64)
        Y = np.zeros((m, K))
        Y[np.arange(m), y] = 1.0
        return Y
    return np.asarray(y, dtype=np.float64).reshape(m, K)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softplus(z):
    """log(1 + e^z), stable for any z."""
    return np.logaddexp(0.0, z)


def cost_and_grad(theta, X, y, layer_sizes, lam=0.0):
    """J and D of docs/design.md by the literal per-example loop, in float64 arithmetic."""
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    m = X.shape[0]
    Thetas = split(theta, layer_sizes)
    Y = targets(y, m, layer_sizes[-1])
    Deltas = [np.zeros_like(T) for T in Thetas]
    J = 0.0
    for i in range(m):
        a = [X[i]]
        z_last = None
        for T in Thetas:
            z = T @ np.concatenate(([1.0], a[-1]))
            a.append(sigmoid(z))
            z_last = z
        # softplus(z) − y z and a − y, written as (1 − y) softplus(z) + y softplus(−z) and
        # (1 − y) g(z) − y g(−z): the same quantities, without the cancellation that loses a
        # saturated output's digits when y = 1 (at z = 13, softplus(z) − z was 2.6e-10 off).
        y_i = Y[i]
        J += float(np.sum((1.0 - y_i) * softplus(z_last) + y_i * softplus(-z_last)))
        delta = (1.0 - y_i) * a[-1] - y_i * sigmoid(-z_last)
        for l in range(len(Thetas) - 1, -1, -1):
            Deltas[l] += np.outer(delta, np.concatenate(([1.0], a[l])))
            if l > 0:
                delta = (Thetas[l].T @ delta)[1:] * a[l] * (1.0 - a[l])
    J /= m
    grads = []
    for T, Delta in zip(Thetas, Deltas, strict=True):
        D = Delta / m
        D[:, 1:] += lam / m * T[:, 1:]
        J += lam / (2 * m) * float(np.sum(T[:, 1:] ** 2))
        grads.append(D)
    return J, np.concatenate([D.ravel() for D in grads])


def cost(theta, X, y, layer_sizes, lam=0.0):
    """J by whole-matrix forward propagation with the plain log formula (for unsaturated nets)."""
    m = X.shape[0]
    Y = targets(y, m, layer_sizes[-1])
    a = np.asarray(X, dtype=np.float64)
    Thetas = split(np.asarray(theta, np.float64), layer_sizes)
    for T in Thetas:
        a = sigmoid(np.hstack([np.ones((m, 1)), a]) @ T.T)
    J = np.sum(-Y * np.log(a) - (1 - Y) * np.log(1 - a)) / m
    return J + lam / (2 * m) * sum(np.sum(T[:, 1:] ** 2) for T in Thetas)


def numerical_gradient(f, theta, eps=1e-4):
    """Central differences of a scalar function, one coordinate at a time."""
    theta = np.array(theta, dtype=np.float64)
    g = np.zeros_like(theta)
    for p in range(theta.size):
        old = theta[p]
        theta[p] = old + eps
        up = f(theta)
        theta[p] = old - eps
        down = f(theta)
        theta[p] = old
        g[p] = (up - down) / (2 * eps)
    return g


def max_rel(g, g_ref):
    """max |g − g_ref| / max |g_ref| (docs/design.md's gradient measure)."""
    g, g_ref = np.asarray(g, np.float64), np.asarray(g_ref, np.float64)
    scale = np.max(np.abs(g_ref))
    return float(np.max(np.abs(g - g_ref)) / scale) if scale > 0 else float(np.max(np.abs(g)))
