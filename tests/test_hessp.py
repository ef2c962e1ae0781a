"""Hessian-vector products (docs/design.md, "Hessian-vector products"): H·v and the Gauss-Newton
G·v against central differences of the gradient, JAX's dense Hessian and J_fᵀ H_ℓ J_f, symmetry
and G ⪰ 0 over hypothesis-drawn problems, both kernels, threads, chunks, and bad input."""

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import kernels

import reference
from strategies import ACTIVATIONS, OUTPUTS, model_problems, model_targets
from test_concurrency import run_script
from test_determinism import with_threads

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jax.config.update("jax_enable_x64", True)  # the dense references in float64

KINDS = ["exact", "gauss-newton"]


def small_problem(rng, activation, output, m=30, sizes=(3, 5, 4, 3), weighted=True):
    X = rng.uniform(-1, 1, (m, sizes[0]))
    y = model_targets(rng, output, "targets" if output == "identity" else "labels", m, sizes[-1])
    theta = rng.normal(size=fastbp.n_params(sizes))
    weights = rng.uniform(0, 2, m) if weighted else None
    kw = {"activation": activation, "output": output, "sample_weight": weights}
    return theta, X, y, sizes, kw


# ------------------------------------------------------------------ JAX's dense references


def jax_network(X, y, sizes, activation, output, sample_weight):
    """(J(θ), z^(L)(θ), cost_i(z, y_i), S, Y) in JAX, written from docs/design.md."""
    m, K = X.shape[0], sizes[-1]
    Y = jnp.asarray(reference.targets(y, m, K))
    s = jnp.ones(m) if sample_weight is None else jnp.asarray(sample_weight, float)
    names = [activation] * (len(sizes) - 2) if isinstance(activation, str) else activation
    g = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}

    def logits(theta):
        a, start = jnp.asarray(X), 0
        for l, (rows, cols) in enumerate(reference.shapes(sizes)):
            W = theta[start : start + rows * cols].reshape(rows, cols)
            start += rows * cols
            z = a @ W[:, 1:].T + W[:, 0]
            a = g.get(names[l], lambda z: z)(z) if l < len(sizes) - 2 else z
        return a

    def example_cost(z, y_i):
        if output == "sigmoid":
            return jnp.sum(jax.nn.softplus(z) - y_i * z)
        if output == "softmax":
            return jnp.sum(y_i * (jax.nn.logsumexp(z) - z))
        return 0.5 * jnp.sum((z - y_i) ** 2)

    def J(theta, lam):
        costs = jax.vmap(example_cost)(logits(theta), Y)
        return jnp.sum(s * costs) / jnp.sum(s) + lam / (2 * jnp.sum(s)) * penalty(theta)

    def penalty(theta):
        total, start = 0.0, 0
        for rows, cols in reference.shapes(sizes):
            W = theta[start : start + rows * cols].reshape(rows, cols)
            total += jnp.sum(W[:, 1:] ** 2)
            start += rows * cols
        return total

    return J, logits, example_cost, s, Y


def non_bias(sizes):
    """1 on θ's non-bias weights, 0 on the bias column of every Θ^(l)."""
    mask = [np.ones((rows, cols)) * (np.arange(cols) > 0) for rows, cols in reference.shapes(sizes)]
    return np.concatenate([w.ravel() for w in mask])


def dense_hessian(theta, X, y, sizes, lam, kw):
    J = jax_network(X, y, sizes, kw["activation"], kw["output"], kw["sample_weight"])[0]
    return np.asarray(jax.hessian(J)(jnp.asarray(theta, float), lam))


def dense_gauss_newton(theta, X, y, sizes, lam, kw):
    """Σ_i s_i J_iᵀ H_i J_i / S + (λ/S) on non-bias weights: J_i the Jacobian of example i's
    z^(L) in θ, H_i its cost's Hessian in z^(L) (both from JAX's autodiff)."""
    _, logits, example_cost, s, Y = jax_network(
        X, y, sizes, kw["activation"], kw["output"], kw["sample_weight"]
    )
    theta = jnp.asarray(theta, float)
    Jf = jax.jacfwd(logits)(theta)  # (m, K, P)
    H = jax.vmap(jax.hessian(example_cost))(logits(theta), Y)  # (m, K, K)
    G = jnp.einsum("i,ikp,ikl,ilq->pq", s, Jf, H, Jf) / jnp.sum(s)
    return np.asarray(G) + np.diag(lam / float(jnp.sum(s)) * non_bias(sizes))


