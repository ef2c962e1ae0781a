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
    with np.errstate(over="ignore"):  # e^(−z) = inf for z < −709 gives the limit, 0
        return 1.0 / (1.0 + np.exp(-z))


def softplus(z):
    """log(1 + e^z), stable for any z."""
    return np.logaddexp(0.0, z)


# g and g' written from a = g(z), for each hidden activation
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda a: a * (1.0 - a)),
    "tanh": (np.tanh, lambda a: 1.0 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(np.float64)),
    "identity": (lambda z: z, np.ones_like),
}


def output_cost_and_delta(z, y, output):
    """(cost_i, δ^(L)) of one example from its output layer's z and its targets y."""
    if output == "sigmoid":
        # softplus(z) − y z and a − y, written as (1 − y) softplus(z) + y softplus(−z) and
        # (1 − y) g(z) − y g(−z): the same quantities, without the cancellation that loses a
        # saturated output's digits when y = 1 (at z = 13, softplus(z) − z was 2.6e-10 off).
        cost = float(np.sum((1.0 - y) * softplus(z) + y * softplus(-z)))
        return cost, (1.0 - y) * sigmoid(z) - y * sigmoid(-z)
    if output == "identity":
        return 0.5 * float(np.sum((z - y) ** 2)), z - y
    # softmax: logsumexp(z) = max z + log(1 + Σ of e^(z_j − max z) over all but one maximum);
    # δ_k = h_k Σ_j y_j − y_k = Σ_{j≠k} (y_j h_k − y_k h_j), as Σ_j h_j = 1: no 1 − h_k
    K = z.shape[0]
    top = int(np.argmax(z))
    e = np.exp(z - z[top])
    log_sum = np.log1p(np.sum(np.delete(e, top)))
    cost = float(np.sum(y * ((z[top] - z) + log_sum)))
    h = e / np.sum(e)
    delta = np.array(
        [np.sum(np.delete(y, k)) * h[k] - y[k] * np.sum(np.delete(h, k)) for k in range(K)]
    )
    return cost, delta


def cost_and_grad(
    theta,
    X,
    y,
    layer_sizes,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    sample_weight=None,
):
    """J and D of docs/design.md by the literal per-example loop, in float64 arithmetic.

    activation: one name or one per hidden layer; sample_weight: s_i, J and D normalized by Σ s_i.
    """
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    m = X.shape[0]
    Thetas = split(theta, layer_sizes)
    n_hidden = len(Thetas) - 1
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    s = np.ones(m) if sample_weight is None else np.asarray(sample_weight, np.float64)
    S = float(np.sum(s))
    Y = targets(y, m, layer_sizes[-1])
    Deltas = [np.zeros_like(T) for T in Thetas]
    J = 0.0
    for i in range(m):
        a = [X[i]]
        for l, T in enumerate(Thetas):
            z = T @ np.concatenate(([1.0], a[-1]))
            a.append(ACTIVATIONS[names[l]][0](z) if l < n_hidden else z)
        cost_i, delta = output_cost_and_delta(a[-1], Y[i], output)
        J += s[i] * cost_i
        delta = s[i] * delta
        for l in range(len(Thetas) - 1, -1, -1):
            Deltas[l] += np.outer(delta, np.concatenate(([1.0], a[l])))
            if l > 0:
                delta = (Thetas[l].T @ delta)[1:] * ACTIVATIONS[names[l - 1]][1](a[l])
    J /= S
    grads = []
    for T, Delta in zip(Thetas, Deltas, strict=True):
        D = Delta / S
        D[:, 1:] += lam / S * T[:, 1:]
        J += lam / (2 * S) * float(np.sum(T[:, 1:] ** 2))
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


def relu_margin(theta, X, layer_sizes, activation):
    """min |z| over the ReLU layers' units and examples (inf without ReLU): how far the data is
    from the kink, where a kernel and this reference may round z to different sides of 0."""
    Thetas = split(np.asarray(theta, np.float64), layer_sizes)
    n_hidden = len(Thetas) - 1
    names = [activation] * n_hidden if isinstance(activation, str) else list(activation)
    a = np.asarray(X, np.float64)
    margin = np.inf
    for l, T in enumerate(Thetas[:-1]):
        z = np.hstack([np.ones((a.shape[0], 1)), a]) @ T.T
        if names[l] == "relu":
            margin = min(margin, float(np.min(np.abs(z))))
        a = ACTIVATIONS[names[l]][0](z)
    return margin
