"""The kernels' machine code for every x86-64 target, checked on any x86-64 machine.

Each target is compiled in a fresh process (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` and a
numba cache of its own): an AVX-512 build can be read on a machine without AVX-512. Where this
machine can run a target's code, the process also runs it, so that the builds' bits can be
compared.
"""

import json
import os
import platform
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 targets only"
)

# LLVM completes each CPU's features from its name; the ISA switch reads the explicit list.
TARGETS = {
    "avx2": ("znver3", "+avx,+avx2,+fma,+f16c,+bmi,+bmi2"),
    "avx512": ("znver4", "+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+avx512f,+avx512vl,+avx512bw,+avx512dq"),
}

INSPECT = textwrap.dedent(
    """
    import itertools, json, os, re
    import numpy as np
    from fastbp import kernels
    from fastbp.kernels import simd

    RUN = os.environ.get("FASTBP_TEST_RUN") == "1"

    FMA = re.compile(r"\\bvfn?m(add|sub)\\w*p[sd]\\s+%?([xyz])mm")  # packed multiply-adds
    counts = {}
    # the gradient's entry points, and H·v's serial one: its parallel twin runs the same block
    # function (the entry points' code that differs is the block loop)
    runs = itertools.product(("float64", "float32"), (False, True), ("sums", "hessp"))
    for dtype, parallel, what in runs:
        if what == "hessp" and parallel:
            continue
        # compiles, runs nothing
        dispatcher = kernels.kernel(np.dtype(dtype), parallel, "tiled", what)
        asm = "\\n".join(dispatcher.inspect_asm().values())
        widths = [match[1] for match in FMA.findall(asm)]
        counts[f"{dtype} {what} {'parallel' if parallel else 'serial'}"] = {
            "gather_scatter": len(re.findall(r"\\bvp?(gather|scatter)\\w*", asm)),
            "fma": {width: widths.count(width) for width in "xyz"},
        }
    bits = None
    if RUN:  # this machine runs the target's code: hash the results of both entry points
        import hashlib
        import fastbp

        rng = np.random.default_rng(5)
        digest = hashlib.sha256()
        for dtype in ("float64", "float32"):
            for m, sizes in ((64, (30, 17, 5)), (4096, (30, 17, 5)), (700, (64, 33, 20, 1))):
                X = rng.uniform(-1, 1, (m, sizes[0])).astype(dtype)
                y = rng.integers(0, max(2, sizes[-1]), m)
                theta = rng.normal(0, 0.3, fastbp.n_params(sizes)).astype(dtype)
                J, grad = fastbp.cost_and_grad(theta, X, y, sizes, 0.7)
                digest.update(np.float64(J).tobytes() + grad.tobytes())
                if m < 128:  # one block: H·v's serial entry point
                    digest.update(fastbp.hessp(theta, grad, X, y, sizes, 0.7).tobytes())
        bits = digest.hexdigest()
    print(json.dumps({"isa": simd.ISA, "entry_points": counts, "bits": bits}))
    """
)


def runs_here(target):
    """Whether this machine can run the target's code (an AVX-512 build needs AVX-512)."""
    if target != "avx512":
        return True
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return "avx512f" in cpuinfo.read()
    except OSError:
        return False


def inspect(target, tmp_path):
    cpu, features = TARGETS[target]
    env = {
        **os.environ,
        "NUMBA_CPU_NAME": cpu,
        "NUMBA_CPU_FEATURES": features,
        "NUMBA_CACHE_DIR": str(tmp_path / target),
        "FASTBP_TEST_RUN": "1" if runs_here(target) else "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", INSPECT],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def machine_code(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("isa")
    with ThreadPoolExecutor(len(TARGETS)) as pool:  # one compiling process per core
        results = pool.map(lambda target: inspect(target, tmp_path), TARGETS)
        return dict(zip(TARGETS, results, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_no_gathers_or_scatters_and_the_target_register_width(machine_code, target):
    """LLVM may vectorize a loop with gathers and scatters where AVX-512 makes them legal, and
    they are many times slower than the contiguous loads they replace: none anywhere in the
    entry points (the tiled kernels of the gradient and of H·v, and everything they call). The packed multiply-adds run on
    the target's widest registers, more of them than on any narrower one: zmm for AVX-512, ymm
    (and never zmm) for AVX2."""
    code = machine_code[target]
    assert code["isa"] == target
    for entry_point, counts in code["entry_points"].items():
        assert counts["gather_scatter"] == 0, (target, entry_point, counts)
        fma = counts["fma"]
        if target == "avx512":
            assert fma["z"] > max(fma["y"], fma["x"]), (entry_point, fma)
        else:
            assert fma["z"] == 0, (entry_point, fma)
            assert fma["y"] > fma["x"], (entry_point, fma)


@pytest.mark.slow
def test_avx2_and_avx512_builds_give_the_same_bits(machine_code):
    """Block shapes decide which entries are computed together, never the order of the sums
    of one entry (over k, over examples, over blocks): both builds give the same bits. Runs
    where this machine has AVX-512 (the AVX2 build runs on it too)."""
    if machine_code["avx512"]["bits"] is None:
        pytest.skip("this machine cannot run AVX-512 code")
    assert machine_code["avx2"]["bits"] == machine_code["avx512"]["bits"]
