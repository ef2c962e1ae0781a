"""The tiled kernel's vector building blocks: register blocks and transposes.

Everything here is inlined into ``tiled.py``'s loops and written so that LLVM (with the SLP
vectorizer on, see ``compile.py``) turns it into vector code: no libm calls, no branches in
elementwise loops, literal trip counts for the register blocks.

The register blocks are sized for the vector registers of the CPU the kernels compile for
(:data:`ISA`): numba's target, ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` when set, else this
machine's. "avx512": 32 registers of 512 bits; "avx2" (also every CPU without AVX-512): 16 of
256 bits. Only the target's shapes compile. Per ISA and dtype,
``BLOCK_SHAPES[dtype] = (R, TB, RD, C, CL, RP, PANELS)``:

    R × TB   units × examples of a product block (the forward and δ products); a tile of TILE
             examples is stored as TILE / TB sub-tiles of TB examples each
    RD × C   rows × columns of a Δ-update block; a Δ is updated in column strips of C columns,
             then of CL (its columns are padded to a multiple of CL, C is a multiple of CL)
    RP       Θ's rows are padded to a multiple of RP and to at least R; a Δ strip's rows are
             covered by blocks of RD rows, then of RP; a product's last block of R rows overlaps
             the one before it where R does not divide the rows (same bits, computed twice)
    PANELS   1: each block's padded Δ is stored strip by strip, each strip's rows × columns
             contiguous; 0: row-major like Θ
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .compile import ISA, OVERLOAD_OPTIONS, jit, kernel_features

__all__ = [
    "BLOCK_SHAPES",
    "ISA",
    "TILE",
    "TRANSPOSE_BYTES",
    "block_shapes",
    "delta_update",
    "example_major",
    "product_block",
    "product_pair",
    "transpose_block",
]

TILE = 32  # examples per tile (docs/decisions.md#tile)


# Measured per ISA and dtype (docs/decisions.md#block-shapes, #avx512-shapes); PANELS: on AVX2
# float64's Δ by strips gained and float32's lost (docs/decisions.md#delta-panels).
BLOCK_SHAPES_BY_ISA: dict[str, dict[np.dtype, tuple[int, ...]]] = {
    "avx2": {
        np.dtype(np.float64): (3, 16, 3, 16, 8, 1, 1),
        np.dtype(np.float32): (2, 32, 4, 24, 8, 2, 0),
    },
    "avx512": {
        np.dtype(np.float64): (4, 32, 4, 24, 8, 1, 1),
        np.dtype(np.float32): (4, 32, 4, 24, 8, 2, 1),
    },
}
BLOCK_SHAPES = BLOCK_SHAPES_BY_ISA[ISA]


@intrinsic
def stack_empty(typingctx, size, dtype):
    """An uninitialized stack array of ``size`` (a literal) elements: a register block.

    numba has no stack arrays; heap scratch (np.empty) stays in memory, while an alloca of
    literal size is promoted to registers once the loops over it are unrolled
    (docs/decisions.md#stack-blocks).
    """
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        element = context.get_value_type(dtype.dtype)
        count = context.get_constant(types.intp, size.literal_value)
        return cgutils.alloca_once(builder, element, size=count)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


def block_shapes(W):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(block_shapes)
def _block_shapes_overload(W):
    """(R, TB, RD, C, CL, RP, PANELS) of W's dtype, as compile-time constants."""
    shapes = BLOCK_SHAPES[np.dtype(str(W.dtype))]
    return lambda W: shapes


# --------------------------------------------------------------------------------- transposes

TRANSPOSE_BYTES = 32  # rows of a ``transpose_block`` block: one AVX2 register each


def shuffle_masks(V: int) -> list[tuple[int, int, list[int]]]:
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
def transpose_block(typingctx, src, s0, s1, dst, d0, d1):
    """dst[d0 + j, d1 + i] = src[s0 + i, s1 + j] for i, j < V, V = TRANSPOSE_BYTES / itemsize (8
    float32, 4 float64): a V × V block transposed in registers. src, dst: 2-d arrays with
    unit-stride rows; no bounds checks (the caller's loops keep the block inside both).

    V row loads, the shuffles of ``shuffle_masks``, V row stores: written as scalar copies,
    LLVM kept one element per load and store (docs/decisions.md#transpose).
    """
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)):
        return None
    if src.dtype != dst.dtype or src.ndim != 2 or dst.ndim != 2:
        return None
    V = TRANSPOSE_BYTES // np.dtype(str(src.dtype)).itemsize
    steps = shuffle_masks(V)

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


@jit
def example_major(cols, like, C):
    """A zeroed (TILE, ≥ cols) buffer of ``like``'s dtype with column 0 (the bias unit) all ones.

    Its row stride is never a multiple of 4 KiB, where the TILE rows would fall in one L1 set
    (docs/decisions.md#row-stride).
    """
    kernel_features()
    stride = cols + C if (cols * like.itemsize) % 4096 == 0 else cols
    buffer = np.zeros((TILE, stride), like.dtype)
    buffer[:, 0] = like.dtype.type(1.0)
    return buffer


