"""Bad input raises a clear error naming the argument; no input array is ever modified."""

import numpy as np
import pytest

import fastbp

SIZES = (3, 4, 2)


def good(rng):
    theta = rng.normal(size=fastbp.n_params(SIZES))
    X = rng.uniform(size=(10, 3))
    y = rng.integers(0, 2, 10)
    return theta, X, y


def nan_at(a, index):
    a = a.astype(float)
    a[index] = np.nan
    return a


BAD_CALLS = {
    # name: (function of (theta, X, y) -> kwargs for cost_and_grad, exception, message pattern)
    "theta 2-D": (lambda t, X, y: {"theta": t.reshape(1, -1)}, ValueError, "theta.*1-D"),
    "theta length": (lambda t, X, y: {"theta": t[:-1]}, ValueError, "theta.*length 25.*imply 26"),
    "theta nan": (lambda t, X, y: {"theta": nan_at(t, 3)}, ValueError, r"theta.*finite.*\[3\]"),
    "theta inf": (lambda t, X, y: {"theta": t * np.inf}, ValueError, "theta.*finite"),
    "theta complex": (lambda t, X, y: {"theta": t + 1j}, TypeError, "theta.*real"),
    "theta object": (lambda t, X, y: {"theta": t.astype(object)}, TypeError, "theta.*real"),
    "X 1-D": (lambda t, X, y: {"X": X[:, 0]}, ValueError, "X.*2-D"),
    "X width": (lambda t, X, y: {"X": X[:, :2]}, ValueError, "X has 2 columns.*3"),
    "X empty": (lambda t, X, y: {"X": X[:0], "y": y[:0]}, ValueError, "X has no rows"),
    "X nan": (lambda t, X, y: {"X": nan_at(X, (4, 1))}, ValueError, r"X.*finite.*X\[4, 1\]"),
    "X inf": (lambda t, X, y: {"X": X * np.inf}, ValueError, "X.*finite"),
    "X complex": (lambda t, X, y: {"X": X.astype(complex)}, TypeError, "X.*real"),
    "X strings": (lambda t, X, y: {"X": X.astype(str)}, TypeError, "X.*real"),
    "y length": (lambda t, X, y: {"y": y[:-1]}, ValueError, "y.*length 10"),
    "y label high": (lambda t, X, y: {"y": y + 1}, ValueError, r"labels y.*0 … 1"),
    "y label negative": (lambda t, X, y: {"y": y - 1}, ValueError, "labels y"),
    "y float labels": (lambda t, X, y: {"y": y.astype(float)}, TypeError, "y.*integer labels"),
    "y targets width": (lambda t, X, y: {"y": np.zeros((10, 3))}, ValueError, r"y.*\(10, 2\)"),
    "y targets range": (lambda t, X, y: {"y": np.full((10, 2), 1.5)}, ValueError, r"y.*\[0, 1\]"),
    "y targets nan": (
        lambda t, X, y: {"y": nan_at(np.zeros((10, 2)), (2, 0))},
        ValueError,
        "y.*finite",
    ),
    "y complex": (lambda t, X, y: {"y": y + 0j}, TypeError, "y.*real"),
    "layer_sizes short": (lambda t, X, y: {"layer_sizes": (3,)}, ValueError, "layer_sizes"),
    "layer_sizes zero": (lambda t, X, y: {"layer_sizes": (3, 0, 2)}, ValueError, "layer_sizes"),
    "layer_sizes float": (lambda t, X, y: {"layer_sizes": (3, 4.0, 2)}, TypeError, "layer_sizes"),
    "layer_sizes int": (lambda t, X, y: {"layer_sizes": 3}, TypeError, "layer_sizes"),
    "lam negative": (lambda t, X, y: {"lam": -1.0}, ValueError, "lam"),
    "lam nan": (lambda t, X, y: {"lam": float("nan")}, ValueError, "lam"),
    "lam inf": (lambda t, X, y: {"lam": float("inf")}, ValueError, "lam"),
    "lam string": (lambda t, X, y: {"lam": "one"}, TypeError, "lam"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
@pytest.mark.parametrize("function", [fastbp.cost_and_grad, fastbp.cost])
def test_bad_input_raises_a_named_error(case, function, rng):
    theta, X, y = good(rng)
    make, exception, pattern = BAD_CALLS[case]
    kwargs = {"theta": theta, "X": X, "y": y, "layer_sizes": SIZES, "lam": 0.5}
    kwargs.update(make(theta, X, y))
    with pytest.raises(exception, match=pattern):
        function(**kwargs)


@pytest.mark.parametrize("case", [c for c in BAD_CALLS if not c.startswith("theta")])
def test_objective_rejects_bad_data(case, rng):
    theta, X, y = good(rng)
    make, exception, pattern = BAD_CALLS[case]
    kwargs = {"X": X, "y": y, "layer_sizes": SIZES, "lam": 0.5}
    kwargs.update({k: v for k, v in make(theta, X, y).items() if k != "theta"})
    with pytest.raises(exception, match=pattern):
        fastbp.Objective(**kwargs)


@pytest.mark.parametrize("case", [c for c in BAD_CALLS if c.startswith("theta")])
def test_objective_rejects_bad_theta(case, rng):
    theta, X, y = good(rng)
    obj = fastbp.Objective(X, y, SIZES)
    make, exception, pattern = BAD_CALLS[case]
    with pytest.raises(exception, match=pattern):
        obj(make(theta, X, y)["theta"])


def test_objective_rejects_bad_dtype(rng):
    _, X, y = good(rng)
    with pytest.raises(TypeError, match=r"dtype.*float64 or float32"):
        fastbp.Objective(X, y, SIZES, dtype=np.float16)


@pytest.mark.parametrize("targets", ["labels", "float"])
@pytest.mark.parametrize("m", [10, 3000])
def test_inputs_are_never_modified(targets, m, rng):
    sizes = SIZES
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(size=(m, 3))
    y = rng.integers(0, 2, m) if targets == "labels" else rng.uniform(size=(m, 2))
    copies = [a.copy() for a in (theta, X, y)]
    fastbp.cost_and_grad(theta, X, y, sizes, 1.0)
    fastbp.cost(theta, X, y, sizes, 1.0)
    obj = fastbp.Objective(X, y, sizes, 1.0)
    obj(theta)
    obj.fun(theta)
    obj.jac(theta)
    g = obj(theta)[1]
    g[:] = 1e9  # writing into a returned gradient touches nothing else
    obj(theta)
    for a, c in zip((theta, X, y), copies, strict=True):
        np.testing.assert_array_equal(a, c)
