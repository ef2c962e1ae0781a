"""The course's workflow: init_weights, sigmoid, gradient checking, fit, predict."""

import math

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

import fastbp
from fastbp import _gradcheck

import reference


def blobs(rng, m=300, n=4, K=3, spread=0.35):
    """K well separated clusters in [0, 1]^n: labels 0 … K−1 that a small net learns quickly."""
    centers = rng.uniform(0, 1, (K, n))
    y = np.arange(m) % K
    X = centers[y] + rng.normal(0, spread / n, (m, n))
    return X, y


# ----------------------------------------------------------------------------- sigmoid


def test_sigmoid_gradient_course_values():
    z = [-1, -0.5, 0, 0.5, 1]
    np.testing.assert_allclose(
        fastbp.sigmoid_gradient(z), [0.196612, 0.235004, 0.25, 0.235004, 0.196612], atol=5e-7
    )
    assert fastbp.sigmoid_gradient(0.0) == 0.25
    assert fastbp.sigmoid(0) == 0.5


def test_sigmoid_is_stable_and_exact_for_any_finite_z():
    z = np.array([-1e308, -1000.0, -745.0, -40.0, -1.0, 0.0, 1.0, 40.0, 1000.0, 1e308])
    g = fastbp.sigmoid(z)  # warnings are errors in this suite: no overflow warning
    d = fastbp.sigmoid_gradient(z)
    assert np.all(np.isfinite(g))
    assert np.all(np.isfinite(d))
    assert g[0] == 0
    assert g[-1] == 1
    assert np.all(np.diff(g) >= 0)
    # full relative precision in the tails, where 1 − g(z) would round to 0
    assert fastbp.sigmoid(-40.0) == pytest.approx(math.exp(-40) / (1 + math.exp(-40)), rel=1e-15)
    assert fastbp.sigmoid_gradient(40.0) == pytest.approx(math.exp(-40), rel=1e-15)
    zs = np.linspace(-30, 30, 1001)
    np.testing.assert_allclose(fastbp.sigmoid(zs), reference.sigmoid(zs), rtol=1e-15)
    np.testing.assert_allclose(
        fastbp.sigmoid_gradient(zs), np.exp(-zs) / (1 + np.exp(-zs)) ** 2, rtol=1e-13
    )


def test_sigmoid_dtypes_shapes_and_inputs():
    z32 = np.array([[-2, 0], [3, 5]], np.float32)
    before = z32.copy()
    assert fastbp.sigmoid(z32).dtype == np.float32
    assert fastbp.sigmoid_gradient(z32).shape == (2, 2)
    np.testing.assert_array_equal(z32, before)
    assert fastbp.sigmoid(np.arange(3)).dtype == np.float64
    with pytest.raises(TypeError, match=r"z.*real"):
        fastbp.sigmoid(np.array([1j]))
    with pytest.raises(TypeError, match=r"z.*real"):
        fastbp.sigmoid_gradient(["a"])


# ----------------------------------------------------------------------------- init_weights


def test_init_weights_ranges_follow_the_course_rule():
    sizes = (400, 25, 10)
    theta = fastbp.init_weights(sizes, seed=1)
    assert theta.shape == (fastbp.n_params(sizes),)
    assert theta.dtype == np.float64
    for W, (s_in, s_out) in zip(fastbp.unpack(theta, sizes), [(400, 25), (25, 10)], strict=True):
        eps = math.sqrt(6) / math.sqrt(s_in + s_out)
        assert np.abs(W).max() <= eps
        assert np.abs(W).max() > 0.95 * eps  # the whole interval is used
        assert abs(W.mean()) < 0.05 * eps
    fixed = fastbp.init_weights(sizes, epsilon=0.12, seed=1)
    assert np.abs(fixed).max() <= 0.12
    assert np.abs(fixed).max() > 0.119


