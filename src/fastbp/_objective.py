"""Public wrappers: validate, convert row chunks, call a compiled kernel, normalize, regularize.

The objective is a sum over examples, computed in two steps that can run apart:

    partial sums over a slice S of the examples:  c_S = Σ_{i∈S} cost_i,  Δ_S = Σ_{i∈S} Δ_i,  m_S = |S|
    combination:  J = (1/m) Σ_S c_S + (λ / 2m) Σ_l Σ_i Σ_{j≥1} (Θ^(l)_ij)²,   m = Σ_S m_S
                  D^(l)_ij = Δ^(l)_ij / m + (λ/m) Θ^(l)_ij  (j ≥ 1),   D^(l)_i0 = Δ^(l)_i0 / m

Regularization belongs to the combination, never to a partial sum (DESIGN.md). Data the kernels
read as it is is one slice: its kernel call does the combination's work too, in the same float64
steps (the kernels' last step is the same compiled ``normalize``), so the result is bitwise that
of ``combine([partial_sums(...)])``.

Inside one slice, X and y already in the kernels' layout (C-contiguous in the compute dtype,
int64 labels) go to the kernels as they are, in one call, whether in memory or memory-mapped:
no copy, no extra memory. Anything else (another dtype or layout) is converted and run chunk by
chunk, at most ``CHUNK_BYTES`` of converted rows at a time (:func:`chunk_rows`), so that memory
never grows with m and X may be a file larger than memory. Chunk boundaries depend only on m,
the layer sizes and the compute dtype: the same data stored the same way gives bitwise the same
result in memory and in a file. (An :class:`Objective` converts in-memory data once and then
runs it in one call.) Measured with the tiled kernels on (100, 25, 10), m = 2e5, float64: one
call 92-116 ms, 22 chunks of 9472 rows 123-133 ms, hence one call wherever no conversion is
needed.
"""

from __future__ import annotations

import functools
import math
import mmap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import _kernels, _threading
from ._layout import n_params, validate_layer_sizes

__all__ = [
    "Objective",
    "combine",
    "cost",
    "cost_and_grad",
    "partial_sums",
    "predict_proba",
]

COMPUTE_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
CHUNK_BYTES = 8 * 2**20  # converted X and targets of one chunk of rows stay under this
CHUNK_ALIGN = 256  # rows per chunk are a multiple of this, so chunks hold whole kernel tiles
# kernel="auto" runs the literal loop on problems of at most this many m × P (examples times
# parameters): there its ~1 µs of work beats the tiled kernel's fixed ~3.5 µs (per-tile scratch,
# padding to 32-example tiles). Kernel time, literal vs tiled, one call, same process: (2, 4, 1)
# m = 4 (m × P = 68) 2.9 vs 5.5 µs; (2, 2, 1) m = 32 (288) 6.1 vs 5.4 µs; (4, 8, 3) m = 8 (536)
# 5.6 vs 7.4 µs, m = 16 (1072) 9.7 vs 7.8 µs. The crossover lies between 288 and 1072 depending
# on the shape; 256 is below all of them.
LITERAL_MAX_WORK = 256


@dataclass(frozen=True)
class _Examples:
    """Validated training examples as the caller stored them (any real dtype and layout, possibly
    memory-mapped); converted chunk by chunk by :func:`_chunks`. Never written to."""

    X: np.ndarray  # (m, s_1)
    labels: np.ndarray | None  # (m,) integer or bool labels, or None
    targets: np.ndarray | None  # (m, K) float targets, or None (no targets: forward pass only)
    layer_sizes: tuple[int, ...]
    _whole: dict[np.dtype, _Data] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def m(self) -> int:
        return self.X.shape[0]

    def whole(self, dtype: np.dtype) -> _Data | None:
        """All the examples as one kernel call when the kernels read them as they are, else None
        (then :func:`_chunks` converts them chunk by chunk). Kept: an Objective asks every call."""
        data = self._whole.get(dtype)
        if data is None and _in_kernel_layout(self, dtype):
            data = self._whole[dtype] = next(_chunks(self, dtype))[1]
        return data

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_whole": {}}  # the kept kernel view is rebuilt on demand


