"""fastbp.sklearn: BackpropClassifier and BackpropRegressor as scikit-learn estimators.

scikit-learn's own estimator checks, then what the checks do not see: the objective each
estimator minimizes (its ``loss_`` against fastbp.cost), the outputs ``output="auto"`` picks
against scikit-learn's MLP, weights moved between the two, warm starts, dtypes, threads, and
GridSearchCV with n_jobs=2 on processes and on threads.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastbp

pytest.importorskip("sklearn", minversion="1.6")

from joblib import parallel_config
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_param_validation,
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
    parametrize_with_checks,
)

from fastbp.sklearn import (
    BackpropClassifier,
    BackpropRegressor,
    from_sklearn_weights,
    to_sklearn_weights,
)

# The two checks that compare a fit with integer sample weights to a fit on repeated rows up to
# rtol 1e-7. J is the same function either way (fastbp's J and gradient agree to rounding), but
# the rounding differs, and L-BFGS-B on a non-convex J amplifies it over a few hundred
# iterations: the predictions differ by ~1e-4. scikit-learn's MLP with the same network fails
# them the same way (test_mlp_fails_sample_weight_equivalence_with_this_network). Both pass on
# scikit-learn's default network (relu, 100 units, alpha 1e-4), where L-BFGS-B converges in ~15
# iterations (test_sample_weight_equivalence_on_mlps_default_network).
SAMPLE_WEIGHT_REASON = (
    "MLPClassifier/MLPRegressor(activation='logistic', hidden_layer_sizes=(25,), alpha=1.0, "
    "solver='lbfgs') fail it too: rounding differences grow along L-BFGS-B's path on a "
    "non-convex J, so weighted and repeated rows end ~1e-4 apart (rtol 1e-7 asked)"
)
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_REASON,
    "check_sample_weight_equivalence_on_sparse_data": SAMPLE_WEIGHT_REASON,
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [BackpropClassifier(), BackpropRegressor()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data],
)
@pytest.mark.parametrize("estimator", [BackpropClassifier, BackpropRegressor])
def test_sample_weight_equivalence_on_mlps_default_network(estimator, check):
    """The two expected failures pass where scikit-learn's MLP passes them (its default network)."""
    network = {"hidden_layer_sizes": (100,), "activation": "relu", "lam": 1e-4}
    check(estimator.__name__, estimator(**network))


@pytest.mark.parametrize("estimator", [BackpropClassifier(), BackpropRegressor()])
def test_sklearn_parameter_validation_check(estimator):
    """scikit-learn runs this check on its own estimators only; it passes here too."""
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data],
)
@pytest.mark.parametrize("mlp", [MLPClassifier, MLPRegressor])
def test_mlp_fails_sample_weight_equivalence_with_this_network(mlp, check):
    """The reason of the two expected failures above, checked: if scikit-learn's MLP starts to
    pass with the defaults' network, the expected failures must be looked at again."""
    estimator = mlp(
        hidden_layer_sizes=(25,), activation="logistic", alpha=1.0, solver="lbfgs", tol=1e-5
    )
    with pytest.raises(AssertionError, match="not equivalent"):
        check(mlp.__name__, estimator)


def test_import_fastbp_does_not_import_sklearn():
    code = "import sys, fastbp; assert 'sklearn' not in sys.modules; print(fastbp.sklearn.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "fastbp.sklearn"


# The objective: loss_ is fastbp's J at theta_, with every parameter passed on --------------


def blobs(rng, m=120, n=4, K=3):
    centers = rng.normal(0, 3, (K, n))
    y = rng.integers(0, K, m)
    return centers[y] + rng.normal(size=(m, n)), y


@pytest.mark.parametrize(
    ("K", "output", "units", "fastbp_output"),
    [
        (2, "auto", 1, "sigmoid"),
        (3, "auto", 3, "softmax"),
        (3, "sigmoid", 3, "sigmoid"),
        (2, "softmax", 2, "softmax"),
    ],
)
def test_classifier_minimizes_fastbps_cost(rng, K, output, units, fastbp_output):
    X, y = blobs(rng, K=K)
    labels = np.array(["ant", "bee", "cat"])[y]  # any labels: classes_ = np.unique(y)
    w = rng.uniform(0.5, 2, len(y))
    model = BackpropClassifier((5,), activation="tanh", output=output, lam=0.3, random_state=0)
    model.fit(X, labels, sample_weight=w)
    assert model.layer_sizes_ == (4, 5, units)
    assert model.output_ == fastbp_output
    assert model.activation_ == ("tanh",)
    np.testing.assert_array_equal(model.classes_, ["ant", "bee", "cat"][:K])
    network = {"activation": "tanh", "output": fastbp_output}
    J = fastbp.cost(model.theta_, X, y, model.layer_sizes_, 0.3, sample_weight=w, **network)
    assert model.loss_ == pytest.approx(J, rel=1e-12)
    assert model.loss_curve_[-1] == pytest.approx(J, rel=1e-12)
    assert len(model.loss_curve_) == model.n_iter_
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), K)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    assert model.score(X, labels) > 0.9


