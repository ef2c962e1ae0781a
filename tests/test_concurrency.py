"""Safe under threads and processes: no crash, no hang, the same bits (issue: thread and fork
safety). Every fork scenario runs in a fresh interpreter with a timeout, so a hang fails the test
instead of blocking the run."""

import os
import subprocess
import sys
import textwrap
import threading

import numba
import numpy as np
import pytest

import fastbp

TIMEOUT = 300
LAYERS = ["default", "omp", "workqueue"]

SETUP = textwrap.dedent(
    """
    import multiprocessing, numpy as np, fastbp
    SIZES = (12, 9, 4)
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (3000, 12))  # several blocks: the parallel kernel runs
    y = rng.integers(0, 4, 3000)
    THETAS = [rng.normal(size=fastbp.n_params(SIZES)) for _ in range(4)]
    KW = dict(activation=ACTIVATION, output=OUTPUT)
    KW["sample_weight"] = rng.uniform(0, 2, 3000) if OUTPUT != "sigmoid" else None

    def gradient(theta):
        J, g = fastbp.cost_and_grad(theta, X, y, SIZES, 0.5, **KW)
        return J, g.tobytes()
    """
)
# (activation, output): today's network, and ReLU with softmax and sample weights
MODELS = [("sigmoid", "sigmoid"), ("relu", "softmax")]


def run_script(code, layer="default", model=MODELS[0]):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    result = subprocess.run(
        [sys.executable, "-c", f"ACTIVATION, OUTPUT = {model!r}\n{SETUP}{textwrap.dedent(code)}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("model", MODELS, ids="-".join)
@pytest.mark.parametrize("layer", LAYERS)
def test_fork_pool_after_the_parent_ran_parallel_kernels(layer, model):
    out = run_script(
        """
        parent = [gradient(t) for t in THETAS]  # the parent launches its threads first
        with multiprocessing.get_context("fork").Pool(2) as pool:
            children = pool.map_async(gradient, THETAS).get(timeout=240)
        assert children == parent, "fork children differ from the parent"
        print(fastbp.threading_info()["layer"])
        """,
        layer,
        model,
    )
    assert out.split()[-1] == ("tbb" if layer == "default" else layer)


def test_first_parallel_call_in_a_forked_child():
    run_script(
        """
        with multiprocessing.get_context("fork").Pool(2) as pool:
            children = pool.map_async(gradient, THETAS).get(timeout=240)
        assert children == [gradient(t) for t in THETAS]
        """
    )


@pytest.mark.parametrize("model", MODELS, ids="-".join)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_pools(method, model):
    run_script(
        f"""
        if __name__ == "__main__":
            parent = [gradient(t) for t in THETAS]
            objective = fastbp.Objective(X, y, SIZES, 0.5, **KW)
            with multiprocessing.get_context("{method}").Pool(2) as pool:
                children = pool.map_async(objective, THETAS).get(timeout=240)
            assert [(J, g.tobytes()) for J, g in children] == parent
        """,
        model=model,
    )


@pytest.mark.parametrize("layer", ["default", "omp"])
def test_differential_evolution_with_workers(layer):
    run_script(
        """
        from scipy.optimize import differential_evolution
        gradient(THETAS[0])  # parallel threads already running in the parent
        Xs, ys = rng.uniform(size=(8, 2)), np.array([0, 1] * 4)
        cost = fastbp.Objective(Xs, ys, (2, 2, 1)).fun
        result = differential_evolution(cost, [(-3, 3)] * 9, workers=2, updating="deferred",
                                        maxiter=5, popsize=5, seed=1, polish=False)
        assert np.isfinite(result.fun)
        """,
        layer,
    )


@pytest.mark.parametrize("model", MODELS, ids="-".join)
@pytest.mark.parametrize("layer", LAYERS)
def test_threads_calling_at_once_get_the_serial_results(layer, model):
    run_script(
        """
        from concurrent.futures import ThreadPoolExecutor
        objective = fastbp.Objective(X, y, SIZES, 0.5, **KW)
        expected = [gradient(t) for t in THETAS]

        def work(k):
            out = []
            for i in range(20):
                theta = THETAS[(i + k) % 4]
                J, g = objective(theta)
                out.append(((i + k) % 4, (J, g.tobytes())))
                out.append(((i + k) % 4, gradient(theta)))
            return out

        with ThreadPoolExecutor(4) as pool:
            for results in pool.map(work, range(4)):
                for k, result in results:
                    assert result == expected[k]
        """,
        layer,
        model,
    )


def test_threads_limit_is_per_thread_and_restored(rng):
    sizes = (6, 5, 3)
    X = rng.uniform(size=(2000, 6))
    y = rng.integers(0, 3, 2000)
    theta = rng.normal(size=fastbp.n_params(sizes))
    expected = fastbp.cost_and_grad(theta, X, y, sizes)
    before = numba.get_num_threads()
    seen = {}

    def worker(n):
        with fastbp.threads(n):
            seen[n] = numba.get_num_threads()
            for _ in range(5):
                J, g = fastbp.cost_and_grad(theta, X, y, sizes)
                assert J == expected[0]
                assert g.tobytes() == expected[1].tobytes()
                assert numba.get_num_threads() == n
        seen[f"after {n}"] = numba.get_num_threads()

    workers = [threading.Thread(target=worker, args=(n,)) for n in (1, 2, 1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=TIMEOUT)
    assert seen[1] == 1
    assert seen[2] == 2
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"), fastbp.threads(0):
        pass
    with pytest.raises(TypeError, match="threads"), fastbp.threads(1.5):
        pass
    with pytest.raises(RuntimeError), fastbp.threads(1):
        raise RuntimeError
    assert numba.get_num_threads() == before


def test_threading_info():
    info = fastbp.threading_info()
    assert {"layer", "threads", "fork_safe"} <= set(info)
    assert info["layer"] in ("tbb", "omp", "workqueue")
    assert info["threads"] == numba.get_num_threads()
    assert info["fork_safe"] is (info["layer"] != "omp")
    assert isinstance(np.float64(info["threads"]), np.float64)
    assert info["isa"] in ("avx2", "avx512")
    assert set(info["block_shapes"]) == {"float64", "float32"}


def test_objective_threads_option_gives_the_same_bits(rng):
    sizes = (6, 5, 3)
    X = rng.uniform(size=(3000, 6))
    y = rng.integers(0, 3, 3000)
    theta = rng.normal(size=fastbp.n_params(sizes))
    before = numba.get_num_threads()
    results = [fastbp.Objective(X, y, sizes, threads=n)(theta) for n in (None, 1, 2)]
    assert numba.get_num_threads() == before
    for J, g in results[1:]:
        assert J == results[0][0]
        assert g.tobytes() == results[0][1].tobytes()


def test_dask_threaded_scheduler_gives_the_serial_results(rng):
    dask = pytest.importorskip("dask")
    sizes = (6, 5, 3)
    X = rng.uniform(size=(3000, 6))
    y = rng.integers(0, 3, 3000)
    objective = fastbp.Objective(X, y, sizes)
    thetas = [rng.normal(size=objective.n_params) for _ in range(6)]
    expected = [objective(t) for t in thetas]
    tasks = [dask.delayed(objective)(t) for t in thetas * 3]
    results = dask.compute(*tasks, scheduler="threads", num_workers=4)
    for (J, g), (J_expected, g_expected) in zip(results, expected * 3, strict=True):
        assert J == J_expected
        assert g.tobytes() == g_expected.tobytes()
