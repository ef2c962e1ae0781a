"""Compiled kernels: the per-example backpropagation loop of DESIGN.md, over flat weight buffers.

Every kernel takes arrays and scalars only. The layer sizes ``s_1 … s_L`` arrive as an int64
array ``sizes``; Θ^(l) starts in the flat vector ``theta`` at ``Σ_{k<l} s_{k+1} (s_k + 1)`` and is
row-major with shape ``(s_{l+1}, s_l + 1)``. For every example i (DESIGN.md, "Gradient"):

    a^(1) = x;  z^(l+1) = Θ^(l) [1; a^(l)];  a^(l+1) = g(z^(l+1))
    δ^(L) = a^(L) − y;  δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* a^(l) .* (1 − a^(l))
    Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
    cost  += Σ_k softplus(z_k^(L)) − y_k z_k^(L)

then D = Δ/m + (λ/m) Θ over non-bias weights and the penalty (λ/2m) Σ Θ² (``normalize``, the
last step of every entry point; m = 1, λ = 0 leave the sums as they are). The entry points return
(Σ cost, penalty); the caller forms J = Σ cost / m + penalty.

Two implementations of that loop live here:

* ``_literal_sums``: one example at a time, line by line the loop above. The readable reference
  path (``kernel="literal"``).
* ``_tiled_sums`` / ``_tiled_sums_parallel``: the fast path. Examples go through in tiles of
  ``TILE``; inside a tile every example still keeps its own activations and its own δ column —
  the tile only lets the innermost loops run across examples so that they vectorize, and lets a
  weight loaded once serve the whole tile. Weights, activations and Δ live in zero-padded
  per-layer buffers so that register blocks never need tail code (padding contributes exact
  zeros); the δ products read a transposed copy of each hidden layer's padded Θ.

Parallelism is deterministic: the tiles are split into ``n_blocks`` contiguous blocks (see
:func:`block_count`, which depends only on m, the layer sizes and the dtype); each block
accumulates its own Δ and cost, and the blocks are added in block order. The thread count never
changes a single bit of the result.

Kernels compile lazily, one dtype and one entry point at a time, with one explicit signature per
dtype and ``cache=True`` (see :func:`kernel`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic, overload

# Examples per tile; the Δ update is a rank-TILE update of each Δ row segment. Measured against
# 32 (one thread, same process): 64 slower, also with the products run in strips of 32 examples
# (wide f32 1.28×, mnist f64 1.23×, ex4 f32 1.14×): a tile's buffers outgrow the 512 KiB L2. With
# two threads 64 lost as well: wide 1.21× (both dtypes), mnist 1.10× (f32) and 1.13× (f64), deep
# f32 1.19× (paired medians). Again after the tile moved to example panels (see _tiled_block):
# one thread wide 1.07× (f64) and 0.96× (f32), mnist 1.03× (f64) and 0.94× (f32), deep and ex4
# 1.0-1.03×; two threads wide 1.11× (f64) and 1.03× (f32), mnist 1.05× (f64) and 0.98× (f32),
# ex4 f32 0.97×: 32 stays. 16 for float64 when they exceed it (wide, mnist): wide 0.95×, mnist
# 0.96×, but the tile size then varies at run time and deep, ex4 and digits ran 1.03-1.06×
# slower, so 32 for all. Once more with the transposed copies and transposes in registers
# (float32, paired medians over 9 calls): one thread mnist 1.024×, wide 1.007×, deep 0.976×,
# ex4 1.031×; two threads mnist 1.009×, wide 0.965× (quartiles 0.93-1.03). On a Zen 4 VM with
# 1 MiB of L2 (AVX2 only), float32, two threads, paired medians over 21 calls: mnist 1.011×,
# wide 1.036×, deep 1.003×, ex4 0.997×.
TILE = 32
MIN_BLOCK_EXAMPLES = 128  # a parallel block holds at least this many examples
MAX_BLOCKS = 16
MAX_BLOCK_DELTA_BYTES = 32 * 2**20  # all per-block Δ copies together stay under this

# Register blocks, per dtype: (R, TB, RD, C, CL, RP, PANELS) =
#   R × TB  rows (units) × examples of a product block, forward and δ products;
#   RD × C  rows × columns of a Δ-update block; CL the columns of a Δ's last panels (Δ columns
#           are padded to a multiple of CL, C is a multiple of it: panels of C, then of CL);
#   RP      Θ rows are padded to a multiple of RP, and to at least R; Δ updates end with blocks
#           of RP rows (RD is a multiple of RP); a product's last block of R rows overlaps the
#           one before it when R does not divide the rows;
#   PANELS  1: each block's padded Δ is stored panel by panel, every C-column panel (and the last
#           CL-column ones) contiguous, rows × columns within it; 0: row-major like Θ.
# Figures in this file that name no machine come from earlier stops, on an AMD EPYC Zen 3 VM
# (2 cores, AVX2, 16 ymm registers, 512 KiB of L2 per core, where their bench runs record a
# CPU); later ones name theirs (a Zen 4 VM with 1 MiB of L2 and AVX2 only). On that Zen 3, with
# SLP vectorization on, GFLOP/s per core of a 512 × 512 layer (throw-away sweeps, other
# processes running):
#   forward / δ products, rows × examples: float64 3×16 = 31.6 (2×32: 18.7, 4×16: 24.9, 1×32: 20.7);
#                                           float32 2×32 = 58.4 (3×16: 43.4, 4×16: 35.0).
#   Δ update, rows × columns:               float64 3×16 = 33.9 (4×8: 36.7 but rows padded to 12);
#                                           float32 6×16 = 65.2 (2×16: 51.3, 4×16: 60.1);
#                                           float32 4×24 replaced 6×16 later (below).
# Re-measured in place, whole kernel, one thread, same process: a float32 6×16 product block
# (84 vs 71-77 GFLOP/s for 2×32 in an isolated product loop) was 1.0-1.08× slower end to end
# (ex4 1.08, deep 1.03, wide 1.03, mnist and digits 1.01), so 2×32 stays. Again with the tile
# in two example panels of 16 (see ``_tiled_block``), paired medians: 6×16 mnist and wide 1.0×,
# ex4 1.05×, deep 1.10×, digits 1.13×; 4×16 mnist, deep 1.07-1.08×.
# The last column panel of a float64 Δ may be 8 wide (columns padded to 8, not 16): one thread,
# same process, same bits, three runs: digits 0.93-0.98×, deep 0.95-0.96×, ex4 0.87-1.0× the
# time (digits' Θ^(1) has 65 columns: 72 instead of 80). In float32 with 6×16 blocks it made no
# difference (digits 0.99×, ex4 1.01×, deep 1.01×): one 8-float vector per row is too little
# work per load; with 4×24 blocks, last panels of 8 (below) beat columns padded to 24.
# float32's Δ update moved from 6×16 blocks (columns padded to 16) to 4×24 with last panels of 8
# (columns padded to 8; 12 accumulators either way, 3 + 4 loads per 12 multiply-adds instead of
# 2 + 6). Same bits, paired medians over 15 calls, one thread: mnist 0.94-0.95×, wide 0.95-0.96×,
# deep 0.96×, ex4 0.94-0.97×, digits 0.94×; two threads mnist 0.92×, wide 0.96×, deep 0.97×,
# ex4 and digits 0.98-0.99×. 4×24 with columns padded to 24 instead: deep (101 → 120 columns)
# 1.09× slower. A float32 3×32 product block, the float64 3×16's register count: 1.4-1.7× slower.
# On a Zen 4 VM with 1 MiB of L2 (AVX2 only), float32, two threads, same bits, paired medians
# over 21-31 calls: 6×16 product blocks wide 0.964×, mnist 1.0×, deep 1.024×, ex4 1.068×,
# digits 1.062× (a shape per layer width would buy wide's 3.5% with a second set of block
# variants in every cold compile); 4×16 mnist 1.041×, wide 1.020×, deep 1.099×; Δ-update blocks
# of 6×16 wide 1.016×, mnist 1.034×, of 3×32 (rows padded to 1) wide 1.37×, mnist 1.41×.
# float64 rows are not padded beyond R = 3 (RP = 1; they were padded to multiples of 3, so ex4's
# 25 hidden units took 27 rows): one thread, same process, same bits, ex4 0.89-0.97× the time,
# digits and deep 0.99×; two threads ex4 0.93-0.97×. It costs four more block variants (two since
# the overlapping product blocks below): cold compile (float64, ex4 shape, serial + parallel
# entry points) 23.4-25.1 s against 20.6-22.7 s. Padding rows to 3 for storage and ending only
# the forward product in 1-row blocks compiled as fast, but ran ex4 1.025-1.044× slower than
# this (one thread, three runs).
# The products' last block of R rows overlaps the one before it (rows − R … rows − 1: up to R − 1
# rows computed twice, to the same bits) instead of ending in blocks of RP rows: one product
# variant per direction instead of two. float64 (RP = 1), cold compile, serial + parallel entry
# points, three pairs: 24.6-25.2 s against 26.0-28.9 s. Same bits; paired medians over 21 calls,
# one thread ex4 1.01-1.015×, deep 1.02-1.04×, digits, mnist and wide 1.0-1.02×; two threads ex4
# 1.02×, deep 1.01×, digits, mnist and wide 0.97-1.01×. float32 (R = RP) is unchanged.
# float64 Δ stored by panels, so that the column panels' row blocks read and write one
# contiguous stretch of Δ instead of rows 4-6 KB apart (same bits; paired medians over 21-25
# calls): two threads wide 0.89× and 0.93× the time, mnist 0.97-1.01×, deep 1.0×, ex4 1.0×; one
# thread mnist 0.97×, wide 0.975×, ex4 0.99×. In float32 it was slower: one thread mnist, ex4,
# digits 1.02-1.03×, two threads mnist 1.03×, wide 1.02×; with 32-column (128-byte) panels
# 1.03-1.06×; again after the example panels, wide 1.09× (one thread) and 1.03× (two), mnist
# 1.0×.
# The δ products read a transposed copy of the hidden layers' Θ, built per call by
# ``_pad_weights``, instead of reading Θ by columns (2 weights of each 64-byte line, a line per
# multiply-add step): same bits; two threads, paired medians over 11-15 calls, wide float32
# 0.935-0.97× the time, float64 0.925-0.964×; deep, mnist, ex4, digits 0.99-1.03× (noise).
# An isolated float32 512 × 512 δ product: 46-50 GFLOP/s by columns, 60-88 from the copy. (An
# earlier try, one thread, had measured wide 0.998× f32 and 0.994× f64.) The copy and the
# padding together take 0.34 ms (f32) and 0.80 ms (f64) of a wide call, against 1.05 ms for
# the padding alone before its loops were rewritten to vectorize.
_BLOCK_SHAPES = {
    np.dtype(np.float64): (3, 16, 3, 16, 8, 1, 1),
    np.dtype(np.float32): (2, 32, 4, 24, 8, 2, 0),
}

# Compilation options shared by every kernel.
#  error_model="numpy": no zero-division branch in every float division, so the sigmoid loops
#  vectorize (PERF-NOTES: 800 sigmoids 4.4 µs → 0.98 µs).
#  fastmath={"contract"}: multiply-adds become FMAs; no reassociation, so the order of every sum
#  is the order written here (and the exp's rounding trick survives).
_OPTIONS: dict[str, Any] = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"contract"},
    "nogil": True,
}


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def padded_layout(layer_sizes: tuple[int, ...] | np.ndarray, dtype: Any) -> np.ndarray:
    """Rows and columns of each layer's zero-padded weight buffer, as an (L−1, 2) int64 array.

    Rows of Θ^(l) are padded to a multiple of RP and to at least R (the products cover them in
    blocks of R rows, the last overlapping the one before; the Δ update in blocks of RD, then of
    RP); columns (bias included) to a multiple of the last Δ panels' width CL (the Δ update
    covers them in panels of C columns, then of CL), with room for the bias plus the padded
    units of the layer below, which the δ product reads.
    (float32 rows were padded to a multiple of both R = 2 and RD = 6, RD's value then, so ex4's
    25 hidden units took 30 rows. Padding to 26 instead, one thread, same process, same bits:
    ex4 1.1-1.2× faster in float32 (four runs), digits 1.05-1.07× (four of five runs), deep,
    mnist and wide within noise.)
    """
    R, _, _, _, CL, RP, _ = _BLOCK_SHAPES[np.dtype(dtype)]
    sizes = [int(s) for s in layer_sizes]
    out = np.empty((len(sizes) - 1, 2), np.int64)
    for l in range(len(sizes) - 1):
        out[l, 0] = max(_round_up(sizes[l + 1], RP), R)
        below = out[l - 1, 0] if l > 0 else sizes[l]  # units below, padded ones included
        out[l, 1] = _round_up(below + 1, CL)
    return out


def block_count(m: int, layer_sizes: tuple[int, ...], dtype: Any) -> int:
    """Number of parallel blocks for ``m`` examples; depends on m, the layer sizes and dtype only.

    The largest power of two with at most ``MAX_BLOCKS`` blocks, at least ``MIN_BLOCK_EXAMPLES``
    examples per block, and the blocks' padded Δ copies together within
    ``MAX_BLOCK_DELTA_BYTES``. A count of 1 means the serial kernel runs.

    A power of two splits evenly over 2, 4, 8 or 16 threads (7 blocks on 2 threads take 4 block
    times, not 3.5), and each block costs its own scratch, Δ copy and share of the final sum:
    digits (m = 1797), two threads, same process, 8 blocks instead of 14: 0.96× the time in
    float64, 0.92-0.93× in float32 (three runs each); wide within noise (float64 4 against 6,
    float32 8 against 12). Fewer, larger blocks still gain a little on two threads (paired
    medians over 15 calls, 8 and 4 blocks against the 16 this gives): ex4 0.95-0.97× and
    0.95-1.02×, deep and mnist 0.98-0.99× and 0.98×. The minimum of 128 examples stays: a
    larger one would run mid-sized problems on fewer threads (at 512, every m below 1024 would
    run serially), and a smaller MAX_BLOCKS would cap the threads of every call on larger
    machines. MAX_BLOCK_DELTA_BYTES at 16 MiB instead (wide: 4 blocks in float32, 2 in float64)
    ran wide in 0.95× the time in float32 and 0.99× in float64 (two threads, paired medians
    over 9-11 calls), but would cap wide at 4 (float64: 2) threads on larger machines.
    What the 16 blocks cost against one, on one thread (MAX_BLOCKS = 1, the serial entry point;
    a Zen 4 VM, paired medians over 31 calls): one block ran ex4 in 0.950× (float64) and 0.963×
    (float32) the time, digits in 0.956× and 0.943×; in a profile of ex4 float64 the difference
    is mostly the blocks' scratch zeroing (0.10 of 0.39 ms) and the copy of X, 0.13 ms slower
    (profiled). Two threads need at least two blocks, and larger machines more.
    """
    layout = padded_layout(layer_sizes, dtype)
    delta_bytes = int((layout[:, 0] * layout[:, 1]).sum()) * np.dtype(dtype).itemsize
    by_examples = m // MIN_BLOCK_EXAMPLES
    by_memory = MAX_BLOCK_DELTA_BYTES // delta_bytes
    most = max(1, min(MAX_BLOCKS, by_examples, by_memory))
    return 1 << (most.bit_length() - 1)


# --------------------------------------------------------------------------------------------
# Small compiled building blocks


@intrinsic
def _stack_empty(typingctx, size, dtype):
    """An uninitialized stack array of ``size`` (a literal) elements: a register block.

    numba has no stack arrays; heap scratch (np.empty) stays in memory, while an alloca of
    literal size is promoted to registers once the loops over it are unrolled (PERF-NOTES:
    57 vs 6 GFLOP/s per core).
    """
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        element = context.get_value_type(dtype.dtype)
        count = context.get_constant(types.intp, size.literal_value)
        return cgutils.alloca_once(builder, element, size=count)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


@intrinsic
def _bitcast(typingctx, value, target):
    """Reinterpret the bits of a scalar as ``target`` (same width): float64 ↔ int64 etc."""
    to = target.dtype if isinstance(target, types.NumberClass) else target

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(value, target), codegen


TRANSPOSE_BYTES = 32  # rows of a ``_transpose_block`` block: one AVX2 register each


def _shuffle_masks(V: int) -> list[tuple[int, int, list[int]]]:
    """The shuffles that transpose a V × V block in registers, V = 8 or 4: (a, b, lanes) makes a
    new vector from vectors a and b (lanes count a's lanes, then b's, as LLVM's shufflevector),
    appended after the block's V rows; the last V vectors made are its columns.

    V = 8: pairs of rows interleaved by single lanes, then by pairs of lanes, then 128-bit halves
    exchanged (vunpcklps/vunpckhps, vshufps, vperm2f128); V = 4: by single lanes, then halves.
    """
    if V == 8:
        singles = ([0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15])
        doubles = ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15])
        halves = ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15])
        steps = [(k, k + 1, singles[h]) for k in range(0, 8, 2) for h in (0, 1)]  # vectors 8-15
        steps += [(a, a + 2, doubles[h]) for a in (8, 9, 12, 13) for h in (0, 1)]  # 16-23
        return steps + [(16 + j % 4, 20 + j % 4, halves[j // 4]) for j in range(8)]  # columns
    singles = ([0, 4, 2, 6], [1, 5, 3, 7])
    halves = ([0, 1, 4, 5], [2, 3, 6, 7])
    steps = [(k, k + 1, singles[h]) for k in (0, 2) for h in (0, 1)]  # vectors 4-7
    return steps + [(4 + j % 2, 6 + j % 2, halves[j // 2]) for j in range(4)]  # columns


@intrinsic
def _transpose_block(typingctx, src, s0, s1, dst, d0, d1):
    """dst[d0 + j, d1 + i] = src[s0 + i, s1 + j] for i, j < V, V = TRANSPOSE_BYTES / itemsize (8
    float32, 4 float64): a V × V block transposed in registers. src, dst: 2-d arrays with
    unit-stride rows; no bounds checks (the caller's loops keep the block inside both).

    V row loads, the shuffles of ``_shuffle_masks``, V row stores. Written as loops of scalar
    copies instead, LLVM (SLP on) kept one element per load and store; staged through a V × V or
    TILE × V stack block it made no shuffles either and ran slower still. Transposing a tile's
    [1; x] of mnist's 784 inputs: 7.9 µs scalar, 2.4 µs here (float32; float64 8.0 → 6.0 µs).
    End to end, against those scalar loops (same bits, paired medians over 11-13 calls): one
    thread float32 ex4 0.89×, digits 0.90×, deep 0.955×, mnist 0.966×, wide 0.99×, float64 ex4
    0.98×, the rest 0.99-1.02×; two threads float32 ex4 0.90×, digits 0.93×, deep 0.96×, mnist
    0.95-0.99×.
    """
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)):
        return None
    if src.dtype != dst.dtype or src.ndim != 2 or dst.ndim != 2:
        return None
    V = TRANSPOSE_BYTES // np.dtype(str(src.dtype)).itemsize
    steps = _shuffle_masks(V)

    def codegen(context, builder, signature, args):
        vector = ir.VectorType(context.get_value_type(src.dtype), V)

        def row(array_type, value, i, j):  # a vector pointer to array[i, j]
            array = context.make_array(array_type)(context, builder, value)
            shape = cgutils.unpack_tuple(builder, array.shape)
            strides = cgutils.unpack_tuple(builder, array.strides)
            item = cgutils.get_item_pointer2(
                context, builder, array.data, shape, strides, array_type.layout, [i, j]
            )
            return builder.bitcast(item, vector.as_pointer())

        source, s0, s1, target, d0, d1 = args
        vectors = [
            builder.load(row(src, source, builder.add(s0, s0.type(i)), s1), align=1)
            for i in range(V)
        ]
        for left, right, lanes in steps:
            mask = ir.Constant(ir.VectorType(ir.IntType(32), V), lanes)
            vectors.append(builder.shuffle_vector(vectors[left], vectors[right], mask))
        for j, column in enumerate(vectors[-V:]):
            builder.store(column, row(dst, target, builder.add(d0, d0.type(j)), d1), align=1)
        return context.get_dummy_value()

    return types.none(src, types.intp, types.intp, dst, types.intp, types.intp), codegen


def _exp(x):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_exp, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _exp_overload(x):
    """e^x without a libm call, so loops over it vectorize (PERF-NOTES: libm exp is scalar).

    x = n ln 2 + r with |r| ≤ ln2/2; e^r by its Taylor polynomial (degree 12 for float64, 7 for
    float32: truncation below half an ulp); 2^n from the exponent bits. n is rounded with the
    shift trick (x log2(e) + 1.5·2^52 puts n in the low mantissa bits), which needs an exact
    add and subtract: the kernels never allow reassociation. Valid for x in [−708, 709] (float64)
    / [−87, 88] (float32); callers clamp.
    """
    if x == types.float64:
        shift, bias, mantissa_bits, degree, itype = 6755399441055744.0, 1023, 52, 12, np.int64
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
    elif x == types.float32:
        shift, bias, mantissa_bits, degree, itype = 12582912.0, 127, 23, 7, np.int32
        ln2_hi, ln2_lo = 0.693145751953125, 1.428606765330187045e-06
    else:
        return None
    F = np.float64 if x == types.float64 else np.float32
    inverse_factorials = tuple(
        F(1.0 / np.prod(np.arange(1.0, k + 1))) for k in range(degree, -1, -1)
    )
    c_shift, c_log2e, c_hi, c_lo = F(shift), F(1.4426950408889634), F(ln2_hi), F(ln2_lo)

    def impl(x):
        kd = x * c_log2e + c_shift
        bits = _bitcast(kd, itype)
        n = kd - c_shift
        r = x - n * c_hi - n * c_lo
        p = inverse_factorials[0]
        for c in inverse_factorials[1:]:
            p = p * r + c
        scale = _bitcast(itype((bits + itype(bias)) << itype(mantissa_bits)), F)
        return p * scale

    return impl


def _log1p(q):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_log1p, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _log1p_overload(q):
    """log(1 + q) for finite q ≥ 0 without a libm call, so loops over it vectorize.

    fdlibm's log (float64; musl's logf for float32): u = 1 + q = 2^k m with m in [√½, √2),
    f = m − 1, s = f / (2 + f), log m = f − f²/2 + s (f²/2 + R(s²)) with fdlibm's minimax R;
    then + (q − (u − 1)) / u, the part of q that 1 + q rounded away (log1p's own correction),
    so small q keep full relative precision. Branch-free: the m > √2 step is a mask.
    """
    if q == types.float64:
        F, I, bits_m, bias = np.float64, np.int64, 52, 1023
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
        odd = (
            6.666666666666735130e-01,
            2.857142874366239149e-01,
            1.818357216161805012e-01,
            1.479819860511658591e-01,
        )
        even = (3.999999999940941908e-01, 2.222219843214978396e-01, 1.531383769920937332e-01)
    elif q == types.float32:
        F, I, bits_m, bias = np.float32, np.int32, 23, 127
        ln2_hi, ln2_lo = 6.9313812256e-01, 9.0580006145e-06
        odd = (0.66666662693, 0.28498786688)
        even = (0.40000972152, 0.24279078841)
    else:
        return None
    mask, one_bits = (1 << bits_m) - 1, bias << bits_m  # the mantissa; the exponent of 1.0
    one, two, half, c_sqrt2 = F(1.0), F(2.0), F(0.5), F(np.sqrt(2.0))
    c_hi, c_lo = F(ln2_hi), F(ln2_lo)
    odd_c = tuple(F(c) for c in odd)[::-1]  # highest power first, for Horner's rule
    even_c = tuple(F(c) for c in even)[::-1]

    def impl(q):
        u = one + q
        correction = (q - (u - one)) / u
        bits = _bitcast(u, I)
        m = _bitcast(I((bits & I(mask)) | I(one_bits)), F)  # u / 2^k, in [1, 2)
        high = F(m > c_sqrt2)
        m = m * (one - half * high)
        k = F((bits >> I(bits_m)) - I(bias)) + high
        f = m - one
        s = f / (two + f)
        z = s * s
        w = z * z
        t_odd = odd_c[0]
        for c in odd_c[1:]:
            t_odd = t_odd * w + c
        t_even = even_c[0]
        for c in even_c[1:]:
            t_even = t_even * w + c
        R = z * t_odd + w * t_even
        hfsq = half * f * f
        return k * c_hi - ((hfsq - (s * (hfsq + R) + k * c_lo)) - f) + correction

    return impl


def _sigmoid(z):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(_sigmoid, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _sigmoid_overload(z):
    """g(z) = 1 / (1 + e^(−z)), exactly 0 below −708 (float64) / −87 (float32), 1 when e^(−z)
    vanishes against 1; branch-free, so it vectorizes."""
    if z == types.float64:
        F, low, high = np.float64, -708.0, 708.0
    elif z == types.float32:
        F, low, high = np.float32, -87.0, 87.0
    else:
        return None
    one, c_low, c_high = F(1.0), F(low), F(high)

    def impl(z):
        e = _exp(min(max(-z, -c_high), -c_low))
        # a mask, not a branch: a branch here keeps the loop from vectorizing
        return one / (one + e) * F(z >= c_low)

    return impl


# --------------------------------------------------------------------------------------------
# Register-blocked micro-kernels (shapes from _BLOCK_SHAPES, chosen by dtype at compile time)


def _product_block(W, i0, B, n_k, out):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(_product_block, jit_options={"error_model": "numpy", "fastmath": {"contract"}})
def _product_block_overload(W, i0, B, n_k, out):
    """One register block of R units × TB examples of a layer product.

    out[i, t] = Σ_{k<n_k} W[i0 + i, k] B[k, t]. W: padded weights Θ^(l) (rows, cols) for the
    forward product, their transposed copy for the δ product (see ``_pad_weights``).
    B: one example panel of the activations or δ, unit-major (units, TB). out: the same panel
    of the layer's result (≥ R rows, TB), its row 0 is unit i0. Every weight is loaded once and
    serves TB examples; the block stays in registers. The nonlinearity is a separate pass
    (``_sigmoid_rows``, ``_times_slope``): fused here, it made LLVM spill 4 of the 12 float64
    accumulators in the k loop (float64 one thread: deep 1.2×, mnist 1.16×, ex4 1.09× slower).
    Splitting the k loop into chunks whose rows of B fit in L1 (16 KiB) was measured too, without
    spills: no faster (1.0–1.18× slower, wide float64 worst; again with blocks that always
    accumulate into ``out``, chunks of 64: ex4 and mnist float64 1.06× slower, although an isolated
    product loop gained 1.1-1.15× from it).
    The loops over row blocks and example panels stay with the caller: moved in here, as the Δ
    update's are, the time did not change (one thread, same bits: 0.95-1.03×, paired medians).
    Measured in float32 and not taken (same bits, paired medians over 11-31 calls): the same
    k chunks, 64 or 256 wide, mnist 1.08-1.13× and wide 1.08-1.15× slower; blocks of 6 rows ×
    16 examples, each call covering both halves of the 32-example panel (12 accumulators instead
    of 8), with the δ product's weights read at an unsigned column index (at a signed one LLVM
    kept six column pointers and spilled them): one thread mnist 0.96-0.98×, wide 0.91-0.92×,
    ex4 1.0-1.05×, deep 1.0×, digits 1.04-1.07×; two threads mnist 0.97-1.01×, wide
    0.88-0.95×, ex4 0.97-1.05×, deep 1.0-1.04×, digits 1.03-1.05×. Ended by 2-row blocks it
    compiled in 27.4 s against 23.0 (float32, serial + parallel entry points); ended by an
    overlapping block, in 22.1 s. The unsigned column index alone, in the blocks used here:
    within noise in both dtypes (0.99-1.04×). Again once the δ product read the transposed
    copy: float32 6 × 16 blocks for layers of at least 128 rows, 2 × 32 below, one thread,
    paired medians over 11 calls: wide 1.02×, mnist 1.02×, deep (2 × 32 only) 1.03×. The
    forward product's k loop in chunks of 128 again (16 KiB of B per chunk), the chunk's B and W
    sliced so that its loop counts from 0 (without that, numba's negative-index wraparound
    added 3-4 scalar instructions per step): same bits, one thread, paired medians over 9
    calls, mnist 1.016×, wide 1.044×. With Θ^(l) also stored in panels of 128 columns, so that
    each chunk's weights are one contiguous stretch (same bits): the forward product's share of
    a profile fell from 42.7% to 39.7% (mnist), but end to end, one thread, mnist 0.991-0.995×,
    wide 1.0-1.07×; two threads, paired medians over 11 calls, mnist 1.012×, wide 1.041×.
    (``python -m bench.hotloops``, float32: 88-90% of mnist's time and 92-94% of wide's is in
    the product and Δ-update loops, which ran at 74-87 GFLOP/s per core against 82-96 for GEMM
    on one core in the same session, and lost more than GEMM to a second thread and to the
    machine's other load: what is left to gain is in them.)
    """
    R, TB = _BLOCK_SHAPES[np.dtype(str(W.dtype))][:2]
    block = R * TB
    F = numba.np.numpy_support.as_dtype(W.dtype).type

    def impl(W, i0, B, n_k, out):
        s = numba.carray(_stack_empty(block, W.dtype), (R, TB))
        for i in range(R):
            for t in range(TB):
                s[i, t] = F(0.0)
        for k in range(n_k):
            b = B[k]
            for i in range(R):
                w = W[i0 + i, k]
                for t in range(TB):
                    s[i, t] += w * b[t]
        for i in range(R):
            target = out[i]
            for t in range(TB):
                target[t] = s[i, t]

    return impl


@numba.njit(**_OPTIONS)
def _sigmoid_rows(A):
    """A ← g(A), elementwise: the layer products' sums become activations a = g(z)."""
    for i in range(A.shape[0]):
        row = A[i]
        for t in range(row.shape[0]):
            row[t] = _sigmoid(row[t])


@numba.njit(**_OPTIONS)
def _times_slope(D, A):
    """D ← D .* A .* (1 − A): (Θᵀ δ) times g'(z) = a (1 − a), the δ recurrence's last step."""
    one = A.dtype.type(1.0)
    for i in range(D.shape[0]):
        d = D[i]
        a = A[i]
        for t in range(d.shape[0]):
            d[t] = d[t] * (a[t] * (one - a[t]))


def _delta_update(D, r0, r1, d0, delta, AT, c0, RD, CD):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(
    _delta_update,
    jit_options={"error_model": "numpy", "fastmath": {"contract"}},
    prefer_literal=True,
)
def _delta_update_overload(D, r0, r1, d0, delta, AT, c0, RD, CD):
    """D[r, d0 + c] += Σ_t δ[r, t] AT[t, c0 + c] for rows r0 ≤ r < r1 and CD columns: rank-TILE
    updates of RD × CD blocks, one after another.

    D: padded Δ of one layer (rows, cols), or its panel of columns c0, c0 + 1, … (rows, CD,
    d0 = 0), written. delta: by example panels (TILE / TB, rows, TB). AT: example-major
    activations [1; a] of the layer below (TILE, ≥ cols). RD, CD: a block's rows and columns,
    literals; r1 − r0 is a multiple of RD. Each example's δ column meets that example's own
    activations: Δ += δ [1; a]ᵀ, summed over the tile in example order. The loop over the row
    blocks is in here, not in the caller: against one call per block, float64, one thread,
    paired medians over 11-21 calls, wide 0.94-0.95× the time, deep 0.95×, ex4 0.95-0.96×
    (same bits; float32 within noise). δ is read from its example panels: a copy packed per row
    block, (row blocks, TILE, RD), so that a block's RD values of each example lie together,
    gained 5-12% on an isolated float32 update but, copy included, was 1.01-1.04× slower in
    place (float32, one thread, same bits).
    Each example's activations are read from its whole row of AT at an unsigned index: numba
    wraps only signed indices around, and with the row sliced per example, ``AT[t, c0 : c0 +
    CD]``, the slice's bounds were clamped for every t, 6-8 scalar instructions and a branch
    beside 12 multiply-adds. Same bits, paired medians over 11-21 calls, one thread: float32
    wide 0.92×, mnist 0.89-0.93×, digits 0.92×, ex4 0.91-0.97×, deep 0.97×; float64 mnist
    0.94×, ex4 and deep 0.98×, wide and digits 0.99×; two threads: float32 mnist 0.90×, deep
    0.91×, wide 0.95×, ex4 0.96×; float64 mnist and ex4 0.95×, deep 0.96×, wide 0.98×. (A copy
    of the TILE × CD panel into a stack array per call, read with loop counters: float32 wide
    0.91-0.95×, but float64 ex4 1.05×, deep 1.03×. The same unsigned index for the store into
    D, once per block row: float32 1.03-1.05× slower, float64 within noise.)
    """
    if not (isinstance(RD, types.IntegerLiteral) and isinstance(CD, types.IntegerLiteral)):
        return None
    n_rows, n_cols = RD.literal_value, CD.literal_value
    block = n_rows * n_cols
    F = numba.np.numpy_support.as_dtype(D.dtype).type
    TB = _BLOCK_SHAPES[np.dtype(str(D.dtype))][1]
    n_panels = TILE // TB

    def impl(D, r0, r1, d0, delta, AT, c0, RD, CD):
        for rb in range(r0, r1, n_rows):
            a = numba.carray(_stack_empty(block, D.dtype), (n_rows, n_cols))
            for i in range(n_rows):
                for c in range(n_cols):
                    a[i, c] = F(0.0)
            for p in range(n_panels):
                for t in range(TB):
                    x = AT[p * TB + t]
                    for i in range(n_rows):
                        d = delta[p, rb + i, t]
                        for c in range(n_cols):
                            a[i, c] += d * x[np.uint64(c0 + c)]
            for i in range(n_rows):
                row = D[rb + i, d0 : d0 + n_cols]
                for c in range(n_cols):
                    row[c] += a[i, c]

    return impl


def _shapes(W):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(_shapes)
def _shapes_overload(W):
    """(R, TB, RD, C, CL, RP, PANELS) of W's dtype, as compile-time constants."""
    shapes = _BLOCK_SHAPES[np.dtype(str(W.dtype))]
    return lambda W: shapes


# --------------------------------------------------------------------------------------------
# The tiled kernel


@numba.njit(**_OPTIONS)
def _pad_weights(theta, sizes, layout):
    """θ → (buffer, offsets, all θ finite): the buffer holds every Θ^(l) zero-padded to
    layout[l] (rows, cols), then Θ^(l)ᵀ padded alike (cols, rows) for the hidden layers l ≥ 1,
    which the δ products read; layer l is buffer[offsets[l] : offsets[l + 1]], its transpose
    buffer[offsets[L + l − 1] : offsets[L + l]] (L layers of weights). A Δ is padded as the
    first offsets[L] entries.
    """
    n_layers = sizes.shape[0] - 1
    offsets = np.zeros(2 * n_layers, np.int64)
    for i in range(2 * n_layers - 1):
        l = i if i < n_layers else i - n_layers + 1
        offsets[i + 1] = offsets[i] + layout[l, 0] * layout[l, 1]
    padded = np.zeros(offsets[2 * n_layers - 1], theta.dtype)
    finite = True
    for i in range(theta.shape[0]):
        finite &= np.isfinite(theta[i])
    start = 0
    CL = _shapes(padded)[4]
    for l in range(n_layers):
        n_in = sizes[l] + 1
        rows, cols = layout[l, 0], layout[l, 1]
        W = padded[offsets[l] : offsets[l + 1]].reshape((rows, cols))
        for r in range(sizes[l + 1]):
            w = W[r]
            source = theta[start + r * n_in : start + (r + 1) * n_in]
            for j in range(n_in):
                w[j] = source[j]
        start += sizes[l + 1] * n_in
        if l > 0:  # by panels of CL columns, so that Θᵀ is written line by line
            WT = padded[offsets[n_layers + l - 1] : offsets[n_layers + l]].reshape((cols, rows))
            for j0 in range(0, cols, CL):
                for r in range(rows):
                    for j in range(CL):
                        WT[j0 + j, r] = W[r, j0 + j]
    return padded, offsets, finite


@numba.njit(**_OPTIONS)
def _example_major(cols, like, C):
    """A zeroed (TILE, ≥ cols) buffer of ``like``'s dtype with column 0 (the bias unit) all ones.

    Its row stride is never a multiple of 4 KiB: the TILE rows would fall in one L1 set
    (a 512 × 512 Δ update: 12.8 vs 49.7 GFLOP/s in PERF-NOTES).
    """
    stride = cols + C if (cols * like.itemsize) % 4096 == 0 else cols
    buffer = np.zeros((TILE, stride), like.dtype)
    buffer[:, 0] = like.dtype.type(1.0)
    return buffer


@numba.njit(**_OPTIONS)
def _tiled_block(b, n_blocks, padded, offsets, sizes, layout, X, labels, Y, Deltas, proba):
    """Block b of n_blocks, a contiguous range of tiles: return Σ of its per-example costs
    (float64), and write its Δ to Deltas[b].

    padded, offsets: from ``_pad_weights``. X: (m, s_1). labels (m,) int64 or (0,); Y (m, K) or
    (0, K): the targets (labels when given); with both empty no cost is computed. Deltas:
    (n_blocks, offsets[L]), each row a padded Δ with the layers, offsets and padding of the
    Θ^(l) in ``padded`` (stored by panels where PANELS says so, see ``_BLOCK_SHAPES``), or
    (n_blocks, 0) for no gradient. proba: (m, K) or (0, K), h_Θ(x) written when it has m rows
    (only when no targets are given). Both entry points call this function directly, with an
    int64 b: each level of calls and each signature costs numba a compile and LLVM a
    re-optimization of everything below it (a wrapper between them cost 1-3 s of every cold
    compile).
    """
    m = X.shape[0]
    n_tiles = (m + TILE - 1) // TILE
    tile_start = b * n_tiles // n_blocks
    tile_stop = (b + 1) * n_tiles // n_blocks
    want_grad = Deltas.shape[1] > 0
    Delta = Deltas[b]
    F = padded.dtype.type
    zero = F(0.0)
    one = F(1.0)
    # Zeroed here, by the thread that fills it, not by the caller before the launch: two
    # threads, same process, same bits, paired medians over 21-31 calls wide 0.98×, mnist
    # 0.99-1.0×, digits and deep 0.99×. Not zeroed at all, the block's first tile storing its
    # Δ update instead of adding it (same bits): one thread, paired medians over 11 calls, wide
    # (m = 1250, 5 tiles a block) 0.98×, mnist 1.007×, deep 1.008×; the zeroing is 3.5% of that
    # wide call in a sampling profile, 1% at the bench's m = 5000, 0.4% of mnist's.
    for p in range(Delta.shape[0]):
        Delta[p] = zero
    R, TB, RD, C, CL, RP, PANELS = _shapes(padded)
    V = TRANSPOSE_BYTES // padded.itemsize  # a transposed block is V × V (``_transpose_block``)
    n_layers = sizes.shape[0] - 1
    K = sizes[n_layers]
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    write_proba = proba.shape[0] > 0

    # Per-tile scratch, allocated once per block and zeroed (a profile of ex4 float64 puts 1.2%
    # of the time in that memset, but act and xrows left uninitialized, a timing-only test,
    # ran ex4 in 0.997× and digits in 1.005× the time: two threads, paired medians over 41
    # calls). Activations [1; a^(l)] unit-major for the products, and example-major (examples ×
    # units, ``_example_major``) for the Δ update: the input's in xrows, the hidden layers' in
    # actT. Row 0 / column 0 is the bias unit; padding units stay finite (those never written
    # stay zero). The unit-major buffers (act, z_out and the δ pair) hold the tile by
    # example panels, (panel, units, TB): a product block's TB examples of each unit are one
    # contiguous row, and its pass over the units one contiguous stretch (with rows of all
    # TILE examples it read every other 128-byte piece of a 256-byte row). float64, where TB
    # is half the tile, one thread, same process, same bits, paired medians over 15 calls: mnist
    # 0.87×, wide 0.86×, deep 0.91×, ex4 0.90×, digits 0.96× the time (an isolated 3 × 16
    # product over 785 inputs: 41-46 against 30-31 GFLOP/s). float32's TB is the whole tile.
    most_rows = 0  # of any Θ^(l): the δ buffers hold that many units
    hidden_cols = C  # of any Θ^(l) with l ≥ 1: actT holds that many columns
    rows_total = 0
    for l in range(n_layers):
        most_rows = max(most_rows, layout[l, 0])
        if l > 0:
            hidden_cols = max(hidden_cols, layout[l, 1])
        rows_total += layout[l, 1]
    act_offsets = np.zeros(n_layers + 1, np.int64)
    for l in range(n_layers):
        act_offsets[l + 1] = act_offsets[l] + layout[l, 1]
    P = TILE // TB  # example panels: panel p holds the tile's examples p TB … p TB + TB − 1
    act = np.zeros((P, rows_total, TB), padded.dtype)
    for l in range(n_layers):
        act[:, act_offsets[l], :] = one
    xrows = _example_major(layout[0, 1], padded, C)  # the tile's [1; x]
    actT = _example_major(hidden_cols, padded, C)  # [1; a^(l)] of one hidden layer at a time
    z_out = np.zeros((P, layout[n_layers - 1, 0], TB), padded.dtype)
    delta = np.zeros((P, most_rows, TB), padded.dtype)
    delta_below = np.zeros((P, most_rows, TB), padded.dtype)
    label = np.zeros(TILE, np.int64)
    valid = np.zeros(TILE, padded.dtype)
    linear = np.zeros(TILE, padded.dtype)
    q = np.zeros(TILE, padded.dtype)
    y_k = np.zeros(TILE, padded.dtype)  # the targets of one output unit; zeros without targets
    logs = np.zeros(TILE, np.float64)
    cap = F(708.0) if padded.itemsize == 8 else F(87.0)  # e^−cap is still a normal number

    cost = 0.0
    for tile in range(tile_start, tile_stop):
        row0 = tile * TILE
        n = min(TILE, m - row0)
        # The tile's rows of X, read in order, into xrows (example-major [1; x], also what the
        # Δ update of the first layer reads); then a^(1) = x unit-major, from xrows. The padding
        # examples of a last tile are zeros. (Transposing straight from X, 32 strided rows at a
        # time, and copying X's rows again for the first Δ update was slower, same bits: one
        # thread ex4 1.1-1.19×, digits 1.04-1.1×, mnist float32 1.1×; deep and wide within noise.
        # No transpose at all, the first layer's product as dot products along the inputs from
        # xrows (2-4 rows × 2-4 examples of vector accumulators), was 1.7-2.9× slower than the
        # transpose and product together, in an isolated loop of ex4's and mnist's first layer;
        # as broadcast products, 4 examples of xrows × 24 units of a row of Θᵀ in vector
        # accumulators, 60 GFLOP/s against 82-88 for both together (float32, isolated mnist and
        # wide first layers, one thread).)
        # Element loops, not ``x_t[:] = X[row0 + t]``: an array-to-array slice assignment makes
        # numba compile its shape-mismatch error path (2.5-4 s of every cold compile). This copy
        # is most of the time spent reading X: without it, one thread, ex4 float32 ran in 0.885×
        # the time (X, 8 MB, read at about 20 GB/s), digits 0.96×, mnist 0.93-0.96×. Software
        # prefetches of the next tile's rows, spread over the first layer's row blocks, did not
        # shorten it: ex4, mnist (m = 20000) and digits 1.0-1.02× the time, one thread. Again on
        # a Zen 4 VM with 1 MiB of L2, float32 mnist, where a profile puts 3.7% of the time on
        # this copy's loads (each line a miss): spread over the first layer's row blocks, two
        # threads 1.001-1.016× (prefetcht0, t1, nta), one thread 0.99×; spread over its Δ-update
        # panels, just before the copy, the copy's share fell to 2.7% but end to end one thread
        # 0.997×, two threads mnist 1.009×, wide 1.006× (paired medians over 15-21 calls).
        # On the Zen 4, reading X's rows in place with no copy at all (the transposes and the
        # first Δ update reading X itself; a timing-only emulation, the bias column left out)
        # gained little for what it would cost, an Objective holding a second copy of X as
        # [1; x] rows: one thread ex4 float32 0.958×, mnist 1.008×; two threads ex4 float64
        # 0.995×, digits 0.987× (paired medians over 15-21 calls). The misses move to the
        # transposes: the time is in reading X, not in copying it.
        for t in range(TILE):
            x_t = xrows[t, 1 : 1 + sizes[0]]
            if t < n:
                x = X[row0 + t]
                for j in range(sizes[0]):
                    x_t[j] = x[j]
            else:
                for j in range(sizes[0]):
                    x_t[j] = zero
        for j0 in range(0, sizes[0] + 1, V):  # the bias column and the padding come along
            for t0 in range(0, TILE, V):
                _transpose_block(xrows, t0, j0, act[t0 // TB], j0, t0 % TB)

        # Forward: z^(l+1) = Θ^(l) [1; a^(l)], a^(l+1) = g(z^(l+1)), R units × TB examples at once;
        # the last block ends at the last row (rows ≥ R), overlapping the one before.
        for l in range(n_layers):
            W = padded[offsets[l] : offsets[l + 1]].reshape((layout[l, 0], layout[l, 1]))
            last = l == n_layers - 1
            n_k = sizes[l] + 1
            lo = act_offsets[l]  # [1; a^(l)] is act[p, lo : lo + n_k], a^(l+1) starts at hi
            hi = act_offsets[l + 1] + 1
            for r in range(0, layout[l, 0], R):
                r0 = min(r, layout[l, 0] - R)
                for p in range(P):
                    out = z_out[p, r0:] if last else act[p, hi + r0 :]
                    _product_block(W, r0, act[p, lo : lo + n_k], n_k, out)
            if not last:
                for p in range(P):
                    _sigmoid_rows(act[p, hi : hi + sizes[l + 1]])

        # Output layer, unit by unit across the tile's examples (vectorized). With e = exp(−|z|):
        # softplus(z) − y z = max(z, 0) − y z + log(1 + e), and a = g(z) = 1/(1 + e) for z ≥ 0,
        # e/(1 + e) below. δ = a − y over that same denominator: with s = [z ≥ 0],
        # a − y = ((s − y) + (1 − s) e − y e) / (1 + e), so y = 1 gives −e / (1 + e).
        # Subtracting y from a rounded a lost a saturated output's digits: in float32,
        # a = 1 − 5.4e-4 is known to 6e-8, 1.1e-4 of a − y (a hypothesis example, against
        # DESIGN.md's 1e-4). The logs are taken once per example, of q = Π_k (1 + e_k) − 1, kept
        # small-value-exact by q ← q + e + q e, folded every 64 units so that Π stays below 2^64
        # (float32 overflows from 128 units). One exp per unit and one log1p per example instead
        # of an exp, a log1p and a sigmoid per unit: ex4 1.15× (f64). That log1p is ``_log1p``,
        # in a loop of its own: libm's, called in the cost's sum, was scalar (one thread, same
        # process, same gradient: digits 1.0-1.03× faster, ex4 1.0-1.08×). The masks s and
        # [|z| ≤ cap] as selects instead of products with F(condition): same bits, two threads,
        # paired medians over 41 calls, ex4 and digits 0.993-0.996× in both dtypes (noise).
        for t in range(TILE):
            label[t] = labels[min(row0 + t, m - 1)] if use_labels else 0
            valid[t] = one if t < n else zero
            linear[t] = zero
            q[t] = zero
            logs[t] = 0.0
        for k in range(K):
            # The targets y of unit k first, in loops of their own: with the choice of target
            # inside it, the loop below ran slower (one thread, same bits: digits 1.06× in float64,
            # 1.1× in float32; ex4 1.02-1.06×).
            if use_labels and K == 1:
                for t in range(TILE):
                    y_k[t] = F(label[t])
            elif use_labels:
                for t in range(TILE):
                    y_k[t] = F(label[t] == k)
            elif has_targets:
                for t in range(TILE):
                    y_k[t] = Y[min(row0 + t, m - 1), k]
            for p in range(P):
                z_k = z_out[p, k]
                d_k = delta[p, k]
                for t in range(TB):
                    z = z_k[t]
                    e = _exp(-min(abs(z), cap))
                    y = y_k[p * TB + t]
                    linear[p * TB + t] += max(z, zero) - y * z
                    q[p * TB + t] += e + q[p * TB + t] * e
                    s = F(z >= zero)
                    e_a = e * F(abs(z) <= cap)  # beyond ±cap, a is exactly 0 or 1
                    d = ((s - y) + (one - s) * e_a - y * e_a) / (one + e_a)
                    d_k[t] = d * valid[p * TB + t]
            if write_proba:  # no targets: y = 0, so δ holds a
                for t in range(n):
                    proba[row0 + t, k] = delta[t // TB, k, t % TB]
            if k % 64 == 63:
                for t in range(TILE):
                    logs[t] += _log1p(q[t])
                    q[t] = zero
        if has_targets:
            for t in range(TILE):  # apart from the sum below, so that it vectorizes
                logs[t] += _log1p(q[t])
            for t in range(n):
                cost += linear[t] + logs[t]
        if not want_grad:
            continue
        for k in range(K, layout[n_layers - 1, 0]):
            for p in range(P):
                delta[p, k, :] = zero

        # Backward, layer by layer: Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ, then δ^(l) for hidden layers.
        for l in range(n_layers - 1, -1, -1):
            rows, cols = layout[l, 0], layout[l, 1]
            AT = xrows
            if l > 0:  # example-major copy of [1; a^(l)]
                AT = actT
                for p in range(P):
                    for j0 in range(0, cols, V):
                        for t0 in range(0, TB, V):
                            _transpose_block(act[p], act_offsets[l] + j0, t0, actT, p * TB + t0, j0)
            # Column panels outermost: the panel's TILE × C activations stay in L1 while every row
            # block of Δ passes (rows outermost re-read all of actT from L2 for each row block:
            # float64 mnist and wide 1.08–1.1× slower, single thread). Panels of C columns, then
            # of CL; in each, blocks of RD rows, then the rest in blocks of RP. RP != RD and
            # CL != C are compile-time tests. (A helper for one panel, called twice, was 1-3%
            # slower in float32, one thread; inlined by numba, within noise.
            # Row blocks outermost over groups of 4 panels: 1.02-1.06× slower, one thread. A
            # software prefetch of the next row block's Δ: within noise, 0.95-1.02; again, both
            # lines of each of its row segments, for writing: float32, one thread, same bits,
            # paired medians over 9 calls, mnist 1.054×, wide 1.031×.)
            # With PANELS, D is the panel's own (rows, C or CL) stretch of Δ: its column d0 = 0.
            D = Delta[offsets[l] : offsets[l + 1]].reshape((rows, cols))
            whole_blocks = rows - rows % RD
            whole_panels = cols - cols % C
            for c0 in range(0, whole_panels, C):
                d0 = c0
                if PANELS:
                    panel = offsets[l] + c0 * rows
                    D = Delta[panel : panel + rows * C].reshape((rows, C))
                    d0 = 0
                _delta_update(D, 0, whole_blocks, d0, delta, AT, c0, RD, C)
                if RP != RD:
                    _delta_update(D, whole_blocks, rows, d0, delta, AT, c0, RP, C)
            for c0 in range(whole_panels, cols if CL != C else 0, CL):
                d0 = c0
                if PANELS:
                    panel = offsets[l] + c0 * rows
                    D = Delta[panel : panel + rows * CL].reshape((rows, CL))
                    d0 = 0
                _delta_update(D, 0, whole_blocks, d0, delta, AT, c0, RD, CL)
                if RP != RD:
                    _delta_update(D, whole_blocks, rows, d0, delta, AT, c0, RP, CL)
            if l == 0:
                break
            # δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* a^(l) .* (1 − a^(l)): unit j of layer l is
            # column 1 + j of Θ^(l), row 1 + j of its transposed copy WT; padding units get
            # δ = 0 from zero weights.
            WT = padded[offsets[n_layers + l - 1] : offsets[n_layers + l]].reshape((cols, rows))
            n_k = sizes[l + 1]
            for j in range(0, layout[l - 1, 0], R):
                j0 = min(j, layout[l - 1, 0] - R)
                for p in range(P):
                    _product_block(WT, 1 + j0, delta[p], n_k, delta_below[p, j0:])
            for p in range(P):
                a_l = act[p, act_offsets[l] + 1 : act_offsets[l] + 1 + sizes[l]]
                _times_slope(delta_below[p, : sizes[l]], a_l)
            delta, delta_below = delta_below, delta
    return cost


@numba.njit(**_OPTIONS)
def _unpad_sum(padded_deltas, offsets, sizes, layout, grad):
    """grad = Σ_b padded_deltas[b] in the flat layout, adding the blocks in block order.

    Serial: the sum over blocks runs b = 0, 1, … for every entry, whoever calls it. A padded Δ
    is row-major, or stored by panels of C columns, then of CL (PANELS, see ``_BLOCK_SHAPES``):
    the panel of columns p0 … p0 + width − 1 starts p0 × rows entries into the layer's Δ.
    (The parallel entry point summed rows in a second parallel loop from 2^17 block-Δ entries
    on. Serial instead, two threads, paired medians: wide 1.02× the time in both dtypes, mnist
    1.01-1.02×, ex4 1.01×; that second loop took 3.7-4.2 s of the float64 parallel entry point's
    cold compile, 12.7-12.8 s against 8.6-9.1 s, and the bench's start-up probe had measured
    29.1-30.8 s per float64 cold compile against the 30 s target.)
    Each block's segment of a row is added along j, a vectorized loop per block, panel after
    panel, so that every block's panel is read as one contiguous stretch; the sums keep their
    order. Against the sum over blocks innermost, rows outermost (same bits): alone, wide
    3.07 → 0.99 ms (float32, 8 blocks) and 4.86 → 1.36 ms (float64, 4 blocks), mnist 0.73 →
    0.16 and 1.22 → 0.50 ms; end to end, two threads, paired medians over 9-11 calls: float32
    wide 0.973×, deep 0.98×, ex4 0.954×, mnist 1.006×; float64 wide 0.984×, mnist 0.982×.
    (Measured in an earlier stop with rows outermost over the float64 panels: 1.02-1.05×
    slower.)
    """
    n_blocks = padded_deltas.shape[0]
    _, _, _, C, CL, _, PANELS = _shapes(padded_deltas)
    start = 0
    for l in range(sizes.shape[0] - 1):
        n_in = sizes[l] + 1
        rows, cols = layout[l, 0], layout[l, 1]
        p0 = 0
        while p0 < n_in:  # panel by panel: each block's panel is one contiguous stretch
            width = cols if not PANELS else C if p0 + C <= cols else CL
            for r in range(sizes[l + 1]):
                target = start + r * n_in
                source = offsets[l] + p0 * rows + r * width - p0
                row = grad[target + p0 : target + min(p0 + width, n_in)]
                first = padded_deltas[0, source + p0 : source + p0 + row.shape[0]]
                for j in range(row.shape[0]):
                    row[j] = first[j]
                for b in range(1, n_blocks):
                    block = padded_deltas[b, source + p0 : source + p0 + row.shape[0]]
                    for j in range(row.shape[0]):
                        row[j] += block[j]
            p0 += width
        start += sizes[l + 1] * n_in


def _tiled_sums(theta, sizes, layout, X, labels, Y, grad, proba, n_blocks, m, lam):
    """(Σ_i cost_i, penalty) returned and grad = Σ_i Δ_i / m + (λ/m) Θ written (when it has
    length P; see :func:`normalize`), the sums taken block by block; (NaN, NaN) returned, nothing
    computed, when θ has a NaN or inf. With m = 1 and λ = 0, grad gets the sums themselves,
    exactly, and the penalty is 0. J = Σ cost / m + penalty is left to the caller: added here,
    LLVM may fuse it with the penalty's last multiply (``contract``), and J would then differ in
    its last bit from the same sum formed after ``partial_sums``.

    The serial twin of ``_tiled_sums_parallel``: the same ``n_blocks`` blocks, each with its own
    Δ, added in block order, so the two give bitwise the same result. Used for a single block
    (no thread launch: 3.4 vs 9.5 µs on tiny in PERF-NOTES) and wherever a parallel launch is
    unsafe or unwanted (one thread, a forked child of a process that ran OpenMP threads).
    """
    padded, offsets, finite = _pad_weights(theta, sizes, layout)
    if not finite:
        return np.nan, np.nan  # the wrapper names the offending entry
    Deltas = np.empty((n_blocks, offsets[sizes.shape[0] - 1] if grad.shape[0] else 0), theta.dtype)
    cost = 0.0
    for b in range(n_blocks):
        cost += _tiled_block(
            b, n_blocks, padded, offsets, sizes, layout, X, labels, Y, Deltas, proba
        )
    if grad.shape[0]:
        _unpad_sum(Deltas, offsets, sizes, layout, grad)
    return cost, normalize(theta, sizes, grad, m, lam, grad)


def _tiled_sums_parallel(theta, sizes, layout, X, labels, Y, grad, proba, n_blocks, m, lam):
    """As ``_tiled_sums``, with the blocks run in parallel (then summed as there).

    The blocks are split evenly over the threads, numba's default. Handed out one at a time
    instead (``numba.set_parallel_chunksize(1)`` around the loop; same bits), two threads,
    paired medians over 21 calls: float32 mnist, wide, ex4, deep and digits 1.0-1.01×.
    """
    padded, offsets, finite = _pad_weights(theta, sizes, layout)
    if not finite:
        return np.nan, np.nan
    Deltas = np.empty((n_blocks, offsets[sizes.shape[0] - 1] if grad.shape[0] else 0), theta.dtype)
    costs = np.zeros(n_blocks)
    for b in prange(n_blocks):
        costs[b] = _tiled_block(  # b as int64: one compiled signature for both entry points
            np.int64(b), n_blocks, padded, offsets, sizes, layout, X, labels, Y, Deltas, proba
        )
    if grad.shape[0]:
        _unpad_sum(Deltas, offsets, sizes, layout, grad)
    cost = 0.0
    for b in range(n_blocks):
        cost += costs[b]
    return cost, normalize(theta, sizes, grad, m, lam, grad)


@numba.njit(**_OPTIONS)
def normalize(theta, sizes, Delta, m, lam, grad):
    """DESIGN.md's last step, in one pass: grad = Δ/m + (λ/m) Θ on non-bias weights (column 0
    of every Θ^(l) is not regularized); returns the penalty (λ/2m) Σ_{j≥1} Θ², in float64.

    theta: (P,) in the compute dtype. Delta: (P,) sums over the m examples (any float dtype), or
    (0,) for no gradient; it may be grad itself. grad: (P,) or (0,), written, in θ's dtype.
    Computed in float64. With m = 1 and λ = 0, grad = Δ and the penalty is 0, exactly: the
    kernels end with this step, and give their plain sums that way. With λ = 0 the penalty is 0
    whatever θ (Σ Θ² may overflow for finite weights beyond 1e154; 0 × inf would be NaN).
    """
    want_grad = grad.shape[0] > 0
    F = grad.dtype.type
    scale = lam / m
    penalty = 0.0
    row = 0
    for l in range(sizes.shape[0] - 1):
        n_in = sizes[l] + 1
        for _ in range(sizes[l + 1]):
            if want_grad:
                grad[row] = F(Delta[row] / m)  # the bias weight
            for p in range(row + 1, row + n_in):
                w = np.float64(theta[p])
                penalty += w * w
                if want_grad:
                    grad[p] = F(Delta[p] / m + scale * w)
            row += n_in
    return lam / (2 * m) * penalty if lam > 0 else 0.0


# --------------------------------------------------------------------------------------------
# The literal kernel


def _literal_sums(theta, sizes, layout, X, labels, Y, grad, proba, n_blocks, m, lam):
    """The seed's loop, one example at a time, exactly as DESIGN.md writes it (serial).

    Same arguments and results as ``_tiled_sums`` (``layout`` and ``n_blocks`` unused: one pass
    over the examples in order); (NaN, NaN) when θ is not finite. Kept as the readable
    reference path, ``kernel="literal"``; the tiled kernel computes the same sums, faster.
    """
    F = theta.dtype.type
    one = F(1.0)
    zero = F(0.0)
    n_layers = sizes.shape[0] - 1
    K = sizes[n_layers]
    want_grad = grad.shape[0] > 0
    use_labels = labels.shape[0] > 0
    has_targets = use_labels or Y.shape[0] > 0
    w_off = np.zeros(n_layers + 1, np.int64)  # Θ^(l) starts at theta[w_off[l]]
    a_off = np.zeros(n_layers + 2, np.int64)  # a^(l) is a[a_off[l] : a_off[l + 1]]
    for l in range(n_layers):
        w_off[l + 1] = w_off[l] + sizes[l + 1] * (sizes[l] + 1)
    for l in range(n_layers + 1):
        a_off[l + 1] = a_off[l] + sizes[l]
    a = np.zeros(a_off[n_layers + 1], theta.dtype)
    z_L = np.zeros(K, theta.dtype)
    delta = np.zeros(a_off[n_layers + 1], theta.dtype)  # δ^(l) is delta[a_off[l] : a_off[l+1]]
    grad[:] = zero
    for p in range(theta.shape[0]):
        if not np.isfinite(theta[p]):
            return np.nan, np.nan
    cost = 0.0
    for i in range(X.shape[0]):
        # 1. a^(1) = x^(i); forward pass to a^(L).
        for j in range(sizes[0]):
            a[j] = X[i, j]
        for l in range(n_layers):
            n_in = sizes[l] + 1
            for r in range(sizes[l + 1]):
                w = w_off[l] + r * n_in
                z = theta[w]
                for j in range(sizes[l]):
                    z += theta[w + 1 + j] * a[a_off[l] + j]
                a[a_off[l + 1] + r] = one / (one + np.exp(-z))
                if l == n_layers - 1:
                    z_L[r] = z
        if proba.shape[0] > 0:
            for k in range(K):
                proba[i, k] = a[a_off[n_layers] + k]
        if not has_targets:
            continue
        # 2. δ^(L) = a^(L) − y^(i), and the example's cost from z^(L).
        for k in range(K):
            if use_labels:
                y = F(labels[i]) if K == 1 else (one if labels[i] == k else zero)
            else:
                y = Y[i, k]
            e = np.exp(-abs(z_L[k]))
            cost += (max(z_L[k], zero) - y * z_L[k]) + np.log1p(e)  # the small term last
            # δ^(L) = a^(L) − y over a's denominator, as in _tiled_block: no cancellation
            s = one if z_L[k] >= zero else zero
            delta[a_off[n_layers] + k] = ((s - y) + (one - s) * e - y * e) / (one + e)
        if not want_grad:
            continue
        for l in range(n_layers - 1, -1, -1):
            n_in = sizes[l] + 1
            # 4. Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
            for r in range(sizes[l + 1]):
                d = delta[a_off[l + 1] + r]
                w = w_off[l] + r * n_in
                grad[w] += d
                for j in range(sizes[l]):
                    grad[w + 1 + j] += d * a[a_off[l] + j]
            # 3. δ^(l) = ((Θ^(l))ᵀ δ^(l+1))_{1:} .* g'(z^(l)), g' = a^(l) .* (1 − a^(l))
            if l > 0:
                for j in range(sizes[l]):
                    s = zero
                    for r in range(sizes[l + 1]):
                        s += theta[w_off[l] + r * n_in + 1 + j] * delta[a_off[l + 1] + r]
                    a_j = a[a_off[l] + j]
                    delta[a_off[l] + j] = s * a_j * (one - a_j)
    # 5. D = Δ/m + (λ/m) Θ and the penalty (λ/2m) Σ Θ², over non-bias weights
    return cost, normalize(theta, sizes, grad, m, lam, grad)


# --------------------------------------------------------------------------------------------
# Lazy compilation

KERNELS = ("tiled", "literal")
_ENTRY_POINTS = {  # (kernel, parallel) -> Python function
    ("tiled", False): _tiled_sums,
    ("tiled", True): _tiled_sums_parallel,
    ("literal", False): _literal_sums,
}
_compiled: dict[tuple[np.dtype, str, bool], Any] = {}
_compile_lock = threading.Lock()


def _signature(dtype: np.dtype) -> Any:
    """(theta, sizes, layout, X, labels, Y, grad, proba, n_blocks, m, lam) -> (Σ cost, penalty)."""
    F = numba.from_dtype(dtype)
    readonly_1d = types.Array(F, 1, "C", readonly=True)
    readonly_2d = types.Array(F, 2, "C", readonly=True)
    ints = types.Array(types.int64, 1, "C", readonly=True)
    ints_2d = types.Array(types.int64, 2, "C", readonly=True)
    args = [readonly_1d, ints, ints_2d, readonly_2d, ints, readonly_2d, F[::1], F[:, ::1]]
    result = types.UniTuple(types.float64, 2)
    return result(*args, types.int64, types.float64, types.float64)


def slp_available() -> bool:
    """Whether this numba has the (internal) SLP vectorizer switch fastbp compiles with."""
    return hasattr(numba.config, "SLP_VECTORIZE")


@contextmanager
def _slp_vectorization():
    """Switch LLVM's SLP vectorizer on for fastbp's own compilation only.

    numba reads ``config.SLP_VECTORIZE`` whenever it builds an optimization pipeline; the switch
    is held under numba's global compiler lock, so no other thread compiles anything while it is
    on, and it is restored in ``finally``. Cached kernels keep the code they were compiled with.
    SLP gave 3–14× on the register-blocked loops (PERF-NOTES). Where the setting is missing the
    kernels still compile, slower (``fastbp --info`` says so).
    """
    with global_compiler_lock:
        if not slp_available():
            yield
            return
        old = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        try:
            yield
        finally:
            numba.config.SLP_VECTORIZE = old


def _parallel_options(parallel: bool) -> bool | dict[str, bool]:
    """numba's ``parallel`` option: the explicit ``prange`` loops only, or False.

    With plain ``parallel=True`` numba also turns array expressions into parallel loops: in an
    earlier version of the parallel entry point, the ``np.zeros`` of the block Δ copies and costs
    and a ``sizes[1:].sum()`` became three more gufuncs, each compiled and optimized by LLVM on
    its own (about 4 s of that entry point's cold compile), for loops far too short to run in
    parallel.
    """
    if not parallel:
        return False
    automatic = ("comprehension", "reduction", "inplace_binop", "setitem", "numpy", "stencil")
    return {"prange": True, "fusion": False, **dict.fromkeys(automatic, False)}


def kernel(dtype: Any, parallel: bool, which: str = "tiled") -> Any:
    """The compiled entry point for ``dtype`` (float64/float32), serial or parallel, tiled/literal.

    Compiled, or loaded from numba's on-disk cache, on first use: one dtype and one entry point
    at a time, so a float64 user never waits for float32 kernels, nor a small problem for the
    parallel kernel. Writable arrays are accepted where the signature says read-only.

    Cold compile, float64, measured and not taken: ``_tiled_block`` compiled first, then the
    entry point alone with ``numba.config.OPT`` = 1 and no vectorizers (its linked kernels are
    optimized already): parallel entry point 8.4 against 9.5 s, serial within noise; with OPT
    = 0, 5.1 s, but numba then refuses to cache it (dead loads of the callees' dispatcher
    addresses stay in the module). ``inline="always"`` on the product and Δ-update overloads:
    serial entry point 27.6 against 14.4 s. The same code's cold compile varies 22-31 s on
    this machine from one minute to the next.
    """
    key = (np.dtype(dtype), which, parallel and which == "tiled")
    dispatcher = _compiled.get(key)
    if dispatcher is None:
        with _compile_lock:
            dispatcher = _compiled.get(key)
            if dispatcher is None:
                function = _ENTRY_POINTS[key[1:]]
                options = _parallel_options(key[2])  # numba's stubs say bool; it takes a dict
                with _slp_vectorization():
                    dispatcher = numba.njit(
                        _signature(key[0]),
                        parallel=options,  # type: ignore[arg-type]
                        **_OPTIONS,
                    )(function)
                _compiled[key] = dispatcher
    return dispatcher


def _prepare_numba() -> None:
    """Run part of numba's one-time per-process set-up now, at import.

    numba's first compilation or cache load in a process refreshes its registries (about 0.6 s on
    this project's machine, before the cached kernel itself loads in 0.06 s). Two pieces of that
    run here: importing scipy.linalg's BLAS module, which numba's BLAS check needs (0.2 s: scipy
    clones numpy's namespace, importing numpy.f2py), and the typing registries, fastbp's
    overloads included. New process, warm cache, ex4 float64, 8 runs each: ``import fastbp``
    0.34–0.57 s → 0.56–0.84 s, first ``cost_and_grad`` 0.54–0.72 s → 0.27–0.42 s. The rest
    (numba's lowering registries and runtime) stays with the first call: all of it here made
    the import alone 0.87–1.10 s.
    """
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (what numba.np.linalg.ensure_blas imports)
    except ImportError:  # pragma: no cover - scipy is a dependency; numba copes without it
        pass
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()


_prepare_numba()