def test_init_weights_is_reproducible():
    sizes = (5, 4, 3)
    a = fastbp.init_weights(sizes, seed=7)
    np.testing.assert_array_equal(a, fastbp.init_weights(sizes, seed=7))
    np.testing.assert_array_equal(a, fastbp.init_weights(sizes, seed=np.random.default_rng(7)))
    assert not np.array_equal(a, fastbp.init_weights(sizes, seed=8))
    rng = np.random.default_rng(3)
    first, second = fastbp.init_weights(sizes, seed=rng), fastbp.init_weights(sizes, seed=rng)
    assert not np.array_equal(first, second)  # a Generator is advanced by the draw
    f32 = fastbp.init_weights(sizes, seed=7, dtype=np.float32)
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32, a.astype(np.float32))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"epsilon": -0.1}, ValueError, "epsilon"),
        ({"epsilon": math.inf}, ValueError, "epsilon"),
        ({"epsilon": "big"}, TypeError, "epsilon"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": np.random.RandomState(0)}, TypeError, "seed"),
        ({"dtype": np.int32}, TypeError, "dtype"),
    ],
)
def test_init_weights_rejects_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fastbp.init_weights((3, 2), **kwargs)
    with pytest.raises(ValueError, match="layer_sizes"):
        fastbp.init_weights((3,))


# ----------------------------------------------------------------------------- gradients


def test_numerical_gradient_of_a_known_function(rng):
    A = rng.normal(size=(4, 4))
    A = A + A.T
    theta = rng.normal(size=4)
    before = theta.copy()
    n = fastbp.numerical_gradient(lambda t: 0.5 * t @ A @ t + np.sin(t).sum(), theta)
    np.testing.assert_allclose(n, A @ theta + np.cos(theta), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(theta, before)
    matrix = fastbp.numerical_gradient(lambda t: np.sum(t**2), np.ones((2, 3)), eps=1e-3)
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix, 2.0)


def test_numerical_gradient_agrees_with_the_reference(rng):
    sizes = (3, 4, 2)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X, y = rng.uniform(size=(6, 3)), rng.integers(0, 2, 6)

    def J(t):
        return fastbp.cost(t, X, y, sizes, 0.5)

    np.testing.assert_array_equal(
        fastbp.numerical_gradient(J, theta), reference.numerical_gradient(J, theta)
    )


def test_numerical_gradient_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"scalar.*obj\.fun"):
        fastbp.numerical_gradient(lambda t: (1.0, t), np.zeros(2))
    with pytest.raises(ValueError, match="eps"):
        fastbp.numerical_gradient(np.sum, np.zeros(2), eps=0)
    with pytest.raises(TypeError, match="fun"):
        fastbp.numerical_gradient("sum", np.zeros(2))
    with pytest.raises(ValueError, match="read-only"):  # fun may not write into θ
        fastbp.numerical_gradient(lambda t: t.fill(0) or 0.0, np.zeros(2))


def test_check_gradient_default_is_the_course_debug_problem():
    check = fastbp.check_gradient()
    assert check.relative_difference < 1e-9
    assert check.layer_sizes == (3, 5, 3)
    assert check.m == 5
    assert check.lam == 0
    assert check.analytic.shape == check.numerical.shape == (38,)
    # the course's checkNNGradients: X = debugInitializeWeights(5, 2), y = 1 + mod(1:5, 3)'
    X = (np.sin(np.arange(1, 16)) / 10).reshape((5, 3), order="F")
    y = np.array([2, 3, 1, 2, 3]) - 1
    Theta1 = (np.sin(np.arange(1, 21)) / 10).reshape((5, 4), order="F")
    Theta2 = (np.sin(np.arange(1, 19)) / 10).reshape((3, 6), order="F")
    theta = fastbp.pack([Theta1, Theta2])
    np.testing.assert_array_equal(check.analytic, fastbp.cost_and_grad(theta, X, y, (3, 5, 3))[1])
    text = str(check)
    assert "relative difference" in text
    assert "(3, 5, 3)" in text
    assert "38 parameters" in text


@pytest.mark.parametrize("lam", [0.0, 3.0])
@pytest.mark.parametrize("sizes", [(3, 5, 3), (4, 6, 5, 3), (3, 5, 4, 3, 1)])
def test_check_gradient_below_1e_9(sizes, lam):
    check = fastbp.check_gradient(layer_sizes=sizes, lam=lam)
    assert check.relative_difference < 1e-9
    assert check.layer_sizes == sizes
    assert check.lam == lam


