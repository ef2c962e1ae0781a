"""Measure one problem: check every implementation against fastbp, then time those that agree,
all of them in turn, round after round (:func:`bench.timing.time_in_rounds`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cases import Problem, flops_per_example
from .implementations import IMPLEMENTATIONS, Implementation, Prepared, check
from .machine import cpu_jiffies, stolen_percent
from .timing import time_in_rounds

__all__ = ["measure_problem"]

REFERENCE = IMPLEMENTATIONS["fastbp"]


def measure_problem(
    problem: Problem,
    implementations: Sequence[Implementation],
    seconds: float,
    peak_gflops: float,
    log: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """One record per implementation: its agreement with fastbp and, if it agrees, its timing.

    ``status`` is "timed", "disagrees" (relative error above docs/design.md's tolerance: reported,
    not timed), "missing" (an optional peer that is not installed) or "failed" (it raised; the
    message is kept). Each timed record has ms per (J, grad) call, GFLOP/s, % of ``peak_gflops``
    and ``fastbp_over_this``: fastbp's time divided by this implementation's, and
    ``cpu_stolen_percent``: the share of the cores' time the hypervisor took while the problem's
    implementations were timed (the same for all of them; None where /proc/stat is absent).
    """
    reference_prepared = REFERENCE.prepare(problem)
    J_ref, grad_ref = reference_prepared.call(problem.theta)
    reference = (J_ref, np.array(grad_ref))
    flops = flops_per_example(problem.layer_sizes) * problem.m
    records = []
    timed: list[tuple[dict[str, Any], Prepared]] = []  # (record, prepared) of those that agree
    for impl in implementations:
        record: dict[str, Any] = {
            "case": problem.case.name,
            "layer_sizes": list(problem.layer_sizes),
            "activation": problem.activation,
            "output": problem.output,
            "m": problem.m,
            "dtype": problem.dtype.name,
            "implementation": impl.key,
            "status": "timed",
            "note": None,
            "cost_error": None,
            "grad_error": None,
            "tolerance": None,
            "timing": None,
            "ms": None,
            "gflops": None,
            "percent_of_peak": None,
            "fastbp_over_this": None,
            "cpu_stolen_percent": None,
        }
        records.append(record)
        missing = impl.missing()
        if missing:
            record.update(status="missing", note=missing)
            log(f"{_label(record)}: skipped, {missing}")
            continue
        try:
            prepared = reference_prepared if impl is REFERENCE else impl.prepare(problem)
            agreement = check(prepared, reference, problem.dtype)
            record.update(
                cost_error=agreement.cost,
                grad_error=agreement.grad,
                tolerance=agreement.tolerance,
            )
            if not agreement.ok:
                record.update(
                    status="disagrees",
                    note=(
                        f"differs from fastbp: J by {agreement.cost:.2g}, gradient by "
                        f"{agreement.grad:.2g} (tolerance {agreement.tolerance:g}); not timed"
                    ),
                )
                log(f"{_label(record)}: {record['note']}")
                continue
        except Exception as error:  # a peer's failure is reported, it does not stop the run
            if impl is REFERENCE:
                raise
            record.update(status="failed", note=f"{type(error).__name__}: {error}")
            log(f"{_label(record)}: failed, {record['note']}")
            continue
        timed.append((record, prepared))
    before = cpu_jiffies()
    timings = time_in_rounds(
        [(prepared.call, (prepared.theta, prepared.theta_alt)) for _, prepared in timed], seconds
    )
    stolen = stolen_percent(before, cpu_jiffies())
    for (record, _), timing in zip(timed, timings, strict=True):
        if isinstance(timing, Exception):
            if record["implementation"] == REFERENCE.key:
                raise timing
            record.update(status="failed", note=f"{type(timing).__name__}: {timing}")
            log(f"{_label(record)}: failed while timed, {record['note']}")
            continue
        record.update(
            timing=timing.as_dict(),
            ms=timing.median * 1e3,
            gflops=flops / timing.median / 1e9,
            percent_of_peak=100 * flops / timing.median / 1e9 / peak_gflops,
            cpu_stolen_percent=stolen,
        )
        log(f"{_label(record)}: {record['ms']:.4g} ms, {record['gflops']:.3g} GFLOP/s")
    fastbp_ms = next((r["ms"] for r in records if r["implementation"] == REFERENCE.key), None)
    for record in records:
        if record["ms"] is not None and fastbp_ms is not None:
            record["fastbp_over_this"] = fastbp_ms / record["ms"]
    return records


def _label(record: dict[str, Any]) -> str:
    return f"{record['case']} m={record['m']} {record['dtype']} {record['implementation']}"
