"""Timing: one thread count for everyone, median of repeated calls after warm-up, GEMM peak."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import numba
import numpy as np
from numpy.typing import DTypeLike
from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "Timing",
    "available_cores",
    "gemm_peak",
    "thread_count",
    "time_calls",
    "time_in_rounds",
]

MAX_SAMPLES = 100  # timed samples per measurement; cheap calls are batched into samples
MIN_SAMPLES = 3
WARM_UP_SHARE = 0.2  # share of the time budget spent on warm-up calls (at least one call)
ROUNDS = 3  # the implementations of a problem are timed in turn, this many times over
ONE_ROUND_ABOVE = 1.0  # seconds per call from which an implementation is timed in one round


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


@contextmanager
def thread_count(n: int) -> Iterator[dict[str, Any]]:
    """Run every library with ``n`` threads; restore the previous settings on exit.

    numba (fastbp) through ``numba.set_num_threads``, OpenBLAS (NumPy, scikit-learn) through
    threadpoolctl, PyTorch through ``torch.set_num_threads`` (when it is imported before this
    block). XLA (JAX) has no per-call setting
    for a thread count between 1 and all cores; it sizes its pool from the CPU affinity when JAX
    is imported, so with ``n`` below the available cores the process is pinned to ``n`` cores
    (which bounds every library) and JAX must first be imported inside this block.
    Yields the thread count each library reports.
    """
    cores = sorted(os.sched_getaffinity(0))
    most = min(len(cores), numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if not 1 <= n <= most:
        raise ValueError(f"threads must be between 1 and {most} (the cores available), got {n}")
    old_numba = numba.get_num_threads()
    torch: Any = sys.modules.get("torch")  # set only if the caller imported it: see above
    old_torch = torch.get_num_threads() if torch else None
    try:
        if n < len(cores):
            os.sched_setaffinity(0, cores[:n])
        numba.set_num_threads(n)
        if torch:
            torch.set_num_threads(n)
        with threadpool_limits(n):
            blas = {f"{p['internal_api']}": p["num_threads"] for p in threadpool_info()}
            yield {
                "numba": numba.get_num_threads(),
                **blas,
                **({"torch": torch.get_num_threads()} if torch else {}),
                "cpu_affinity": len(os.sched_getaffinity(0)),
            }
    finally:
        numba.set_num_threads(old_numba)
        if torch and old_torch is not None:
            torch.set_num_threads(old_torch)
        os.sched_setaffinity(0, cores)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median over samples, each sample the mean of ``batch`` calls."""

    median: float
    minimum: float
    maximum: float
    samples: int
    batch: int
    warm_up_calls: int
    round_medians: tuple[float, ...] = ()  # from time_in_rounds: every round's median

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_calls(
    call: Callable[[Any], object],
    inputs: Sequence[Any],
    seconds: float,
    min_samples: int = MIN_SAMPLES,
) -> Timing:
    """Time ``call`` over about ``seconds``, cycling through ``inputs`` call after call.

    Cycling keeps every call a computation for any implementation that remembers its last result
    (``fastbp.Objective.fun``/``jac`` do; ``obj(θ)`` itself always computes). Warm-up calls first (at least
    one, about ``WARM_UP_SHARE`` of the budget), then between ``min_samples`` and ``MAX_SAMPLES``
    samples; a call shorter than the budget per sample is repeated ``batch`` times per sample,
    so the clock's resolution does not matter.
    """
    clock = time.perf_counter
    count = 0

    def run(n: int) -> float:
        nonlocal count
        start = clock()
        for _ in range(n):
            call(inputs[count % len(inputs)])
            count += 1
        return clock() - start

    warm_up, warm_up_time = 0, 0.0
    while warm_up == 0 or warm_up_time < WARM_UP_SHARE * seconds:
        warm_up_time += run(1)
        warm_up += 1
    per_call = warm_up_time / warm_up
    n_samples = max(min_samples, min(MAX_SAMPLES, math.floor(seconds / per_call)))
    batch = max(1, round(seconds / n_samples / per_call))
    samples = [run(batch) / batch for _ in range(n_samples)]
    return Timing(statistics.median(samples), min(samples), max(samples), n_samples, batch, warm_up)


def time_in_rounds(
    targets: Sequence[tuple[Callable[[Any], object], Sequence[Any]]],
    seconds: float,
    rounds: int = ROUNDS,
) -> list[Timing | Exception]:
    """Time several implementations of one problem in turn, ``rounds`` times over.

    Each round gives every target ``seconds / rounds`` of :func:`time_calls` (at least one
    sample), whose warm-up also absorbs what the previous target left running (thread pools
    still spinning). A target's result is its best round, by median: load from outside this
    process comes in bursts, and a burst then slows one round of one target, not its result.
    Targets slower than ``ONE_ROUND_ABOVE`` per call are timed in the first round only, with
    ``MIN_SAMPLES`` samples. ``round_medians`` keeps every round's median. A target that
    raises is timed no further: its exception takes the place of its timing.
    """
    per_target: list[list[Timing]] = [[] for _ in targets]
    failures: dict[int, Exception] = {}
    for r in range(rounds):
        for i, (timings, (call, inputs)) in enumerate(zip(per_target, targets, strict=True)):
            if i in failures or (r > 0 and timings[0].median >= ONE_ROUND_ABOVE):
                continue
            try:
                min_samples = MIN_SAMPLES if r == 0 else 1
                timings.append(time_calls(call, inputs, seconds / rounds, min_samples))
            except Exception as error:  # noqa: BLE001  (reported by the caller, like a failed check)
                failures[i] = error
    return [
        failures[i]
        if i in failures
        else replace(
            min(timings, key=lambda timing: timing.median),
            round_medians=tuple(timing.median for timing in timings),
        )
        for i, timings in enumerate(per_target)
    ]


def gemm_peak(dtype: DTypeLike, n: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """This machine's matrix-multiply rate: the best of ``repeats`` n × n NumPy products.

    The best, not the median, since it stands for what the cores can do; run inside
    :func:`thread_count` so that OpenBLAS uses the benchmark's thread count.
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    a @ b  # warm-up: thread pool start, page faults
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return {"n": n, "seconds": best, "gflops": 2 * n**3 / best / 1e9}


def _timed(f: Callable[[], object]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start