def test_check_gradient_on_data(rng):
    X, y = blobs(rng, m=12)
    sizes = (4, 6, 3)
    theta = fastbp.init_weights(sizes, seed=0)
    check = fastbp.check_gradient(X, y, sizes, lam=1.0, theta=theta)
    assert check.relative_difference < 1e-9
    assert check.m == 12
    np.testing.assert_array_equal(check.analytic, fastbp.cost_and_grad(theta, X, y, sizes, 1.0)[1])


def test_check_gradient_catches_a_wrong_gradient(monkeypatch):
    """Break the gradient on purpose: the check must see it."""
    evaluate = _gradcheck.evaluate

    def wrong_by_one_percent(theta, data, lam, want_grad):
        J, grad = evaluate(theta, data, lam, want_grad)
        return J, grad * 1.01

    monkeypatch.setattr(_gradcheck, "evaluate", wrong_by_one_percent)
    assert fastbp.check_gradient().relative_difference > 1e-3


def test_check_gradient_rejects_incomplete_data(rng):
    X, y = blobs(rng, m=10)
    with pytest.raises(ValueError, match="X and y"):
        fastbp.check_gradient(X)
    with pytest.raises(ValueError, match="layer_sizes"):
        fastbp.check_gradient(X, y)
    with pytest.raises(ValueError, match=r"theta.*length"):
        fastbp.check_gradient(theta=np.zeros(5))


# ----------------------------------------------------------------------------- predict


def test_predict_proba_is_the_compiled_forward_pass():
    from fastbp import _model

    assert fastbp.predict_proba is _model.predict_proba


def test_predict_is_the_arg_max(rng):
    sizes = (4, 5, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (50, 4))
    labels = fastbp.predict(theta, X, sizes)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, fastbp.predict_proba(theta, X, sizes).argmax(axis=1))
    one = (4, 3, 1)
    theta1 = rng.normal(size=fastbp.n_params(one))
    p = fastbp.predict_proba(theta1, X, one)[:, 0]
    np.testing.assert_array_equal(fastbp.predict(theta1, X, one), (p >= 0.5).astype(int))


# ----------------------------------------------------------------------------- fit


def test_fit_learns_and_predicts_the_original_labels(rng):
    X, y = blobs(rng)
    names = np.array(["cat", "dog", "emu"])[y]
    model = fastbp.fit(X, names, (6,), lam=0.1, maxiter=200, seed=0)
    assert model.layer_sizes == (4, 6, 3)
    assert list(model.classes) == ["cat", "dog", "emu"]
    assert np.mean(model.predict(X) == names) > 0.95
    proba = model.predict_proba(X)
    assert proba.shape == (300, 3)
    assert not model.interrupted
    assert model.result.success
    assert len(model.history) == model.result.nit
    assert model.history[-1] == pytest.approx(model.result.fun)
    assert model.time > 0
    assert model.lam == 0.1
    assert "FitResult(layer_sizes=(4, 6, 3)" in repr(model)


def test_fit_two_classes_uses_one_output_unit(rng):
    X, y = blobs(rng, K=2)
    labels = np.where(y == 1, 7, -3)
    model = fastbp.fit(X, labels, (5,), maxiter=100, seed=0)
    assert model.layer_sizes == (4, 5, 1)
    assert list(model.classes) == [-3, 7]
    assert set(model.predict(X)) <= {-3, 7}
    assert np.mean(model.predict(X) == labels) > 0.95
    proba = model.predict_proba(X)
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes[proba.argmax(axis=1)])


def test_fit_float_targets_are_multi_label(rng):
    X = rng.uniform(size=(200, 3))
    Y = np.column_stack([X[:, 0] > 0.5, X[:, 1] > 0.5]).astype(float)
    model = fastbp.fit(X, Y, (8,), lam=0.01, maxiter=200, seed=0)
    assert model.layer_sizes == (3, 8, 2)
    assert model.classes is None
    predicted = model.predict(X)
    assert predicted.shape == (200, 2)
    assert np.mean(predicted == Y) > 0.9
    assert model.predict_proba(X).shape == (200, 2)


