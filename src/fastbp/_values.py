"""The checks of single values and per-row values a user passes in: dtypes, λ, θ (and
directions like it), labels, targets and sample weights; each written once, here.

A bad value raises ``TypeError`` or ``ValueError`` naming the argument and what was expected;
nothing the user passed is ever written to. Arrays of rows are scanned in chunks of ``rows``
rows (:func:`value_range`), never copied whole. ``_inputs`` builds the examples from them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._arrays import from_table
from ._layout import IDENTITY, SOFTMAX, check_theta_length, names_of

__all__ = [
    "COMPUTE_DTYPES",
    "check_lam",
    "check_probability_rows",
    "check_real",
    "check_sample_weight",
    "check_targets",
    "compute_dtype",
    "default_compute_dtype",
    "encode_labels",
    "float_dtype",
    "positive_number",
    "prepare_theta",
    "value_range",
]

COMPUTE_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


# ----------------------------------------------------------------------------- single values


def check_real(a: Any, name: str) -> None:
    if a.dtype.kind not in "biuf":
        hint = " (take the real part first)" if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}{hint}")


def compute_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in COMPUTE_DTYPES:
        raise TypeError(f"{name} must be float64 or float32, got {dtype}")
    return dtype


def float_dtype(a: Any) -> np.dtype:
    """a's dtype when it is float32 or float64, else float64 (other dtypes, lists, scalars):
    the default compute dtype of θ or X, and the dtype of the gradient returned for θ."""
    dtype = getattr(a, "dtype", None)
    return dtype if dtype is not None and dtype in COMPUTE_DTYPES else COMPUTE_DTYPES[0]


def default_compute_dtype(X: Any, dtype: Any) -> np.dtype:
    """``dtype`` if given, else X's dtype when it is float32 or float64, else float64."""
    return compute_dtype(float_dtype(X) if dtype is None else dtype)


