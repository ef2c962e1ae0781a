"""The `fastbp` command, run as a subprocess (`python -m fastbp`), and its entry point."""

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

import fastbp
from fastbp import cli

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(fastbp.__file__).resolve().parents[1]  # the fastbp under test, not an install


def environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run(*args, cwd=None, timeout=300, **env):
    return subprocess.run(
        [sys.executable, "-m", "fastbp", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment(**env),
    )


def assert_usage_error(result, pattern):
    """Exit code 2 and exactly one line on stderr, naming the problem; never a traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="module")
def digits_mat(tmp_path_factory):
    """Half of scikit-learn's digits as the course stores data: y an (m, 1) column, 10 for 0."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("data") / "digits.mat"
    savemat(path, {"X": X[::2] / 16, "y": np.where(y[::2] == 0, 10, y[::2]).reshape(-1, 1)})
    return path


# ----------------------------------------------------------------------------- entry point


def test_console_script_is_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["fastbp"].partition(":")
    assert getattr(import_module(module), name) is cli.main


def test_info_prints_the_threading_layer():
    result = run("--info")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines()[1:] if ": " in line)
    assert lines["layer"] in ("tbb", "omp", "workqueue")
    assert int(lines["threads"]) >= 1
    assert lines["fork_safe"] in ("True", "False")
    assert lines["slp_vectorizer"] == "True"
    assert lines["isa"] in ("avx2", "avx512")
    assert "float64" in lines["block_shapes"]
    avx2 = run("--info", NUMBA_CPU_NAME="znver3", NUMBA_CPU_FEATURES="+avx,+avx2,+fma")
    assert "isa: avx2" in avx2.stdout
    avx512 = run("--info", NUMBA_CPU_NAME="znver4", NUMBA_CPU_FEATURES="+avx2,+fma,+avx512f")
    assert "isa: avx512" in avx512.stdout
    forced = run("--info", NUMBA_THREADING_LAYER="workqueue")
    assert "layer: workqueue" in forced.stdout


def test_python_dash_m_runs_cli_main():
    source = (SOURCE / "fastbp" / "__main__.py").read_text()
    assert "from .cli import main" in source
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastbp {fastbp.__version__}"


def test_main_returns_the_exit_code(capsys):
    assert cli.main(["gradcheck", "--hidden", "3"]) == 0
    assert "Largest relative difference" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["predict"], ["cost"], ["gradcheck"]])
def test_help_on_every_command(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fastbp")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ([], "^fastbp: error: .*COMMAND"),
        (["fit"], "invalid choice: 'fit'"),
        (["train"], "fastbp train: error: .*DATA"),
        (["train", "x.mat", "--lam", "-1"], "--lam: expected a finite number >= 0"),
        (["train", "x.mat", "--hidden", "0"], "--hidden: expected a positive integer"),
        (["train", "x.mat", "--maxiter", "many"], "--maxiter: expected a positive integer"),
        (["train", "x.mat", "--threads", "999"], "--threads: threads must be between 1 and"),
        (["train", "x.mat", "--bogus"], "unrecognized arguments: --bogus"),
        (["cost", "x.mat", "--lam", "nan"], "--lam"),
        (["gradcheck", "--threshold", "-1"], "--threshold"),
        (["train", "x.csv", "--activation", "swish"], r"--activation: unknown activation 'swish'"),
        (["train", "x.csv", "--activation", "relu,"], r"--activation: unknown activation ''"),
        (["train", "x.csv", "--output", "linear"], r"--output: invalid choice: 'linear'"),
        (["train", "x.csv", "--activation", "relu,tanh"], r"--activation has 2 names.*1 hidden"),
        (["gradcheck", "--sample-weight", "w"], "--sample-weight names a column of DATA"),
    ],
)
def test_bad_arguments(args, pattern):
    assert_usage_error(run(*args), pattern)


# ----------------------------------------------------------------------------- demo


