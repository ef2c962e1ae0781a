"""A trained network: :func:`predict` from θ, and :class:`FitResult`, what :func:`fastbp.fit`
returns, with its own ``predict`` and ``predict_proba``.

    predict(theta, X, layer_sizes)    output-unit indices 0 … K−1 (the identity output's values)
    model.predict(X)                  the original labels (a regressor's values)
    model.predict_proba(X)            one probability per class (classifiers only)

What a prediction is depends on the output (docs/design.md): the arg-max unit of sigmoid and
softmax outputs (with one sigmoid unit, 1 where h ≥ 0.5), the values z^(L) themselves for the
identity output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._inputs import prepare_examples
from ._layout import names_of, network
from ._plan import forward
from ._scaling import apply_scaling
from ._values import prepare_theta

if TYPE_CHECKING:  # scipy.optimize is imported on first use: it doubles `import fastbp`'s time
    from scipy.optimize import OptimizeResult

__all__ = ["FitResult", "predict", "predict_proba"]


def _units(proba: np.ndarray) -> np.ndarray:
    """The predicted output unit of every row: the arg-max, or with one unit 1 where h ≥ 0.5."""
    if proba.shape[1] == 1:
        return (proba[:, 0] >= 0.5).astype(np.int64)
    return np.argmax(proba, axis=1).astype(np.int64)


def predict_proba(
    theta: Any,
    X: Any,
    layer_sizes: Sequence[int],
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
) -> np.ndarray:
    """h_Θ(x) for every row of X: an (m, K) array of the output's values, in θ's dtype: g(z)
    for sigmoid outputs, softmax(z) (rows summing to 1), or z for the identity output.

    A forward pass only, through the same compiled kernels (parallel over blocks of examples);
    X may be memory-mapped (it is streamed); no m × s_l matrix is built beyond the (m, K) result.
    """
    sizes, functions = network(layer_sizes, activation, output)
    theta = prepare_theta(theta, sizes, None)
    return forward(theta, prepare_examples(X, None, sizes, targets=False, functions=functions))


def predict(
    theta: Any,
    X: Any,
    layer_sizes: Sequence[int],
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
) -> np.ndarray:
    """The output unit with the largest h_Θ(x) for every row of X: int64 labels 0 … K−1.

    With one sigmoid output unit (K = 1) the label is 1 where h_Θ(x) ≥ 0.5, else 0; a softmax
    output's label is its most probable unit. With ``output="identity"`` (regression) there are
    no labels: the (m, K) predicted values z^(L) are returned, as by :func:`fastbp.predict_proba`.
    ``activation`` and ``output`` as for :func:`fastbp.cost_and_grad`. Runs the compiled
    forward pass of :func:`fastbp.predict_proba`.
    """
    values = predict_proba(theta, X, layer_sizes, activation=activation, output=output)
    return values if output == "identity" else _units(values)


@dataclass(frozen=True, repr=False, eq=False)
class FitResult:
    """A trained network and how it was trained (see :func:`fastbp.fit`).

    Fields: ``theta`` (flat weights, float64), ``layer_sizes``, ``classes`` (the original label
    of each output unit; with one sigmoid output unit the two labels, the unit giving the
    probability of ``classes[1]``; None for float targets and for regression), ``lam``,
    ``history`` (J after every iteration), ``result`` (scipy's OptimizeResult: status, message,
    nit, nfev, …), ``time`` (seconds in the optimizer), ``interrupted`` (True when Ctrl-C stopped
    the training; ``theta`` is then the best θ evaluated so far), ``x_mean``, ``x_scale`` (the
    features' standardization of ``fit(..., scale=True)``, applied by ``predict`` and
    ``predict_proba``; else None), ``activation`` (the hidden layers' activations, a tuple of
    one name per hidden layer; a single name given here is used for every hidden layer),
    ``output`` (``"sigmoid"``, ``"softmax"`` or ``"identity"``) and ``y_ndim`` (1 or 2, the
    dimensions of the training y: a regressor's ``predict`` returns that shape; None: unknown,
    (m, K)).
    """

    theta: np.ndarray
    layer_sizes: tuple[int, ...]
    classes: np.ndarray | None
    lam: float
    history: np.ndarray
    result: OptimizeResult
    time: float
    interrupted: bool
    x_mean: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    activation: str | Sequence[str] = "sigmoid"
    output: str = "sigmoid"
    y_ndim: int | None = None

    def __post_init__(self) -> None:
        sizes, functions = network(self.layer_sizes, self.activation, self.output)
        object.__setattr__(self, "activation", names_of(functions)[0])
        if self.output == "identity" and self.classes is not None:
            raise ValueError("a model with output='identity' is a regressor: it has no classes")
        if isinstance(self.y_ndim, bool) or self.y_ndim not in (None, 1, 2):
            raise ValueError(f"y_ndim must be None, 1 or 2, got {self.y_ndim!r}")
        if self.y_ndim == 1 and self.output == "identity" and sizes[-1] != 1:
            raise ValueError(f"y_ndim 1 needs one output unit, but layer_sizes are {sizes}")

    @property
    def network(self) -> dict[str, Any]:
        """``activation`` and ``output`` as keyword arguments of fastbp's functions."""
        return {"activation": self.activation, "output": self.output}

    def scaled(self, X: Any) -> Any:
        """X as the network sees it: (X − x_mean) / x_scale for a model trained with
        ``scale=True``, else X itself."""
        return apply_scaling(X, self.x_mean, self.x_scale)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, one column per entry of ``classes`` ((m, 2) for two classes).

        For float targets (``classes`` None): the (m, K) output activations h_Θ(x). X is
        standardized as in training first (``scaled``). A regressor (``output="identity"``) has
        no probabilities: TypeError (its ``predict`` returns the values).
        """
        if self.output == "identity":
            raise TypeError(
                "predict_proba is for classifiers, but this model has output='identity' "
                "(a regressor): use predict for its values"
            )
        proba = predict_proba(self.theta, self.scaled(X), self.layer_sizes, **self.network)
        if self.classes is not None and proba.shape[1] == 1:
            return np.hstack([1 - proba, proba])
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The predicted original label of every row of X.

        For float targets (``classes`` None): with sigmoid outputs an (m, K) int64 0/1 matrix,
        1 where h_Θ(x) ≥ 0.5; with softmax the most probable output unit, 0 … K−1. A regressor
        (``output="identity"``) returns the predicted values, shaped like the training y: (m,)
        for a 1-D y, else (m, K).
        """
        values = predict_proba(self.theta, self.scaled(X), self.layer_sizes, **self.network)
        if self.output == "identity":
            return values[:, 0] if self.y_ndim == 1 else values
        if self.classes is None and self.output == "sigmoid":
            return (values >= 0.5).astype(np.int64)
        units = _units(values)
        return units if self.classes is None else self.classes[units]

    def __repr__(self) -> str:
        J = self.history[-1] if self.history.size else float(self.result.fun)
        return (
            f"FitResult(layer_sizes={self.layer_sizes}, activation={self.activation}, "
            f"output={self.output!r}, lam={self.lam:g}, iterations={len(self.history)}, "
            f"J={J:.6g}, time={self.time:.3g} s, scaled={self.x_mean is not None}, "
            f"interrupted={self.interrupted})"
        )