def check_lam(lam: float) -> float:
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise TypeError(f"lam must be a real number, got {lam!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    return value


def positive_number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return number


def prepare_theta(
    theta: Any, layer_sizes: tuple[int, ...], dtype: np.dtype | None, name: str = "theta"
) -> np.ndarray:
    """θ as a 1-D contiguous array of ``dtype`` (None: float32 stays float32, else float64);
    ``name`` names it in errors (``"v"`` for a direction laid out like θ)."""
    theta = np.asarray(theta)
    check_real(theta, name)
    if theta.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {theta.shape}")
    check_theta_length(theta.shape[0], layer_sizes, name)
    theta = np.ascontiguousarray(theta, dtype=float_dtype(theta) if dtype is None else dtype)
    if not np.isfinite(theta).all():
        bad = int(np.argmin(np.isfinite(theta)))
        raise ValueError(f"{name} must be finite, but {name}[{bad}] is {theta[bad]}")
    return theta


def encode_labels(y: Any, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Class labels (integers, strings, bools, integral floats) as indices 0 … K−1 of ``classes``.

    ``classes = np.unique(y)``; returns ``(indices, classes)`` with ``classes[indices] == y``.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels, got shape {y.shape}")
    if y.shape[0] == 0:
        raise ValueError(f"{name} has no entries")
    if y.dtype.kind == "O":
        if not all(isinstance(v, str) for v in y):
            raise TypeError(f"{name} of dtype object must hold strings only")
        y = y.astype(str)
    elif y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} must be finite, got {y[~np.isfinite(y)][0]}")
        if not np.array_equal(y, np.round(y)):
            raise ValueError(
                f"{name} holds non-integer numbers such as {y[y != np.round(y)][0]}: class labels "
                "must be integers or strings (pass float targets as an (m, K) array)"
            )
    elif y.dtype.kind not in "biuUS":
        raise TypeError(f"{name} must hold class labels (integers or strings), got dtype {y.dtype}")
    classes, indices = np.unique(y, return_inverse=True)
    return indices.astype(np.int64), classes


def value_range(a: np.ndarray, name: str, rows: int, first_row: int = 0) -> tuple[Any, Any]:
    """(min, max) of a real array, scanned in chunks of ``rows`` rows (no full-size temporary).

    Raises ValueError naming the first non-finite entry; its row index counts from
    ``first_row`` (the position of ``a`` in a larger data set).
    """
    lo = hi = None
    for start in range(0, a.shape[0], rows):
        chunk = a[start : start + rows]
        chunk_lo, chunk_hi = chunk.min(), chunk.max()
        if not (np.isfinite(chunk_lo) and np.isfinite(chunk_hi)):  # NaN or ±inf propagate
            bad = np.argwhere(~np.isfinite(chunk))[0]
            value = chunk[tuple(bad)]
            bad[0] += start + first_row
            raise ValueError(
                f"{name} must be finite, but {name}[{', '.join(map(str, bad))}] is {value}"
            )
        lo = chunk_lo if lo is None else min(lo, chunk_lo)
        hi = chunk_hi if hi is None else max(hi, chunk_hi)
    return lo, hi


def check_targets(
    y: Any, m: int, K: int, output: int, rows: int, first_row: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(labels, None) or (None, float targets (m, K)) for the output ``output`` (a code), checked:

    sigmoid: labels 0 … K−1 (0 or 1 when K = 1) or targets in [0, 1]; softmax: labels 0 … K−1
    or targets in [0, 1] whose rows sum to 1; identity: finite float targets, no labels.
    """
    output_name = names_of((output,))[1]
    y = np.asarray(from_table(y, "y"))
    check_real(y, "y")
    if y.shape[:1] != (m,):
        raise ValueError(
            f"y must have one entry per example: expected length {m}, got shape {y.shape}"
        )
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "iu" and K > 1:
        y = y[:, 0]  # an integer column of labels, as scipy.io.loadmat returns them
    if y.dtype.kind in "biu" and output == IDENTITY:
        raise TypeError(
            f"y holds integers (dtype {y.dtype}), but output='identity' fits float targets, "
            "not class labels: pass y.astype(float) to fit these numbers, or a classification "
            "output ('sigmoid', 'softmax') for labels"
        )
    if y.ndim == 1 and (y.dtype.kind in "biu"):
        lo, hi = value_range(y, "y", rows, first_row)
        lo, hi = int(lo), int(hi)
        top = 1 if K == 1 else K - 1
        if lo < 0 or hi > top:
            what = "0 or 1 (one output unit)" if K == 1 else f"0 … {K - 1} (K = {K} outputs)"
            raise ValueError(f"labels y must be in {what}, got values from {lo} to {hi}")
        return y, None
    if y.ndim == 1:
        if K != 1:
            raise TypeError(
                f"y of shape ({m},) must hold integer labels 0 … {K - 1}, got dtype {y.dtype}; "
                f"convert with y.astype(int), or pass float targets of shape ({m}, {K})"
            )
        y = y.reshape(m, 1)
    if y.ndim != 2 or y.shape[1] != K:
        raise ValueError(
            f"float targets y must have shape (m, K) = ({m}, {K}), got shape {y.shape}"
        )
    lo, hi = value_range(y, "y", rows, first_row)
    if output != IDENTITY and (lo < 0 or hi > 1):
        raise ValueError(
            f"float targets y must lie in [0, 1] for output={output_name!r}, got values from "
            f"{lo} to {hi}"
        )
    if output == SOFTMAX:
        check_probability_rows(y, rows, first_row)
    return None, y


def check_probability_rows(y: np.ndarray, rows: int, first_row: int) -> None:
    """Each row of softmax targets sums to 1, to √eps of y's float dtype (float64 otherwise)."""
    tolerance = np.sqrt(np.finfo(float_dtype(y)).eps)
    for start in range(0, y.shape[0], rows):
        sums = np.asarray(np.sum(y[start : start + rows], axis=1, dtype=np.float64))
        bad = np.flatnonzero(np.abs(sums - 1.0) > tolerance)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"float targets y for output='softmax' must be probability rows summing to 1, "
                f"but row {start + i + first_row} sums to {float(sums[i])!r}; pass labels 0 … K−1 "
                "instead of a one-hot matrix, or normalize the rows"
            )


def check_sample_weight(
    sample_weight: Any, m: int, first_row: int = 0, all_rows: bool = True
) -> np.ndarray:
    """Sample weights: a 1-D real array of length m, finite, ≥ 0 (not copied); not all zero
    when they are ``all_rows``' weights (else the caller checks their total). ``first_row``: as
    :func:`prepare_examples`'."""
    w = np.asarray(from_table(sample_weight, "sample_weight"))
    check_real(w, "sample_weight")
    if w.shape != (m,):
        raise ValueError(
            f"sample_weight must have one weight per example: expected shape ({m},), got "
            f"shape {w.shape}"
        )
    lo, hi = value_range(w, "sample_weight", max(m, 1), first_row)
    if lo < 0:
        bad = int(np.argmin(w))
        raise ValueError(
            f"sample_weight must be >= 0, but sample_weight[{bad + first_row}] is {w[bad]}"
        )
    if hi == 0 and all_rows:
        raise ValueError("sample_weight is all zeros: at least one example must have weight > 0")
    return w
