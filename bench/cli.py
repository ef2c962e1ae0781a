"""``python -m bench``: measure fastbp and its peers, write the results and their tables."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .cases import CASES, make_problem
from .implementations import IMPLEMENTATIONS
from .machine import cpu_jiffies, describe_machine, stolen_percent
from .measure import measure_problem
from .probe import memory_profile, startup_times
from .report import plot_scaling, render, replace_readme_section
from .target import TARGETS, target_environment
from .timing import available_cores, gemm_peak, thread_count

__all__ = ["main"]

BENCH = Path(__file__).resolve().parent
README = BENCH / "README.md"
PLOT = "ex4-scaling-{isa}.png"  # in bench/, one per ISA like the README's sections
QUICK_CASES = ("tiny", "digits", "ex4")
SCALING_CASE = "ex4"
SCALING_M = (100, 300, 1000, 3000, 10000, 30000)
MEMORY_M = (1000, 5000, 20000, 100000)
EXTRAS = ("startup", "memory", "scaling")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    cores = available_cores()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Time fastbp's (J, grad) against NumPy, scikit-learn, PyTorch and JAX on the same "
            "problems, in one run, after checking that each agrees with fastbp. Writes "
            "bench/results/<date>-<host>.json and .md and prints the tables."
        ),
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=list(CASES),
        metavar="CASE",
        help=f"cases to run, from {', '.join(CASES)} (default: all; --quick: "
        f"{', '.join(QUICK_CASES)})",
    )
    parser.add_argument(
        "--dtype",
        choices=["float64", "float32", "both"],
        help="compute dtype (default: both; --quick: float64)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=cores,
        help=f"threads for every implementation (default: all {cores} available cores)",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        choices=[k for k, impl in IMPLEMENTATIONS.items() if impl.is_peer],
        metavar="PEER",
        help="peers to compare with: numpy, sklearn, torch, jax (default: all installed)",
    )
    parser.add_argument(
        "--seconds",
        type=_positive_float,
        help="about this many seconds of timed calls per case and implementation "
        "(default: 1; --quick: 0.2)",
    )
    parser.add_argument(
        "--skip",
        nargs="+",
        choices=EXTRAS,
        default=[],
        help="leave out fastbp's start-up (compile) times, its memory profile or the "
        "ex4 scaling sweep",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a check in under a minute: {', '.join(QUICK_CASES)}, float64, short "
        "timings, no start-up, memory or scaling measurements",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="host",
        help="the CPU fastbp compiles for: this one as it is (host), or this one without "
        "AVX-512 (avx2), to measure both builds on an AVX-512 machine (default: host)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=BENCH / "results",
        help="where the results go (default: bench/results)",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="also put the tables into bench/README.md and redraw bench/ex4-scaling.png",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="measure nothing: render the results in FILE (with --write-readme: into the README)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.quick and args.write_readme:
        parser.error("--write-readme needs a full run: the README shows every case and dtype")
    if args.from_json:
        return _render_only(parser, args)
    if any(os.environ.get(k) != v for k, v in target_environment(args.target).items()):
        parser.error("--target needs `python -m bench` (it is set before numba is imported)")
    if not 1 <= args.threads <= available_cores():
        parser.error(f"--threads must be between 1 and {available_cores()}, got {args.threads}")
    try:
        results = run(args, " ".join(["python -m bench", *map(shlex.quote, argv or sys.argv[1:])]))
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    stem = f"{results['date'][:10]}-{_safe(results['host'])}-{results['kernels']['isa']}"
    stem += "-quick" if args.quick else ""
    args.output_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.output_dir / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (args.output_dir / f"{stem}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {json_path} and {json_path.with_suffix('.md')}", file=sys.stderr)
    if args.write_readme:
        _write_readme(results, json_path)
    return 0


def _kernels(target: str) -> dict[str, Any]:
    """What fastbp's kernels are compiled for: the ISA, the CPU and its register blocks."""
    import llvmlite.binding as llvm

    import fastbp

    info = fastbp.threading_info()
    return {
        "target": target,
        "isa": info["isa"],
        "cpu_name": os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name(),
        "block_shapes": info["block_shapes"],
    }


