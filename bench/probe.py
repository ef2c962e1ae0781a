"""Measurements that need a fresh process: fastbp's start-up (compile, cache) and its memory.

The parent (``python -m bench``) runs ``python -m bench.probe startup|memory ...`` and reads one
JSON object from its standard output; :func:`startup_times` and :func:`memory_profile` do that.

Memory: the extra memory of one call is the peak resident set size during the call minus the
resident set size just before it. ``tracemalloc`` would miss it (it sees only Python's allocator,
not numba's NRT nor OpenBLAS), a sampling thread can miss a short peak, and ``ru_maxrss`` keeps the
peak of the import and compilation. Linux's ``VmHWM`` (peak RSS) can be reset by writing ``5`` to
``/proc/self/clear_refs``: reset it just before the call, read it just after, and the peak of that
call alone is measured exactly, to the page.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["memory_profile", "startup_times"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_CASE = "ex4"
SERIAL_M = 64  # one block: the serial kernel
PARALLEL_M = 4096  # several blocks: the parallel kernel


def _run_probe(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m bench.probe ARGS`` in a new process; return its JSON answer."""
    env = {**os.environ, **env}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.probe {' '.join(args)} failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def startup_times(dtypes: list[str], threads: int) -> dict[str, Any]:
    """fastbp's cold compile (empty numba cache) and cached first call, each in a new process.

    Both processes share one fresh ``NUMBA_CACHE_DIR``: the first fills it, the second loads.
    Each process imports fastbp, then per dtype makes a first call on a problem small enough for
    the serial kernel and a first call on one with several blocks (the parallel kernel), and a
    second call on each, which estimates the computing part of the first. Returns, for the cold
    and the cached process, the import time and per dtype the first calls' times.
    """
    env = {"NUMBA_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="fastbp-numba-cache-") as cache:
        env["NUMBA_CACHE_DIR"] = cache
        cold = _run_probe(["startup", *dtypes], env)
        cached = _run_probe(["startup", *dtypes], env)
    return {
        "case": STARTUP_CASE,
        "serial_m": SERIAL_M,
        "parallel_m": PARALLEL_M,
        "cold": cold,
        "cached": cached,
    }


def memory_profile(ms: list[int], dtype: str, threads: int) -> list[dict[str, Any]]:
    """Extra memory of one (J, grad) call on the ex4 network, for each m, in new processes.

    fastbp and the NumPy course formulation side by side (each after two warm-up calls).
    glibc's malloc would serve a call's large buffers from memory that the warm-up calls freed
    and that stays resident (its mmap threshold grows as large blocks are freed), hiding them;
    a fixed threshold of 64 KiB makes every buffer of 64 KiB or more a fresh mapping, returned
    to the system when freed, so each call's large buffers show in its peak.
    """
    env = {"NUMBA_NUM_THREADS": str(threads), "MALLOC_MMAP_THRESHOLD_": "65536"}
    return [_run_probe(["memory", dtype, str(m)], env) for m in ms]


# What runs inside the probe process ---------------------------------------------------------


def _startup(dtypes: list[str]) -> dict[str, Any]:
    # Nothing numerical is imported before this point: the import time includes numpy's.
    start = time.perf_counter()
    import fastbp

    result: dict[str, Any] = {"import_s": time.perf_counter() - start}
    from .cases import CASES, make_problem

    for dtype in dtypes:
        calls = {}
        for path, m in (("serial", SERIAL_M), ("parallel", PARALLEL_M)):
            p = make_problem(CASES[STARTUP_CASE], dtype, m)
            args = (p.X, p.y, p.layer_sizes, p.lam)
            first = _seconds(lambda p=p, args=args: fastbp.cost_and_grad(p.theta, *args))
            again = _seconds(lambda p=p, args=args: fastbp.cost_and_grad(p.theta_alt, *args))
            calls[path] = {"first_call_s": first, "second_call_s": again}
        result[dtype] = calls
    return result


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _extra_bytes(call: Any, theta: np.ndarray, theta_alt: np.ndarray) -> int:
    """Peak RSS during ``call(theta)`` minus RSS before it, after two warm-up calls."""
    call(theta)
    call(theta_alt)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS
    call(theta)
    return max(0, _status_kib("VmHWM") - before) * 1024


def _memory(dtype: str, m: int) -> dict[str, Any]:
    from .cases import CASES, make_problem
    from .implementations import IMPLEMENTATIONS

    problem = make_problem(CASES[STARTUP_CASE], dtype, m)
    result: dict[str, Any] = {
        "m": m,
        "dtype": dtype,
        "X_bytes": problem.X.nbytes,
        "theta_bytes": problem.theta.nbytes,
    }
    for key in ("fastbp", "numpy"):
        prepared = IMPLEMENTATIONS[key].prepare(problem)
        result[f"{key}_extra_bytes"] = _extra_bytes(
            prepared.call, prepared.theta, prepared.theta_alt
        )
        del prepared
    return result


def _seconds(f: Any) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    startup = sub.add_parser("startup")
    startup.add_argument("dtypes", nargs="+", choices=["float64", "float32"])
    memory = sub.add_parser("memory")
    memory.add_argument("dtype", choices=["float64", "float32"])
    memory.add_argument("m", type=int)
    args = parser.parse_args(argv)
    if args.what == "startup":
        print(json.dumps(_startup(args.dtypes)))
    else:
        print(json.dumps(_memory(args.dtype, args.m)))


if __name__ == "__main__":
    main()
