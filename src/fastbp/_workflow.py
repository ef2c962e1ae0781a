"""The course's workflow around the objective: initialization and training.

    θ₀ = init_weights(layer_sizes)          random weights in [−ε, ε], ε = √6 / √(s_l + s_{l+1})
    model = fit(X, y, hidden_layer_sizes)   scipy.optimize.minimize over Objective
    model.predict(X)                        the original labels (``_model``)

Gradient checking is in ``_gradcheck``, the trained model and prediction in ``_model``.
Everything here calls the public wrappers of :mod:`fastbp._objective`; nothing touches a kernel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._arrays import from_table, is_dask_array
from ._inputs import check_X
from ._layout import check_output, layer_shapes, pack, validate_layer_sizes
from ._model import FitResult
from ._objective import HESSIAN_KINDS, Objective, check_kind
from ._scaling import apply_scaling, feature_scaling
from ._values import check_real, compute_dtype, encode_labels, positive_number, prepare_theta

if TYPE_CHECKING:  # scipy.optimize is imported on first use: it doubles `import fastbp`'s time
    from scipy.optimize import OptimizeResult

__all__ = ["fit", "init_weights", "sigmoid", "sigmoid_gradient"]


def _float_array(z: Any, name: str) -> np.ndarray:
    """``z`` as a float array: float32 stays float32, anything else real becomes float64."""
    z = np.asarray(z)
    check_real(z, name)
    return z if z.dtype in (np.float32, np.float64) else z.astype(np.float64)


def sigmoid(z: Any) -> np.ndarray:
    """g(z) = 1 / (1 + e^(−z)), elementwise; stable for any z (no overflow warning).

    Computed with t = e^(−|z|) ≤ 1 as 1 / (1 + t) for z ≥ 0 and t / (1 + t) for z < 0, so it
    never overflows and keeps full relative precision for large negative z. Returns an array of
    z's shape, float32 for float32 input and float64 otherwise.
    """
    z = _float_array(z, "z")
    t = np.exp(-np.abs(z))
    return np.where(z >= 0, np.ones_like(t), t) / (1 + t)


def sigmoid_gradient(z: Any) -> np.ndarray:
    """g'(z) = g(z) (1 − g(z)), elementwise: the course's ``sigmoidGradient``.

    Computed as t / (1 + t)² with t = e^(−|z|), which keeps full relative precision for large |z|
    (where 1 − g(z) would round to 0) and never overflows. g'(0) = 0.25.
    """
    z = _float_array(z, "z")
    t = np.exp(-np.abs(z))
    return t / np.square(1 + t)


def _generator(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {seed!r}")


def init_weights(
    layer_sizes: Sequence[int],
    *,
    epsilon: float | None = None,
    seed: Any = None,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Random initial weights θ, uniform in [−ε_l, ε_l] for every Θ^(l) (bias column included).

    By default ε_l = √6 / √(s_l + s_{l+1}), the course's rule; a fixed ``epsilon`` (the course's
    exercise uses 0.12) applies to every layer. ``seed`` is an int, a ``numpy.random.Generator``
    (advanced by the draw) or None (fresh entropy). The values are drawn in float64, layer by
    layer, each matrix row-major, and then rounded to ``dtype``: the same seed gives the same θ.
    """
    sizes = validate_layer_sizes(layer_sizes)
    dtype = compute_dtype(dtype, "dtype")
    if epsilon is not None:
        epsilon = positive_number(epsilon, "epsilon")
    rng = _generator(seed)
    thetas = []
    for (rows, cols), s_in, s_out in zip(layer_shapes(sizes), sizes[:-1], sizes[1:], strict=True):
        eps = epsilon if epsilon is not None else math.sqrt(6) / math.sqrt(s_in + s_out)
        thetas.append(rng.uniform(-eps, eps, size=(rows, cols)))
    return pack(thetas).astype(dtype)


