"""partial_sums over slices of the examples and combine: the objective's two halves."""

import itertools

import numpy as np
import pytest

import fastbp
from fastbp import _inputs

import reference


def problem(rng, m=3001, sizes=(6, 5, 3), targets="labels"):
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (m, sizes[0]))
    y = rng.integers(0, sizes[-1], m) if targets == "labels" else rng.uniform(size=(m, sizes[-1]))
    return theta, X, y, sizes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("targets", ["labels", "float targets"])
def test_one_partial_combines_to_cost_and_grad_bitwise(dtype, targets, rng):
    theta, X, y, sizes = problem(rng, targets=targets)
    theta, X = theta.astype(dtype), X.astype(dtype)
    partial = fastbp.partial_sums(theta, X, y, sizes)
    cost_sum, Delta, count = partial
    assert isinstance(cost_sum, float)
    assert (Delta.dtype, Delta.shape, count) == (np.float64, theta.shape, 3001)
    for lam in (0.0, 1.3):
        J, grad = fastbp.combine([partial], theta, sizes, lam)
        J_direct, grad_direct = fastbp.cost_and_grad(theta, X, y, sizes, lam)
        assert grad.dtype == dtype
        assert J == J_direct
        assert grad.tobytes() == grad_direct.tobytes()


def test_partial_sums_are_the_unnormalized_unregularized_sums(rng):
    theta, X, y, sizes = problem(rng, m=40)
    cost_sum, Delta, count = fastbp.partial_sums(theta, X, y, sizes)
    J_ref, grad_ref = reference.cost_and_grad(theta, X, y, sizes, 0.0)
    assert abs(cost_sum - 40 * J_ref) / (40 * J_ref) <= 1e-12
    assert reference.max_rel(Delta, 40 * grad_ref) <= 1e-12
    assert count == 40


def test_slices_combine_in_the_given_order(rng):
    theta, X, y, sizes = problem(rng)
    bounds = [0, 1, 700, 701, 2500, 3001]  # uneven slices, two of one example
    partials = [
        fastbp.partial_sums(theta, X[a:b], y[a:b], sizes) for a, b in itertools.pairwise(bounds)
    ]
    J, grad = fastbp.combine(partials, theta, sizes)
    # Added left to right, then divided by m: exactly this.
    assert J == sum(p[0] for p in partials) / 3001
    Delta = np.zeros_like(theta)
    for p in partials:
        Delta += p[1]
    assert grad.tobytes() == (Delta / 3001).tobytes()
    J_whole, grad_whole = fastbp.cost_and_grad(theta, X, y, sizes)
    assert abs(J - J_whole) / J_whole <= 1e-14
    assert reference.max_rel(grad, grad_whole) <= 1e-13
    J_reg, grad_reg = fastbp.combine(iter(partials), theta, sizes, lam=2.0)  # any iterable
    J_ref, grad_ref = reference.cost_and_grad(theta, X, y, sizes, 2.0)
    assert abs(J_reg - J_ref) / J_ref <= 1e-12
    assert reference.max_rel(grad_reg, grad_ref) <= 1e-12


def test_data_to_convert_runs_as_the_ordered_sum_of_chunk_partial_sums(monkeypatch, rng):
    """float32 X with float64 θ is converted in chunks of 256 rows: the objective is then the
    ordered sum of the chunks' partial sums; data in the kernels' layout runs in one call."""
    monkeypatch.setattr(_inputs, "CHUNK_BYTES", 256 * (6 + 3) * 8)
    assert _inputs.chunk_rows((6, 5, 3), np.float64) == 256
    theta, X, y, sizes = problem(rng)
    X32 = X.astype(np.float32)
    starts = range(0, 3001, 256)
    per_chunk = [
        fastbp.partial_sums(theta, X32[a : a + 256], y[a : a + 256], sizes) for a in starts
    ]
    expected = fastbp.combine(per_chunk, theta, sizes, 0.4)
    J, grad = fastbp.cost_and_grad(theta, X32, y, sizes, 0.4)
    assert J == expected[0]
    assert grad.tobytes() == expected[1].tobytes()
    whole = fastbp.combine([fastbp.partial_sums(theta, X, y, sizes)], theta, sizes, 0.4)
    J, grad = fastbp.Objective(X, y, sizes, 0.4)(theta)
    assert J == whole[0]
    assert grad.tobytes() == whole[1].tobytes()


def test_without_regularization_a_huge_finite_weight_adds_no_penalty():
    """λ = 0 adds no penalty at all, even where Σ Θ² overflows float64 (0 × inf would be NaN):
    a weight of 1e160 that meets only zero inputs leaves every result finite and exact."""
    sizes = (2, 3, 2)
    theta = np.full(fastbp.n_params(sizes), 0.1)
    theta[1] = 1e160  # Θ^(1)[0, 1], which multiplies x_1 = 0
    X = np.zeros((4, 2))
    y = np.array([0, 1, 0, 1])
    small = theta.copy()
    small[1] = 0.0
    for kernel in ("literal", "tiled"):
        J, grad = fastbp.Objective(X, y, sizes, kernel=kernel)(theta)
        J_small, grad_small = fastbp.Objective(X, y, sizes, kernel=kernel)(small)
        assert J == J_small, kernel
        assert np.array_equal(grad, grad_small), kernel
    assert fastbp.cost_and_grad(theta, X, y, sizes)[0] == fastbp.cost(small, X, y, sizes)
    partial = fastbp.partial_sums(theta, X, y, sizes)
    partial_small = fastbp.partial_sums(small, X, y, sizes)
    assert partial[0] == partial_small[0]
    assert (
        fastbp.combine([partial], theta, sizes)[0]
        == fastbp.combine([partial_small], small, sizes)[0]
    )


def test_combine_rejects_bad_partials(rng):
    theta, X, y, sizes = problem(rng, m=10)
    good = fastbp.partial_sums(theta, X, y, sizes)
    cases = [
        ([], ValueError, "partials is empty"),
        ([good[:2]], TypeError, r"partials\[0\] must be a \(cost_sum, Delta, count\) triple"),
        ([good, (1.0, good[1][:-1], 3)], ValueError, r"partials\[1\]: Delta.*length 53"),
        ([(1.0, good[1].astype(int), 3)], ValueError, "Delta must be a float vector"),
        ([(1.0, good[1], 0)], ValueError, r"count must be >= 1"),
        ([(float("nan"), good[1], 3)], ValueError, "cost_sum finite"),
        ([(1.0, good[1], "2")], TypeError, "count must be a number of rows or a sum of"),
        ([(1.0, good[1], -0.5)], ValueError, r"count must be >= 0 and finite"),
        ([(1.0, good[1], 0.0)], ValueError, "counts add up to 0"),
    ]
    for partials, exception, pattern in cases:
        with pytest.raises(exception, match=pattern):
            fastbp.combine(partials, theta, sizes)
    with pytest.raises(ValueError, match="theta has length 52"):
        fastbp.combine([good], theta[:-1], sizes)
    with pytest.raises(ValueError, match="lam"):
        fastbp.combine([good], theta, sizes, lam=-1.0)
    with pytest.raises(ValueError, match="labels y"):
        fastbp.partial_sums(theta, X, y + 3, sizes)