# ---------------------------------------------------------------------------- register blocks


def product_block(W, i0, B, n_k, out):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(product_block, jit_options=OVERLOAD_OPTIONS)
def _product_block_overload(W, i0, B, n_k, out):
    """One register block of R units × TB examples of a layer product:

        out[i, t] = Σ_{k<n_k} W[i0 + i, k] B[k, t]      i < R, t < TB

    W: padded Θ^(l) (rows, cols) for the forward product, its transposed copy for the δ product.
    B: one sub-tile of the activations or δ, unit-major (units, TB). out: the same sub-tile of
    the layer's result (≥ R rows, TB), its row 0 is unit i0; written. Every weight is loaded
    once and serves TB examples; the block stays in registers. The nonlinearity is a separate
    pass: fused here, LLVM spilled accumulators (docs/decisions.md#product-block); the loops
    over row blocks and sub-tiles stay with the caller (#product-loops-in-caller).
    """
    R, TB = BLOCK_SHAPES[np.dtype(str(W.dtype))][:2]
    block = R * TB
    F = numba.np.numpy_support.as_dtype(W.dtype).type

    def impl(W, i0, B, n_k, out):
        kernel_features()
        s = numba.carray(stack_empty(block, W.dtype), (R, TB))
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


def product_pair(W, U, i0, B, C, n_k, out):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(product_pair, jit_options=OVERLOAD_OPTIONS)
def _product_pair_overload(W, U, i0, B, C, n_k, out):
    """:func:`product_block` of two products added, term after term in the order of k:

        out[i, t] = Σ_{k<n_k} W[i0 + i, k] B[k, t] + U[i0 + i, k] C[k, t]      i < R, t < TB

    The R-pass's V [1; a] + Θ [0; R{a}] and Vᵀ δ + Θᵀ R{δ} (``curvature.py``), with the block
    in registers once for both.
    """
    R, TB = BLOCK_SHAPES[np.dtype(str(W.dtype))][:2]
    block = R * TB
    F = numba.np.numpy_support.as_dtype(W.dtype).type

    def impl(W, U, i0, B, C, n_k, out):
        kernel_features()
        s = numba.carray(stack_empty(block, W.dtype), (R, TB))
        for i in range(R):
            for t in range(TB):
                s[i, t] = F(0.0)
        for k in range(n_k):
            b = B[k]
            c = C[k]
            for i in range(R):
                w = W[i0 + i, k]
                u = U[i0 + i, k]
                for t in range(TB):  # one product at a time: one FMA each
                    s[i, t] += w * b[t]
                    s[i, t] += u * c[t]
        for i in range(R):
            target = out[i]
            for t in range(TB):
                target[t] = s[i, t]

    return impl


def delta_update(D, r0, r1, d0, delta, AT, c0, RD, CD):  # pragma: no cover - overload below
    raise NotImplementedError


@overload(delta_update, jit_options=OVERLOAD_OPTIONS, prefer_literal=True)
def _delta_update_overload(D, r0, r1, d0, delta, AT, c0, RD, CD):
    """Rank-TILE updates of RD × CD blocks of a Δ, for the rows r0 ≤ r < r1:

        D[r, d0 + c] += Σ_t δ[r, t] AT[t, c0 + c]      c < CD, t < TILE

    D: one layer's padded Δ (rows, cols), or its column strip c0, c0 + 1, … (rows, CD; d0 = 0);
    written. delta: by sub-tiles (TILE / TB, rows, TB). AT: example-major activations [1; a] of
    the layer below (TILE, ≥ cols). RD, CD: literals; r1 − r0 is a multiple of RD. Each example's
    δ column meets that example's own activations: Δ += δ [1; a]ᵀ, summed over the tile in
    example order. AT is read at an unsigned index: numba wraps only signed indices around
    (docs/decisions.md#delta-update). The loop over row blocks is in here (#delta-row-loop).
    """
    if not (isinstance(RD, types.IntegerLiteral) and isinstance(CD, types.IntegerLiteral)):
        return None
    n_rows, n_cols = RD.literal_value, CD.literal_value
    block = n_rows * n_cols
    F = numba.np.numpy_support.as_dtype(D.dtype).type
    TB = BLOCK_SHAPES[np.dtype(str(D.dtype))][1]
    n_sub = TILE // TB

    def impl(D, r0, r1, d0, delta, AT, c0, RD, CD):
        kernel_features()
        for rb in range(r0, r1, n_rows):
            a = numba.carray(stack_empty(block, D.dtype), (n_rows, n_cols))
            for i in range(n_rows):
                for c in range(n_cols):
                    a[i, c] = F(0.0)
            for p in range(n_sub):
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