def test_independent_sigmoid_units_are_normalized_one_vs_rest(rng):
    X, y = blobs(rng, K=3)
    model = BackpropClassifier((5,), output="sigmoid", random_state=0).fit(X, y)
    h = fastbp.predict_proba(model.theta_, X, model.layer_sizes_)
    np.testing.assert_allclose(model.predict_proba(X), h / h.sum(axis=1, keepdims=True))
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(model.predict_log_proba(X), np.log(model.predict_proba(X)))


@pytest.mark.parametrize("y_shape", ["1-D", "column", "two outputs"])
def test_regressor_minimizes_fastbps_cost_and_predicts_in_ys_shape(rng, y_shape):
    X = rng.normal(size=(150, 3))
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    y = {"1-D": Y[:, 0], "column": Y[:, :1], "two outputs": Y}[y_shape]
    model = BackpropRegressor((6,), activation="relu", lam=0.1, random_state=0).fit(X, y)
    assert model.output_ == "identity"
    assert model.n_outputs_ == (2 if y_shape == "two outputs" else 1)
    J = fastbp.cost(
        model.theta_, X, y, model.layer_sizes_, 0.1, activation="relu", output="identity"
    )
    assert model.loss_ == pytest.approx(J, rel=1e-12)
    assert model.predict(X).shape == y.shape
    assert model.score(X, y) > 0.8


def test_multilabel_indicator_targets(rng):
    X, Y = make_multilabel_classification(n_samples=120, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    model = BackpropClassifier((8,), random_state=0).fit(X, Y)
    assert model.output_ == "sigmoid"
    np.testing.assert_array_equal(model.classes_, np.arange(4))
    J = fastbp.cost(model.theta_, X, Y.astype(float), model.layer_sizes_, 1.0)
    assert model.loss_ == pytest.approx(J, rel=1e-12)
    h = fastbp.predict_proba(model.theta_, X, model.layer_sizes_)
    np.testing.assert_array_equal(model.predict_proba(X), h)
    np.testing.assert_array_equal(model.predict(X), (h > 0.5).astype(np.int64))
    with pytest.raises(ValueError, match="multi-label"):
        BackpropClassifier(output="softmax").fit(X, Y)


# scikit-learn's MLP: the same outputs, the same layout ----------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("task", ["binary", "multi-class", "multi-label", "regression"])
def test_weights_move_between_mlp_and_these_estimators(rng, task):
    """output="auto" sets up scikit-learn's network: the same coefs_ and intercepts_ shapes, and
    the MLP's trained weights, put into theta_, give its predictions."""
    X = rng.normal(size=(90, 5))
    if task == "multi-label":
        y = (X[:, :3] + rng.normal(size=(90, 3)) > 0).astype(int)
    elif task == "regression":
        y = X[:, 0] - 2 * X[:, 1]
    else:
        y = (X[:, 0] > 0).astype(int) + (task == "multi-class") * (X[:, 1] > 0)
    classify = task != "regression"
    mlp = (MLPClassifier if classify else MLPRegressor)(
        hidden_layer_sizes=(4, 3), activation="tanh", solver="lbfgs", max_iter=30, random_state=0
    ).fit(X, y)
    ours = (BackpropClassifier if classify else BackpropRegressor)(
        hidden_layer_sizes=(4, 3), activation="tanh", max_iter=30, random_state=0
    ).fit(X, y)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in mlp.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in mlp.intercepts_]
    assert ours.output_ == {"logistic": "sigmoid"}.get(mlp.out_activation_, mlp.out_activation_)
    ours.theta_ = from_sklearn_weights(mlp.coefs_, mlp.intercepts_)
    method = "predict_proba" if classify else "predict"
    np.testing.assert_allclose(getattr(ours, method)(X), getattr(mlp, method)(X), rtol=1e-12)
    if classify:
        np.testing.assert_array_equal(ours.predict(X), mlp.predict(X))
    coefs, _ = to_sklearn_weights(ours.theta_, ours.layer_sizes_)
    assert all(np.array_equal(a, b) for a, b in zip(coefs, mlp.coefs_, strict=True))
    assert all(np.shares_memory(c, ours.theta_) for c in ours.coefs_ + ours.intercepts_)


# warm start, dtypes, threads, pickling, progress ----------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_continues_from_theta_when_the_network_is_the_same(rng):
    X, y = blobs(rng)
    cold = BackpropClassifier((5,), max_iter=5, random_state=0).fit(X, y)
    assert cold.n_iter_ == 5
    again = clone(cold).fit(X, y)  # no warm start: the same first iterations
    assert again.loss_curve_ == cold.loss_curve_
    warm = clone(cold).set_params(warm_start=True).fit(X, y)  # nothing to start from yet
    assert warm.loss_curve_ == cold.loss_curve_
    first = warm.theta_.copy()
    warm.fit(X, y)  # from first
    assert cold.loss_ == fastbp.cost(first, X, y, (4, 5, 3), 1.0, output="softmax")
    assert warm.loss_curve_[0] < cold.loss_
    warm.set_params(hidden_layer_sizes=(6,)).fit(X, y)  # another network: fresh weights
    fresh = clone(warm).set_params(warm_start=False).fit(X, y)
    assert warm.layer_sizes_ == (4, 6, 3)
    assert warm.loss_curve_ == fresh.loss_curve_


