"""The README's commands and example stay true."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


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
