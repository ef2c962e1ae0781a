"""What the ``fastbp`` commands do: ``demo``, ``train``, ``cost`` and ``gradcheck``.

Each ``run_*`` function takes the parsed arguments (``cli.py`` builds the parser) and returns
the exit code; a problem with the arguments, files or environment raises :class:`UserError`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._gradcheck import check_gradient
from ._io import load, save
from ._layout import unpack
from ._objective import Objective, cost, cost_and_grad
from ._workflow import FitResult, fit, init_weights

EXIT_USAGE = 2  # bad argument or file
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C

DEMO_HIDDEN = 25
DEMO_LAM = 1.0
DEMO_MAXITER = 100
DEMO_TEST_FRACTION = 0.25
DEMO_CHECK_EXAMPLES = 20
DEBUG_HIDDEN = 5  # the course's debug network (3, 5, 3)
TRAIN_HIDDEN = 25


class UserError(Exception):
    """A problem with the command's arguments, files or environment: reported in one line."""


def _check_writable(option: str, path: str | None) -> None:
    """Fail before the work, not after it, when an output file cannot be written."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UserError(f"{option} {path}: the directory {Path(path).parent} does not exist")


def _load_examples(path: str, label: int | str) -> dict[str, Any]:
    data = load(path, label=label)
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        raise UserError(f"{path}: has no {' and no '.join(missing)} (training examples)")
    return data


def _original_labels(data: dict[str, Any]) -> np.ndarray:
    """The labels as the file writes them (classes[y]), or the float targets."""
    return data["classes"][data["y"]] if "classes" in data else data["y"]


def _accuracy(model: FitResult, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples predicted right (for float targets: every output right)."""
    predicted = model.predict(X)
    if predicted.ndim == 2:
        return float(np.mean(np.all(predicted == (y >= 0.5), axis=1)))
    return float(np.mean(predicted == y))


def _time_per_call(objective: Objective, theta: np.ndarray, seconds: float = 0.3) -> float:
    """Mean wall time of ``objective(θ)`` over at least 5 calls and ``seconds``.

    θ alternates between two neighbouring vectors, so no call reuses the previous result.
    """
    thetas = (theta, np.nextafter(theta, np.inf))
    objective(theta)  # warm
    calls, start = 0, time.perf_counter()
    while calls < 5 or time.perf_counter() - start < seconds:
        objective(thetas[calls % 2])
        calls += 1
    return (time.perf_counter() - start) / calls


def _plot(path: str, model: FitResult, title: str, pixel_order: str = "C") -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("drawing needs matplotlib: pip install 'fastbp[demo]'") from None
    from ._plot import plot_training

    plot_training(
        path,
        model.history,
        unpack(model.theta, model.layer_sizes)[0],
        title=title,
        pixel_order="F" if pixel_order == "F" else "C",
    )


def _report_fit(model: FitResult) -> None:
    result = model.result
    state = "interrupted: the best θ so far is kept" if model.interrupted else result.message
    print(
        f"{len(model.history)} iterations, {result.nfev} gradient calls, {model.time:.2f} s "
        f"({state}); J = {result.fun:.6f}"
    )


# ----------------------------------------------------------------------------------- commands


def run_demo(args: argparse.Namespace) -> int:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise UserError("fastbp demo needs scikit-learn: pip install 'fastbp[demo]'") from None
    import numba

    _check_writable("--plot", args.plot)
    start = time.perf_counter()
    digits = load_digits()
    X = digits.data / 16.0  # pixels 0 … 16 → [0, 1]
    y = digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=DEMO_TEST_FRACTION, stratify=y, random_state=0
    )
    sizes = (X.shape[1], DEMO_HIDDEN, 10)
    print(
        f"fastbp {__version__} demo: scikit-learn's 8×8 digits, {len(X_train)} for training, "
        f"{len(X_test)} held out (stratified {DEMO_TEST_FRACTION:.0%}); "
        f"layers {sizes}, λ = {DEMO_LAM:g}, {numba.get_num_threads()} threads"
    )
    theta0 = init_weights(sizes, seed=args.seed)
    check = check_gradient(
        X_train[:DEMO_CHECK_EXAMPLES], y_train[:DEMO_CHECK_EXAMPLES], sizes, DEMO_LAM, theta0
    )
    verdict = "correct" if check.relative_difference < 1e-9 else "WRONG"
    print(
        f"Gradient check ({check.analytic.size} parameters, {check.m} images): relative "
        f"difference {check.relative_difference:.2e} ({verdict}: < 1e-9 expected)"
    )
    model = fit(
        X_train,
        y_train,
        (DEMO_HIDDEN,),
        lam=DEMO_LAM,
        maxiter=DEMO_MAXITER,
        theta0=theta0,
        progress=True,
    )
    _report_fit(model)
    print(f"Training accuracy: {_accuracy(model, X_train, y_train):.2%}")
    print(f"Held-out accuracy: {_accuracy(model, X_test, y_test):.2%}")
    per_call = _time_per_call(Objective(X_train, y_train, sizes, DEMO_LAM), model.theta)
    print(
        f"Time per gradient call: {per_call * 1e3:.3f} ms "
        f"(J and ∇J over {len(X_train)} images, float64)"
    )
    _plot(args.plot, model, f"fastbp demo: digits, layers {sizes}, λ = {DEMO_LAM:g}")
    print(f"Picture: {args.plot} (cost curve; the {DEMO_HIDDEN} hidden units as 8×8 images)")
    print(f"Total time: {time.perf_counter() - start:.1f} s")
    return EXIT_INTERRUPTED if model.interrupted else 0