def test_fit_is_deterministic(rng):
    X, y = blobs(rng, m=500)
    first = fastbp.fit(X, y, (7,), maxiter=60, seed=3)
    second = fastbp.fit(X, y, (7,), maxiter=60, seed=3)
    assert first.theta.tobytes() == second.theta.tobytes()
    np.testing.assert_array_equal(first.history, second.history)
    other = fastbp.fit(X, y, (7,), maxiter=60, seed=4)
    assert not np.array_equal(first.theta, other.theta)


def test_fit_on_several_blocks_is_deterministic(rng):
    X, y = blobs(rng, m=3000, n=8, K=4)
    first = fastbp.fit(X, y, (10, 6), maxiter=30, seed=0)
    second = fastbp.fit(X, y, (10, 6), maxiter=30, seed=0)
    assert first.theta.tobytes() == second.theta.tobytes()


def test_lbfgsb_history_never_increases(rng):
    X, y = blobs(rng, m=400, K=4)
    for seed in range(3):
        model = fastbp.fit(X, y, (6, 5), lam=0.5, maxiter=150, seed=seed)
        assert len(model.history) > 20
        assert np.all(np.diff(model.history) <= 0)
        J0 = fastbp.cost(
            fastbp.init_weights(model.layer_sizes, seed=seed), X, y, model.layer_sizes, 0.5
        )
        assert model.history[0] < J0


@pytest.mark.parametrize("method", ["CG", "BFGS", "TNC"])
def test_fit_with_other_scipy_methods(method, rng):
    X, y = blobs(rng, m=150)
    model = fastbp.fit(X, y, (5,), method=method, maxiter=40, seed=0)
    assert len(model.history) >= 1
    J0 = fastbp.cost(fastbp.init_weights((4, 5, 3), seed=0), X, y, (4, 5, 3), 1.0)
    assert model.result.fun < J0
    assert np.mean(model.predict(X) == y) > 0.8


def test_fit_float32_and_theta0(rng):
    X, y = blobs(rng, m=200)
    model32 = fastbp.fit(X.astype(np.float32), y, (5,), maxiter=50, seed=0)
    assert model32.theta.dtype == np.float64
    assert np.mean(model32.predict(X) == y) > 0.9
    theta0 = fastbp.init_weights((4, 5, 3), seed=11)
    a = fastbp.fit(X, y, (5,), maxiter=5, theta0=theta0)
    b = fastbp.fit(X, y, (5,), maxiter=5, seed=11)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert np.array_equal(theta0, fastbp.init_weights((4, 5, 3), seed=11))  # not modified


def test_fit_callback_sees_every_iteration_and_can_stop(rng):
    X, y = blobs(rng, m=200)
    seen = []

    def callback(intermediate_result):
        assert isinstance(intermediate_result, OptimizeResult)
        seen.append((intermediate_result.nit, intermediate_result.fun))
        if intermediate_result.nit == 7:
            raise StopIteration

    model = fastbp.fit(X, y, (5,), maxiter=100, seed=0, callback=callback)
    assert [nit for nit, _ in seen] == list(range(1, 8))
    np.testing.assert_array_equal([J for _, J in seen], model.history)
    assert len(model.history) == 7
    assert not model.interrupted


def test_the_optimizer_runs_with_one_blas_thread(rng):
    from threadpoolctl import threadpool_info

    X, y = blobs(rng, m=100)
    seen = []

    def callback(intermediate_result):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")

    fastbp.fit(X, y, (4,), maxiter=3, seed=0, callback=callback)
    assert seen
    assert set(seen) == {1}


def test_ctrl_c_returns_the_best_theta_so_far(rng):
    X, y = blobs(rng, m=200)

    def interrupt(intermediate_result):
        if intermediate_result.nit == 12:
            raise KeyboardInterrupt

    model = fastbp.fit(X, y, (5,), lam=1.0, maxiter=100, seed=0, callback=interrupt)
    assert model.interrupted
    assert len(model.history) == 12
    assert "interrupted" in model.result.message
    assert not model.result.success
    J = fastbp.cost(model.theta, X, y, model.layer_sizes, 1.0)
    assert J == model.result.fun
    assert J <= model.history.min()
    assert np.mean(model.predict(X) == y) > 0.5


