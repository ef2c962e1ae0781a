"""exp, log1p and the activations, inlined into the tiled kernel's elementwise loops.

Written without libm calls and without branches in the elementwise loops, so that LLVM turns
each loop into vector code (docs/decisions.md#vector-math): exp and log1p are polynomials on
the float's bits, the sigmoid and tanh are built on exp, and the activations take their code
(``fastbp._layout``: SIGMOID, TANH, RELU, IDENTITY) per layer, outside the loops.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from .._layout import RELU, SIGMOID, TANH
from .compile import OVERLOAD_OPTIONS, jit, kernel_features

__all__ = [
    "activate_rows",
    "exp",
    "fma",
    "log1p",
    "sigmoid",
    "tanh",
    "times_slope",
    "times_slope_r",
]


@intrinsic
def bitcast(typingctx, value, target):
    """Reinterpret the bits of a scalar as ``target`` (same width): float64 ↔ int64 etc."""
    to = target.dtype if isinstance(target, types.NumberClass) else target

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(value, target), codegen


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


@intrinsic
def fma(typingctx, x, y, z):
    """x y + z with one rounding (LLVM's fma): a sum of two products written so, not left to
    the FMA contraction, which may pick either product, differently for each vector width
    (docs/decisions.md#hessp-fma)."""
    if not (x == y == z and isinstance(x, types.Float)):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return x(x, y, z), codegen


@jit
def times_slope_r(g, D, RD, A, RA):
    """The R-pass's step 3' beside step 3: from b = ((Θ)ᵀ δ)_{1:} in D and R{b} in RD,
    RD ← R{b} .* g' + b .* c .* R{a} and D ← b .* g', with g' and c = g''/g' from a in A and
    R{a} in RA: a (1 − a) and 1 − 2a (SIGMOID), 1 − a² and −2a (TANH), [a > 0] and 0 (RELU),
    1 and 0 (IDENTITY). The sum of products by :func:`fma`: the same bits for every ISA."""
    kernel_features()
    one = A.dtype.type(1.0)
    two = A.dtype.type(2.0)
    zero = A.dtype.type(0.0)
    for i in range(D.shape[0]):
        d = D[i]
        rd = RD[i]
        a = A[i]
        ra = RA[i]
        if g == SIGMOID:
            for t in range(d.shape[0]):
                slope = a[t] * (one - a[t])
                rd[t] = fma(rd[t], slope, d[t] * ((one - two * a[t]) * ra[t]))
                d[t] = d[t] * slope
        elif g == TANH:
            for t in range(d.shape[0]):
                slope = one - a[t] * a[t]
                rd[t] = fma(rd[t], slope, -(d[t] * (two * a[t] * ra[t])))
                d[t] = d[t] * slope
        elif g == RELU:
            for t in range(d.shape[0]):
                rd[t] = rd[t] if a[t] > zero else zero
                d[t] = d[t] if a[t] > zero else zero
