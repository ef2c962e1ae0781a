"""fastbp's scikit-learn estimators against scikit-learn's MLP: the same fit, from the same start.

    python -m bench.estimators                  # digits, breast cancer, diabetes; a markdown table
    python -m bench.estimators --max-iter 100 --repeats 3

On each data set (scikit-learn's bundled ones) it fits ``BackpropClassifier`` (or
``BackpropRegressor``) with ``activation="sigmoid"`` and ``lam=λ``, and ``MLPClassifier`` (or
``MLPRegressor``) with ``activation="logistic"``, ``solver="lbfgs"`` and ``alpha=λ``: the same J
(the classifier's ``output="auto"`` picks scikit-learn's output: a softmax for digits' 10 classes,
one sigmoid unit for breast cancer's 2; the regressor's identity output with one target).

- **Same initial weights**: θ₀ = ``fastbp.init_weights(layer sizes, seed=0)``. Each estimator is
  first fitted with ``max_iter=1``, which sets up its state; its weights are then replaced by θ₀
  (``theta_`` for fastbp; ``coefs_`` and ``intercepts_`` for scikit-learn, through
  ``fastbp.sklearn.to_sklearn_weights``) and the measured fit runs with ``warm_start=True``.
- **Same stopping**: both run scipy's L-BFGS-B with at most ``--max-iter`` iterations and 15,000
  cost evaluations, stopping when J decreases by less than 2.2e-9 relatively (scipy's ``ftol``,
  which scikit-learn leaves as it is) or every projected gradient entry is below 1e-5
  (``gtol``: scikit-learn's ``tol=1e-5``; fastbp's ``tol=None`` keeps scipy's default, 1e-5).

The costs are each estimator's ``loss_`` (J at its final weights). The objectives agree to
1e-10 (tests/test_sklearn_parity.py); L-BFGS-B's path then differs only by rounding, which a
non-convex J can amplify over many iterations. The times are each ``fit``'s wall time, the best
of ``--repeats``, after a first fit that compiles or loads fastbp's kernels; fastbp runs its
kernels in numba's threads (every core) and its optimizer with one BLAS thread, scikit-learn its
matrix products in its BLAS's threads, timed twice: with the BLAS's default (every core, what a
user gets) and with one thread (threadpoolctl), which on a small or busy machine can be the
faster of the two. The load average before and after is printed: other processes slow both.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import fastbp

__all__ = ["DATASETS", "Parity", "fit_both", "main", "table"]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16, y  # pixels 0 … 16 → [0, 1]


def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y  # features span 1e-3 … 4e3


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)  # X already centered and scaled; y as it is


# name → (loader, is a classification task)
DATASETS: dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], bool]] = {
    "digits": (_digits, True),
    "breast_cancer": (_breast_cancer, True),
    "diabetes": (_diabetes, False),
}


@dataclass(frozen=True)
class Parity:
    """One data set's two fits: final costs, iterations and wall times."""

    dataset: str
    m: int
    layer_sizes: tuple[int, ...]
    output: str
    fastbp_cost: float
    sklearn_cost: float
    fastbp_iterations: int
    sklearn_iterations: int
    fastbp_seconds: float
    sklearn_seconds: float  # its BLAS's default threads
    sklearn_one_thread_seconds: float | None  # one BLAS thread (None: not measured)
    fastbp_theta: np.ndarray  # the final weights, fastbp's layout
    sklearn_theta: np.ndarray

    @property
    def relative_difference(self) -> float:
        """|J_fastbp − J_sklearn| / |J_sklearn| (docs/design.md's measure)."""
        return abs(self.fastbp_cost - self.sklearn_cost) / abs(self.sklearn_cost)

    @property
    def time_ratio(self) -> float:
        """fastbp's fit time ÷ scikit-learn's (below 1: fastbp is faster)."""
        return self.fastbp_seconds / self.sklearn_seconds

    @property
    def one_thread_time_ratio(self) -> float | None:
        """fastbp's fit time ÷ scikit-learn's with one BLAS thread."""
        if self.sklearn_one_thread_seconds is None:
            return None
        return self.fastbp_seconds / self.sklearn_one_thread_seconds


def _estimators(classify: bool, hidden: tuple[int, ...], lam: float, max_iter: int) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from fastbp.sklearn import BackpropClassifier, BackpropRegressor

    ours = (BackpropClassifier if classify else BackpropRegressor)(
        hidden_layer_sizes=hidden, activation="sigmoid", lam=lam, max_iter=max_iter
    )
    theirs = (MLPClassifier if classify else MLPRegressor)(
        hidden_layer_sizes=hidden,
        activation="logistic",
        solver="lbfgs",
        alpha=lam,
        max_iter=max_iter,
        tol=1e-5,
        random_state=0,
    )
    return ours, theirs


def _set_up(estimator: Any, X: np.ndarray, y: np.ndarray) -> None:
    """One iteration of fit: the estimator's state (layers, classes, output), weights to replace."""
    from sklearn.exceptions import ConvergenceWarning

    max_iter = estimator.max_iter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.set_params(max_iter=1, warm_start=False).fit(X, y)
    estimator.set_params(max_iter=max_iter, warm_start=True)


def _timed_fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Wall time of ``estimator.fit(X, y)`` (a limit of iterations reached is no error here)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        begin = time.perf_counter()
        estimator.fit(X, y)
        return time.perf_counter() - begin


