"""DaskObjective on a LocalCluster with two worker processes, against the in-process Objective."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as da
import distributed
import numpy as np
import pytest
from scipy.optimize import minimize

import fastbp
from fastbp.dask import FAN_IN, DaskObjective

import reference
from compile_recorder import (
    compile_a_function,
    compiled_functions,
    forget_compilations,
    record_compilations,
)


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each (numba parallelizes inside every task)."""
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(record_compilations)  # before any worker touches fastbp
        yield client


def make_data(rng, m, sizes, targets="labels"):
    X = rng.uniform(-1, 1, (m, sizes[0]))
    if targets == "labels":
        y = rng.integers(0, sizes[-1], m)
    else:
        y = rng.uniform(size=(m, sizes[-1]))
    return X, y


@pytest.mark.parametrize("targets", ["labels", "float targets"])
def test_equals_objective_and_repeats_bitwise(client, targets, rng):
    m, sizes, lam = 23_456, (20, 16, 5), 0.7
    X, y = make_data(rng, m, sizes, targets)
    X_dask = da.from_array(X, chunks=(1000, 7))  # uneven last chunk; columns chunked too
    y_dask = da.from_array(y, chunks=3000)  # rechunked to X's rows
    obj = DaskObjective(X_dask, y_dask, sizes, lam=lam, client=client)
    assert obj.n_chunks == 24  # more than FAN_IN: one level of the tree runs on the cluster
    local = fastbp.Objective(X, y, sizes, lam=lam)
    assert (obj.m, obj.layer_sizes, obj.n_params, obj.dtype, obj.lam) == (
        local.m,
        local.layer_sizes,
        local.n_params,
        local.dtype,
        local.lam,
    )
    thetas = [rng.normal(size=obj.n_params) for _ in range(2)]
    first = [obj(theta) for theta in thetas]
    for theta, (J, grad) in zip(thetas, first, strict=True):
        J_local, grad_local = local(theta)
        assert isinstance(J, float)
        assert abs(J - J_local) / abs(J_local) <= 1e-12
        assert reference.max_rel(grad, grad_local) <= 1e-12
    again = DaskObjective(X_dask, y_dask, sizes, lam=lam, client=client)
    for theta, (J, grad) in zip(thetas, first, strict=True):
        for J_again, grad_again in (obj(theta), again(theta)):
            assert J_again == J
            assert grad_again.tobytes() == grad.tobytes()


@pytest.mark.parametrize(
    ("activation", "output"), [("relu", "softmax"), ("tanh", "identity"), ("identity", "sigmoid")]
)
def test_models_and_sample_weights_equal_objective(client, activation, output, rng):
    """Weights are summed into the partials: S is the sum of the chunks' sums."""
    m, sizes, lam = 5_000, (6, 8, 3), 0.4
    X, y = make_data(rng, m, sizes)
    if output == "identity":
        y = rng.normal(size=(m, 3))
    w = rng.uniform(0, 2, m)
    kwargs = {"activation": activation, "output": output}
    X_dask = da.from_array(X, chunks=(700, 6))
    obj = DaskObjective(
        X_dask,
        da.from_array(y, chunks=(1000, *y.shape[1:])),  # rechunked to X's rows
        sizes,
        lam=lam,
        client=client,
        sample_weight=da.from_array(w, chunks=1500),
        **kwargs,
    )
    assert (obj.activation, obj.output) == ((activation,), output)
    local = fastbp.Objective(X, y, sizes, lam=lam, sample_weight=w, **kwargs)
    theta = rng.normal(size=obj.n_params)
    (J, grad), (J_local, grad_local) = obj(theta), local(theta)
    assert abs(J - J_local) / abs(J_local) <= 1e-12
    assert reference.max_rel(grad, grad_local) <= 1e-12
    v = rng.normal(size=obj.n_params)  # H·v and G·v by partial sums, like the gradient
    for kind in ("exact", "gauss-newton"):
        hv = obj.hessp(theta, v, kind)
        assert reference.max_rel(hv, local.hessp(theta, v, kind)) <= 1e-12
        assert obj.hessp(theta, v, kind).tobytes() == hv.tobytes()
    w_bad = w.copy()
    w_bad[1403] = -1.0
    w_zero = np.zeros(m)
    w_zero[4321] = 1.0  # every chunk but one all zero: allowed
    DaskObjective(X_dask, y, sizes, client=client, sample_weight=w_zero, **kwargs)
    for weights, message in ((w_bad, r"must be >= 0, but sample_weight\[1403\]"), (0 * w, "zeros")):
        with pytest.raises(ValueError, match=message):
            DaskObjective(X_dask, y, sizes, client=client, sample_weight=weights, **kwargs)