@dataclass(frozen=True)
class _Data:
    """One chunk of examples, converted for the kernels (compute dtype, C order); never written to."""

    X: np.ndarray  # (m, s_1), C-contiguous, compute dtype
    labels: np.ndarray  # (m,) int64, or (0,) when Y holds the targets
    Y: np.ndarray  # (m, K) compute dtype, or (0, K) when labels hold the targets
    sizes: np.ndarray  # (L,) int64
    layer_sizes: tuple[int, ...]

    @property
    def m(self) -> int:
        return self.X.shape[0]


def chunk_rows(layer_sizes: Sequence[int], dtype: Any) -> int:
    """Rows per chunk: the converted X and targets of a chunk take at most ``CHUNK_BYTES``.

    A multiple of ``CHUNK_ALIGN`` (at least one), depending only on s_1, K and the dtype; for
    (128, 25, 10) in float64 it is 7424 rows (7.8 MiB).
    """
    row_bytes = (layer_sizes[0] + layer_sizes[-1]) * np.dtype(dtype).itemsize
    return max(1, CHUNK_BYTES // row_bytes // CHUNK_ALIGN) * CHUNK_ALIGN


def _check_real(a: Any, name: str) -> None:
    if a.dtype.kind not in "biuf":
        hint = " (take the real part first)" if a.dtype.kind == "c" else ""
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}{hint}")


def _value_range(a: np.ndarray, name: str, rows: int, first_row: int = 0) -> tuple[Any, Any]:
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


def _is_memory_mapped(a: Any) -> bool:
    """True if ``a`` is, or is a view of, a memory-mapped file (``np.memmap``, ``mmap.mmap``)."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def _compute_dtype(dtype: Any, name: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in COMPUTE_DTYPES:
        raise TypeError(f"{name} must be float64 or float32, got {dtype}")
    return dtype


def _float_dtype(a: Any) -> np.dtype:
    """a's dtype when it is float32 or float64, else float64 (other dtypes, lists, scalars):
    the default compute dtype of θ or X, and the dtype of the gradient returned for θ."""
    dtype = getattr(a, "dtype", None)
    return dtype if dtype is not None and dtype in COMPUTE_DTYPES else COMPUTE_DTYPES[0]


def _check_lam(lam: float) -> float:
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise TypeError(f"lam must be a real number, got {lam!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    return value


def _prepare_theta(theta: Any, layer_sizes: tuple[int, ...], dtype: np.dtype | None) -> np.ndarray:
    """θ as a 1-D contiguous array of the compute dtype (float32 stays float32, else float64)."""
    theta = np.asarray(theta)
    _check_real(theta, "theta")
    if theta.ndim != 1:
        raise ValueError(f"theta must be a 1-D vector, got shape {theta.shape}")
    expected = n_params(layer_sizes)
    if theta.shape[0] != expected:
        raise ValueError(
            f"theta has length {theta.shape[0]}, but layer_sizes {layer_sizes} imply "
            f"{expected} parameters"
        )
    if dtype is None:
        dtype = _float_dtype(theta)
    theta = np.ascontiguousarray(theta, dtype=dtype)
    if not np.isfinite(theta).all():
        raise ValueError(
            f"theta must be finite, but theta[{np.argmin(np.isfinite(theta))}] is "
            f"{theta[np.argmin(np.isfinite(theta))]}"
        )
    return theta


def _prepare_X(X: Any, layer_sizes: tuple[int, ...], first_row: int = 0) -> np.ndarray:
    """X validated against the network, as stored (converted later, chunk by chunk)."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    _check_real(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (examples × features), got shape {X.shape}")
    m, width = X.shape
    if width != layer_sizes[0]:
        raise ValueError(
            f"X has {width} columns, but layer_sizes[0] = {layer_sizes[0]} input features"
        )
    if m == 0:
        raise ValueError("X has no rows: at least one example is needed")
    if X.dtype.kind == "f":
        _value_range(X, "X", chunk_rows(layer_sizes, np.float64), first_row)
    return X