# --------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_against_central_differences_of_the_gradient(activation, output, rng):
    theta, X, y, sizes, kw = small_problem(rng, activation, output)
    assert reference.relu_margin(theta, X, sizes, activation) > 1e-3
    v = rng.normal(size=theta.size)

    def grad(t):
        return fastbp.cost_and_grad(t, X, y, sizes, 0.7, **kw)[1]

    eps = 1e-5
    fd = (grad(theta + eps * v) - grad(theta - eps * v)) / (2 * eps)
    hv = fastbp.hessp(theta, v, X, y, sizes, 0.7, **kw)
    assert reference.max_rel(hv, fd) < 1e-6


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_against_jax_dense_hessian(activation, output, rng):
    theta, X, y, sizes, kw = small_problem(rng, activation, output)
    assert reference.relu_margin(theta, X, sizes, activation) > 1e-3
    H = dense_hessian(theta, X, y, sizes, 0.7, kw)
    G = dense_gauss_newton(theta, X, y, sizes, 0.7, kw)
    for kernel in ("tiled", "literal"):
        objective = fastbp.Objective(X, y, sizes, 0.7, kernel=kernel, **kw)
        for v in rng.normal(size=(3, theta.size)):
            assert reference.max_rel(objective.hessp(theta, v), H @ v) < 1e-10
            assert reference.max_rel(objective.hessp(theta, v, "gauss-newton"), G @ v) < 1e-10
    # float32: the same rounded inputs, against the float64 Hessian of them
    p32 = [a.astype(np.float32) for a in (theta, X)]
    kw32 = {**kw, "sample_weight": kw["sample_weight"].astype(np.float32)}
    y32 = y.astype(np.float32) if y.dtype.kind == "f" else y
    H32 = dense_hessian(p32[0].astype(float), p32[1], y32, sizes, 0.7, {**kw32})
    v = rng.normal(size=theta.size).astype(np.float32)
    for kernel in ("tiled", "literal"):
        hv = fastbp.Objective(p32[1], y32, sizes, 0.7, kernel=kernel, **kw32).hessp(p32[0], v)
        assert hv.dtype == np.float32
        assert reference.max_rel(hv, H32 @ v.astype(float)) < 1e-4


def test_gauss_newton_equals_hessian_for_a_linear_network(rng):
    # identity hidden units and output: the net is linear in x, J is quadratic in the output
    # layer's weights, and H − G holds only the cross terms of δ and R{a}; with one layer there
    # are none and the two are the same
    theta, X, y, _, kw = small_problem(rng, "identity", "identity", sizes=(3, 2))
    sizes = (3, 2)
    v = rng.normal(size=theta.size)
    hv = fastbp.hessp(theta, v, X, y, sizes, 0.3, **kw)
    gv = fastbp.hessp(theta, v, X, y, sizes, 0.3, kind="gauss-newton", **kw)
    assert reference.max_rel(gv, hv) < 1e-14


@settings(max_examples=40, deadline=None)
@given(problem=model_problems(), seed=st.integers(0, 2**32 - 1))
def test_symmetric_positive_gauss_newton_and_both_kernels_agree(problem, seed):
    p = problem
    assume(reference.relu_margin(p.theta, p.X, p.layer_sizes, p.activation) > 1e-9)
    u, v = np.random.default_rng(seed).normal(size=(2, p.theta.size))
    objective = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, **p.kwargs())
    Hv, Hu = objective.hessp(p.theta, v), objective.hessp(p.theta, u)
    # tiny: the size of uᵀHv's rounding errors, so that a cancelling uᵀHv ≈ 0 is not a failure
    tiny = 1e-12 * np.linalg.norm(u) * np.linalg.norm(Hv)
    assert abs(u @ Hv - v @ Hu) / (abs(u @ Hv) + tiny) < 1e-10
    literal = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, kernel="literal", **p.kwargs())
    assert reference.max_rel(literal.hessp(p.theta, v), Hv) < 1e-12
    Gv = objective.hessp(p.theta, v, "gauss-newton")
    assert v @ Gv >= -1e-12 * np.linalg.norm(v) * np.linalg.norm(Gv)
    assert reference.max_rel(literal.hessp(p.theta, v, "gauss-newton"), Gv) < 1e-12


def test_regularization_alone_for_a_zero_direction_on_the_data(rng):
    # v on bias weights only of the last layer: H v has no λ part; λ adds (λ/m) v elsewhere
    theta, X, y, sizes, kw = small_problem(rng, "tanh", "softmax", weighted=False)
    v = rng.normal(size=theta.size)
    lam = 2.5
    difference = fastbp.hessp(theta, v, X, y, sizes, lam, **kw) - fastbp.hessp(
        theta, v, X, y, sizes, 0.0, **kw
    )
    np.testing.assert_allclose(difference, lam / X.shape[0] * non_bias(sizes) * v, atol=1e-15)