def test_demo(tmp_path):
    picture = tmp_path / "demo.png"
    result = run("demo", "--plot", picture, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    check = float(re.search(r"relative difference ([\d.e+-]+)", out)[1])
    assert check < 1e-9
    training = float(re.search(r"Training accuracy: ([\d.]+)%", out)[1])
    held_out = float(re.search(r"Held-out accuracy: ([\d.]+)%", out)[1])
    assert held_out >= 95
    assert training >= held_out - 1
    assert "450 held out (stratified 25%)" in out
    assert float(re.search(r"Time per gradient call: ([\d.]+) ms", out)[1]) > 0
    assert "fastbp fit" in result.stderr  # the progress bar
    from matplotlib.image import imread

    image = imread(picture)
    assert image.shape[0] > 300
    assert image.shape[1] > 2 * image.shape[0]  # the curve beside the hidden units
    assert not (tmp_path / "fastbp-demo.png").exists()


def test_demo_writes_its_default_picture(tmp_path):
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fastbp-demo.png").read_bytes().startswith(b"\x89PNG")


def test_demo_bad_picture_path(tmp_path):
    assert_usage_error(
        run("demo", "--plot", tmp_path / "no" / "such" / "dir.png"), "fastbp demo: error: .*dir"
    )


# ----------------------------------------------------------------------------- train


def test_train_on_a_course_mat_file(tmp_path, digits_mat):
    model_path = tmp_path / "model.npz"
    picture = tmp_path / "train.png"
    result = run(
        "train", digits_mat, "--maxiter", 40, "--out", model_path, "--plot", picture, "--seed", 1
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"Training accuracy: ([\d.]+)%", result.stdout)[1])
    assert accuracy > 90
    assert "fastbp fit" in result.stderr
    model = fastbp.load(model_path)
    assert model["layer_sizes"] == (64, 25, 10)
    np.testing.assert_array_equal(model["classes"], np.arange(1, 11))  # the file's labels
    assert model["lam"] == 1.0
    assert picture.read_bytes().startswith(b"\x89PNG")
    data = fastbp.load(digits_mat)
    predicted = model["classes"][fastbp.predict(model["theta"], data["X"], model["layer_sizes"])]
    reported = float(re.search(r"Training accuracy: ([\d.]+)%", result.stdout)[1])
    expected = np.mean(predicted == data["classes"][data["y"]])
    assert reported == pytest.approx(100 * expected, abs=0.005)


def test_train_options_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(120, 3))
    labels = np.array(["low", "high"])[(X[:, 0] > 0.5).astype(int)]
    lines = ["f1,f2,f3,kind"] + [f"{a},{b},{c},{k}" for (a, b, c), k in zip(X, labels, strict=True)]
    (tmp_path / "two.csv").write_text("\n".join(lines) + "\n")
    args = ["train", "two.csv", "--label", "kind", "--hidden", 6, "--hidden", 4, "--float32"]
    args += ["--threads", 1, "--lam", 0.01, "--maxiter", 100, "--out", "m.npz"]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model = fastbp.load(tmp_path / "m.npz")
    assert model["layer_sizes"] == (3, 6, 4, 1)
    np.testing.assert_array_equal(model["classes"], ["high", "low"])
    assert float(re.search(r"Training accuracy: ([\d.]+)%", result.stdout)[1]) > 90