def _prepare_examples(
    X: Any, y: Any, layer_sizes: tuple[int, ...], first_row: int = 0
) -> _Examples:
    """Validate X and y against the network, streaming over their rows; nothing is converted.

    ``first_row`` is the position of these rows in a larger data set (used in error messages).
    """
    X = _prepare_X(X, layer_sizes, first_row)
    m = X.shape[0]
    K = layer_sizes[-1]
    rows = chunk_rows(layer_sizes, np.float64)
    y = np.asarray(y)
    _check_real(y, "y")
    if y.shape[:1] != (m,):
        raise ValueError(
            f"y must have one entry per example: expected length {m}, got shape {y.shape}"
        )
    if y.ndim == 1 and (y.dtype.kind in "biu"):
        lo, hi = (int(v) for v in _value_range(y, "y", rows, first_row))
        top = 1 if K == 1 else K - 1
        if lo < 0 or hi > top:
            what = "0 or 1 (one output unit)" if K == 1 else f"0 … {K - 1} (K = {K} outputs)"
            raise ValueError(f"labels y must be in {what}, got values from {lo} to {hi}")
        return _Examples(X, y, None, layer_sizes)
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
    lo, hi = _value_range(y, "y", rows, first_row)
    if lo < 0 or hi > 1:
        raise ValueError(f"float targets y must lie in [0, 1], got values from {lo} to {hi}")
    return _Examples(X, None, y, layer_sizes)


def _in_kernel_layout(examples: _Examples, dtype: np.dtype) -> bool:
    """Whether the kernels can read X and y as they are: C-contiguous X and float targets in
    ``dtype``, C-contiguous int64 labels."""

    def ready(a: np.ndarray | None, to: Any) -> bool:
        return a is None or (a.dtype == to and a.flags.c_contiguous)

    return (
        ready(examples.X, dtype)
        and ready(examples.labels, np.int64)
        and ready(examples.targets, dtype)
    )


def _rows_per_call(examples: _Examples, dtype: np.dtype) -> int:
    """All rows in one kernel call when no conversion is needed, else :func:`chunk_rows`."""
    if _in_kernel_layout(examples, dtype):
        return examples.m
    return chunk_rows(examples.layer_sizes, dtype)


def _converted_in_memory(examples: _Examples, dtype: np.dtype) -> _Examples:
    """The examples with every in-memory array converted once to the kernels' dtype and layout.

    Memory-mapped arrays are kept as they are (their chunks are converted on every use); arrays
    already in the right dtype and layout are not copied. Converted, the data goes to the
    kernels in one call: the result can then differ in its last bits from the chunk-by-chunk
    evaluation of the data as given (cost_and_grad on an int X with m > chunk_rows, say).
    """

    def convert(a: np.ndarray, to: Any) -> np.ndarray:
        return a if _is_memory_mapped(a) else np.ascontiguousarray(a, dtype=to)

    labels, targets = examples.labels, examples.targets
    return replace(
        examples,
        X=convert(examples.X, dtype),
        labels=None if labels is None else convert(labels, np.int64),
        targets=None if targets is None else convert(targets, dtype),
    )


def _prepare_data(X: Any, y: Any, layer_sizes: tuple[int, ...], dtype: np.dtype) -> _Examples:
    """Validate X and y, then convert what is in memory once to ``dtype`` (see
    :func:`_converted_in_memory`): the data an :class:`Objective` evaluates on every call."""
    return _converted_in_memory(_prepare_examples(X, y, layer_sizes), dtype)


def _chunks(examples: _Examples, dtype: np.dtype) -> Iterator[tuple[int, _Data]]:
    """``(first row, chunk)`` over the examples, each chunk converted for the kernels on its own.

    :func:`_rows_per_call` rows at a time: a chunk already in the compute dtype and C order is a
    view, anything else is a copy of that chunk only.
    """
    layer_sizes = examples.layer_sizes
    sizes = _sizes(layer_sizes)
    rows = _rows_per_call(examples, dtype)
    for start in range(0, examples.m, rows):
        stop = start + rows
        X = np.ascontiguousarray(examples.X[start:stop], dtype=dtype)
        labels = _NO_LABELS
        if examples.labels is not None:
            labels = np.ascontiguousarray(examples.labels[start:stop], dtype=np.int64)
        Y = _no_rows(layer_sizes[-1], dtype)
        if examples.targets is not None:
            Y = np.ascontiguousarray(examples.targets[start:stop], dtype=dtype)
        yield start, _Data(X, labels, Y, sizes, layer_sizes)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


_NO_LABELS = _read_only(np.zeros(0, np.int64))


@functools.lru_cache(maxsize=64)
def _no_rows(K: int, dtype: np.dtype) -> np.ndarray:
    """An empty (0, K) array: "no targets" or "no h(x) wanted" for the kernels (it has no
    element to write, so one serves every call)."""
    return np.zeros((0, K), dtype)


@functools.lru_cache(maxsize=64)
def _sizes(layer_sizes: tuple[int, ...]) -> np.ndarray:
    return _read_only(np.array(layer_sizes, dtype=np.int64))


