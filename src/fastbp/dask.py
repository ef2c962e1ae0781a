"""The objective over a Dask cluster: ``DaskObjective`` for row-chunked ``dask.array`` data.

The gradient is a sum over examples, so each row chunk of X and y is a slice whose partial sums
(:func:`fastbp.partial_sums`) are computed where the chunk lives:

    c_b = Σ_{i∈b} cost_i,   Δ_b = Σ_{i∈b} Δ_i,   m_b = |b|      for every row chunk b, on its worker

They are added in a fixed tree: while more than ``FAN_IN`` (8) partials remain, each run of 8
consecutive ones is added left to right by one task on the cluster, (b0 + … + b7), (b8 + … +
b15), …; the client gathers the last ≤ 8 and :func:`fastbp.combine` adds them in order and
normalizes and regularizes once. The tree depends only on the number of chunks, so a call gives
bitwise the same result every time; it differs from :class:`fastbp.Objective` on the same data
only by the rounding of the partial sums (≤ 1e-12 relative in float64). Each call moves θ (sent
once) and partial sums, never X or y.

Needs the ``dask`` extra (``pip install "fastbp[dask]"``); ``import fastbp`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import Client, Future, default_client, wait
except ImportError as error:  # pragma: no cover - exercised by a test in a subprocess
    raise ImportError(
        'fastbp.dask needs dask and distributed: pip install "fastbp[dask]"'
    ) from error

from ._inputs import Examples, check_X, prepare_examples
from ._layout import network
from ._objective import ScipyObjective
from ._partial import combine
from ._plan import hessian_sums, load_kernels, normalized, sums
from ._values import check_lam, check_real, default_compute_dtype

__all__ = ["DaskObjective"]

Partial = tuple[float, np.ndarray, int | float]
FAN_IN = 8  # partial sums added by one node of the reduction tree


def _prepare_block(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    net: tuple[tuple[int, ...], tuple[int, ...]],
    dtype: np.dtype,
    first_row: int,
) -> Examples:
    """On a worker: validate one row chunk and convert it once to the compute dtype.

    Errors name rows by their position in the whole data set (``first_row`` onwards).
    """
    sizes, functions = net  # the layer sizes and the codes of g
    examples = prepare_examples(
        X, y, sizes, first_row, functions=functions, sample_weight=weights, all_rows=False
    )
    return examples.converted(dtype)


def _block_partial_sums(examples: Examples, theta: np.ndarray) -> Partial:
    """On a worker: ``(cost_sum, Delta, count)`` of one prepared row chunk (see partial_sums)."""
    cost_sum, Delta = sums(theta, examples, want_grad=True)
    return cost_sum, Delta, examples.count(theta.dtype)


def _block_hessian_sums(
    examples: Examples, theta: np.ndarray, v: np.ndarray, gauss_newton: bool
) -> Partial:
    """On a worker: ``(0, R{Δ}, count)`` of one prepared row chunk along v, R{Δ} in float64:
    the Hessian-vector product's partial sums, reduced like the gradient's."""
    RDelta = hessian_sums(theta, v, examples, gauss_newton).astype(np.float64, copy=False)
    return 0.0, RDelta, examples.count(theta.dtype)


def _add_partials(*partials: Partial) -> Partial:
    """One node of the reduction tree: the partials added left to right."""
    cost_sum, Delta, count = partials[0]
    Delta = Delta.copy()  # the inputs are other tasks' results: never written to
    for part in partials[1:]:
        cost_sum += part[0]
        Delta += part[1]
        count += part[2]
    return cost_sum, Delta, count


class DaskObjective(ScipyObjective):
    """``f(θ) -> (J, grad)`` over row-chunked dask arrays, computed on a Dask cluster.

    A drop-in for :class:`fastbp.Objective`: the same ``obj(theta)``, ``obj.fun``, ``obj.jac``,
    ``n_params``, ``layer_sizes``, ``dtype``, ``lam`` and ``m``, so that
    ``scipy.optimize.minimize(DaskObjective(X, y, sizes), theta0, jac=True)`` works unchanged.

    On construction every row chunk of X and y is validated and converted to the compute dtype
    on a worker, and kept there (in worker memory; chunks read from a memory-mapped file stay
    mapped). Each call then sends θ to the cluster once, computes the partial sums of every
    chunk where it lives and adds them in a fixed tree (see the module's docstring): only θ
    and partial sums move. Results are bitwise repeatable; they equal
    :class:`fastbp.Objective` on the same data up to the rounding of the partial sums.

    Before the workers first run the kernels, this process compiles them, or loads them from
    numba's disk cache, so that worker processes on this machine only read that cache.

    Parameters
    ----------
    X : dask.array.Array, (m, s_1)
        Examples, chunked along rows (column chunks are merged). Chunk sizes must be known.
    y : dask.array.Array or array, (m,) integer labels or (m, K) float targets
        As for :func:`fastbp.cost_and_grad`; rechunked to X's row chunks.
    layer_sizes, lam
        As for :func:`fastbp.cost_and_grad`.
    activation, output
        As for :func:`fastbp.cost_and_grad`.
    sample_weight : dask.array.Array or array, (m,), optional
        As for :func:`fastbp.cost_and_grad`; rechunked to X's row chunks, summed per chunk into
        the partials (the whole set's S is their sum).
    client : distributed.Client, optional
        The cluster's client; by default the current one (``distributed.default_client()``).
    dtype : float64 or float32, optional
        The compute dtype; by default X's dtype when it is float32 or float64, else float64.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        layer_sizes: Sequence[int],
        lam: float = 0.0,
        client: Client | None = None,
        dtype: Any = None,
        *,
        activation: str | Sequence[str] = "sigmoid",
        output: str = "sigmoid",
        sample_weight: Any = None,
    ) -> None:
        sizes, self._functions = network(layer_sizes, activation, output)
        self._layer_sizes = sizes
        self._lam = check_lam(lam)
        self._client = _client_or_default(client)
        X, y = _row_aligned(X, y, sizes)
        weights = [None] * len(X.chunks[0])
        if sample_weight is not None:
            sample_weight = _rows_like(X, sample_weight, "sample_weight")
            weights = sample_weight.to_delayed().ravel()
        self._dtype = default_compute_dtype(X, dtype)
        self._m = int(X.shape[0])
        load_kernels(sizes, self._dtype)
        self._hessp_loaded = False

        prepare = dask.delayed(_prepare_block, pure=True)
        blocks = []
        first_row = 0
        net = (sizes, self._functions)
        for X_block, y_block, w_block, rows in zip(
            X.to_delayed().ravel(), y.to_delayed().ravel(), weights, X.chunks[0], strict=True
        ):
            if rows:  # a chunk of no rows adds nothing
                blocks.append(prepare(X_block, y_block, w_block, net, self._dtype, first_row))
            first_row += rows
        self._blocks: list[Future] = self._client.compute(blocks)
        wait(self._blocks)
        for block in self._blocks:
            if block.status == "error":
                block.result()  # raises the worker's ValueError or TypeError here
        if sample_weight is not None and not self._client.compute(sample_weight.max()).result():
            raise ValueError(
                "sample_weight is all zeros: at least one example must have weight > 0"
            )

    @property
    def m(self) -> int:
        """Number of training examples."""
        return self._m

    @property
    def n_chunks(self) -> int:
        """Number of row chunks (and of partial-sum tasks per call)."""
        return len(self._blocks)

    def _evaluate_at(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        partials = self._reduced(_block_partial_sums, theta)
        return combine(partials, theta, self._layer_sizes, self._lam)

    def _hessp_at(self, theta: np.ndarray, v: np.ndarray, gauss_newton: bool) -> np.ndarray:
        """H·v (G·v) by partial sums R{Δ}, reduced in the gradient's tree, normalized once."""
        if not self._hessp_loaded:  # on first use, as the gradient's at construction
            load_kernels(self._layer_sizes, self._dtype, "hessp")
            self._hessp_loaded = True
        partials = self._reduced(_block_hessian_sums, theta, v, gauss_newton)
        RDelta = partials[0][1].copy()
        for part in partials[1:]:
            RDelta += part[1]
        S = sum(part[2] for part in partials)
        return normalized(v, 0.0, RDelta, S, self._lam, self._layer_sizes)[1]

    def _reduced(self, partial: Any, *args: Any) -> list[Partial]:
        """``partial(block, *args)`` for every row chunk where it lives (the arrays among args,
        θ and v, sent to the cluster once), added in the fixed tree down to at most FAN_IN,
        gathered in order."""
        client = self._client
        sent = [
            client.scatter([a], hash=False)[0] if isinstance(a, np.ndarray) else a for a in args
        ]
        partials = [client.submit(partial, block, *sent, pure=False) for block in self._blocks]
        while len(partials) > FAN_IN:
            partials = [
                client.submit(_add_partials, *partials[i : i + FAN_IN], pure=False)
                for i in range(0, len(partials), FAN_IN)
            ]
        return list(client.gather(partials))

    def __getstate__(self) -> NoReturn:
        raise TypeError(
            "a DaskObjective holds futures of one Dask client and does not pickle; "
            "create it where it is used, or pickle a fastbp.Objective"
        )

    def __repr__(self) -> str:
        return (
            f"DaskObjective(m={self.m}, n_chunks={self.n_chunks}, "
            f"layer_sizes={self.layer_sizes}, lam={self._lam}, activation={self.activation}, "
            f"output={self.output!r}, dtype={self._dtype})"
        )


def _client_or_default(client: Client | None) -> Client:
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        return client
    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "DaskObjective needs a Dask cluster: pass client=distributed.Client(...), or create "
            "a Client first (for one machine: distributed.Client(distributed.LocalCluster()))"
        ) from None


def _row_aligned(X: Any, y: Any, layer_sizes: tuple[int, ...]) -> tuple[da.Array, da.Array]:
    """X with one column chunk, y chunked like X's rows; shapes checked against the network."""
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask.array.Array, got {type(X).__name__}; for NumPy arrays and "
            "memory-mapped files use fastbp.Objective"
        )
    check_real(X, "X")
    if X.ndim == 2 and any(math.isnan(rows) for rows in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes: call X.compute_chunk_sizes() first")
    check_X(X.shape, layer_sizes)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X, _rows_like(X, y, "y")


def _rows_like(X: da.Array, y: Any, name: str) -> da.Array:
    """y (or the sample weights, ``name``) as a dask array chunked like X's rows, one chunk
    across its columns."""
    if not isinstance(y, da.Array):
        y = np.asarray(y)
    check_real(y, name)
    ndims = (1, 2) if name == "y" else (1,)
    if y.ndim not in ndims or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name} must have one entry per example: expected length {X.shape[0]}, got shape "
            f"{y.shape}"
        )
    row_chunks = {0: X.chunks[0], **({1: -1} if y.ndim == 2 else {})}
    if isinstance(y, da.Array):
        return y.rechunk(row_chunks)
    return da.from_array(y, chunks=(X.chunks[0], *y.shape[1:]))