def test_fit_progress_bar(rng, capsys):
    X, y = blobs(rng, m=100)
    fastbp.fit(X, y, (4,), maxiter=15, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "fastbp fit" in err
    assert "cost=" in err
    fastbp.fit(X, y, (4,), maxiter=15, seed=0)
    assert capsys.readouterr().err == ""


def test_fit_does_not_modify_its_inputs(rng):
    X, y = blobs(rng, m=100)
    X.setflags(write=False)
    y_copy = y.copy()
    fastbp.fit(X, y, (4,), maxiter=10, seed=0)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"y": np.zeros(100, int)}, ValueError, "single class"),
        ({"y": np.linspace(0, 1, 100)}, ValueError, "non-integer"),
        ({"y": np.zeros(99, int) + np.arange(99) % 2}, ValueError, "y.*length 100"),
        ({"X": np.zeros(100)}, ValueError, "X.*2-D"),
        ({"hidden_layer_sizes": 5}, TypeError, r"hidden_layer_sizes.*\(5,\)"),
        ({"hidden_layer_sizes": (0,)}, ValueError, "layer_sizes"),
        ({"maxiter": 0}, ValueError, "maxiter"),
        ({"lam": -1}, ValueError, "lam"),
        ({"method": None}, TypeError, "method"),
        ({"theta0": np.zeros(3)}, ValueError, "theta.*length"),
        ({"callback": 3}, TypeError, "callback"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_fit_rejects_bad_arguments(change, error, pattern, rng):
    X, y = blobs(rng, m=100)
    kwargs = {"X": X, "y": y, "hidden_layer_sizes": (3,), "maxiter": 5} | change
    with pytest.raises(error, match=pattern):
        fastbp.fit(**kwargs)


# ----------------------------------------------------------------------------- activations, outputs


HIDDEN_NAMES = ("sigmoid", "tanh", "relu", "identity")
OUTPUT_NAMES = ("sigmoid", "softmax", "identity")


@pytest.mark.parametrize("output", OUTPUT_NAMES)
@pytest.mark.parametrize("activation", HIDDEN_NAMES)
def test_check_gradient_for_every_activation_and_output(activation, output):
    for lam in (0.0, 3.0):
        check = fastbp.check_gradient(lam=lam, activation=activation, output=output)
        assert check.relative_difference < 1e-9, check
        assert check.activation == (activation,)
        assert check.output == output
    deeper = fastbp.check_gradient(
        layer_sizes=(3, 5, 4, 3), activation=[activation, "tanh"], output=output
    )
    assert deeper.relative_difference < 1e-9, deeper
    assert deeper.activation == (activation, "tanh")


def test_check_gradient_relu_sees_both_sides_of_the_kink():
    """The debug problem's ReLU units are both on and off, none of them near z = 0, where
    central differences would straddle the kink."""
    sizes = (3, 5, 3)
    X = (np.sin(np.arange(1, 16)) / 10).reshape((5, 3), order="F")
    Theta1 = (np.sin(np.arange(1, 21)) / 10).reshape((5, 4), order="F")
    z = np.hstack([np.ones((5, 1)), X]) @ Theta1.T
    assert (z > 0).any()
    assert (z < 0).any()
    assert np.abs(z).min() > 5e-4  # a step moves z by at most ε · max(1, |x|) = 1e-4
    check = fastbp.check_gradient(layer_sizes=sizes, activation="relu", output="softmax")
    assert check.passed
    assert "hidden relu, output softmax" in str(check)
    assert "activation=('relu',), output='softmax'" in repr(check)


def test_check_gradient_on_data_with_sample_weights(rng):
    X, y = blobs(rng, m=12)
    sizes = (4, 6, 3)
    theta = fastbp.init_weights(sizes, seed=0)
    weights = rng.uniform(0, 2, 12)
    weights[3] = 0
    network = {"activation": "tanh", "output": "softmax"}
    check = fastbp.check_gradient(X, y, sizes, 1.0, theta, sample_weight=weights, **network)
    assert check.relative_difference < 1e-9
    expected = fastbp.cost_and_grad(theta, X, y, sizes, 1.0, sample_weight=weights, **network)
    np.testing.assert_array_equal(check.analytic, expected[1])
    Y = rng.normal(size=(12, 2))
    regression = fastbp.check_gradient(
        X, Y, (4, 5, 2), 0.5, activation="relu", output="identity", sample_weight=weights
    )
    assert regression.relative_difference < 1e-9
    assert "sigmoid" not in str(fastbp.check_gradient())  # the course's network: as before


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"activation": "swish"}, ValueError, "activation must be one of"),
        ({"activation": ["relu", "tanh"]}, ValueError, "activation has 2 names.*1 hidden"),
        ({"output": "linear"}, ValueError, "output must be one of"),
        ({"output": "softmax", "layer_sizes": (3, 4, 1)}, ValueError, "softmax.*2 output units"),
        ({"sample_weight": [1, 2]}, ValueError, r"sample_weight.*shape \(5,\)"),
        ({"sample_weight": [1, 1, -1, 1, 1]}, ValueError, "sample_weight must be >= 0"),
    ],
)
def test_check_gradient_rejects_bad_network_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fastbp.check_gradient(**kwargs)


