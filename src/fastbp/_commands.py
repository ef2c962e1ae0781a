"""What the ``fastbp`` commands do: ``demo``, ``train``, ``predict``, ``cost`` and ``gradcheck``.

Each ``run_*`` function takes the parsed arguments (``cli.py`` builds the parser) and returns
the exit code; a problem with the arguments, files or environment raises :class:`UserError`.
Reading files and judging a model's outputs is in ``_command_data``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from ._command_data import (
    UserError,
    accuracy,
    activation_names,
    check_inputs,
    labels_for,
    load_examples,
    load_model,
    network_of,
    original_labels,
    outputs,
    quality,
)
from ._gradcheck import check_gradient
from ._io import load, save
from ._layout import unpack
from ._model import FitResult
from ._objective import Objective, cost, cost_and_grad
from ._scaling import apply_scaling
from ._workflow import fit, init_weights

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


def _check_writable(option: str, path: str | None) -> None:
    """Fail before the work, not after it, when an output file cannot be written."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UserError(f"{option} {path}: the directory {Path(path).parent} does not exist")


def _split(
    y: np.ndarray, test_size: float, seed: int, stratify: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): a random ``test_size`` share held out, stratified by
    class (each class split in that proportion, rounded; one example of a class of two or more
    always stays for training); float targets (``stratify`` False; by default for a 2-D y) are
    split without strata. Sorted row indices."""
    rng = np.random.default_rng(seed)
    if stratify is None:
        stratify = y.ndim == 1
    strata = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
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
    held_out = accuracy(model.predict(X_test), y_test)
    print(f"Training accuracy: {accuracy(model.predict(X_train), y_train):.2%}")
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
    hidden = tuple(args.hidden or (TRAIN_HIDDEN,))
    activation = activation_names(args.activation, hidden)
    regression = args.output == "identity"
    data = load_examples(args.data, args.label, None, args.sample_weight, regression)
    X = data["X"].astype(np.float32) if args.float32 else data["X"]
    y = original_labels(data)
    weights = data.get("sample_weight")
    if "label_column" in data:
        kind = "Targets" if regression else "Labels"
        classes = "" if regression else f", {len(data['classes'])} classes"
        print(f"{kind}: {data['label_column']}{classes}")
    if "sample_weight_column" in data:
        print(f"Sample weights: {data['sample_weight_column']}")
    stratify = y.ndim == 1 and not regression
    train = test = None
    if args.test_size is not None:
        train, test = _split(y, args.test_size, args.seed, stratify)
    X_fit, y_fit, w_fit = X, y, weights
    if train is not None:
        X_fit, y_fit = X[train], y[train]
        w_fit = None if weights is None else weights[train]
    model = fit(
        X_fit,
        y_fit,
        hidden,
        lam=args.lam,
        activation=activation,
        output=args.output,
        sample_weight=w_fit,
        maxiter=args.maxiter,
        seed=args.seed,
        progress=True,
        scale=args.scale,
    )
    save(out, model)  # first: a closed stdout (`| head`) must not cost the model
    _report_fit(model)
    details = ", features standardized" if args.scale else ""
    details += ", weighted" if weights is not None else ""
    if args.activation is not None or args.output != "sigmoid":
        details += f", hidden {'/'.join(model.activation)}, output {model.output}"
    name, value = quality(model.predict(X_fit), y_fit, regression, w_fit)
    print(f"Training {name}: {value} (layers {model.layer_sizes}{details})")
    if test is not None:
        w_test = None if weights is None else weights[test]
        name, value = quality(model.predict(X[test]), y[test], regression, w_test)
        print(
            f"Held-out {name}: {value} ({len(test)} of {len(y)} examples, "
            f"{'stratified' if stratify else 'random'}, seed {args.seed}"
            f"{'' if w_test is None else ', weighted'})"
        )
    print(f"Model: {out}")
    if args.plot:
        order = "F" if Path(args.data).suffix.lower() == ".mat" else "C"
        _plot(args.plot, model, f"fastbp train {args.data}, layers {model.layer_sizes}", order)
        print(f"Picture: {args.plot}")
    return EXIT_INTERRUPTED if model.interrupted else 0


def run_predict(args: argparse.Namespace) -> int:
    _check_writable("--out", args.out)
    model = load_model(args.weights)
    n_inputs, n_outputs = model["layer_sizes"][0], model["layer_sizes"][-1]
    regression = network_of(model)["output"] == "identity"
    data = load(
        args.data,
        label=args.label,
        n_features=n_inputs,
        classes=model.get("classes"),
        sample_weight=args.sample_weight,
        regression=regression,
    )
    if "X" not in data:
        raise UserError(f"{args.data}: has no examples X")
    check_inputs(model, args.weights, data["X"], args.data)
    classes = model.get("classes")
    if classes is None and Path(args.weights).suffix.lower() == ".mat" and n_outputs > 1:
        classes = np.arange(1, n_outputs + 1)  # the course's labels: output unit k is label k
    predicted = outputs(model, data["X"], labels=classes is not None)
    if classes is not None:
        predicted = classes[predicted]
    lines = [",".join(map(str, row)) if predicted.ndim == 2 else str(row) for row in predicted]
    names = [f"output{k}" for k in range(n_outputs)]
    if predicted.ndim == 1:
        names = ["target" if regression else "label"]
    header = [",".join(names)] if args.out and Path(args.out).suffix.lower() == ".csv" else []
    text = "\n".join(header + lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if "y" in data:
        y = labels_for(data, model, args.weights)
        y = classes[y] if classes is not None and y.ndim == 1 else y
        weights = data.get("sample_weight")
        name, value = quality(predicted, y, regression, weights)
        weighted = ", weighted" if weights is not None else ""
        report = (
            f"{name[0].upper()}{name[1:]}: {value} ({len(y)} examples of {args.data}{weighted})"
        )
        print(report, file=sys.stdout if args.out else sys.stderr)
    if args.out:
        print(f"Predictions: {args.out} ({len(lines)} rows)")
    else:
        sys.stdout.write(text)
    return 0


def run_cost(args: argparse.Namespace) -> int:
    weights = load_model(args.weights) if args.weights else None
    classes = None if weights is None else weights.get("classes")
    regression = weights is not None and network_of(weights)["output"] == "identity"
    data = load_examples(args.data, args.label, classes, args.sample_weight, regression)
    if weights is None:
        if network_of(data)["output"] == "identity":  # DATA's own weights are a regressor's
            data = load_examples(args.data, args.label, None, args.sample_weight, True)
        weights = data
    if "theta" not in weights:
        raise UserError(
            f"{args.data}: has no weights (Theta1, Theta2, … or a saved model); "
            "give them with --weights FILE"
        )
    regression = network_of(weights)["output"] == "identity"
    source = args.weights or args.data
    check_inputs(weights, source, data["X"], args.data)
    lam = args.lam
    lam_source = "--lam"
    if lam is None:
        lam, lam_source = weights.get("lam", 0.0), "the model's" if "lam" in weights else "default"
    y = labels_for(data, weights, source)
    sizes = weights["layer_sizes"]
    X = apply_scaling(data["X"], weights.get("x_mean"), weights.get("x_scale"))
    sample_weight = data.get("sample_weight")
    options = {**network_of(weights), "sample_weight": sample_weight}
    weighted = ", weighted" if sample_weight is not None else ""
    if args.grad:
        J, grad = cost_and_grad(weights["theta"], X, y, sizes, lam, **options)
        print(f"J = {J:.10g} (λ = {lam:g}, {lam_source}{weighted})")
        print(f"|grad J| = {np.linalg.norm(grad):.10g}")
    else:
        J = cost(weights["theta"], X, y, sizes, lam, **options)
        print(f"J = {J:.10g} (λ = {lam:g}, {lam_source}{weighted})")
    predicted = outputs(weights, data["X"], labels=y.ndim == 1)
    name, value = quality(predicted, y, regression, sample_weight)
    print(f"{name[0].upper()}{name[1:]}: {value} ({len(y)} examples)")
    return 0


def run_gradcheck(args: argparse.Namespace) -> int:
    lams = [0.0] if args.lam == 0 else [0.0, args.lam]
    hidden = tuple(args.hidden or ((DEBUG_HIDDEN,) if args.data is None else (TRAIN_HIDDEN,)))
    network = {"activation": activation_names(args.activation, hidden), "output": args.output}
    if args.data is None:
        if args.sample_weight is not None:
            raise UserError("--sample-weight names a column of DATA, but no DATA is given")
        sizes = (3, *hidden, 3)
        checks = [
            check_gradient(layer_sizes=sizes, lam=lam, threshold=args.threshold, **network)
            for lam in lams
        ]
    else:
        regression = args.output == "identity"
        data = load_examples(args.data, args.label, None, args.sample_weight, regression)
        X, y = data["X"], data["y"]
        if y.ndim == 2:
            K = y.shape[1]
        elif regression:
            K = 1
        else:
            n_classes = len(data["classes"])
            K = 1 if n_classes == 2 and args.output == "sigmoid" else n_classes
        rows = np.unique(np.linspace(0, X.shape[0] - 1, min(args.examples, X.shape[0])).astype(int))
        sizes = (X.shape[1], *hidden, K)
        weights = data.get("sample_weight")
        network["sample_weight"] = None if weights is None else weights[rows]
        checks = [
            check_gradient(X[rows], y[rows], sizes, lam, threshold=args.threshold, **network)
            for lam in lams
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
