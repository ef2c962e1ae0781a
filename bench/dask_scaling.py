"""Time per (J, grad) call: in-process Objective against DaskObjective on a LocalCluster.

    python bench/dask_scaling.py                  # m = 1e5 and 1e6 on (100, 25, 10), float64
    python bench/dask_scaling.py --m 100000 --repeats 5 --dtype float32

For every m it times, after a warm-up call, ``Objective(X, y)(θ)`` in this process (numba's
threads on every core) and ``DaskObjective(X, y)(θ)`` on ``LocalCluster(processes=True)`` with
``--workers`` worker processes of one task thread each (numba parallelizes inside each task
with its default thread count), X and y generated on the workers in
``--chunks`` row chunks. Every call gets a fresh θ (so that no call can be answered from a
remembered result). It also reports Dask's fixed cost per call (the same call on one
chunk of 256 rows, where the computation itself takes microseconds), and the cost of the first
DaskObjective on fresh workers: its construction (the workers import fastbp) and its first call
(the workers load the kernels from numba's disk cache, which this process filled).
Timings are medians of ``--repeats`` calls; the machine's other load adds noise.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np


def median_seconds(call: Callable[[np.ndarray], object], thetas: list[np.ndarray]) -> float:
    times = []
    for theta in thetas:
        start = time.perf_counter()
        call(theta)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--m", type=float, nargs="+", default=[1e5, 1e6], help="example counts")
    parser.add_argument("--layers", type=int, nargs="+", default=[100, 25, 10])
    parser.add_argument("--chunks", type=int, default=4, help="row chunks of the dask arrays")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()

    import dask.array as da
    from distributed import Client, LocalCluster

    import fastbp
    from fastbp.dask import DaskObjective

    sizes = tuple(args.layers)
    rng = np.random.default_rng(0)
    thetas = [rng.normal(0, 0.1, fastbp.n_params(sizes)) for _ in range(args.repeats + 1)]
    print(f"layers {sizes}, {args.dtype}; {args.workers} worker processes x 1 task thread")
    with (
        LocalCluster(
            n_workers=args.workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        tiny = DaskObjective(
            da.zeros((256, sizes[0]), dtype=args.dtype, chunks=256),
            np.zeros(256, int),
            sizes,
            client=client,
        )
        construction = time.perf_counter() - start
        start = time.perf_counter()
        tiny(thetas[0])
        first_call = time.perf_counter() - start
        overhead = median_seconds(tiny, thetas[1:])
        print(
            f"first DaskObjective: {construction:.2f} s to construct (the workers import fastbp; "
            f"this process loads the kernels), {first_call:.2f} s for the first call (the "
            "workers load the kernels from numba's disk cache)"
        )
        print(f"Dask's fixed cost per call (one chunk of 256 rows): {overhead * 1e3:.1f} ms")
        print()
        print("| m | chunks | in-process ms/call | LocalCluster ms/call | ratio |")
        print("|---|---|---|---|---|")
        for m in map(int, args.m):
            # Generated on the workers, chunked along rows; the same values, gathered, in memory.
            rows = -(-m // args.chunks)
            X_dask = da.random.default_rng(1).random((m, sizes[0]), chunks=(rows, sizes[0]))
            X_dask = X_dask.astype(args.dtype)
            y_dask = da.random.default_rng(2).integers(0, sizes[-1], m, chunks=rows)
            X, y = client.compute([X_dask, y_dask], sync=True)
            local = fastbp.Objective(X, y, sizes)
            local(thetas[0])
            in_process = median_seconds(local, thetas[1:])
            remote = DaskObjective(X_dask, y_dask, sizes, client=client)
            remote(thetas[0])
            on_cluster = median_seconds(remote, thetas[1:])
            print(
                f"| {m:.0e} | {remote.n_chunks} | {in_process * 1e3:.0f} | "
                f"{on_cluster * 1e3:.0f} | {on_cluster / in_process:.2f} |"
            )
            del remote  # frees the chunks held on the workers


if __name__ == "__main__":
    main()
