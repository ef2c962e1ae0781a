"""``python -m bench.hotloops``: where a fastbp call spends its time, loop by loop, via ``perf``.

Runs ``perf record`` (cpu-clock sampling) on this process while it calls ``fastbp.Objective`` on
a bench case for a few seconds, then attributes the samples: to shared libraries by name (memset,
the threading layer, the kernel), and within numba's compiled code, which has no symbols, to hot
address ranges (samples less than ``GAP`` bytes apart), each disassembled with ``objdump`` to
count its instructions. Ranges with multiply-adds and no division are the kernel's product and
Δ-update loops (the sigmoid's and exp's loops divide); their GFLOP/s is the case's FLOPs over the
time spent in them. Linux only; needs ``objdump`` and ``perf``, allowed to sample (root or
``perf_event_paranoid`` ≤ 1, and no container policy against ``perf_event_open``). ::

    python -m bench.hotloops --case mnist --dtype float32 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fastbp

from .cases import CASES, flops_per_example, make_problem

__all__ = ["hot_ranges", "main", "perf_available", "profile"]

GAP = 96  # bytes: samples closer than this belong to one loop
FREQUENCY = 4999  # samples per second and thread


def perf_available() -> bool:
    """Whether ``perf`` can sample here (it is installed and allowed to) and ``objdump`` exists."""
    if not (sys.platform == "linux" and shutil.which("perf") and shutil.which("objdump")):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        trial = ["perf", "record", "-e", "cpu-clock", "-o", os.path.join(tmp, "perf.data")]
        done = subprocess.run([*trial, "--", "true"], capture_output=True, check=False)
    return done.returncode == 0


def _executable_anonymous_maps() -> list[tuple[int, int]]:
    """(start, end) of this process's executable mappings without a file: numba's JIT code."""
    maps = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if "x" in fields[1] and len(fields) < 6:
            start, end = (int(a, 16) for a in fields[0].split("-"))
            maps.append((start, end))
    return maps


def hot_ranges(samples: dict[int, int], gap: int = GAP) -> list[tuple[int, int, int]]:
    """Samples per address grouped into (first, last, samples) ranges, most samples first."""
    ranges: list[list[int]] = []
    for address, count in sorted(samples.items()):
        if ranges and address - ranges[-1][1] < gap:
            ranges[-1][1] = address
            ranges[-1][2] += count
        else:
            ranges.append([address, address, count])
    return sorted(((a, b, n) for a, b, n in ranges), key=lambda r: -r[2])


def _instructions(code: bytes) -> list[str]:
    """The mnemonics of a piece of x86-64 machine code."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        listing = subprocess.run(
            ["objdump", "-D", "-b", "binary", "-mi386:x86-64", f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return [
        m.group(1)
        for m in re.finditer(r"^\s+[0-9a-f]+:\t(?:[0-9a-f]{2} )+\s*\t(\S+)", listing, re.MULTILINE)
    ]


def _is_product(loop: dict[str, Any]) -> bool:
    """A product or Δ-update loop: multiply-adds into an accumulator (``vfmadd231``), no division.

    The exp's polynomial multiplies-adds in the other form (``vfmadd213``); the sigmoid divides.
    """
    return loop["multiply_adds"] >= 8 and loop["divisions"] == 0


def profile(case: str, dtype: str, threads: int, seconds: float) -> dict[str, Any]:
    """Sample ``seconds`` of Objective calls on ``case``; return the shares and hot loops."""
    problem = make_problem(CASES[case], dtype)
    objective = fastbp.Objective(
        problem.X,
        problem.y,
        problem.layer_sizes,
        problem.lam,
        threads=threads,
        **problem.case.network_keywords,
    )
    objective(problem.theta)  # compiles or loads the kernels: not profiled
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        record = ["perf", "record", "-e", "cpu-clock", "-F", str(FREQUENCY), "-o", data]
        perf = subprocess.Popen(
            [*record, "-p", str(os.getpid())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # perf attaches
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            objective(problem.theta)
            calls += 1
        elapsed = time.perf_counter() - start
        perf.send_signal(signal.SIGINT)
        _, error = perf.communicate()
        if perf.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"perf record failed: {error.decode(errors='replace')}")
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", "ip,dso"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    jit = _executable_anonymous_maps()
    libraries: collections.Counter[str] = collections.Counter()
    in_jit: collections.Counter[int] = collections.Counter()
    for line in script.splitlines():
        ip_text, _, dso = line.strip().partition(" ")
        ip = int(ip_text, 16)
        if any(a <= ip < b for a, b in jit):
            in_jit[ip] += 1
        else:
            libraries[Path(dso.strip("()")).name or "?"] += 1
    total = sum(libraries.values()) + sum(in_jit.values())
    if total == 0:
        raise RuntimeError("perf recorded no samples of this process")
    loops: list[dict[str, Any]] = []
    for first, last, n in hot_ranges(in_jit)[:8]:
        end = min(last + 16, next(b for a, b in jit if a <= last < b))
        names = _instructions(ctypes.string_at(first, end - first))
        loops.append(
            {
                "range": f"{first:#x}-{last:#x}",
                "share": n / total,
                "multiply_adds": sum(name.startswith("vfmadd231") for name in names),
                "divisions": sum(name.startswith("vdiv") for name in names),
                "top": collections.Counter(names).most_common(6),
            }
        )
    ms = 1e3 * elapsed / calls
    product_share = sum(loop["share"] for loop in loops if _is_product(loop))
    flops = flops_per_example(problem.layer_sizes) * problem.m
    return {
        "case": case,
        "dtype": dtype,
        "threads": threads,
        "calls": calls,
        "ms": ms,
        "gflops": flops / ms / 1e6,
        "samples": total,
        "jit_share": sum(in_jit.values()) / total,
        "libraries": {k: v / total for k, v in libraries.most_common(5)},
        "loops": loops,
        "product_share": product_share,
        "product_gflops": flops / (ms * product_share) / 1e6 if product_share else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotloops", description=__doc__)
    parser.add_argument("--case", choices=list(CASES), default="mnist")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not perf_available():
        print("needs objdump and perf, allowed to sample (see --help)", file=sys.stderr)
        return 2
    r = profile(args.case, args.dtype, args.threads, args.seconds)
    print(
        f"{r['case']} {r['dtype']}, {r['threads']} thread(s): {r['calls']} calls, "
        f"{r['ms']:.3g} ms per call, {r['gflops']:.3g} GFLOP/s, {r['samples']} samples"
    )
    print(f"  numba's compiled code: {100 * r['jit_share']:.1f}%")
    for name, share in r["libraries"].items():
        print(f"  {name}: {100 * share:.1f}%")
    print("  hottest loops of the compiled code: address range, share, most frequent instructions")
    for loop in r["loops"]:
        top = ", ".join(f"{name} {count}" for name, count in loop["top"])
        mark = "product" if _is_product(loop) else ""
        print(f"    {loop['range']:>15} {100 * loop['share']:5.1f}%  {mark:7}  {top}")
    if r["product_gflops"]:
        print(
            f"  product and Δ-update loops (multiply-adds, no division): "
            f"{100 * r['product_share']:.1f}% of the time, {r['product_gflops']:.3g} GFLOP/s in them"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
