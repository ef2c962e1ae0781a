"""The kernels against the plain reference, central differences, a hand-worked example, and the
course's published weights."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import kernels

import reference
from strategies import large_problems, problems

TOL = {np.float64: 1e-12, np.float32: 1e-4}


def assert_matches_reference(problem, dtype):
    p = problem.astype(dtype)  # the reference is fed the same rounded inputs
    J, g = fastbp.cost_and_grad(*p.args())
    J_ref, g_ref = reference.cost_and_grad(*p.args())
    assert g.dtype == dtype
    assert abs(J - J_ref) / abs(J_ref) <= TOL[dtype]
    assert reference.max_rel(g, g_ref) <= TOL[dtype]
    assert math.isclose(fastbp.cost(*p.args()), J, rel_tol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=problems())
def test_matches_reference(problem, dtype):
    assert_matches_reference(problem, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=6)
@given(problem=large_problems())
def test_matches_reference_over_several_blocks(problem, dtype):
    m = problem.X.shape[0]
    n_blocks = kernels.block_count(m, problem.layer_sizes, dtype)
    assert n_blocks > 1  # the parallel kernel runs
    assert_matches_reference(problem, dtype)


@pytest.mark.parametrize("m", [1, 31, 33, 255, 256, 257, 4099])
def test_block_and_tile_boundaries(m, rng):
    """Tile remainders, the serial/parallel crossover and an uneven last block."""
    sizes = (5, 7, 4)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (m, 5))
    y = rng.integers(0, 4, m)
    # kernel="tiled" at every m: "auto" would run m = 1 through the literal loop
    J, g = fastbp.Objective(X, y, sizes, 0.7, kernel="tiled")(theta)
    J_ref, g_ref = reference.cost_and_grad(theta, X, y, sizes, 0.7)
    assert abs(J - J_ref) / J_ref <= 1e-12
    assert reference.max_rel(g, g_ref) <= 1e-12


def test_cost_matches_plain_log_formula(rng):
    sizes = (6, 5, 4, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(0, 1, (300, 6))
    y = rng.integers(0, 3, 300)
    assert math.isclose(
        fastbp.cost(theta, X, y, sizes, 2.5), reference.cost(theta, X, y, sizes, 2.5), rel_tol=1e-12
    )


@pytest.mark.parametrize("sizes", [(3, 5, 3), (2, 1), (4, 6, 5, 3), (3, 2, 2, 2, 1)])
@pytest.mark.parametrize("lam", [0.0, 1.5])
def test_central_differences(sizes, lam, rng):
    theta = rng.normal(scale=0.8, size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (7, sizes[0]))
    y = rng.integers(0, max(2, sizes[-1]) if sizes[-1] == 1 else sizes[-1], 7)
    _, g = fastbp.cost_and_grad(theta, X, y, sizes, lam)
    n = reference.numerical_gradient(lambda t: fastbp.cost(t, X, y, sizes, lam), theta, 1e-4)
    assert np.linalg.norm(g - n) / np.linalg.norm(g + n) < 1e-9


def test_worked_by_hand():
    """(1, 1, 1) network, x = 1, y = 1, Θ^(1) = [0, 0], Θ^(2) = [0, 2], λ = 1, m = 1."""
    theta = np.array([0.0, 0.0, 0.0, 2.0])
    J, g = fastbp.cost_and_grad(theta, np.array([[1.0]]), np.array([1]), (1, 1, 1), lam=1.0)
    s1 = 1 / (1 + math.exp(-1))  # a^(2) = g(0) = 0.5, z^(3) = 2 · 0.5 = 1
    assert J == pytest.approx(math.log(1 + math.e) - 1 + 0.5 * 4, rel=1e-15)
    delta3 = s1 - 1
    delta2 = 2 * delta3 * 0.25
    expected = [delta2, delta2, delta3, delta3 * 0.5 + 2.0]
    np.testing.assert_allclose(g, expected, rtol=1e-15)


def test_targets_labels_and_one_hot_agree(rng):
    sizes = (4, 6, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(size=(500, 4))
    y = rng.integers(0, 3, 500)
    J1, g1 = fastbp.cost_and_grad(theta, X, y, sizes, 1.0)
    J2, g2 = fastbp.cost_and_grad(theta, X, np.eye(3)[y], sizes, 1.0)
    assert J1 == J2
    np.testing.assert_array_equal(g1, g2)


def test_single_output_float_vector_is_the_target(rng):
    sizes = (3, 4, 1)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(size=(40, 3))
    y = rng.integers(0, 2, 40)
    a = fastbp.cost_and_grad(theta, X, y, sizes)
    b = fastbp.cost_and_grad(theta, X, y.astype(float), sizes)
    c = fastbp.cost_and_grad(theta, X, y.reshape(-1, 1).astype(float), sizes)
    assert a[0] == b[0] == c[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[1], c[1])


def test_input_layouts_and_dtypes_give_the_same_result(rng):
    sizes = (5, 3, 2)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.integers(0, 3, (600, 5))
    y = rng.integers(0, 2, 600)
    expected = fastbp.cost_and_grad(theta, X.astype(float), y, sizes)
    readonly = X.astype(float)
    readonly.setflags(write=False)
    wide = np.zeros((600, 10))
    wide[:, ::2] = X
    for X_variant in (
        X,
        X.astype(np.float32),
        np.asfortranarray(X.astype(float)),
        readonly,
        wide[:, ::2],
        X.astype(np.int8),
    ):
        J, g = fastbp.cost_and_grad(theta, X_variant, y.astype(np.int16), sizes)
        assert J == expected[0]
        np.testing.assert_array_equal(g, expected[1])


@settings(max_examples=20)
@given(problem=problems(m=st.integers(1, 40)))
def test_objective_equals_cost_and_grad(problem):
    obj = fastbp.Objective(problem.X, problem.y, problem.layer_sizes, problem.lam)
    J, g = obj(problem.theta)
    J2, g2 = fastbp.cost_and_grad(*problem.args())
    assert J == J2
    np.testing.assert_array_equal(g, g2)
    assert obj.fun(problem.theta) == J
    np.testing.assert_array_equal(obj.jac(problem.theta), g)


def test_ex4_weights_regularization_term(shared_data, rng):
    """The published sums of squares of ex4weights.mat, checked through J(λ) − J(0)."""
    scipy_io = pytest.importorskip("scipy.io")
    w = scipy_io.loadmat(shared_data / "ex4weights.mat")
    Theta1, Theta2 = w["Theta1"], w["Theta2"]
    assert Theta1.shape == (25, 401)
    assert Theta2.shape == (10, 26)
    assert np.sum(Theta1[:, 1:] ** 2) == pytest.approx(392.584142, abs=1e-6)
    assert np.sum(Theta2[:, 1:] ** 2) == pytest.approx(568.822797, abs=1e-6)
    theta = fastbp.pack([Theta1, Theta2])
    X = rng.uniform(0, 1, (50, 400))
    y = rng.integers(0, 10, 50)
    sizes = (400, 25, 10)
    for lam in (1.0, 3.0):
        difference = fastbp.cost(theta, X, y, sizes, lam) - fastbp.cost(theta, X, y, sizes)
        assert difference == pytest.approx(lam / (2 * 50) * 961.406939, rel=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m", [7, 3000])
def test_forward_pass_matches_reference(dtype, m, rng):
    sizes = (5, 4, 6, 3)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(dtype)
    X = rng.uniform(-1, 1, (m, 5)).astype(dtype)
    a = X.astype(np.float64)
    for Theta in reference.split(theta, sizes):
        a = reference.sigmoid(np.hstack([np.ones((m, 1)), a]) @ Theta.T)
    proba = fastbp.predict_proba(theta, X, sizes)
    assert proba.dtype == dtype
    assert proba.shape == (m, 3)
    assert reference.max_rel(proba, a) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=25)
@given(problem=problems())
def test_literal_kernel_agrees_with_the_tiled_kernel(problem, dtype):
    """The seed's loop, one example at a time, against the fast path (and the reference)."""
    p = problem.astype(dtype)
    literal = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, dtype=dtype, kernel="literal")
    tiled = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, dtype=dtype, kernel="tiled")
    J_lit, g_lit = literal(p.theta)
    J, g = tiled(p.theta)
    assert abs(J_lit - J) / abs(J) <= TOL[dtype]
    assert reference.max_rel(g_lit, g) <= TOL[dtype]
    J_ref, g_ref = reference.cost_and_grad(*p.args())
    assert abs(J_lit - J_ref) / abs(J_ref) <= TOL[dtype]
    assert reference.max_rel(g_lit, g_ref) <= TOL[dtype]


def test_literal_kernel_over_many_examples(rng):
    sizes = (7, 6, 5, 3)
    m = 3001
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (m, 7))
    y = rng.uniform(size=(m, 3))
    J_lit, g_lit = fastbp.Objective(X, y, sizes, 2.0, kernel="literal")(theta)
    J, g = fastbp.Objective(X, y, sizes, 2.0)(theta)
    assert abs(J_lit - J) / J <= 1e-12
    assert reference.max_rel(g_lit, g) <= 1e-12


def test_objective_options_are_checked(rng):
    X, y = rng.uniform(size=(5, 2)), np.array([0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match="kernel"):
        fastbp.Objective(X, y, (2, 1), kernel="fast")
    with pytest.raises(ValueError, match="threads"):
        fastbp.Objective(X, y, (2, 1), threads=0)
    with pytest.raises(TypeError, match="threads"):
        fastbp.Objective(X, y, (2, 1), threads="2")
    obj = fastbp.Objective(X, y, (2, 1), threads=1, kernel="literal")
    assert (obj.threads, obj.kernel) == (1, "literal")
