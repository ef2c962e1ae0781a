"""scikit-learn estimators over :func:`fastbp.fit`: ``BackpropClassifier`` and ``BackpropRegressor``.

    BackpropClassifier().fit(X, y).predict(X)    labels; predict_proba, predict_log_proba, score
    BackpropRegressor().fit(X, y).predict(X)     values; score (R²)

They work in pipelines, ``GridSearchCV`` and ``cross_val_score``, and pass scikit-learn's
estimator checks (tests/test_estimators.py: two expected failures, which scikit-learn's MLP
shares with the same network, and why). Both minimize docs/design.md's J with ``scipy.optimize.minimize``:

    J(Θ) = (1/S) Σ_i s_i cost_i + (λ/2S) Σ non-bias Θ²,    S = Σ_i s_i (m without sample weights)

with cost_i the output's (cross-entropy of sigmoid units, categorical cross-entropy of a softmax,
½ Σ_k (z_k − y_k)² for the regressor's identity output). That is scikit-learn's MLP objective with
``alpha = lam``: ``BackpropClassifier(activation="sigmoid", lam=a)`` and
``MLPClassifier(activation="logistic", solver="lbfgs", alpha=a)`` minimize the same J (the
default ``output="auto"`` picks the output scikit-learn's MLP picks), and so do
``BackpropRegressor`` and ``MLPRegressor`` for one output. With K > 1 outputs the loss
``MLPRegressor`` reports also divides its squared-error term by K (its gradient is ours), so the
two agree for one output only.

The estimators are a thin layer: scikit-learn's validation (``validate_data``, its messages,
``NotFittedError``), then :func:`fastbp.fit` for the training and :func:`fastbp.predict_proba`
for the forward pass. θ lives in ``theta_`` (fastbp's flat layout); ``coefs_`` and
``intercepts_`` show it in scikit-learn's (:func:`to_sklearn_weights`).

Needs scikit-learn ≥ 1.6 (``pip install "fastbp[sklearn]"``); ``import fastbp`` does not import
this module, ``fastbp.sklearn`` does on first use.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._layout import HIDDEN
from ._model import predict_proba
from ._sklearn_layout import from_sklearn_weights, to_sklearn_weights
from ._threading import threads
from ._workflow import fit, init_weights

__all__ = ["BackpropClassifier", "BackpropRegressor", "from_sklearn_weights", "to_sklearn_weights"]

# The scipy.optimize.minimize methods fastbp.fit is tested with: gradient methods, and the
# second-order ones, which fit gives fastbp's exact Hessian-vector product.
SOLVERS = ("L-BFGS-B", "BFGS", "CG", "TNC", "Newton-CG", "trust-ncg", "trust-krylov")
_SPARSE_FORMATS = ("csr", "csc")  # other formats are converted to CSR by validate_data


def _hidden_sizes(value: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints, or ValueError naming it."""
    sizes = (value,) if isinstance(value, Integral) else tuple(value)
    if any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must hold positive integers, got {value!r}")
    return tuple(int(s) for s in sizes)


