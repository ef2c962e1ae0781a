"""What the ``fastbp`` commands read and work out from files: examples and models, the network
options, a model's outputs on data, and their accuracy (or a regressor's RMSE).

A problem with the arguments or files raises :class:`UserError` (one line, exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._io import load
from ._model import predict, predict_proba
from ._scaling import apply_scaling

__all__ = [
    "UserError",
    "accuracy",
    "activation_names",
    "check_inputs",
    "labels_for",
    "load_examples",
    "load_model",
    "network_of",
    "original_labels",
    "outputs",
    "quality",
]


class UserError(Exception):
    """A problem with the command's arguments, files or environment: reported in one line."""


def load_examples(
    path: str,
    label: int | str,
    classes: Any = None,
    sample_weight: int | str | None = None,
    regression: bool = False,
) -> dict[str, Any]:
    """DATA's X and y (and a .csv's sample weights): see :func:`fastbp.load`."""
    data = load(
        path, label=label, classes=classes, sample_weight=sample_weight, regression=regression
    )
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        raise UserError(f"{path}: has no {' and no '.join(missing)} (training examples)")
    return data


def activation_names(names: list[str] | None, hidden: tuple[int, ...]) -> str | list[str]:
    """--activation for ``hidden`` layers: one name for all (sigmoid when not given), or one
    per hidden layer."""
    if names is None:
        return "sigmoid"
    if len(names) == 1:
        return names[0]
    if len(names) != len(hidden):
        layers = "1 hidden layer" if len(hidden) == 1 else f"{len(hidden)} hidden layers"
        raise UserError(
            f"--activation has {len(names)} names, but the network has {layers} (--hidden): "
            "give one name for all, or one per hidden layer"
        )
    return names


def network_of(model: dict[str, Any]) -> dict[str, Any]:
    """A loaded model's ``activation`` and ``output`` as keyword arguments."""
    return {
        "activation": model.get("activation", "sigmoid"),
        "output": model.get("output", "sigmoid"),
    }


def original_labels(data: dict[str, Any]) -> np.ndarray:
    """The labels as the file writes them (classes[y]), or the float targets."""
    return data["classes"][data["y"]] if "classes" in data else data["y"]


def outputs(model: dict[str, Any], X: np.ndarray, labels: bool) -> np.ndarray:
    """A loaded model's output for every row of X, standardized as the model was trained: the
    output-unit index (``labels``, and always for softmax: 0 … K−1, or 0/1 for one unit), the
    (m, K) 0/1 matrix of sigmoid float targets (1 where h_Θ(x) ≥ 0.5), or a regressor's values
    ((m,) for one output)."""
    theta, sizes, network = model["theta"], model["layer_sizes"], network_of(model)
    X = apply_scaling(X, model.get("x_mean"), model.get("x_scale"))
    if network["output"] == "identity":
        values = predict_proba(theta, X, sizes, **network)
        return values[:, 0] if values.shape[1] == 1 else values
    if labels or network["output"] == "softmax":
        return predict(theta, X, sizes, **network)
    return (predict_proba(theta, X, sizes, **network) >= 0.5).astype(np.int64)


def accuracy(predicted: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Fraction of examples predicted right (for float targets: every output right; a softmax
    unit index against the arg-max of y's row), weighted by ``weights`` when given."""
    if predicted.ndim == 2:
        right = np.all(predicted == (y >= 0.5), axis=1)
    elif y.ndim == 2:
        right = predicted == np.argmax(y, axis=1)
    else:
        right = predicted == y
    return float(np.average(right, weights=weights))


def quality(
    predicted: np.ndarray, y: np.ndarray, regression: bool, weights: np.ndarray | None = None
) -> tuple[str, str]:
    """("accuracy", "95.00%"), or for a regressor ("RMSE", …): the root of the mean squared
    error per example (averaged over its outputs), weighted by ``weights`` when given."""
    if not regression:
        return "accuracy", f"{accuracy(predicted, y, weights):.2%}"
    squared = np.square(predicted - y).reshape(len(y), -1).mean(axis=1)
    return "RMSE", f"{np.sqrt(np.average(squared, weights=weights)):.6g}"


def check_inputs(model: dict[str, Any], weights: str, X: np.ndarray, data: str) -> None:
    """Fail naming both files when the data's features do not fit the weights' inputs."""
    sizes = model["layer_sizes"]
    if X.shape[1] != sizes[0]:
        hint = ""
        if X.shape[1] == sizes[0] + 1 and Path(data).suffix.lower() == ".csv":
            hint = "; if one of them holds sample weights, name it with --sample-weight COLUMN"
        raise UserError(
            f"{weights}: the weights take {sizes[0]} inputs (layers {sizes}), but {data} has "
            f"{X.shape[1]} feature columns{hint}"
        )


def load_model(path: str) -> dict[str, Any]:
    model = load(path)
    if "theta" not in model:
        raise UserError(f"{path}: has no weights (Theta1, Theta2, … or a saved model)")
    return model


def labels_for(data: dict[str, Any], weights: dict[str, Any], path: str) -> np.ndarray:
    """DATA's targets as output-unit indices of the weights (through both files' classes)."""
    if data["y"].ndim == 2 or "classes" not in weights or weights is data:
        return data["y"]
    model_classes = weights["classes"]
    labels = original_labels(data)
    index = {label: k for k, label in enumerate(model_classes.tolist())}
    unknown = [label for label in np.unique(labels).tolist() if label not in index]
    if unknown:
        raise UserError(
            f"the data has label {unknown[0]!r}, which the classes of {path} "
            f"{model_classes.tolist()} lack"
        )
    return np.array([index[label] for label in labels.tolist()], dtype=np.int64)
