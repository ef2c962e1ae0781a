"""Hypothesis strategies shared by the tests: networks, data and targets (../shared/STYLE.md, point 9)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import strategies as st

import fastbp


@dataclass
class Problem:
    theta: np.ndarray
    X: np.ndarray
    y: np.ndarray
    layer_sizes: tuple[int, ...]
    lam: float
    activation: str | tuple[str, ...] = "sigmoid"
    output: str = "sigmoid"
    sample_weight: np.ndarray | None = field(default=None)

    def args(self):
        return self.theta, self.X, self.y, self.layer_sizes, self.lam

    def kwargs(self):
        """The model's keyword arguments (activation, output, sample_weight)."""
        return {
            "activation": self.activation,
            "output": self.output,
            "sample_weight": self.sample_weight,
        }

    def astype(self, dtype):
        """The same problem with θ, X, float targets and weights rounded to ``dtype``."""
        y = self.y if self.y.dtype.kind in "iu" else self.y.astype(dtype)
        w = self.sample_weight
        return replace(
            self,
            theta=self.theta.astype(dtype),
            X=self.X.astype(dtype),
            y=y,
            sample_weight=None if w is None else w.astype(dtype),
        )


layer_sizes = st.lists(st.integers(1, 8), min_size=2, max_size=5).map(tuple)
lams = st.one_of(st.just(0.0), st.floats(0.0, 10.0, allow_nan=False))


@st.composite
def problems(draw, sizes=layer_sizes, m=st.integers(1, 64), weight_scale=st.floats(0.1, 3.0)):
    """A network, its weights, data in [-2, 2], and labels or float targets, all seeded."""
    sizes = draw(sizes)
    n = draw(m)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    K = sizes[-1]
    theta = rng.normal(scale=draw(weight_scale), size=fastbp.n_params(sizes))
    X = rng.uniform(-2.0, 2.0, size=(n, sizes[0]))
    kind = draw(st.sampled_from(["labels", "targets"]))
    if kind == "labels":
        y = rng.integers(0, 2 if K == 1 else K, size=n)
    else:
        y = rng.uniform(0.0, 1.0, size=(n, K))
    return Problem(theta, X, y, sizes, draw(lams))


def large_problems():
    """A few draws with thousands of examples: several parallel blocks and a partial last tile."""
    return problems(
        m=st.integers(2000, 6000),
        sizes=st.lists(st.integers(1, 8), min_size=2, max_size=4).map(tuple),
    )


ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
OUTPUTS = ("sigmoid", "softmax", "identity")


def model_targets(rng, output, kind, n, K):
    """Labels or float targets that ``output`` takes: labels 0 … K−1 (0/1 when K = 1), targets
    in [0, 1] (sigmoid), probability rows (softmax), normal numbers (identity, no labels)."""
    if output == "identity":
        return rng.normal(size=(n, K)) if K > 1 or kind == "labels" else rng.normal(size=n)
    if kind == "labels":
        return rng.integers(0, 2 if K == 1 else K, size=n)
    if output == "softmax":
        return rng.dirichlet(np.ones(K), size=n)
    return rng.uniform(0.0, 1.0, size=(n, K))


@st.composite
def model_problems(
    draw,
    sizes=layer_sizes,
    m=st.integers(1, 64),
    weight_scale=st.floats(0.1, 2.0),
    activations=st.sampled_from(ACTIVATIONS),
    outputs=st.sampled_from(OUTPUTS),
):
    """:func:`problems` with a hidden activation (one for all layers, or one per layer), an
    output, and sample weights (none, or in [0, 2] with some zeros), all seeded."""
    sizes = draw(sizes)
    output = draw(outputs)
    if output == "softmax" and sizes[-1] < 2:
        sizes = (*sizes[:-1], 2)
    n_hidden = len(sizes) - 2
    if draw(st.booleans()):
        activation = draw(activations)
    else:
        activation = tuple(draw(st.lists(activations, min_size=n_hidden, max_size=n_hidden)))
    n = draw(m)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    theta = rng.normal(scale=draw(weight_scale), size=fastbp.n_params(sizes))
    X = rng.uniform(-2.0, 2.0, size=(n, sizes[0]))
    y = model_targets(rng, output, draw(st.sampled_from(["labels", "targets"])), n, sizes[-1])
    weights = None
    if draw(st.booleans()):
        weights = rng.uniform(0.0, 2.0, size=n) * (rng.uniform(size=n) > 0.2)
        weights[rng.integers(n)] = 1.5  # never all zero
    return Problem(theta, X, y, sizes, draw(lams), activation, output, weights)