def fit_both(
    dataset: str,
    *,
    hidden: tuple[int, ...] = (25,),
    lam: float = 1.0,
    max_iter: int = 200,
    repeats: int = 1,
    one_blas_thread: bool = False,
) -> Parity:
    """Fit both estimators on ``dataset`` (a key of :data:`DATASETS`) from the same θ₀ with the
    same stopping rules; the times are the best of ``repeats`` fits (each from θ₀ again). With
    ``one_blas_thread``, scikit-learn's fit is also timed with one BLAS thread (threadpoolctl),
    from θ₀ again; the costs and weights are those of the fit with its default threads."""
    from threadpoolctl import threadpool_limits

    from fastbp.sklearn import from_sklearn_weights, to_sklearn_weights

    load, classify = DATASETS[dataset]
    X, y = load()
    best = {"fastbp": np.inf, "sklearn": np.inf, "sklearn, one thread": np.inf}
    for _ in range(repeats):
        ours, theirs = _estimators(classify, hidden, lam, max_iter)
        _set_up(ours, X, y)
        _set_up(theirs, X, y)
        sizes = ours.layer_sizes_
        theta0 = fastbp.init_weights(sizes, seed=0)
        coefs, intercepts = to_sklearn_weights(theta0, sizes)
        if [c.shape for c in theirs.coefs_] != [c.shape for c in coefs]:
            raise RuntimeError(f"scikit-learn set up another network than {sizes} on {dataset}")
        ours.theta_ = theta0
        best["fastbp"] = min(best["fastbp"], _timed_fit(ours, X, y))
        theirs.coefs_ = [np.array(c) for c in coefs]
        theirs.intercepts_ = [np.array(b) for b in intercepts]
        best["sklearn"] = min(best["sklearn"], _timed_fit(theirs, X, y))
        sklearn_cost, sklearn_iterations = float(theirs.loss_), theirs.n_iter_
        sklearn_theta = from_sklearn_weights(theirs.coefs_, theirs.intercepts_)
        if one_blas_thread:
            theirs.coefs_ = [np.array(c) for c in coefs]
            theirs.intercepts_ = [np.array(b) for b in intercepts]
            with threadpool_limits(limits=1, user_api="blas"):
                seconds = _timed_fit(theirs, X, y)
            best["sklearn, one thread"] = min(best["sklearn, one thread"], seconds)
    return Parity(
        dataset=dataset,
        m=X.shape[0],
        layer_sizes=ours.layer_sizes_,
        output=ours.output_,
        fastbp_cost=ours.loss_,
        sklearn_cost=sklearn_cost,
        fastbp_iterations=ours.n_iter_,
        sklearn_iterations=sklearn_iterations,
        fastbp_seconds=best["fastbp"],
        sklearn_seconds=best["sklearn"],
        sklearn_one_thread_seconds=best["sklearn, one thread"] if one_blas_thread else None,
        fastbp_theta=ours.theta_,
        sklearn_theta=sklearn_theta,
    )


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.0f} ms"


def _ratio(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}"


def table(results: list[Parity]) -> str:
    """The markdown table of :func:`fit_both`'s results."""
    header = (
        "| data set | m | layer sizes | output | J fastbp | J scikit-learn | rel. diff. "
        "| iterations (fastbp / sklearn) | fit fastbp | fit scikit-learn | time ratio "
        "| fit scikit-learn, 1 BLAS thread | time ratio |"
    )
    rows = [
        f"| {r.dataset} | {r.m} | {'-'.join(map(str, r.layer_sizes))} | {r.output} "
        f"| {r.fastbp_cost:.6g} | {r.sklearn_cost:.6g} | {r.relative_difference:.1e} "
        f"| {r.fastbp_iterations} / {r.sklearn_iterations} | {_ms(r.fastbp_seconds)} "
        f"| {_ms(r.sklearn_seconds)} | {r.time_ratio:.2f} "
        f"| {_ms(r.sklearn_one_thread_seconds)} | {_ratio(r.one_thread_time_ratio)} |"
        for r in results
    ]
    lines = [header, "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--hidden", type=int, nargs="*", default=[25], help="hidden layer sizes")
    parser.add_argument("--lam", type=float, default=1.0, help="λ, scikit-learn's alpha")
    parser.add_argument("--max-iter", type=int, default=200, help="L-BFGS-B's iteration limit")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per estimator")
    args = parser.parse_args(argv)

    from .machine import describe_machine

    machine = describe_machine()
    versions = ", ".join(
        f"{name} {machine['versions'][name]}"
        for name in ("numba", "numpy", "scipy", "scikit-learn")
    )
    load_before = os.getloadavg()[0]
    # Compile (or load from numba's cache) the kernels the fits use, outside the timings.
    fit_both(args.datasets[0], hidden=tuple(args.hidden), lam=args.lam, max_iter=2)
    results = [
        fit_both(
            name,
            hidden=tuple(args.hidden),
            lam=args.lam,
            max_iter=args.max_iter,
            repeats=args.repeats,
            one_blas_thread=True,
        )
        for name in args.datasets
    ]
    print(
        f"{machine['cpu']}, {machine['cores_available']} cores; {versions}; "
        f"λ = {args.lam:g}, at most {args.max_iter} L-BFGS-B iterations, best of "
        f"{args.repeats} fits; load average (1 min) {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after\n"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
