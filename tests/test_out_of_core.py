"""Memory-mapped X and y are streamed: extra memory never grows with m (docs/design.md, "Parallel,
deterministic accumulation"), and the result does not depend on how X is stored."""

import json
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import fastbp
from fastbp import _inputs, predict_proba

import reference

MiB = 2**20

# Run in a fresh process, so that RssAnon (anonymous resident memory: heap, numpy buffers, numba
# allocations; not the file-backed pages of the memmap) measures fastbp alone. A thread samples it
# every millisecond while the call runs; tracemalloc records numpy's buffers exactly, including
# any temporary shorter than a sampling interval.
MEASURE_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time, tracemalloc
    import numpy as np
    import fastbp

    def rss_anon_kib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])

    class PeakSampler(threading.Thread):
        def __init__(self):
            super().__init__(daemon=True)
            self.peak, self.samples, self.done = rss_anon_kib(), 0, threading.Event()

        def run(self):
            while not self.done.is_set():
                self.peak = max(self.peak, rss_anon_kib())
                self.samples += 1
                time.sleep(0.001)

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2], mmap_mode="r")
    w = np.load(sys.argv[3], mmap_mode="r")
    sizes = (128, 25, 10)
    theta = np.random.default_rng(1).normal(0, 0.1, fastbp.n_params(sizes))
    # today's network in both dtypes, and ReLU, softmax and weights (float64, converted by chunks)
    runs = {
        "float32": ("float32", {}),
        "float64": ("float64", {}),
        "relu-softmax-weighted": (
            "float32", {"activation": "relu", "output": "softmax", "sample_weight": w}
        ),
        "hessp-float64": ("float64", {"hessp": True}),
    }
    v = np.random.default_rng(2).normal(0, 0.1, theta.size)

    def run(dtype, kw, X, y):
        if kw.get("hessp"):  # H·v: the R-pass's buffers, per block, like the gradient's
            hv = fastbp.hessp(theta.astype(dtype), v, X, y, sizes)
            return float(hv @ v)
        return fastbp.cost_and_grad(theta.astype(dtype), X, y, sizes, **kw)[0]
    # Warm-up on a few rows: compiling or loading the kernels is not what is measured.
    for dtype, kw in runs.values():
        for rows in (1, 5000):
            kw_rows = {**kw, "sample_weight": w[:rows]} if "sample_weight" in kw else kw
            run(dtype, kw_rows, X[:rows], y[:rows])
    out = {}
    for name, (dtype, kw) in runs.items():
        base = rss_anon_kib()
        sampler = PeakSampler()
        tracemalloc.start()
        sampler.start()
        J = run(dtype, kw, X, y)
        sampler.done.set()
        sampler.join()
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        peak = max(sampler.peak, rss_anon_kib())
        out[name] = dict(
            growth=(peak - base) * 1024, traced=traced_peak, samples=sampler.samples, J=J
        )
    print(json.dumps(out))
    """
)


def write_memmaps(directory, m, n, K):
    """X (m, n) float32, labels y (m,) uint8 and sample weights (m,) float64 as .npy files,
    written block by block."""
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(directory / "X.npy", "w+", np.float32, (m, n))
    y = np.lib.format.open_memmap(directory / "y.npy", "w+", np.uint8, (m,))
    w = np.lib.format.open_memmap(directory / "w.npy", "w+", np.float64, (m,))
    step = 2**16
    for start in range(0, m, step):
        X[start : start + step] = rng.random((min(step, m - start), n), dtype=np.float32)
        y[start : start + step] = rng.integers(0, K, min(step, m - start))
        w[start : start + step] = rng.random(min(step, m - start))
    for a in (X, y, w):
        a.flush()
    return directory / "X.npy", directory / "y.npy", directory / "w.npy"


@pytest.mark.slow
def test_gradient_of_a_1_gib_memmap_in_bounded_memory(tmp_path):
    m, sizes = 2**21, (128, 25, 10)  # X: 2**21 × 128 float32 = 1 GiB on disk
    X_path, y_path, w_path = write_memmaps(tmp_path, m, sizes[0], sizes[-1])
    assert X_path.stat().st_size >= 2**30
    run = subprocess.run(
        [sys.executable, "-c", MEASURE_SCRIPT, str(X_path), str(y_path), str(w_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    measured = json.loads(run.stdout)
    for name, got in measured.items():
        assert got["samples"] > 100  # the sampler ran during the call
        assert got["growth"] < 64 * MiB, f"{name}: RssAnon grew by {got['growth'] / MiB:.1f} MiB"
        assert got["traced"] < 64 * MiB, f"{name}: numpy buffers peaked at {got['traced']}"
        assert np.isfinite(got["J"])
    print({d: round(v["growth"] / MiB, 1) for d, v in measured.items()}, "MiB RssAnon growth")

    # On the first 200,000 rows, the memmap gives bitwise what the same data in memory gives.
    X = np.load(X_path, mmap_mode="r")[:200_000]
    y = np.load(y_path, mmap_mode="r")[:200_000]
    X_in_memory, y_in_memory = np.array(X), np.array(y)
    theta = np.random.default_rng(1).normal(0, 0.1, fastbp.n_params(sizes))
    for dtype in (np.float32, np.float64):
        theta_d = theta.astype(dtype)
        J, grad = fastbp.cost_and_grad(theta_d, X, y, sizes)
        for J_other, grad_other in (
            fastbp.cost_and_grad(theta_d, X_in_memory, y_in_memory, sizes),
            fastbp.Objective(X, y, sizes, dtype=dtype)(theta_d),
        ):
            assert J_other == J
            assert grad_other.tobytes() == grad.tobytes()


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few hundred rows, so that small data spans many chunks."""
    monkeypatch.setattr(_inputs, "CHUNK_BYTES", 64 * 2**10)


