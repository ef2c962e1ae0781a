"""The training examples a user passes in, validated and converted: X, y and the weights.

The checks of single values and of targets and weights are ``_values``'; this module builds
the examples from them. A bad argument raises ``TypeError`` or ``ValueError`` naming the
argument and what was expected; nothing the user passed is ever written to.

The training examples become an :class:`Examples`: validated as the caller stored them (any
real dtype and layout, possibly memory-mapped), and converted for the kernels by
:meth:`Examples.chunks`, at most ``CHUNK_BYTES`` of converted rows at a time, so that memory
never grows with m and X may be a file larger than memory. Chunk boundaries depend only on m,
the layer sizes and the compute dtype: the same data stored alike gives bitwise the same result
in memory and in a file. Data already in the kernels' layout (C-contiguous in the compute dtype,
int64 labels) is one chunk, read as it is: no copy (docs/decisions.md#chunks).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._arrays import dense, from_table, is_memory_mapped, is_sparse
from ._layout import SIGMOID
from ._values import check_real, check_sample_weight, check_targets, value_range

__all__ = [
    "Chunk",
    "Examples",
    "check_X",
    "chunk_rows",
    "prepare_examples",
]

CHUNK_BYTES = 8 * 2**20  # converted X and targets of one chunk of rows stay under this
CHUNK_ALIGN = 256  # rows per chunk are a multiple of this, so chunks hold whole kernel tiles


# ----------------------------------------------------------------------------- the examples


def check_X(shape: tuple[int, ...], layer_sizes: Sequence[int] | None) -> None:
    """X's shape: 2-D, at least one row, and ``layer_sizes[0]`` columns when given."""
    if len(shape) != 2:
        raise ValueError(f"X must be 2-D (examples × features), got shape {tuple(shape)}")
    if layer_sizes is not None and shape[1] != layer_sizes[0]:
        raise ValueError(
            f"X has {shape[1]} columns, but layer_sizes[0] = {layer_sizes[0]} input features"
        )
    if shape[0] == 0:
        raise ValueError("X has no rows: at least one example is needed")


