"""Tests of the kernels' internals: the layer table, block shapes and counts, padding, the
in-register transpose, log1p, the serial and parallel entry points, and kernel="auto".

The oracle tests (every kernel against tests/reference.py and central differences) are in
test_exactness.py; these check the pieces the tiled kernel is built from."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _plan, kernels
from fastbp._layout import COLS, PADDED, ROWS, THETA, TRANSPOSED, layer_table
from fastbp.kernels import activations, compile, simd, tiled
from fastbp.kernels.literal import normalize

import reference
from strategies import Problem

TOL = {np.float64: 1e-12, np.float32: 1e-4}


def assert_tiled_matches_reference(problem, dtype):
    """The tiled kernel ("auto" would run small problems through the literal loop)."""
    p = problem.astype(dtype)
    J, g = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, dtype=dtype, kernel="tiled")(p.theta)
    J_ref, g_ref = reference.cost_and_grad(*p.args())
    assert abs(J - J_ref) / abs(J_ref) <= TOL[dtype]
    assert reference.max_rel(g, g_ref) <= TOL[dtype]


def test_layer_table_maps_theta_and_the_padded_buffers():
    """Offsets of θ as the flat layout defines them; padded shapes and offsets that follow
    each other without gaps; the last row holds the ends."""
    sizes = (7, 5, 9, 3)
    table = layer_table(sizes, 2, 4, 8)
    assert not table.flags.writeable
    np.testing.assert_array_equal(table[:, THETA], [0, 40, 94, 124])
    np.testing.assert_array_equal(table[:-1, ROWS], [6, 10, 4])
    np.testing.assert_array_equal(table[:-1, COLS], [8, 8, 16])  # 7 + 1; 6 + 1; 10 + 1
    np.testing.assert_array_equal(table[:, PADDED], [0, 48, 128, 192])
    np.testing.assert_array_equal(table[:, TRANSPOSED], [192, 192, 272, 336])
    assert table[-1, THETA] == fastbp.n_params(sizes)


def test_register_block_shapes_fit_together():
    """Padded rows are a multiple of RP and at least R, columns a multiple of CL: every block
    that ends a loop fits, a product's last block of R rows stays within the layer, and the
    columns past the last whole C-panel are whole CL-panels."""
    shapes = [s for by_dtype in simd.BLOCK_SHAPES_BY_ISA.values() for s in by_dtype.items()]
    for dtype, (R, TB, RD, C, CL, RP, PANELS) in shapes:
        assert PANELS in (0, 1)
        assert simd.TILE % TB == 0
        assert RD % RP == 0
        assert C % CL == 0
        for sizes in [(2, 1), (1, 1, 1), (3, 2, 1), (30, 7, 4)]:
            table = kernels.padded_table(sizes, np.dtype(dtype))
            rows, cols = table[:-1, ROWS], table[:-1, COLS]
            assert np.all(rows >= R)
            assert np.all(rows % RP == 0)
            assert np.all(cols % CL == 0)
            assert np.all(cols[1:] > rows[:-1])  # the bias and every padded unit below


REMAINDER_SIZES = {  # per ISA and dtype: layer sizes that leave every remainder below
    ("avx2", np.float64): (20, 38, 5),
    ("avx2", np.float32): (31, 38, 5),
    ("avx512", np.float64): (31, 38, 5),
    ("avx512", np.float32): (31, 38, 5),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_register_block_remainders(dtype, rng):
    """Padded sizes that leave remainders: rows past the last full Δ block and, where R does
    not divide them, a product's last block that overlaps the one before (float64), and Δs
    that end in every possible number (1 … C/CL − 1) of narrower CL-column strips after whole
    C-column ones, for the block shapes of the ISA the kernels compile for."""
    sizes = REMAINDER_SIZES[simd.ISA, dtype]
    table = kernels.padded_table(sizes, np.dtype(dtype))
    (rows_1, cols_1), (rows_2, cols_2) = table[:-1, [ROWS, COLS]]
    R, _, RD, C, CL, RP, _ = simd.BLOCK_SHAPES[np.dtype(dtype)]
    assert rows_1 % RD
    assert rows_2 % RD
    if RP != R:
        assert rows_1 % R
        assert rows_2 % R
    assert cols_1 >= C
    assert {cols_1 % C // CL, cols_2 % C // CL} == set(range(1, C // CL))
    theta = rng.normal(scale=0.5, size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (100, sizes[0]))
    y = rng.integers(0, 4, 100)
    assert_tiled_matches_reference(Problem(theta, X, y, sizes, 0.7), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes", [(2, 1), (5, 3), (3, 2, 1), (1, 1, 1), (4, 2, 2, 3)])
def test_tiled_kernel_on_layers_smaller_than_a_product_block(sizes, dtype, rng):
    """Layers with fewer units than a product block's R rows (padded up to R, their extra rows
    computed from zero weights), one-layer networks and single outputs, through the tiled
    kernel ("auto" would run these small problems through the literal loop)."""
    m = 70
    theta = rng.normal(scale=0.8, size=fastbp.n_params(sizes))
    X = rng.uniform(-1, 1, (m, sizes[0]))
    y = rng.integers(0, 2 if sizes[-1] == 1 else sizes[-1], m)
    assert_tiled_matches_reference(Problem(theta, X, y, sizes, 0.7), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_auto_runs_the_literal_loop_on_toy_problems_only(dtype, rng, monkeypatch):
    """kernel="auto" (the default) runs the literal kernel up to m × P = LITERAL_MAX_WORK and
    the tiled kernel above, with bitwise that kernel's result, from every entry point."""
    ran = []
    compiled = kernels.kernel

    def kernel(dtype, parallel, which="tiled", what="sums"):
        ran.append((which,))
        return compiled(dtype, parallel, which, what)

    monkeypatch.setattr(kernels, "kernel", kernel)
    sizes = (2, 4, 1)
    P = fastbp.n_params(sizes)
    largest = _plan.LITERAL_MAX_WORK // P
    theta = rng.normal(size=P).astype(dtype)
    for m, expected in [(1, "literal"), (largest, "literal"), (largest + 1, "tiled")]:
        X = rng.uniform(-1, 1, (m, 2)).astype(dtype)
        y = rng.integers(0, 2, m)
        J, g = fastbp.Objective(X, y, sizes, 0.5, dtype=dtype, kernel=expected)(theta)
        ran.clear()
        J_auto, g_auto = fastbp.Objective(X, y, sizes, 0.5, dtype=dtype)(theta)
        assert ran == [(expected,)], (m, ran)
        assert J_auto == J, m
        assert np.array_equal(g_auto, g), m
        assert fastbp.cost_and_grad(theta, X, y, sizes, 0.5)[0] == J
        fastbp.predict_proba(theta, X, sizes)
        assert ran[1:] == [(expected,)] * 2, (m, ran)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_log1p_is_within_two_ulps(dtype, rng):
    """The kernels' vectorizable log1p (the cost's log term) against an extended-precision
    log1p, over every q it can meet: 0, the smallest normal numbers, and up to 2^64."""

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def log1p_all(q, out):
        for i in range(q.shape[0]):
            out[i] = activations.log1p(q[i])

    tiny = np.finfo(dtype).tiny
    special = [0.0, tiny, 1e-30, 1e-17, 1e-8, 1e-3, 0.1, 2**0.5 - 1, 0.5, 1.0, 3.0, 1e10, 2.0**64]
    q = np.concatenate(
        [special, 10 ** rng.uniform(-30, 19, 20000), rng.uniform(0, 2, 20000)]
    ).astype(dtype)
    out = np.empty_like(q)
    log1p_all(q, out)
    exact = np.log1p(q.astype(np.longdouble))
    error = np.abs(out - exact) / np.maximum(exact, np.longdouble(tiny))
    assert out[0] == 0
    assert error.max() <= 2 * np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transpose_block_moves_every_element(dtype, rng):
    """The kernels' in-register V × V transpose, at offsets inside larger arrays and views with
    a row stride of their own: exactly the block transposed, nothing else written."""

    @numba.njit
    def transpose(src, s0, s1, dst, d0, d1):
        simd.transpose_block(src, s0, s1, dst, d0, d1)

    V = simd.TRANSPOSE_BYTES // np.dtype(dtype).itemsize
    source = rng.normal(size=(3, 19, 23)).astype(dtype)
    for s0, s1, d0, d1 in [(0, 0, 0, 0), (5, 3, 2, 7), (18 - V, 21 - V, 11 - V, 16 - V)]:
        target = np.full((2, 11, 17), np.nan, dtype)
        transpose(source[1, 1:, 2:], s0, s1, target[1, :, 1:], d0, d1)
        expected = np.full_like(target, np.nan)
        block = source[1, 1 + s0 : 1 + s0 + V, 2 + s1 : 2 + s1 + V]
        expected[1, d0 : d0 + V, 1 + d1 : 1 + d1 + V] = block.T
        np.testing.assert_array_equal(target, expected)
        transpose(source[2], s0, s1, target[0], d0, d1)  # C-contiguous views
        expected[0, d0 : d0 + V, d1 : d1 + V] = source[2, s0 : s0 + V, s1 : s1 + V].T
        np.testing.assert_array_equal(target, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_padded_weights_and_their_transposed_copies(dtype, rng):
    """``pad_weights``: each Θ^(l) zero-padded where the layer table says, then Θ^(l)ᵀ of the
    hidden layers padded alike; finiteness reported over all of θ."""
    sizes = (7, 5, 9, 3)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(dtype)
    table = kernels.padded_table(sizes, np.dtype(dtype))
    padded, finite = tiled.pad_weights(theta, table)
    assert finite
    assert padded.shape == (table[-1, TRANSPOSED],)
    for l, weights in enumerate(fastbp.unpack(theta, sizes)):
        rows, cols = table[l, ROWS], table[l, COLS]
        expected = np.zeros((rows, cols), dtype)
        expected[: weights.shape[0], : weights.shape[1]] = weights
        W = padded[table[l, PADDED] : table[l + 1, PADDED]].reshape(rows, cols)
        np.testing.assert_array_equal(W, expected)
        WT = padded[table[l, TRANSPOSED] : table[l + 1, TRANSPOSED]]
        if l > 0:
            np.testing.assert_array_equal(WT.reshape(cols, rows), expected.T)
        else:
            assert WT.size == 0
    theta[11] = np.inf
    assert not tiled.pad_weights(theta, table)[1]


CACHED_SIGMOID = """
from fastbp.kernels.compile import jit
from fastbp.kernels.activations import sigmoid


@jit
def g(z):
    return sigmoid(z)


print(g(0.0))
"""


def test_a_change_to_any_kernel_source_invalidates_the_cached_kernels(tmp_path):
    """numba invalidates a cached function when its own file changes, not when a file it calls
    into does: the kernels are keyed by all their sources (``compile.KernelCache``). A kernel
    function cached with a copy of fastbp whose activations.py then changes g(z) must compile
    again."""
    copy = tmp_path / "src" / "fastbp"
    shutil.copytree(
        Path(fastbp.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "probe.py").write_text(CACHED_SIGMOID)
    path = os.pathsep.join([str(copy.parent), str(tmp_path)])
    env = {**os.environ, "PYTHONPATH": path, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def g_of_zero():
        run = subprocess.run(
            [sys.executable, "-c", "import probe"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=True,
            timeout=600,
        )
        return float(run.stdout)

    assert g_of_zero() == 0.5
    assert g_of_zero() == 0.5  # from the cache
    source = copy / "kernels" / "activations.py"
    text = source.read_text()
    assert "return one / (one + e) * F(z >= c_low)" in text
    source.write_text(text.replace("return one / (one + e)", "return (one + one) / (one + e)"))
    assert g_of_zero() == 1.0
    assert all(
        isinstance(dispatcher._cache, compile.KernelCache)
        for dispatcher in (tiled.tiled_block, tiled.pad_weights, tiled.unpad_sum, normalize)
    )