def peak_numpy_bytes(f):
    """Peak of the memory tracemalloc sees (numpy buffers included) while f runs a second time
    (the first run may load the kernels)."""
    f()
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def save(path, a):
    np.save(path, a)
    return np.load(path, mmap_mode="r")


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("targets", ["labels", "float targets"])
def test_no_temporary_grows_with_m(targets, tmp_path, rng):
    """Every whole-array operation is chunked: validation, label and target conversion, X's
    conversion to θ's dtype and layout. A full-size copy of any of them would take ≥ 1.6 MB."""
    m, sizes = 200_000, (6, 5, 3)
    X = save(tmp_path / "X.npy", rng.uniform(size=(m, 6)).astype(np.float32))
    X_fortran = save(tmp_path / "XF.npy", np.asfortranarray(X))
    y = rng.integers(0, 3, m).astype(np.uint8)
    if targets != "labels":
        y = rng.uniform(size=(m, 3)).astype(np.float32)
    y = save(tmp_path / "y.npy", y)
    theta = rng.normal(size=fastbp.n_params(sizes))
    bound = 8 * _inputs.CHUNK_BYTES  # 512 KiB
    calls = {
        "cost_and_grad": lambda: fastbp.cost_and_grad(theta, X, y, sizes, 1.0),
        "Fortran X": lambda: fastbp.cost_and_grad(theta, X_fortran, y, sizes, 1.0),
        "float32": lambda: fastbp.cost_and_grad(theta.astype(np.float32), X_fortran, y, sizes),
        "cost": lambda: fastbp.cost(theta, X, y, sizes, 1.0),
        "partial_sums": lambda: fastbp.partial_sums(theta, X, y, sizes),
        "Objective": lambda: fastbp.Objective(X, y, sizes, 1.0, dtype=np.float64)(theta),
    }
    for name, call in calls.items():
        assert peak_numpy_bytes(call) < bound, name
    proba_bytes = m * sizes[-1] * 8
    assert peak_numpy_bytes(lambda: predict_proba(theta, X, sizes)) < proba_bytes + bound


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_data_stored_alike_gives_the_same_bits_in_memory_and_in_a_file(dtype, tmp_path, rng):
    """Data in the kernels' layout goes to them in one call; anything else runs chunk by chunk.
    Either way, a file and memory holding the same arrays give bitwise the same result."""
    m, sizes = 5000, (7, 6, 4)
    assert _inputs.chunk_rows(sizes, dtype) < m  # several chunks and a partial last one
    X = rng.uniform(-1, 1, (m, 7)).astype(dtype)
    y = rng.integers(0, 4, m)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(dtype)
    expected = fastbp.cost_and_grad(theta, X, y, sizes, 0.5)
    read_only = np.frombuffer(X.tobytes(), dtype).reshape(m, 7)
    assert not read_only.flags.writeable
    stored_alike = {  # name: (in memory, in a file)
        "kernel layout": ((X, y), (save(tmp_path / "X.npy", X), save(tmp_path / "y.npy", y))),
        "read-only": ((read_only, y), (read_only, y)),
        "Fortran order": (
            (np.asfortranarray(X), y),
            (save(tmp_path / "F.npy", np.asfortranarray(X)), y),
        ),
        "int16 labels": ((X, y.astype(np.int16)), (X, save(tmp_path / "y16.npy", y.astype("i2")))),
        "float32 X": (
            (X.astype(np.float32), y),
            (save(tmp_path / "X32.npy", X.astype(np.float32)), y),
        ),
    }
    for name, ((X_memory, y_memory), (X_file, y_file)) in stored_alike.items():
        J, grad = fastbp.cost_and_grad(theta, X_memory, y_memory, sizes, 0.5)
        for J_other, grad_other in (
            fastbp.cost_and_grad(theta, X_file, y_file, sizes, 0.5),
            fastbp.Objective(X_file, y_file, sizes, 0.5, dtype=dtype)(theta),
        ):
            assert J_other == J, name
            assert grad_other.tobytes() == grad.tobytes(), name
        if name == "float32 X" and dtype == np.float64:
            continue  # other values: the float32-rounded X
        tolerance = 1e-12 if dtype == np.float64 else 1e-5  # chunk sums: other rounding only
        assert abs(J - expected[0]) / expected[0] <= tolerance, name
        assert reference.max_rel(grad, expected[1]) <= tolerance, name
    proba = predict_proba(theta, X, sizes)
    np.testing.assert_array_equal(predict_proba(theta, save(tmp_path / "P.npy", X), sizes), proba)
    fortran = predict_proba(theta, np.asfortranarray(X), sizes)
    assert reference.max_rel(fortran, proba) <= (1e-15 if dtype == np.float64 else 1e-6)


