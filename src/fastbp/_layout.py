"""The flat parameter layout of DESIGN.md: θ = Θ^(1), …, Θ^(L−1), each row-major.

Θ^(l) has shape ``(s_{l+1}, s_l + 1)``; column 0 multiplies the bias unit. This module is the
only place that knows how the flat vector maps to the per-layer matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["layer_shapes", "n_params", "pack", "unpack", "validate_layer_sizes"]


def validate_layer_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """Return ``layer_sizes`` as a tuple of Python ints, or raise ``ValueError``/``TypeError``."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(
            f"layer_sizes must be a sequence of integers such as (400, 25, 10), got {layer_sizes!r}"
        )
    sizes = []
    for s in layer_sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"layer_sizes must hold integers, got {s!r} in {tuple(layer_sizes)!r}")
        sizes.append(int(s))
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least 2 entries (inputs and outputs), got {tuple(sizes)!r}"
        )
    if min(sizes) < 1:
        raise ValueError(f"every entry of layer_sizes must be >= 1, got {tuple(sizes)!r}")
    return tuple(sizes)


def layer_shapes(layer_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Shapes ``(s_{l+1}, s_l + 1)`` of Θ^(1), …, Θ^(L−1)."""
    sizes = validate_layer_sizes(layer_sizes)
    return [(sizes[i + 1], sizes[i] + 1) for i in range(len(sizes) - 1)]


def n_params(layer_sizes: Sequence[int]) -> int:
    """Length of θ: ``Σ_l s_{l+1} (s_l + 1)``."""
    return sum(r * c for r, c in layer_shapes(layer_sizes))


def unpack(theta: np.ndarray, layer_sizes: Sequence[int], order: str = "C") -> list[np.ndarray]:
    """Split the flat vector θ into the matrices Θ^(1), …, Θ^(L−1).

    ``order="C"`` (default) reads fastbp's layout: each Θ^(l) row-major, one after another. The
    results are views of ``theta`` when ``theta`` is contiguous.
    ``order="F"`` reads the Octave/MATLAB unrolling ``[Theta1(:); Theta2(:)]``, in which each
    matrix is stored column-major; the results are then views too (Fortran-ordered).
    """
    layout = _check_order(order)
    theta = np.asarray(theta)
    if theta.ndim != 1:
        raise ValueError(f"theta must be 1-D, got shape {theta.shape}")
    shapes = layer_shapes(layer_sizes)
    expected = sum(r * c for r, c in shapes)
    if theta.shape[0] != expected:
        raise ValueError(
            f"theta has length {theta.shape[0]}, but layer_sizes {tuple(layer_sizes)} "
            f"imply {expected} parameters"
        )
    out = []
    start = 0
    for r, c in shapes:
        out.append(theta[start : start + r * c].reshape((r, c), order=layout))
        start += r * c
    return out


def pack(thetas: Sequence[np.ndarray], order: str = "C") -> np.ndarray:
    """Concatenate Θ^(1), …, Θ^(L−1) into one flat, contiguous vector θ (a new array).

    ``order="C"`` writes fastbp's layout (each matrix row-major). ``order="F"`` writes the
    Octave/MATLAB unrolling ``[Theta1(:); Theta2(:)]`` (each matrix column-major). Consecutive
    matrices must chain: Θ^(l+1) has ``Θ^(l).shape[0] + 1`` columns.
    """
    layout = _check_order(order)
    mats = [np.asarray(t) for t in thetas]
    if not mats:
        raise ValueError("thetas must hold at least one weight matrix")
    for i, t in enumerate(mats):
        if t.ndim != 2:
            raise ValueError(f"thetas[{i}] must be 2-D, got shape {t.shape}")
        if t.shape[1] < 2:
            raise ValueError(
                f"thetas[{i}] must have a bias column and at least one input column, "
                f"got shape {t.shape}"
            )
        if i and t.shape[1] != mats[i - 1].shape[0] + 1:
            raise ValueError(
                f"thetas[{i}] has {t.shape[1]} columns, expected thetas[{i - 1}].shape[0] + 1 = "
                f"{mats[i - 1].shape[0] + 1}"
            )
    dtype = np.result_type(*mats)
    return np.concatenate([t.ravel(order=layout) for t in mats]).astype(dtype, copy=False)


def layer_sizes_of(thetas: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The layer sizes ``(s_1, …, s_L)`` implied by a chain of weight matrices."""
    mats = [np.asarray(t) for t in thetas]
    return (mats[0].shape[1] - 1, *(t.shape[0] for t in mats))


def _check_order(order: str) -> Literal["C", "F"]:
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' (fastbp) or 'F' (Octave/MATLAB), got {order!r}")
    return "C" if order == "C" else "F"
