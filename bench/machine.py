"""What the benchmark ran on: CPU, memory, operating system, library versions, fastbp's commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info

__all__ = ["cpu_jiffies", "describe_machine", "stolen_percent"]

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = (
    "fastbp",
    "numba",
    "llvmlite",
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "jax",
    "jaxlib",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where it is absent)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _memory_gib() -> float | None:
    meminfo = _read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def cpu_jiffies(stat: str | None = None) -> tuple[int, int] | None:
    """(stolen, total) CPU time of all cores since boot, in jiffies, from /proc/stat (or ``stat``,
    its text); None where it is absent.

    "Stolen" is the time a virtual machine's cores were ready to run but the hypervisor ran
    something else: on a shared host it slows every implementation, in bursts, and no
    measurement inside the machine can tell it from a slower implementation.
    """
    stat = _read("/proc/stat") if stat is None else stat
    for line in (stat or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            times = [int(f) for f in fields[1:9]]
            return (times[7], sum(times)) if len(times) == 8 else None
    return None


def stolen_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of all cores' time stolen by the hypervisor between two :func:`cpu_jiffies`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def describe_machine() -> dict[str, Any]:
    """A JSON-able description of this machine and the software measured."""
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    return {
        "cpu": cpu.get("model name", platform.processor() or "unknown"),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "vector_extensions": [f for f in ("avx2", "fma", "avx512f") if f in flags],
        "l2_cache": _read("/sys/devices/system/cpu/cpu0/cache/index2/size"),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in LIBRARIES},
        "fastbp_commit": _git_commit(),
        "blas": [
            {k: lib.get(k) for k in ("internal_api", "version", "architecture", "threading_layer")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ],
        "openblas_env": {
            name: os.environ[name]
            for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
            if name in os.environ
        },
    }