def test_predict_follows_the_output(rng):
    sizes = (4, 5, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (50, 4))
    network = {"activation": "relu", "output": "softmax"}
    proba = fastbp.predict_proba(theta, X, sizes, **network)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fastbp.predict(theta, X, sizes, **network), proba.argmax(axis=1))
    values = fastbp.predict(theta, X, sizes, activation="tanh", output="identity")
    assert values.dtype == np.float64
    np.testing.assert_array_equal(
        values, fastbp.predict_proba(theta, X, sizes, activation="tanh", output="identity")
    )
    with pytest.raises(ValueError, match="output must be one of"):
        fastbp.predict(theta, X, sizes, output="probit")


def test_fit_softmax_relu_learns_the_original_labels(rng):
    X, y = blobs(rng)
    names = np.array(["cat", "dog", "emu"])[y]
    model = fastbp.fit(
        X, names, (6,), lam=0.1, activation="relu", output="softmax", maxiter=200, seed=0
    )
    assert model.layer_sizes == (4, 6, 3)
    assert model.activation == ("relu",)
    assert model.output == "softmax"
    assert np.mean(model.predict(X) == names) > 0.95
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes[proba.argmax(axis=1)])
    J = fastbp.cost(model.theta, X, y, model.layer_sizes, 0.1, activation="relu", output="softmax")
    assert J == model.result.fun
    assert "activation=('relu',), output='softmax'" in repr(model)


def test_fit_softmax_has_one_unit_per_class_even_for_two(rng):
    X, y = blobs(rng, K=2)
    labels = np.where(y == 1, 7, -3)
    model = fastbp.fit(X, labels, (5,), output="softmax", maxiter=100, seed=0)
    assert model.layer_sizes == (4, 5, 2)
    assert model.activation == ("sigmoid",)
    assert np.mean(model.predict(X) == labels) > 0.95
    proba = model.predict_proba(X)
    assert proba.shape == (300, 2)
    np.testing.assert_array_equal(
        proba, fastbp.predict_proba(model.theta, X, model.layer_sizes, output="softmax")
    )


def test_fit_default_is_the_sigmoid_network_as_before(rng):
    """output="sigmoid" stays fit's default for any number of classes: the same θ as before."""
    X, y = blobs(rng, m=200, K=4)
    default = fastbp.fit(X, y, (5, 4), maxiter=20, seed=0)
    explicit = fastbp.fit(X, y, (5, 4), activation="sigmoid", output="sigmoid", maxiter=20, seed=0)
    assert default.theta.tobytes() == explicit.theta.tobytes()
    assert default.layer_sizes == (4, 5, 4, 4)
    assert default.activation == ("sigmoid", "sigmoid")
    assert default.output == "sigmoid"
    assert default.theta.tobytes() == fastbp.fit(X, y, (5, 4), maxiter=20, seed=0).theta.tobytes()


