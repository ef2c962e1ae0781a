"""fastbp.cost_and_grad against scikit-learn's MLP objective (``_loss_grad_lbfgs``).

Where both define the same J, they agree to 1e-10 in float64 (docs/design.md's relative
measures): scikit-learn's ``_backprop`` adds ``0.5 · alpha · Σ‖W‖² / sw_sum`` to the weighted
mean loss, sets δ^(L) = (h − y) · sample_weight and divides the gradients by ``sw_sum`` — fastbp's
J with lam = alpha. The cases:

- ``MLPClassifier`` with K ≥ 3 classes (a softmax output, categorical cross-entropy) vs
  ``output="softmax"`` on the labels 0 … K−1;
- ``MLPClassifier`` with 2 classes (one logistic output unit) vs ``output="sigmoid"``, K = 1;
- ``MLPRegressor`` with one output (identity output, ``0.5 · mean((y − h)²)``, weighted by
  ``np.average``) vs ``output="identity"`` on float targets;

each for the four hidden activations, one and two hidden layers, alpha 0 and > 0, and no,
random positive, or integer sample weights.

The estimator is fitted once (``max_iter=1``) on the same data so that scikit-learn builds its
own state (``n_layers_``, ``out_activation_``, ``_coef_indptr``, …) and the arguments it hands
to ``_loss_grad_lbfgs`` (validated X, label-binarized Y, checked weights, work buffers). Those
are recorded and ``_loss_grad_lbfgs`` is then called with θ in scikit-learn's packed layout.
"""

import inspect
import itertools
import warnings
import zlib

import numpy as np
import pytest

import fastbp
from bench.implementations import from_sklearn_layout, to_sklearn_layout

neural_network = pytest.importorskip("sklearn.neural_network")
ConvergenceWarning = pytest.importorskip("sklearn.exceptions").ConvergenceWarning
SKLEARN_VERSION = pytest.importorskip("sklearn").__version__

RTOL = 1e-10

# scikit-learn's hidden activation names → fastbp's.
ACTIVATIONS = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}

# The arguments _loss_grad_lbfgs takes (scikit-learn ≥ 1.6 passes the sample weights).
EXPECTED_PARAMETERS = [
    "self",
    "packed_coef_inter",
    "X",
    "y",
    "sample_weight",
    "activations",
    "deltas",
    "coef_grads",
    "intercept_grads",
]

M, N_FEATURES = 40, 5
HIDDEN = {"one hidden layer": (7,), "two hidden layers": (6, 4)}
ALPHAS = [0.0, 0.7]
WEIGHTS = [None, "float", "int"]


def require_sample_weight_signature():
    method = neural_network.MLPClassifier._loss_grad_lbfgs
    parameters = list(inspect.signature(method).parameters)
    if parameters != EXPECTED_PARAMETERS:
        pytest.skip(
            f"scikit-learn {SKLEARN_VERSION}: _loss_grad_lbfgs{tuple(parameters[1:])} is not "
            f"the expected {tuple(EXPECTED_PARAMETERS[1:])} (sample weights need scikit-learn "
            "≥ 1.6)"
        )


def sklearn_objective(model, X, y, sample_weight, layer_sizes):
    """Fit ``model`` once; return it and ``f(theta) -> (J, grad, h)``, θ and grad in fastbp's layout.

    The fit only sets up scikit-learn's state; the arguments it passes to ``_loss_grad_lbfgs``
    are recorded and reused, so X, Y and the weights are exactly what scikit-learn uses.
    """
    require_sample_weight_signature()
    original = model._loss_grad_lbfgs
    recorded = []

    def spy(packed, *args):
        if not recorded:
            recorded.append(args)
        return original(packed, *args)

    model._loss_grad_lbfgs = spy  # scipy.optimize.minimize looks it up on the instance
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, sample_weight=sample_weight)
    finally:
        del model._loss_grad_lbfgs
    (args,) = recorded
    # The structure both sides must share: layer sizes and the packed length.
    assert [c.shape for c in model.coefs_] == list(itertools.pairwise(layer_sizes))
    assert model._intercept_indptr[-1][1] == fastbp.n_params(layer_sizes)

    def objective(theta):
        loss, grad = original(to_sklearn_layout(theta, layer_sizes), *args)
        output = args[3][-1]  # activations[-1], the network's output h
        return float(loss), from_sklearn_layout(grad, layer_sizes), output

    return model, objective


def make_weights(kind, rng):
    if kind is None:
        return None
    if kind == "float":
        return rng.uniform(0.1, 3.0, M)
    w = rng.integers(0, 4, M)  # zeros included: such rows drop out of both
    w[0] = max(w[0], 1)
    return w


def assert_agree(J, grad, J_sk, grad_sk):
    cost_error = abs(J - J_sk) / abs(J_sk)
    grad_error = np.max(np.abs(grad - grad_sk)) / np.max(np.abs(grad_sk))
    assert cost_error <= RTOL, f"cost: fastbp {J!r}, scikit-learn {J_sk!r}, rel {cost_error:.3g}"
    assert grad_error <= RTOL, f"gradient: max-norm relative difference {grad_error:.3g}"


def fastbp_side(theta, X, y, layer_sizes, alpha, activation, output, sample_weight):
    """fastbp's (J, grad) for the scikit-learn activation name ``activation``."""
    return fastbp.cost_and_grad(
        theta,
        X,
        y,
        layer_sizes,
        alpha,
        activation=ACTIVATIONS[activation],
        output=output,
        sample_weight=sample_weight,
    )


