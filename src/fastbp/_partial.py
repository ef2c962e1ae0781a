"""Partial sums over slices of the examples, and their combination (docs/design.md, "Partial
sums"): the objective computed in pieces, anywhere, then added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._inputs import prepare_examples
from ._layout import network, validate_layer_sizes
from ._plan import normalized, sums
from ._values import check_lam, prepare_theta

__all__ = ["combine", "partial_sums"]


def partial_sums(
    theta: Any,
    X: Any,
    y: Any,
    layer_sizes: Sequence[int],
    *,
    activation: str | Sequence[str] = "sigmoid",
    output: str = "sigmoid",
    sample_weight: Any = None,
) -> tuple[float, np.ndarray, float]:
    """Unnormalized sums over a slice of the examples, for :func:`combine`.

    Returns ``(cost_sum, Delta, count)``: cost_sum = Σ_i s_i cost_i over the rows of X (the
    output's cost, unnormalized), Delta = Σ_i Δ_i, the backpropagation sums laid out like θ
    (float64 whatever θ's dtype, so that partial sums add without further rounding), and count
    = the number of rows (an int), or with ``sample_weight`` the slice's S = Σ_i s_i (a float).
    No regularization and no division: results for any split of the examples into slices,
    computed anywhere, add up to those of the whole set.

    Arguments as :func:`cost_and_grad`; X, y and the weights may be memory-mapped (streamed).
    """
    sizes, functions = network(layer_sizes, activation, output)
    theta = prepare_theta(theta, sizes, None)
    examples = prepare_examples(X, y, sizes, functions=functions, sample_weight=sample_weight)
    cost_sum, Delta = sums(theta, examples, want_grad=True)
    Delta = Delta.astype(np.float64, copy=False)  # float32 → float64: exact
    return cost_sum, Delta, examples.count(theta.dtype)


def combine(
    partials: Iterable[tuple[float, Any, int | float]],
    theta: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
) -> tuple[float, np.ndarray]:
    """``(J, grad)`` from the :func:`partial_sums` of slices that together hold every example.

    The partials are added in the order given (Delta in float64), then normalized by the total
    count m (S = Σ s_i with sample weights) and regularized once: J = Σ cost_sum / m + (λ/2m)
    Σ non-bias Θ², grad = Σ Delta / m + (λ/m) Θ on non-bias weights, returned in θ's dtype.
    ``combine([partial_sums(θ, X, y, s)], θ, s, lam)`` is bitwise ``cost_and_grad(θ, X, y, s,
    lam)`` (with the same keyword arguments to both); for several slices the result differs
    from it only by the rounding of the added partials. The activations and the output are in
    the partials already: ``combine`` needs only the layer sizes.
    """
    sizes = validate_layer_sizes(layer_sizes)
    lam = check_lam(lam)
    theta = prepare_theta(theta, sizes, None)
    P = theta.shape[0]
    cost_sum = 0.0
    Delta_sum = np.zeros(P, np.float64)
    m: float = 0
    i = -1
    for i, partial in enumerate(partials):
        try:
            part_cost, part_Delta, count = partial
            part_cost = float(part_cost)
        except (TypeError, ValueError):
            raise TypeError(
                f"partials[{i}] must be a (cost_sum, Delta, count) triple from partial_sums, "
                f"got {type(partial).__name__}"
            ) from None
        part_Delta = np.asarray(part_Delta)
        if part_Delta.shape != (P,) or part_Delta.dtype.kind != "f":
            raise ValueError(
                f"partials[{i}]: Delta must be a float vector of length {P} (like theta), "
                f"got shape {part_Delta.shape} and dtype {part_Delta.dtype}"
            )
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, float, np.number)):
            raise TypeError(
                f"partials[{i}]: count must be a number of rows or a sum of sample weights, "
                f"got {count!r}"
            )
        least = 1 if isinstance(count, (int, np.integer)) else 0  # rows, or a sum of weights
        if not (math.isfinite(count) and count >= least and math.isfinite(part_cost)):
            raise ValueError(
                f"partials[{i}]: count must be >= {least} and finite, and cost_sum finite, got "
                f"{count} and {part_cost}"
            )
        cost_sum += part_cost
        Delta_sum += part_Delta
        m += count
    if i < 0:
        raise ValueError("partials is empty: at least one (cost_sum, Delta, count) is needed")
    if m <= 0:
        raise ValueError("the partials' counts add up to 0: no example has a positive weight")
    return normalized(theta, cost_sum, Delta_sum, m, lam, sizes)
