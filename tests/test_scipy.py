"""fastbp.Objective as a drop-in objective for scipy.optimize.minimize."""

import numpy as np
import pytest
from scipy.optimize import minimize

import fastbp


@pytest.mark.parametrize("method", ["L-BFGS-B", "CG", "BFGS"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minimize_lowers_the_cost(method, dtype, rng):
    sizes = (4, 6, 3)
    X = rng.uniform(size=(200, 4)).astype(dtype)
    y = (X[:, 0] * 3).astype(int) % 3
    obj = fastbp.Objective(X, y, sizes, lam=0.5)
    assert obj.dtype == dtype
    theta0 = rng.uniform(-0.5, 0.5, obj.n_params)
    J0 = obj(theta0)[0]
    result = minimize(obj, theta0, jac=True, method=method, options={"maxiter": 50})
    assert result.fun < 0.9 * J0
    assert obj(result.x)[0] == pytest.approx(result.fun)


def test_fun_and_jac_separately(rng):
    sizes = (3, 4, 2)
    X = rng.uniform(size=(50, 3))
    y = rng.integers(0, 2, 50)
    obj = fastbp.Objective(X, y, sizes, lam=1.0)
    theta0 = rng.uniform(-0.5, 0.5, obj.n_params)
    result = minimize(obj.fun, theta0, jac=obj.jac, method="L-BFGS-B", options={"maxiter": 20})
    assert result.fun < obj.fun(theta0)


def test_gradient_has_thetas_dtype_and_is_fresh(rng):
    X = rng.uniform(size=(20, 3)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    obj = fastbp.Objective(X, y, (3, 2, 2))
    theta = rng.normal(size=obj.n_params)
    J, g64 = obj(theta)
    assert isinstance(J, float)
    assert g64.dtype == np.float64
    _, g32 = obj(theta.astype(np.float32))
    assert g32.dtype == np.float32
    _, again = obj(theta)
    assert again is not g64
    again[:] = 0  # the caller owns it: the next call is unaffected
    np.testing.assert_array_equal(obj(theta)[1], g64)
    np.testing.assert_array_equal(obj.jac(theta), g64)
    for as_list in (obj(theta.tolist()), (obj.fun(theta.tolist()), obj.jac(theta.tolist()))):
        assert as_list[0] == J  # θ as a list: computed in float64, a float64 gradient
        assert as_list[1].dtype == np.float64
        np.testing.assert_array_equal(as_list[1], g64)


def test_objective_compute_dtype():
    y = np.array([0, 1])
    assert fastbp.Objective(np.zeros((2, 2), np.float32), y, (2, 1)).dtype == np.float32
    assert fastbp.Objective(np.zeros((2, 2), np.int32), y, (2, 1)).dtype == np.float64
    assert fastbp.Objective(np.zeros((2, 2)), y, (2, 1), dtype=np.float32).dtype == np.float32
    obj = fastbp.Objective(np.zeros((2, 2)), y, (2, 3, 1), lam=2)
    assert (obj.layer_sizes, obj.n_params, obj.lam, obj.m) == ((2, 3, 1), 13, 2.0, 2)


def test_objective_pickles_with_its_data(rng):
    import pickle

    X = rng.uniform(size=(30, 3))
    y = rng.integers(0, 2, 30)
    obj = fastbp.Objective(X, y, (3, 2, 2), lam=0.1)
    theta = rng.normal(size=obj.n_params)
    expected = obj(theta)
    clone = pickle.loads(pickle.dumps(obj))
    J, g = clone(theta)
    assert J == expected[0]
    np.testing.assert_array_equal(g, expected[1])


@pytest.mark.parametrize("m", [3, 40, 3000])  # literal kernel, one tiled block, several blocks
def test_objective_calls_are_independent(m, rng):
    """Each call is cost_and_grad at its own θ, before and after a rejected θ, whichever path
    the Objective binds for its data (a single serial call is bound once, at the first call)."""
    sizes = (3, 2, 2)
    X, y = rng.uniform(size=(m, 3)), rng.integers(0, 2, m)
    obj = fastbp.Objective(X, y, sizes, 0.3)
    first, second = (rng.normal(size=obj.n_params) for _ in range(2))
    bad = first.copy()
    bad[5] = np.nan

    def check(theta):
        J, g = obj(theta)
        expected = fastbp.cost_and_grad(theta, X, y, sizes, 0.3)
        assert J == expected[0]
        np.testing.assert_array_equal(g, expected[1])

    check(first)
    check(second)
    with pytest.raises(ValueError, match=r"theta\[5\] is nan"):
        obj(bad)
    check(first)