@pytest.mark.parametrize(
    ("setup", "args", "pattern"),
    [
        (None, ["absent.mat"], "absent.mat: no such file"),
        ("garbage.mat", ["garbage.mat"], "garbage.mat: not a readable MATLAB"),
        ("garbage.npz", ["garbage.npz"], r"garbage.npz: not a \.npz file"),
        ("bad.csv", ["bad.csv"], "bad.csv: line 2, column 2: 'x' is not a finite number"),
        ("weights.mat", ["weights.mat"], "weights.mat: has no X and no y"),
        ("data.txt", ["data.txt"], "unknown file type '.txt'"),
        ("labels0.mat", ["labels0.mat"], r"labels 1 … 2 .*found -1"),
        (None, ["absent.mat", "--out", "model.txt"], r"--out must name a \.npz file"),
        (None, ["absent.mat", "--plot", "no/p.png"], "--plot no/p.png: the directory no does not"),
    ],
)
def test_train_bad_files(tmp_path, setup, args, pattern):
    files = {
        "garbage.mat": lambda p: p.write_bytes(b"not matlab " * 30),
        "garbage.npz": lambda p: p.write_text("hello"),
        "bad.csv": lambda p: p.write_text("0.5,2,0\n3,x,1\n"),
        "weights.mat": lambda p: savemat(p, {"Theta1": np.zeros((2, 3))}),
        "data.txt": lambda p: p.write_text("1 2 3\n"),
        "labels0.mat": lambda p: savemat(p, {"X": np.zeros((2, 2)), "y": np.array([[-1], [2]])}),
    }
    if setup:
        files[setup](tmp_path / setup)
    assert_usage_error(run("train", *args, cwd=tmp_path), pattern)
    assert not (tmp_path / "model.npz").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_ctrl_c_during_training_keeps_the_best_model(tmp_path, digits_mat):
    # A parent started in the background may ignore SIGINT, and a child Python then keeps
    # ignoring it: restore Python's handler, as in an interactive shell.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from fastbp.cli import main; raise SystemExit(main(sys.argv[1:]))"
    )
    args = ["train", str(digits_mat), "--hidden", "60", "--maxiter", "100000", "--out", "m.npz"]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = b""
    deadline = time.monotonic() + 240
    while b"cost=" not in seen and time.monotonic() < deadline:  # training has started
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    assert b"cost=" in seen, seen
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert b"interrupted: the best" in out
    assert b"Traceback" not in err
    model = fastbp.load(tmp_path / "m.npz")
    assert model["layer_sizes"] == (64, 60, 10)


def in_process(capsys, *args):
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_rows(path, header, *columns):
    rows = [",".join(map(str, row)) for row in zip(*columns, strict=True)]
    path.write_text("\n".join([",".join(header), *rows]) + "\n")
    return path


def test_train_softmax_with_activations_and_sample_weights(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(150, 3))
    kinds = np.array(["a", "b", "c"])[(3 * X[:, 0]).astype(int)]
    weights = rng.integers(1, 4, 150)
    header = ["f1", "f2", "w", "f3", "kind"]
    write_rows(tmp_path / "d.csv", header, *X[:, :2].T, weights, X[:, 2], kinds)
    args = "train d.csv --hidden 6 --hidden 4 --activation relu,tanh --output softmax"
    result = run(*args.split(), "--sample-weight", "w", "--maxiter", 150, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Sample weights: column 3 'w', --sample-weight 2" in result.stdout
    assert "weighted, hidden relu/tanh, output softmax)" in result.stdout
    model = fastbp.load(tmp_path / "model.npz")
    assert model["layer_sizes"] == (3, 6, 4, 3)
    assert (model["activation"], model["output"]) == (("relu", "tanh"), "softmax")
    network = {"activation": ("relu", "tanh"), "output": "softmax"}
    units = fastbp.predict(model["theta"], X, model["layer_sizes"], **network)
    files = [tmp_path / "d.csv", "--weights", tmp_path / "model.npz"]
    code, out, err = in_process(capsys, "predict", *files, "--sample-weight", "w")
    assert code == 0, err
    np.testing.assert_array_equal(out.split(), model["classes"][units])
    expected = np.average(model["classes"][units] == kinds, weights=weights)
    reported = re.search(r"Accuracy: ([\d.]+)% \(150 examples of .*, weighted\)", err)
    assert float(reported[1]) == pytest.approx(100 * expected, abs=0.005)
    labels = np.unique(kinds, return_inverse=True)[1]
    J = fastbp.cost(
        model["theta"], X, labels, model["layer_sizes"], 0.5, sample_weight=weights, **network
    )
    code, out, err = in_process(capsys, "cost", *files, "--sample-weight", 2, "--lam", 0.5)
    assert code == 0, err
    reported = re.search(r"J = (\S+) \(λ = 0.5, --lam, weighted\)", out)
    assert float(reported[1]) == pytest.approx(J, rel=1e-9)
    # without --sample-weight the weights are a fourth feature: the command says what to do
    code, _, err = in_process(capsys, "predict", *files)
    assert code == 2
    assert "4 feature columns; if one of them holds sample weights, name it with --sample" in err


def test_train_a_regressor(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(200, 2))
    price = 3 * X[:, 0] - X[:, 1] ** 2 + 0.01 * rng.normal(size=200)
    weights = rng.uniform(0.5, 2, 200)
    write_rows(tmp_path / "r.csv", ["w", "size", "age", "price"], weights, *X.T, price)
    columns = ["--label", "price", "--sample-weight", "w"]
    args = "train r.csv --output identity --activation tanh --hidden 8 --test-size 0.25"
    result = run(*args.split(), *columns, "--lam", 0.01, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Targets: column 4 'price', --label -1\n" in result.stdout
    training = re.search(r"Training RMSE: (\S+) \(layers \(2, 8, 1\), weighted", result.stdout)
    held_out = re.search(r"Held-out RMSE: (\S+) \(50 of 200 examples, random", result.stdout)
    assert float(training[1]) < 0.05
    assert float(held_out[1]) < 0.1
    model = fastbp.load(tmp_path / "model.npz")
    assert (model["activation"], model["output"], model["y_ndim"]) == (("tanh",), "identity", 1)
    assert "classes" not in model
    network = {"activation": "tanh", "output": "identity"}
    values = fastbp.predict(model["theta"], X, (2, 8, 1), **network)[:, 0]
    files = [tmp_path / "r.csv", "--weights", tmp_path / "model.npz", *columns]
    code, out, err = in_process(capsys, "predict", *files, "--out", tmp_path / "p.csv")
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().split()
    assert lines[0] == "target"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=float), values)
    rmse = np.sqrt(np.average(np.square(values - price), weights=weights))
    reported = re.search(r"RMSE: (\S+) \(200 examples of .*, weighted\)", out)
    assert float(reported[1]) == pytest.approx(rmse, rel=1e-5)
    J = fastbp.cost(model["theta"], X, price, (2, 8, 1), 0.01, sample_weight=weights, **network)
    code, out, err = in_process(capsys, "cost", *files)
    assert code == 0, err
    reported = re.search(r"J = (\S+) \(λ = 0.01, the model's, weighted\)\nRMSE: ", out)
    assert float(reported[1]) == pytest.approx(J, rel=1e-9)
    # the targets are numbers, not labels: a classifier asks for --output identity
    code, _, err = in_process(capsys, "train", tmp_path / "r.csv", *columns)
    assert code == 2
    assert "not integers: it looks like a feature (or regression targets: --output identity)" in err