def random_theta(layer_sizes, rng):
    return rng.normal(0.0, 0.5, fastbp.n_params(layer_sizes))


def make_model(estimator, hidden, activation, alpha):
    return estimator(
        hidden_layer_sizes=hidden,
        activation=activation,
        solver="lbfgs",
        alpha=alpha,
        max_iter=1,
        random_state=0,
    )


def balanced_labels(n_classes, rng):
    """Every class present (scikit-learn learns the classes from y)."""
    return rng.permutation(np.arange(M) % n_classes)


def seed(*parts):
    """A generator of its own for each case, the same on every run."""
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


parametrize_network = pytest.mark.parametrize(
    "hidden", list(HIDDEN.values()), ids=list(HIDDEN.keys())
)
parametrize_activation = pytest.mark.parametrize("activation", list(ACTIVATIONS))
parametrize_alpha = pytest.mark.parametrize("alpha", ALPHAS)
parametrize_weights = pytest.mark.parametrize(
    "weights", WEIGHTS, ids=["unweighted", "float", "int"]
)


@parametrize_weights
@parametrize_alpha
@parametrize_network
@parametrize_activation
@pytest.mark.parametrize("n_classes", [3, 4])
def test_multiclass_softmax(n_classes, activation, hidden, alpha, weights):
    rng = seed("softmax", n_classes, activation, hidden, alpha, weights)
    X = rng.normal(size=(M, N_FEATURES))
    y = balanced_labels(n_classes, rng)
    sw = make_weights(weights, rng)
    sizes = (N_FEATURES, *hidden, n_classes)
    model = make_model(neural_network.MLPClassifier, hidden, activation, alpha)
    model, sk = sklearn_objective(model, X, y, sw, sizes)
    assert model.out_activation_ == "softmax"
    np.testing.assert_array_equal(model.classes_, np.arange(n_classes))

    theta = random_theta(sizes, rng)
    J_sk, grad_sk, h = sk(theta)
    assert h.min() > 1e-8  # far from scikit-learn's eps clipping of the probabilities
    J, grad = fastbp_side(theta, X, y, sizes, alpha, activation, "softmax", sw)
    assert_agree(J, grad, J_sk, grad_sk)


@parametrize_weights
@parametrize_alpha
@parametrize_network
@parametrize_activation
def test_binary_logistic(activation, hidden, alpha, weights):
    rng = seed("binary", activation, hidden, alpha, weights)
    X = rng.normal(size=(M, N_FEATURES))
    y = balanced_labels(2, rng)
    sw = make_weights(weights, rng)
    sizes = (N_FEATURES, *hidden, 1)
    model = make_model(neural_network.MLPClassifier, hidden, activation, alpha)
    model, sk = sklearn_objective(model, X, y, sw, sizes)
    assert model.out_activation_ == "logistic"
    assert model.n_outputs_ == 1

    theta = random_theta(sizes, rng)
    J_sk, grad_sk, h = sk(theta)
    assert h.min() > 1e-8  # away from scikit-learn's eps clipping of the probabilities
    assert h.max() < 1 - 1e-8
    J, grad = fastbp_side(theta, X, y, sizes, alpha, activation, "sigmoid", sw)
    assert_agree(J, grad, J_sk, grad_sk)


@parametrize_weights
@parametrize_alpha
@parametrize_network
@parametrize_activation
def test_regression_identity(activation, hidden, alpha, weights):
    rng = seed("regression", activation, hidden, alpha, weights)
    X = rng.normal(size=(M, N_FEATURES))
    y = rng.normal(0.5, 2.0, M)
    sw = make_weights(weights, rng)
    sizes = (N_FEATURES, *hidden, 1)
    model = make_model(neural_network.MLPRegressor, hidden, activation, alpha)
    model, sk = sklearn_objective(model, X, y, sw, sizes)
    assert model.out_activation_ == "identity"
    assert model.n_outputs_ == 1

    theta = random_theta(sizes, rng)
    J_sk, grad_sk, _ = sk(theta)
    J, grad = fastbp_side(theta, X, y, sizes, alpha, activation, "identity", sw)
    assert_agree(J, grad, J_sk, grad_sk)


@pytest.mark.parametrize(
    ("estimator", "output", "n_out"),
    [
        (neural_network.MLPClassifier, "softmax", 3),
        (neural_network.MLPClassifier, "sigmoid", 1),
        (neural_network.MLPRegressor, "identity", 1),
    ],
    ids=["softmax", "binary", "regression"],
)
def test_integer_weights_equal_repeated_rows_in_sklearn(estimator, output, n_out):
    """fastbp with integer weights w = scikit-learn unweighted on rows repeated w_i times."""
    rng = seed("repeat", output)
    X = rng.normal(size=(M, N_FEATURES))
    y = rng.normal(size=M) if output == "identity" else balanced_labels(max(n_out, 2), rng)
    w = make_weights("int", rng)
    keep = np.repeat(np.arange(M), w)
    if output != "identity":  # every class must survive the zero weights
        assert np.unique(y[keep]).size == max(n_out, 2)
    sizes = (N_FEATURES, 6, n_out)
    alpha = 0.7
    model = make_model(estimator, sizes[1:-1], "tanh", alpha)
    _, sk = sklearn_objective(model, X[keep], y[keep], None, sizes)

    theta = random_theta(sizes, rng)
    J_sk, grad_sk, _ = sk(theta)
    J, grad = fastbp.cost_and_grad(
        theta, X, y, sizes, alpha, activation="tanh", output=output, sample_weight=w
    )
    assert_agree(J, grad, J_sk, grad_sk)