def _run_kernel(
    theta: np.ndarray,
    data: _Data,
    grad: np.ndarray,
    proba: np.ndarray,
    kernel: str = "auto",
    m: float = 1.0,
    lam: float = 0.0,
) -> tuple[float, float]:
    """Call the compiled kernels: parallel over blocks where that is allowed.

    Returns (Σ cost, penalty (λ/2m) Σ Θ²) and writes grad = Σ Δ / m + (λ/m) Θ (non-bias
    weights); J = Σ cost / m + penalty. The defaults m = 1, λ = 0 give the plain sums over
    ``data``, exactly, and a penalty of 0. The serial tiled kernel runs the same blocks, so
    that choice never changes the result.
    ``kernel="literal"`` runs the seed's one-example-at-a-time loop instead (serial);
    ``"auto"`` runs it when m × P ≤ ``LITERAL_MAX_WORK`` and the tiled kernel otherwise (a
    choice that depends on m and the network only). Returns NaNs when θ is not finite (the
    kernels check every weight). The kernels' only other caller is an Objective's single
    serial call (:func:`_bound_serial_evaluation`): the same call, its arguments bound once.
    """
    kernel, n_blocks, data_args = _kernel_plan(kernel, data, theta.dtype)
    args = (theta, *data_args, grad, proba, n_blocks, m, lam)
    if kernel != "tiled" or n_blocks == 1 or not _threading.parallel_allowed():
        return _kernels.kernel(theta.dtype, False, kernel)(*args)  # same blocks, same bits
    compiled = _kernels.kernel(theta.dtype, True)
    with _threading.launching():
        return compiled(*args)


def _kernel_plan(
    kernel: str, data: _Data, dtype: np.dtype
) -> tuple[str, int, tuple[np.ndarray, ...]]:
    """A kernel call on ``data``: the kernel (``"auto"`` resolved as :func:`_run_kernel` says),
    the number of blocks, and the data arguments (sizes, layout, X, labels, Y) that follow θ.
    None of it depends on θ, nor on anything but m, the network and the dtype."""
    sizes = data.layer_sizes
    if kernel == "auto":
        kernel = "literal" if data.m * _n_params(sizes) <= LITERAL_MAX_WORK else "tiled"
    data_args = (data.sizes, _padded_layout(sizes, dtype), data.X, data.labels, data.Y)
    return kernel, _block_count(data.m, sizes, dtype), data_args


@functools.lru_cache(maxsize=64)
def _padded_layout(layer_sizes: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    layout = _kernels.padded_layout(layer_sizes, dtype)
    layout.setflags(write=False)
    return layout


_block_count = functools.lru_cache(maxsize=256)(_kernels.block_count)
_n_params = functools.lru_cache(maxsize=256)(n_params)


def _check_kernel(kernel: str) -> str:
    choices = ("auto", *_kernels.KERNELS)
    if kernel not in choices:
        raise ValueError(f"kernel must be one of {choices}, got {kernel!r}")
    return kernel


def _sums(
    theta: np.ndarray, examples: _Examples, want_grad: bool, kernel: str = "auto"
) -> tuple[float, np.ndarray]:
    """Σ_i cost_i and Σ_i Δ_i over the examples (unnormalized, unregularized), chunk by chunk.

    The kernels sum each chunk; the chunk sums are added in row order, Δ in float64 (an empty Δ
    when not ``want_grad``). Data the kernels read as it is makes one chunk, and its Δ comes back
    as the kernel wrote it, in θ's dtype.
    """
    P = theta.shape[0] if want_grad else 0
    no_proba = _no_rows(examples.layer_sizes[-1], theta.dtype)
    whole = examples.whole(theta.dtype)
    if whole is not None:  # one kernel call: Δ as the kernel wrote it
        Delta = np.empty(P, theta.dtype)
        return _run_kernel(theta, whole, Delta, no_proba, kernel)[0], Delta
    cost_sum = 0.0
    Delta_sum = np.zeros(P, np.float64)
    Delta = np.empty(P, theta.dtype)
    for _, data in _chunks(examples, theta.dtype):
        cost_sum += _run_kernel(theta, data, Delta, no_proba, kernel)[0]
        Delta_sum += Delta
    return cost_sum, Delta_sum


def _bound_serial_evaluation(
    examples: _Examples, dtype: np.dtype, lam: float, kernel: str
) -> Callable[[np.ndarray], tuple[float, np.ndarray]] | None:
    """θ ↦ :func:`_evaluate` of ``examples`` (with the gradient) with every argument but θ bound
    once, when that evaluation is a single serial kernel call (examples in the kernels' layout,
    and the literal kernel or a single block: the thread count plays no part); else None.

    The same kernel call, minus the per-call lookups and thread-count handling that were most
    of a small problem's time. An :class:`Objective` call, same process, same bits, best of
    60 × 3000 calls: (2, 4, 1) at m = 4 7.7 → 4.7 µs in float64 and 6.7 → 4.7 µs in float32;
    XOR's (2, 2, 1) 8.9 → 4.5 µs. Then the kernel's own last step normalizing in place (one
    compiled call and one array instead of two of each), best of 40 × 2000 calls, alternating
    old and new: (2, 4, 1) 4.8-5.0 → 3.4 µs (float64) and 4.9-5.3 → 3.3 µs (float32); XOR
    4.6-4.9 → 3.1-3.3 µs.
    """
    data = examples.whole(dtype)
    if data is None:
        return None
    kernel, n_blocks, data_args = _kernel_plan(kernel, data, dtype)
    if kernel == "tiled" and n_blocks > 1:
        return None
    compiled = _kernels.kernel(dtype, False, kernel)
    sizes, layout, X, labels, Y = data_args
    P = _n_params(data.layer_sizes)
    no_proba = _no_rows(data.layer_sizes[-1], dtype)
    m = float(data.m)

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray]:
        grad = np.empty(P, dtype)
        cost_sum, penalty = compiled(
            theta, sizes, layout, X, labels, Y, grad, no_proba, n_blocks, m, lam
        )
        return cost_sum / m + penalty, grad

    return evaluate


