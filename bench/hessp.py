"""Hessian-vector products: fastbp's ``Objective.hessp`` against JAX's jitted ``jvp`` of ``grad``
and PyTorch's double backward, per case and dtype, and as a multiple of fastbp's own gradient.

``python -m bench.hessp [--cases CASE …] [--dtype float64|float32|both] [--seconds S] [--out F]``

Every implementation computes H(θ)·v of the same J (``bench.implementations``' losses) and is
checked against fastbp's H·v first (relative 1e-9 in float64, 1e-4 in float32, the gradient's
tolerances); each is then timed in rounds (:func:`bench.timing.time_in_rounds`) with all cores,
at two θ in turn. Prints a markdown table and writes the records as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import fastbp

from .cases import CASES, make_problem
from .implementations import TOLERANCE, jax_loss, torch_loss
from .machine import describe_machine
from .timing import available_cores, thread_count, time_in_rounds

DEFAULT_CASES = ("digits", "ex4", "deep", "mnist", "wide", "mnist-relu", "tanh-regression")
HessianProduct = Callable[[np.ndarray, np.ndarray], np.ndarray]


def jax_hvp(problem: Any) -> HessianProduct:
    """H·v as a JAX user writes it: ``jvp`` of ``grad``, jit-compiled."""
    import jax

    loss, X, Y = jax_loss(problem)
    grad = jax.grad(loss)
    hvp = jax.jit(lambda theta, v: jax.jvp(lambda t: grad(t, X, Y), (theta,), (v,))[1])
    return lambda theta, v: np.asarray(hvp(theta, v))


def torch_hvp(problem: Any) -> HessianProduct:
    """H·v as a PyTorch user writes it: a double backward through the graph of the gradient."""
    import torch

    loss = torch_loss(problem)

    def hvp(theta_array: np.ndarray, v_array: np.ndarray) -> np.ndarray:
        theta = torch.from_numpy(theta_array).requires_grad_()
        (grad,) = torch.autograd.grad(loss(theta), theta, create_graph=True)
        (hv,) = torch.autograd.grad(grad @ torch.from_numpy(v_array), theta)
        return hv.numpy()

    return hvp


def along(hvp: HessianProduct, v: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """θ ↦ H(θ)·v."""
    return lambda theta: hvp(theta, v)


def measure(case: str, dtype: np.dtype, seconds: float) -> list[dict[str, Any]]:
    """Records for one case and dtype: fastbp's gradient, H·v and G·v, and the peers' H·v."""
    problem = make_problem(CASES[case], dtype)
    objective = fastbp.Objective(
        problem.X, problem.y, problem.layer_sizes, problem.lam, **problem.case.network_keywords
    )
    rng = np.random.default_rng(0)
    v = rng.normal(size=problem.theta.size).astype(dtype)
    thetas = [problem.theta, problem.theta_alt]
    targets: dict[str, tuple[Callable[[Any], object], list[Any]]] = {
        "fastbp gradient": (objective, thetas),
        "fastbp hessp": (lambda theta: objective.hessp(theta, v), thetas),
        "fastbp gauss-newton": (lambda theta: objective.hessp(theta, v, "gauss-newton"), thetas),
    }
    errors: dict[str, float | None] = {name: None for name in targets}
    expected = objective.hessp(problem.theta, v)
    for name, make in (("jax jvp(grad)", jax_hvp), ("torch double backward", torch_hvp)):
        try:
            hvp = make(problem)
            got = hvp(problem.theta, v)
        except ImportError as error:
            print(f"{name}: not installed ({error})", file=sys.stderr)
            continue
        relative = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
        errors[name] = relative
        if relative > TOLERANCE[np.dtype(dtype)]:
            print(f"{name} disagrees on {case} {dtype}: {relative:.2e}", file=sys.stderr)
            continue
        targets[name] = (along(hvp, v), thetas)
    timings = time_in_rounds(list(targets.values()), seconds)
    gradient_ms = timings[0].median * 1e3  # type: ignore[union-attr]
    hessp_ms = timings[1].median * 1e3  # type: ignore[union-attr]
    records = []
    for name, timing in zip(targets, timings, strict=True):
        ms = timing.median * 1e3  # type: ignore[union-attr]
        records.append(
            {
                "case": case,
                "dtype": np.dtype(dtype).name,
                "implementation": name,
                "ms": ms,
                "over_gradient": ms / gradient_ms,
                "fastbp_hessp_over_this": hessp_ms / ms,
                "error": errors.get(name),
                "timing": timing.as_dict(),  # type: ignore[union-attr]
            }
        )
    return records


def table(records: list[dict[str, Any]]) -> str:
    """One row per case and dtype: ms per call, H·v ÷ gradient, and fastbp's H·v ÷ each peer's."""
    rows = [
        (
            "| case | dtype | gradient ms | H·v ms | H·v ÷ gradient | G·v ÷ gradient "
            "| JAX jvp(grad) ms | fastbp ÷ JAX | PyTorch ms | fastbp ÷ PyTorch |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for record in records:
        by_key.setdefault((record["case"], record["dtype"]), {})[record["implementation"]] = record
    for (case, dtype), got in by_key.items():

        def cell(name: str, field: str, fmt: str = ".3g", got: dict[str, Any] = got) -> str:
            return format(got[name][field], fmt) if name in got else "–"

        rows.append(
            f"| {case} | {dtype} | {cell('fastbp gradient', 'ms')} | {cell('fastbp hessp', 'ms')} "
            f"| {cell('fastbp hessp', 'over_gradient', '.2f')} "
            f"| {cell('fastbp gauss-newton', 'over_gradient', '.2f')} "
            f"| {cell('jax jvp(grad)', 'ms')} "
            f"| {cell('jax jvp(grad)', 'fastbp_hessp_over_this', '.2f')} "
            f"| {cell('torch double backward', 'ms')} "
            f"| {cell('torch double backward', 'fastbp_hessp_over_this', '.2f')} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hessp", description=__doc__)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, choices=sorted(CASES))
    parser.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=6.0, help="per case, dtype and peer")
    parser.add_argument("--out", type=Path, help="write the records and the machine as JSON")
    args = parser.parse_args(argv)
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    import torch  # noqa: F401  (before thread_count, which then sets its threads)

    records: list[dict[str, Any]] = []
    with thread_count(available_cores()) as threads:
        for case in args.cases:
            for dtype in dtypes:
                records += measure(case, np.dtype(dtype), args.seconds)
                print(f"{case} {dtype} done", file=sys.stderr)
    print(table(records))
    if args.out:
        info = {"machine": describe_machine(), "threads": threads, "records": records}
        args.out.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
