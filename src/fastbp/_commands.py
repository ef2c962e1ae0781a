"""What the ``fastbp`` commands do: ``demo``, ``train``, ``predict``, ``cost`` and ``gradcheck``.

Each ``run_*`` function takes the parsed arguments (``cli.py`` builds the parser) and returns
the exit code; a problem with the arguments, files or environment raises :class:`UserError`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._gradcheck import check_gradient
from ._io import load, save
from ._layout import unpack
from ._objective import Objective, cost, cost_and_grad, predict_proba
from ._scaling import apply_scaling
from ._workflow import FitResult, fit, init_weights, predict

EXIT_USAGE = 2  # bad argument or file
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C
EXIT_PIPE_CLOSED = 141  # the shell's code for SIGPIPE: stdout's reader has gone

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


def _load_examples(path: str, label: int | str, classes: Any = None) -> dict[str, Any]:
    data = load(path, label=label, classes=classes)
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        raise UserError(f"{path}: has no {' and no '.join(missing)} (training examples)")
    return data


def _original_labels(data: dict[str, Any]) -> np.ndarray:
    """The labels as the file writes them (classes[y]), or the float targets."""
    return data["classes"][data["y"]] if "classes" in data else data["y"]


def _outputs(model: dict[str, Any], X: np.ndarray, labels: bool) -> np.ndarray:
    """A loaded model's output for every row of X, standardized as the model was trained: the
    output-unit index (``labels``: 0 … K−1, or 0/1 for one unit), or the (m, K) 0/1 matrix of
    float targets (1 where h_Θ(x) ≥ 0.5)."""
    theta, sizes = model["theta"], model["layer_sizes"]
    X = apply_scaling(X, model.get("x_mean"), model.get("x_scale"))
    if labels:
        return predict(theta, X, sizes)
    return (predict_proba(theta, X, sizes) >= 0.5).astype(np.int64)


def _accuracy(predicted: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples predicted right (for float targets: every output right)."""
    if predicted.ndim == 2:
        return float(np.mean(np.all(predicted == (y >= 0.5), axis=1)))
    return float(np.mean(predicted == y))