# ----------------------------------------------------------------------------- cost


def test_cost_with_the_course_weights(tmp_path, shared_data, rng):
    weights = fastbp.load(shared_data / "ex4weights.mat")
    X = rng.uniform(0, 1, (40, 400))
    labels = rng.integers(1, 11, 40)
    data = tmp_path / "ex4like.mat"
    savemat(data, {"X": X, "y": labels.reshape(-1, 1).astype(float)})
    J = fastbp.cost(weights["theta"], X, labels - 1, (400, 25, 10), 1.0)
    result = run("cost", data, "--weights", shared_data / "ex4weights.mat", "--lam", 1)
    assert result.returncode == 0, result.stderr
    reported = re.fullmatch(
        r"J = (\S+) \(λ = 1, --lam\)\nAccuracy: ([\d.]+)% \(40 ex.*\n", result.stdout
    )
    assert float(reported[1]) == pytest.approx(J, rel=1e-9)
    predicted = fastbp.predict(weights["theta"], X, (400, 25, 10))
    assert float(reported[2]) == pytest.approx(100 * np.mean(predicted == labels - 1), abs=0.005)
    _, grad = fastbp.cost_and_grad(weights["theta"], X, labels - 1, (400, 25, 10), 1.0)
    with_grad = run("cost", data, "--weights", shared_data / "ex4weights.mat", "--lam", 1, "--grad")
    norm = float(re.search(r"\|grad J\| = (\S+)", with_grad.stdout)[1])
    assert norm == pytest.approx(np.linalg.norm(grad), rel=1e-9)