def test_partials_are_added_in_the_documented_tree(client, rng):
    m, sizes, lam = 2000, (4, 3, 2), 0.2
    X, y = make_data(rng, m, sizes)
    obj = DaskObjective(da.from_array(X, chunks=100), y, sizes, lam=lam, client=client)
    assert obj.n_chunks == 20
    theta = rng.normal(size=obj.n_params)
    chunks = [
        fastbp.partial_sums(theta, X[a : a + 100], y[a : a + 100], sizes) for a in range(0, m, 100)
    ]
    groups = []
    for first in range(0, 20, FAN_IN):  # runs of 8 added left to right on the cluster …
        cost_sum, Delta, count = chunks[first]
        Delta = Delta.copy()
        for part in chunks[first + 1 : first + FAN_IN]:
            cost_sum, count = cost_sum + part[0], count + part[2]
            Delta += part[1]
        groups.append((cost_sum, Delta, count))
    J, grad = fastbp.combine(groups, theta, sizes, lam)  # … and the last 3 in order
    J_dask, grad_dask = obj(theta)
    assert J_dask == J
    assert grad_dask.tobytes() == grad.tobytes()


def test_lbfgsb_follows_the_in_process_objective(client, rng):
    m, sizes = 12_000, (10, 8, 3)
    X = rng.uniform(-1, 1, (m, 10))
    y = np.minimum((X[:, 0] + 1) * 1.5, 2).astype(int)  # labels 0, 1, 2 from the first feature
    obj = DaskObjective(da.from_array(X, chunks=2500), y, sizes, lam=0.3, client=client)
    local = fastbp.Objective(X, y, sizes, lam=0.3)
    theta0 = rng.uniform(-0.5, 0.5, obj.n_params)
    options = {"maxiter": 25}
    remote = minimize(obj, theta0, jac=True, method="L-BFGS-B", options=options)
    in_process = minimize(local, theta0, jac=True, method="L-BFGS-B", options=options)
    assert remote.nit == in_process.nit == 25
    assert abs(remote.fun - in_process.fun) / abs(in_process.fun) <= 1e-9
    assert remote.fun < 0.8 * local(theta0)[0]
    separately = minimize(obj.fun, theta0, jac=obj.jac, method="L-BFGS-B", options=options)
    assert separately.fun == remote.fun


def test_float32(client, rng):
    m, sizes = 4000, (6, 5, 4)
    X, y = make_data(rng, m, sizes)
    X32 = X.astype(np.float32)
    obj = DaskObjective(da.from_array(X32, chunks=1000), y, sizes, client=client)
    assert obj.dtype == np.float32
    theta = rng.normal(size=obj.n_params)
    J, grad = obj(theta)
    assert grad.dtype == np.float64  # θ's dtype
    assert obj(theta.astype(np.float32))[1].dtype == np.float32
    J_local, grad_local = fastbp.Objective(X32, y, sizes)(theta)
    assert abs(J - J_local) / J_local <= 1e-6
    assert reference.max_rel(grad, grad_local) <= 1e-5
    as64 = DaskObjective(da.from_array(X32, chunks=1000), y, sizes, client=client, dtype="f8")
    J64, grad64 = as64(theta)
    J_ref, grad_ref = reference.cost_and_grad(theta, X32.astype(np.float64), y, sizes, 0.0)
    assert abs(J64 - J_ref) / J_ref <= 1e-12
    assert reference.max_rel(grad64, grad_ref) <= 1e-12


def test_workers_load_the_kernels_from_the_cache_and_never_compile(client, rng):
    m, sizes = 9000, (5, 4, 3)
    X, y = make_data(rng, m, sizes)
    for dtype in (np.float64, np.float32):
        obj = DaskObjective(da.from_array(X.astype(dtype), chunks=1000), y, sizes, client=client)
        for _ in range(3):
            obj(rng.normal(size=obj.n_params))
    workers = client.scheduler_info()["workers"]
    assert client.run(compiled_functions) == {w: [] for w in workers}
    client.run(compile_a_function)  # the recorder would have seen a compilation
    assert client.run(compiled_functions) == {
        w: ["compile_a_function.<locals>.twice"] for w in workers
    }
    client.run(forget_compilations)