def _split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): a random ``test_size`` share held out, stratified by
    class (each class split in that proportion, rounded; one example of a class of two or more
    always stays for training); float targets are split without strata. Sorted row indices."""
    rng = np.random.default_rng(seed)
    strata = [np.arange(len(y))] if y.ndim == 2 else [np.flatnonzero(y == c) for c in np.unique(y)]
    held_out = []
    for rows in strata:
        n_test = min(round(test_size * len(rows)), len(rows) - 1)
        held_out.append(rng.permutation(rows)[:n_test])
    test = np.sort(np.concatenate(held_out))
    if test.size == 0:
        raise UserError(
            f"--test-size {test_size:g} holds out no example of {len(y)}: give a larger share"
        )
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def _check_inputs(model: dict[str, Any], weights: str, X: np.ndarray, data: str) -> None:
    """Fail naming both files when the data's features do not fit the weights' inputs."""
    sizes = model["layer_sizes"]
    if X.shape[1] != sizes[0]:
        raise UserError(
            f"{weights}: the weights take {sizes[0]} inputs (layers {sizes}), but {data} has "
            f"{X.shape[1]} feature columns"
        )


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
    verdict = "correct" if check.passed else "WRONG"
    print(
        f"Gradient check ({check.analytic.size} parameters, {check.m} images): relative "
        f"difference {check.relative_difference:.2e} ({verdict}: threshold {check.threshold:g})"
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
    held_out = _accuracy(model.predict(X_test), y_test)
    print(f"Training accuracy: {_accuracy(model.predict(X_train), y_train):.2%}")
    print(f"Held-out accuracy: {held_out:.2%}")
    per_call = _time_per_call(Objective(X_train, y_train, sizes, DEMO_LAM), model.theta)
    print(
        f"Time per gradient call: {per_call * 1e3:.3f} ms "
        f"(J and ∇J over {len(X_train)} images, float64)"
    )
    title = (
        f"fastbp demo: digits, layers {sizes}, λ = {DEMO_LAM:g}, held-out accuracy {held_out:.1%}"
    )
    _plot(args.plot, model, title)
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
    if "label_column" in data:
        print(f"Labels: {data['label_column']}, {len(data['classes'])} classes")
    train = test = None
    if args.test_size is not None:
        train, test = _split(y, args.test_size, args.seed)
    X_fit, y_fit = (X, y) if train is None else (X[train], y[train])
    hidden = tuple(args.hidden or (TRAIN_HIDDEN,))
    model = fit(
        X_fit,
        y_fit,
        hidden,
        lam=args.lam,
        maxiter=args.maxiter,
        seed=args.seed,
        progress=True,
        scale=args.scale,
    )
    save(out, model)  # first: a closed stdout (`| head`) must not cost the model
    _report_fit(model)
    scaled = ", features standardized" if args.scale else ""
    print(
        f"Training accuracy: {_accuracy(model.predict(X_fit), y_fit):.2%} "
        f"(layers {model.layer_sizes}{scaled})"
    )
    if test is not None:
        print(
            f"Held-out accuracy: {_accuracy(model.predict(X[test]), y[test]):.2%} "
            f"({len(test)} of {len(y)} examples, {'random' if y.ndim == 2 else 'stratified'}, "
            f"seed {args.seed})"
        )
    print(f"Model: {out}")
    if args.plot:
        order = "F" if Path(args.data).suffix.lower() == ".mat" else "C"
        _plot(args.plot, model, f"fastbp train {args.data}, layers {model.layer_sizes}", order)
        print(f"Picture: {args.plot}")
    return EXIT_INTERRUPTED if model.interrupted else 0


def run_predict(args: argparse.Namespace) -> int:
    _check_writable("--out", args.out)
    model = _load_model(args.weights)
    n_inputs, n_outputs = model["layer_sizes"][0], model["layer_sizes"][-1]
    data = load(args.data, label=args.label, n_features=n_inputs, classes=model.get("classes"))
    if "X" not in data:
        raise UserError(f"{args.data}: has no examples X")
    _check_inputs(model, args.weights, data["X"], args.data)
    classes = model.get("classes")
    if classes is None and Path(args.weights).suffix.lower() == ".mat" and n_outputs > 1:
        classes = np.arange(1, n_outputs + 1)  # the course's labels: output unit k is label k
    predicted = _outputs(model, data["X"], labels=classes is not None)
    if classes is not None:
        predicted = classes[predicted]
    lines = [",".join(map(str, row)) if predicted.ndim == 2 else str(row) for row in predicted]
    names = ["label"] if predicted.ndim == 1 else [f"output{k}" for k in range(n_outputs)]
    header = [",".join(names)] if args.out and Path(args.out).suffix.lower() == ".csv" else []
    text = "\n".join(header + lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if "y" in data:
        y = _labels_for(data, model, args.weights)
        y = classes[y] if classes is not None and y.ndim == 1 else y
        report = f"Accuracy: {_accuracy(predicted, y):.2%} ({len(y)} examples of {args.data})"
        print(report, file=sys.stdout if args.out else sys.stderr)
    if args.out:
        print(f"Predictions: {args.out} ({len(lines)} rows)")
    else:
        sys.stdout.write(text)
    return 0


def _load_model(path: str) -> dict[str, Any]:
    model = load(path)
    if "theta" not in model:
        raise UserError(f"{path}: has no weights (Theta1, Theta2, … or a saved model)")
    return model


def _labels_for(data: dict[str, Any], weights: dict[str, Any], path: str) -> np.ndarray:
    """DATA's targets as output-unit indices of the weights (through both files' classes)."""
    if data["y"].ndim == 2 or "classes" not in weights or weights is data:
        return data["y"]
    model_classes = weights["classes"]
    labels = _original_labels(data)
    index = {label: k for k, label in enumerate(model_classes.tolist())}
    unknown = [label for label in np.unique(labels).tolist() if label not in index]
    if unknown:
        raise UserError(
            f"the data has label {unknown[0]!r}, which the classes of {path} "
            f"{model_classes.tolist()} lack"
        )
    return np.array([index[label] for label in labels.tolist()], dtype=np.int64)


def run_cost(args: argparse.Namespace) -> int:
    weights = _load_model(args.weights) if args.weights else None
    classes = None if weights is None else weights.get("classes")
    data = _load_examples(args.data, args.label, classes)
    if weights is None:
        weights = data
    if "theta" not in weights:
        raise UserError(
            f"{args.data}: has no weights (Theta1, Theta2, … or a saved model); "
            "give them with --weights FILE"
        )
    source = args.weights or args.data
    _check_inputs(weights, source, data["X"], args.data)
    lam = args.lam
    lam_source = "--lam"
    if lam is None:
        lam, lam_source = weights.get("lam", 0.0), "the model's" if "lam" in weights else "default"
    y = _labels_for(data, weights, source)
    sizes = weights["layer_sizes"]
    X = apply_scaling(data["X"], weights.get("x_mean"), weights.get("x_scale"))
    if args.grad:
        J, grad = cost_and_grad(weights["theta"], X, y, sizes, lam)
        print(f"J = {J:.10g} (λ = {lam:g}, {lam_source})")
        print(f"|grad J| = {np.linalg.norm(grad):.10g}")
    else:
        print(f"J = {cost(weights['theta'], X, y, sizes, lam):.10g} (λ = {lam:g}, {lam_source})")
    accuracy = _accuracy(_outputs(weights, data["X"], labels=y.ndim == 1), y)
    print(f"Accuracy: {accuracy:.2%} ({len(y)} examples)")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    lams = [0.0] if args.lam == 0 else [0.0, args.lam]
    if args.data is None:
        sizes = (3, *(args.hidden or (DEBUG_HIDDEN,)), 3)
        checks = [
            check_gradient(layer_sizes=sizes, lam=lam, threshold=args.threshold) for lam in lams
        ]
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
        checks = [
            check_gradient(X[rows], y[rows], sizes, lam, threshold=args.threshold) for lam in lams
        ]
    for check in checks:
        print(check)
    largest = max(check.relative_difference for check in checks)
    passed = all(check.passed for check in checks)
    print(
        f"Largest relative difference: {largest:.3e} "
        f"({'OK' if passed else 'FAILED'}: threshold {args.threshold:g})"
    )
    return 0 if passed else EXIT_CHECK_FAILED
