"""The one table of benchmark cases, shared by ``python -m bench`` and ``tests/test_bench.py``.

Each case is a network shape and a number of examples ``m``. :func:`make_problem` turns a case
into data: seeded random ``X`` in [0, 1], random integer labels, the course's random
initialization of θ and λ = 1; every implementation gets exactly these arrays.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

import fastbp

__all__ = ["CASES", "LAMBDA", "Case", "Problem", "flops_per_example", "make_problem"]

LAMBDA = 1.0  # λ of every case: the course exercise's value
SEED = 20261127


@dataclass(frozen=True)
class Case:
    """A benchmark case: layer sizes ``(s_1, …, s_L)`` and the number of examples ``m``."""

    name: str
    layer_sizes: tuple[int, ...]
    m: int

    @property
    def n_params(self) -> int:
        return fastbp.n_params(self.layer_sizes)


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("tiny", (2, 4, 1), 4),
        Case("xor", (2, 2, 1), 4),
        Case("digits", (64, 32, 10), 1797),
        Case("ex4", (400, 25, 10), 5000),
        Case("deep", (100, 100, 100, 100, 10), 10000),
        Case("mnist", (784, 128, 10), 20000),
        Case("wide", (784, 512, 512, 10), 5000),
    )
}


@dataclass(frozen=True)
class Problem:
    """One case's data in one dtype. ``theta_alt`` is θ with one weight changed (see below)."""

    case: Case
    dtype: np.dtype
    X: np.ndarray  # (m, s_1) in [0, 1]
    y: np.ndarray  # (m,) int64 labels in 0 … K−1 (0 or 1 when K = 1)
    theta: np.ndarray  # (P,) fastbp's flat layout
    theta_alt: np.ndarray  # θ with its last weight moved by 1e-3
    lam: float

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.case.layer_sizes

    @property
    def m(self) -> int:
        return self.X.shape[0]

    def targets(self) -> np.ndarray:
        """The (m, K) one-hot (K > 1) or 0/1 (K = 1) target matrix, in the problem's dtype."""
        K = self.layer_sizes[-1]
        if K == 1:
            return self.y.reshape(-1, 1).astype(self.dtype)
        return np.eye(K, dtype=self.dtype)[self.y]


def make_problem(case: Case, dtype: DTypeLike = np.float64, m: int | None = None) -> Problem:
    """The data of ``case`` in ``dtype`` (float64 or float32), with ``m`` examples (default: the case's).

    The draws are seeded by the case's name, so a case's data do not depend on which other cases
    run. θ follows the course's initialization: each Θ^(l) uniform in [−ε, ε] with
    ε = √6 / √(s_l + s_{l+1}). Everything is drawn in float64 and rounded once to ``dtype``, so
    every implementation sees the same rounded inputs.

    ``theta_alt`` exists so that no implementation can answer a timed call from a result it
    remembers (``fastbp.Objective``'s ``fun``/``jac`` share one computation at the same θ):
    timing loops alternate θ and ``theta_alt``, so every call computes.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    m = case.m if m is None else m
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    rng = np.random.default_rng([SEED, zlib.crc32(case.name.encode())])
    sizes = case.layer_sizes
    thetas = []
    for s_in, s_out in itertools.pairwise(sizes):
        epsilon = math.sqrt(6) / math.sqrt(s_in + s_out)
        thetas.append(rng.uniform(-epsilon, epsilon, (s_out, s_in + 1)))
    theta = fastbp.pack(thetas).astype(dtype)
    theta_alt = theta.copy()
    theta_alt[-1] += 1e-3
    X = rng.random((m, sizes[0])).astype(dtype)
    y = rng.integers(0, max(2, sizes[-1]), m)
    return Problem(case, dtype, X, y, theta, theta_alt, LAMBDA)


def flops_per_example(layer_sizes: tuple[int, ...]) -> int:
    """Floating-point operations per example of one (J, grad) evaluation, 2 per multiply-add.

    2·P for the forward pass, 2·P for the Δ accumulation and 2·Σ_{l=2}^{L−1} s_{l+1}·s_l for the
    δ recurrence (the bias row dropped); sigmoids, logs and the penalty are not counted.
    """
    P = fastbp.n_params(layer_sizes)
    recurrence = sum(layer_sizes[l] * layer_sizes[l + 1] for l in range(1, len(layer_sizes) - 1))
    return 4 * P + 2 * recurrence