def test_cost_with_a_saved_model_maps_labels_through_classes(tmp_path, rng):
    X = rng.uniform(size=(30, 2))
    labels = np.array([4, 8])[np.arange(30) % 2]
    model = fastbp.fit(X, labels, (3,), maxiter=10, seed=0)
    fastbp.save(tmp_path / "model.npz", model)
    savemat(tmp_path / "data.mat", {"X": X, "y": np.where(labels == 4, 1, 2).reshape(-1, 1)})
    np.savez(tmp_path / "data.npz", X=X, y=labels)
    J = fastbp.cost(model.theta, X, (labels == 8).astype(int), model.layer_sizes, 0.5)
    result = run("cost", "data.npz", "--weights", "model.npz", "--lam", 0.5, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert float(re.search(r"J = (\S+)", result.stdout)[1]) == pytest.approx(J, rel=1e-9)
    # the .mat file's classes are 1, 2: label 4 is not among them
    assert_usage_error(
        run("cost", "data.mat", "--weights", "model.npz", cwd=tmp_path),
        r"label 1, which the classes of model\.npz \[4, 8\] lack",
    )


def test_cost_errors(tmp_path, rng):
    savemat(tmp_path / "data.mat", {"X": rng.uniform(size=(4, 3)), "y": [[1], [2], [1], [2]]})
    savemat(tmp_path / "wide.mat", {"Theta1": np.zeros((2, 6)), "Theta2": np.zeros((2, 3))})
    assert_usage_error(run("cost", "data.mat", cwd=tmp_path), "has no weights.*--weights")
    assert_usage_error(
        run("cost", "data.mat", "--weights", "wide.mat", cwd=tmp_path),
        r"wide\.mat: the weights take 5 inputs .*data\.mat has 3 feature columns",
    )
    assert_usage_error(
        run("cost", "data.mat", "--weights", "absent.npz", cwd=tmp_path), "absent.npz: no such"
    )


# ----------------------------------------------------------------------------- gradcheck


def test_gradcheck_debug_network():
    result = run("gradcheck")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Gradient check: layers (3, 5, 3)") == 2  # λ = 0 and λ = 3
    largest = float(re.search(r"Largest relative difference: (\S+)", result.stdout)[1])
    assert largest < 1e-9
    deeper = run("gradcheck", "--hidden", 4, "--hidden", 5, "--lam", 0)
    assert deeper.returncode == 0
    assert deeper.stdout.count("Gradient check: layers (3, 4, 5, 3), λ = 0") == 1


def test_gradcheck_activations_and_outputs(capsys):
    code, out, err = in_process(
        capsys,
        "gradcheck",
        "--activation",
        "relu,tanh",
        "--hidden",
        4,
        "--hidden",
        3,
        "--output",
        "softmax",
    )
    assert code == 0, err
    assert out.count("layers (3, 4, 3, 3)") == 2
    assert out.count("hidden relu/tanh, output softmax") == 2
    assert float(re.search(r"Largest relative difference: (\S+)", out)[1]) < 1e-9
    code, out, err = in_process(capsys, "gradcheck", "--output", "identity", "--lam", 0)
    assert code == 0, err
    assert "hidden sigmoid, output identity" in out


def test_gradcheck_fails_above_the_threshold():
    result = run("gradcheck", "--threshold", 0)
    assert result.returncode == 1
    assert "FAILED" in result.stdout


def test_gradcheck_on_data(tmp_path, digits_mat):
    result = run("gradcheck", digits_mat, "--hidden", 6, "--examples", 10)
    assert result.returncode == 0, result.stderr
    assert "layers (64, 6, 10), λ = 3, m = 10" in result.stdout
    assert_usage_error(run("gradcheck", tmp_path / "absent.csv"), "absent.csv: no such file")


@pytest.mark.slow
def test_says_when_kernels_compile(tmp_path):
    """With an empty numba cache the kernels compile, and the command says so in one line."""
    cache = tmp_path / "numba-cache"
    first = run("gradcheck", NUMBA_CACHE_DIR=str(cache))
    assert first.returncode == 0, first.stderr
    notes = [line for line in first.stderr.splitlines() if "compiling" in line]
    assert len(notes) == 1
    again = run("gradcheck", NUMBA_CACHE_DIR=str(cache))
    assert again.returncode == 0
    assert "compiling" not in again.stderr
