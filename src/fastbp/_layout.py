"""The flat parameter layout (docs/design.md): θ = Θ^(1), …, Θ^(L−1), each row-major.

Θ^(l) has shape ``(s_{l+1}, s_l + 1)``; column 0 multiplies the bias unit. This module is the
only place that knows how the flat vector maps to the per-layer matrices: the public
``pack``/``unpack`` pair, and :func:`layer_table`, the offsets the kernels read.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "HIDDEN",
    "OUTPUTS",
    "check_output",
    "functions_of",
    "layer_shapes",
    "layer_table",
    "n_params",
    "names_of",
    "network",
    "pack",
    "unpack",
    "validate_layer_sizes",
]

# Columns of a layer table (see layer_table); numba reads them as compile-time constants.
IN, OUT, THETA, ROWS, COLS, PADDED, TRANSPOSED, ACT, G = range(9)

# The codes of g, the function a layer applies to its z (the layer table's column G): integers
# the kernels branch on, so that every network runs the same compiled code.
SIGMOID, TANH, RELU, IDENTITY, SOFTMAX = range(5)
HIDDEN = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "identity": IDENTITY}
OUTPUTS = {"sigmoid": SIGMOID, "softmax": SOFTMAX, "identity": IDENTITY}


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


def functions_of(activation: Any, output: Any, layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """The codes of g for Θ^(1), …, Θ^(L−1): ``activation`` for every hidden layer, then ``output``.

    ``activation``: one name of :data:`HIDDEN` for all hidden layers, or a sequence with one per
    hidden layer (``len(layer_sizes) − 2`` names). ``output``: a name of :data:`OUTPUTS`;
    ``"softmax"`` needs at least 2 output units. ValueError/TypeError naming the argument.
    """
    sizes = validate_layer_sizes(layer_sizes)
    n_hidden = len(sizes) - 2
    if isinstance(activation, str):
        names = [activation] * n_hidden
    elif isinstance(activation, Sequence):
        names = list(activation)
        if len(names) != n_hidden:
            raise ValueError(
                f"activation has {len(names)} names, but layer_sizes {sizes} has {n_hidden} "
                f"hidden layers: give one name for all or one per hidden layer"
            )
    else:
        raise TypeError(
            f"activation must be a name such as 'relu' or a sequence of names, got {activation!r}"
        )
    codes = []
    for name in names:
        if not isinstance(name, str) or name not in HIDDEN:
            raise ValueError(f"activation must be one of {tuple(HIDDEN)}, got {name!r}")
        codes.append(HIDDEN[name])
    check_output(output)
    if output == "softmax" and sizes[-1] < 2:
        raise ValueError(
            f"output='softmax' needs at least 2 output units, but layer_sizes {sizes} has 1: "
            "use output='sigmoid' for one unit"
        )
    return (*codes, OUTPUTS[output])


def check_output(output: Any) -> str:
    """``output``, a name of :data:`OUTPUTS`, or ValueError naming the argument."""
    if not isinstance(output, str) or output not in OUTPUTS:
        raise ValueError(f"output must be one of {tuple(OUTPUTS)}, got {output!r}")
    return output


def network(
    layer_sizes: Sequence[int], activation: Any = "sigmoid", output: Any = "sigmoid"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(layer sizes, codes of g), validated: what every entry point starts with."""
    sizes = validate_layer_sizes(layer_sizes)
    return sizes, functions_of(activation, output, sizes)


def names_of(functions: Sequence[int]) -> tuple[tuple[str, ...], str]:
    """(hidden activation names, output name) of the codes :func:`functions_of` returns."""
    hidden = {code: name for name, code in HIDDEN.items()}
    outputs = {code: name for name, code in OUTPUTS.items()}
    return tuple(hidden[c] for c in functions[:-1]), outputs[functions[-1]]