class _Backprop(BaseEstimator):
    """What both estimators share: the parameters, ``fit`` over :func:`fastbp.fit`, the forward
    pass. A subclass says what its targets are (``_encode_targets``)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN)), list, tuple],
        "lam": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "dtype": [StrOptions({"float64", "float32"})],
        "threads": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
    }
    # Fitted attributes (annotations only: an unfitted estimator has none of them).
    theta_: np.ndarray
    layer_sizes_: tuple[int, ...]
    activation_: tuple[str, ...]
    output_: str
    n_outputs_: int
    n_iter_: int
    loss_: float
    loss_curve_: list[float]

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, str, int, dict[str, Any]]:
        """(targets for fastbp.fit, output, K output units, fitted attributes that describe the
        targets, such as ``classes_``) for the validated y."""
        raise NotImplementedError

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> Any:
        self._validate_params()
        dtype = np.dtype(self.dtype)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=_SPARSE_FORMATS,
            dtype=dtype,
            multi_output=True,
            y_numeric=not isinstance(self, ClassifierMixin),
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=dtype, ensure_non_negative=True
            )
        targets, output, K, described = self._encode_targets(y)
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        sizes = (X.shape[1], *hidden, K)
        if self.warm_start and self._same_network(sizes, output, described):
            theta0 = self.theta_
        else:
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            theta0 = init_weights(sizes, seed=int(seed))
        with threads(self.threads):
            model = fit(
                X,
                targets,
                hidden,
                lam=self.lam,
                activation=self.activation,
                output=output,
                sample_weight=sample_weight,
                maxiter=self.max_iter,
                method=self.solver,
                theta0=theta0,
                tol=self.tol,
                progress=self.verbose,
            )
        result = model.result
        if model.interrupted:
            warnings.warn(
                "training interrupted by the user (KeyboardInterrupt): the model holds the "
                "best θ evaluated so far",
                UserWarning,
                stacklevel=3,
            )
        elif not result.success:
            warnings.warn(
                f"{self.solver} stopped after {result.nit} iterations without converging "
                f"({result.message}): raise max_iter, or scale the features (StandardScaler)",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.theta_ = model.theta
        self.layer_sizes_ = model.layer_sizes
        self.activation_ = tuple(model.activation)  # FitResult keeps one name per hidden layer
        self.output_ = output
        self.n_outputs_ = K
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        self.loss_curve_ = model.history.tolist()
        for name, value in described.items():
            setattr(self, name, value)
        return self

    def _same_network(self, sizes: tuple[int, ...], output: str, described: dict[str, Any]) -> bool:
        """Whether the last fit trained this network on targets described alike (warm start)."""
        if not hasattr(self, "theta_"):
            return False
        return (
            self.layer_sizes_ == sizes
            and self.output_ == output
            and all(np.array_equal(getattr(self, k), v) for k, v in described.items())
        )

    def _forward(self, X: Any) -> np.ndarray:
        """h_Θ(x) for every row of X, (m, K), in the compute dtype: scikit-learn's validation of X
        against the fit (NotFittedError, features), then :func:`fastbp.predict_proba`."""
        check_is_fitted(self, "theta_")
        dtype = np.dtype(self.dtype)
        X = validate_data(self, X, accept_sparse=_SPARSE_FORMATS, dtype=dtype, reset=False)
        theta = self.theta_.astype(dtype, copy=False)
        with threads(self.threads):
            return predict_proba(
                theta, X, self.layer_sizes_, activation=self.activation_, output=self.output_
            )

    @property
    def coefs_(self) -> list[np.ndarray]:
        """``coefs_[l]`` = Θ^(l)[:, 1:]ᵀ, shape (s_l, s_{l+1}): scikit-learn's layout, a view."""
        return to_sklearn_weights(self.theta_, self.layer_sizes_)[0]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """``intercepts_[l]`` = Θ^(l)[:, 0], shape (s_{l+1},): scikit-learn's layout, a view."""
        return to_sklearn_weights(self.theta_, self.layer_sizes_)[1]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class BackpropClassifier(ClassifierMixin, _Backprop):
    """A fully connected network classifier trained by :func:`fastbp.fit` (scipy, exact gradient).

    Labels y of shape (m,) (any values: ``classes_ = np.unique(y)``), binary or multi-class, or a
    multi-label indicator matrix of shape (m, K) of 0/1. ``output`` picks the output layer:

    - ``"auto"`` (default), scikit-learn's MLP's choice: a softmax over the classes for three or
      more classes, one sigmoid unit for two, one sigmoid unit per label for multi-label y;
    - ``"sigmoid"``: independent sigmoid units, the course's network: one unit for two classes,
      else one per class (``predict_proba`` then divides h by its row sum, one-vs-rest);
    - ``"softmax"``: one unit per class, two for binary y; not for multi-label y (ValueError).

    ``predict`` is the class of largest probability (with one unit: ``classes_[1]`` where
    h > 0.5, scikit-learn's rule, where :func:`fastbp.predict` takes h ≥ 0.5); multi-label: 1
    where h > 0.5.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(25,)
        Units of each hidden layer; ``()`` for none (logistic regression).
    activation : {"sigmoid", "tanh", "relu", "identity"} or sequence of them, default="sigmoid"
        The hidden layers' g: one name for all, or one per hidden layer ("sigmoid" is
        scikit-learn's "logistic").
    output : {"auto", "sigmoid", "softmax"}, default="auto"
        The output layer, as above.
    lam : float >= 0, default=1.0
        λ of the penalty (λ/2S) Σ non-bias Θ²: scikit-learn's ``alpha``.
    solver : {"L-BFGS-B", "BFGS", "CG", "TNC", "Newton-CG", "trust-ncg", "trust-krylov"}, \
default="L-BFGS-B"
        The ``scipy.optimize.minimize`` method; the last three use the exact Hessian-vector
        product (:meth:`fastbp.Objective.hessp`).
    max_iter : int >= 1, default=400
        Its iteration limit (TNC has none: there, the limit of cost evaluations). Stopping at
        the limit warns (``ConvergenceWarning``).
    tol : float >= 0 or None, default=None
        scipy's ``tol``. None keeps scipy's own stopping rules; for L-BFGS-B: stop when J
        decreases by less than 2.2e-9 relatively, or every projected gradient entry is below
        1e-5 (``MLPClassifier(solver="lbfgs", tol=1e-5)`` stops by the same rules). A number
        sets both thresholds (L-BFGS-B's ``ftol`` and ``gtol``).
    random_state : int, RandomState instance or None, default=None
        Seeds :func:`fastbp.init_weights` (uniform in ±√6/√(s_l + s_{l+1})) through
        ``check_random_state``.
    warm_start : bool, default=False
        Start from ``theta_`` of the previous fit when the network is the same (layer sizes,
        output, classes); otherwise start from new random weights.
    dtype : {"float64", "float32"}, default="float64"
        The compute dtype of fit and predict: X is converted to it once; θ stays float64.
    threads : int >= 1 or None, default=None
        Threads of fastbp's kernels during fit and predict (:func:`fastbp.threads`); None: all.
    verbose : bool, default=False
        Show a progress bar with the cost while fitting (``fastbp.fit(progress=True)``).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (multi-label: ``0 … K−1``, the columns of y).
    theta_ : ndarray of shape (P,), float64
        The trained θ in fastbp's flat layout (docs/design.md). Set it to change the weights.
    layer_sizes_ : tuple of int
        (n_features_in_, *hidden_layer_sizes, n_outputs_).
    activation_ : tuple of str
        The hidden layers' activations, one name per hidden layer.
    output_ : str
        The output trained: "sigmoid" or "softmax" (``"auto"`` resolved).
    coefs_, intercepts_ : lists of ndarray
        θ in scikit-learn's MLP layout, views of ``theta_`` (read-only properties):
        ``coefs_[l]`` = Θ^(l)[:, 1:]ᵀ of shape (s_l, s_{l+1}), ``intercepts_[l]`` = Θ^(l)[:, 0].
    n_outputs_ : int
        Output units.
    n_iter_ : int
        The optimizer's iterations (scipy's ``nit``).
    loss_ : float
        J at ``theta_``.
    loss_curve_ : list of float
        J after every iteration (:attr:`fastbp.FitResult.history`).
    n_features_in_ : int
        Features seen in fit.
    feature_names_in_ : ndarray of str
        Their names, when X had string column names (a pandas table).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_Backprop._parameter_constraints,
        "output": [StrOptions({"auto", "sigmoid", "softmax"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (25,),
        activation: Any = "sigmoid",
        output: str = "auto",
        lam: float = 1.0,
        solver: str = "L-BFGS-B",
        max_iter: int = 400,
        tol: float | None = None,
        random_state: Any = None,
        warm_start: bool = False,
        dtype: str = "float64",
        threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output = output
        self.lam = lam
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.dtype = dtype
        self.threads = threads
        self.verbose = verbose

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackpropClassifier:
        """Train on X (m, n), dense or sparse, and y; ``sample_weight`` (m,) ≥ 0. Returns self."""
        return self._fit(X, y, sample_weight)

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, str, int, dict[str, Any]]:
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multilabel-indicator":
            if self.output == "softmax":
                raise ValueError(
                    "output='softmax' is for mutually exclusive classes, but y is a multi-label "
                    "indicator matrix: use output='auto' or 'sigmoid' (one unit per label)"
                )
            Y = (y.toarray() if sparse.issparse(y) else np.asarray(y)).astype(self.dtype)
            K = Y.shape[1]
            return Y, "sigmoid", K, {"classes_": np.arange(K), "_multilabel": True}
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} fits binary, multi-class or multi-label (an indicator "
                f"matrix) targets, but y is {kind}"
            )
        classes, indices = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but the data "
                f"contains only one class: {classes[0]!r}"
            )
        output = self.output
        if output == "auto":
            output = "softmax" if len(classes) > 2 else "sigmoid"
        K = 1 if output == "sigmoid" and len(classes) == 2 else len(classes)
        return indices.astype(np.int64), output, K, {"classes_": classes, "_multilabel": False}

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (m, len(classes_)), rows summing to 1; multi-label: (m, K), the
        probability of each label. In the compute dtype."""
        h = self._forward(X)
        if self._multilabel:
            return h
        if h.shape[1] == 1:
            return np.hstack([1 - h, h])
        if self.output_ == "sigmoid":  # independent units: normalized, one-vs-rest
            return h / h.sum(axis=1, keepdims=True)
        return h

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of :meth:`predict_proba` (−inf where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of every row; multi-label: an (m, K) int64 0/1 matrix."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BackpropRegressor(MultiOutputMixin, RegressorMixin, _Backprop):
    """A fully connected network regressor trained by :func:`fastbp.fit` (scipy, exact gradient).

    The identity output and the squared error: J = (1/S) Σ_i s_i ½ Σ_k (z_k − y_k)² + (λ/2S)
    Σ non-bias Θ². y holds numbers, (m,) or (m, K) (multi-output); ``predict`` returns the
    values in the shape of the y it was fitted on. Parameters and attributes are
    :class:`BackpropClassifier`'s, without ``output`` and ``classes_``; ``output_`` is
    "identity".
    """

    def __init__(
        self,
        hidden_layer_sizes: Any = (25,),
        activation: Any = "sigmoid",
        lam: float = 1.0,
        solver: str = "L-BFGS-B",
        max_iter: int = 400,
        tol: float | None = None,
        random_state: Any = None,
        warm_start: bool = False,
        dtype: str = "float64",
        threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lam = lam
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.dtype = dtype
        self.threads = threads
        self.verbose = verbose

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BackpropRegressor:
        """Train on X (m, n), dense or sparse, and y; ``sample_weight`` (m,) ≥ 0. Returns self."""
        return self._fit(X, y, sample_weight)

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, str, int, dict[str, Any]]:
        Y = (y.toarray() if sparse.issparse(y) else np.asarray(y)).astype(self.dtype)
        return Y, "identity", 1 if Y.ndim == 1 else Y.shape[1], {"_y_ndim": Y.ndim}

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values: (m,) for a 1-D training y, else (m, K). In the compute dtype."""
        values = self._forward(X)
        return values[:, 0] if self._y_ndim == 1 else values
