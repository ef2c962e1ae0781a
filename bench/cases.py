"""The one table of benchmark cases, shared by ``python -m bench`` and ``tests/test_bench.py``.

Each case is a network shape, its hidden activation and output (sigmoid and sigmoid unless told:
the course's network) and a number of examples ``m``. :func:`make_problem` turns a case into data:
seeded random ``X`` in [0, 1], random integer labels (float targets for the identity output), the
course's random initialization of θ and λ = 1; every implementation gets exactly these arrays.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

import fastbp

__all__ = [
    "CASES",
    "LAMBDA",
    "Case",
    "Problem",
    "flops_per_example",
    "make_problem",
]

LAMBDA = 1.0  # λ of every case: the course exercise's value
SEED = 20261127
NOISE = 0.1  # standard deviation of the noise on the identity output's targets


@dataclass(frozen=True)
class Case:
    """A benchmark case: layer sizes ``(s_1, …, s_L)``, the number of examples ``m``, the
    activation g of every hidden layer (sigmoid, tanh, relu or identity) and the output
    (sigmoid, softmax or identity, each with its cost: docs/design.md)."""

    name: str
    layer_sizes: tuple[int, ...]
    m: int
    activation: str = "sigmoid"
    output: str = "sigmoid"

    @property
    def n_params(self) -> int:
        return fastbp.n_params(self.layer_sizes)

    @property
    def is_sigmoid(self) -> bool:
        """Whether this is the course's network: sigmoid hidden layers and outputs."""
        return self.activation == self.output == "sigmoid"

    @property
    def network_keywords(self) -> dict[str, Any]:
        """fastbp's ``activation`` and ``output`` arguments for this case; empty for the
        course's network, whose defaults they are (so that older fastbp runs those cases)."""
        return {} if self.is_sigmoid else {"activation": self.activation, "output": self.output}


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
        # Networks a user would train today: ReLU with a softmax output on labels, and tanh
        # with a linear output on float targets (regression).
        Case("mnist-relu", (784, 128, 10), 20000, activation="relu", output="softmax"),
        Case("tanh-regression", (64, 64, 64, 1), 20000, activation="tanh", output="identity"),
    )
}


@dataclass(frozen=True)
class Problem:
    """One case's data in one dtype. ``theta_alt`` is θ with one weight changed (see below)."""

    case: Case
    dtype: np.dtype
    X: np.ndarray  # (m, s_1) in [0, 1]
    # (m,) int64 labels in 0 … K−1 (0 or 1 when K = 1); for the identity output, float targets
    # in the problem's dtype, (m,) when K = 1, else (m, K)
    y: np.ndarray
    theta: np.ndarray  # (P,) fastbp's flat layout
    theta_alt: np.ndarray  # θ with its last weight moved by 1e-3
    lam: float

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.case.layer_sizes

    @property
    def m(self) -> int:
        return self.X.shape[0]

    @property
    def activation(self) -> str:
        return self.case.activation

    @property
    def output(self) -> str:
        return self.case.output

    def targets(self) -> np.ndarray:
        """The (m, K) target matrix, in the problem's dtype: one-hot labels (K > 1), 0/1 labels
        (K = 1), or the identity output's float targets as they are."""
        K = self.layer_sizes[-1]
        if self.output == "identity":
            return self.y.reshape(-1, K)
        if K == 1:
            return self.y.reshape(-1, 1).astype(self.dtype)
        return np.eye(K, dtype=self.dtype)[self.y]


def make_problem(case: Case, dtype: DTypeLike = np.float64, m: int | None = None) -> Problem:
    """The data of ``case`` in ``dtype`` (float64 or float32), with ``m`` examples (default: the case's).

    The draws are seeded by the case's name, so a case's data do not depend on which other cases
    run. θ follows the course's initialization: each Θ^(l) uniform in [−ε, ε] with
    ε = √6 / √(s_l + s_{l+1}) (scikit-learn's for tanh and relu networks too). The labels are
    uniform in 0 … K−1; the identity output's targets are a smooth function of X plus noise
    (:func:`_regression_targets`). Everything is drawn in float64 and rounded once to
    ``dtype``, so every implementation sees the same rounded inputs.

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
    seed = [SEED, zlib.crc32(case.name.encode())]
    rng = np.random.default_rng(seed)
    sizes = case.layer_sizes
    thetas = []
    for s_in, s_out in itertools.pairwise(sizes):
        epsilon = math.sqrt(6) / math.sqrt(s_in + s_out)
        thetas.append(rng.uniform(-epsilon, epsilon, (s_out, s_in + 1)))
    theta = fastbp.pack(thetas).astype(dtype)
    theta_alt = theta.copy()
    theta_alt[-1] += 1e-3
    if case.output == "identity":
        # The function is drawn before X and the noise from a stream of its own, so that the
        # first m' rows of the data are the same for every m ≥ m' (as X is for every case).
        weights = rng.standard_normal((sizes[0], sizes[-1]))
        X64 = rng.random((m, sizes[0]))
        noise = np.random.default_rng([*seed, 1]).standard_normal((m, sizes[-1]))
        y = _regression_targets(X64, weights, noise).astype(dtype)
        return Problem(case, dtype, X64.astype(dtype), y, theta, theta_alt, LAMBDA)
    X = rng.random((m, sizes[0])).astype(dtype)
    y = rng.integers(0, max(2, sizes[-1]), m)
    return Problem(case, dtype, X, y, theta, theta_alt, LAMBDA)


def _regression_targets(X: np.ndarray, weights: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Float targets y = sin(2u) + :data:`NOISE` · ε, u = (X − ½) w √(12/s_1), in float64.

    X uniform in [0, 1] and w (s_1, K) standard normal make every column of u about unit
    variance, so y varies smoothly over about [−1.3, 1.3]; ε (m, K) is standard normal noise.
    The result is (m,) for one output, as a user passes it, else (m, K).
    """
    u = (X - 0.5) @ weights * math.sqrt(12 / X.shape[1])
    y = np.sin(2 * u) + NOISE * noise
    return y[:, 0] if y.shape[1] == 1 else y


def flops_per_example(layer_sizes: tuple[int, ...]) -> int:
    """Floating-point operations per example of one (J, grad) evaluation, 2 per multiply-add.

    2·P for the forward pass, 2·P for the Δ accumulation and 2·Σ_{l=2}^{L−1} s_{l+1}·s_l for the
    δ recurrence (the bias row dropped). Only these products are counted, so the count depends
    on the layer sizes alone: the activations (sigmoid, tanh, relu) and their derivatives, the
    output's function and cost (sigmoid, softmax, identity) and the penalty are not, whatever
    they are, and % of GEMM peak compares cases with different functions on the same work.
    """
    P = fastbp.n_params(layer_sizes)
    recurrence = sum(layer_sizes[l] * layer_sizes[l + 1] for l in range(1, len(layer_sizes) - 1))
    return 4 * P + 2 * recurrence
