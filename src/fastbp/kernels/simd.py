"""The tiled kernel's vector building blocks: register blocks, transposes, exp, log1p, activations.

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

from .._layout import RELU, SIGMOID, TANH
from .compile import ISA, OVERLOAD_OPTIONS, jit, kernel_features

__all__ = [
    "BLOCK_SHAPES",
    "ISA",
    "TILE",
    "TRANSPOSE_BYTES",
    "activate_rows",
    "block_shapes",
    "delta_update",
    "example_major",
    "exp",
    "log1p",
    "product_block",
    "sigmoid",
    "tanh",
    "times_slope",
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


@intrinsic
def bitcast(typingctx, value, target):
    """Reinterpret the bits of a scalar as ``target`` (same width): float64 ↔ int64 etc."""
    to = target.dtype if isinstance(target, types.NumberClass) else target

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(value, target), codegen


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


# ------------------------------------------------------------------- exp, log1p and the sigmoid


def exp(x):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(exp, jit_options=OVERLOAD_OPTIONS)
def _exp_overload(x):
    """e^x without a libm call, so loops over it vectorize (docs/decisions.md#vector-math).

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
        bits = bitcast(kd, itype)
        n = kd - c_shift
        r = x - n * c_hi - n * c_lo
        p = inverse_factorials[0]
        for c in inverse_factorials[1:]:
            p = p * r + c
        scale = bitcast(itype((bits + itype(bias)) << itype(mantissa_bits)), F)
        return p * scale

    return impl


def log1p(q):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(log1p, jit_options=OVERLOAD_OPTIONS)
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
        bits = bitcast(u, I)
        m = bitcast(I((bits & I(mask)) | I(one_bits)), F)  # u / 2^k, in [1, 2)
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


def sigmoid(z):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(sigmoid, jit_options=OVERLOAD_OPTIONS)
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
        e = exp(min(max(-z, -c_high), -c_low))
        # a mask, not a branch: a branch here keeps the loop from vectorizing
        return one / (one + e) * F(z >= c_low)

    return impl


def tanh(z):  # pragma: no cover - replaced by the overload below
    raise NotImplementedError


@overload(tanh, jit_options=OVERLOAD_OPTIONS)
def _tanh_overload(z):
    """tanh z = sign(z) (1 − e) / (1 + e), e = e^(−2|z|): branch-free, so it vectorizes; ±1
    exactly where e vanishes against 1. Near 0 its error is absolute, a few ulps of 1 (that of
    e), not relative to tanh z."""
    if z == types.float64:
        F, cap = np.float64, 708.0
    elif z == types.float32:
        F, cap = np.float32, 87.0
    else:
        return None
    one, two, zero, c_cap = F(1.0), F(2.0), F(0.0), F(cap)

    def impl(z):
        e = exp(max(-two * abs(z), -c_cap))
        t = (one - e) / (one + e)
        return t if z >= zero else -t

    return impl


@jit
def activate_rows(g, A):
    """A ← g(A), elementwise: a hidden layer's products z become its activations a = g(z);
    g a code of ``fastbp._layout`` (SIGMOID, TANH, RELU; IDENTITY leaves A as it is)."""
    kernel_features()
    zero = A.dtype.type(0.0)
    for i in range(A.shape[0]):
        row = A[i]
        if g == SIGMOID:
            for t in range(row.shape[0]):
                row[t] = sigmoid(row[t])
        elif g == TANH:
            for t in range(row.shape[0]):
                row[t] = tanh(row[t])
        elif g == RELU:
            for t in range(row.shape[0]):
                row[t] = max(row[t], zero)


@jit
def times_slope(g, D, A):
    """D ← D .* g'(z), from a = g(z) in A: (Θᵀ δ) times a (1 − a) (SIGMOID), 1 − a² (TANH),
    [a > 0] (RELU, so dead units give exact zeros), 1 (IDENTITY): the δ recurrence's last step."""
    kernel_features()
    one = A.dtype.type(1.0)
    zero = A.dtype.type(0.0)
    for i in range(D.shape[0]):
        d = D[i]
        a = A[i]
        if g == SIGMOID:
            for t in range(d.shape[0]):
                d[t] = d[t] * (a[t] * (one - a[t]))
        elif g == TANH:
            for t in range(d.shape[0]):
                d[t] = d[t] * (one - a[t] * a[t])
        elif g == RELU:
            for t in range(d.shape[0]):
                d[t] = d[t] if a[t] > zero else zero


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
