"""fastbp's compilation switches stay inside fastbp: the user's own numba code is unaffected."""

import os
import subprocess
import sys
import textwrap

import numba
import pytest
from numba.core.compiler_lock import global_compiler_lock

from fastbp.kernels import compile

USER_FUNCTION = textwrap.dedent(
    """
    import re
    import numba, numpy as np

    def user(x, out):  # straight-line code that LLVM's SLP vectorizer would change
        s = x[0]
        for i in range(16):
            out[i] = (s * i) * (s * i) + s

    def user_ir():
        f = numba.njit(user)
        f(np.ones(1), np.zeros(16))
        # numba numbers every function it compiles: "userB2v1B" here, "userB3v77B" there,
        # which also changes the length of the strings that hold the name
        ir = re.sub(r"B\\d+v\\d+B", "B_v_B", f.inspect_llvm(f.signatures[0]))
        return re.sub(r"\\[\\d+ x i8\\]", "[n x i8]", ir)
    """
)


def run(code, cache_dir):
    """Run ``code`` after USER_FUNCTION in a fresh interpreter with an empty numba cache."""
    result = subprocess.run(
        [sys.executable, "-c", USER_FUNCTION + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)},
        check=True,
    )
    return result.stdout


def test_user_code_compiles_as_without_fastbp(tmp_path):
    clean = run("print(user_ir())", tmp_path / "clean")
    after_fastbp = run(
        """
        import fastbp
        from fastbp.kernels import compile
        rng = np.random.default_rng(0)
        X, y = rng.random((40, 3)), rng.integers(0, 2, 40)
        fastbp.cost_and_grad(rng.normal(size=fastbp.n_params((3, 4, 2))), X, y, (3, 4, 2))
        assert (np.dtype(np.float64), "tiled", False, "sums") in compile._compiled
        print(user_ir())
        """,
        tmp_path / "fastbp",  # an empty cache: fastbp's kernels really compile in this process
    )
    assert "<4 x double>" not in clean  # the comparison is sensitive: SLP would vectorize it
    assert after_fastbp == clean


def test_slp_switch_holds_the_compiler_lock_and_is_restored():
    before = numba.config.SLP_VECTORIZE
    with compile.slp_vectorization():
        assert global_compiler_lock.is_locked()
        assert numba.config.SLP_VECTORIZE == 1
    assert numba.config.SLP_VECTORIZE == before
    with pytest.raises(RuntimeError), compile.slp_vectorization():
        raise RuntimeError("a failed compilation")
    assert numba.config.SLP_VECTORIZE == before


def test_without_the_slp_setting_nothing_is_switched(monkeypatch):
    """Where a numba version lacks the internal switch, fastbp compiles without it (slower)."""
    monkeypatch.setattr(compile, "slp_available", lambda: False)
    before = numba.config.SLP_VECTORIZE
    with compile.slp_vectorization():
        assert global_compiler_lock.is_locked()
        assert numba.config.SLP_VECTORIZE == before
