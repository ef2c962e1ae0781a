"""Bitwise-identical results whatever the thread count (docs/design.md, "Parallel, deterministic
accumulation")."""

import numba
import numpy as np
import pytest

import fastbp
from fastbp import kernels
from fastbp._layout import PADDED, network
from fastbp.kernels import tiled


def with_threads(n, f):
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return f()
    finally:
        numba.set_num_threads(old)


# (activation, output, weighted): today's network, and every activation and output once
MODELS = [
    ("sigmoid", "sigmoid", False),
    ("relu", "softmax", True),
    ("tanh", "identity", True),
    ("identity", "sigmoid", True),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: "-".join(map(str, model)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("sizes", "m"), [((20, 16, 5), 7777), ((8, 6, 6, 2), 4133)])
def test_one_thread_and_all_threads_are_bitwise_equal(dtype, sizes, m, model, rng):
    assert numba.config.NUMBA_NUM_THREADS >= 2
    P = fastbp.n_params(sizes)
    n_blocks = kernels.block_count(m, sizes, dtype)
    assert n_blocks > 1
    assert m % kernels.TILE != 0  # a partial last tile
    assert (m + kernels.TILE - 1) // kernels.TILE % n_blocks != 0  # blocks of unequal size
    theta = rng.normal(size=P).astype(dtype)
    X = rng.uniform(-1, 1, (m, sizes[0])).astype(dtype)
    activation, output, weighted = model
    y = rng.integers(0, sizes[-1], m)
    if output == "identity":
        y = rng.normal(size=(m, sizes[-1]))
    kwargs = {"activation": activation, "output": output}
    kwargs["sample_weight"] = rng.uniform(0, 2, m) if weighted else None
    runs = [
        with_threads(n, lambda: fastbp.cost_and_grad(theta, X, y, sizes, 0.3, **kwargs))
        for n in (1, numba.config.NUMBA_NUM_THREADS, 1, numba.config.NUMBA_NUM_THREADS)
    ]
    for J, g in runs[1:]:
        assert J == runs[0][0]
        assert g.tobytes() == runs[0][1].tobytes()


def test_block_count_depends_on_size_and_dtype_only():
    ex4, wide = (400, 25, 10), (784, 512, 512, 10)
    assert kernels.block_count(100, ex4, np.float64) == 1  # serial below 2 × 128 examples
    assert kernels.block_count(255, ex4, np.float64) == 1
    assert kernels.block_count(256, ex4, np.float64) == 2
    assert kernels.block_count(5000, ex4, np.float64) == 16
    # Powers of two only: 1797 examples could make 14 blocks of 128, they make 8.
    assert kernels.block_count(1797, ex4, np.float64) == 8
    assert kernels.block_count(1023, ex4, np.float64) == 4
    # Memory-bound: all padded per-block Δ copies within 32 MiB.
    delta_bytes = int(kernels.padded_table(wide, np.dtype(np.float64))[-1, PADDED]) * 8
    assert delta_bytes >= fastbp.n_params(wide) * 8
    fitting = tiled.MAX_BLOCK_DELTA_BYTES // delta_bytes
    expected = 1 << (fitting.bit_length() - 1)  # the largest power of two that fits
    assert expected <= fitting < 2 * expected
    assert kernels.block_count(10**6, wide, np.float64) == expected
    assert 1 < expected < kernels.block_count(10**6, wide, np.float32)
    assert kernels.block_count(10**6, (10**4, 10**3, 10), np.float64) == 1


@pytest.mark.parametrize("model", MODELS, ids=lambda model: "-".join(map(str, model)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_serial_twin_of_the_parallel_kernel_is_bitwise_equal(dtype, model, rng):
    """The serial entry runs the same blocks: a fallback to it never changes a bit."""
    sizes = (9, 7, 3)
    m = 3001
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(dtype)
    X = rng.uniform(-1, 1, (m, 9)).astype(dtype)
    activation, output, weighted = model
    labels = rng.integers(0, 3, m)
    Y = np.zeros((0, 3), dtype)
    if output == "identity":
        labels, Y = np.zeros(0, np.int64), rng.normal(size=(m, 3)).astype(dtype)
    weights = rng.uniform(0, 2, m).astype(dtype) if weighted else np.zeros(0, dtype)
    _, functions = network(sizes, activation, output)
    table = kernels.padded_table(sizes, np.dtype(dtype), functions)
    n_blocks = kernels.block_count(m, sizes, dtype)
    assert n_blocks > 1
    results = []
    for parallel in (False, True):
        grad = np.empty(theta.size, dtype)
        args = (theta, table, X, labels, Y, weights, grad, np.zeros((0, 3), dtype))
        sums = kernels.kernel(dtype, parallel)(*args, n_blocks, m, 0.3)
        results.append((sums, grad))
    assert results[0][0] == results[1][0]
    assert results[0][1].tobytes() == results[1][1].tobytes()
