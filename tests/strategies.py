"""Hypothesis strategies shared by the tests: networks, data and targets (../shared/STYLE.md, point 9)."""

from __future__ import annotations

from dataclasses import dataclass

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

    def args(self):
        return self.theta, self.X, self.y, self.layer_sizes, self.lam

    def astype(self, dtype):
        """The same problem with θ, X and float targets rounded to ``dtype``."""
        y = self.y if self.y.dtype.kind in "iu" else self.y.astype(dtype)
        return Problem(
            self.theta.astype(dtype), self.X.astype(dtype), y, self.layer_sizes, self.lam
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
