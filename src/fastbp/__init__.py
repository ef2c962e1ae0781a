"""fastbp: exact cost and gradient of fully connected sigmoid networks.

The textbook backpropagation loop, one example at a time, compiled with Numba over a flat weight
vector; a drop-in objective for ``scipy.optimize.minimize(..., jac=True)``. The math contract is
docs/design.md: ``J`` is the regularized cross-entropy, the gradient is exact.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ._gradcheck import GradientCheck, check_gradient, numerical_gradient
from ._io import load, save
from ._layout import n_params, pack, unpack
from ._model import FitResult, predict, predict_proba
from ._objective import Objective, cost, cost_and_grad, hessp
from ._partial import combine, partial_sums
from ._threading import threading_info, threads
from ._workflow import fit, init_weights, sigmoid, sigmoid_gradient

try:
    __version__ = version("fastbp")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "FitResult",
    "GradientCheck",
    "Objective",
    "__version__",
    "check_gradient",
    "combine",
    "cost",
    "cost_and_grad",
    "fit",
    "hessp",
    "init_weights",
    "load",
    "n_params",
    "numerical_gradient",
    "pack",
    "partial_sums",
    "predict",
    "predict_proba",
    "save",
    "sigmoid",
    "sigmoid_gradient",
    "threading_info",
    "threads",
    "unpack",
]


def __getattr__(name: str) -> Any:
    """``fastbp.dask`` and ``fastbp.sklearn`` are imported on first use: ``import fastbp`` never
    needs dask or scikit-learn."""
    if name in ("dask", "sklearn"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
