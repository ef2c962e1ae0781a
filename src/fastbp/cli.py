"""The ``fastbp`` command: ``demo``, ``train``, ``predict``, ``cost`` and ``gradcheck``.

Every command has ``--help``. A bad argument or a bad file ends the command with exit code 2 and
one line on stderr, never a traceback; a failed gradient check exits with 1; Ctrl-C during
training keeps the best weights so far (``train`` still writes the model) and exits with 130; a
closed standard output (``fastbp train … | head -1``) ends the command quietly with 141, as
SIGPIPE would, after ``train`` has saved its model.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from . import __version__
from ._commands import (
    DEBUG_HIDDEN,
    EXIT_INTERRUPTED,
    EXIT_PIPE_CLOSED,
    EXIT_USAGE,
    TRAIN_HIDDEN,
    UserError,
    run_cost,
    run_demo,
    run_gradcheck,
    run_predict,
    run_train,
)
from ._gradcheck import THRESHOLD
from ._layout import HIDDEN, OUTPUTS
from ._threading import check_thread_count, threading_info, threads

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2) instead of the usage block."""

    command_parsers: Mapping[str, argparse.ArgumentParser]  # the top parser's, by command name

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, got {text!r}"
        ) from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _threads(text: str) -> int:
    try:
        return check_thread_count(_positive_int(text))
    except ValueError as error:  # more than numba's thread pool holds
        raise argparse.ArgumentTypeError(str(error)) from None


def _label(text: str) -> int | str:
    """A .csv label column: an index (negative counts from the end) or a header name."""
    try:
        return int(text)
    except ValueError:
        return text