# ------------------------------------------------------------ determinism, chunks, concurrency


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bitwise_equal_for_any_thread_count(dtype, kind, rng):
    assert numba.config.NUMBA_NUM_THREADS >= 2
    sizes, m = (20, 16, 5), 7777
    assert kernels.block_count(m, sizes, dtype) > 1
    theta, v = rng.normal(size=(2, fastbp.n_params(sizes))).astype(dtype)
    X = rng.uniform(-1, 1, (m, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], m)
    w = rng.uniform(0, 2, m)
    runs = [
        with_threads(
            n,
            lambda: fastbp.hessp(
                theta, v, X, y, sizes, 0.3, kind=kind, output="softmax", sample_weight=w
            ),
        ).tobytes()
        for n in (1, numba.config.NUMBA_NUM_THREADS, 1)
    ]
    assert runs[1] == runs[0] == runs[2]


def test_memory_mapped_data_streams_in_chunks(tmp_path, rng, monkeypatch):
    from fastbp import _inputs

    monkeypatch.setattr(_inputs, "CHUNK_BYTES", 64 * 2**10)  # many chunks
    sizes, m = (12, 7, 3), 5000
    X = rng.uniform(-1, 1, (m, sizes[0])).astype(np.float32)
    y = rng.integers(0, 3, m)
    np.save(tmp_path / "X.npy", X)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    theta, v = rng.normal(size=(2, fastbp.n_params(sizes)))
    for kind in KINDS:
        streamed = fastbp.hessp(theta, v, X_map, y, sizes, 1.0, kind=kind)
        in_memory = fastbp.hessp(theta, v, X.astype(np.float64), y, sizes, 1.0, kind=kind)
        assert reference.max_rel(streamed, in_memory) < 1e-12


def test_fork_and_threads_give_the_serial_results():
    run_script(
        """
        from concurrent.futures import ThreadPoolExecutor
        V = rng.normal(size=fastbp.n_params(SIZES))
        objective = fastbp.Objective(X, y, SIZES, 0.5, **KW)

        def product(theta):
            return objective.hessp(theta, V).tobytes()

        parent = [product(t) for t in THETAS]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map_async(product, THETAS).get(timeout=240) == parent
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(product, THETAS * 3)) == parent * 3
        """,
        model=("relu", "softmax"),
    )


# -------------------------------------------------------------------------------- bad input


def test_bad_direction_and_kind_are_named(rng):
    theta, X, y, sizes, kw = small_problem(rng, "sigmoid", "sigmoid")
    objective = fastbp.Objective(X, y, sizes, **kw)
    v = rng.normal(size=theta.size)
    cases = [
        (v[:-1], ValueError, "v has length"),
        (v.reshape(-1, 1), ValueError, "v must be a 1-D vector"),
        (v.astype(complex), TypeError, "v must hold real numbers"),
        (np.where(np.arange(v.size) == 4, np.inf, v), ValueError, r"v\[4\] is inf"),
        (["a"] * v.size, TypeError, "v must hold real numbers"),
    ]
    for bad, error, message in cases:
        with pytest.raises(error, match=message):
            objective.hessp(theta, bad)
        with pytest.raises(error, match=message):
            fastbp.hessp(theta, bad, X, y, sizes, **kw)
    with pytest.raises(ValueError, match="kind must be one of"):
        objective.hessp(theta, v, kind="newton")
    with pytest.raises(ValueError, match="theta must be finite"):
        objective.hessp(np.full(theta.size, np.nan), v)
    before = v.copy()
    objective.hessp(theta, v)
    np.testing.assert_array_equal(v, before)  # never modified


# ------------------------------------------------------------------------ scipy's optimizers


@pytest.mark.parametrize("method", ["Newton-CG", "trust-ncg", "trust-krylov", "trust-constr"])
def test_fit_passes_hessp_to_second_order_methods(method, rng):
    X = rng.uniform(-1, 1, (200, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    calls = []
    original = fastbp.Objective.hessp

    def counting(self, theta, v, kind="exact"):
        calls.append(kind)
        return original(self, theta, v, kind)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastbp.Objective, "hessp", counting)
        result = fastbp.fit(X, y, (5,), lam=0.1, method=method, maxiter=20, seed=0)
        gn = fastbp.fit(
            X, y, (5,), lam=0.1, method=method, maxiter=5, seed=0, hessian="gauss-newton"
        )
    assert set(calls) == {"exact", "gauss-newton"}
    assert result.history[-1] < result.history[0]
    assert gn.history.size > 0
    with pytest.raises(ValueError, match="hessian must be one of"):
        fastbp.fit(X, y, (5,), method=method, hessian="bfgs")