def test_float32_computes_in_float32(rng):
    X, y = blobs(rng)
    model64 = BackpropClassifier((5,), random_state=0).fit(X, y)
    model32 = BackpropClassifier((5,), random_state=0, dtype="float32").fit(X, y)
    assert model32.theta_.dtype == np.float64  # scipy's
    assert model32.predict_proba(X).dtype == np.float32
    assert model64.predict_proba(X).dtype == np.float64
    J32 = fastbp.cost(model32.theta_.astype(np.float32), X, y, (4, 5, 3), 1.0, output="softmax")
    assert model32.loss_ == pytest.approx(J32, rel=1e-6)
    assert model32.loss_ == pytest.approx(model64.loss_, rel=1e-3)


def test_threads_give_the_same_bits_and_pickling_keeps_the_model(rng):
    X, y = blobs(rng, m=3000)  # several parallel blocks
    one = BackpropClassifier((5,), max_iter=20, random_state=0, threads=1)
    with pytest.warns(ConvergenceWarning, match="after 20 iterations"):
        one.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        every = clone(one).set_params(threads=None).fit(X, y)
    np.testing.assert_array_equal(one.theta_, every.theta_)
    copy = pickle.loads(pickle.dumps(one))
    np.testing.assert_array_equal(copy.predict_proba(X), one.predict_proba(X))
    assert copy.get_params() == one.get_params()


def test_verbose_shows_fits_progress(rng, capsys):
    X, y = blobs(rng)
    BackpropClassifier((3,), verbose=True, random_state=0).fit(X, y)
    assert "fastbp fit" in capsys.readouterr().err


# bad input: scikit-learn's conventions ---------------------------------------------------------


def test_bad_input_follows_sklearn(rng):
    X, y = blobs(rng)
    with pytest.raises(NotFittedError):
        BackpropClassifier().predict(X)
    with pytest.raises(AttributeError):
        BackpropClassifier().coefs_  # noqa: B018
    model = BackpropClassifier((3,), random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but BackpropClassifier is expecting"):
        model.predict(X[:, :3])
    with pytest.raises(InvalidParameterError, match="'lam' parameter"):
        BackpropClassifier(lam=-1).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'output' parameter"):
        BackpropClassifier(output="identity").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must hold positive integers"):
        BackpropClassifier(hidden_layer_sizes=[5, 0]).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        BackpropClassifier(hidden_layer_sizes=(3, 3), activation=["relu"]).fit(X, y)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        BackpropClassifier().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="Unknown label type"):
        BackpropClassifier().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        BackpropRegressor().fit(np.full_like(X, np.nan), X[:, 0])


def test_feature_names_of_a_pandas_table(rng):
    pd = pytest.importorskip("pandas")
    X = rng.normal(size=(50, 4))
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = BackpropRegressor((3,), random_state=0).fit(table, X[:, 0])
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(model.predict(X), model.predict(table))
    with pytest.raises(ValueError, match="feature names"):
        model.predict(table.rename(columns={"a": "z"}))


# GridSearchCV with n_jobs=2 --------------------------------------------------------------------


def grid_search(n_jobs, backend):
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), BackpropClassifier((8,), random_state=0))
    grid = {"backpropclassifier__lam": [0.1, 1.0, 10.0]}
    search = GridSearchCV(pipeline, grid, cv=3, n_jobs=n_jobs, error_score="raise")
    with parallel_config(backend=backend):
        search.fit(X, y)
    return search


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_grid_search_with_two_jobs_gives_the_results_of_one(backend):
    """Processes (loky) and threads: every fit gives the same bits as in one process."""
    one = grid_search(1, "loky")  # n_jobs=1: in this process
    two = grid_search(2, backend)
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(two.cv_results_[key], one.cv_results_[key])
    assert two.best_params_ == one.best_params_
    np.testing.assert_array_equal(two.best_estimator_[-1].theta_, one.best_estimator_[-1].theta_)
    assert one.best_score_ > 0.95


@pytest.mark.parametrize("solver", ["Newton-CG", "trust-krylov"])
def test_second_order_solvers_use_the_exact_hessian_vector_product(solver, monkeypatch):
    X, y = load_breast_cancer(return_X_y=True)
    calls = []
    original = fastbp.Objective.hessp
    monkeypatch.setattr(
        fastbp.Objective, "hessp", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    model = make_pipeline(
        StandardScaler(), BackpropClassifier((8,), solver=solver, max_iter=15, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 15 iterations: not converged
        model.fit(X, y)
    assert calls
    assert model.score(X, y) > 0.95
