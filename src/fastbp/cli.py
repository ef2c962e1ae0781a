"""The ``fastbp`` command: ``demo``, ``train``, ``cost`` and ``gradcheck``.

Every command has ``--help``. A bad argument or a bad file ends the command with exit code 2 and
one line on stderr, never a traceback; a failed gradient check exits with 1; Ctrl-C during
training keeps the best weights so far (``train`` still writes the model) and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from ._io import load, save
from ._layout import unpack
from ._objective import Objective, cost, cost_and_grad
from ._threading import _check_thread_count, threading_info, threads
from ._workflow import FitResult, check_gradient, fit, init_weights

__all__ = ["main"]

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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _UserError(Exception):
    """A problem with the command's arguments, files or environment: reported in one line."""


# ----------------------------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _threads(text: str) -> int:
    try:
        return _check_thread_count(_positive_int(text))
    except ValueError as error:  # more than numba's thread pool holds
        raise argparse.ArgumentTypeError(str(error)) from None


def _label(text: str) -> int | str:
    """A .csv label column: an index (negative counts from the end) or a header name."""
    try:
        return int(text)
    except ValueError:
        return text


class _InfoAction(argparse.Action):
    """``fastbp --info``: print fastbp.threading_info() and exit, like --version."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import numba

        info = threading_info()
        print(f"fastbp {__version__}, numba {numba.__version__}")
        for key, value in info.items():
            print(f"{key}: {value}")
        if not info["slp_vectorizer"]:
            print("note: this numba has no SLP vectorizer setting; the kernels run slower")
        parser.exit(0)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastbp",
        description="Exact backpropagation for sigmoid networks: train, check and evaluate.",
        epilog="Run 'fastbp COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    parser.add_argument(
        "--info",
        action=_InfoAction,
        help="print how fastbp runs here (threading layer, threads, fork safety) and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train on scikit-learn's 8×8 digits and draw the result",
        description=(
            "Train a (64, 25, 10) network on scikit-learn's bundled 8×8 digits (no download), "
            "holding out a fixed, stratified 25%%: prints a gradient check, the training and "
            "held-out accuracy and the time per gradient call, and writes a picture of the cost "
            "curve beside the hidden units. Needs the demo extra: pip install 'fastbp[demo]'."
        ),
    )
    demo.add_argument(
        "--plot", metavar="FILE", default="fastbp-demo.png", help="PNG to write (%(default)s)"
    )
    _training_arguments(demo)
    demo.set_defaults(run=_demo)

    train = commands.add_parser(
        "train",
        help="train a network on a data file and save it",
        description=(
            "Train on DATA (.mat with X and y, .npz with X and y, or .csv) with L-BFGS-B, print "
            "the progress and the training accuracy, and save the model as .npz. Ctrl-C stops "
            "early and keeps the best weights so far."
        ),
    )
    _data_argument(train)
    _hidden_argument(train, f"default {TRAIN_HIDDEN}")
    train.add_argument("--lam", type=_non_negative_float, default=1.0, help="λ (%(default)s)")
    train.add_argument(
        "--maxiter", type=_positive_int, default=400, metavar="N", help="iterations (%(default)s)"
    )
    train.add_argument(
        "--out", metavar="FILE", default="model.npz", help="model file (%(default)s)"
    )
    train.add_argument("--plot", metavar="FILE", help="also write a PNG of the training")
    train.add_argument("--float32", action="store_true", help="compute in float32")
    _training_arguments(train)
    train.set_defaults(run=_train)

    cost_command = commands.add_parser(
        "cost",
        help="print J (and the gradient norm) for weights on a data file",
        description=(
            "Print the cost J of the weights in FILE (the course's .mat Theta1, Theta2, … or a "
            "model saved by 'fastbp train') on DATA."
        ),
    )
    _data_argument(cost_command)
    cost_command.add_argument(
        "--weights",
        metavar="FILE",
        help="weights: .mat with Theta1, Theta2, … or a saved model .npz (default: DATA's own)",
    )
    cost_command.add_argument(
        "--lam", type=_non_negative_float, default=0.0, help="λ (%(default)s)"
    )
    cost_command.add_argument("--grad", action="store_true", help="also print ‖∇J‖₂")
    cost_command.set_defaults(run=_cost)

    gradcheck = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with central differences",
        description=(
            "Check the analytic gradient against central differences (ε = 1e-4) at λ = 0 and at "
            "λ = LAM, on the course's debug network (3 inputs, 5 examples, 3 classes) or on "
            "evenly spaced examples of DATA; print the largest relative difference "
            "‖a − n‖₂ / ‖a + n‖₂ and exit with 1 when it is above the threshold."
        ),
    )
    _data_argument(gradcheck, optional=True)
    _hidden_argument(gradcheck, f"default {DEBUG_HIDDEN}, or {TRAIN_HIDDEN} with DATA")
    gradcheck.add_argument(
        "--lam", type=_non_negative_float, default=3.0, help="λ of the second check (%(default)s)"
    )
    gradcheck.add_argument(
        "--examples",
        type=_positive_int,
        default=50,
        metavar="M",
        help="evenly spaced examples of DATA to use (%(default)s)",
    )
    gradcheck.add_argument(
        "--threshold",
        type=_non_negative_float,
        default=1e-7,
        metavar="T",
        help="largest relative difference that passes (%(default)s)",
    )
    gradcheck.set_defaults(run=_gradcheck)
    return parser


def _hidden_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--hidden",
        type=_positive_int,
        action="append",
        metavar="UNITS",
        help=f"units of a hidden layer; repeat for more layers ({default})",
    )


def _training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the initial weights (0)"
    )
    parser.add_argument("--threads", type=_threads, metavar="N", help="numba threads (all)")


def _data_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument(
        "data",
        metavar="DATA",
        nargs="?" if optional else None,
        help="data file: .mat (the course's X, y), .npz (X, y) or .csv",
    )
    parser.add_argument(
        "--label",
        type=_label,
        default=-1,
        metavar="COLUMN",
        help="label column of a .csv file: header name or index (default -1, the last)",
    )


# ----------------------------------------------------------------------------------- helpers


@contextmanager
def _announce_compilation() -> Iterator[None]:
    """Say once, on stderr, when fastbp's kernels are being compiled (a cache miss)."""
    from numba.core import event
    from tqdm import tqdm

    class Announcer(event.Listener):
        said = False

        def on_start(self, ev: event.Event) -> None:
            dispatcher = ev.data.get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "")
            if not self.said and module.startswith("fastbp."):
                self.said = True
                # tqdm.write: a progress bar on stderr is cleared first and drawn again after
                tqdm.write(
                    "fastbp: compiling the kernels (first run only, 10-40 s; "
                    "numba caches them for later runs) ...",
                    file=sys.stderr,
                )

        def on_end(self, ev: event.Event) -> None:
            pass

    with event.install_listener("numba:compile", Announcer()):
        yield