def run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise UserError(f"--out must name a .npz file, got {args.out!r}")
    _check_writable("--out", args.out)
    _check_writable("--plot", args.plot)
    data = _load_examples(args.data, args.label)
    X = data["X"].astype(np.float32) if args.float32 else data["X"]
    y = _original_labels(data)
    hidden = tuple(args.hidden or (TRAIN_HIDDEN,))
    model = fit(X, y, hidden, lam=args.lam, maxiter=args.maxiter, seed=args.seed, progress=True)
    _report_fit(model)
    print(f"Training accuracy: {_accuracy(model, X, y):.2%} (layers {model.layer_sizes})")
    save(out, model)
    print(f"Model: {out}")
    if args.plot:
        order = "F" if Path(args.data).suffix.lower() == ".mat" else "C"
        _plot(args.plot, model, f"fastbp train {args.data}, layers {model.layer_sizes}", order)
        print(f"Picture: {args.plot}")
    return EXIT_INTERRUPTED if model.interrupted else 0


def _labels_for(data: dict[str, Any], weights: dict[str, Any]) -> np.ndarray:
    """DATA's targets as output-unit indices of the weights (through both files' classes)."""
    if data["y"].ndim == 2 or "classes" not in weights or weights is data:
        return data["y"]
    model_classes = weights["classes"]
    labels = _original_labels(data)
    index = {label: k for k, label in enumerate(model_classes.tolist())}
    unknown = [label for label in np.unique(labels).tolist() if label not in index]
    if unknown:
        raise UserError(
            f"the data has label {unknown[0]!r}, which the model's classes "
            f"{model_classes.tolist()} lack"
        )
    return np.array([index[label] for label in labels.tolist()], dtype=np.int64)


def run_cost(args: argparse.Namespace) -> int:
    data = _load_examples(args.data, args.label)
    weights = load(args.weights) if args.weights else data
    if "theta" not in weights:
        hint = "" if args.weights else "; give them with --weights FILE"
        raise UserError(
            f"{args.weights or args.data}: has no weights (Theta1, Theta2, … or a saved model)"
            + hint
        )
    y = _labels_for(data, weights)
    sizes = weights["layer_sizes"]
    if args.grad:
        J, grad = cost_and_grad(weights["theta"], data["X"], y, sizes, args.lam)
        print(f"J = {J:.10g}")
        print(f"|grad J| = {np.linalg.norm(grad):.10g}")
    else:
        print(f"J = {cost(weights['theta'], data['X'], y, sizes, args.lam):.10g}")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    lams = [0.0] if args.lam == 0 else [0.0, args.lam]
    if args.data is None:
        sizes = (3, *(args.hidden or (DEBUG_HIDDEN,)), 3)
        checks = [check_gradient(layer_sizes=sizes, lam=lam) for lam in lams]
    else:
        data = _load_examples(args.data, args.label)
        X, y = data["X"], data["y"]
        if y.ndim == 2:
            K = y.shape[1]
        else:
            n_classes = len(data["classes"])
            K = 1 if n_classes == 2 else n_classes
        rows = np.unique(np.linspace(0, X.shape[0] - 1, min(args.examples, X.shape[0])).astype(int))
        sizes = (X.shape[1], *(args.hidden or (TRAIN_HIDDEN,)), K)
        checks = [check_gradient(X[rows], y[rows], sizes, lam) for lam in lams]
    for check in checks:
        print(check)
    largest = max(check.relative_difference for check in checks)
    passed = largest <= args.threshold
    print(
        f"Largest relative difference: {largest:.3e} "
        f"({'OK' if passed else 'FAILED'}: threshold {args.threshold:g})"
    )
    return 0 if passed else EXIT_CHECK_FAILED