def _targets(y: Any, output: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(targets for the Objective, classes or None, K outputs) for :func:`fit`'s ``y``.

    Class labels give ``classes = np.unique(y)`` and K = len(classes) outputs (one sigmoid unit
    for two classes; softmax always has one unit per class); float matrices are used as they
    are; the identity output takes float targets only, (m,) or (m, K), and has no classes.
    """
    y = np.asarray(from_table(y, "y"))
    if output == "identity":
        if y.dtype.kind != "f" or y.ndim not in (1, 2):
            raise TypeError(
                "output='identity' fits float targets of shape (m,) or (m, K), but y has dtype "
                f"{y.dtype} and shape {y.shape}: pass y.astype(float) to fit these numbers, or "
                "a classification output ('sigmoid', 'softmax') for class labels"
            )
        return y, None, 1 if y.ndim == 1 else y.shape[1]
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "biu":
        y = y[:, 0]  # an integer column of labels, as scipy.io.loadmat returns them
    if y.ndim == 2:
        check_real(y, "y")
        return y, None, y.shape[1]
    try:
        indices, classes = encode_labels(y)
    except ValueError as error:
        if y.dtype.kind != "f":
            raise
        raise ValueError(
            f"{error}; for regression on these numbers pass output='identity'"
        ) from None
    if len(classes) < 2:
        raise ValueError(f"y holds a single class ({classes[0]!r}): at least 2 are needed")
    return indices, classes, 1 if len(classes) == 2 and output == "sigmoid" else len(classes)


# scipy.optimize.minimize's methods that take hessp
HESSP_METHODS = ("newton-cg", "trust-ncg", "trust-krylov", "trust-constr")


class _Tracker:
    """Wraps the Objective for :func:`fit`: keeps the best evaluated θ, the per-iteration history,
    the progress bar and the user's callback."""

    def __init__(self, objective: Objective, theta0: np.ndarray, bar: Any, callback: Any) -> None:
        self.objective = objective
        self.best_theta = theta0.copy()
        self.best_J = math.inf
        self.nfev = 0
        self.history: list[float] = []
        self.bar = bar
        self.callback = callback

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        J, grad = self.objective(theta)
        self.nfev += 1
        if J < self.best_J:
            self.best_J = J
            self.best_theta = np.array(theta, dtype=np.float64)
        return J, grad

    def hessp(self, method: str, gauss_newton: bool) -> Callable[..., np.ndarray] | None:
        """scipy's ``hessp(θ, p)`` for the methods that use one, else None."""
        if method.lower() not in HESSP_METHODS:
            return None
        kind = HESSIAN_KINDS[gauss_newton]
        return lambda theta, p, *args: self.objective.hessp(theta, p, kind)

    def iteration(self, theta: np.ndarray, J: float | None) -> None:
        if J is None:
            J = self.objective.fun(theta)
        self.history.append(float(J))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(cost=f"{J:.6f}", refresh=False)
        if self.callback is not None:
            from scipy.optimize import OptimizeResult

            self.callback(OptimizeResult(x=np.array(theta), fun=float(J), nit=len(self.history)))

    def scipy_callback(self, method: str) -> Callable[..., None]:
        """The per-iteration callback for ``minimize``: ``callback(intermediate_result)``."""
        if method.lower() == "tnc":  # TNC calls callback(xk) only

            def on_iteration_xk(xk: np.ndarray) -> None:
                self.iteration(xk, None)

            return on_iteration_xk

        def on_iteration(intermediate_result: OptimizeResult) -> None:
            self.iteration(intermediate_result.x, intermediate_result.get("fun"))

        return on_iteration


def _objective_for(
    X: Any, targets: np.ndarray, sizes: tuple[int, ...], lam: float, **options: Any
) -> Any:
    """An Objective, or a DaskObjective on the current client when X is a dask array (X stays
    on the workers; each call moves only θ and the partial sums). ``options``: activation,
    output and sample_weight."""
    if is_dask_array(X):
        from .dask import DaskObjective

        return DaskObjective(X, targets, sizes, lam, **options)
    return Objective(X, targets, sizes, lam, **options)


def fit(
    X: Any,
    y: Any,
    hidden_layer_sizes: Sequence[int] = (25,),
    *,
    lam: float = 1.0,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
    maxiter: int = 400,
    method: str = "L-BFGS-B",
    hessian: str = "exact",
    theta0: Any = None,
    seed: Any = None,
    tol: float | None = None,
    callback: Callable[[OptimizeResult], Any] | None = None,
    progress: bool = False,
    scale: bool = False,
) -> FitResult:
    """Train a network on (X, y) by minimizing J with ``scipy.optimize.minimize(..., jac=True)``.

    X may be a dask array (row-chunked, y a dask or NumPy array): training then runs on the
    current dask client through :class:`fastbp.dask.DaskObjective`, X staying on the workers
    (the labels are read once into memory to find the classes).

    The layer sizes are ``(X.shape[1], *hidden_layer_sizes, K)``. Class labels y (integers,
    strings, bools; shape (m,)) give ``classes = np.unique(y)`` and K = len(classes) outputs, or
    a single output unit for 2 classes; a float target matrix of shape (m, K) in [0, 1] gives K
    outputs (multi-label). The computation runs in X's dtype when it is float32 or float64, else
    float64 (see :class:`fastbp.Objective`); θ itself is float64 (scipy's).

    ``activation`` (the hidden layers': ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"identity"``,
    or one name per hidden layer) and ``output`` are those of :func:`fastbp.cost_and_grad`:

    - ``"sigmoid"`` (the default): independent sigmoid units with the cross-entropy, the course's
      network. It stays the default for every number of classes, so that ``fit`` gives the same
      θ as before these options existed; choose ``output="softmax"`` for mutually exclusive
      classes.
    - ``"softmax"``: one unit per class, even for 2 classes (no single-unit shortcut), and the
      categorical cross-entropy; float targets must be probability rows.
    - ``"identity"``: regression with the squared error. y holds float targets, (m,) or (m, K)
      (integer labels are a TypeError: pass ``y.astype(float)`` to fit such numbers); there are
      no classes, ``predict`` returns the values in the shape of y and ``predict_proba`` raises.

    ``sample_weight``: (m,) weights s_i ≥ 0, not all zero; J is then the weighted mean
    (1/S) Σ s_i cost_i + (λ/2S) Σ Θ², S = Σ s_i (scikit-learn's definition), and ``history``
    holds that J. ``scale=True``'s standardization stays unweighted.

    ``theta0`` defaults to :func:`init_weights` with ``seed``. ``maxiter``, ``method`` and
    ``tol`` go to scipy (any method that uses the gradient; TNC, which has no iteration limit,
    gets ``maxiter`` as its limit of cost evaluations, ``maxfun``). ``callback(intermediate_result)``
    is called after every iteration with an OptimizeResult holding ``x`` (θ), ``fun`` (J) and
    ``nit``; raising ``StopIteration`` in it ends the training (scipy's convention, not for
    TNC). The second-order methods ``"Newton-CG"``, ``"trust-ncg"``, ``"trust-krylov"`` and
    ``"trust-constr"`` get ``hessp``, the exact Hessian-vector product of
    :meth:`fastbp.Objective.hessp`; ``hessian="gauss-newton"`` gives them the Gauss-Newton
    product instead (positive semidefinite). ``progress=True`` shows a tqdm bar on stderr with
    the current cost.

    The optimizer (and so ``callback``) runs with one BLAS thread (threadpoolctl); the cost and
    gradient run in numba's threads.

    ``scale=True`` standardizes the features first: each column of X minus its mean, divided by
    its standard deviation (1 for a constant column), as scikit-learn's StandardScaler does.
    Gradient methods converge much faster on features of similar size (wine's span 0.13 to
    1,680). The means and deviations are kept in the result (``x_mean``, ``x_scale``), saved by
    :func:`fastbp.save`, and applied by ``predict`` and ``predict_proba``; θ is for the scaled
    features. It makes a scaled copy of X in memory (a dask X stays lazy on its workers).

    Ctrl-C (KeyboardInterrupt) during training returns the best θ evaluated so far, with
    ``interrupted=True`` and a ``result`` whose message says so. The same inputs and seed give a
    bitwise-identical θ.
    """
    from scipy.optimize import OptimizeResult, minimize
    from threadpoolctl import threadpool_limits

    output = check_output(output)
    targets, classes, K = _targets(y, output)
    if isinstance(hidden_layer_sizes, (int, np.integer)):
        raise TypeError(
            f"hidden_layer_sizes must be a sequence such as ({hidden_layer_sizes},), "
            f"got the int {hidden_layer_sizes}"
        )
    X_shape = np.shape(X)
    check_X(X_shape, None)
    sizes = validate_layer_sizes((X_shape[1], *hidden_layer_sizes, K))
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
    if not isinstance(method, str):
        raise TypeError(
            f"method must be the name of a scipy.optimize.minimize method, got {method!r}"
        )
    gauss_newton = check_kind(hessian, "hessian")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    if not isinstance(scale, (bool, np.bool_)):
        raise TypeError(f"scale must be True or False, got {scale!r}")
    x_mean = x_scale = None
    if scale:
        x_mean, x_scale = feature_scaling(X)
        X = apply_scaling(X, x_mean, x_scale)
    objective = _objective_for(
        X, targets, sizes, lam, activation=activation, output=output, sample_weight=sample_weight
    )
    if theta0 is None:
        theta0 = init_weights(sizes, seed=seed)
    else:
        theta0 = prepare_theta(theta0, sizes, np.dtype(np.float64)).copy()

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(maxiter), desc="fastbp fit", unit="it", leave=True)
    tracker = _Tracker(objective, theta0, bar, callback)
    start = time.perf_counter()
    try:
        # One BLAS thread: OpenBLAS threads fighting numba's made L-BFGS-B's step many times
        # slower (docs/decisions.md#fit-blas-threads), and θ stays independent of their count.
        with threadpool_limits(limits=1, user_api="blas"):
            result = minimize(
                tracker,
                theta0,
                jac=True,
                hessp=tracker.hessp(method, gauss_newton),
                method=method,
                tol=tol,
                callback=tracker.scipy_callback(method),
                # TNC has no iteration limit: there maxiter bounds the cost evaluations.
                options={"maxfun" if method.lower() == "tnc" else "maxiter": int(maxiter)},
            )
        theta, interrupted = np.array(result.x, dtype=np.float64), False
    except KeyboardInterrupt:
        interrupted = True
        theta = tracker.best_theta
        fun = tracker.best_J if tracker.nfev else math.nan
        result = OptimizeResult(
            x=theta,
            fun=fun,
            success=False,
            status=-1,
            message="interrupted (KeyboardInterrupt): θ is the best evaluated so far",
            nit=len(tracker.history),
            nfev=tracker.nfev,
        )
    finally:
        elapsed = time.perf_counter() - start
        if bar is not None:
            bar.close()
    return FitResult(
        theta=theta,
        layer_sizes=sizes,
        classes=classes,
        lam=objective.lam,
        history=np.array(tracker.history, dtype=np.float64),
        result=result,
        time=elapsed,
        interrupted=interrupted,
        x_mean=x_mean,
        x_scale=x_scale,
        activation=objective.activation,
        output=output,
        y_ndim=targets.ndim,
    )