@pytest.mark.parametrize("shape", [(), (1,), (2,)])
def test_fit_identity_is_a_regressor(shape, rng):
    X = rng.uniform(-1, 1, (300, 3))
    columns = [X @ [1.0, -2.0, 0.5], np.sin(2 * X[:, 0]) + X[:, 1]]
    Y = np.column_stack(columns[: shape[0] if shape else 1])
    y = Y[:, 0] if shape == () else Y
    model = fastbp.fit(X, y, (8,), lam=0.01, activation="tanh", output="identity", seed=0)
    assert model.classes is None
    assert model.layer_sizes == (3, 8, Y.shape[1])
    assert model.y_ndim == y.ndim
    predicted = model.predict(X)
    assert predicted.shape == y.shape
    assert predicted.dtype == np.float64
    assert np.sqrt(np.mean(np.square(predicted - y))) < 0.05
    with pytest.raises(TypeError, match=r"predict_proba is for classifiers.*use predict"):
        model.predict_proba(X)


def test_fit_with_sample_weights_equals_repeated_rows(rng):
    X, y = blobs(rng, m=120)
    weights = np.arange(120) // 3 % 3  # 0, 1 or 2 copies of each example, in every class
    kept = weights.copy()
    model = fastbp.fit(X, y, (4,), sample_weight=weights, maxiter=15, seed=0)
    np.testing.assert_array_equal(weights, kept)  # not modified
    repeated = fastbp.fit(np.repeat(X, weights, 0), np.repeat(y, weights), (4,), maxiter=15, seed=0)
    np.testing.assert_allclose(model.history, repeated.history, rtol=1e-10)
    np.testing.assert_allclose(model.theta, repeated.theta, rtol=1e-7, atol=1e-9)
    J = fastbp.cost(model.theta, X, y, model.layer_sizes, 1.0, sample_weight=weights)
    assert J == model.result.fun


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"activation": "gelu"}, ValueError, "activation must be one of"),
        ({"activation": ("relu", "relu")}, ValueError, "activation has 2 names.*1 hidden"),
        ({"activation": 3}, TypeError, "activation must be a name"),
        ({"output": "linear"}, ValueError, "output must be one of"),
        ({"output": None}, ValueError, "output must be one of"),
        ({"output": "identity"}, TypeError, "output='identity' fits float targets.*int64"),
        ({"y": np.linspace(0, 1, 100)}, ValueError, "non-integer.*output='identity'"),
        ({"output": "softmax", "y": np.ones((100, 1))}, ValueError, "softmax.*2 output units"),
        ({"sample_weight": np.ones(99)}, ValueError, r"sample_weight.*shape \(100,\)"),
        ({"sample_weight": -np.ones(100)}, ValueError, "sample_weight must be >= 0"),
        ({"sample_weight": np.zeros(100)}, ValueError, "sample_weight is all zeros"),
        ({"sample_weight": np.full(100, np.nan)}, ValueError, "sample_weight"),
    ],
)
def test_fit_rejects_bad_network_arguments(change, error, pattern, rng):
    X, y = blobs(rng, m=100)
    kwargs = {"X": X, "y": y, "hidden_layer_sizes": (3,), "maxiter": 5} | change
    with pytest.raises(error, match=pattern):
        fastbp.fit(**kwargs)


def test_fit_result_checks_its_network(rng):
    X, y = blobs(rng, m=60)
    model = fastbp.fit(X, y, (3,), maxiter=3, seed=0)
    fields = {name: getattr(model, name) for name in model.__dataclass_fields__}
    with pytest.raises(ValueError, match="activation must be one of"):
        fastbp.FitResult(**fields | {"activation": "swish"})
    with pytest.raises(ValueError, match="regressor: it has no classes"):
        fastbp.FitResult(**fields | {"output": "identity"})
    with pytest.raises(ValueError, match="y_ndim"):
        fastbp.FitResult(**fields | {"y_ndim": 3})
    relu = fastbp.FitResult(**fields | {"activation": "relu"})
    assert relu.activation == ("relu",)