def _check_writable(option: str, path: str | None) -> None:
    """Fail before the work, not after it, when an output file cannot be written."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise _UserError(f"{option} {path}: the directory {Path(path).parent} does not exist")


def _load_examples(path: str, label: int | str) -> dict[str, Any]:
    data = load(path, label=label)
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        raise _UserError(f"{path}: has no {' and no '.join(missing)} (training examples)")
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
        raise _UserError("drawing needs matplotlib: pip install 'fastbp[demo]'") from None
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


def _demo(args: argparse.Namespace) -> int:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise _UserError("fastbp demo needs scikit-learn: pip install 'fastbp[demo]'") from None
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


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise _UserError(f"--out must name a .npz file, got {args.out!r}")
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
        raise _UserError(
            f"the data has label {unknown[0]!r}, which the model's classes "
            f"{model_classes.tolist()} lack"
        )
    return np.array([index[label] for label in labels.tolist()], dtype=np.int64)


def _cost(args: argparse.Namespace) -> int:
    data = _load_examples(args.data, args.label)
    weights = load(args.weights) if args.weights else data
    if "theta" not in weights:
        hint = "" if args.weights else "; give them with --weights FILE"
        raise _UserError(
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


def _gradcheck(args: argparse.Namespace) -> int:
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


# ----------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastbp`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    prog = f"fastbp {args.command}"
    try:
        with _announce_compilation(), threads(getattr(args, "threads", None)):
            return int(args.run(args))
    except (_UserError, ValueError, TypeError, OSError) as error:
        message = str(error) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
