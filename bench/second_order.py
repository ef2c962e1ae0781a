"""Second-order methods with fastbp's exact H·v against L-BFGS-B: final J against wall time.

``python -m bench.second_order [--cases digits ex4] [--plot bench/second-order.png]``

Every method starts from the same θ0 (``fastbp.init_weights`` with seed 0) on the case's data
(float64, the case's λ) through :func:`fastbp.fit`, which passes ``hessp`` to the methods that
take it. The callback records J and the wall time after every iteration; the table gives the
final J, the time, and the time each method took to come within 1% (in J − J_best) of the best
J any method reached.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import fastbp

from .cases import CASES, make_problem

# (label, method, hessian, maxiter)
METHODS = (
    ("L-BFGS-B", "L-BFGS-B", "exact", 400),
    ("trust-krylov (H·v)", "trust-krylov", "exact", 100),
    ("Newton-CG (H·v)", "Newton-CG", "exact", 100),
    ("trust-ncg (G·v)", "trust-ncg", "gauss-newton", 100),
)


def trace(case: str) -> dict[str, Any]:
    """Each method's (seconds, J) after every iteration on the case."""
    problem = make_problem(CASES[case], np.float64)
    sizes = problem.layer_sizes
    theta0 = fastbp.init_weights(sizes, seed=0)
    fastbp.fit(problem.X, problem.y, sizes[1:-1], lam=problem.lam, maxiter=1, theta0=theta0)
    traces = {}
    for label, method, hessian, maxiter in METHODS:
        fastbp.fit(problem.X[:64], problem.y[:64], sizes[1:-1], method=method, maxiter=1)  # warm
        points: list[tuple[float, float]] = []
        start = time.perf_counter()

        def record(
            result: Any, points: list[tuple[float, float]] = points, start: float = start
        ) -> None:
            points.append((time.perf_counter() - start, float(result.fun)))

        fastbp.fit(
            problem.X, problem.y, sizes[1:-1], lam=problem.lam, method=method, hessian=hessian,
            maxiter=maxiter, theta0=theta0, callback=record,
        )  # fmt: skip
        traces[label] = points
    return {"case": case, "layer_sizes": sizes, "m": problem.m, "traces": traces}


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| case | method | iterations | final J | seconds | seconds to J_best + 1% |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        best = min(points[-1][1] for points in result["traces"].values())
        for label, points in result["traces"].items():
            target = best + 0.01 * abs(best)
            reached = next((t for t, J in points if J <= target), None)
            rows.append(
                f"| {result['case']} | {label} | {len(points)} | {points[-1][1]:.6g} "
                f"| {points[-1][0]:.2f} | {'–' if reached is None else f'{reached:.2f}'} |"
            )
    return "\n".join(rows)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), squeeze=False)
    for ax, result in zip(axes[0], results, strict=True):
        for label, points in result["traces"].items():
            seconds, J = zip(*points, strict=True)
            ax.plot(seconds, J, label=label, marker=".", markersize=3)
        ax.set_yscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("J (training cost)")
        ax.set_title(f"{result['case']}: layers {result['layer_sizes']}, m = {result['m']}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.second_order", description=__doc__)
    parser.add_argument("--cases", nargs="+", default=["digits", "ex4"], choices=sorted(CASES))
    parser.add_argument("--plot", type=Path, help="draw J against wall time into this file")
    args = parser.parse_args(argv)
    results = [trace(case) for case in args.cases]
    print(table(results))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