def chunk_rows(layer_sizes: Sequence[int], dtype: Any) -> int:
    """Rows per chunk: the converted X and targets of a chunk take at most ``CHUNK_BYTES``.

    A multiple of ``CHUNK_ALIGN`` (at least one), depending only on s_1, K and the dtype; for
    (128, 25, 10) in float64 it is 7424 rows (7.8 MiB).
    """
    row_bytes = (layer_sizes[0] + layer_sizes[-1]) * np.dtype(dtype).itemsize
    return max(1, CHUNK_BYTES // row_bytes // CHUNK_ALIGN) * CHUNK_ALIGN


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


NO_LABELS = _read_only(np.zeros(0, np.int64))


@dataclass(frozen=True)
class Chunk:
    """Rows of the examples converted for the kernels; never written to."""

    X: np.ndarray  # (m, s_1), C-contiguous, compute dtype
    labels: np.ndarray  # (m,) int64, or (0,) when Y holds the targets
    Y: np.ndarray  # (m, K) compute dtype, or (0, K) when labels hold the targets
    weights: np.ndarray  # (m,) sample weights in the compute dtype, or (0,): all 1
    layer_sizes: tuple[int, ...]
    functions: tuple[int, ...]  # the codes of g, Θ^(1) … Θ^(L−1) (``_layout.functions_of``)

    @property
    def m(self) -> int:
        return self.X.shape[0]

    @property
    def count(self) -> int | float:
        """What J and D over this chunk are normalized by: see :meth:`Examples.count`."""
        return weight_total(self.weights) if self.weights.size else self.m


def weight_total(weights: np.ndarray) -> float:
    """S = Σ_i s_i, summed in float64 (the same bits wherever S is formed)."""
    return float(np.sum(weights, dtype=np.float64))


@dataclass(frozen=True)
class Examples:
    """Validated training examples as the caller stored them, and their chunks for the kernels.

    Made by :func:`prepare_examples`; never written to.
    """

    X: Any  # (m, s_1): an ndarray (possibly memory-mapped) or a scipy.sparse CSR array
    labels: np.ndarray | None  # (m,) integer or bool labels, or None
    targets: np.ndarray | None  # (m, K) float targets, or None (no targets: forward pass only)
    weights: np.ndarray | None  # (m,) sample weights, or None (all 1)
    layer_sizes: tuple[int, ...]
    functions: tuple[int, ...]  # the codes of g, Θ^(1) … Θ^(L−1) (``_layout.functions_of``)
    _whole: dict[np.dtype, Chunk] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def m(self) -> int:
        return self.X.shape[0]

    def count(self, dtype: np.dtype) -> int | float:
        """What J and D are normalized by (docs/design.md): m, an int, without sample weights;
        else S = Σ_i s_i of the weights the kernels read (in ``dtype``), summed in float64."""
        if self.weights is None:
            return self.m
        return weight_total(np.asarray(self.weights, dtype=dtype))

    def in_kernel_layout(self, dtype: np.dtype) -> bool:
        """Whether the kernels read X and y as they are: C-contiguous X and float targets in
        ``dtype``, C-contiguous int64 labels."""

        X, labels, targets, weights = self.X, self.labels, self.targets, self.weights
        return (
            (X.dtype == dtype and not is_sparse(X) and X.flags.c_contiguous)
            and (labels is None or (labels.dtype == np.int64 and labels.flags.c_contiguous))
            and (targets is None or (targets.dtype == dtype and targets.flags.c_contiguous))
            and (weights is None or (weights.dtype == dtype and weights.flags.c_contiguous))
        )

    def chunks(self, dtype: np.dtype) -> Iterator[tuple[int, Chunk]]:
        """``(first row, chunk)`` over the examples, each chunk converted on its own: all rows
        at once when they are in the kernels' layout (views), else :func:`chunk_rows` rows."""
        m = self.X.shape[0]
        rows = m if self.in_kernel_layout(dtype) else chunk_rows(self.layer_sizes, dtype)
        for start in range(0, m, rows):
            yield start, self._chunk(start, start + rows, dtype)

    def whole(self, dtype: np.dtype) -> Chunk | None:
        """All the examples as one chunk when the kernels read them as they are, else None.
        Kept: an Objective asks on every call."""
        chunk = self._whole.get(dtype)
        if chunk is None and self.in_kernel_layout(dtype):
            chunk = self._whole[dtype] = self._chunk(0, self.X.shape[0], dtype)
        return chunk

    def _chunk(self, start: int, stop: int, dtype: np.dtype) -> Chunk:
        """Rows start … stop − 1 converted for the kernels (views where no conversion is needed)."""
        X = np.ascontiguousarray(dense(self.X[start:stop]), dtype=dtype)
        labels = NO_LABELS
        if self.labels is not None:
            labels = np.ascontiguousarray(self.labels[start:stop], dtype=np.int64)
        if self.targets is None:
            Y = np.zeros((0, self.layer_sizes[-1]), dtype)
        else:
            Y = np.ascontiguousarray(self.targets[start:stop], dtype=dtype)
        weights = np.zeros(0, dtype)
        if self.weights is not None:
            weights = np.ascontiguousarray(self.weights[start:stop], dtype=dtype)
        return Chunk(X, labels, Y, weights, self.layer_sizes, self.functions)

    def converted(self, dtype: np.dtype) -> Examples:
        """These examples with every in-memory array converted once to the kernels' dtype and
        layout: then one chunk. Memory-mapped and sparse arrays stay as they are (converted
        chunk by chunk on every use); arrays already in the kernels' layout are not copied."""

        def convert(a: np.ndarray, to: Any) -> np.ndarray:
            if is_memory_mapped(a) or is_sparse(a):
                return a
            return np.ascontiguousarray(a, dtype=to)

        labels, targets, weights = self.labels, self.targets, self.weights
        return replace(
            self,
            X=convert(self.X, dtype),
            labels=None if labels is None else convert(labels, np.int64),
            targets=None if targets is None else convert(targets, dtype),
            weights=None if weights is None else convert(weights, dtype),
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_whole": {}}  # the kept chunk is rebuilt on demand


def sparse_rows(X: Any) -> Any:
    """A scipy.sparse X as CSR (rows slice cheaply), checked: real, 2-D, finite stored values."""
    from scipy import sparse

    X = sparse.csr_array(X)
    check_real(X, "X")
    if X.nnz and not np.isfinite(X.data).all():
        bad = int(np.argmin(np.isfinite(X.data)))
        row = int(np.searchsorted(X.indptr, bad, side="right") - 1)
        raise ValueError(f"X must be finite, but X[{row}, {X.indices[bad]}] is {X.data[bad]}")
    return X


def prepare_examples(
    X: Any,
    y: Any,
    layer_sizes: tuple[int, ...],
    first_row: int = 0,
    *,
    targets: bool = True,
    functions: tuple[int, ...] | None = None,
    sample_weight: Any = None,
    all_rows: bool = True,
) -> Examples:
    """Validate X (and y and the sample weights, unless ``targets`` is False) against the network,
    streaming over their rows; nothing is converted. ``first_row`` is the position of these rows
    in a larger data set (used in error messages). ``functions``: the network's codes of g
    (``_layout.functions_of``; None: all sigmoid), whose output decides which y it takes.
    ``all_rows``: False for a part of the data set, whose sample weights may all be zero.

    X may be a scipy.sparse matrix or array (kept sparse, in CSR form; chunks of rows are made
    dense one at a time) or a pandas table with nullable dtypes and no missing values. Integer
    labels stored as an (m, 1) column (what ``scipy.io.loadmat`` returns) count as labels.
    """
    functions = (SIGMOID,) * (len(layer_sizes) - 1) if functions is None else tuple(functions)
    X = from_table(X, "X")
    if is_sparse(X):
        X = sparse_rows(X)
    elif not isinstance(X, np.ndarray):
        X = np.asarray(X)
    check_real(X, "X")
    check_X(X.shape, layer_sizes)
    rows = chunk_rows(layer_sizes, np.float64)
    if X.dtype.kind == "f" and not is_sparse(X):
        value_range(X, "X", rows, first_row)
    if not targets:
        return Examples(X, None, None, None, layer_sizes, functions)
    m = X.shape[0]
    weights = None
    if sample_weight is not None:
        weights = check_sample_weight(sample_weight, m, first_row, all_rows)
    labels, Y = check_targets(y, m, layer_sizes[-1], functions[-1], rows, first_row)
    return Examples(X, labels, Y, weights, layer_sizes, functions)