def _load_kernels(layer_sizes: tuple[int, ...], dtype: np.dtype) -> None:
    """Compile, or load from numba's disk cache, the kernels this network runs in ``dtype``.

    Runs the smallest and the largest kernel call an evaluation makes (one example, one full
    chunk of zeros), so that every entry point a later call takes is in this process and on
    disk. Other processes started afterwards then only read the cache: none compiles while
    another writes it (the race of numba issue 4807). The calls run with every thread numba
    may use, as a new process does: under the caller's own count (``fastbp.threads(1)``, say)
    they would take the serial entry point only and leave the parallel one for the workers.
    """
    theta = np.zeros(n_params(layer_sizes), dtype)
    with _threading.threads(_threading.most_threads()):
        for m in (1, chunk_rows(layer_sizes, dtype)):
            X = np.zeros((m, layer_sizes[0]), dtype)
            _sums(theta, _Examples(X, np.zeros(m, np.int64), None, layer_sizes), want_grad=True)


def _normalize(
    theta: np.ndarray,
    cost_sum: float,
    Delta: np.ndarray,
    m: int,
    lam: float,
    layer_sizes: tuple[int, ...],
) -> tuple[float, np.ndarray]:
    """(J, D) of DESIGN.md from the sums over m examples; D is new, in θ's dtype (empty if Δ is).

    J = cost_sum / m + (λ/2m) Σ non-bias Θ²;  D = Δ / m + (λ/m) Θ on non-bias weights
    (:func:`fastbp._kernels.normalize`, one compiled pass; the penalty in float64).
    """
    grad = np.empty(Delta.shape[0], theta.dtype)
    penalty = _kernels.normalize(theta, _sizes(layer_sizes), Delta, float(m), lam, grad)
    return cost_sum / m + penalty, grad


def _evaluate(
    theta: np.ndarray, examples: _Examples, lam: float, want_grad: bool, kernel: str = "auto"
) -> tuple[float, np.ndarray]:
    """(J, D) over all the examples: one partial sum, normalized (see :func:`combine`).

    Data the kernels read as it is takes one kernel call, which normalizes too (the same
    float64 step as :func:`_normalize`, so the same bits); chunks are summed, then normalized.
    """
    whole = examples.whole(theta.dtype)
    if whole is None:
        cost_sum, Delta = _sums(theta, examples, want_grad, kernel)
        return _normalize(theta, cost_sum, Delta, examples.m, lam, examples.layer_sizes)
    grad = np.empty(theta.shape[0] if want_grad else 0, theta.dtype)
    no_proba = _no_rows(examples.layer_sizes[-1], theta.dtype)
    m = examples.m
    cost_sum, penalty = _run_kernel(theta, whole, grad, no_proba, kernel, float(m), lam)
    return cost_sum / m + penalty, grad