@pytest.mark.usefixtures("small_chunks")
def test_float32_memmap_feeds_the_float64_kernels_chunk_by_chunk(tmp_path, rng):
    """A float32 file with float64 θ: each chunk is widened exactly, then summed in chunk order."""
    m, sizes = 3000, (5, 4, 2)
    assert _inputs.chunk_rows(sizes, np.float64) < m
    X32 = rng.uniform(-1, 1, (m, 5)).astype(np.float32)
    y = rng.integers(0, 2, m)
    theta = rng.normal(size=fastbp.n_params(sizes))
    J, grad = fastbp.cost_and_grad(theta, save(tmp_path / "X.npy", X32), y, sizes)
    assert grad.dtype == np.float64
    rows = _inputs.chunk_rows(sizes, np.float64)
    chunks = [
        fastbp.partial_sums(theta, X32[a : a + rows].astype(np.float64), y[a : a + rows], sizes)
        for a in range(0, m, rows)
    ]
    J_chunks, grad_chunks = fastbp.combine(chunks, theta, sizes)
    assert J == J_chunks
    assert grad.tobytes() == grad_chunks.tobytes()


@pytest.mark.usefixtures("small_chunks")
def test_validation_reports_global_rows_of_a_memmap(tmp_path, rng):
    m = 20_000
    X = rng.uniform(size=(m, 3))
    X[17_345, 2] = np.inf
    y = rng.integers(0, 2, m)
    with pytest.raises(ValueError, match=r"X must be finite, but X\[17345, 2\] is inf"):
        fastbp.cost_and_grad(np.zeros(14), save(tmp_path / "X.npy", X), y, (3, 2, 2))
    y[19_999] = 2
    with pytest.raises(ValueError, match=r"labels y must be in 0 … 1.*from 0 to 2"):
        fastbp.Objective(rng.uniform(size=(m, 3)), save(tmp_path / "y.npy", y), (3, 2, 2))
    targets = rng.uniform(size=(m, 2))
    targets[12_000, 1] = -0.5
    with pytest.raises(ValueError, match=r"y must lie in \[0, 1\].*from -0.5"):
        fastbp.cost(np.zeros(14), rng.uniform(size=(m, 3)), targets, (3, 2, 2))


