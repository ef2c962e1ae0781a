"""Check that a code change kept every bit of fastbp's results: this tree against a commit.

``python -m bench.bits --against COMMIT [--cases CASE …] [--dtype float64|float32|both]``

The commit is checked out in a temporary git worktree. Each tree's fastbp runs in its own
subprocess (``PYTHONPATH=<tree>/src:<checkout>``, a fresh ``NUMBA_CACHE_DIR`` each, so the two
builds never share compiled code) and saves, for every bench case (bench/cases.py) and dtype:
``cost_and_grad``, ``Objective`` (default threads, and ``threads=1``), ``partial_sums``,
``predict_proba`` and, on the small cases, ``Objective(kernel="literal")``. The results are then
compared byte for byte (J by ``float.hex``). Exit status 1 if anything differs. Only the public
API is used, so the script runs on old and new code alike; a case whose activation or output
the tree's fastbp does not take (it predates them) is left out of that tree's results, and the
table says it is missing there.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the checkout this script belongs to
SMALL_CASES = ("tiny", "xor", "digits")  # the literal kernel runs on these only (it is slow)
DESCRIPTION = "Check that this tree gives bitwise the results of fastbp at a commit."
PARTS = {"partial_sums": ("cost_sum", "Delta"), "predict_proba": ("", "proba")}  # else J, grad
DTYPES = {"float64": ("float64",), "float32": ("float32",), "both": ("float64", "float32")}


def compute(out: Path, tree_src: Path, cases: list[str] | None, dtypes: list[str]) -> None:
    """Run in the subprocess: every quantity of every case and dtype, saved to ``out`` (.npz)."""
    import fastbp
    from bench.cases import CASES, make_problem

    origin = Path(fastbp.__file__).resolve()
    print(f"  fastbp imported from {origin}", flush=True)
    if not origin.is_relative_to(tree_src.resolve()):
        raise SystemExit(f"fastbp comes from {origin}, not from {tree_src}")
    unknown = sorted(set(cases or ()) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; the cases are {list(CASES)}")
    results: dict[str, np.ndarray] = {}
    takes_functions = "output" in inspect.signature(fastbp.cost_and_grad).parameters
    for name in cases or CASES:
        kw = CASES[name].network_keywords  # empty for the sigmoid cases: older fastbp runs them
        if kw and not takes_functions:
            print(f"  {name}: left out, this fastbp has no activation or output", flush=True)
            continue
        for dtype in dtypes:
            p = make_problem(CASES[name], dtype)
            X, y, theta, sizes, lam = p.X, p.y, p.theta, p.layer_sizes, p.lam
            objective = fastbp.Objective(X, y, sizes, lam, dtype=dtype, **kw)
            serial = fastbp.Objective(X, y, sizes, lam, dtype=dtype, threads=1, **kw)
            got = {
                "cost_and_grad": fastbp.cost_and_grad(theta, X, y, sizes, lam, **kw),
                "Objective": objective(theta),
                "Objective threads=1": serial(theta),
                "partial_sums": fastbp.partial_sums(theta, X, y, sizes, **kw)[:2],
                "predict_proba": (None, fastbp.predict_proba(theta, X, sizes, **kw)),
            }
            if name in SMALL_CASES:
                literal = fastbp.Objective(X, y, sizes, lam, dtype=dtype, kernel="literal", **kw)
                got["Objective literal"] = literal(theta)
            for quantity, (J, array) in got.items():
                key = f"{name}|{dtype}|{quantity}"
                if J is not None:
                    results[f"{key}|J"] = np.array(float(J), np.float64)  # exact: J is a float
                results[f"{key}|array"] = np.asarray(array)
    np.savez(out, **results)  # type: ignore[arg-type]  # numpy's stubs: keys are names


def run_tree(
    label: str, src: Path, work: Path, cases: list[str] | None, dtypes: list[str]
) -> Path | None:
    """Compute in a subprocess with fastbp from ``src`` and a numba cache of its own."""
    out = work / f"{label}.npz"
    cache = work / f"numba-cache-{label}"
    cache.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}", "NUMBA_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "bench.bits", "--compute", str(out), "--tree-src", str(src)]
    command += ["--dtype", *dtypes, *(["--cases", *cases] if cases else [])]
    print(f"{label}: fastbp from {src}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=work, check=False)  # cwd: no stray fastbp
    if done.returncode != 0:
        print(f"  {label}: FAILED (exit status {done.returncode})", flush=True)
        return None
    print(f"  {time.perf_counter() - start:.1f} s", flush=True)
    return out


def difference(a: np.ndarray, b: np.ndarray, is_J: bool) -> str:
    """The text "same bits", or the max-norm relative difference ‖a − b‖∞ / ‖b‖∞."""
    if is_J and float(a).hex() == float(b).hex():
        return "same bits"
    if not is_J and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes():
        return "same bits"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = np.max(np.abs(b64)) if b64.size else 0.0
    diff = np.max(np.abs(a64 - b64)) if a64.size else 0.0
    dtypes = "" if a.dtype == b.dtype else f" (dtype {a.dtype} vs {b.dtype})"
    return f"rel. diff {diff / scale if scale else diff:.3e}{dtypes}"


NEW = "new, not in old"


def compare(old: Path, new: Path) -> bool:
    """Print the table; True if every quantity of the old tree has the same bits in the new."""
    with np.load(old) as a, np.load(new) as b:
        keys = list(dict.fromkeys([*a.files, *b.files]))
        rows = []
        for key in keys:
            case, dtype, quantity, part = key.split("|")
            names = PARTS.get(quantity.split()[0], ("J", "grad"))
            what = f"{quantity} {names[part == 'array']}".strip()
            if key not in a.files:
                verdict = NEW  # a case or quantity the old tree has not: nothing to compare
            elif key not in b.files:
                verdict = "missing in new"
            else:
                verdict = difference(b[key], a[key], part == "J")
            rows.append((case, dtype, what, verdict))
    widths = [max(len(r[i]) for r in [("case", "dtype", "quantity", ""), *rows]) for i in range(3)]
    print(f"{'case':{widths[0]}}  {'dtype':{widths[1]}}  {'quantity':{widths[2]}}  result")
    for row in rows:
        print("  ".join(f"{c:{w}}" for c, w in zip(row[:3], widths, strict=True)), "", row[3])
    return all(row[3] in ("same bits", NEW) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bits", description=DESCRIPTION)
    parser.add_argument("--against", help="the commit to compare with (e.g. HEAD)")
    parser.add_argument("--cases", nargs="+", help="bench/cases.py's cases (default: all)")
    parser.add_argument("--dtype", nargs="+", default=["both"], choices=[*DTYPES])
    parser.add_argument("--compute", type=Path, help=argparse.SUPPRESS)  # subprocess mode
    parser.add_argument("--tree-src", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dtypes = list(dict.fromkeys(d for choice in args.dtype for d in DTYPES[choice]))
    if args.compute is not None:
        compute(args.compute, args.tree_src, args.cases, dtypes)
        return 0
    if args.against is None:
        parser.error("--against COMMIT is required")
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fastbp-bits-"))
    tree = work / "tree"
    git = ["git", "-C", str(ROOT), "worktree"]
    old = new = None
    try:
        subprocess.run([*git, "add", "--detach", str(tree), args.against], check=True)
        old = run_tree("old", tree / "src", work, args.cases, dtypes)
        new = run_tree("new", ROOT / "src", work, args.cases, dtypes)
        same = old is not None and new is not None and compare(old, new)
    finally:
        subprocess.run([*git, "remove", "--force", str(tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    verdict = "FAILED to run" if old is None or new is None else "DIFFERENT from"
    print(f"{'every bit the same as' if same else verdict} {args.against}", end="; ")
    print(f"{time.perf_counter() - start:.1f} s in all")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