def partial_sums(
    theta: Any, X: Any, y: Any, layer_sizes: Sequence[int]
) -> tuple[float, np.ndarray, int]:
    """Unnormalized sums over a slice of the examples, for :func:`combine`.

    Returns ``(cost_sum, Delta, count)``: cost_sum = Σ_i [Σ_k softplus(z_k) − y_k z_k] over the
    rows of X (the cross-entropy, unnormalized), Delta = Σ_i Δ_i, the backpropagation sums laid
    out like θ (float64 whatever θ's dtype, so that partial sums add without further rounding),
    and count = the number of rows. No regularization and no division by m: results for any
    split of the examples into slices, computed anywhere, add up to those of the whole set.

    Arguments as :func:`cost_and_grad`; X and y may be memory-mapped (they are streamed).
    """
    sizes = validate_layer_sizes(layer_sizes)
    theta = _prepare_theta(theta, sizes, None)
    examples = _prepare_examples(X, y, sizes)
    cost_sum, Delta = _sums(theta, examples, want_grad=True)
    return cost_sum, Delta.astype(np.float64, copy=False), examples.m  # float32 → float64: exact


def combine(
    partials: Iterable[tuple[float, Any, int]],
    theta: Any,
    layer_sizes: Sequence[int],
    lam: float = 0.0,
) -> tuple[float, np.ndarray]:
    """``(J, grad)`` from the :func:`partial_sums` of slices that together hold every example.

    The partials are added in the order given (Delta in float64), then normalized by the total
    count m and regularized once: J = Σ cost_sum / m + (λ/2m) Σ non-bias Θ², grad = Σ Delta / m +
    (λ/m) Θ on non-bias weights, returned in θ's dtype. ``combine([partial_sums(θ, X, y, s)], θ,
    s, lam)`` is bitwise ``cost_and_grad(θ, X, y, s, lam)``; for several slices the result
    differs from it only by the rounding of the added partials.
    """
    sizes = validate_layer_sizes(layer_sizes)
    lam = _check_lam(lam)
    theta = _prepare_theta(theta, sizes, None)
    P = theta.shape[0]
    cost_sum = 0.0
    Delta_sum = np.zeros(P, np.float64)
    m = 0
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
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
            raise TypeError(f"partials[{i}]: count must be an integer, got {count!r}")
        if count < 1 or not math.isfinite(part_cost):
            raise ValueError(
                f"partials[{i}]: count must be >= 1 and cost_sum finite, got {count} and "
                f"{part_cost}"
            )
        cost_sum += part_cost
        Delta_sum += part_Delta
        m += int(count)
    if m == 0:
        raise ValueError("partials is empty: at least one (cost_sum, Delta, count) is needed")
    return _normalize(theta, cost_sum, Delta_sum, m, lam, sizes)


def predict_proba(theta: Any, X: Any, layer_sizes: Sequence[int]) -> np.ndarray:
    """h_Θ(x) for every row of X: an (m, K) array of output activations, in θ's dtype.

    A forward pass only, through the same compiled kernels (parallel over blocks of examples);
    X may be memory-mapped (it is streamed); no m × s_l matrix is built beyond the (m, K) result.
    """
    sizes = validate_layer_sizes(layer_sizes)
    theta = _prepare_theta(theta, sizes, None)
    examples = _Examples(_prepare_X(X, sizes), None, None, sizes)
    proba = np.empty((examples.m, sizes[-1]), theta.dtype)
    no_Delta = np.empty(0, theta.dtype)
    for start, data in _chunks(examples, theta.dtype):
        _run_kernel(theta, data, no_Delta, proba[start : start + data.m])
    return proba