def test_objective_converts_in_memory_data_once_and_never_copies_a_memmap(tmp_path, rng):
    X = rng.integers(0, 255, (100, 3)).astype(np.uint8)
    y = rng.integers(0, 2, 100)
    in_memory = fastbp.Objective(X, y, (3, 2, 2))
    assert in_memory._examples.X.dtype == np.float64  # converted once, not on every call
    X_map = save(tmp_path / "X.npy", X)
    mapped = fastbp.Objective(X_map, y, (3, 2, 2))
    assert np.shares_memory(mapped._examples.X, X_map)  # streamed from the file on every call
    theta = rng.normal(size=14)
    assert mapped(theta)[0] == in_memory(theta)[0]


# ----------------------------------------------------------------------------- sparse X

SPARSE_FORMATS = ["csr_array", "csc_array", "coo_array", "csr_matrix"]


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("sparse_format", SPARSE_FORMATS)
def test_sparse_X_gives_the_bits_of_the_same_rows_converted_chunk_by_chunk(sparse_format, rng):
    """A sparse X is made dense a chunk of rows at a time, like a Fortran-order X: same bits."""
    from scipy import sparse

    m, sizes = 3000, (9, 5, 3)
    X = rng.uniform(size=(m, 9)) * (rng.uniform(size=(m, 9)) < 0.3)
    y = rng.integers(0, 3, m)
    theta = rng.normal(size=fastbp.n_params(sizes))
    S = getattr(sparse, sparse_format)(X)
    copy = S.copy()
    dense = fastbp.cost_and_grad(theta, np.asfortranarray(X), y, sizes, 0.5)
    for J, grad in (
        fastbp.cost_and_grad(theta, S, y, sizes, 0.5),
        fastbp.Objective(S, y, sizes, 0.5)(theta),
    ):
        assert J == dense[0]
        assert grad.tobytes() == dense[1].tobytes()
    np.testing.assert_array_equal(
        predict_proba(theta, S, sizes), predict_proba(theta, np.asfortranarray(X), sizes)
    )
    assert (S != copy).nnz == 0  # not modified


def test_sparse_X_in_bounded_memory(rng):
    """200,000 × 256 at 2% density: 200 MiB dense in float32, 12 MiB sparse."""
    from scipy import sparse

    m, sizes = 200_000, (256, 16, 4)
    S = sparse.random_array((m, 256), density=0.02, format="csr", dtype=np.float32, rng=rng)
    y = rng.integers(0, 4, m)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(np.float32)
    peak = peak_numpy_bytes(lambda: fastbp.cost_and_grad(theta, S, y, sizes))
    assert peak < 32 * MiB, f"numpy buffers peaked at {peak / MiB:.1f} MiB"


def test_sparse_X_validation(rng):
    from scipy import sparse

    X = sparse.csr_array(np.array([[0.0, 1.0], [np.nan, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"X must be finite, but X\[1, 0\] is nan"):
        fastbp.cost(np.zeros(9), X, np.array([0, 1, 0]), (2, 2, 1))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        fastbp.cost(np.zeros(9), sparse.csr_array(np.ones((3, 2), complex)), [0, 1, 0], (2, 2, 1))
    with pytest.raises(ValueError, match="X has 2 columns, but layer_sizes"):
        fastbp.cost(np.zeros(11), sparse.csr_array(np.ones((3, 2))), [0, 1, 0], (3, 2, 1))


# ----------------------------------------------------------------------------- pandas tables


def test_pandas_nullable_dtypes_without_missing_values(rng):
    pd = pytest.importorskip("pandas")
    X = rng.integers(0, 5, (40, 3))
    y = np.arange(40) % 3
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).astype({"a": "Int64", "b": "Float64"})
    labels = pd.Series(y, dtype="Int64")
    sizes = (3, 4, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    expected = fastbp.cost_and_grad(theta, X.astype(np.float64), y, sizes)
    J, grad = fastbp.cost_and_grad(theta, frame, labels, sizes)
    assert J == expected[0]
    assert grad.tobytes() == expected[1].tobytes()
    model = fastbp.fit(frame, labels, (4,), maxiter=3, seed=0)
    np.testing.assert_array_equal(model.classes, [0, 1, 2])
    frame.loc[7, "b"] = pd.NA
    with pytest.raises(ValueError, match=r"X has missing values: X\[7, 1\] is missing"):
        fastbp.cost_and_grad(theta, frame, labels, sizes)
    labels[3] = pd.NA
    with pytest.raises(ValueError, match=r"y has missing values: y\[3\] is missing"):
        fastbp.fit(X, labels, (4,))
