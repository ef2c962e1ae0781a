"""The README's commands and example stay true."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_first_command_installs_and_runs_the_demo():
    import tomllib

    assert code_blocks("bash")[0].strip() == 'pip install -e ".[demo]" && fastbp demo'
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "demo" in project["optional-dependencies"]
    assert "fastbp" in project["scripts"]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = code_blocks("bash")[1].strip()
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_scipy_example_runs():
    example = code_blocks("python")[0]
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=300, check=True
    )
    J, shapes = out.stdout.split(" ", 1)
    assert 0 < float(J) < 1.2  # below the cost at θ0 (about 3 log 2 = 2.08)
    assert shapes.strip() == "(16, 21) (3, 17)"


def test_hessp_example_continues_the_scipy_example():
    [example] = [block for block in code_blocks("python") if "hessp=" in block]
    script = code_blocks("python")[0] + example
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    J, nit = out.stdout.splitlines()[-1].split()
    assert 0 < float(J) < 1.2
    assert 0 < int(nit) <= 30


def test_course_workflow_example_runs():
    [example] = [block for block in code_blocks("python") if "check_gradient" in block]
    assert "check_gradient" in example
    assert len(example.strip().splitlines()) <= 12
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=300, check=True
    )
    relative_difference, accuracy = map(float, out.stdout.split())
    assert relative_difference < 1e-9
    assert accuracy > 0.95


def test_dask_example_runs_on_a_local_cluster():
    [example] = [block for block in code_blocks("python") if "LocalCluster" in block]
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=300, check=True
    )
    J, n_chunks = out.stdout.split()
    assert 0 < float(J) < 1.2  # below the cost at θ0 (about 3 log 2 = 2.08)
    assert n_chunks == "4"


def test_activations_outputs_and_sample_weights_example_runs():
    [example] = [block for block in code_blocks("python") if 'output": "softmax"' in block]
    assert "sample_weight=weights" in example
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=300, check=True
    )
    J, proba_sum, accuracy = map(float, out.stdout.split())
    assert 0 < J < 0.5  # below the cost at θ0 (about log 3 = 1.1)
    assert proba_sum == 1.0  # softmax rows
    assert accuracy > 0.95


def test_sklearn_grid_search_example_runs():
    [example] = [block for block in code_blocks("python") if "GridSearchCV" in block]
    assert "make_pipeline(StandardScaler(), BackpropClassifier(" in example
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", example],  # no ConvergenceWarning either
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lam, accuracy = map(float, out.stdout.split())
    assert lam in (0.3, 1.0, 3.0)
    assert accuracy > 0.95