def cost_and_grad(
    theta: Any, X: Any, y: Any, layer_sizes: Sequence[int], lam: float = 0.0
) -> tuple[float, np.ndarray]:
    """Cost J(θ) and its exact gradient D = ∂J/∂θ by per-example backpropagation.

    Parameters
    ----------
    theta : (P,) array
        Flat weights Θ^(1), …, Θ^(L−1), each row-major (see :func:`fastbp.pack`). Its dtype is the
        compute dtype: float32 stays float32, anything else is computed in float64.
    X : (m, s_1) array
        One example per row; may be read-only or memory-mapped (``numpy.memmap``, ``np.load(...,
        mmap_mode="r")``). C-contiguous in θ's dtype (and y in its layout), it is used as it is,
        in one kernel call, without a copy; otherwise (integer and bool X included) it is
        converted and run chunk by chunk, so extra memory never grows with m.
    y : (m,) integer labels in 0 … K−1, or (m, K) float targets in [0, 1]
        With one output unit (K = 1), labels are 0 or 1 and a float (m,) vector is accepted.
        Streamed like X.
    layer_sizes : sequence of int
        ``(s_1, …, s_L)``, at least two entries.
    lam : float
        λ ≥ 0. The penalty is ``λ/(2m) Σ Θ²`` over non-bias weights; the course notes' λ (penalty
        ``(λ/2) Σ Θ²``, gradient term ``λΘ``) equals ``lam / m`` here.

    Returns
    -------
    J : float
    grad : (P,) new array of θ's compute dtype, laid out like θ.

    The computation is :func:`partial_sums` over all rows followed by :func:`combine`; it runs
    the compiled kernels of :mod:`fastbp._kernels`, and its result is bitwise the same whatever
    the number of threads, and the same for data in memory and in a file stored alike.
    """
    sizes = validate_layer_sizes(layer_sizes)
    lam = _check_lam(lam)
    theta = _prepare_theta(theta, sizes, None)
    return _evaluate(theta, _prepare_examples(X, y, sizes), lam, want_grad=True)


def cost(theta: Any, X: Any, y: Any, layer_sizes: Sequence[int], lam: float = 0.0) -> float:
    """Cost J(θ) alone (forward pass only); arguments as :func:`cost_and_grad`."""
    sizes = validate_layer_sizes(layer_sizes)
    lam = _check_lam(lam)
    theta = _prepare_theta(theta, sizes, None)
    return _evaluate(theta, _prepare_examples(X, y, sizes), lam, want_grad=False)[0]