def _safe(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", host) or "host"


def _render_only(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        results = json.loads(args.from_json.read_text())
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"--from-json: cannot read results from {args.from_json}: {error}")
    if not isinstance(results, dict) or results.get("schema") != 1:
        parser.error(f"--from-json: {args.from_json} is not a results file of python -m bench")
    if args.write_readme:
        _write_readme(results, args.from_json)
    else:
        print(render(results))
    return 0


def _write_readme(results: dict[str, Any], json_path: Path) -> None:
    """Put the tables of ``results`` into bench/README.md, and redraw the scaling plot."""
    source = _relative_to_bench(json_path)
    isa = results.get("kernels", {}).get("isa", "avx2")  # older runs: AVX2 machines only
    plot = PLOT.format(isa=isa) if results.get("scaling") else None
    section = render(results, plot)
    README.write_text(replace_readme_section(README.read_text(), section, source, isa))
    if plot:
        plot_scaling(results, BENCH / plot)
    print(f"wrote {README}" + (f" and {BENCH / plot}" if plot else ""), file=sys.stderr)


def _relative_to_bench(path: Path) -> str:
    try:
        return path.resolve().relative_to(BENCH).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Every measurement the arguments ask for; returns the JSON-able results."""
    start = time.perf_counter()
    cases = [CASES[name] for name in (args.cases or (QUICK_CASES if args.quick else CASES))]
    dtype_choice = args.dtype or ("float64" if args.quick else "both")
    dtypes = ["float64", "float32"] if dtype_choice == "both" else [dtype_choice]
    seconds = args.seconds or (0.2 if args.quick else 1.0)
    skip = set(EXTRAS) if args.quick else set(args.skip)
    peer_keys = args.peers or [k for k, impl in IMPLEMENTATIONS.items() if impl.is_peer]
    # The literal kernel (the seed's loop as written) is shown beside fastbp's fast path, so a
    # reader sees what the tiling buys; --quick leaves it out to stay under a minute.
    own = ["fastbp"] if args.quick else ["fastbp", "literal"]
    implementations = [IMPLEMENTATIONS[k] for k in own + peer_keys]

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if any(impl.key == "torch" and not impl.missing() for impl in implementations):
        import torch  # noqa: F401  (imported before the thread count is set, so it is set)

    results: dict[str, Any] = {
        "schema": 1,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "command": command,
        "settings": {
            "cases": [c.name for c in cases],
            "dtypes": dtypes,
            "threads": args.threads,
            "seconds": seconds,
            "quick": args.quick,
            "skip": sorted(skip),
        },
        "machine": describe_machine(),
        "kernels": _kernels(args.target),
        # The machine may be shared: the 1-minute load average before and after says how busy,
        # and on a virtual machine the time the hypervisor gave to others (cpu_stolen_percent).
        "load_average": {"start": os.getloadavg()[0]},
        "implementations": [
            {
                "key": impl.key,
                "name": impl.name,
                "is_peer": impl.is_peer,
                "description": impl.description,
                "missing": impl.missing(),
            }
            for impl in implementations
        ],
    }
    cpu_at_start = cpu_jiffies()
    with thread_count(args.threads) as threads:
        results["threads"] = threads
        log(f"threads: {threads}")
        results["gemm_peak"] = {dtype: gemm_peak(dtype) for dtype in dtypes}
        for dtype, peak in results["gemm_peak"].items():
            log(f"GEMM peak {dtype}: {peak['gflops']:.1f} GFLOP/s")
        results["results"] = [
            record
            for case in cases
            for dtype in dtypes
            for record in measure_problem(
                make_problem(case, dtype),
                implementations,
                seconds,
                results["gemm_peak"][dtype]["gflops"],
                log,
            )
        ]
        results["scaling"] = None
        if "scaling" not in skip:
            base = CASES[SCALING_CASE]
            results["scaling"] = {
                "case": base.name,
                "layer_sizes": list(base.layer_sizes),
                "results": [
                    record
                    for dtype in dtypes
                    for m in SCALING_M
                    for record in measure_problem(
                        make_problem(dataclasses.replace(base, m=m), dtype),
                        implementations,
                        seconds / 2,
                        results["gemm_peak"][dtype]["gflops"],
                        log,
                    )
                ],
            }
        results["startup"] = None
        if "startup" not in skip:
            log("fastbp start-up: cold compile and cached first call, in new processes")
            results["startup"] = startup_times(dtypes, args.threads)
        results["memory"] = None
        if "memory" not in skip:
            log(f"memory against m = {', '.join(map(str, MEMORY_M))}, in new processes")
            base = CASES["ex4"]
            results["memory"] = {
                "case": base.name,
                "layer_sizes": list(base.layer_sizes),
                "dtype": dtypes[0],
                "points": memory_profile(list(MEMORY_M), dtypes[0], args.threads),
            }
    results["load_average"]["end"] = os.getloadavg()[0]
    results["cpu_stolen_percent"] = stolen_percent(cpu_at_start, cpu_jiffies())
    results["elapsed_s"] = time.perf_counter() - start
    return results