def layer_table(
    layer_sizes: Sequence[int],
    rows_multiple: int,
    rows_min: int,
    cols_multiple: int,
    functions: Sequence[int] | None = None,
) -> np.ndarray:
    """The kernels' map of the network: an (L, 9) int64 array, row l for Θ^(l+1) (0-based).

    Columns (constants of this module), for l = 0 … L−2:

    - ``IN``, ``OUT``: s_l and s_{l+1}, the units below and above (bias not counted);
    - ``THETA``: where Θ^(l) starts in θ, Σ_{k<l} s_{k+1} (s_k + 1);
    - ``ROWS``, ``COLS``: the shape of Θ^(l) zero-padded for the tiled kernel's register blocks:
      rows a multiple of ``rows_multiple`` and at least ``rows_min``; columns (bias included) a
      multiple of ``cols_multiple``, with room for the bias and the padded rows of the layer
      below, which the δ product reads;
    - ``PADDED``: where the padded Θ^(l) starts in a buffer of all of them (a padded Δ alike);
    - ``TRANSPOSED``: where Θ^(l)ᵀ, padded (COLS, ROWS), starts after them (empty for l = 0);
    - ``ACT``: where [1; a^(l)] starts in a tile's activations (COLS units per layer);
    - ``G``: the code of g, a^(l+1) = g(z^(l+1)) (``functions``, from :func:`functions_of`; all
      sigmoid when None): a hidden activation, and for the last layer the output's.

    The last row holds the ends: ``IN`` = s_L, ``THETA`` = the length of θ, ``PADDED`` = the
    length of a padded Δ, ``TRANSPOSED`` = of the whole padded buffer, ``ACT`` = the activation
    rows of a tile; its other columns are 0. Read-only.
    """
    sizes = validate_layer_sizes(layer_sizes)
    n_layers = len(sizes) - 1
    table = np.zeros((n_layers + 1, 9), np.int64)
    table[:n_layers, G] = SIGMOID if functions is None else functions
    table[:, IN] = sizes
    table[:n_layers, OUT] = sizes[1:]
    for l in range(n_layers):
        below = table[l - 1, ROWS] if l > 0 else sizes[0]  # units below, padded ones included
        table[l, ROWS] = max(_round_up(sizes[l + 1], rows_multiple), rows_min)
        table[l, COLS] = _round_up(below + 1, cols_multiple)
    n_in = table[:n_layers, IN] + 1
    padded = table[:n_layers, ROWS] * table[:n_layers, COLS]
    table[1:, THETA] = np.cumsum(table[:n_layers, OUT] * n_in)
    table[1:, PADDED] = np.cumsum(padded)
    table[0, TRANSPOSED] = table[n_layers, PADDED]
    table[1:, TRANSPOSED] = table[n_layers, PADDED] + np.cumsum(np.r_[0, padded[1:]])
    table[1:, ACT] = np.cumsum(table[:n_layers, COLS])
    table.setflags(write=False)
    return table


def _round_up(n: int, k: int) -> int:
    return int(-(-n // k) * k)


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
    check_theta_length(theta.shape[0], layer_sizes)
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
    check_chain(mats, [f"thetas[{i}]" for i in range(len(mats))])
    dtype = np.result_type(*mats)
    return np.concatenate([t.ravel(order=layout) for t in mats]).astype(dtype, copy=False)


def check_theta_length(length: int, layer_sizes: Sequence[int], name: str = "theta") -> None:
    """θ's length (or that of ``name``, laid out like θ) against the parameter count that
    (validated) layer sizes imply."""
    expected = 0
    for s_in, s_out in itertools.pairwise(layer_sizes):
        expected += s_out * (s_in + 1)
    if length != expected:
        raise ValueError(
            f"{name} has length {length}, but layer_sizes {tuple(layer_sizes)} imply "
            f"{expected} parameters"
        )


def check_chain(mats: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """Weight matrices that chain: each 2-D with a bias column and at least one input column,
    and Θ^(l+1) with ``Θ^(l).shape[0] + 1`` columns (the bias first)."""
    for i, (name, t) in enumerate(zip(names, mats, strict=True)):
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {t.shape}")
        if t.shape[1] < 2:
            raise ValueError(
                f"{name} must have a bias column and at least one input column, got shape {t.shape}"
            )
        if i and t.shape[1] != mats[i - 1].shape[0] + 1:
            rows = mats[i - 1].shape[0]
            raise ValueError(
                f"{name} has shape {t.shape}, but {names[i - 1]} has {rows} rows, "
                f"so {name} needs {rows + 1} columns (bias first)"
            )


def layer_sizes_of(thetas: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The layer sizes ``(s_1, …, s_L)`` implied by a chain of weight matrices."""
    mats = [np.asarray(t) for t in thetas]
    return (mats[0].shape[1] - 1, *(t.shape[0] for t in mats))


def _check_order(order: str) -> Literal["C", "F"]:
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' (fastbp) or 'F' (Octave/MATLAB), got {order!r}")
    return "C" if order == "C" else "F"