class _ScipyObjective:
    """``obj(θ) -> (J, grad)``, ``obj.fun`` and ``obj.jac`` over one evaluation per θ.

    Subclasses set ``_layer_sizes``, ``_dtype`` (the compute dtype) and ``_lam`` and implement
    ``_evaluate_at(theta)`` for a θ already in the compute dtype and of the right length; the
    kernels return NaN for a θ that is not finite, and the slow path then names the entry.
    """

    _layer_sizes: tuple[int, ...]
    _dtype: np.dtype
    _lam: float
    _last: tuple[np.ndarray, float, np.ndarray] | None = None

    def _evaluate_at(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self._layer_sizes

    @functools.cached_property
    def n_params(self) -> int:
        return _n_params(self._layer_sizes)

    @property
    def dtype(self) -> np.dtype:
        """The compute dtype."""
        return self._dtype

    @property
    def lam(self) -> float:
        return self._lam

    def __call__(self, theta: Any) -> tuple[float, np.ndarray]:
        """Return ``(J, grad)`` at θ; grad is a new array of θ's float dtype (float64 for any
        other θ, a list included)."""
        J, grad = self._evaluate_checked(theta)
        if getattr(theta, "dtype", None) is grad.dtype:  # θ in the compute dtype: done
            return J, grad
        dtype = _float_dtype(theta)
        return J, grad if grad.dtype == dtype else grad.astype(dtype)

    def fun(self, theta: Any) -> float:
        """J(θ); computes the gradient too and keeps it for a following ``jac`` at the same θ."""
        return self._compute(theta)[0]

    def jac(self, theta: Any) -> np.ndarray:
        """∂J/∂θ as a new array of θ's float dtype; reuses the computation of ``fun`` at that θ."""
        _, grad, out_dtype = self._compute(theta)
        return grad.astype(out_dtype, copy=True)

    def _evaluate_checked(self, theta: Any) -> tuple[float, np.ndarray]:
        """(J, grad) with grad new, in the compute dtype. θ in the compute dtype goes straight to
        the kernels, which check that it is finite; anything else is validated and converted."""
        if not (
            type(theta) is np.ndarray
            and theta.dtype == self._dtype
            and theta.shape == (self.n_params,)
            and theta.flags.c_contiguous
        ):
            theta = _prepare_theta(theta, self._layer_sizes, self._dtype)
        J, grad = self._evaluate_at(theta)
        if math.isnan(J):
            _prepare_theta(theta, self._layer_sizes, self._dtype)  # raises, naming the entry
        return J, grad

    def _compute(self, theta: Any) -> tuple[float, np.ndarray, np.dtype]:
        theta = np.asarray(theta)
        out_dtype = _float_dtype(theta)
        last = self._last  # one read: another thread may replace it meanwhile
        if (
            last is not None
            and last[0].shape == theta.shape
            and last[0].dtype == theta.dtype
            and np.array_equal(last[0], theta)
        ):
            return last[1], last[2], out_dtype
        J, grad = self._evaluate_checked(theta)
        grad.setflags(write=False)
        self._last = (theta.copy(), J, grad)
        return J, grad, out_dtype


class Objective(_ScipyObjective):
    """``f(θ) -> (J, grad)`` for ``scipy.optimize.minimize(obj, theta0, jac=True)``.

    X and y are validated once. The compute dtype is ``dtype`` if given, else X's dtype when it is
    float32 or float64, else float64. In-memory X and y not already in the compute dtype and C
    order are converted once (a copy); memory-mapped X and y are never copied whole: every call
    streams them, converting chunk by chunk when needed, so extra memory stays bounded by the
    parameter count times the block count, never by m.

    ``obj(theta)`` accepts θ of either float dtype, computes in the compute dtype, and returns
    ``(J, grad)`` with J a Python float and grad a fresh array in θ's dtype. ``obj.fun(theta)``
    and ``obj.jac(theta)`` share one computation when called with the same θ (for optimizers that
    ask for them separately).

    Calls are pure: they change no state a caller can observe, and concurrent calls from several
    threads are safe and give the same results as serial calls. An Objective pickles (for
    spawn-based process pools); the pickle carries a copy of X and y (all of a memory-mapped X).

    Parameters
    ----------
    X, y, layer_sizes, lam
        As :func:`cost_and_grad`.
    dtype : float64 or float32, optional
        The compute dtype.
    threads : int, optional
        The number of threads of this objective's calls (default: numba's current count in the
        calling thread); set for each call and restored afterwards (see :func:`fastbp.threads`).
    kernel : "auto", "tiled" or "literal"
        ``"tiled"`` is the fast path. ``"literal"`` runs the seed's loop one example at a time,
        line by line as DESIGN.md writes it, serially: the readable algorithm, to check against
        or to read; it agrees with the tiled kernel to rounding (1e-12 in float64). ``"auto"``
        (default) is the tiled kernel, except on toy problems (m × n_params ≤ 256, such as
        XOR), where the literal loop's smaller fixed cost makes it the faster of the two.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        layer_sizes: Sequence[int],
        lam: float = 0.0,
        dtype: Any = None,
        *,
        threads: int | None = None,
        kernel: str = "auto",
    ) -> None:
        sizes = validate_layer_sizes(layer_sizes)
        self._layer_sizes = sizes
        self._dtype = _default_compute_dtype(X, dtype)
        self._lam = _check_lam(lam)
        self._threads = None if threads is None else _threading._check_thread_count(threads)
        self._kernel = _check_kernel(kernel)
        self._examples = _prepare_data(X, y, sizes, self._dtype)

    @property
    def m(self) -> int:
        """Number of training examples."""
        return self._examples.m

    @property
    def kernel(self) -> str:
        return self._kernel

    @property
    def threads(self) -> int | None:
        return self._threads

    @functools.cached_property
    def _serial_evaluation(self) -> Callable[[np.ndarray], tuple[float, np.ndarray]] | None:
        return _bound_serial_evaluation(self._examples, self._dtype, self._lam, self._kernel)

    def _evaluate_at(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        serial = self._serial_evaluation
        if serial is not None:  # one serial kernel call: no thread count to set
            return serial(theta)
        if self._threads is None:
            return _evaluate(theta, self._examples, self._lam, True, self._kernel)
        with _threading.threads(self._threads):
            return _evaluate(theta, self._examples, self._lam, True, self._kernel)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_last"] = None
        state.pop("_serial_evaluation", None)  # holds compiled code: bound again on first use
        return state

    def __repr__(self) -> str:
        return (
            f"Objective(m={self.m}, layer_sizes={self.layer_sizes}, lam={self._lam}, "
            f"dtype={self._dtype}, threads={self._threads}, kernel={self._kernel!r})"
        )


def _default_compute_dtype(X: Any, dtype: Any) -> np.dtype:
    """``dtype`` if given, else X's dtype when it is float32 or float64, else float64."""
    return _compute_dtype(_float_dtype(X) if dtype is None else dtype, "dtype")
