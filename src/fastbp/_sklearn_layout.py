"""θ in scikit-learn's layout: the ``coefs_`` and ``intercepts_`` of its MLP estimators.

scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` keep one pair of arrays per layer, for
l = 1 … L−1 (docs/design.md's Θ^(l), shape (s_{l+1}, s_l + 1), bias column 0):

    coefs_[l]      = Θ^(l)[:, 1:]ᵀ    shape (s_l, s_{l+1})    (inputs × units)
    intercepts_[l] = Θ^(l)[:, 0]      shape (s_{l+1},)

This module converts between the two; it needs no scikit-learn (the benchmark and the tests
use it where scikit-learn may be missing). ``fastbp.sklearn`` exports both functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._layout import pack, unpack

__all__ = ["from_sklearn_weights", "to_sklearn_weights"]


def to_sklearn_weights(
    theta: Any, layer_sizes: Sequence[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(coefs, intercepts) of θ: coefs[l] = Θ^(l)[:, 1:]ᵀ, intercepts[l] = Θ^(l)[:, 0].

    Views of ``theta`` when it is contiguous (as :func:`fastbp.unpack`'s matrices are): writing
    into them writes into θ. ``np.array(c)`` gives the C-ordered copies scikit-learn makes.
    """
    Thetas = unpack(theta, layer_sizes)
    return [Theta[:, 1:].T for Theta in Thetas], [Theta[:, 0] for Theta in Thetas]


def from_sklearn_weights(coefs: Sequence[Any], intercepts: Sequence[Any]) -> np.ndarray:
    """θ (a new flat array, fastbp's layout) from scikit-learn's ``coefs_`` and ``intercepts_``:
    Θ^(l) = [intercepts[l], coefs[l]ᵀ]. The inverse of :func:`to_sklearn_weights`.

    ValueError, naming the entry, when the lists differ in length, a coefs entry is not 2-D, an
    intercepts entry does not have one value per column of its coefs, or consecutive layers do
    not chain (coefs[l + 1] has as many rows as coefs[l] has columns).
    """
    coefs = [np.asarray(c) for c in coefs]
    intercepts = [np.asarray(b) for b in intercepts]
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(
            f"coefs and intercepts must hold one array per layer, got {len(coefs)} coefs and "
            f"{len(intercepts)} intercepts"
        )
    for l, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        if W.ndim != 2:
            raise ValueError(f"coefs[{l}] must be 2-D (inputs × units), got shape {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(
                f"intercepts[{l}] must have shape ({W.shape[1]},), one per column of "
                f"coefs[{l}] {W.shape}, got shape {b.shape}"
            )
        if l and W.shape[0] != coefs[l - 1].shape[1]:
            raise ValueError(
                f"coefs[{l}] has {W.shape[0]} rows, but coefs[{l - 1}] {coefs[l - 1].shape} "
                f"has {coefs[l - 1].shape[1]} units: the layers do not chain"
            )
    return pack([np.column_stack([b, W.T]) for W, b in zip(coefs, intercepts, strict=True)])