def _activations(text: str) -> list[str]:
    """--activation: one name of a hidden activation, or several separated by commas."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in HIDDEN]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown activation {unknown[0]!r}: choose from {', '.join(HIDDEN)} (one name, or "
            "one per hidden layer separated by commas)"
        )
    return names


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


def _parser() -> _Parser:
    parser = _Parser(
        prog="fastbp",
        description="Exact backpropagation for fully connected networks: train, check and evaluate.",
        epilog="Run 'fastbp COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    parser.add_argument(
        "--info",
        action=_InfoAction,
        help="print how fastbp runs here (threading layer, threads, fork safety) and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.command_parsers = commands.choices

    demo = commands.add_parser(
        "demo",
        help="train on scikit-learn's 8×8 digits and draw the result",
        description=(
            "Train a (64, 25, 10) network on scikit-learn's bundled 8×8 digits (no download), "
            "holding out a fixed, stratified 25%: prints a gradient check, the training and "
            "held-out accuracy and the time per gradient call, and writes a picture of the cost "
            "curve beside the hidden units. Needs the demo extra: pip install 'fastbp[demo]'."
        ),
    )
    demo.add_argument(
        "--plot", metavar="FILE", default="fastbp-demo.png", help="PNG to write (%(default)s)"
    )
    _training_arguments(demo)
    demo.set_defaults(run=run_demo)

    train = commands.add_parser(
        "train",
        help="train a network on a data file and save it",
        description=(
            "Train on DATA (.mat with X and y, .npz with X and y, or .csv) with L-BFGS-B, save "
            "the model as .npz, and print the progress and the training accuracy (and the "
            "held-out accuracy with --test-size). Ctrl-C stops early and keeps the best weights "
            "so far."
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
    train.add_argument(
        "--scale",
        action="store_true",
        help="standardize the features (mean 0, deviation 1); the model keeps the scaling and "
        "predict and cost apply it",
    )
    train.add_argument(
        "--test-size",
        type=_share,
        metavar="SHARE",
        help="hold out this share of the examples (stratified by class, drawn with --seed) and "
        "print the accuracy on them",
    )
    train.add_argument("--plot", metavar="FILE", help="also write a PNG of the training")
    train.add_argument("--float32", action="store_true", help="compute in float32")
    _network_arguments(train)
    _sample_weight_argument(train, "weigh each example's cost by it")
    _training_arguments(train)
    train.set_defaults(run=run_train)

    predict_command = commands.add_parser(
        "predict",
        help="predict the labels of a data file with a saved model",
        description=(
            "Print the predicted label of every example of DATA (one per line, in the model's "
            "original classes; a regressor's predicted values), or write them to --out (a .csv "
            "gets a 'label' header, or 'target' for a regressor). When DATA has labels, print the "
            "accuracy (a regressor's RMSE) too (on stderr when the labels go to stdout). A .csv "
            "with as many columns as the model has inputs has no label column. The model's "
            "recorded activations and output are used."
        ),
    )
    _data_argument(predict_command)
    predict_command.add_argument(
        "--weights", metavar="FILE", required=True, help="a model saved by 'fastbp train' (.npz)"
    )
    predict_command.add_argument("--out", metavar="FILE", help="write the labels here")
    _sample_weight_argument(predict_command, "left out of the features; weighs the accuracy")
    predict_command.set_defaults(run=run_predict)

    cost_command = commands.add_parser(
        "cost",
        help="print J (and the gradient norm) for weights on a data file",
        description=(
            "Print the cost J and the accuracy of the weights in FILE (the course's .mat "
            "Theta1, Theta2, … or a model saved by 'fastbp train') on DATA, with a saved "
            "model's feature scaling applied."
        ),
    )
    _data_argument(cost_command)
    cost_command.add_argument(
        "--weights",
        metavar="FILE",
        help="weights: .mat with Theta1, Theta2, … or a saved model .npz (default: DATA's own)",
    )
    cost_command.add_argument(
        "--lam",
        type=_non_negative_float,
        help="λ (default: a saved model's own, else 0)",
    )
    cost_command.add_argument("--grad", action="store_true", help="also print ‖∇J‖₂")
    _sample_weight_argument(cost_command, "J is then the weighted mean cost")
    cost_command.set_defaults(run=run_cost)

    gradcheck = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with central differences",
        description=(
            "Check the analytic gradient against central differences (ε = 1e-4, divided by the "
            "largest |x| of a first-layer weight's input where that exceeds 1) at λ = 0 and at "
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
        default=THRESHOLD,
        metavar="T",
        help="largest relative difference that passes (%(default)s)",
    )
    _network_arguments(gradcheck)
    _sample_weight_argument(gradcheck, "weigh each example's cost by it")
    gradcheck.set_defaults(run=run_gradcheck)
    return parser


def _hidden_argument(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--hidden",
        type=_positive_int,
        action="append",
        metavar="UNITS",
        help=f"units of a hidden layer; repeat for more layers ({default})",
    )


def _network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--activation",
        type=_activations,
        metavar="NAME[,NAME...]",
        help=f"hidden activation: {', '.join(HIDDEN)}; one for every hidden layer, or one per "
        "hidden layer separated by commas (sigmoid)",
    )
    parser.add_argument(
        "--output",
        choices=tuple(OUTPUTS),
        default="sigmoid",
        help="output units and cost: sigmoid (cross-entropy, the default), softmax "
        "(categorical cross-entropy, one unit per class) or identity (regression: squared "
        "error on the label column's numbers)",
    )


def _sample_weight_argument(parser: argparse.ArgumentParser, use: str) -> None:
    parser.add_argument(
        "--sample-weight",
        type=_label,
        metavar="COLUMN",
        help=f"a .csv column of sample weights (>= 0), by header name or index from 0 (-1 is "
        f"the last), like --label; not a feature; {use}",
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
        metavar="COLUMN",
        default="auto",
        help="label column of a .csv file: header name, or index from 0 (-1 is the last). "
        "Default: a column named label, labels, target, class or y, else the first or the last "
        "column, "
        "whichever holds words or looks like labels (an error asks for --label when both do "
        "or neither does)",
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
                    "fastbp: compiling the kernels (first run only, about 10-20 s; "
                    "numba caches them for later runs) ...",
                    file=sys.stderr,
                )

        def on_end(self, ev: event.Event) -> None:
            pass

    with event.install_listener("numba:compile", Announcer()):
        yield


# ----------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastbp`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the command's own parser: "fastbp train: error: …"
        parser.command_parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    prog = f"fastbp {args.command}"
    try:
        with _announce_compilation(), threads(getattr(args, "threads", None)):
            code = int(args.run(args))
            sys.stdout.flush()  # a closed pipe shows here, inside the handler below
            return code
    except BrokenPipeError:
        # the reader has gone (`| head`): no message; stdout to /dev/null, so that Python's
        # own flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except (UserError, ValueError, TypeError, OSError) as error:
        message = str(error) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