COLD_CACHE_SCRIPT = textwrap.dedent(
    """
    import json
    import dask.array as da
    import numpy as np
    import fastbp
    from distributed import Client, LocalCluster
    from fastbp.dask import DaskObjective
    from compile_recorder import compiled_functions, record_compilations

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        client.run(record_compilations)
        record_compilations()
        rng = np.random.default_rng(0)
        X, y = rng.uniform(size=(4000, 5)), rng.integers(0, 3, 4000)
        with fastbp.threads(1):  # the client's own count must not decide what workers find
            objective = DaskObjective(da.from_array(X, chunks=500), y, (5, 4, 3), client=client)
        values = [objective(rng.normal(size=objective.n_params))[0] for _ in range(3)]
        workers = client.run(compiled_functions)
        print(json.dumps({"workers": workers, "here": compiled_functions(), "values": values}))
    """
)


@pytest.mark.slow
def test_with_a_cold_cache_only_the_client_compiles(tmp_path):
    """numba issue 4807: processes compiling at once and writing one cache can break it. Here
    the client compiles (into an empty NUMBA_CACHE_DIR) before any worker needs the kernels,
    the parallel ones too although the client itself runs one thread; the two worker processes
    then only load them from the cache."""
    tests = Path(__file__).parent
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tests), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, "-c", COLD_CACHE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(run.stdout.splitlines()[-1])
    assert any("_sums" in name for name in result["here"])  # the cache was cold: it compiled
    assert list(result["workers"].values()) == [[], []]  # the workers did not
    assert list((tmp_path / "numba-cache").rglob("*.nbi"))
    assert all(np.isfinite(result["values"]))


def test_empty_chunks_and_numpy_targets(client, rng):
    sizes = (4, 3, 2)
    X, y = make_data(rng, 700, sizes)
    X_dask = da.from_array(X, chunks=((0, 300, 300, 100), (4,)))
    assert X_dask.chunks[0] == (0, 300, 300, 100)
    obj = DaskObjective(X_dask, y, sizes, client=client)
    assert obj.n_chunks == 3
    theta = rng.normal(size=obj.n_params)
    J, grad = obj(theta)
    J_ref, grad_ref = reference.cost_and_grad(theta, X, y, sizes, 0.0)
    assert abs(J - J_ref) / J_ref <= 1e-12
    assert reference.max_rel(grad, grad_ref) <= 1e-12


def test_bad_input_raises_a_named_error(client, rng):
    sizes = (3, 4, 2)
    X, y = make_data(rng, 1000, sizes)
    X_dask = da.from_array(X, chunks=250)
    bad_X = X.copy()
    bad_X[612, 1] = np.nan
    bad_y = y.copy()
    bad_y[999] = 5
    cases = [
        ((X, y), TypeError, "X must be a dask.array.Array.*fastbp.Objective"),
        ((X_dask[:, :2], y), ValueError, "X has 2 columns"),
        ((X_dask, y[:-1]), ValueError, "y must have one entry per example.*1000"),
        ((X_dask, y + 0j), TypeError, "y must hold real numbers"),
        ((da.from_array(bad_X, chunks=250), y), ValueError, r"X must be finite.*X\[612, 1\]"),
        ((X_dask, da.from_array(bad_y, chunks=250)), ValueError, r"labels y.*0 … 1.*to 5"),
        ((X_dask[X_dask[:, 0] > 0], y), ValueError, "unknown chunk sizes"),
    ]
    for (X_arg, y_arg), exception, pattern in cases:
        with pytest.raises(exception, match=pattern):
            DaskObjective(X_arg, y_arg, sizes, client=client)
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client"):
        DaskObjective(X_dask, y, sizes, client="tcp://127.0.0.1:8786")
    obj = DaskObjective(X_dask, y, sizes, client=client)
    with pytest.raises(ValueError, match="theta has length 3"):
        obj(np.zeros(3))
    with pytest.raises(TypeError, match="does not pickle"):
        pickle.dumps(obj)


