"""Threads and processes: which numba threading layer runs fastbp's parallel kernels, and when not.

numba picks its threading layer at the first parallel launch in a process, by priority TBB, then
OpenMP, then workqueue. On Linux the ``tbb`` wheel puts ``libtbb.so.12`` in the environment's
``lib/`` folder, which the loader does not search, so numba falls back to GNU OpenMP — and GNU
OpenMP is not fork-safe: a forked child of a process that ran OpenMP threads hangs or aborts on
its first parallel launch ("fork() called from a process already using GNU OpenMP").

fastbp's mechanism, in order:

1. At import, if numba has not launched its threads yet, fastbp loads the ``tbb`` package's
   ``libtbb.so.12`` globally (``ctypes.CDLL(..., RTLD_GLOBAL)``). numba then finds TBB and, by its
   own priority, uses it: fork-safe and thread-safe. No numba setting is changed, so a layer the
   user chose (``NUMBA_THREADING_LAYER`` or ``numba.config.THREADING_LAYER``) is still the one used.
2. Where the layer in use is not fork-safe (GNU OpenMP: the user chose it, TBB is missing, or
   parallel numba code ran before fastbp was imported), a forked child of a process that already
   launched threads runs fastbp's serial kernel instead. The serial kernel sums the same blocks in
   the same order, so the results are bitwise the same, only slower.
3. The workqueue layer aborts the process when two threads launch parallel kernels at once:
   under it, fastbp's parallel launches take turns (a lock); concurrent calls wait, never crash.

``threads(n)`` limits the threads of fastbp's calls in the calling thread only (numba's thread
count is per thread) and restores the previous value in ``finally``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import numba
from numba.np.ufunc import parallel as _numba_parallel

__all__ = ["threading_info", "threads"]

_FORK_SAFE_LAYERS = {"tbb", "workqueue"}
_launch_lock = threading.Lock()
_concurrent_launches = False  # whether the layer numba runs lets parallel launches overlap
_forked_after_unsafe_launch = False
tbb_library: str | None = None  # path of the libtbb fastbp loaded, if it did


def _find_libtbb() -> str | None:
    """Path of libtbb.so.12 from the installed ``tbb`` distribution, or None."""
    usual = os.path.join(sys.prefix, "lib", "libtbb.so.12")  # where pip puts it (venv or not)
    if os.path.exists(usual):
        return usual
    try:  # elsewhere (a --user install): the file list, slower (docs/decisions.md#tbb-lookup)
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name.startswith("libtbb.so.12"):
            path = os.path.realpath(file.locate())
            if os.path.exists(path):
                return path
    return None


def _preload_tbb() -> str | None:
    """Load libtbb globally so numba's TBB layer can start; only before numba's first launch."""
    if not sys.platform.startswith("linux") or threads_launched():
        return None
    path = _find_libtbb()
    if path is None:
        return None
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    return path


def threads_launched() -> bool:
    """Whether numba has started its threading layer in this process."""
    return bool(getattr(_numba_parallel, "_is_initialized", False))


def active_layer() -> str | None:
    """The threading layer numba runs, or None before its first parallel launch."""
    if not threads_launched():
        return None
    return str(numba.threading_layer())


def layer_is_fork_safe(layer: str | None) -> bool:
    if layer == "omp":
        from numba.np.ufunc import omppool  # type: ignore[attr-defined]  # an extension module

        return getattr(omppool, "openmp_vendor", "GNU") != "GNU"
    return layer in _FORK_SAFE_LAYERS


def _after_fork_in_child() -> None:
    global _forked_after_unsafe_launch
    if threads_launched() and not layer_is_fork_safe(active_layer()):
        _forked_after_unsafe_launch = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def parallel_allowed() -> bool:
    """False in a forked child whose parent launched a fork-unsafe threading layer."""
    return not _forked_after_unsafe_launch and numba.get_num_threads() > 1


def launch(compiled: Any, *args: Any) -> Any:
    """``compiled(*args)``, one parallel kernel launch: under the workqueue layer, and at the
    first launch (which picks the layer), launches take turns; under TBB or OpenMP they may
    overlap."""
    global _concurrent_launches
    if _concurrent_launches:
        return compiled(*args)
    with _launch_lock:
        result = compiled(*args)
    _concurrent_launches = active_layer() not in (None, "workqueue")
    return result


def most_threads() -> int:
    """The most threads numba may run in this process (NUMBA_NUM_THREADS), as a new one does."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


def check_thread_count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"threads must be a positive integer, got {n!r}")
    most = most_threads()
    if not 1 <= n <= most:
        raise ValueError(f"threads must be between 1 and {most} (NUMBA_NUM_THREADS), got {n}")
    return n


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Limit the threads of fastbp's calls made inside the block, in this thread only.

    ``n=None`` leaves the count as it is. The previous count is restored in ``finally``; other
    threads, with limits of their own, are not affected (numba's thread count is per thread).
    """
    if n is None:
        yield
        return
    n = check_thread_count(n)
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def threading_info() -> dict[str, Any]:
    """How fastbp runs in parallel here: ``{"layer", "threads", "fork_safe", ...}``.

    ``layer`` is numba's threading layer ("tbb", "omp" or "workqueue"); asking starts numba's
    threads if nothing has yet. ``threads`` is the calling thread's count, ``fork_safe`` whether
    forked children may run parallel kernels; ``serial_fallback`` is True in a forked child that
    must run the serial kernels; ``tbb_library`` is the libtbb fastbp loaded, if any;
    ``slp_vectorizer`` whether the kernels are compiled with LLVM's SLP vectorizer (numba's
    internal setting: where it is missing the kernels are slower, not wrong); ``isa`` the
    vector instruction set they are compiled for ("avx512" or "avx2", numba's target CPU) and
    ``block_shapes`` their register blocks per dtype, (R, TB, RD, C, CL, RP, PANELS)
    (``fastbp.kernels.simd``).
    """
    from .kernels import simd, slp_available

    if not threads_launched() and not _forked_after_unsafe_launch:
        _numba_parallel._launch_threads()
    layer = active_layer()
    return {
        "layer": layer,
        "threads": numba.get_num_threads(),
        "fork_safe": layer_is_fork_safe(layer),
        "serial_fallback": _forked_after_unsafe_launch,
        "tbb_library": tbb_library,
        "slp_vectorizer": slp_available(),
        "isa": simd.ISA,
        "block_shapes": {dtype.name: shape for dtype, shape in simd.BLOCK_SHAPES.items()},
    }


tbb_library = _preload_tbb()
