"""Feature standardization, ``fit(..., scale=True)``: the columns' means and deviations, a
model's stored scaling checked, and X scaled as the model was trained.

    x_mean, x_scale = feature_scaling(X)      means and standard deviations, in float64
    apply_scaling(X, x_mean, x_scale)         (X − x_mean) / x_scale
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import dense, from_table, is_dask_array, is_sparse
from ._inputs import check_X
from ._values import check_real

__all__ = ["apply_scaling", "check_scaling", "feature_scaling"]

SCALING_CHUNK_BYTES = 8 * 2**20  # rows of X read at a time to find its columns' scaling


def feature_scaling(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) of every column of X, in float64; a constant column's
    deviation is 1 (it is only centred). Two passes over chunks of rows, so that a memory-mapped
    X needs no full-size temporary; a dask X is reduced on its workers."""
    if is_sparse(X):
        raise TypeError(
            "scale=True centres the features, which would make a sparse X dense: scale it "
            "without centring (e.g. scikit-learn's MaxAbsScaler) or pass X.toarray()"
        )
    if is_dask_array(X):  # reduced on the workers, then computed by np.asarray
        mean = np.asarray(X.mean(axis=0), dtype=np.float64)
        deviation = np.asarray(X.std(axis=0), dtype=np.float64)
    else:
        X = np.asarray(from_table(X, "X"))
        check_real(X, "X")
        check_X(X.shape, None)
        rows = max(1, SCALING_CHUNK_BYTES // (8 * max(1, X.shape[1])))
        chunks = [X[start : start + rows] for start in range(0, X.shape[0], rows)]
        mean = sum(chunk.sum(axis=0, dtype=np.float64) for chunk in chunks) / X.shape[0]
        squares = sum(np.square(chunk - mean).sum(axis=0) for chunk in chunks)
        deviation = np.sqrt(squares / X.shape[0])
    if not (np.isfinite(mean).all() and np.isfinite(deviation).all()):
        raise ValueError("X must be finite to be scaled")
    return mean, np.where(deviation > 0, deviation, 1.0)


def check_scaling(
    x_mean: Any, x_scale: Any, n_inputs: int | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A model's feature standardization checked: both or neither; 1-D float64 of the network's
    ``n_inputs`` (when known); finite means, finite positive scales."""
    if x_mean is None and x_scale is None:
        return None
    if x_mean is None or x_scale is None:
        raise ValueError("a model's scaling needs both x_mean and x_scale")
    arrays = []
    for name, values in (("x_mean", x_mean), ("x_scale", x_scale)):
        values = np.asarray(values)
        check_real(values, name)
        if values.ndim != 1 or (n_inputs is not None and values.shape[0] != n_inputs):
            expected = "" if n_inputs is None else f" of length {n_inputs} (the network's inputs)"
            raise ValueError(f"{name} must be a 1-D array{expected}, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite")
        arrays.append(values.astype(np.float64))
    if arrays[0].shape != arrays[1].shape:
        raise ValueError("x_mean and x_scale must have the same length")
    if not (arrays[1] > 0).all():
        raise ValueError("x_scale must be positive")
    return arrays[0], arrays[1]


def apply_scaling(X: Any, x_mean: np.ndarray | None, x_scale: np.ndarray | None) -> Any:
    """(X − x_mean) / x_scale, in X's dtype when it is float32 (else float64); X itself when the
    model has no scaling. A dask X stays lazy; a sparse X is made dense (centring does that)."""
    if x_mean is None or x_scale is None:
        return X
    if is_dask_array(X):
        return (X - x_mean) / x_scale
    X = from_table(X, "X")
    X = dense(X)
    check_real(X, "X")
    check_X(X.shape, None)
    if X.shape[1] != x_mean.shape[0]:
        raise ValueError(
            f"X has {X.shape[1]} columns, but the model was trained on {x_mean.shape[0]} features"
        )
    dtype = X.dtype if X.dtype == np.float32 else np.float64
    return ((X - x_mean) / x_scale).astype(dtype, copy=False)