def test_import_fastbp_without_dask():
    """With dask and distributed unimportable, fastbp works and fastbp.dask says what to install."""
    script = textwrap.dedent(
        """
        import sys
        for name in ("dask", "distributed"):
            sys.modules[name] = None  # makes "import dask" raise ImportError
        import numpy as np
        import fastbp
        J, grad = fastbp.cost_and_grad(np.zeros(5), np.ones((3, 2)), [0, 1, 1], (2, 1, 1))
        assert abs(J - np.log(2)) < 1e-12
        assert "dask" not in sys.modules or sys.modules["dask"] is None
        try:
            fastbp.dask
        except ImportError as error:
            print(error)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert 'pip install "fastbp[dask]"' in out.stdout


def test_fit_accepts_dask_arrays(client, rng):
    """fastbp.fit on dask X and y trains through DaskObjective, like fit on the same NumPy data."""
    X = rng.uniform(size=(1200, 5))
    y = (X[:, 0] * 3).astype(int)
    in_memory = fastbp.fit(X, y, (6,), lam=0.5, maxiter=15, seed=3)
    on_cluster = fastbp.fit(
        da.from_array(X, chunks=(400, 5)),
        da.from_array(y, chunks=400),
        (6,),
        lam=0.5,
        maxiter=15,
        seed=3,
    )
    assert on_cluster.layer_sizes == in_memory.layer_sizes == (5, 6, 3)
    np.testing.assert_array_equal(on_cluster.classes, in_memory.classes)
    # The cluster adds the partial sums in another order: the same path to rounding.
    assert on_cluster.history[-1] == pytest.approx(in_memory.history[-1], rel=1e-9)
    assert (on_cluster.predict(X) == in_memory.predict(X)).mean() > 0.99


def test_a_non_finite_theta_is_named(client, rng):
    X = da.from_array(rng.uniform(size=(300, 3)), chunks=(100, 3))
    y = da.from_array(rng.integers(0, 2, 300), chunks=100)
    objective = DaskObjective(X, y, (3, 4, 2))
    theta = rng.normal(size=objective.n_params)
    theta[5] = np.nan
    with pytest.raises(ValueError, match=r"theta must be finite.*theta\[5\]"):
        objective(theta)


def test_fit_scale_on_dask_arrays(client, rng):
    """scale=True reduces a dask X on its workers and trains on the lazily scaled chunks."""
    X = rng.uniform(size=(1200, 5)) * [1, 10, 100, 1000, 0.1]
    y = (X[:, 0] * 3).astype(int)
    in_memory = fastbp.fit(X, y, (6,), maxiter=15, seed=3, scale=True)
    on_cluster = fastbp.fit(
        da.from_array(X, chunks=(400, 5)), y, (6,), maxiter=15, seed=3, scale=True
    )
    np.testing.assert_allclose(on_cluster.x_mean, in_memory.x_mean, rtol=1e-12)
    np.testing.assert_allclose(on_cluster.x_scale, in_memory.x_scale, rtol=1e-12)
    assert on_cluster.history[-1] == pytest.approx(in_memory.history[-1], rel=1e-6)
    assert (on_cluster.predict(X) == in_memory.predict(X)).mean() > 0.99


def test_fit_on_dask_arrays_with_activations_outputs_and_weights(client, rng):
    """fit passes activation, output and sample_weight on to DaskObjective."""
    X = rng.uniform(size=(1200, 5))
    y = (X[:, 0] * 3).astype(int)
    weights = rng.uniform(0, 2, 1200)
    options = {"activation": "tanh", "output": "softmax", "maxiter": 15, "seed": 3}
    in_memory = fastbp.fit(X, y, (6,), sample_weight=weights, **options)
    on_cluster = fastbp.fit(
        da.from_array(X, chunks=(400, 5)),
        y,
        (6,),
        sample_weight=da.from_array(weights, chunks=400),
        **options,
    )
    assert on_cluster.layer_sizes == in_memory.layer_sizes == (5, 6, 3)
    assert (on_cluster.activation, on_cluster.output) == (("tanh",), "softmax")
    assert on_cluster.history[-1] == pytest.approx(in_memory.history[-1], rel=1e-9)
    unweighted = fastbp.fit(X, y, (6,), **options)
    assert unweighted.history[-1] != pytest.approx(in_memory.history[-1], rel=1e-6)
