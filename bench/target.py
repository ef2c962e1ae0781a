"""``--target``: which CPU the benchmark compiles fastbp for, set before numba is imported.

numba reads ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` once, when it is imported, and compiles
every kernel for them (its disk cache keys each build by both, so builds for several targets
share a cache directory). ``--target avx2`` compiles for this CPU with every AVX-512 feature
turned off, so that on an AVX-512 machine both builds can be measured, back to back.
"""

from __future__ import annotations

import os

__all__ = ["TARGETS", "apply_target", "target_environment"]

TARGETS = ("host", "avx2")


def target_environment(target: str) -> dict[str, str]:
    """The numba settings that compile for ``target``: {} for this CPU as it is."""
    if target == "host":
        return {}
    import llvmlite.binding as llvm  # not numba: its settings are read when numba is imported

    features = llvm.get_host_cpu_features().flatten().split(",")
    without_avx512 = [("-" + f[1:]) if f.startswith("+avx512") else f for f in features]
    return {
        "NUMBA_CPU_NAME": llvm.get_host_cpu_name(),
        "NUMBA_CPU_FEATURES": ",".join(without_avx512),
    }


def apply_target(argv: list[str]) -> None:
    """Set the environment for ``--target T`` in ``argv`` (checked again by the parser)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--target=") else None
        if arg == "--target" and i + 1 < len(argv):
            value = argv[i + 1]
        if value in TARGETS:
            os.environ.update(target_environment(value))
